"""Demand forecast (Landtag request 1, *Bedarfsprognose*): refugees in follow-up housing
(AU) projected beyond the panel end, and the caseload this implies per funded and per
filled IM full-time equivalent (VZÄ).

Models (state level, on ``y_t = log S_t``, ``S_t`` = refugees in AU in the Land)
------------------------------------------------------------------------------
Both use the last ``fit_months`` monthly log growth rates ``d_t = y_t - y_{t-1}`` (net of
entries into and exits out of AU).

* ``local_trend`` (ARIMA(0,2,0)): the growth rate itself follows a random walk,
  ``d_t = d_{t-1} + e_t`` with ``e_t`` iid ``N(0, sigma^2)``. The forecast continues the
  latest growth rate, ``y_{T+h} = y_T + h d_T``; the forecast error is
  ``sum_{k=1..h} sum_{j=1..k} e_{T+j}`` with variance ``sigma^2 h (h+1) (2h+1) / 6``.
  ``sigma^2`` is estimated by the mean square of the ``n = fit_months - 1`` changes of the
  growth rate (mean zero under the model), so ``error / se ~ t_n`` exactly for Gaussian
  shocks. Assumption: the growth rate changes gradually and without a systematic
  direction (a new arrival wave or a rule change is a shock the model does not foresee).
* ``drift`` (random walk with drift): ``d_t`` iid with mean ``mu`` and sd ``sigma``
  (``n = fit_months`` rates), ``y_{T+h} = y_T + h mu_hat``, error variance
  ``sigma^2 h (1 + h / n)`` (future shocks plus the estimation error of ``mu_hat``),
  ``t_{n-1}`` quantiles. Assumption: the net growth rate of the window persists.
  Robust to month-to-month reporting noise, which ``local_trend`` takes for changes of
  the growth rate (its intervals then become very wide).
* ``auto`` (default of the stage): the one of the two with the smaller rolling-origin
  backtest error (:func:`select_model`).

The point forecast is the median ``exp(y_T + ...)``; the prediction interval at level
``L`` is ``exp(centre ± t_{df,(1+L)/2} se_h)``. Neither assumption is taken on trust:
the *backtest* fits the model at earlier origins, scores its forecasts against the months
that followed and reports the mean absolute percentage error (MAPE), the bias and the
empirical coverage of the intervals, next to the other model and the naive no-change
forecast.

Municipality level: shares carried forward
------------------------------------------
A municipality's projection is its share of the state total over the last
``share_months`` months times the state projection. Its interval adds, on the log scale,
the state variance and the variance of the share drift, estimated empirically: at
earlier origins, the log ratio ``log((a + 0.5) / (f + 0.5))`` of the actual value ``a``
to the share-only forecast ``f`` (share x the *true* state total) is collected per
horizon and size class (quintiles of ``f``); its robust variance ``(IQR / 1.349)^2`` is the
share variance (beyond the backtest horizon it grows in proportion to ``h``). The
municipal backtest scores intervals whose share variance comes only from origins whose
hold-out ended before the scored origin (out of sample).

Caseload
--------
Refugees in AU per funded VZÄ and per VZÄ of posts actually filled, at the last observed
month and over the projection (VZÄ held at their last observed level), and the funded
VZÄ that would keep today's state-wide caseload per funded VZÄ.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

REFUGEE_COLUMNS = ("ags", "month", "refugees")


def _month(s: pd.Series) -> pd.Series:
    return pd.to_datetime(s).dt.to_period("M").dt.to_timestamp()


def level_key(level: float) -> str:
    """Column suffix of an interval level (``0.8`` -> ``"80"``)."""
    return f"{round(float(level) * 100):d}"


def check_refugees(refugees: pd.DataFrame, source: str = "refugees") -> pd.DataFrame:
    """The denominator series with month starts; fails naming the file and the column or
    the first offending row."""
    missing = [c for c in REFUGEE_COLUMNS if c not in refugees.columns]
    if missing:
        raise ValueError(f"{source}: missing column(s) {missing} (has {list(refugees.columns)})")
    r = refugees[list(REFUGEE_COLUMNS)].copy()
    r["month"] = _month(r["month"])
    vals = pd.to_numeric(r["refugees"], errors="coerce")
    bad = vals.isna() | (vals < 0)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValueError(f"{source}: row {i}, column 'refugees': {refugees['refugees'].iloc[i]!r} "
                         "is not a non-negative number")
    r["refugees"] = vals.astype(float)
    dup = r.duplicated(["ags", "month"])
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        raise ValueError(f"{source}: row {i}: (ags, month) = ({r['ags'].iloc[i]}, "
                         f"{r['month'].iloc[i]:%Y-%m}) occurs twice")
    return r


def state_series(refugees: pd.DataFrame) -> pd.Series:
    """State total per month (index: month starts); fails naming months missing in between."""
    s = refugees.groupby("month")["refugees"].sum().sort_index()
    full = pd.date_range(s.index.min(), s.index.max(), freq="MS")
    gaps = full.difference(s.index)
    if len(gaps):
        raise ValueError(f"refugees: month(s) without any row: {[f'{m:%Y-%m}' for m in gaps[:10]]}")
    return s


# --------------------------------------------------------------------------- model
MODELS = ("local_trend", "drift")


@dataclass(frozen=True)
class TrendFit:
    """A state-level model fitted at ``origin`` (the last month used)."""

    model: str  # local_trend | drift
    origin: pd.Timestamp
    log_level: float  # log S at the origin
    slope: float  # monthly log growth carried forward
    sigma: float  # sd of the shocks (growth-rate changes, or growth rates)
    n: int  # number of shocks the sigma is estimated from

    @property
    def df(self) -> int:
        return self.n if self.model == "local_trend" else self.n - 1

    @property
    def monthly_growth_pct(self) -> float:
        return 100.0 * (np.exp(self.slope) - 1.0)

    def centre(self, h: np.ndarray) -> np.ndarray:
        return self.log_level + np.asarray(h, dtype=float) * self.slope

    def log_se(self, h: np.ndarray) -> np.ndarray:
        h = np.asarray(h, dtype=float)
        if self.model == "local_trend":
            return self.sigma * np.sqrt(h * (h + 1.0) * (2.0 * h + 1.0) / 6.0)
        return self.sigma * np.sqrt(h * (1.0 + h / self.n))


def fit_trend(series: pd.Series, fit_months: int, model: str = "local_trend") -> TrendFit:
    """Fit ``model`` on the last ``fit_months`` monthly log growth rates of ``series``."""
    if model not in MODELS:
        raise ValueError(f"demand model {model!r} unknown (use one of {MODELS})")
    fit_months = int(fit_months)
    if fit_months < 4:
        raise ValueError(f"fit_months must be at least 4, got {fit_months}")
    if len(series) < fit_months + 1:
        raise ValueError(f"demand model: {fit_months} growth rates need {fit_months + 1} months, "
                         f"the series has {len(series)}")
    s = series.iloc[-(fit_months + 1):]
    if (s <= 0).any():
        m = s.index[np.flatnonzero((s <= 0).to_numpy())[0]]
        raise ValueError(f"demand model: state total {s[m]:g} in {m:%Y-%m}; the log model needs "
                         "positive totals in the fitting window")
    d = np.diff(np.log(s.to_numpy(dtype=float)))
    if model == "drift":
        return TrendFit(model, pd.Timestamp(s.index[-1]), float(np.log(s.iloc[-1])), float(d.mean()),
                        float(d.std(ddof=1)), int(len(d)))
    dd = np.diff(d)
    return TrendFit(model, pd.Timestamp(s.index[-1]), float(np.log(s.iloc[-1])), float(d[-1]),
                    float(np.sqrt(np.mean(dd ** 2))), int(len(dd)))


def forecast(fit: TrendFit, horizon: int, levels: tuple[float, ...] | list[float] = (0.8, 0.95)) -> pd.DataFrame:
    """Median forecast and prediction intervals for ``h = 1 .. horizon`` months after the
    origin: columns ``month, h, refugees, refugees_lo<L>, refugees_hi<L>, log_se``."""
    h = np.arange(1, int(horizon) + 1, dtype=float)
    centre, se = fit.centre(h), fit.log_se(h)
    out = pd.DataFrame({"month": pd.date_range(fit.origin, periods=int(horizon) + 1, freq="MS")[1:],
                        "h": h.astype(int), "refugees": np.exp(centre)})
    for lv in levels:
        q = stats.t.ppf((1.0 + float(lv)) / 2.0, fit.df)
        out[f"refugees_lo{level_key(lv)}"] = np.exp(centre - q * se)
        out[f"refugees_hi{level_key(lv)}"] = np.exp(centre + q * se)
    out["log_se"] = se
    return out


def municipality_shares(refugees: pd.DataFrame, origin: pd.Timestamp, share_months: int) -> pd.Series:
    """Each municipality's share of the state total over the ``share_months`` months up to
    ``origin`` (index ags; sums to 1)."""
    lo = pd.Timestamp(origin) - pd.DateOffset(months=int(share_months) - 1)
    w = refugees[(refugees["month"] >= lo) & (refugees["month"] <= origin)]
    per = w.groupby("ags")["refugees"].sum()
    total = float(per.sum())
    if total <= 0:
        raise ValueError(f"demand model: no refugees in AU in the {share_months} months up to {origin:%Y-%m}")
    all_ags = pd.Index(sorted(refugees["ags"].unique()), name="ags")
    return (per / total).reindex(all_ags, fill_value=0.0)


# --------------------------------------------------------------------------- share drift
N_SIZE_CLASSES = 5


@dataclass(frozen=True)
class ShareDrift:
    """Robust variance of the municipal log share error by size class and horizon."""

    edges: np.ndarray  # inner class boundaries on the share-only forecast (persons)
    var: pd.DataFrame  # index h (1..H), columns class 0..K-1
    n_origins: int

    def lookup(self, f: np.ndarray, h: np.ndarray) -> np.ndarray:
        cls = np.searchsorted(self.edges, np.asarray(f, dtype=float), side="right")
        hmax = int(self.var.index.max())
        hh = np.asarray(h, dtype=int)
        base = self.var.to_numpy()[np.clip(hh, 1, hmax) - 1, cls]
        return base * np.where(hh > hmax, hh / hmax, 1.0)


def share_errors(refugees: pd.DataFrame, origins: list[pd.Timestamp], holdout: int, share_months: int) -> pd.DataFrame:
    """Per origin, municipality and ``h = 1..holdout``: share-only forecast ``f`` (share at
    the origin x the true state total) and log error ``log((a + 0.5) / (f + 0.5))``."""
    wide = refugees.pivot_table(index="month", columns="ags", values="refugees", aggfunc="sum").fillna(0.0)
    total = wide.sum(axis=1)
    rows = []
    for o in origins:
        sh = municipality_shares(refugees, o, share_months).reindex(wide.columns, fill_value=0.0).to_numpy()
        pos = wide.index.get_loc(o)
        for h in range(1, int(holdout) + 1):
            if pos + h >= len(wide):
                break
            a = wide.iloc[pos + h].to_numpy()
            f = sh * float(total.iloc[pos + h])
            rows.append(pd.DataFrame({"origin": o, "h": h, "ags": wide.columns, "f": f,
                                      "err": np.log((a + 0.5) / (f + 0.5))}))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=["origin", "h", "ags", "f", "err"])


def share_drift(errors: pd.DataFrame, n_classes: int = N_SIZE_CLASSES) -> ShareDrift:
    """Size classes (quantiles of ``f``) and robust variance per class and horizon."""
    if errors.empty:
        raise ValueError("share drift: no earlier origin with a hold-out to estimate it from")
    pos = errors["f"] > 0
    edges = np.unique(np.quantile(errors.loc[pos, "f"], np.linspace(0, 1, n_classes + 1)[1:-1]))
    cls = np.searchsorted(edges, errors["f"].to_numpy(), side="right")
    e = errors.assign(cls=cls)

    def rvar(x: pd.Series) -> float:
        q1, q3 = np.quantile(x, [0.25, 0.75])
        return float(((q3 - q1) / 1.349) ** 2)

    var = e.groupby(["h", "cls"])["err"].apply(rvar).unstack("cls").reindex(columns=range(len(edges) + 1))
    var = var.ffill(axis=1).bfill(axis=1).fillna(0.0)
    return ShareDrift(edges, var, int(errors["origin"].nunique()))


def project_municipalities(fc: pd.DataFrame, shares: pd.Series, drift: ShareDrift | None = None,
                           df: float = np.inf, levels: tuple[float, ...] | list[float] = (0.8, 0.95)) -> pd.DataFrame:
    """State forecast times each municipality's share (long: ags x month). With ``drift``
    the interval adds the share variance on the log scale (see module doc); without, it is
    the state interval times the share."""
    n = len(fc)
    a = np.repeat(shares.index.to_numpy(), n)
    s = np.repeat(shares.to_numpy(), n)
    h = np.tile(fc["h"].to_numpy(), len(shares))
    out = pd.DataFrame({"ags": a, "month": np.tile(fc["month"].to_numpy(), len(shares)), "h": h, "share": s})
    point = s * np.tile(fc["refugees"].to_numpy(), len(shares))
    out["refugees"] = point
    if drift is None:
        for lv in levels:
            for side in ("lo", "hi"):
                c = f"refugees_{side}{level_key(lv)}"
                out[c] = s * np.tile(fc[c].to_numpy(), len(shares))
        return out
    se = np.sqrt(np.tile(fc["log_se"].to_numpy(), len(shares)) ** 2 + drift.lookup(point, h))
    for lv in levels:
        q = stats.t.ppf((1.0 + float(lv)) / 2.0, df)
        # on the log(x + 0.5) scale, as the share errors were measured
        out[f"refugees_lo{level_key(lv)}"] = np.where(s > 0, np.maximum((point + 0.5) * np.exp(-q * se) - 0.5, 0.0), 0.0)
        out[f"refugees_hi{level_key(lv)}"] = np.where(s > 0, (point + 0.5) * np.exp(q * se) - 0.5, 0.0)
    return out


# --------------------------------------------------------------------------- backtest
def backtest(series: pd.Series, fit_months: int, holdout: int, n_origins: int,
             levels: tuple[float, ...] | list[float] = (0.8, 0.95), model: str = "local_trend") -> pd.DataFrame:
    """Rolling-origin backtest of the state model: for each of the last ``n_origins``
    origins that leave ``holdout`` months to score (and have ``fit_months`` growth rates
    before them), forecast ``h = 1 .. holdout`` and compare with what happened. The other
    model of :data:`MODELS` and the naive no-change forecast (``S_T`` for every ``h``) are
    scored alongside.

    Columns: ``origin, h, month, actual, forecast, pe, ape, other, other_ape, naive,
    naive_ape`` and per level ``lo<L>, hi<L>, covered<L>`` (errors in percent of the
    actual value; ``pe`` > 0: forecast too high)."""
    holdout = int(holdout)
    last = len(series) - 1 - holdout  # position of the latest origin
    first = max(int(fit_months) + 1, last - int(n_origins) + 1)
    if last < first:
        raise ValueError(f"backtest: {len(series)} months are too few for {fit_months} fitting months "
                         f"and a {holdout}-month hold-out")
    other = next(m for m in MODELS if m != model)
    rows = []
    for p in range(first, last + 1):
        hist = series.iloc[: p + 1]
        fit = fit_trend(hist, fit_months, model)
        fc = forecast(fit, holdout, levels)
        alt = forecast(fit_trend(hist, fit_months, other), holdout, ())
        actual = series.iloc[p + 1: p + 1 + holdout].to_numpy(dtype=float)
        d = pd.DataFrame({"origin": fit.origin, "h": fc["h"], "month": fc["month"], "actual": actual,
                          "forecast": fc["refugees"].to_numpy()})
        d["pe"] = 100.0 * (d["forecast"] - d["actual"]) / d["actual"]
        d["ape"] = d["pe"].abs()
        d["other"] = alt["refugees"].to_numpy()
        d["other_ape"] = 100.0 * (d["other"] - d["actual"]).abs() / d["actual"]
        d["naive"] = float(series.iloc[p])
        d["naive_ape"] = 100.0 * (d["naive"] - d["actual"]).abs() / d["actual"]
        for lv in levels:
            k = level_key(lv)
            d[f"lo{k}"] = fc[f"refugees_lo{k}"].to_numpy()
            d[f"hi{k}"] = fc[f"refugees_hi{k}"].to_numpy()
            d[f"covered{k}"] = (d["actual"] >= d[f"lo{k}"]) & (d["actual"] <= d[f"hi{k}"])
        rows.append(d)
    return pd.concat(rows, ignore_index=True)


def select_model(series: pd.Series, fit_months: int, holdout: int, n_origins: int) -> tuple[str, dict[str, float]]:
    """The model of :data:`MODELS` with the smaller rolling-origin backtest MAPE (mean over
    origins and horizons ``1 .. holdout``), and each model's MAPE. Ties go to
    ``local_trend``. The reported backtest error of the chosen model is then slightly
    optimistic (a choice between two models)."""
    bt = backtest(series, fit_months, holdout, n_origins, (), model=MODELS[0])
    mape = {MODELS[0]: float(bt["ape"].mean()), MODELS[1]: float(bt["other_ape"].mean())}
    return (MODELS[1] if mape[MODELS[1]] < mape[MODELS[0]] else MODELS[0]), mape


def backtest_summary(bt: pd.DataFrame, levels: tuple[float, ...] | list[float] = (0.8, 0.95)) -> pd.DataFrame:
    """Per horizon: number of origins, MAPE of the model, of the other model and of the
    naive forecast, mean percentage error (bias) and interval coverage."""
    agg = {"n_origins": ("origin", "nunique"), "mape": ("ape", "mean"), "bias_pct": ("pe", "mean"),
           "other_mape": ("other_ape", "mean"), "naive_mape": ("naive_ape", "mean")}
    for lv in levels:
        agg[f"coverage{level_key(lv)}"] = (f"covered{level_key(lv)}", "mean")
    return bt.groupby("h").agg(**agg).reset_index()


def _origins_before(series: pd.Series, end_pos: int, n: int, fit_months: int, share_months: int) -> list[pd.Timestamp]:
    lo = max(int(fit_months), int(share_months) - 1)
    return [series.index[p] for p in range(max(lo, end_pos - int(n) + 1), end_pos + 1)]


def municipality_backtest(refugees: pd.DataFrame, fit_months: int, share_months: int, holdout: int,
                          n_origins: int, levels: tuple[float, ...] | list[float] = (0.8, 0.95),
                          model: str = "local_trend") -> pd.DataFrame:
    """Municipal error of the share model at the latest origin that leaves ``holdout``
    months: per horizon the weighted absolute percentage error ``sum|a - f| / sum a``
    (WAPE) over all municipalities, that with the true state total (what the share
    assumption alone costs), and the share of municipalities whose actual value lies in
    the interval — with the share variance estimated from origins whose hold-out ended by
    the scored origin (out of sample; empty coverage if the series is too short)."""
    series = state_series(refugees)
    pos = len(series) - 1 - int(holdout)
    origin = series.index[pos]
    fit = fit_trend(series.loc[:origin], fit_months, model)
    fc = forecast(fit, holdout, levels)
    prior = _origins_before(series, pos - int(holdout), n_origins, fit_months, share_months)
    errs = share_errors(refugees, prior, holdout, share_months) if prior else pd.DataFrame()
    drift = share_drift(errs) if len(errs) else None
    proj = project_municipalities(fc, municipality_shares(refugees, origin, share_months), drift, fit.df, levels)
    act = refugees[["ags", "month", "refugees"]].rename(columns={"refugees": "actual"})
    m = proj.merge(act, on=["ags", "month"], how="left", validate="one_to_one")
    m["actual"] = m["actual"].fillna(0.0)
    m["share_only"] = m["share"] * m.groupby("month")["actual"].transform("sum")
    rows = []
    for h, d in m.groupby("h"):
        tot = float(d["actual"].sum())
        row = {"h": int(h), "origin": origin, "month": d["month"].iloc[0], "n_municipalities": int(len(d)),
               "n_share_origins": drift.n_origins if drift else 0,
               "wape": 100.0 * float((d["refugees"] - d["actual"]).abs().sum()) / tot if tot else np.nan,
               "wape_share_only": 100.0 * float((d["share_only"] - d["actual"]).abs().sum()) / tot if tot else np.nan}
        for lv in levels:
            k = level_key(lv)
            row[f"coverage{k}"] = (float(((d["actual"] >= d[f"refugees_lo{k}"] - 1e-9)
                                          & (d["actual"] <= d[f"refugees_hi{k}"] + 1e-9)).mean()) if drift else np.nan)
        rows.append(row)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- caseload
def caseload(refugees: pd.Series | np.ndarray | float, vza: pd.Series | np.ndarray | float) -> np.ndarray:
    """Refugees in AU per VZÄ (NaN where there is no VZÄ)."""
    r = np.asarray(refugees, dtype=float)
    v = np.asarray(vza, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(v > 0, r / np.where(v > 0, v, 1.0), np.nan)


def project(refugees: pd.DataFrame, horizon: int, fit_months: int, share_months: int,
            levels: tuple[float, ...] | list[float] = (0.8, 0.95), model: str = "local_trend",
            share_holdout: int = 12, share_origins: int = 12) -> tuple[TrendFit, pd.DataFrame, pd.DataFrame]:
    """Fit at the last observed month and project: ``(fit, state forecast, municipal
    projection)``; the share drift comes from the last ``share_origins`` origins with a
    ``share_holdout``-month hold-out."""
    series = state_series(refugees)
    fit = fit_trend(series, fit_months, model)
    fc = forecast(fit, horizon, levels)
    prior = _origins_before(series, len(series) - 1 - int(share_holdout), share_origins, fit_months, share_months)
    errs = share_errors(refugees, prior, share_holdout, share_months) if prior else pd.DataFrame()
    drift = share_drift(errs) if len(errs) else None
    muni = project_municipalities(fc, municipality_shares(refugees, fit.origin, share_months), drift, fit.df, levels)
    return fit, fc, muni


def state_demand_table(series: pd.Series, fc: pd.DataFrame, funded: pd.Series, filled: pd.Series,
                       levels: tuple[float, ...] | list[float] = (0.8, 0.95)) -> pd.DataFrame:
    """Observed and projected state totals with caseloads.

    ``funded`` / ``filled``: state-wide funded and filled VZÄ per month (observed months).
    Over the projection both are held at their value in the last observed month. The
    column ``vza_needed*`` is the funded VZÄ that would keep the caseload per funded VZÄ
    of the last observed month (projected refugees / that caseload)."""
    obs = pd.DataFrame({"month": series.index, "kind": "observed", "h": 0, "refugees": series.to_numpy(dtype=float)})
    proj = fc.drop(columns="log_se", errors="ignore")
    proj.insert(1, "kind", "projected")
    out = pd.concat([obs, proj], ignore_index=True)
    last = series.index.max()
    f_now = float(funded.get(last, np.nan))
    p_now = float(filled.get(last, np.nan))
    out["funded_vza"] = out["month"].map(funded).where(out["kind"] == "observed", f_now).astype(float)
    out["filled_vza"] = out["month"].map(filled).where(out["kind"] == "observed", p_now).astype(float)
    out["caseload_funded"] = caseload(out["refugees"], out["funded_vza"])
    out["caseload_filled"] = caseload(out["refugees"], out["filled_vza"])
    c_now = float(caseload(series[last], f_now))
    band = [c for c in out.columns if c.startswith("refugees")]
    for c in band:
        out["vza_needed" + c[len("refugees"):]] = np.where(out["kind"] == "projected", out[c] / c_now, np.nan)
    return out


def municipality_demand_table(refugees: pd.DataFrame, muni_proj: pd.DataFrame, funded_now: pd.Series,
                              filled_now: pd.Series) -> pd.DataFrame:
    """Per municipality: observed refugees in the last month (``h = 0``) and the projection,
    with funded / filled VZÄ of the last observed month and the caseloads."""
    last = refugees["month"].max()
    now = refugees[refugees["month"] == last][["ags", "month", "refugees"]].assign(h=0)
    out = pd.concat([now, muni_proj.drop(columns="share")], ignore_index=True)
    out["funded_vza"] = out["ags"].map(funded_now).fillna(0.0).astype(float)
    out["filled_vza"] = out["ags"].map(filled_now).fillna(0.0).astype(float)
    out["caseload_funded"] = caseload(out["refugees"], out["funded_vza"])
    out["caseload_filled"] = caseload(out["refugees"], out["filled_vza"])
    return out.sort_values(["ags", "h"]).reset_index(drop=True)
