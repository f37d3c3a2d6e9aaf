"""Dose-response of every (g,t) cell: B-spline regression of the treated units' outcome change.

Estimands (Callaway, Goodman-Bacon & Sant'Anna 2024, staggered timing, panel). For cohort
``g``, period ``t`` and base period ``b``, with ``dY = Y_t - Y_b`` and the comparison mean
``m(g,t)`` (:mod:`ifm_eval.dose.cells`):

* ``ATT(d|g,t) = E[dY | G = g, D = d] - m(g,t)``, the conditional mean estimated by (weighted)
  least squares of ``dY`` on the spline design ``X(D) = [1, B(D)]`` among cohort-``g`` units
  observed in ``t`` and ``b`` (:mod:`ifm_eval.dose.splines`);
* ``ACRT(d|g,t) = dATT(d|g,t)/dd = B'(d) beta``;
* ``ATT^o(g,t)`` = the (weighted) mean of the fitted ``ATT(D_i|g,t)`` over the cohort's
  treated units = mean ``dY`` of the treated minus ``m(g,t)`` (the binary ATT(g,t));
* ``ACRT^o(g,t)`` = the (weighted) mean of ``ACRT(D_i|g,t)`` over the cohort's treated units.

Influence functions (full-sample scale, ``theta_hat - theta ~ (1/n) sum_i IF_i``, weights
normalised to mean 1), with ``A = (1/n) sum_T w X X'``, residuals ``e``, ``p_T = (1/n) sum_T w``
and ``a = (1/n p_T) sum_T w dX(D_i)``:

* beta: ``A^{-1} X_i w_i e_i`` (treated units);
* ATT(d): ``X(d)' A^{-1} X_i w_i e_i`` minus the comparison-mean IF;
* ATT^o: ``w_i (dY_i - mean_T dY) / p_T`` minus the comparison-mean IF;
* ACRT^o: ``w_i (dX(D_i)'beta - ACRT^o) / p_T + a' A^{-1} X_i w_i e_i``.

A cell whose treated units have fewer distinct doses than coefficients (or whose design
is numerically singular) is dropped (``reason = "spline_not_identified"``). Computation is
batched per cohort over its cells (einsum / batched solves), no loop over units.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .cells import CellDesign
from .panel import DosePanel
from .splines import n_coef, spline_design, usable_knots


@dataclass
class CohortFit:
    """Spline fits of one cohort's cells."""

    g: int
    units: np.ndarray  # (n_g,) row indices into the panel
    lo: float
    hi: float
    knots: np.ndarray
    X: np.ndarray  # (n_g x p) design at the units' doses
    dX: np.ndarray  # (n_g x p) derivative design
    cells: np.ndarray  # (K,) cell indices (estimated cells of this cohort)
    beta: np.ndarray  # (K x p)
    Ainv: np.ndarray  # (K x p x p) inverse of (1/n) sum_T w X X'
    WV: np.ndarray  # (n_g x K) w_i * observed in the cell
    WVe: np.ndarray  # (n_g x K) w_i * residual (0 where not observed)
    fitted: np.ndarray  # (n_g x K) X beta
    pT: np.ndarray  # (K,)

    def grid_design(self, grid: np.ndarray, degree: int) -> tuple[np.ndarray, np.ndarray]:
        return spline_design(grid, self.lo, self.hi, self.knots, degree)


@dataclass
class CellFits:
    """Cell-level estimates and their influence functions."""

    att_o: np.ndarray  # (C,) ATT^o(g,t) (0 for universal base cells, NaN for dropped cells)
    acrt_o: np.ndarray  # (C,)
    n_treated: np.ndarray  # (C,) treated units observed in the cell
    if_att_o: np.ndarray  # (n x C)
    if_acrt_o: np.ndarray  # (n x C)
    if_comp: np.ndarray  # (n x C) comparison-mean IF (enters ATT(d) and ATT^o with a minus sign)
    cohorts: dict[int, CohortFit]
    degree: int


