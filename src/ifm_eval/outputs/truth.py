"""The planted truth of a stand-in run (``data/synthetic/truth.json``), read in ONE place.

Layout written by :mod:`ifm_eval.synth` (``effects.<outcome>``, outcomes ``language``,
``training``, ``employment``; effects in percentage points)::

    att_by_event_time            {"-49": 0.0, ..., "47": 9.3}   unit-weighted mean by event time
    att_by_event_time_weighted   {...}                          person-weighted
    n_units_by_event_time        {"-49": 4, ...}                municipalities observed at e
    att_by_cohort_event_time     {"2017-01": {"-24": 0.0, ...}} cohort -> event time -> pp
    att_overall, att_overall_weighted, att_overall_pre          all-horizon scalars

plus ``municipalities[*].start_month.<rule>`` (cohort sizes per treatment rule).

These paths describe the planted effects (unit-weighted or person-weighted over all
treated municipalities). The truth an ESTIMATE is compared with -- the same treated
observations, weights and aggregate as the estimator -- comes from the true cell effects of
``truth_counts.parquet`` via :func:`ifm_eval.validation.matched_truth` (re-exported here
with :func:`~ifm_eval.validation.headline_term`).
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


def load_truth(path: str | Path) -> PlantedTruth:
    """The planted truth of a stand-in run from its ``truth.json``."""
    return parse_truth(json.loads(Path(path).read_text(encoding="utf-8")))


# ---------------------------------------------------------------------- matching
# The truth an estimate is compared with is NOT read from truth.json (whose paths are
# unit-weighted over all municipalities, a different estimand from the refugee-weighted,
# cell-restricted main specifications) but matched to each model from the true cell
# effects of truth_counts.parquet: one implementation, :mod:`ifm_eval.validation`.
from ifm_eval.validation import headline_term, matched_truth  # noqa: E402,F401  (re-exported)


def z_difference(estimate: float, truth: float, se: float) -> float:
    """(estimate - truth) / SE; NaN without a positive SE."""
    try:
        return float((estimate - truth) / se) if se and np.isfinite(se) and se > 0 else float("nan")
    except TypeError:
        return float("nan")
