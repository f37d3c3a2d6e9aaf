"""de Chaisemartin & D'Haultfoeuille (2020) weights of the static TWFE coefficient.

Estimand: ``beta`` of the (weighted) regression ``Y_it = a_i + l_t + beta D_it + e_it`` with a
binary treatment, on any sample of unit x period cells (balanced or not). By
Frisch-Waugh-Lovell ``beta = sum N_it eps_it Y_it / sum N_it eps_it D_it`` with ``eps`` the
residual of the regression of ``D`` on unit and period effects weighted by the cell weight
``N_it`` (the observation weight, summed over a cell's rows). ``eps`` is orthogonal to the
fixed effects, so if the untreated outcome follows the TWFE model, ``Y_it(0) = a_i + l_t``,
and ``Y_it = Y_it(0) + D_it tau_it``,

    beta = sum_{D_it = 1} w_it tau_it,   w_it = N_it eps_it / sum_{D = 1} N_it eps_it,

exactly (Theorem 1 of the paper, under its common-trends assumption; with noise add
``sum_all N eps u / sum_{D=1} N eps``). The weights sum to one; treated cells with
``eps_it < 0`` (typically long-treated cells of early cohorts, in periods when many units
are treated) get negative weights. :func:`twfe_weights_summary` counts them and computes
the paper's robustness measures (Corollary 1): ``sigma_fe = |beta| / sigma(w)``, the
smallest standard deviation of the treated cells' effects compatible with ``beta`` and an
average effect of zero, and ``sigma_fe_sign``, the smallest compatible with every effect
having the sign opposite to ``beta`` (only when some weight is negative).

Fixed effects are partialled out exactly by the normal equations: the larger factor
(units) is eliminated in closed form and the Schur complement on the smaller one
(periods, dense ``n_t x n_t``) pseudo-inverted (singular by one per connected component
of the unit-period graph), followed by one refinement pass. Cost ~ O(n + n_t^3): 1,101
units x 84 months in ~0.03 s. If both factors have more than ``MAX_DENSE_LEVELS`` levels,
sparse LSQR on the dummy design is used instead.

Reference: de Chaisemartin, C. and D'Haultfoeuille, X. (2020). Two-Way Fixed Effects
Estimators with Heterogeneous Treatment Effects. American Economic Review 110(9),
2964-2996. Stata/R ``twowayfeweights`` (type ``feTR``) computes the same weights.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

__all__ = ["fe_residual", "twfe_weights", "twfe_weights_summary"]

#: Relative eigenvalue cut-off of the Schur complement's pseudo-inverse.
SCHUR_RTOL = 1e-12
#: Largest smaller-factor size for the dense Schur complement (else sparse LSQR).
MAX_DENSE_LEVELS = 5000
#: Weights below this in magnitude count as zero in the summary (as R twowayfeweights).
ZERO_TOL = 1e-10
#: sigma(w) below this counts as zero (all normalised weights equal; sigma_fe undefined).
SIGMA_W_TOL = 1e-10
_MAX_NAMED = 10


# ---------------------------------------------------------------- fixed-effect solver
def _project(x: np.ndarray, a: np.ndarray, b: np.ndarray, w: np.ndarray, n_a: int,
             S_pinv: np.ndarray, C: sp.csr_matrix, wa_inv: np.ndarray) -> np.ndarray:
    """Weighted projection of ``x`` on the effects of factors ``a`` and ``b``."""
    ra = np.bincount(a, weights=w * x, minlength=n_a)
    rb = np.bincount(b, weights=w * x, minlength=S_pinv.shape[0])
    gamma = S_pinv @ (rb - C.T @ (wa_inv * ra))
    alpha = wa_inv * (ra - C @ gamma)
    return alpha[a] + gamma[b]


def _lsqr_residual(x: np.ndarray, a: np.ndarray, b: np.ndarray, w: np.ndarray,
                   n_a: int, n_b: int) -> np.ndarray:
    """The same residual by sparse LSQR on the dummy design (both factors large)."""
    from scipy.sparse.linalg import lsqr

    n, sw = len(x), np.sqrt(w)
    A = sp.hstack([sp.csr_matrix((np.ones(n), (np.arange(n), a)), shape=(n, n_a)),
                   sp.csr_matrix((np.ones(n), (np.arange(n), b)), shape=(n, n_b))]).tocsr()
    As = sp.diags(sw) @ A
    r = x
    for _ in range(2):  # second pass: refinement
        coef = lsqr(As, sw * r, atol=1e-15, btol=1e-15, conlim=0, iter_lim=20 * (n_a + n_b))[0]
        r = r - A @ coef
    return r


def fe_residual(x: Any, unit_codes: Any, time_codes: Any, weights: Any = None,
                max_dense: int = MAX_DENSE_LEVELS) -> np.ndarray:
    """Residual of the weighted least-squares regression of ``x`` on unit and period
    effects (codes ``0..n-1``), exact up to rounding (module doc; any panel shape). If
    both factors have more than ``max_dense`` levels, sparse LSQR instead (~1e-10)."""
    x = np.asarray(x, dtype=float)
    u = np.asarray(unit_codes, dtype=np.int64)
    t = np.asarray(time_codes, dtype=np.int64)
    w = np.ones(len(x)) if weights is None else np.asarray(weights, dtype=float)
    n_u, n_t = int(u.max()) + 1, int(t.max()) + 1
    a, b, n_a, n_b = (u, t, n_u, n_t) if n_u >= n_t else (t, u, n_t, n_u)
    if n_b > max_dense:
        return _lsqr_residual(x, a, b, w, n_a, n_b)
    wa = np.bincount(a, weights=w, minlength=n_a)
    wb = np.bincount(b, weights=w, minlength=n_b)
    wa_inv = np.divide(1.0, wa, out=np.zeros(n_a), where=wa > 0)
    C = sp.csr_matrix((w, (a, b)), shape=(n_a, n_b))
    S = np.diag(wb) - (C.T @ sp.diags(wa_inv) @ C).toarray()
    lam, Q = np.linalg.eigh((S + S.T) / 2)
    keep = lam > SCHUR_RTOL * max(float(lam.max(initial=0.0)), 1.0)
    S_pinv = (Q[:, keep] / lam[keep]) @ Q[:, keep].T
    r = x - _project(x, a, b, w, n_a, S_pinv, C, wa_inv)
    return r - _project(r, a, b, w, n_a, S_pinv, C, wa_inv)  # one refinement pass


# ----------------------------------------------------------------------------- cells
def _named(units: Any) -> str:
    u = list(units)
    more = f" and {len(u) - _MAX_NAMED} more" if len(u) > _MAX_NAMED else ""
    return f"{u[:_MAX_NAMED]}{more}"


def _cells(data: pd.DataFrame, unit: str, time: str, treatment: str,
           weights: str | None) -> pd.DataFrame:
    """One row per (unit, period) cell: treatment and cell weight ``n``."""
    cols = [unit, time, treatment] + ([weights] if weights else [])
    missing = [c for c in cols if c not in data.columns]
    if missing:
        raise KeyError(f"column(s) not in the data: {missing}")
    df = pd.DataFrame({
        "unit": data[unit].to_numpy(), "time": data[time].to_numpy(),
        "d": pd.to_numeric(data[treatment], errors="coerce").to_numpy(dtype=float),
        "n": pd.to_numeric(data[weights], errors="coerce").to_numpy(dtype=float) if weights else 1.0,
    })
    bad = df["d"].isna() | df["n"].isna() | (df["n"] <= 0) | df["unit"].isna() | df["time"].isna()
    if bad.any():
        raise ValueError(f"{int(bad.sum())} row(s) with a missing unit, time or treatment, or a "
                         "missing / non-positive weight: pass the regression's estimation sample")
    if not df["d"].isin([0.0, 1.0]).all():
        raise ValueError("the treatment must be binary (0/1)")
    g = df.groupby(["unit", "time"], sort=True)
    if (g["d"].nunique() > 1).any():
        raise ValueError("the treatment varies within a (unit, time) cell")
    return g.agg(d=("d", "first"), n=("n", "sum")).reset_index()


def twfe_weights(data: pd.DataFrame, unit: str, time: str, treatment: str,
                 weights: str | None = None, all_cells: bool = False) -> pd.DataFrame:
    """dCDH (2020) weights of the static TWFE coefficient (module doc).

    ``data``: the regression's estimation sample (any panel shape; several rows per
    (unit, time) cell are aggregated, the treatment must be constant within a cell);
    ``treatment``: binary D; ``weights``: observation weights (weighted TWFE).

    Returns one row per treated cell (``all_cells``: every cell, with ``treated``):
    ``unit``, ``time``, ``n`` (cell weight), ``epsilon`` (residual of D on the fixed
    effects) and ``weight`` = ``n * epsilon / sum_{D=1} n * epsilon`` (the untreated cells'
    ``weight`` multiplies their outcome in ``beta``; it has no treatment-effect
    interpretation). ``attrs["denominator"]`` is ``sum_{D=1} n * epsilon``.
    """
    cells = _cells(data, unit, time, treatment, weights)
    uc = pd.factorize(cells["unit"], sort=True)[0]
    tc = pd.factorize(cells["time"], sort=True)[0]
    n, d = cells["n"].to_numpy(), cells["d"].to_numpy()
    eps = fe_residual(d, uc, tc, n)
    denom = float((n * eps)[d == 1].sum())
    if not denom > 1e-12 * float(n[d == 1].sum() or 1.0):
        raise ValueError("the treatment is collinear with the unit and period effects")
    out = cells.assign(epsilon=eps, weight=n * eps / denom)
    out = out.assign(treated=d == 1) if all_cells else out[d == 1]
    out = out.drop(columns="d").reset_index(drop=True)
    out.attrs["denominator"] = denom
    return out


# --------------------------------------------------------------------------- summary
def _tail_sum(v: np.ndarray) -> np.ndarray:
    """``out[k] = sum_{i >= k} v[i]``."""
    return np.cumsum(v[::-1])[::-1]


def _sigma_sign(wn: np.ndarray, P: np.ndarray, beta: float) -> float | None:
    """Corollary 1(ii): the smallest sd of the effects compatible with ``beta`` and every
    effect of the opposite sign; ``wn`` the normalised weights (mean 1 under ``P``), sorted
    decreasingly, ``P_k, S_k, T_k`` the tail sums of ``P``, ``P wn``, ``P wn^2`` from the
    k-th on, ``s`` the first ``k >= 2`` with ``wn_k < -S_k / (1 - P_k)``."""
    order = np.argsort(-wn, kind="stable")
    wn, P = wn[order], P[order]
    P_k, S_k, T_k = _tail_sum(P), _tail_sum(P * wn), _tail_sum(P * wn**2)
    with np.errstate(divide="ignore", invalid="ignore"):
        cond = wn < -S_k / (1 - P_k)
    cond[0] = False
    if not cond.any():
        return None
    s = int(np.argmax(cond))
    return float(abs(beta) / np.sqrt(T_k[s] + S_k[s] ** 2 / (1 - P_k[s])))


def twfe_weights_summary(w: pd.DataFrame, beta: float | None = None,
                         zero_tol: float = ZERO_TOL) -> dict[str, Any]:
    """Counts and sums of the positive and negative weights of :func:`twfe_weights`
    (treated cells; weights with ``|w| < zero_tol`` count as zero, as R
    ``twowayfeweights``) and, given the TWFE coefficient ``beta``, the dCDH (2020,
    Corollary 1) robustness measures ``sigma_fe = |beta| / sigma(w)`` and
    ``sigma_fe_sign`` (None without negative weights), with ``sigma(w)`` the standard
    deviation of the normalised weights ``w_it / (N_it / N_1)`` across treated cells
    weighted by ``N_it / N_1`` (the paper's, without R's M / (M - 1) correction;
    ``sigma_fe`` is None when ``sigma(w) = 0``, i.e. beta is the ATT under any
    heterogeneity)."""
    t = w[w["treated"]] if "treated" in w.columns else w
    wt = t["weight"].to_numpy(float)
    wt = np.where(np.abs(wt) < zero_tol, 0.0, wt)
    pos, neg = wt > 0, wt < 0
    out: dict[str, Any] = {
        "n_treated_cells": len(wt), "n_positive": int(pos.sum()), "n_negative": int(neg.sum()),
        "n_zero": int((wt == 0).sum()), "sum_positive": float(wt[pos].sum()),
        "sum_negative": float(wt[neg].sum()), "sum_weights": float(wt.sum()),
    }
    if beta is None:
        return out
    P = t["n"].to_numpy(float) / t["n"].to_numpy(float).sum()
    wn = wt / P
    sd = float(np.sqrt(np.sum(P * (wn - 1.0) ** 2)))
    nz = wt != 0
    robust = sd <= SIGMA_W_TOL  # equal normalised weights: beta is the ATT, sigma_fe undefined
    out.update(beta=float(beta), sigma_w=sd, sigma_fe=None if robust else float(abs(beta) / sd),
               sigma_fe_sign=_sigma_sign(wn[nz], P[nz], beta) if neg.any() and beta != 0 else None)
    return out
