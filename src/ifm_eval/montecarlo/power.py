"""What the design can detect: analytic minimum detectable effects and the simulated power
curve.

Analytic (per spec, for the headline and every event time): the effect a two-sided 5% test
detects with 80% power, ``MDE_80 = (z_0.975 + z_0.80) * SE`` (= 2.80 SE), in percentage
points and relative to the outcome's 2016 rate (refugee-weighted mean over the
municipalities the spec uses, before any start). It takes the SE at face value and the
estimate as normal.

Simulated (:func:`detectable_effect`): over the Monte Carlo designs ``hr<x>`` the share of
replicates whose 95% CI excludes zero, as a function of the planted ``max_hazard_ratio``
``x``; the smallest ``x`` reaching 80% (linear interpolation) and the matched true headline
effect at that ``x`` (pp, mean over replicates, interpolated the same way). The two differ
where the SE is biased (a too small SE makes the analytic MDE optimistic and the simulated
rejection rate under zero too high) or the estimate's distribution is far from normal.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import norm

ALPHA, POWER = 0.05, 0.80
MDE_FACTOR = float(norm.ppf(1 - ALPHA / 2) + norm.ppf(POWER))


def baseline_rates(panel: pd.DataFrame, outcomes: list[str], weights: str | None = "refugees_2017",
                   year: int = 2016) -> dict[str, float]:
    """Refugee-weighted mean rate of each outcome in ``year`` over municipalities not yet
    treated then (the pre-programme level the MDE is compared with)."""
    d = panel[pd.to_datetime(panel["month"]).dt.year == year]
    if weights == "refugees_2017" and "refugees_per_1000_2017" in d:
        w = (d["refugees_per_1000_2017"] * d["population"] / 1000.0).round()
    elif weights and weights in d:
        w = d[weights]
    else:
        w = pd.Series(1.0, index=d.index)
    out = {}
    for o in outcomes:
        ok = d[o].notna() & (w > 0)
        out[o] = float(np.average(d.loc[ok, o], weights=w[ok])) if ok.any() else float("nan")
    return out


def analytic_mde(tidy: pd.DataFrame, headline_term: str, baseline: float) -> pd.DataFrame:
    """MDE_80 of the headline and of every post event time of one model's tidy estimates."""
    rows = []
    ov = tidy[(tidy["kind"] == "overall") & (tidy["term"] == headline_term)]
    if len(ov):
        rows.append({"row": "headline", "event_time": np.nan, "se": float(ov["se"].iloc[0])})
    es = tidy[(tidy["kind"] == "event_time") & tidy["term"].astype(str).str.match(r"^e[+-]\d+$")
              & (tidy["event_time"] >= 0)]
    rows += [{"row": "event_time", "event_time": int(r.event_time), "se": float(r.se)} for r in es.itertuples()]
    out = pd.DataFrame(rows, columns=["row", "event_time", "se"])
    out["mde80_pp"] = MDE_FACTOR * out["se"]
    out["baseline_rate_2016"] = baseline
    out["mde80_relative"] = out["mde80_pp"] / baseline if baseline and np.isfinite(baseline) else np.nan
    return out


def detectable_effect(curve: pd.DataFrame, power: float = POWER) -> pd.DataFrame:
    """Per estimator x outcome: the planted max_hazard_ratio detected with ``power`` and the
    matched true headline effect there (pp), by linear interpolation of the power curve
    (:func:`ifm_eval.montecarlo.summary.power_curve`); NaN if never reached on the grid."""
    rows = []
    for (est, out), g in curve.groupby(["estimator", "outcome"]):
        g = g.sort_values("max_hazard_ratio")
        x, p, t = g["max_hazard_ratio"].to_numpy(), g["rejection"].to_numpy(), g["mean_truth"].to_numpy()
        hit = np.flatnonzero(p >= power)
        if not len(hit):
            rows.append({"estimator": est, "outcome": out, "max_hazard_ratio_80": np.nan, "effect_pp_80": np.nan,
                         "max_power_on_grid": float(np.nanmax(p)) if len(p) else np.nan})
            continue
        j = int(hit[0])
        if j == 0:
            xh, th = x[0], t[0]
        else:
            f = (power - p[j - 1]) / (p[j] - p[j - 1]) if p[j] > p[j - 1] else 1.0
            xh, th = x[j - 1] + f * (x[j] - x[j - 1]), t[j - 1] + f * (t[j] - t[j - 1])
        rows.append({"estimator": est, "outcome": out, "max_hazard_ratio_80": float(xh), "effect_pp_80": float(th),
                     "max_power_on_grid": float(np.nanmax(p))})
    return pd.DataFrame(rows)
