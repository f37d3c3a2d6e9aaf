r"""Fixed-length confidence interval (FLCI) under :math:`\Delta^{SD}(M)`.

Armstrong & Kolesár (2018, 2020) / Rambachan & Roth (2023, Section 4.1): among affine estimators
:math:`\hat\theta = v'\hat\beta` with :math:`v = (v_{pre}, l)` the FLCI is
:math:`\hat\theta \pm \chi(v)`, :math:`\chi(v) = \sigma_v\, cv_\alpha(\bar b(v) / \sigma_v)`, with
:math:`\sigma_v^2 = v'\Sigma v`, the worst-case bias
:math:`\bar b(v) = \sup_{\delta \in \Delta^{SD}(M)} |v'\delta|` and :math:`cv_\alpha(b)` the
:math:`1 - \alpha` quantile of :math:`|N(b, 1)|`; ``v_pre`` minimises :math:`\chi`.

How it is computed here (an own derivation; R HonestDiD solves the same problem with CVXR/ECOS and
a derivative bisection over the standard deviation ``h``):

* Write :math:`\delta = s\,t + H a` with slope ``s`` at the reference period and the second
  differences ``a`` (:math:`|a_i| \le M`). The bias is finite iff :math:`v` is orthogonal to the
  linear trend ``t`` and then :math:`\bar b(v) = M \lVert H'v \rVert_1`. The post-period part of
  :math:`H'v` depends on ``l`` only; the pre-period part ``u`` (``K - 1`` numbers) together with
  the trend constraint parametrises :math:`v_{pre}` one to one, so
  :math:`\bar b = M (b_0 + \lVert u \rVert_1)` and :math:`\sigma_v^2 = u'Qu + 2p'u + r_0`.
* The bias-variance frontier is the lasso path :math:`u(\lambda) = \arg\min \tfrac12 u'Qu + p'u
  + \lambda \lVert u \rVert_1`, piecewise linear in :math:`\lambda` and computed exactly by the
  homotopy (LARS-lasso) algorithm - from the minimum-bias estimator (:math:`u = 0`, R's ``h0``) at
  :math:`\lambda \ge \lVert p \rVert_\infty` to the minimum-variance one (R's ``hMin``) at 0.
* :math:`\chi` is minimised along that path (a scan of every segment, then Brent's method).

``quantile="exact"`` (default) uses the exact folded-normal quantile, the root of
:math:`\Phi(c - b) - \Phi(-c - b) = 1 - \alpha`. ``quantile="r"`` reproduces R HonestDiD's
simulated quantile (the type-7 sample quantile of :math:`|Z + b|` over R's ``rnorm(1e6)`` after
``set.seed(0)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.optimize import brentq, minimize_scalar
from scipy.stats import norm

from ._rng import r_rnorm


@dataclass(frozen=True)
class FLCIResult:
    """Result of :func:`flci`."""

    lb: float
    ub: float
    estimate: float  # v'betahat
    half_length: float
    weights: np.ndarray  # v = (v_pre, l)
    sd: float  # sigma_v
    max_bias: float  # M * b(v)


def folded_normal_quantile(p: float, b: float) -> float:
    """Exact ``p`` quantile of ``|N(b, 1)|``: the root ``c`` of ``Phi(c-b) - Phi(-c-b) = p``."""
    b = abs(float(b))
    if b == 0.0:
        return float(norm.ppf(0.5 + p / 2.0))
    if b > 40.0:  # Phi(-c-b) is 0 to double precision
        return b + float(norm.ppf(p))
    lo = max(0.0, b + float(norm.ppf(p)) - 1e-12)
    hi = b + float(norm.ppf(0.5 + p / 2.0)) + 1e-12

    def f(c: float) -> float:
        return norm.cdf(c - b) - norm.cdf(-c - b) - p

    return float(brentq(f, lo, hi, xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=200))


@lru_cache(maxsize=2)
def _r_draws(seed: int, n: int) -> np.ndarray:
    return r_rnorm(seed, n)


def simulated_folded_normal_quantile(
    p: float, b: float, n: int = 1_000_000, seed: int = 0
) -> float:
    """R HonestDiD's ``.qfoldednormal``: type-7 quantile of ``|Z + b|``, ``Z`` = R ``rnorm``."""
    return float(np.quantile(np.abs(_r_draws(seed, n) + b), p))


