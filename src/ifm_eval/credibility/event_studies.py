"""The event study each diagnostic uses: coefficients relative to one reference period with
their joint covariance (the spec's own inference, e.g. the cluster jackknife).

* TWFE event study, Sun & Abraham, two-stage DiD: the spec's event-time rows and covariance
  as estimated (pre- and post-periods relative to ``e = -1 - anticipation``).
* Callaway & Sant'Anna with ``base_period: varying`` (the main spec): its pre-period
  estimates are one-month changes, not deviations from the reference month, which the
  pre-test power and HonestDiD assume (R HonestDiD's advice: a universal base period). The
  stage re-estimates the spec with ``base_period: universal`` (everything else equal); the
  post-period estimates are identical.
* Imputation: the pre-periods are BJS's separate pre-trend regression on the untreated
  observations (their covariance is in the metadata), the post-periods the imputation
  estimates; the covariance between the two blocks is not available and is set to zero
  (an approximation, stated in the outputs' ``note``).
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)


@dataclass
class EventStudy:
    model: str
    estimator: str
    outcome: str
    t: np.ndarray  # event times (reference omitted)
    beta: np.ndarray
    sigma: np.ndarray
    reference: int
    headline_events: list[int]
    source: str
    notes: list[str] = field(default_factory=list)

    @property
    def n_pre(self) -> int:
        return int((self.t < self.reference).sum())

    @property
    def n_post(self) -> int:
        return int((self.t >= 0).sum())

    def subset(self, keep: np.ndarray) -> EventStudy:
        return EventStudy(self.model, self.estimator, self.outcome, self.t[keep], self.beta[keep],
                          self.sigma[np.ix_(keep, keep)], self.reference, self.headline_events, self.source,
                          list(self.notes))


def _rows(tidy: pd.DataFrame, model: str) -> pd.DataFrame:
    r = tidy[(tidy["spec"] == model) & (tidy["kind"] == "event_time") & (tidy["term"] != "reference")]
    return r[r["estimate"].notna()]


def _from_vcov(rows: pd.DataFrame, vc: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    et = np.asarray(vc["event_times"], dtype=int)
    S = np.asarray(vc["matrix"], dtype=float)
    est = rows.drop_duplicates("event_time").set_index(rows.drop_duplicates("event_time")["event_time"].astype(int))["estimate"]
    keep = np.array([e in est.index for e in et]) & np.isfinite(np.diag(S)) & (np.diag(S) > 0)
    return et[keep], est.loc[et[keep]].to_numpy(float), S[np.ix_(keep, keep)]


def diagnostic_event_study(name: str, spec: dict[str, Any], tidy: pd.DataFrame, meta: dict[str, Any],
                           panel: pd.DataFrame | None = None) -> EventStudy | None:
    """The event study of spec ``name`` for the diagnostics (module doc); None if the spec
    has none (static TWFE, not estimable)."""
    from ifm_eval.credibility.select import EVENT_STUDY

    est = spec["estimator"]
    if est not in EVENT_STUDY or meta.get("status") != "ok":
        return None
    ref = -1 - int(spec["anticipation"])
    head = [int(e) for e in ((meta.get("info") or {}).get("headline") or {}).get("event_times", [])]
    notes: list[str] = []
    if est == "callaway_santanna" and spec["base_period"] == "varying":
        if panel is None:
            raise ValueError(f"{name}: the universal-base re-estimate needs the panel")
        from ifm_eval.estimators.runner import estimate, prepare_data

        s = copy.deepcopy(spec)
        s["base_period"] = "universal"
        s["inference"].pop("bootstrap", None)
        data, gcol, _ = prepare_data(panel, s)
        res = estimate(data, s, gcol)
        if res.vcov is None:
            return None
        ev = res.rows("event_time")
        ev = ev[(ev["term"] != "reference") & ev["estimate"].notna()]
        rows = ev.assign(spec=name)
        vc = {"event_times": [int(e) for e in res.vcov.index], "matrix": res.vcov.to_numpy(float).tolist()}
        t, b, S = _from_vcov(rows, vc)
        source = "re-estimated with base_period universal"
        if not head:
            head = [int(e) for e in t if e >= 0]
    elif est == "imputation":
        rows = _rows(tidy, name)
        post_vc = meta.get("vcov_event_time")
        pre_vc = (meta.get("info") or {}).get("pretrend_vcov")
        if not post_vc:
            return None
        tp, bp, Sp = _from_vcov(rows[~rows["term"].str.startswith("pre")], post_vc)
        if pre_vc:
            tq, bq, Sq = _from_vcov(rows[rows["term"].str.startswith("pre")], pre_vc)
            notes.append("pre-periods: BJS pre-trend regression; covariance with the post-periods set to 0")
        else:
            tq, bq, Sq = np.zeros(0, int), np.zeros(0), np.zeros((0, 0))
        t = np.r_[tq, tp]
        b = np.r_[bq, bp]
        S = np.zeros((len(t), len(t)))
        S[: len(tq), : len(tq)] = Sq
        S[len(tq):, len(tq):] = Sp
        keep = (t < ref) | (t >= 0) if len(tq) else t >= 0
        t, b, S = t[keep], b[keep], S[np.ix_(keep, keep)]
        source = "imputation estimates (post) and BJS pre-trend test (pre)"
    else:
        vc = meta.get("vcov_event_time")
        if not vc:
            return None
        t, b, S = _from_vcov(_rows(tidy, name), vc)
        source = "as estimated"
    order = np.argsort(t, kind="stable")
    return EventStudy(name, est, spec["outcome"], t[order], b[order], S[np.ix_(order, order)], ref,
                      head or [int(e) for e in t if e >= 0], source, notes)