def fit_cells(panel: DosePanel, design: CellDesign, *, degree: int, knots: np.ndarray) -> CellFits:
    """Fit the dose spline in every cell (see the module docstring); drops cells in place
    in ``design`` (``dropped`` / ``reason``) when the spline is not identified."""
    n, C = panel.n, design.n_cells
    w = panel.w
    att_o = np.full(C, np.nan)
    acrt_o = np.full(C, np.nan)
    att_o[design.universal_base] = 0.0
    acrt_o[design.universal_base] = 0.0
    n_treated = np.zeros(C, dtype=np.int64)
    if_att = np.zeros((n, C))
    if_acrt = np.zeros((n, C))
    cohorts: dict[int, CohortFit] = {}
    for g in np.unique(design.g):
        U = np.flatnonzero(panel.cohort == g)
        cells_all = np.flatnonzero(design.g == g)
        V_all = design.valid[np.ix_(U, cells_all)]
        n_treated[cells_all] = V_all.sum(axis=0)
        d = panel.dose[U]
        lo, hi = float(d.min()), float(d.max())
        kn = usable_knots(knots, lo, hi)
        p = n_coef(degree, kn)
        cand = ~design.dropped[cells_all] & ~design.universal_base[cells_all]
        # identification: at least p distinct doses among the observed treated units
        if hi > lo:
            _, dcode = np.unique(d, return_inverse=True)
            onehot = np.zeros((dcode.max() + 1, len(U)))
            onehot[dcode, np.arange(len(U))] = 1.0
            n_distinct = ((onehot @ V_all) > 0).sum(axis=0)
        else:
            n_distinct = np.ones(len(cells_all), dtype=np.int64)
        ident = n_distinct >= p
        bad = cand & ~ident
        design.dropped[cells_all[bad]] = True
        design.reason[cells_all[bad]] = np.where(n_treated[cells_all[bad]] == 0, "no_treated_observed",
                                                 "spline_not_identified")
        cand &= ident
        if not cand.any():
            continue
        X, dX = spline_design(d, lo, hi, kn, degree)
        cells = cells_all[cand]
        V = V_all[:, cand]
        WV = w[U, None] * V
        D0 = design.dY[np.ix_(U, cells)]
        A = np.einsum("ik,ip,iq->kpq", WV, X, X) / n
        r = np.einsum("ik,ip->kp", WV * D0, X) / n
        cond = np.linalg.cond(A)
        sing = ~np.isfinite(cond) | (cond > 1e13)
        if sing.any():
            design.dropped[cells[sing]] = True
            design.reason[cells[sing]] = "spline_not_identified"
            keep = ~sing
            cells, V, WV, D0, A, r = cells[keep], V[:, keep], WV[:, keep], D0[:, keep], A[keep], r[keep]
            if len(cells) == 0:
                continue
        Ainv = np.linalg.inv(A)
        beta = np.einsum("kpq,kq->kp", Ainv, r)
        pT = WV.sum(axis=0) / n
        fitted = X @ beta.T
        WVe = WV * (D0 - fitted)
        mean_T = (WV * D0).sum(axis=0) / (n * pT)
        m = design.m[cells]
        att_o[cells] = mean_T - m
        abar = (WV.T @ dX) / (n * pT)[:, None]  # (K x p)
        acrt_o[cells] = np.einsum("kp,kp->k", abar, beta)
        deriv = dX @ beta.T
        if_att[np.ix_(U, cells)] = WV * (D0 - mean_T) / pT
        v = np.einsum("kpq,kq->kp", Ainv, abar)  # A^{-1} a, A symmetric
        if_acrt[np.ix_(U, cells)] = WV * (deriv - acrt_o[cells]) / pT + (X @ v.T) * WVe
        cohorts[int(g)] = CohortFit(g=int(g), units=U, lo=lo, hi=hi, knots=kn, X=X, dX=dX, cells=cells,
                                    beta=beta, Ainv=Ainv, WV=WV, WVe=WVe, fitted=fitted, pT=pT)
    est = ~design.dropped & ~design.universal_base
    att_o[~est & ~design.universal_base] = np.nan
    acrt_o[~est & ~design.universal_base] = np.nan
    if_comp = design.comparison_if(w)
    if_att -= if_comp
    if_att[:, ~est] = 0.0
    if_acrt[:, ~est] = 0.0
    return CellFits(att_o=att_o, acrt_o=acrt_o, n_treated=n_treated, if_att_o=if_att, if_acrt_o=if_acrt,
                    if_comp=if_comp, cohorts=cohorts, degree=degree)