def _trend_and_curvature(num_pre: int, num_post: int) -> tuple[np.ndarray, np.ndarray]:
    """``t`` (linear trend) and ``H`` with ``delta = s t + H a`` (``a``: second differences).

    Columns of ``H``: ``a_i = delta_{i+1} - 2 delta_i + delta_{i-1}`` for
    ``i = -(K-1), ..., T-1``; rows: ``delta_{-K}, ..., delta_{-1}, delta_1, ..., delta_T``.
    """
    k, t_ = num_pre, num_post
    times = np.concatenate([np.arange(-k, 0), np.arange(1, t_ + 1)]).astype(float)
    idx = np.arange(-(k - 1), t_)  # second-difference locations
    h = np.zeros((k + t_, idx.size))
    for r, tm in enumerate(times):
        for c, i in enumerate(idx):
            if tm > 0 and 0 <= i <= tm - 1:
                h[r, c] = tm - i
            elif tm < 0 and tm + 1 <= i <= -1:
                h[r, c] = i - tm
    return times, h


def worst_case_bias_coefficients(
    num_pre: int, num_post: int
) -> tuple[np.ndarray, np.ndarray]:
    r"""``(t, H)``: :math:`\sup_{\Delta^{SD}(M)} |v'\delta| = M\lVert H'v\rVert_1` if ``t'v = 0``."""
    return _trend_and_curvature(num_pre, num_post)


@dataclass
class _Problem:
    p_mat: np.ndarray  # v_pre = P u + q
    q_vec: np.ndarray
    qq: np.ndarray  # variance = u'Qu + 2 p'u + r0
    pp: np.ndarray
    r0: float
    b0: float  # bias / M = b0 + ||u||_1


def _setup(sigma: np.ndarray, num_pre: int, num_post: int, l_vec: np.ndarray) -> _Problem:
    times, h = _trend_and_curvature(num_pre, num_post)
    k = num_pre
    n_pre_a = k - 1
    h_pre = h[:k, :n_pre_a]  # pre rows, pre second differences
    h_post = h[k:, n_pre_a:]  # post rows, post second differences
    b0 = float(np.abs(h_post.T @ l_vec).sum())
    c = -float(times[k:] @ l_vec)  # t_pre'v_pre = -t_post'l
    g = np.vstack([h_pre.T, times[:k][None, :]])  # (k x k): v_pre -> (u, t'v_pre)
    g_inv = np.linalg.inv(g)
    p_mat = g_inv[:, :n_pre_a]
    q_vec = g_inv[:, n_pre_a] * c
    s_pp = sigma[:k, :k]
    s_pl = sigma[:k, k:] @ l_vec
    qq = p_mat.T @ s_pp @ p_mat
    qq = (qq + qq.T) / 2.0
    pp = p_mat.T @ (s_pp @ q_vec + s_pl)
    r0 = float(q_vec @ s_pp @ q_vec + 2.0 * q_vec @ s_pl + l_vec @ sigma[k:, k:] @ l_vec)
    return _Problem(p_mat, q_vec, qq, pp, r0, b0)


