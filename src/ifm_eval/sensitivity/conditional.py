"""Conditional and hybrid moment-inequality tests of Andrews, Roth & Pakes (2023).

Tests ``H0: E[Y] - X tau <= 0 for some tau`` for ``Y ~ N(mu, Sigma)`` - the form the
Rambachan-Roth null ``A (beta - (0, tau_post)) <= d`` with ``l'tau_post = theta`` takes after
moving ``theta`` into ``Y`` and the remaining post-period effects into the nuisance ``tau``
(Andrews, Roth & Pakes 2023, "Inference for linear conditional moment inequalities", Review of
Economic Studies 90(6); Rambachan & Roth 2023, Section 5.3 and Appendix). Implemented:

* the conditional test ("ARP"): statistic ``eta = min_tau max_i (Y_i - X_i tau) / sd_i`` compared
  with a truncated-normal quantile that conditions on the optimal dual vertex (primal approach
  when the vertex is non-degenerate with full-rank binding rows, otherwise the dual approach with
  truncation points found on the value function of the dual LP);
* the conditional-least-favourable hybrid ("LF"): reject at once when ``eta`` exceeds the
  ``1 - kappa`` quantile of ``eta`` under the least-favourable null ``mu = 0`` (simulated with
  ``sims`` draws), otherwise run the conditional test at size ``(alpha - kappa) / (1 - kappa)``
  with the upper truncation point capped at that critical value;
* the no-nuisance variant (one post period), conditioning on the location of the largest
  standardised moment (Lee et al. 2016 polyhedral lemma), as R HonestDiD does.

The steps, tolerances (1e-6 for binding duals and for the dual value function) and the simulation
(R's ``set.seed(0)`` stream, see :mod:`._rng`) follow R HonestDiD 0.2.8 (``arp-nuisance.R``,
``arp-nonuisance.R``) so that the grid decisions agree with R; the linear programmes are solved
exactly by :class:`._lp.MinMaxLP` and every step is vectorised over the theta grid.
"""

from __future__ import annotations

import numpy as np
from scipy.special import log_ndtr, ndtr, ndtri, ndtri_exp

from ._lp import MinMaxLP
from ._rng import r_rmvnorm

_TOL_LAMBDA = 1e-6  # R: tol_lambda, duals above it count as binding
_TOL_EQUALITY = 1e-6  # R: tol_equality of the dual value-function check
_TOL_C = 1e-6  # R: tol_c of the bisection
_ROUND_EPS = np.finfo(float).eps ** 0.75  # R: .roundeps


