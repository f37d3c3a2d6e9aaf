"""Aggregations of the cell-level dose responses (as ``cont_did``) with their influence functions.

* ``aggregation="dose"``: ``ATT(d) = sum_{g,t>=g} w_gt ATT(d|g,t)`` and likewise ``ACRT(d)``,
  ``ATT^o`` and ``ACRT^o``, with ``w_gt = pi_g / K_g``: the cohort's share ``pi_g`` among the
  treated cohorts (weighted unit counts) split equally over its ``K_g`` estimated
  post-treatment cells (``cont_did``'s ``overall_weights``; R ``did`` "group" aggregation).
  Dropped cells are skipped (the cohort's share is spread over its remaining cells; a
  cohort without any is left out and the shares renormalised).
* ``aggregation="eventstudy"``: ``ATT^o(e)`` / ``ACRT^o(e)`` = cohort-share weighted means of
  the cells with ``t - g = e`` (R ``did`` "dynamic").

The influence functions include the estimation of the cohort shares (R ``did``'s ``wif``):
for shares ``pi_g = p_g / sum_h p_h``, ``p_g = (1/n) sum_i w_i 1{G_i = g}``,
``IF(pi_g)_i = (w_i 1{G_i=g} - p_g) / S - p_g sum_h (w_i 1{G_i=h} - p_h) / S^2``, ``S = sum_h p_h``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .cell_fits import CellFits
from .cells import CellDesign
from .panel import DosePanel


def cohort_shares(
    panel: DosePanel, cohorts: np.ndarray, member: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(pi, IF(pi))``: shares of ``cohorts`` among themselves (units restricted to
    ``member`` if given) and their (n x K) influence functions."""
    ind = panel.cohort[:, None] == np.asarray(cohorts)[None, :]
    if member is not None:
        ind &= member[:, None]
    wi = panel.w[:, None] * ind
    p = wi.mean(axis=0)
    S = p.sum()
    dev = wi - p
    psi = dev / S - np.outer(dev.sum(axis=1), p / S**2)
    return p / S, psi