def _lasso_path(qq: np.ndarray, pp: np.ndarray) -> list[tuple[float, float, np.ndarray, np.ndarray]]:
    """Homotopy for ``min 1/2 u'Qu + p'u + lam ||u||_1`` over ``lam`` from ``||p||_inf`` to 0.

    Returns segments ``(lam_hi, lam_lo, alpha, beta)``: on ``[lam_lo, lam_hi]``,
    ``u(lam) = alpha + lam * beta`` (full-length vectors, zero off the active set).
    """
    n = pp.shape[0]
    if n == 0:
        return []
    lam = float(np.max(np.abs(pp)))
    segments: list[tuple[float, float, np.ndarray, np.ndarray]] = []
    if lam <= 0.0:
        return segments
    active: list[int] = [int(np.argmax(np.abs(pp)))]
    signs = {active[0]: -np.sign(pp[active[0]])}
    tiny = 1e-12 * max(1.0, lam)
    for _ in range(20 * n + 20):
        a_idx = np.array(active)
        sgn = np.array([signs[j] for j in active])
        q_aa = qq[np.ix_(a_idx, a_idx)]
        try:
            al_a = -np.linalg.solve(q_aa, pp[a_idx])
            be_a = -np.linalg.solve(q_aa, sgn)
        except np.linalg.LinAlgError:
            reg = q_aa + 1e-12 * np.trace(q_aa) / len(active) * np.eye(len(active))
            al_a = -np.linalg.solve(reg, pp[a_idx])
            be_a = -np.linalg.solve(reg, sgn)
        al = np.zeros(n)
        be = np.zeros(n)
        al[a_idx], be[a_idx] = al_a, be_a
        # next event below lam
        nxt, event = 0.0, None
        inactive = [j for j in range(n) if j not in signs]
        for j in inactive:
            cj0 = qq[j, a_idx] @ al_a + pp[j]
            cj1 = qq[j, a_idx] @ be_a
            for s in (1.0, -1.0):  # c_j(lam) = s * lam  (gradient reaches the bound)
                den = s - cj1
                if abs(den) > 1e-15:
                    lj = cj0 / den
                    if nxt < lj < lam - tiny:
                        nxt, event = lj, ("add", j, -s)
        for pos, j in enumerate(active):  # u_j(lam) = 0
            if abs(be_a[pos]) > 1e-15:
                lj = -al_a[pos] / be_a[pos]
                if nxt < lj < lam - tiny:
                    nxt, event = lj, ("drop", j, 0.0)
        segments.append((lam, nxt, al, be))
        if event is None:
            break
        kind, j, s = event
        if kind == "add":
            active.append(j)
            signs[j] = s
        else:
            active.remove(j)
            del signs[j]
            if not active:  # path returns to zero: restart from the largest gradient
                grad = pp.copy()
                j2 = int(np.argmax(np.abs(grad)))
                active = [j2]
                signs = {j2: -np.sign(grad[j2])}
        lam = nxt
        if lam <= 0.0:
            break
    return segments


def _u_at(segments, lam: float, n: int) -> np.ndarray:
    for hi, lo, al, be in segments:
        if lo <= lam <= hi:
            return al + lam * be
    if not segments or lam >= segments[0][0]:
        return np.zeros(n)
    hi, lo, al, be = segments[-1]
    return al + lam * be


def _argmin_smooth(segments, prob: _Problem, m: float, alpha: float, lo: float, hi: float,
                   chi) -> float:
    """Minimiser of chi on ``[lo, hi]`` from the analytic derivative on each path segment.

    On a segment ``u = a + lam b`` with fixed signs, ``h^2`` is quadratic and the bias linear in
    ``lam``; with ``c = cv(x)``, ``dc/dx = (phi(c - x) - phi(c + x)) / (phi(c - x) + phi(c + x))``.
    A root of ``d chi / d lam`` inside a segment is found by Brent's root finder (to machine
    precision, which the FLCI centre needs: the objective is flat at its minimum), kinks and the
    bracket ends are candidates too.
    """
    def deriv(lam: float, seg) -> float:
        _, _, al, be = seg
        u = al + lam * be
        var = float(u @ prob.qq @ u + 2.0 * prob.pp @ u + prob.r0)
        h = np.sqrt(var)
        dh = float(be @ (prob.qq @ u + prob.pp)) / h
        sgn = np.sign(u)
        sgn[sgn == 0] = np.sign(be[sgn == 0])
        bias = m * (prob.b0 + float(np.abs(u).sum()))
        dbias = m * float(sgn @ be)
        x = bias / h
        c = folded_normal_quantile(1.0 - alpha, x)
        dc = (norm.pdf(c - x) - norm.pdf(c + x)) / (norm.pdf(c - x) + norm.pdf(c + x))
        dx = (dbias * h - bias * dh) / (h * h)
        return dh * c + h * dc * dx

    cands = [lo, hi]
    for seg in segments:
        s_hi, s_lo = seg[0], seg[1]
        a, b = max(lo, s_lo), min(hi, s_hi)
        if b <= a:
            continue
        cands.extend([a, b])
        da, db = deriv(a, seg), deriv(b, seg)
        if da < 0.0 < db:
            cands.append(float(brentq(deriv, a, b, args=(seg,), xtol=1e-300, rtol=1e-15,
                                      maxiter=200)))
    return min((chi(c), c) for c in cands)[1]