def tn_quantile(p: float, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Quantile ``p`` of the standard normal truncated to ``[lo, hi]`` (vectorised, tail-safe).

    Solves ``Phi(q) = (1 - p) Phi(lo) + p Phi(hi)``, through the survival function (in logs when
    both ends lie far in the upper tail) where that is the accurate side. Mirrors
    ``TruncatedNormal::norminvp`` used by R HonestDiD.
    """
    lo, hi = np.broadcast_arrays(np.asarray(lo, dtype=float), np.asarray(hi, dtype=float))
    lo, hi = lo.astype(float).copy(), hi.astype(float).copy()
    flip = hi <= 0.0  # lower tail: use symmetry
    a = np.where(flip, -hi, lo)
    b = np.where(flip, -lo, hi)
    pp = np.where(flip, 1.0 - p, p)
    out = np.empty_like(a)
    upper = a >= 0.0
    # both in the upper tail: log S(q) = log(S(a) - p (S(a) - S(b)))
    if upper.any():
        lsa = log_ndtr(-a[upper])
        lsb = log_ndtr(-b[upper])
        with np.errstate(over="ignore", invalid="ignore"):
            ratio = np.exp(lsb - lsa)
        lsq = lsa + np.log1p(-pp[upper] * (1.0 - ratio))
        out[upper] = -ndtri_exp(lsq)
    mid = ~upper
    if mid.any():
        fa, fb = ndtr(a[mid]), ndtr(b[mid])
        sa, sb = ndtr(-a[mid]), ndtr(-b[mid])
        f = (1.0 - pp[mid]) * fa + pp[mid] * fb
        s = (1.0 - pp[mid]) * sa + pp[mid] * sb
        out[mid] = np.where(s < 0.5, -ndtri(s), ndtri(f))
    out = np.clip(out, a, b)
    out = np.where(flip, -out, out)
    degenerate = ~(hi > lo)
    return np.where(degenerate, lo, out)


def lf_critical_value(
    x: np.ndarray | None, sigma: np.ndarray, kappa: float, sims: int = 1000, seed: int = 0
) -> float:
    """``1 - kappa`` quantile of ``eta(xi)``, ``xi ~ N(0, sigma)`` (least-favourable null).

    ``sims`` draws of R's ``mvtnorm::rmvnorm`` stream after ``set.seed(seed)``; quantile type 7.
    """
    draws = r_rmvnorm(seed, sims, sigma)
    lp = MinMaxLP(x, np.sqrt(np.diag(sigma)))
    eta, _ = lp.solve(draws)
    eta = eta[~np.isnan(eta)]
    return float(np.quantile(eta, 1.0 - kappa))


def _in_range_reject(
    maxstat: np.ndarray, zlo: np.ndarray, zup: np.ndarray, size: float
) -> np.ndarray:
    inside = (zlo <= maxstat) & (maxstat <= zup)
    reject = np.zeros(maxstat.shape, dtype=bool)
    if inside.any():
        cval = np.maximum(0.0, tn_quantile(1.0 - size, zlo[inside], zup[inside]))
        reject[inside] = maxstat[inside] > cval
    return reject


def _dual_value_root(
    c0: np.ndarray, eta: np.ndarray, s_t: np.ndarray, b: np.ndarray, lp: MinMaxLP, side: int
) -> np.ndarray:
    """End point (side=+1: upper, -1: lower) of ``{c : V(c) = c}``, ``V(c) = eta(s_t + b c)``.

    ``V(c) - c`` is convex and piecewise linear with its zero set an interval containing
    ``eta``. Newton steps on the supporting lines (R's "shortcut") from ``c0`` reach the end
    point in finitely many steps; a bisection between ``eta`` and the last iterate is the
    fallback, to R's tolerance.
    """
    n = c0.shape[0]
    out = np.full(n, np.nan)
    c = c0.copy()
    phi, idx = lp.solve(s_t + c[:, None] * b)
    ok = np.abs(c - phi) <= _TOL_EQUALITY
    out[ok] = side * np.inf
    act = np.flatnonzero(~ok)
    last_bad = c.copy()
    for _ in range(100):
        if not act.size:
            break
        lam = lp.lam(idx[act])
        num = np.einsum("ij,ij->i", lam, s_t[act])
        num[np.abs(num) < _ROUND_EPS] = 0.0
        den = 1.0 - lam @ b
        with np.errstate(divide="ignore", invalid="ignore"):
            c_new = num / den
        bad = ~np.isfinite(c_new) | (side * (c_new - eta[act]) < -_TOL_C)
        if bad.any():  # leave these to the bisection
            act = act[~bad]
            c_new = c_new[~bad]
        if not act.size:
            break
        phi_a, idx_a = lp.solve(s_t[act] + c_new[:, None] * b)
        good = np.abs(c_new - phi_a) <= _TOL_EQUALITY
        out[act[good]] = c_new[good]
        last_bad[act[~good]] = c_new[~good]
        idx[act] = idx_a
        act = act[~good]
    todo = np.flatnonzero(np.isnan(out))
    for i in todo:  # bisection (R's fallback); rare
        lo_v, hi_v = eta[i], last_bad[i]  # lo_v is a solution, hi_v is not
        mid = hi_v
        while abs(hi_v - lo_v) > _TOL_C:
            mid = 0.5 * (lo_v + hi_v)
            ph, _ = lp.solve((s_t[i] + mid * b)[None, :])
            if abs(mid - ph[0]) <= _TOL_EQUALITY:
                lo_v = mid
            else:
                hi_v = mid
        out[i] = mid
    return out


def nuisance_accept(
    y: np.ndarray,
    x: np.ndarray,
    sigma: np.ndarray,
    alpha: float,
    hybrid: str = "LF",
    kappa: float | None = None,
    lf_cv: float | None = None,
    lp: MinMaxLP | None = None,
) -> np.ndarray:
    """ARP conditional (``hybrid="ARP"``) or conditional-LF hybrid (``"LF"``) test, vectorised.

    ``y`` is ``n x m`` (one row per tested theta: ``A betahat - d - a theta``), ``x`` the
    ``m x k`` nuisance design, ``sigma`` the ``m x m`` covariance of ``y``. Returns a boolean
    array: True where the null is *not* rejected (theta in the confidence set).
    """
    y = np.atleast_2d(y)
    n = y.shape[0]
    k = x.shape[1]
    sd = np.sqrt(np.diag(sigma))
    lp = lp if lp is not None else MinMaxLP(x, sd)
    eta, idx = lp.solve(y)
    reject = np.zeros(n, dtype=bool)
    todo = ~np.isnan(eta) & np.isfinite(eta)  # R: LP failure -> "not rejecting"
    if hybrid == "LF":
        if kappa is None or lf_cv is None:
            raise ValueError("the LF hybrid needs kappa and lf_cv")
        size = (alpha - kappa) / (1.0 - kappa)
        first = todo & (eta > lf_cv)
        reject[first] = True
        todo &= ~first
        cap = lf_cv
    elif hybrid == "ARP":
        size, cap = alpha, np.inf
    else:
        raise ValueError("hybrid must be 'LF' or 'ARP'")

    for j in np.unique(idx[todo]):
        pts = np.flatnonzero(todo & (idx == j))
        lam = lp.bases[j].lam
        bidx = lam > _TOL_LAMBDA
        nb = int(bidx.sum())
        degenerate = nb != k + 1
        x_b = x[bidx]
        xdim = min(nb, k)
        full_rank = xdim > 0 and np.linalg.matrix_rank(x_b) == xdim
        yp, ep = y[pts], eta[pts]
        if full_rank and not degenerate:
            # primal approach
            w_b = np.column_stack([sd[bidx], x_b])
            w_inv = np.linalg.inv(w_b)
            m = y.shape[1]
            s_b = np.eye(m)[bidx]
            s_bc = np.eye(m)[~bidx]
            gamma_b = np.column_stack([sd[~bidx], x[~bidx]]) @ w_inv @ s_b - s_bc
            v_b = (w_inv[0] @ s_b).ravel()
            sigma2_b = float(v_b @ sigma @ v_b)
            sigma_b = np.sqrt(sigma2_b)
            rho = gamma_b @ sigma @ v_b / sigma2_b
            maxi = -(yp @ gamma_b.T) / rho + (yp @ v_b)[:, None]
            pos, neg = rho > 0, rho < 0
            vlo = maxi[:, pos].max(axis=1) if pos.any() else np.full(pts.size, -np.inf)
            vup = maxi[:, neg].min(axis=1) if neg.any() else np.full(pts.size, np.inf)
        else:
            # dual approach
            gam = lam
            sigma2_b = float(gam @ sigma @ gam)
            if abs(sigma2_b) < np.finfo(float).eps:
                reject[pts] = ep > 0
                continue
            if sigma2_b < 0:
                raise ArithmeticError("negative variance in the dual approach")
            sigma_b = np.sqrt(sigma2_b)
            bvec = sigma @ gam / sigma2_b
            s_t = yp - np.outer(yp @ gam, bvec)
            phi0, _ = lp.solve(s_t + ep[:, None] * bvec)
            honest = np.abs(ep - phi0) <= _TOL_EQUALITY
            vlo = ep.copy()
            vup = np.full(pts.size, np.inf)
            if honest.any():
                h = np.flatnonzero(honest)
                high = np.maximum(100.0, ep[h] + 20.0 * sigma_b)
                low = np.minimum(-100.0, ep[h] - 20.0 * sigma_b)
                vup[h] = _dual_value_root(high, ep[h], s_t[h], bvec, lp, +1)
                vlo[h] = _dual_value_root(low, ep[h], s_t[h], bvec, lp, -1)
        zlo = vlo / sigma_b
        zup = np.minimum(vup, cap) / sigma_b
        reject[pts] = _in_range_reject(ep / sigma_b, zlo, zup, size)
    return ~reject


def no_nuisance_accept(
    y: np.ndarray,
    a_mat: np.ndarray,
    d: np.ndarray,
    sigma: np.ndarray,
    alpha: float,
    hybrid: str = "LF",
    kappa: float | None = None,
    lf_cv: float | None = None,
) -> np.ndarray:
    """Conditional / LF-hybrid test of ``A mu <= d`` for ``y ~ N(mu, sigma)``, no nuisance.

    ``y`` is ``n x p`` (one row per tested theta). Conditions on the location of the largest
    standardised moment (polyhedral lemma); the LF hybrid rejects at once when that moment
    exceeds ``lf_cv`` and otherwise uses size ``(alpha - kappa) / (1 - kappa)`` (as R's
    ``.testInIdentifiedSet_LF_Hybrid``, without truncating at ``lf_cv``). True = not rejected.
    """
    y = np.atleast_2d(y)
    sig_t = np.sqrt(np.einsum("ij,jk,ik->i", a_mat, sigma, a_mat))
    a_t = a_mat / sig_t[:, None]
    d_t = d / sig_t
    moments = y @ a_t.T - d_t
    loc = np.argmax(moments, axis=1)
    maxm = moments[np.arange(y.shape[0]), loc]
    reject = np.zeros(y.shape[0], dtype=bool)
    todo = np.ones(y.shape[0], dtype=bool)
    if hybrid == "LF":
        if kappa is None or lf_cv is None:
            raise ValueError("the LF hybrid needs kappa and lf_cv")
        size = (alpha - kappa) / (1.0 - kappa)
        reject = maxm > lf_cv
        todo = ~reject
    elif hybrid == "ARP":
        size = alpha
    else:
        raise ValueError("hybrid must be 'LF' or 'ARP'")
    for b in np.unique(loc[todo]):
        pts = np.flatnonzero(todo & (loc == b))
        gam = a_t[b]
        abar = a_t - a_t[b][None, :]
        dbar = d_t - d_t[b]
        sbar = np.sqrt(gam @ sigma @ gam)
        c = sigma @ gam / (gam @ sigma @ gam)
        z = y[pts] - np.outer(y[pts] @ gam, c)
        ac = abar @ c
        with np.errstate(divide="ignore", invalid="ignore"):
            obj = (dbar[None, :] - z @ abar.T) / ac[None, :]
        neg, pos = ac < 0, ac > 0
        vlo = obj[:, neg].max(axis=1) if neg.any() else np.full(pts.size, -np.inf)
        vup = obj[:, pos].min(axis=1) if pos.any() else np.full(pts.size, np.inf)
        mu = d_t[b]
        q = tn_quantile(1.0 - size, (vlo - mu) / sbar, (vup - mu) / sbar)
        cval = np.maximum(0.0, mu + sbar * q)
        reject[pts] = maxm[pts] + d_t[b] > cval
    return ~reject
