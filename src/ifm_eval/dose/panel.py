"""Validation and reshaping of the long panel for the continuous-treatment DiD.

:func:`prepare_dose_panel` turns a long panel (one row per unit and integer period) into
unit-level arrays and an (n_units x n_periods) outcome matrix (NaN = not observed), and
checks the inputs; every error names the offending column.

Sample rules (as R ``did`` / ``cont_did``):

* cohort ``g`` = first treated period, 0 or missing = never treated, constant within unit;
  cohorts after the last period (+ ``anticipation``) are recoded never treated; units
  treated in the first period (+ ``anticipation``) have no untreated base period and are
  dropped;
* the dose must be present, constant within unit and > 0 for every treated unit (the dose
  of never-treated units is ignored);
* unit weights must be finite, >= 0 and constant within unit; they are normalised to mean
  one; units with weight 0 are dropped (this changes no estimate and no standard error);
* the cluster variable must be present and constant within unit; ``cluster=None`` means
  one cluster per unit;
* missing outcomes are kept as NaN: each (g,t) cell uses the units observed in both of its
  periods (see :mod:`ifm_eval.dose.cells`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass
class DosePanel:
    """Unit-level arrays of the estimation sample (rows = units, in ``units`` order)."""

    units: np.ndarray  # unit labels
    periods: np.ndarray  # sorted integer periods (columns of Y)
    Y: np.ndarray  # (n x T) outcome, NaN = not observed
    cohort: np.ndarray  # (n,) first treated period, 0 = never treated
    dose: np.ndarray  # (n,) dose, NaN for never-treated units
    w: np.ndarray  # (n,) weights normalised to mean 1
    cluster_codes: np.ndarray  # (n,) 0..G-1
    cluster_labels: np.ndarray  # (G,)
    notes: list[str] = field(default_factory=list)
    n_dropped_early: int = 0
    n_dropped_zero_weight: int = 0

    @property
    def n(self) -> int:
        return len(self.units)

    @property
    def n_clusters(self) -> int:
        return len(self.cluster_labels)

    @property
    def treated(self) -> np.ndarray:
        return self.cohort > 0


def _need(data: pd.DataFrame, col: str | None, role: str) -> None:
    if col is None:
        raise ValueError(f"the {role} column must be given")
    if col not in data.columns:
        raise ValueError(f"column {col!r} ({role}) not found in data")


def _numeric(s: pd.Series, col: str, role: str) -> np.ndarray:
    try:
        return pd.to_numeric(s, errors="raise").to_numpy(dtype=float, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"column {col!r} ({role}) must be numeric") from exc


def _unit_constant(values: np.ndarray, codes: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per unit: (first non-missing value, any missing, max - min over non-missing)."""
    miss = ~np.isfinite(values)
    v = np.where(miss, np.nan, values)
    lo = np.full(n, np.inf)
    hi = np.full(n, -np.inf)
    ok = ~miss
    np.minimum.at(lo, codes[ok], v[ok])
    np.maximum.at(hi, codes[ok], v[ok])
    any_miss = np.bincount(codes, weights=miss.astype(float), minlength=n) > 0
    first = np.where(np.isfinite(lo), lo, np.nan)
    spread = np.where(np.isfinite(lo), hi - lo, 0.0)
    return first, any_miss, spread


def _examples(labels: np.ndarray, mask: np.ndarray, k: int = 3) -> str:
    ex = ", ".join(map(str, labels[mask][:k]))
    return ex + (", ..." if mask.sum() > k else "")


