"""The planted truth of a stand-in run (``data/synthetic/truth.json``), read in ONE place.

Layout written by :mod:`ifm_eval.synth` (``effects.<outcome>``, outcomes ``language``,
``training``, ``employment``; effects in percentage points)::

    att_by_event_time            {"-49": 0.0, ..., "47": 9.3}   unit-weighted mean by event time
    att_by_event_time_weighted   {...}                          person-weighted
    n_units_by_event_time        {"-49": 4, ...}                municipalities observed at e
    att_by_cohort_event_time     {"2017-01": {"-24": 0.0, ...}} cohort -> event time -> pp
    att_overall, att_overall_weighted, att_overall_pre          all-horizon scalars

plus ``municipalities[*].start_month.<rule>`` (cohort sizes per treatment rule).

:func:`truth_for_estimate` returns the truth for the SAME aggregate an overall estimate
reports (same event times / cohort-time cells and weights), not the all-horizon
``att_overall``:

* ``dynamic`` (Callaway & Sant'Anna, TWFE dynamic): equally weighted mean of the true
  event-time path over the post event times (``e >= 0``) the model reports;
* ``att`` of Callaway & Sant'Anna (``simple``): post ATT(g,t) cells the model estimated,
  weighted by cohort size;
* ``att`` of the observation-weighted estimators (imputation, Gardner, Sun & Abraham, TWFE
  static): treated municipality-months, i.e. cohort-event-time cells weighted by cohort
  size, on the support the model reports (its ATT(g,t) cells, or its cohorts x calendar
  months within the event window; Gardner: the imputation model's support, as both use the
  same first stage; else every post cell inside the panel).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ifm_eval.outputs.targets import outcome_key

DEFAULT_PANEL_START = "2015-01"
DEFAULT_PANEL_END = "2020-12"


def _series(d: dict | None, dtype=float) -> pd.Series:
    if not d:
        return pd.Series(dtype=dtype)
    s = pd.Series({int(k): v for k, v in d.items()}, dtype=dtype)
    return s.sort_index()


@dataclass
class PlantedTruth:
    """Planted effects per outcome key, cohort sizes per treatment rule."""

    effects: dict[str, dict[str, Any]]
    cohort_sizes: dict[str, pd.Series] = field(default_factory=dict)  # rule -> Period -> n
    panel_start: pd.Period = field(default_factory=lambda: pd.Period(DEFAULT_PANEL_START, "M"))
    panel_end: pd.Period = field(default_factory=lambda: pd.Period(DEFAULT_PANEL_END, "M"))
    default_rule: str = "half_posts"

    # ----------------------------------------------------------------- accessors
    def outcomes(self) -> list[str]:
        return sorted(self.effects)

    def has(self, outcome: str) -> bool:
        return outcome_key(outcome) in self.effects

    def path(self, outcome: str, weighted: bool = False) -> pd.Series:
        """True ATT by event time (pp), index int event time."""
        e = self.effects.get(outcome_key(outcome), {})
        return _series(e.get("att_by_event_time_weighted" if weighted else "att_by_event_time"))

    def n_units(self, outcome: str) -> pd.Series:
        return _series(self.effects.get(outcome_key(outcome), {}).get("n_units_by_event_time"), float)

    def cohort_path(self, outcome: str) -> dict[pd.Period, pd.Series]:
        block = self.effects.get(outcome_key(outcome), {}).get("att_by_cohort_event_time") or {}
        return {pd.Period(c, "M"): _series(v) for c, v in block.items()}

    def overall(self, outcome: str, key: str = "att_overall") -> float | None:
        v = self.effects.get(outcome_key(outcome), {}).get(key)
        return None if v is None else float(v)

    def t_to_period(self, t: Any) -> pd.Period:
        return self.panel_start + (int(t) - 1)

    def t_end(self) -> int:
        return (self.panel_end - self.panel_start).n + 1

    def sizes(self, rule: str | None = None) -> pd.Series:
        return self.cohort_sizes.get(rule or self.default_rule, pd.Series(dtype=float))


def parse_truth(data: dict[str, Any], panel: dict[str, Any] | None = None) -> PlantedTruth | None:
    """Build :class:`PlantedTruth` from the parsed ``truth.json`` (``None`` if no effects)."""
    effects = data.get("effects") if isinstance(data, dict) else None
    if not isinstance(effects, dict) or not effects:
        return None
    effects = {outcome_key(k): v for k, v in effects.items() if isinstance(v, dict) and "att_by_event_time" in v}
    if not effects:
        return None
    sizes: dict[str, pd.Series] = {}
    for m in data.get("municipalities") or []:
        for rule, start in (m.get("start_month") or {}).items():
            if start:
                sizes.setdefault(rule, {}).setdefault(start, 0)
                sizes[rule][start] += 1
    cohort_sizes = {r: pd.Series({pd.Period(k, "M"): float(v) for k, v in d.items()}).sort_index() for r, d in sizes.items()}
    pan = {**(data.get("panel") or {}), **(panel or {})}
    return PlantedTruth(
        effects=effects,
        cohort_sizes=cohort_sizes,
        panel_start=pd.Period(pan.get("start", DEFAULT_PANEL_START), "M"),
        panel_end=pd.Period(pan.get("end", DEFAULT_PANEL_END), "M"),
        default_rule=str(data.get("treatment_rule_planted") or "half_posts"),
    )


def load_truth(cfg: dict[str, Any]) -> PlantedTruth | None:
    """The planted truth of a stand-in run; ``None`` for real data or without ``truth.json``."""
    from ifm_eval import paths as P
    from ifm_eval.outputs import style

    if not style.is_synthetic(cfg):
        return None
    p = Path(P.truth_path(cfg))
    if not p.is_file():
        return None
    return parse_truth(json.loads(p.read_text(encoding="utf-8")), cfg.get("panel"))


# ---------------------------------------------------------------------- matching
@dataclass
class TruthMatch:
    value: float
    aggregation: str  # "dynamic" | "simple" | "treated_obs"
    event_min: int | None
    event_max: int | None
    n_cells: int


def _cells_mean(truth: PlantedTruth, outcome: str, cells: list[tuple[int, int]], rule: str | None) -> tuple[float, int] | None:
    """Cohort-size weighted mean of the true ATT over (cohort t-index, event time) cells."""
    cp = truth.cohort_path(outcome)
    sizes = truth.sizes(rule)
    num = den = 0.0
    n = 0
    for g, e in cells:
        per = truth.t_to_period(g)
        path = cp.get(per)
        if path is None or int(e) not in path.index:
            continue
        w = float(sizes.get(per, 1.0)) if len(sizes) else 1.0
        num += w * float(path.loc[int(e)])
        den += w
        n += 1
    return (num / den, n) if den > 0 else None


def truth_for_estimate(
    truth: PlantedTruth | None,
    rows: pd.DataFrame,
    term: str,
    spec: dict[str, Any] | None = None,
    support: pd.DataFrame | None = None,
) -> TruthMatch | None:
    """Truth for the overall estimate ``term`` of one model (``rows``: its tidy estimate rows).

    ``support``: rows of another model whose ``group``/``calendar`` rows define the cohort x
    month support (Gardner's second stage uses the imputation model's imputable
    observations)."""
    if truth is None or rows.empty:
        return None
    outcome = str(rows["outcome"].iloc[0])
    if not truth.has(outcome):
        return None
    spec = spec or {}
    estimator = str(rows["estimator"].iloc[0])
    rule = spec.get("treatment_rule")
    window = spec.get("event_window") or [None, None]
    hi = window[1] if window and window[1] is not None else None
    ev = rows[(rows["kind"] == "event_time") & rows["estimate"].notna()]
    post_e = sorted({int(e) for e in ev["event_time"].dropna() if int(e) >= 0})
    if term == "dynamic":
        path = truth.path(outcome)
        e = [x for x in post_e if x in path.index]
        if not e:
            return None
        return TruthMatch(float(path.loc[e].mean()), "dynamic", min(e), max(e), len(e))
    gt = rows[(rows["kind"] == "att_gt") & rows["estimate"].notna()].dropna(subset=["cohort", "time"])
    if len(gt):
        gt = gt.assign(e=gt["time"].astype(int) - gt["cohort"].astype(int))
        gt = gt[gt["e"] >= 0]
        if estimator == "sun_abraham" and hi is not None:
            gt = gt[gt["e"] <= hi]
        cells = list(zip(gt["cohort"].astype(int), gt["e"].astype(int), strict=True))
        agg = "simple" if estimator == "callaway_santanna" else "treated_obs"
    else:
        src = support if support is not None and len(support) else rows
        groups = src.loc[src["kind"] == "group", "cohort"].dropna().astype(int).tolist()
        times = src.loc[src["kind"] == "calendar", "time"].dropna().astype(int).tolist()
        upper = hi if hi is not None and estimator != "twfe_static" and estimator != "gardner" else None
        if estimator == "imputation" and post_e:
            upper = max(post_e)
        if support is not None and len(support) and estimator == "gardner":
            upper = None
        if not groups:
            groups = [(p - truth.panel_start).n + 1 for p in truth.sizes(rule).index]
        t_end = truth.t_end()
        tset = set(times) if times else set(range(1, t_end + 1))
        cells = [(g, t - g) for g in groups for t in sorted(tset) if t >= g and t <= t_end and (upper is None or t - g <= upper)]
        agg = "treated_obs"
    res = _cells_mean(truth, outcome, cells, rule)
    if res is None:
        return None
    es = [e for _, e in cells]
    return TruthMatch(res[0], agg, int(min(es)), int(max(es)), res[1])


def headline_term(rows: pd.DataFrame) -> str | None:
    """The overall aggregate reported as a model's headline: ``dynamic`` (mean of the
    event-time effects in the event window) where the estimator reports it, else ``att``."""
    terms = rows.loc[rows["kind"] == "overall", "term"].dropna().astype(str).tolist()
    for t in ("dynamic", "att"):
        if t in terms:
            return t
    return terms[0] if terms else None


def z_difference(estimate: float, truth: float, se: float) -> float:
    """(estimate - truth) / SE; NaN without a positive SE."""
    try:
        return float((estimate - truth) / se) if se and np.isfinite(se) and se > 0 else float("nan")
    except TypeError:
        return float("nan")