def dose_weights(
    panel: DosePanel, design: CellDesign, use: np.ndarray | None = None, member: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(omega, cohorts, pi, IF(pi))`` of the dose aggregation: cell weights (C,) that are
    ``pi_g / K_g`` on the used cells (default: the estimated post-treatment cells) and 0
    elsewhere; shares among the units in ``member`` if given."""
    if use is None:
        use = design.post & ~design.dropped & ~design.universal_base
    cohorts = np.unique(design.g[use])
    if len(cohorts) == 0:
        raise ValueError("no post-treatment cell could be estimated")
    pi, psi = cohort_shares(panel, cohorts, member)
    omega = np.zeros(design.n_cells)
    for j, g in enumerate(cohorts):  # loop over cohorts
        sel = use & (design.g == g)
        omega[sel] = pi[j] / sel.sum()
    return omega, cohorts, pi, psi


@dataclass
class DoseAggregate:
    """Dose aggregation: curves on the grid, overall parameters and influence functions."""

    att_d: np.ndarray
    acrt_d: np.ndarray
    att_o: float
    acrt_o: float
    if_att_d: np.ndarray  # (n x m)
    if_acrt_d: np.ndarray
    if_att_o: np.ndarray  # (n,)
    if_acrt_o: np.ndarray
    omega: np.ndarray  # (C,)
    cohorts: np.ndarray
    pi: np.ndarray


def aggregate_dose(panel: DosePanel, design: CellDesign, fits: CellFits, grid: np.ndarray) -> DoseAggregate:
    """ATT(d), ACRT(d) on ``grid``, ATT^o and ACRT^o (see the module docstring)."""
    n, m = panel.n, len(grid)
    omega, cohorts, pi, psi = dose_weights(panel, design)
    att_d = np.zeros(m)
    acrt_d = np.zeros(m)
    if_att_d = np.zeros((n, m))
    if_acrt_d = np.zeros((n, m))
    bar_att = np.zeros((len(cohorts), m))
    bar_acrt = np.zeros((len(cohorts), m))
    for j, g in enumerate(cohorts):
        cf = fits.cohorts[int(g)]
        wk = omega[cf.cells]
        Xg, dXg = cf.grid_design(grid, fits.degree)
        curves = cf.beta @ Xg.T - design.m[cf.cells][:, None]  # (K x m) ATT(d|g,t)
        slopes = cf.beta @ dXg.T
        a, s = wk @ curves, wk @ slopes
        att_d += a
        acrt_d += s
        bar_att[j] = a / pi[j]
        bar_acrt[j] = s / pi[j]
        H = np.einsum("k,kpq,iq,ik->ip", wk, cf.Ainv, cf.X, cf.WVe)  # sum_k w_k IF(beta_k)
        if_att_d[cf.units] += H @ Xg.T
        if_acrt_d[cf.units] += H @ dXg.T
    if_att_d -= (fits.if_comp @ omega)[:, None]
    if_att_d += psi @ bar_att
    if_acrt_d += psi @ bar_acrt
    on = omega > 0
    att_c = np.where(on, fits.att_o, 0.0)
    acrt_c = np.where(on, fits.acrt_o, 0.0)
    bar_o = np.array([[att_c[design.g == g] @ omega[design.g == g], acrt_c[design.g == g] @ omega[design.g == g]]
                      for g in cohorts]) / pi[:, None]
    if_att_o = fits.if_att_o @ omega + psi @ bar_o[:, 0]
    if_acrt_o = fits.if_acrt_o @ omega + psi @ bar_o[:, 1]
    return DoseAggregate(att_d=att_d, acrt_d=acrt_d, att_o=float(att_c @ omega), acrt_o=float(acrt_c @ omega),
                         if_att_d=if_att_d, if_acrt_d=if_acrt_d, if_att_o=if_att_o, if_acrt_o=if_acrt_o,
                         omega=omega, cohorts=cohorts, pi=pi)


@dataclass
class EventAggregate:
    """Event-study aggregation of ATT^o(g,t) and ACRT^o(g,t)."""

    event_time: np.ndarray
    att: np.ndarray
    acrt: np.ndarray
    if_att: np.ndarray  # (n x E)
    if_acrt: np.ndarray
    n_cohorts: np.ndarray
    n_treated: np.ndarray
    base: np.ndarray  # the universal base period (estimate 0 by construction)


def aggregate_event(panel: DosePanel, design: CellDesign, fits: CellFits,
                    window: tuple[int, int] | None) -> EventAggregate:
    """ATT^o(e), ACRT^o(e) for the event times in ``window`` (inclusive)."""
    est = ~design.dropped & ~design.universal_base
    avail = est | design.universal_base
    ev = np.unique(design.event_time[avail])
    if window is not None:
        ev = ev[(ev >= window[0]) & (ev <= window[1])]
    n, E = panel.n, len(ev)
    att, acrt = np.full(E, np.nan), np.full(E, np.nan)
    if_att, if_acrt = np.zeros((n, E)), np.zeros((n, E))
    n_coh = np.zeros(E, dtype=np.int64)
    n_tr = np.zeros(E, dtype=np.int64)
    base = np.zeros(E, dtype=bool)
    for j, e in enumerate(ev):  # loop over event times
        cells = np.flatnonzero(avail & (design.event_time == e))
        n_coh[j] = len(cells)
        if design.universal_base[cells].all():
            att[j] = acrt[j] = 0.0
            base[j] = True
            continue
        cells = cells[~design.universal_base[cells]]
        n_tr[j] = fits.n_treated[cells].sum()
        pi, psi = cohort_shares(panel, design.g[cells])
        att[j] = pi @ fits.att_o[cells]
        acrt[j] = pi @ fits.acrt_o[cells]
        if_att[:, j] = fits.if_att_o[:, cells] @ pi + psi @ fits.att_o[cells]
        if_acrt[:, j] = fits.if_acrt_o[:, cells] @ pi + psi @ fits.acrt_o[cells]
    return EventAggregate(event_time=ev, att=att, acrt=acrt, if_att=if_att, if_acrt=if_acrt,
                          n_cohorts=n_coh, n_treated=n_tr, base=base)
