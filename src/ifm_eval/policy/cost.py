"""Cost per additional person in employment / training / with a B1 certificate.

Computation
-----------
The estimated effect ``theta`` is in percentage points of the rate (persons with the
outcome per 100 refugees in AU), averaged over the treated municipality-months the
headline estimate refers to (for an event-time mean over ``e = 0 .. 12``: the treated
municipality-months with event time 0 .. 12). Over those municipality-months, with
``R`` = the sum of refugees in AU (person-months) and ``F`` = the funding paid for them
(€, :mod:`.funding`), the IM produced ``theta / 100 x R`` additional person-months with the
outcome, so

    cost per additional person-month = F / (theta / 100 x R) = K / theta,  K = 100 F / R,

and ``12 K / theta`` is the cost of one additional person with the outcome for a year.
Equivalently, per month: the monthly funding divided by the additional persons with the
outcome at any one time.

Uncertainty: ``theta`` is drawn from its sampling distribution — Student t with the
degrees of freedom implied by the reported interval (``(ci_high - ci_low) / (2 se) =
t_{df, 1 - alpha/2}``; normal when the interval is the normal one), centred at the
estimate and scaled by its standard error. ``K`` is treated as known (funding and refugee
counts are administrative totals). The *effect per €* — additional person-months per
million € — is linear in ``theta`` and always well defined: its median and percentile
interval are reported for every estimate. The cost ``K / theta`` is a decreasing function
of ``theta`` for ``theta > 0`` and unbounded as ``theta -> 0``: with ``theta <= 0`` no
additional person was reached and the cost is infinite. Hence its percentile interval is
``[K / theta_hi, K / theta_lo]`` from the effect's percentiles (exact for a monotone
map); when the effect's interval includes 0 the upper bound is *unbounded* (reported as
missing, ``cost_status = "upper unbounded"``: only the lower bound ``K / theta_hi`` is
informative), and when the whole interval is ``<= 0`` the cost is *undefined*.

Assumptions: the effect applies equally to every person-month of the scope (the estimate
weights municipalities by their 2017 refugee stock, the scope sums refugees per month);
funding is the approved funding rate (not the outturn); the effect on the stock is
caused by the funded posts only (no spill-overs to untreated municipalities).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import optimize, stats

#: outcome of the estimate -> panel count of persons with the outcome
OUTCOME_COUNT = {"rate_employment": "employed", "rate_training": "in_training", "rate_language": "b1_holders"}

COST_STATUS = ("bounded", "upper unbounded", "undefined")


def implied_df(estimate: float, se: float, ci_low: float, ci_high: float, alpha: float = 0.05) -> float:
    """Degrees of freedom of the t quantile that reproduces the reported interval:
    ``inf`` when the interval is (up to rounding) the normal one or narrower, 1 when it is
    wider than a t(1) interval."""
    if not (np.isfinite(se) and se > 0 and np.isfinite(ci_low) and np.isfinite(ci_high)):
        return float("inf")
    q = (ci_high - ci_low) / (2.0 * se)
    z = stats.norm.ppf(1.0 - alpha / 2.0)
    if q <= z * (1.0 + 1e-6):
        return float("inf")
    f = lambda df: stats.t.ppf(1.0 - alpha / 2.0, df) - q  # noqa: E731
    if f(1.0) < 0:  # wider than a t(1) interval: use 1 df
        return 1.0
    return float(optimize.brentq(f, 1.0, 1e7))


def effect_draws(estimate: float, se: float, df: float, draws: int, seed: int) -> np.ndarray:
    """Draws ``estimate + se x T`` with ``T ~ t(df)`` (standard normal for ``df = inf``)."""
    rng = np.random.default_rng(int(seed))
    z = rng.standard_normal(int(draws)) if not np.isfinite(df) else rng.standard_t(df, int(draws))
    return float(estimate) + float(se) * z


@dataclass(frozen=True)
class CostResult:
    effect_pp: float
    effect_se: float
    effect_df: float
    effect_low: float  # percentile interval of the simulated effect
    effect_high: float
    p_effect_le_0: float  # simulated probability of a non-positive effect
    funding_eur: float  # F
    person_months: float  # R (refugee person-months in scope)
    extra_person_months: float  # theta / 100 x R at the estimate
    extra_per_million_eur: float  # additional person-months per 1 M€ (median of the draws)
    extra_per_million_eur_low: float
    extra_per_million_eur_high: float
    eur_per_person_month: float  # median of K / theta (NaN if the median effect is <= 0)
    eur_per_person_month_low: float  # K / theta_hi (NaN if theta_hi <= 0)
    eur_per_person_month_high: float  # K / theta_lo (NaN = unbounded if theta_lo <= 0)
    eur_per_person_year: float
    eur_per_person_year_low: float
    eur_per_person_year_high: float
    effect_ci_includes_zero: bool
    cost_status: str  # bounded | upper unbounded | undefined
    level: float
    draws: int


def cost_per_person(effect_pp: float, se: float, funding_eur: float, person_months: float, *,
                    df: float = float("inf"), level: float = 0.95, draws: int = 20000,
                    seed: int = 0) -> CostResult:
    """Cost per additional person-month (and year) with the outcome and the effect per €,
    with the effect's sampling uncertainty propagated by simulation (see module doc)."""
    if not (funding_eur > 0 and person_months > 0):
        raise ValueError(f"cost: funding ({funding_eur:g} €) and refugee person-months ({person_months:g}) "
                         "in scope must be positive")
    a = (1.0 - float(level)) / 2.0
    th = effect_draws(effect_pp, se, df, draws, seed) if se > 0 else np.full(int(draws), float(effect_pp))
    t_lo, t_med, t_hi = (float(v) for v in np.quantile(th, [a, 0.5, 1.0 - a]))
    k = 100.0 * float(funding_eur) / float(person_months)  # € per person-month per pp
    per_m = 1e6 * float(person_months) / (100.0 * float(funding_eur))  # person-months per M€ per pp

    def inv(t: float) -> float:
        return k / t if t > 0 else np.nan

    status = "bounded" if t_lo > 0 else ("upper unbounded" if t_hi > 0 else "undefined")
    c_med, c_lo, c_hi = inv(t_med), inv(t_hi), inv(t_lo)
    return CostResult(
        effect_pp=float(effect_pp), effect_se=float(se), effect_df=float(df), effect_low=t_lo, effect_high=t_hi,
        p_effect_le_0=float(np.mean(th <= 0)), funding_eur=float(funding_eur), person_months=float(person_months),
        extra_person_months=float(effect_pp) / 100.0 * float(person_months),
        extra_per_million_eur=t_med * per_m, extra_per_million_eur_low=t_lo * per_m,
        extra_per_million_eur_high=t_hi * per_m,
        eur_per_person_month=c_med, eur_per_person_month_low=c_lo, eur_per_person_month_high=c_hi,
        eur_per_person_year=12 * c_med, eur_per_person_year_low=12 * c_lo, eur_per_person_year_high=12 * c_hi,
        effect_ci_includes_zero=bool(t_lo <= 0 <= t_hi), cost_status=status,
        level=float(level), draws=int(draws))


