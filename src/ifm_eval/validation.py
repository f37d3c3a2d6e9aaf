"""Matched planted truth of the stand-in data: what each estimate SHOULD equal.

The stand-in generator (:mod:`ifm_eval.synth`) writes, per municipality and month, the
observed stocks and the stocks of the untreated counterfactual path (common random
numbers), ``truth_counts.parquet``. The true effect of a municipality-month cell on a rate
is therefore known exactly::

    tau_it = (Y_it(1) - Y_it(0)) = (stock_it - stock_cf_it) / refugees_it * 100   [pp]

with the stocks of the panel's rates (see :data:`OUTCOME_STOCKS`; the panel's masked cells
are the only difference between its numerators and the observed stocks, and they cancel:
``tau`` uses the synthetic stocks on both sides).

An estimator targets a weighted mean of ``tau_it`` over the treated observations it uses,
which is NOT the unit-weighted all-municipality path of ``truth.json``: the main
specifications weight municipalities by their 2017 refugee stock, start in 2016-01, and
each estimator drops cells (no comparison units, overlap violations, outside the event
window, unbalanced units for Callaway & Sant'Anna). Every estimator therefore reports the
treated observations it averaged over (``EstimateResult.used``, written by the ``estimate``
job as ``data/processed/estimates/<model>_used.parquet``) and how its headline aggregates
them (``info["headline"]``); :func:`matched_truth` averages ``tau`` over exactly those
observations with their weights — it does not re-implement any estimator's selection:

* event-time path: weighted mean of ``tau`` over the used treated observations at each
  event time ``e`` (for Callaway & Sant'Anna this equals the cohort-size weighted mean of
  the cell ATT(g, g+e), as its ``dynamic`` aggregation);
* overall, for the estimator's headline aggregate (``term``):

  - ``event_time_mean`` (Callaway & Sant'Anna and TWFE dynamic, term ``dynamic``): the
    unweighted mean of the matched path over the post event times the model reports;
  - ``observations`` (term ``att`` of Sun & Abraham, imputation, Gardner): the weighted
    mean over the used observations flagged ``headline`` (imputation: ``0 <= e <=
    max(window)``; Sun & Abraham: its post cells inside the window; Gardner: every
    imputable treated observation, as its static second stage);
  - ``att`` of the static TWFE: weighted mean over all its post-treatment observations
    (the coefficient itself is not a convex average of them; the difference is its bias).

This is the single implementation used by the tests (``tests/test_runner.py``), the
Monte Carlo, the truth-comparison table, the report and the event-study truth overlay.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

#: panel rate -> (observed stocks, counterfactual stocks) in ``truth_counts.parquet``;
#: the same numerators as the panel (``panel.py``): employed = SvB, in_training =
#: Ausbildung + Weiterbildung, b1_holders = B1; denominator: refugees in AU.
OUTCOME_STOCKS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "rate_employment": (("svb",), ("svb_cf",)),
    "rate_training": (("ausbildung", "weiterbildung"), ("ausbildung_cf", "weiterbildung_cf")),
    "rate_language": (("b1",), ("b1_cf",)),
}

UNIT, TIME = "ags", "t"


def tau_column(outcome: str) -> str:
    return f"tau_{outcome}"


def cf_column(outcome: str) -> str:
    """Counterfactual (untreated) rate of ``outcome`` (pp)."""
    return f"cf_{outcome}"


def cell_effects(panel: pd.DataFrame, truth_counts: pd.DataFrame) -> pd.DataFrame:
    """The panel with, per outcome of :data:`OUTCOME_STOCKS`, the true cell effect
    ``tau_<outcome>`` and the counterfactual rate ``cf_<outcome>`` (pp; NaN without
    refugees). Joined on municipality and month (``truth_counts.month`` is ``YYYY-MM``)."""
    tc = truth_counts.copy()
    tc["_m"] = tc["month"].astype(str).str[:7]
    if "month" in panel.columns:
        key = pd.to_datetime(panel["month"]).dt.strftime("%Y-%m")
    else:  # t = 1 is the first month of truth_counts
        first = pd.Period(tc["_m"].min(), "M")
        key = pd.Series([str(first + int(t) - 1) for t in panel[TIME]], index=panel.index)
    stocks = sorted({c for obs, cf in OUTCOME_STOCKS.values() for c in (*obs, *cf)})
    right = tc[["ags", "_m", "refugees", *stocks]].rename(columns={"refugees": "_ref"})
    d = panel.assign(_m=key.to_numpy()).merge(right, on=["ags", "_m"], how="left", validate="many_to_one")
    ref = d["_ref"].where(d["_ref"] > 0).astype(float)
    for outcome, (obs, cf) in OUTCOME_STOCKS.items():
        y1 = d[list(obs)].sum(axis=1, min_count=len(obs)).astype(float)
        y0 = d[list(cf)].sum(axis=1, min_count=len(cf)).astype(float)
        d[tau_column(outcome)] = (y1 - y0) / ref * 100.0
        d[cf_column(outcome)] = y0 / ref * 100.0
    d = d.drop(columns=["_m", "_ref", *stocks])
    d.index = panel.index
    return d


def _wmean(d: pd.DataFrame) -> float:
    d = d[np.isfinite(d["tau"])]
    return float((d["w"] * d["tau"]).sum() / d["w"].sum()) if len(d) and d["w"].sum() > 0 else float("nan")


def headline_term(rows: pd.DataFrame) -> str | None:
    """The overall aggregate reported as a model's headline: ``dynamic`` (mean of the
    event-time effects in the event window) where the estimator reports it, else ``att``."""
    terms = rows.loc[rows["kind"] == "overall", "term"].dropna().astype(str).tolist()
    for t in ("dynamic", "att"):
        if t in terms:
            return t
    return terms[0] if terms else None


@dataclass
class MatchedTruth:
    """Matched truth of one model: ``path`` (index event time; columns ``truth``,
    ``n_units``, ``n_obs``) and the truth of the overall aggregate ``term``."""

    path: pd.DataFrame
    term: str | None
    overall: float | None
    aggregation: str  # "dynamic" (mean of the path) | "treated_obs" (weighted mean of observations)
    event_min: int | None
    event_max: int | None
    n_obs: int


def matched_truth(cells: pd.DataFrame, outcome: str, used: pd.DataFrame,
                  headline: dict[str, Any] | None) -> MatchedTruth:
    """Planted truth matched to one estimate from the treated observations it used.

    ``cells``: :func:`cell_effects` of the panel; ``outcome``: the rate; ``used``: the
    estimate's used treated observations (``unit, time, event_time, weight, headline``, see
    :func:`ifm_eval.estimators.design.used_frame`); ``headline``: its
    ``info["headline"]``. The path is the weighted mean of the true cell effects by event
    time; the headline either the mean of that path over ``headline["event_times"]``
    (``aggregation: event_time_mean``) or the weighted mean over the rows flagged
    ``headline`` (``observations``)."""
    tcol = tau_column(outcome)
    if tcol not in cells:
        raise KeyError(f"no true cell effects for {outcome!r} (outcomes: {sorted(OUTCOME_STOCKS)})")
    tau = cells[[UNIT, TIME, tcol]].rename(columns={UNIT: "unit", TIME: "time", tcol: "tau"})
    tau["unit"] = tau["unit"].astype("str")
    u = used.assign(unit=used["unit"].astype("str"), time=used["time"].astype("int64"))
    d = u.merge(tau.assign(time=tau["time"].astype("int64")), on=["unit", "time"], how="left",
                validate="many_to_one").rename(columns={UNIT: "unit", "weight": "w"})
    d = d.assign(e=d["event_time"])
    p = d[d["e"].notna() & np.isfinite(d["tau"])]
    grp = p.groupby("e")
    path = pd.DataFrame({
        "truth": grp.apply(_wmean, include_groups=False) if len(p) else pd.Series(dtype=float),
        "n_units": grp["unit"].nunique(), "n_obs": grp.size(),
    }).sort_index()
    path.index = path.index.astype(int)
    path.index.name = "event_time"
    headline = headline or {}
    term, agg = headline.get("term"), headline.get("aggregation", "observations")
    overall, e_sel, n = None, [], 0
    if agg == "event_time_mean":
        e_sel = sorted({int(e) for e in headline.get("event_times", [])} & set(path.index))
        if e_sel:
            overall = float(path.loc[e_sel, "truth"].mean())
            n = int(path.loc[e_sel, "n_obs"].sum())
        agg_name = "dynamic"
    else:
        post = d[d["headline"].astype(bool)]
        if len(post):
            overall = _wmean(post)
            e_sel = sorted({int(e) for e in (post["time"] - post["cohort"])})
            n = len(post)
        agg_name = "treated_obs"
    return MatchedTruth(path, term, overall, agg_name, min(e_sel) if e_sel else None,
                        max(e_sel) if e_sel else None, n)


def load_cell_effects(panel: pd.DataFrame, truth_counts: str | Path) -> pd.DataFrame:
    """:func:`cell_effects` of a stand-in run: the panel and its ``truth_counts.parquet``."""
    return cell_effects(panel, pd.read_parquet(truth_counts))


#: the former name, kept for callers of the Monte Carlo code
truth_of_used = matched_truth