def prepare_dose_panel(
    data: pd.DataFrame,
    *,
    outcome: str,
    dose: str,
    unit: str,
    time: str,
    cohort: str,
    cluster: str | None,
    weights: str | None,
    anticipation: int = 0,
) -> DosePanel:
    """Check ``data`` and build the :class:`DosePanel` (see the module docstring)."""
    if not isinstance(data, pd.DataFrame):
        raise TypeError("data must be a pandas DataFrame")
    for col, role in ((outcome, "outcome"), (dose, "dose"), (unit, "unit"), (time, "time"), (cohort, "cohort")):
        _need(data, col, role)
    if cluster is not None:
        _need(data, cluster, "cluster")
    if weights is not None:
        _need(data, weights, "weights")
    if len(data) == 0:
        raise ValueError("data has no rows")
    if anticipation < 0 or int(anticipation) != anticipation:
        raise ValueError("anticipation must be a non-negative integer")

    ucodes, ulabels = pd.factorize(data[unit], sort=True)
    if (ucodes < 0).any():
        raise ValueError(f"column {unit!r} (unit) has missing values")
    ulabels = np.asarray(ulabels)
    n_all = len(ulabels)

    tvals = _numeric(data[time], time, "time")
    if not np.isfinite(tvals).all() or (np.mod(tvals, 1) != 0).any():
        raise ValueError(f"column {time!r} (time) must hold integer periods without missing values")
    periods = np.unique(tvals)
    tcodes = np.searchsorted(periods, tvals)
    key = ucodes.astype(np.int64) * len(periods) + tcodes
    if len(np.unique(key)) != len(key):
        raise ValueError(f"duplicate ({unit!r}, {time!r}) rows: one row per unit and period expected")

    gvals = _numeric(data[cohort], cohort, "cohort")
    gvals = np.where(np.isfinite(gvals), gvals, 0.0)
    if (np.mod(gvals, 1) != 0).any() or (gvals < 0).any():
        raise ValueError(f"column {cohort!r} (cohort) must hold integer first-treatment periods (0 = never)")
    g_unit, _, g_spread = _unit_constant(gvals, ucodes, n_all)
    if (g_spread > 0).any():
        bad = g_spread > 0
        raise ValueError(f"column {cohort!r} (cohort) is not constant within {unit!r} for {int(bad.sum())} "
                         f"unit(s), e.g. {_examples(ulabels, bad)}")
    g_unit = np.nan_to_num(g_unit, nan=0.0)

    notes: list[str] = []
    late = g_unit > periods[-1] + anticipation
    if late.any():
        notes.append(f"{int(late.sum())} unit(s) first treated after the last period (+ anticipation) are "
                     "treated as never treated")
        g_unit[late] = 0.0
    early = (g_unit > 0) & (g_unit <= periods[0] + anticipation)
    treated = g_unit > 0

    # dose: present, constant and > 0 for the treated units that are used
    dvals = _numeric(data[dose], dose, "dose")
    d_unit, d_miss, d_spread = _unit_constant(dvals, ucodes, n_all)
    use_t = treated & ~early
    bad = use_t & d_miss
    if bad.any():
        raise ValueError(f"column {dose!r} (dose) has missing values for {int(bad.sum())} treated unit(s), "
                         f"e.g. {_examples(ulabels, bad)}")
    scale = np.maximum(1.0, np.abs(np.nan_to_num(d_unit)))
    bad = use_t & (d_spread > 1e-12 * scale)
    if bad.any():
        raise ValueError(f"column {dose!r} (dose) is not constant within {unit!r} for {int(bad.sum())} treated "
                         f"unit(s), e.g. {_examples(ulabels, bad)}")
    bad = use_t & ~(d_unit > 0)
    if bad.any():
        raise ValueError(f"column {dose!r} (dose) must be > 0 for treated units; {int(bad.sum())} unit(s) are not, "
                         f"e.g. {_examples(ulabels, bad)}")

    if weights is not None:
        wvals = _numeric(data[weights], weights, "weights")
        w_unit, w_miss, w_spread = _unit_constant(wvals, ucodes, n_all)
        if w_miss.any():
            raise ValueError(f"column {weights!r} (weights) has missing or non-finite values for "
                             f"{int(w_miss.sum())} unit(s), e.g. {_examples(ulabels, w_miss)}")
        if (w_spread > 1e-12 * np.maximum(1.0, np.abs(w_unit))).any():
            b = w_spread > 1e-12 * np.maximum(1.0, np.abs(w_unit))
            raise ValueError(f"column {weights!r} (weights) is not constant within {unit!r} for {int(b.sum())} "
                             f"unit(s), e.g. {_examples(ulabels, b)}")
        if (w_unit < 0).any():
            raise ValueError(f"column {weights!r} (weights) must be >= 0")
    else:
        w_unit = np.ones(n_all)
    zero_w = w_unit == 0

    if cluster is not None:
        ccodes_rows, clabels_rows = pd.factorize(data[cluster], sort=True)
        if (ccodes_rows < 0).any():
            raise ValueError(f"column {cluster!r} (cluster) has missing values")
        c_unit, _, c_spread = _unit_constant(ccodes_rows.astype(float), ucodes, n_all)
        if (c_spread > 0).any():
            b = c_spread > 0
            raise ValueError(f"column {cluster!r} (cluster) is not constant within {unit!r} for {int(b.sum())} "
                             f"unit(s), e.g. {_examples(ulabels, b)}")
        c_unit = c_unit.astype(np.int64)
        clabels_rows = np.asarray(clabels_rows)
    else:
        c_unit = np.arange(n_all)
        clabels_rows = ulabels

    keep = ~early & ~zero_w
    if early.any():
        notes.append(f"{int(early.sum())} unit(s) treated in the first period (+ anticipation) dropped "
                     "(no untreated base period)")
    if zero_w.any():
        notes.append(f"{int(zero_w.sum())} unit(s) with weight 0 dropped")
    if not keep.any():
        raise ValueError("no units left after dropping early-treated and zero-weight units")

    ovals = _numeric(data[outcome], outcome, "outcome")
    Y = np.full((n_all, len(periods)), np.nan)
    Y[ucodes, tcodes] = ovals
    Y[~np.isfinite(Y)] = np.nan

    idx = np.flatnonzero(keep)
    cc, cinv = np.unique(c_unit[idx], return_inverse=True)
    w = w_unit[idx]
    w = w / w.mean()
    dose_u = np.where(g_unit[idx] > 0, d_unit[idx], np.nan)
    return DosePanel(
        units=ulabels[idx],
        periods=periods.astype(np.int64),
        Y=np.ascontiguousarray(Y[idx]),
        cohort=g_unit[idx].astype(np.int64),
        dose=dose_u,
        w=w,
        cluster_codes=cinv.astype(np.int64),
        cluster_labels=clabels_rows[cc],
        notes=notes,
        n_dropped_early=int(early.sum()),
        n_dropped_zero_weight=int(zero_w.sum()),
    )
