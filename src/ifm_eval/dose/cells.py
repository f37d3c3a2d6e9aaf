"""The (g,t) cells of the staggered continuous-treatment DiD and their comparison groups.

For every treated cohort ``g`` and period ``t`` the cell compares the outcome change
``dY_i = Y_it - Y_ib`` between the base period ``b`` and ``t``:

* base period (R ``did`` / ``cont_did``): ``"varying"`` — pre-treatment cells
  (``t < g - anticipation``) use the previous period, the others the last period ``b_g``
  with ``b_g + anticipation < g``; ``"universal"`` — always ``b_g`` (the cell ``t = b_g``
  is reported with estimate 0 and no standard error);
* comparison units: ``"never_treated"`` — cohort 0; ``"not_yet_treated"`` — cohort 0 or a
  cohort later than ``max(t, b) + anticipation`` (other than ``g``), i.e. untreated in
  both periods of the cell;
* missing outcomes: a cell uses the units observed in both ``t`` and ``b`` (the 2x2
  comparison must be balanced; R ``did`` with ``allow_unbalanced_panel = FALSE`` instead
  drops every unit that misses any period — identical on balanced panels);
* a cell with fewer than ``min_comparison_units`` comparison units is dropped.

The comparison mean ``m(g,t) = sum_C w_i dY_i / sum_C w_i`` and its influence function
(full-sample scale: ``theta_hat - theta ~ (1/n) sum_i IF_i``)
``IF_i = w_i (dY_i - m) / p_C`` for comparison units, ``p_C = (1/n) sum_C w_i``, are
computed here for all cells at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .panel import DosePanel

CONTROL_GROUPS = ("not_yet_treated", "never_treated")
BASE_PERIODS = ("varying", "universal")


@dataclass
class CellDesign:
    """All (g,t) cells (columns) with their outcome changes and comparison groups."""

    g: np.ndarray  # (C,) cohort
    t: np.ndarray  # (C,) period
    b: np.ndarray  # (C,) base period
    t_idx: np.ndarray
    b_idx: np.ndarray
    event_time: np.ndarray  # t - g
    post: np.ndarray  # t >= g
    universal_base: np.ndarray  # t == b (universal base period): estimate 0 by construction
    dY: np.ndarray  # (n x C) Y_t - Y_b, 0 where not observed in both periods
    valid: np.ndarray  # (n x C) observed in both periods
    comp: np.ndarray  # (n x C) comparison unit of the cell (and valid)
    n_comp: np.ndarray  # (C,)
    m: np.ndarray  # (C,) weighted comparison mean of dY
    p_comp: np.ndarray  # (C,) (1/n) sum_C w
    dropped: np.ndarray  # (C,) bool
    reason: np.ndarray  # (C,) object: "" or why the cell is dropped

    @property
    def n_cells(self) -> int:
        return len(self.g)

    def comparison_if(self, w: np.ndarray, cols: np.ndarray | None = None) -> np.ndarray:
        """(n x C) influence functions of the comparison means (0 outside the comparison
        sets and for dropped cells)."""
        cols = np.arange(self.n_cells) if cols is None else cols
        comp = self.comp[:, cols]
        p = self.p_comp[cols]
        with np.errstate(invalid="ignore", divide="ignore"):
            out = (self.dY[:, cols] - self.m[cols]) * (w[:, None] / np.where(p > 0, p, np.inf))
        out *= comp
        out[:, self.dropped[cols] | self.universal_base[cols]] = 0.0
        return out


def build_cells(
    panel: DosePanel,
    *,
    control_group: str = "not_yet_treated",
    base_period: str = "varying",
    anticipation: int = 0,
    min_comparison_units: int = 30,
) -> CellDesign:
    """Enumerate the cells, their base periods, outcome changes and comparison means."""
    if control_group not in CONTROL_GROUPS:
        raise ValueError(f"control_group must be one of {CONTROL_GROUPS}, got {control_group!r}")
    if base_period not in BASE_PERIODS:
        raise ValueError(f"base_period must be one of {BASE_PERIODS}, got {base_period!r}")
    periods = panel.periods
    T = len(periods)
    cohorts = np.unique(panel.cohort[panel.cohort > 0])
    g_l, t_l, b_l = [], [], []
    for g in cohorts:  # loop over cohorts (tens), not units
        pret = int(np.flatnonzero(periods + anticipation < g)[-1])
        if base_period == "varying":
            k = np.arange(1, T)
            b = np.where(periods[k] < g - anticipation, k - 1, pret)
        else:
            k = np.arange(T)
            b = np.full(T, pret)
        g_l.append(np.full(len(k), g))
        t_l.append(k)
        b_l.append(b)
    if not g_l:
        raise ValueError("no treated cohort in the estimation sample")
    g = np.concatenate(g_l).astype(np.int64)
    t_idx = np.concatenate(t_l).astype(np.int64)
    b_idx = np.concatenate(b_l).astype(np.int64)
    t = periods[t_idx]
    b = periods[b_idx]
    ubase = t_idx == b_idx

    Y = panel.Y
    dY = Y[:, t_idx] - Y[:, b_idx]
    valid = np.isfinite(dY)
    dY[~valid] = 0.0
    G = panel.cohort
    if control_group == "never_treated":
        comp = np.broadcast_to((G == 0)[:, None], dY.shape).copy()
    else:
        thr = np.maximum(t, b) + anticipation
        comp = (G[:, None] == 0) | ((G[:, None] > thr[None, :]) & (G[:, None] != g[None, :]))
    comp &= valid
    n_comp = comp.sum(axis=0)
    w = panel.w
    sw = w @ comp
    with np.errstate(invalid="ignore", divide="ignore"):
        m = (w @ (comp * dY)) / sw
    p_comp = sw / panel.n
    reason = np.full(len(g), "", dtype=object)
    few = (n_comp < max(int(min_comparison_units), 1)) & ~ubase
    reason[few] = "few_comparison_units"
    m[few] = np.nan
    return CellDesign(
        g=g, t=t, b=b, t_idx=t_idx, b_idx=b_idx, event_time=t - g, post=t >= g, universal_base=ubase,
        dY=dY, valid=valid, comp=comp, n_comp=n_comp, m=m, p_comp=p_comp, dropped=few.copy(), reason=reason,
    )
