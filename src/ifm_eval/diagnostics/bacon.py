"""Goodman-Bacon decomposition of the static two-way fixed-effects coefficient.

Estimand: the coefficient ``beta`` of ``y_it = a_i + l_t + beta D_it + e_it`` (least squares,
optionally weighted) on a balanced panel with staggered adoption, ``D_it = 1{t >= g_i}``.
Goodman-Bacon (2021, Theorem 1) shows that ``beta = sum_j s_j beta_j``: a weighted average
of every 2x2 difference-in-differences ``beta_j`` between two timing groups over the
periods where exactly one of them changes treatment status, with weights ``s_j >= 0``
summing to one that are proportional to the squared subsample size times the variance
of the two-way demeaned treatment in the subsample:

* ``earlier_vs_later``: group k (treated at k) vs a later group l, periods ``t < l`` (l
  still untreated);
* ``later_vs_earlier``: group l vs the earlier group k, periods ``t >= k`` (k already
  treated: its outcome changes absorb k's dynamic effects -- the "forbidden" comparison);
* ``later_vs_always``: a timing group vs units treated in every period (all periods); the
  same structure as ``later_vs_earlier`` with k before the panel (R ``bacondecomp``:
  "Later vs Always Treated");
* ``treated_vs_untreated``: a timing group vs the never treated (all periods).

Always- vs never-treated units have no variation in ``D`` between them and form no
comparison. Here every 2x2 is computed from the group x period means, which is exact
for a balanced panel (the two-way demeaned treatment is constant within a group and
period); its estimate equals the TWFE coefficient of the two groups' subsample.

Weights: with time-invariant unit weights ``w_i`` (e.g. population) the weighted TWFE
decomposes in the same way, with group shares replaced by weight shares (a unit of weight
2 is two units of weight 1); that case is implemented and exact. Time-varying weights
break the decomposition (weighted demeaning no longer separates into unit and period
means) and raise ``NotImplementedError``.

Cohort coding: the ``cohort`` column holds the first treated period; missing, 0 and
+/-infinity mean never treated (the package's convention, as
:func:`ifm_eval.estimators.design.prepare_panel`), as do cohorts after the last period.
Cohorts at or before the first period are always treated. A cohort between observed
periods is treated from the next observed period on; groups are labelled by that first
treated period.

Reference: Goodman-Bacon, A. (2021). Difference-in-differences with variation in treatment
timing. Journal of Econometrics 225(2), 254-277. R implementation: ``bacondecomp::bacon``
(Flack & Jee), whose type labels map to ours as "Earlier vs Later Treated" ->
``earlier_vs_later``, "Later vs Earlier Treated" -> ``later_vs_earlier``, "Later vs Always
Treated" -> ``later_vs_always``, "Treated vs Untreated" -> ``treated_vs_untreated``.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["ALWAYS", "NEVER", "TYPES", "bacon_decomposition", "bacon_summary"]

NEVER, ALWAYS = "never", "always"
TYPES = ("earlier_vs_later", "later_vs_earlier", "later_vs_always", "treated_vs_untreated")
_MAX_NAMED = 10


@dataclass(frozen=True)
class _Groups:
    """Timing groups of a balanced panel: first treated period (``inf`` = never,
    ``periods[0]`` = always), sum of unit weights, units, treatment and weighted mean
    outcome by group (rows) and period (columns)."""

    start: np.ndarray
    weight: np.ndarray
    n_units: np.ndarray
    D: np.ndarray
    Y: np.ndarray
    periods: np.ndarray


# ----------------------------------------------------------------------- input checks
def _named(units: pd.Index | np.ndarray) -> str:
    u = list(units)
    more = f" and {len(u) - _MAX_NAMED} more" if len(u) > _MAX_NAMED else ""
    return f"{u[:_MAX_NAMED]}{more}"


def _frame(data: pd.DataFrame, outcome: str, unit: str, time: str, cohort: str,
           weights: str | None) -> pd.DataFrame:
    cols = [outcome, unit, time, cohort] + ([weights] if weights else [])
    missing = [c for c in cols if c not in data.columns]
    if missing:
        raise KeyError(f"column(s) not in the data: {missing}")
    df = pd.DataFrame({
        "u": data[unit].to_numpy(), "t": pd.to_numeric(data[time]).to_numpy(dtype=float),
        "y": pd.to_numeric(data[outcome], errors="coerce").to_numpy(dtype=float),
        "g": pd.to_numeric(data[cohort], errors="coerce").to_numpy(dtype=float),
        "w": pd.to_numeric(data[weights], errors="coerce").to_numpy(dtype=float) if weights else 1.0,
    })
    if df["u"].isna().any() or df["t"].isna().any():
        raise ValueError("unit and time must not be missing")
    return df


def _check_balanced(df: pd.DataFrame) -> np.ndarray:
    """Sorted periods; ValueError naming the units without exactly one row with an
    observed outcome in every period."""
    periods = np.sort(df["t"].unique())
    ok_rows = np.isfinite(df["y"].to_numpy())
    counts = df[ok_rows].groupby("u", sort=True)["t"].agg(["size", "nunique"])
    counts = counts.reindex(pd.unique(df["u"]), fill_value=0)
    bad = counts.index[(counts["size"] != len(periods)) | (counts["nunique"] != len(periods))]
    if len(bad):
        raise ValueError(
            f"bacon_decomposition needs a balanced panel: unit(s) {_named(bad)} "
            f"({len(bad)} of {len(counts)}) do not have exactly one row with an observed "
            f"outcome in each of the {len(periods)} periods")
    return periods


def _varying_units(df: pd.DataFrame, col: str) -> pd.Index:
    """Units in which ``col`` takes more than one value."""
    n = df.groupby("u", sort=True)[col].nunique()
    return n.index[n > 1]


def _check_cohorts(df: pd.DataFrame) -> None:
    bad = _varying_units(df, "s")
    if len(bad):
        raise ValueError(f"cohort varies within unit(s) {_named(bad)}")


def _check_weights(df: pd.DataFrame) -> None:
    w = df["w"].to_numpy()
    ok = np.isfinite(w) & (w > 0)
    if not ok.all():
        bad = pd.unique(df.loc[~ok, "u"])
        raise ValueError(f"weights must be positive and finite; not so for unit(s) {_named(bad)}")
    bad = _varying_units(df, "w")
    if len(bad):
        raise NotImplementedError(
            "the Goodman-Bacon decomposition of weighted TWFE holds for time-invariant unit "
            f"weights only; weights vary within unit(s) {_named(bad)}")


def _first_treated(g: np.ndarray, periods: np.ndarray) -> np.ndarray:
    """First observed treated period per cohort value (``inf`` = never treated)."""
    never = ~np.isfinite(g) | (g == 0) | (g > periods[-1])
    idx = np.searchsorted(periods, np.where(never, periods[-1], g), side="left")
    return np.where(never, np.inf, periods[np.minimum(idx, len(periods) - 1)])


# ------------------------------------------------------------------------ group means
def _groups(df: pd.DataFrame, periods: np.ndarray) -> _Groups:
    """Collapse the (checked) frame with first treated period ``s`` to timing groups."""
    start_u = df.groupby("u", sort=False)["s"].first()
    starts = np.sort(start_u.unique())
    gi = np.searchsorted(starts, df["s"].to_numpy())
    ti = np.searchsorted(periods, df["t"].to_numpy())
    n_g, n_t = len(starts), len(periods)
    w = df["w"].to_numpy()
    W_gt = np.zeros((n_g, n_t))
    Y_gt = np.zeros((n_g, n_t))
    np.add.at(W_gt, (gi, ti), w)
    np.add.at(Y_gt, (gi, ti), w * df["y"].to_numpy())
    D = (periods[None, :] >= starts[:, None]).astype(float)
    weight = W_gt[:, 0]  # balanced, time-invariant weights: the same in every period
    n_units = np.bincount(np.searchsorted(starts, start_u.to_numpy()), minlength=n_g)
    return _Groups(starts, weight, n_units, D, Y_gt / W_gt, periods)


def _demean(D: np.ndarray, W: np.ndarray) -> np.ndarray:
    """Two-way demeaned ``D`` (groups x periods, balanced) with group weights ``W``."""
    wsum = W.sum()
    return D - D.mean(axis=1, keepdims=True) - (W @ D / wsum)[None, :] + W @ D.mean(axis=1) / wsum


def _two_by_two(G: _Groups, rows: list[int], cols: np.ndarray) -> tuple[float, float, float]:
    """(2x2 TWFE estimate, sum of w * Dtilde^2, total weight) of a subsample."""
    D, W, Y = G.D[np.ix_(rows, cols)], G.weight[rows], G.Y[np.ix_(rows, cols)]
    Dt = _demean(D, W)
    den = float(W @ (Dt**2).sum(axis=1))
    num = float(W @ (Dt * Y).sum(axis=1))
    return (num / den if den > 0 else np.nan), den, float(W.sum() * cols.sum())


# ---------------------------------------------------------------------------- pairs
def _number(x: float) -> int | float:
    return int(x) if float(x).is_integer() else float(x)


def _label(start: float, first: float) -> Hashable:
    if not np.isfinite(start):
        return NEVER
    return ALWAYS if start <= first else _number(start)


def _comparisons(G: _Groups) -> list[tuple[int, int, str, np.ndarray]]:
    """(treated group, comparison group, type, period mask) of every 2x2 with variation."""
    t, first = G.periods, G.periods[0]
    timing = [i for i, s in enumerate(G.start) if np.isfinite(s) and s > first]
    out = []
    for i in timing:
        for j, s in enumerate(G.start):
            if j == i:
                continue
            if not np.isfinite(s):
                out.append((i, j, "treated_vs_untreated", np.ones(len(t), bool)))
            elif s <= first:
                out.append((i, j, "later_vs_always", np.ones(len(t), bool)))
            elif G.start[i] < s:
                out.append((i, j, "earlier_vs_later", t < s))
            else:
                out.append((i, j, "later_vs_earlier", t >= s))
    return out


def bacon_decomposition(data: pd.DataFrame, outcome: str, unit: str, time: str, cohort: str,
                        weights: str | None = None) -> pd.DataFrame:
    """Goodman-Bacon (2021) decomposition of the static TWFE coefficient (module doc).

    ``data``: a balanced panel (one row per unit and period, outcome observed everywhere;
    otherwise ValueError naming the units); ``cohort``: first treated period (missing, 0,
    +/-inf or after the last period = never treated); ``weights``: optional time-invariant
    unit weights (weighted TWFE; time-varying weights raise NotImplementedError).

    Returns one row per 2x2 comparison: ``treated`` and ``comparison`` (first treated
    period; ``"never"`` / ``"always"``), ``type`` (:data:`TYPES`), ``weight`` (sums to 1),
    ``estimate``, ``n_treated`` / ``n_comparison`` (units), ``period_start`` /
    ``period_end`` (the subsample's periods). ``sum(weight * estimate)`` is the TWFE
    coefficient ``y ~ D | unit + time``, also in ``attrs["twfe"]``.
    """
    df = _frame(data, outcome, unit, time, cohort, weights)
    periods = _check_balanced(df)
    df["s"] = _first_treated(df["g"].to_numpy(), periods)
    _check_cohorts(df)
    _check_weights(df)
    G = _groups(df, periods)
    full = _demean(G.D, G.weight)
    den_full = float(G.weight @ (full**2).sum(axis=1))
    if den_full <= 0:
        raise ValueError("no variation in treatment timing: the TWFE coefficient is not identified")
    w_full = float(G.weight.sum() * len(periods))
    rows = []
    for i, j, kind, cols in _comparisons(G):
        est, den, w_sub = _two_by_two(G, [i, j], cols)
        if den <= 0:
            continue
        rows.append({"treated": _label(G.start[i], periods[0]), "comparison": _label(G.start[j], periods[0]),
                     "type": kind, "weight": (w_sub / w_full) * den / den_full, "estimate": est,
                     "n_treated": int(G.n_units[i]), "n_comparison": int(G.n_units[j]),
                     "period_start": _number(periods[cols][0]),
                     "period_end": _number(periods[cols][-1])})
    out = pd.DataFrame(rows)
    out.attrs["twfe"] = float(G.weight @ (full * G.Y).sum(axis=1) / den_full)
    return out


def bacon_summary(decomposition: pd.DataFrame) -> pd.DataFrame:
    """Total weight and weighted mean estimate by comparison type (as R
    ``bacondecomp::bacon_summary``: columns ``type``, ``weight``, ``avg_est``)."""
    d = decomposition.assign(_we=decomposition["weight"] * decomposition["estimate"])
    g = d.groupby("type", sort=True)[["weight", "_we"]].sum()
    return pd.DataFrame({"type": g.index, "weight": g["weight"].to_numpy(),
                         "avg_est": (g["_we"] / g["weight"]).to_numpy()})