def treated_scope(panel: pd.DataFrame, event_times: list[int] | None = None) -> pd.DataFrame:
    """The treated municipality-months an estimate refers to: ``g > 0`` and ``t >= g``,
    restricted to the headline's event times when given (``ags, month``)."""
    need = ["ags", "month", "t", "g"]
    missing = [c for c in need if c not in panel.columns]
    if missing:
        raise ValueError(f"panel: missing column(s) {missing}")
    p = panel[need].copy()
    e = p["t"] - p["g"]
    keep = (p["g"] > 0) & (e >= 0)
    if event_times:
        keep &= e.between(min(event_times), max(event_times))
    out = p.loc[keep, ["ags", "month"]].copy()
    out["ags"] = out["ags"].astype(str)
    out["month"] = pd.to_datetime(out["month"]).dt.to_period("M").dt.to_timestamp()
    return out


def cost_table(estimates: list[dict], panel: pd.DataFrame, funding: pd.DataFrame, *, level: float = 0.95,
               draws: int = 20000, seed: int = 0) -> pd.DataFrame:
    """One row per estimate. Each estimate is a dict with ``model, estimator, outcome, term,
    estimate, se, ci_low, ci_high, alpha`` and optional ``event_times``. ``funding``: the
    municipality x month table of :func:`.funding.funding_panel` (``eur_funded``)."""
    p = panel[["ags", "month", "refugees"]].copy()
    p["ags"] = p["ags"].astype(str)
    p["month"] = pd.to_datetime(p["month"]).dt.to_period("M").dt.to_timestamp()
    f = funding[["ags", "month", "eur_funded"]]
    rows = []
    for i, est in enumerate(estimates):
        scope = treated_scope(panel, est.get("event_times"))
        s = scope.merge(p, on=["ags", "month"], how="left").merge(f, on=["ags", "month"], how="left")
        F = float(s["eur_funded"].fillna(0.0).sum())
        R = float(s["refugees"].fillna(0.0).sum())
        df = implied_df(est["estimate"], est["se"], est["ci_low"], est["ci_high"], est.get("alpha", 0.05))
        res = cost_per_person(est["estimate"], est["se"], F, R, df=df, level=level, draws=draws, seed=int(seed) + i)
        rows.append({"model": est["model"], "estimator": est.get("estimator"), "outcome": est["outcome"],
                     "count": OUTCOME_COUNT.get(est["outcome"], ""), "term": est.get("term"),
                     "ci_low_reported": est["ci_low"], "ci_high_reported": est["ci_high"],
                     "n_municipality_months": int(len(s)), **asdict(res)})
    return pd.DataFrame(rows)