def flci(
    betahat: np.ndarray,
    sigma: np.ndarray,
    num_pre: int,
    num_post: int,
    l_vec: np.ndarray,
    m: float,
    alpha: float = 0.05,
    quantile: str = "exact",
) -> FLCIResult:
    r"""Optimal FLCI for :math:`\theta = l'\tau_{post}` under :math:`\Delta^{SD}(M)`.

    See the module docstring for the estimand, the optimisation and ``quantile``.
    """
    betahat = np.asarray(betahat, dtype=float)
    sigma = np.asarray(sigma, dtype=float)
    l_vec = np.asarray(l_vec, dtype=float)
    if quantile == "exact":
        def cv(b: float) -> float:
            return folded_normal_quantile(1.0 - alpha, b)
    elif quantile == "r":
        def cv(b: float) -> float:
            return simulated_folded_normal_quantile(1.0 - alpha, b)
    else:
        raise ValueError("quantile must be 'exact' or 'r'")

    prob = _setup(sigma, num_pre, num_post, l_vec)
    n = prob.pp.shape[0]
    segments = _lasso_path(prob.qq, prob.pp)

    def point(lam: float) -> tuple[np.ndarray, float, float]:
        u = _u_at(segments, lam, n)
        var = float(u @ prob.qq @ u + 2.0 * prob.pp @ u + prob.r0)
        return u, np.sqrt(max(var, 0.0)), m * (prob.b0 + float(np.abs(u).sum()))

    def chi(lam: float) -> float:
        _, h, bias = point(lam)
        if h <= 0.0:
            return bias
        return h * cv(bias / h)

    if segments:
        lam_max = segments[0][0]
        if m == 0.0:
            lam_star = 0.0
        else:
            knots = sorted({0.0, lam_max, *[s[1] for s in segments]})
            cand: list[float] = []
            for a, b in zip(knots[:-1], knots[1:], strict=True):
                cand.extend(np.linspace(a, b, 9)[:-1].tolist())
            cand.append(lam_max)
            # a scan with the exact quantile (cheap), then Brent with the chosen quantile
            def chi_exact(lam: float) -> float:
                _, h, bias = point(lam)
                return h * folded_normal_quantile(1.0 - alpha, bias / h) if h > 0 else bias

            vals = np.array([chi_exact(c) for c in cand])
            i = int(np.argmin(vals))
            lo = cand[max(i - 1, 0)]
            hi = cand[min(i + 1, len(cand) - 1)]
            if hi <= lo:
                lam_star = cand[i]
            elif quantile == "exact":
                lam_star = _argmin_smooth(segments, prob, m, alpha, lo, hi, chi)
            else:  # the simulated quantile is not smooth: Brent on chi itself
                res = minimize_scalar(
                    chi, bounds=(lo, hi), method="bounded",
                    options={"xatol": 1e-13 * max(lam_max, 1e-300), "maxiter": 500},
                )
                ends = [(chi(lo), lo), (chi(hi), hi), (chi(float(res.x)), float(res.x))]
                lam_star = min(ends)[1]
    else:
        lam_star = 0.0
    u, h, bias = point(lam_star)
    v_pre = prob.p_mat @ u + prob.q_vec
    v = np.concatenate([v_pre, l_vec])
    half = h * cv(bias / h) if h > 0 else bias
    est = float(v @ betahat)
    return FLCIResult(est - half, est + half, est, float(half), v, float(h), float(bias))
