"""The policy chapter's computations (ifm_eval.policy): demand forecast, funding vs filled
posts, KPI indicators, cost per additional person, and the ``run_policy`` job.

Every test checks a property against a known truth on constructed data (a planted
trend, hand-computed VZÄ, a constructed tracking KPI, analytic quantiles), plus the job
end-to-end on a small fixture (never skipped) and on this checkout's processed stand-in
files (skipped only when they have not been built)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ifm_eval.policy import DEFAULTS, params
from ifm_eval.policy import cost as C
from ifm_eval.policy import demand as D
from ifm_eval.policy import funding as FU
from ifm_eval.policy import indicators as K

ROOT = Path(__file__).resolve().parents[1]
MONTHS = pd.date_range("2015-01-01", "2020-12-01", freq="MS")
T43 = float(stats.t.ppf(0.975, 43))  # cluster jackknife interval with 44 Kreise


# =========================================================================== demand
def _series(values: np.ndarray, start: str = "2015-01-01") -> pd.Series:
    return pd.Series(values, index=pd.date_range(start, periods=len(values), freq="MS"))


@pytest.mark.parametrize("model", D.MODELS)
def test_demand_recovers_exact_exponential_trend(model):
    t = np.arange(72)
    s = _series(5000.0 * np.exp(-0.01 * t))
    fit = D.fit_trend(s, 24, model)
    assert fit.slope == pytest.approx(-0.01, abs=1e-12)
    assert fit.sigma == pytest.approx(0.0, abs=1e-12)
    fc = D.forecast(fit, 24)
    truth = 5000.0 * np.exp(-0.01 * (71 + np.arange(1, 25)))
    np.testing.assert_allclose(fc["refugees"], truth, rtol=1e-10)
    assert fc["month"].iloc[0] == pd.Timestamp("2021-01-01") and fc["month"].iloc[-1] == pd.Timestamp("2022-12-01")


def test_demand_drift_recovers_noisy_trend():
    rng = np.random.default_rng(1)
    d = -0.008 + 0.002 * rng.standard_normal(200)
    s = _series(20000.0 * np.exp(np.concatenate([[0.0], np.cumsum(d)])))
    fit = D.fit_trend(s, 200, "drift")
    se = 0.002 / np.sqrt(200)
    assert abs(fit.slope - (-0.008)) < 3 * se
    assert fit.sigma == pytest.approx(0.002, rel=0.15)


@pytest.mark.parametrize("model", D.MODELS)
def test_demand_intervals_cover_at_nominal_rate(model):
    """Series simulated from the model itself: the 80% / 95% intervals cover the realised
    values at their nominal rates (400 replications, 3 binomial SE tolerance)."""
    rng = np.random.default_rng(20170427)
    n_rep, fit_months, horizon = 400, 24, 12
    hits = {0.8: np.zeros((n_rep, horizon), bool), 0.95: np.zeros((n_rep, horizon), bool)}
    for r in range(n_rep):
        n = fit_months + 1 + horizon
        e = 0.003 * rng.standard_normal(n)
        growth = -0.005 + (e if model == "drift" else np.cumsum(e))
        y = np.log(50000.0) + np.concatenate([[0.0], np.cumsum(growth[1:])])
        s = _series(np.exp(y))
        fit = D.fit_trend(s.iloc[: fit_months + 1], fit_months, model)
        fc = D.forecast(fit, horizon, (0.8, 0.95))
        actual = s.iloc[fit_months + 1:].to_numpy()
        for lv, k in ((0.8, "80"), (0.95, "95")):
            hits[lv][r] = (actual >= fc[f"refugees_lo{k}"]) & (actual <= fc[f"refugees_hi{k}"])
    for lv, h in hits.items():
        for j in (0, 5, 11):
            tol = 3 * np.sqrt(lv * (1 - lv) / n_rep)
            assert abs(h[:, j].mean() - lv) < tol, (model, lv, j + 1, h[:, j].mean())


def test_backtest_scores_naive_forecast_exactly():
    g = -0.01
    s = _series(8000.0 * np.exp(g * np.arange(60)))
    bt = D.backtest(s, 24, 6, 5)
    assert bt["origin"].nunique() == 5 and len(bt) == 30
    # the model recovers an exact trend: zero error, the naive no-change forecast misses
    assert bt["ape"].max() < 1e-8
    np.testing.assert_allclose(bt["naive_ape"], 100 * np.abs(1 - np.exp(-g * bt["h"])), rtol=1e-10)
    summ = D.backtest_summary(bt)
    assert list(summ["h"]) == [1, 2, 3, 4, 5, 6] and (summ["n_origins"] == 5).all()


def _muni_refugees(n_muni: int = 60, seed: int = 3) -> pd.DataFrame:
    """Municipalities with fixed expected shares of a smoothly declining state total and
    Poisson noise."""
    rng = np.random.default_rng(seed)
    share = rng.dirichlet(np.full(n_muni, 2.0))
    total = 30000.0 * np.exp(-0.006 * np.arange(len(MONTHS)))
    counts = rng.poisson(np.outer(share, total))
    return pd.DataFrame({"ags": np.repeat([f"08{i:06d}" for i in range(n_muni)], len(MONTHS)),
                         "month": np.tile(MONTHS, n_muni), "refugees": counts.ravel().astype(float)})


def test_municipal_projection_adds_up_and_covers():
    r = _muni_refugees()
    fit, fc, muni = D.project(r, 24, 24, 12)
    tot = muni.groupby("month")["refugees"].sum().to_numpy()
    np.testing.assert_allclose(tot, fc["refugees"], rtol=1e-10)
    assert (muni["refugees_lo80"] <= muni["refugees"] + 1e-9).all()
    assert (muni["refugees_hi95"] >= muni["refugees_hi80"] - 1e-9).all()
    shares = D.municipality_shares(r, fit.origin, 12)
    last12 = r[r["month"] > "2019-12-01"].groupby("ags")["refugees"].sum()
    np.testing.assert_allclose(shares.to_numpy(), (last12 / last12.sum()).to_numpy())
    # out-of-sample municipal coverage of the intervals is close to nominal (the state
    # total grows at a constant rate: drift model)
    mbt = D.municipality_backtest(r, 24, 12, 12, 12, model="drift")
    assert (mbt["n_share_origins"] == 12).all()
    assert 0.72 < mbt["coverage80"].mean() < 0.92
    assert 0.9 < mbt["coverage95"].mean() < 0.995
    assert (mbt["wape"] >= mbt["wape_share_only"] - 1.0).all()


def test_select_model_by_backtest():
    # constant growth plus reporting noise: drift; smoothly accelerating decline: local trend
    noisy = D.state_series(_muni_refugees())
    assert D.select_model(noisy, 24, 12, 12)[0] == "drift"
    t = np.arange(72)
    smooth = _series(80000 * np.exp(-0.0002 * t ** 2))
    model, mape = D.select_model(smooth, 24, 12, 12)
    assert model == "local_trend" and mape["local_trend"] < mape["drift"]


def test_state_demand_table_caseloads():
    s = _series(np.array([1000.0, 900.0, 810.0]), "2020-10-01")
    fit = D.fit_trend(_series(1000.0 * 0.9 ** np.arange(8), "2020-05-01"), 6, "drift")
    fc = D.forecast(fit, 2)
    funded = pd.Series([0.0, 10.0, 9.0], index=s.index)
    filled = pd.Series([0.0, 5.0, 6.0], index=s.index)
    t = D.state_demand_table(s, fc, funded, filled)
    obs = t[t["kind"] == "observed"]
    assert np.isnan(obs["caseload_funded"].iloc[0])
    assert obs["caseload_funded"].iloc[1] == pytest.approx(90.0)
    assert obs["caseload_filled"].iloc[2] == pytest.approx(135.0)
    proj = t[t["kind"] == "projected"]
    assert (proj["funded_vza"] == 9.0).all() and (proj["filled_vza"] == 6.0).all()
    # funded VZÄ keeping today's 90 refugees per funded VZÄ
    np.testing.assert_allclose(proj["vza_needed"], proj["refugees"] / 90.0)


def test_demand_input_errors_name_row_and_column():
    r = _muni_refugees(3)
    r.loc[7, "refugees"] = -1
    with pytest.raises(ValueError, match=r"refugees.parquet: row 7, column 'refugees'"):
        D.check_refugees(r, "refugees.parquet")
    r = _muni_refugees(3)
    with pytest.raises(ValueError, match="missing column"):
        D.check_refugees(r.drop(columns="month"), "x")
    gap = r[r["month"] != "2016-03-01"]
    with pytest.raises(ValueError, match="2016-03"):
        D.state_series(gap)


# =========================================================================== funding
def _posts(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["stellen_id", "ags", "vza_post", "share", "beginn", "ende"]).assign(
        beginn=lambda d: pd.to_datetime(d["beginn"]), ende=lambda d: pd.to_datetime(d["ende"]))


def test_filled_vza_hand_example():
    months = pd.date_range("2018-01-01", "2018-06-01", freq="MS")
    posts = _posts([
        ("S00001", "08000001", 0.8, 0.5, "2018-03-01", None),          # 0.4 from March on
        ("S00002", "08000001", 1.0, 1.0, "2018-03-16", "2018-04-10"),  # part of March and April
        ("S00003", "08000002", 0.6, 0.25, "2018-01-01", "2018-01-31"),  # all of January only
    ])
    f = FU.filled_vza(posts, months).set_index(["ags", "month"])["filled_vza"]
    a = f.loc["08000001"]
    assert a["2018-02-01"] == 0.0
    assert a["2018-03-01"] == pytest.approx(0.4 + 16 / 31)
    assert a["2018-04-01"] == pytest.approx(0.4 + 10 / 30)
    assert a["2018-05-01"] == pytest.approx(0.4) and a["2018-06-01"] == pytest.approx(0.4)
    b = f.loc["08000002"]
    assert b["2018-01-01"] == pytest.approx(0.15) and b["2018-02-01"] == 0.0


def _funding_fixture():
    verb = pd.DataFrame({"verband_id": ["V1", "V2"], "vza_bewilligt": [2.0, 1.0],
                         "foerdersumme_eur": [240000.0, 60000.0],
                         "bewilligt_am": pd.to_datetime(["2018-02-20", "2018-04-02"]),
                         "art_antragsteller": ["Landratsamt", "Gemeinde"]})
    members = pd.DataFrame({"ags": ["08000001", "08000002", "08000003"], "verband_id": ["V1", "V1", "V2"],
                            "vza_share": [1.0, 1.0, 1.0]})
    posts = _posts([
        ("S1", "08000001", 1.0, 1.0, "2018-01-01", None),   # before approval (retroactive)
        ("S2", "08000001", 0.5, 1.0, "2018-03-01", None),   # A: 1.5 filled from March
        ("S3", "08000002", 0.2, 1.0, "2018-05-01", None),   # B: 0.2 from May
        ("S4", "08000003", 1.0, 0.6, "2018-06-01", None),   # C: 0.6 from June
    ])
    return verb, members, posts


def test_funding_panel_state_and_verband_pooling():
    verb, members, posts = _funding_fixture()
    months = pd.date_range("2018-01-01", "2018-08-01", freq="MS")
    fp = FU.funding_panel(members, verb, posts, months, 24)
    x = fp.set_index(["ags", "month"])
    # funded from the approval month on; € = funded VZÄ x Fördersumme / (VZÄ x 24 months)
    assert x.loc[("08000001", "2018-01-01"), "funded_vza"] == 0.0
    assert x.loc[("08000001", "2018-02-01"), "funded_vza"] == 1.0
    assert x.loc[("08000003", "2018-03-01"), "funded_vza"] == 0.0
    assert x.loc[("08000003", "2018-04-01"), "eur_funded"] == pytest.approx(60000.0 / 24)
    assert x.loc[("08000001", "2018-02-01"), "eur_funded"] == pytest.approx(240000.0 / 2 / 24)
    s = FU.state_monthly(fp).set_index("month")
    jul = s.loc["2018-07-01"]
    assert jul["funded_vza"] == pytest.approx(3.0)
    assert jul["filled_vza"] == pytest.approx(1.5 + 0.2 + 0.6)
    assert jul["unfilled_share"] == pytest.approx(1 - 2.3 / 3.0)
    # municipal shortfall: B 0.8 + C 0.4; Verband V1 pools A's excess: max(2 - 1.7, 0) + 0.4
    assert jul["shortfall_vza"] == pytest.approx(1.2)
    assert jul["shortfall_verband_vza"] == pytest.approx(0.3 + 0.4)
    assert jul["excess_vza"] == pytest.approx(0.5)
    assert jul["eur_shortfall_verband"] == pytest.approx(0.3 * 240000 / 2 / 24 + 0.4 * 60000 / 24)
    assert s.loc["2018-01-01", "n_municipalities_funded"] == 0 and s.loc["2018-01-01", "filled_vza"] == 1.0
    rates = FU.verband_rates(verb, 24)
    assert list(rates["eur_per_vza_year"]) == [60000.0, 30000.0]


def test_fill_times_exact_and_censored():
    verb, members, posts = _funding_fixture()
    months = pd.date_range("2018-01-01", "2018-08-01", freq="MS")
    fp = FU.funding_panel(members, verb, posts, months, 24)
    rates = FU.verband_rates(verb, 24)
    ft = FU.fill_times(fp, members, rates, posts, (0.5, 0.9)).set_index("ags")
    # A: first post 2018-01, approval 2018-02 -> -1; 50% and 90% of 1.0 already in Jan
    assert ft.loc["08000001", "months_to_first_post"] == -1
    assert ft.loc["08000001", "months_to_fill50"] == -1
    # B: 0.2 of 1.0 never reaches 50%
    assert ft.loc["08000002", "months_to_first_post"] == 3
    assert not ft.loc["08000002", "reached50"] and np.isnan(ft.loc["08000002", "months_to_fill50"])
    # C: approval April, 0.6 from June -> 50% after 2 months, 90% never
    assert ft.loc["08000003", "months_to_fill50"] == 2 and not ft.loc["08000003", "reached90"]
    summ = FU.fill_time_summary(ft.reset_index(), (0.5, 0.9), min_cell=2)
    g = summ.set_index("group")
    assert g.loc["all", "n_municipalities"] == 3 and g.loc["all", "share_reached50"] == pytest.approx(2 / 3)
    # a group of one municipality (< min_cell) is blanked
    assert g.loc["Gemeinde", "suppressed"] and np.isnan(g.loc["Gemeinde", "months_to_fill50_median"])
    assert not g.loc["Landratsamt", "suppressed"]


def test_funding_errors_name_row_and_column():
    months = pd.date_range("2018-01-01", "2018-03-01", freq="MS")
    bad = _posts([("S1", "08000001", 0.5, 1.0, "2018-02-01", None), ("S2", "08000001", 0.5, 1.0, "2018-03-01", "2018-01-01")])
    with pytest.raises(ValueError, match=r"im_posts: row 1 \(stellen_id S2\): 'ende' 2018-01-01 before 'beginn'"):
        FU.filled_vza(bad, months, "im_posts")
    bad = _posts([("S1", "08000001", 0.0, 1.0, "2018-02-01", None)])
    with pytest.raises(ValueError, match=r"im_posts: row 0, column 'vza_post'"):
        FU.filled_vza(bad, months, "im_posts")
    verb, members, _ = _funding_fixture()
    with pytest.raises(ValueError, match=r"funding_members: row 2: verband_id 'V9'"):
        FU.funded_vza(members.assign(verband_id=["V1", "V1", "V9"]), FU.verband_rates(verb, 24), months)


# =========================================================================== indicators
def test_gap_runs():
    assert K.gap_runs(np.array([False, True, True, False, True])) == [2, 1]
    assert K.gap_runs(np.zeros(4, bool)) == []


def test_kpi_coverage_and_gaps_exact():
    q = pd.date_range("2019-01-01", periods=6, freq="QS")
    kpi = pd.DataFrame({"ags": "08000001", "quarter_start": q[:5], "clients": 10.0,
                        "first_talks": 1.0, "integration_plans": 2.0, "to_language_course": 1.0,
                        "to_training": 1.0, "to_work": [1.0, 2.0, np.nan, np.nan, 3.0]})
    kpi = pd.concat([kpi, kpi.assign(ags="08000002", to_work=1.0)], ignore_index=True)
    expected = pd.DataFrame({"ags": np.repeat(["08000001", "08000002"], 6), "quarter_start": np.tile(q, 2)})
    cov = K.coverage_table(kpi, expected).set_index("kpi")
    w = cov.loc["to_work"]
    # quarter 6 has no report row in either municipality
    assert w["n_expected"] == 12 and w["n_reported"] == 3 + 5 and w["coverage"] == pytest.approx(8 / 12)
    assert w["n_quarters_without_report_row"] == 2
    assert w["n_gap_runs"] == 3 and w["max_gap_quarters"] == 2  # A: Q3-Q4 and Q6; B: Q6
    assert w["share_municipalities_with_gap2"] == pytest.approx(0.5)
    assert cov.loc["clients", "max_gap_quarters"] == 1


def test_expected_quarters_start_at_first_post():
    kpi = K.check_kpi(pd.DataFrame({"ags": ["08000001"], "quarter_start": [pd.Timestamp("2019-04-01")],
                                    **{c: [1] for c in ("clients", *K.KPIS)}}))
    posts = pd.DataFrame({"ags": ["08000001"], "beginn": [pd.Timestamp("2018-11-20")]})
    e = K.expected_quarters(kpi, posts)
    assert list(e["quarter_start"]) == list(pd.date_range("2018-10-01", "2019-04-01", freq="QS"))


def test_admin_quarterly_change_per_100():
    months = pd.date_range("2019-01-01", "2019-06-01", freq="MS")
    p = pd.DataFrame({"ags": "08000001", "month": months, "refugees": [100, 100, 100, 200, 200, 200.0],
                      "employed": [5, 6, 10, 12, 14, 30.0], "in_training": 0.0,
                      "b1_holders": [1, 1, 1, 1, 1, np.nan]})
    a = K.admin_quarterly(p).set_index("quarter_start")
    assert np.isnan(a.loc["2019-01-01", "d_employed"])  # no previous quarter
    assert a.loc["2019-04-01", "d_employed"] == pytest.approx(100 * (30 - 10) / 200)
    assert np.isnan(a.loc["2019-04-01", "d_b1_holders"])  # end value not reported: not imputed
    assert np.isnan(a.loc["2019-04-01", "d_milestones"])


def _kpi_world(n_muni: int = 80, seed: int = 11):
    """Monthly stocks from random entries/exits; ``to_work`` reports a binomial share of the
    quarter's employment entries (tracks), the other KPIs are noise."""
    rng = np.random.default_rng(seed)
    months = pd.date_range("2017-01-01", "2020-12-01", freq="MS")
    q_of = months.to_period("Q")
    rows, kpis = [], []
    for i in range(n_muni):
        ags = f"08{i:06d}"
        ref = float(rng.integers(60, 400))
        lam = rng.gamma(2.0, 1.0, len(months)) * ref / 100
        entries = rng.poisson(lam)
        exits = rng.poisson(0.3 * lam.mean(), len(months))
        emp = 20 + np.cumsum(entries - exits)
        tr = 5 + np.cumsum(rng.poisson(1, len(months)) - rng.poisson(1, len(months)))
        b1 = 10 + np.cumsum(rng.poisson(2, len(months)))
        rows.append(pd.DataFrame({"ags": ags, "month": months, "refugees": ref, "employed": emp.astype(float),
                                  "in_training": tr.astype(float), "b1_holders": b1.astype(float)}))
        cov = rng.uniform(0.4, 0.9)
        for q in q_of.unique():
            m = q_of == q
            clients = rng.binomial(int(ref), cov)
            kpis.append({"ags": ags, "quarter_start": q.start_time, "clients": clients,
                         "first_talks": rng.poisson(3), "integration_plans": rng.binomial(clients, 0.5),
                         "to_language_course": rng.poisson(2), "to_training": rng.poisson(1),
                         "to_work": rng.binomial(int(entries[m].sum()), cov)})
    return pd.concat(rows, ignore_index=True), pd.DataFrame(kpis)


def test_kpi_correlation_detects_tracking_kpi_not_noise():
    panel, kpi = _kpi_world()
    kpi = K.check_kpi(kpi)
    expected = K.expected_quarters(kpi)
    table = K.analysis_table(kpi, expected, K.admin_quarterly(panel))
    corr = K.correlations(table, n_boot=99, seed=5)
    cov = K.coverage_table(kpi, expected)
    v = K.verdict_table(corr, cov).set_index("kpi")
    assert v.loc["to_work", "verdict"] == "tracks"
    assert v.loc["to_work", "r_within"] > 0.5 and v.loc["to_work", "r_within_ci_low"] > 0.3
    for noise in ("to_training", "to_language_course", "integration_plans", "first_talks"):
        assert v.loc[noise, "verdict"] == "does not track", noise
        assert abs(v.loc[noise, "r_within"]) < 0.1
    # the first quarter has no previous quarter end: dropped, so n_obs = 80 x 15
    assert v.loc["to_work", "n_obs"] == 80 * 15
    assert (v["coverage"] == 1.0).all()


def test_weighted_corr_and_demean():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(500)
    y = 2 * x + rng.standard_normal(500)
    assert K.weighted_corr(x, y, np.ones(500)) == pytest.approx(np.corrcoef(x, y)[0, 1])
    g = np.repeat(np.arange(50), 10)
    q = np.tile(np.arange(10), 50)
    v = rng.standard_normal(50)[g] + rng.standard_normal(10)[q]
    assert np.abs(K.demean(v, np.ones(500), g, q)).max() < 1e-8


def test_kpi_input_errors_name_row_and_column():
    kpi = pd.DataFrame({"ags": ["08000001"] * 2, "quarter_start": pd.to_datetime(["2019-01-01", "2019-04-01"]),
                        **{c: [1, 1] for c in ("clients", *K.KPIS)}})
    with pytest.raises(ValueError, match=r"kpi_reports: row 1, column 'to_work'"):
        K.check_kpi(kpi.assign(to_work=[1, -3]), "kpi_reports")
    with pytest.raises(ValueError, match=r"row 1: municipality 08000001 reports quarter 2019-01 twice"):
        K.check_kpi(kpi.assign(quarter_start=pd.to_datetime(["2019-01-01", "2019-02-01"])), "kpi_reports")


# =========================================================================== cost
def test_cost_interval_matches_analytic_normal_quantiles():
    mu, sd, F, R = 2.0, 0.4, 5_000_000.0, 1_000_000.0
    res = C.cost_per_person(mu, sd, F, R, level=0.95, draws=400_000, seed=1)
    K_ = 100 * F / R
    z = stats.norm.ppf(0.975)
    assert res.cost_status == "bounded" and not res.effect_ci_includes_zero
    assert res.eur_per_person_month_low == pytest.approx(K_ / (mu + z * sd), rel=0.005)
    assert res.eur_per_person_month_high == pytest.approx(K_ / (mu - z * sd), rel=0.005)
    assert res.eur_per_person_month == pytest.approx(K_ / mu, rel=0.005)
    assert res.eur_per_person_year == pytest.approx(12 * res.eur_per_person_month)
    per_m = 1e6 * R / (100 * F)
    assert res.extra_per_million_eur_low == pytest.approx((mu - z * sd) * per_m, rel=0.005)
    assert res.extra_per_million_eur_high == pytest.approx((mu + z * sd) * per_m, rel=0.005)
    assert res.extra_person_months == pytest.approx(mu / 100 * R)


def test_cost_with_t_draws_matches_t_quantiles():
    df = 12.0
    q = stats.t.ppf(0.975, df)
    est, se = 1.0, 0.3
    assert C.implied_df(est, se, est - q * se, est + q * se) == pytest.approx(df, rel=1e-6)
    z = stats.norm.ppf(0.975)
    assert C.implied_df(est, se, est - z * se, est + z * se) == np.inf
    res = C.cost_per_person(est, se, 1e6, 1e5, df=df, draws=400_000, seed=2)
    assert res.effect_low == pytest.approx(est - q * se, abs=0.01)
    assert res.eur_per_person_month_high == pytest.approx(1000.0 / (est - q * se), rel=0.01)


def test_cost_effect_ci_including_zero_is_flagged_unbounded():
    res = C.cost_per_person(0.5, 0.5, 1e6, 1e5, draws=100_000, seed=3)
    assert res.effect_ci_includes_zero and res.cost_status == "upper unbounded"
    assert np.isnan(res.eur_per_person_month_high) and np.isnan(res.eur_per_person_year_high)
    # the lower bound is K / upper effect bound; the effect per EUR is defined and spans 0
    assert res.eur_per_person_month_low == pytest.approx(1000.0 / (0.5 + 1.96 * 0.5), rel=0.01)
    assert res.extra_per_million_eur_low < 0 < res.extra_per_million_eur_high
    assert 0.1 < res.p_effect_le_0 < 0.2
    neg = C.cost_per_person(-2.0, 0.5, 1e6, 1e5, draws=10_000, seed=4)
    assert neg.cost_status == "undefined" and not neg.effect_ci_includes_zero
    assert np.isnan([neg.eur_per_person_month, neg.eur_per_person_month_low, neg.eur_per_person_month_high]).all()
    with pytest.raises(ValueError, match="must be positive"):
        C.cost_per_person(1.0, 0.1, 0.0, 1e5)


def test_cost_table_scope_and_totals():
    months = pd.date_range("2018-01-01", "2018-12-01", freq="MS")
    panel = pd.DataFrame({"ags": np.repeat(["A", "B"], 12), "month": np.tile(months, 2),
                          "t": np.tile(np.arange(1, 13), 2), "g": np.repeat([4, 0], 12), "refugees": 100.0})
    funding = panel[["ags", "month"]].assign(eur_funded=1000.0)
    est = [{"model": "m1", "outcome": "rate_employment", "estimate": 1.0, "se": 0.1, "ci_low": 0.8,
            "ci_high": 1.2, "event_times": [0, 2]},
           {"model": "m2", "outcome": "rate_language", "estimate": 1.0, "se": 0.1, "ci_low": 0.8, "ci_high": 1.2}]
    t = C.cost_table(est, panel, funding, draws=2000).set_index("model")
    # m1: A's months t = 4..6 (event time 0..2); m2: every treated month t = 4..12
    assert t.loc["m1", "n_municipality_months"] == 3 and t.loc["m1", "funding_eur"] == 3000.0
    assert t.loc["m1", "person_months"] == 300.0 and t.loc["m2", "n_municipality_months"] == 9
    assert t.loc["m1", "extra_person_months"] == pytest.approx(3.0)
    assert t.loc["m2", "count"] == "b1_holders"


# =========================================================================== params
def test_params_defaults_and_unknown_key():
    assert params({})["horizon_months"] == DEFAULTS["horizon_months"]
    assert params({"policy": {"horizon_months": 6}})["horizon_months"] == 6
    with pytest.raises(ValueError, match="unknown key"):
        params({"policy": {"horizon": 6}})


def test_config_schema_matches_the_defaults():
    """The config schema's ``policy`` section lists exactly the keys of DEFAULTS, every
    default validates, and a misspelt key is an error naming it and where it sits."""
    import copy

    from conftest import ROOT

    from ifm_eval.config import ConfigError, config_schema, load_config, validate_config

    props = config_schema()["properties"]["policy"]["properties"]
    assert set(props) == set(DEFAULTS)
    cfg = copy.deepcopy(load_config(ROOT / "config.yaml"))
    cfg["policy"] = copy.deepcopy(DEFAULTS)
    assert validate_config(cfg)["policy"] == DEFAULTS
    cfg["policy"]["horizon"] = 6
    with pytest.raises(ConfigError, match="'horizon' at 'policy'"):
        validate_config(cfg)
    cfg["policy"].pop("horizon")
    cfg["policy"]["model"] = "arima"
    with pytest.raises(ConfigError, match="policy/model"):
        validate_config(cfg)


# =========================================================================== stage
def _write_fixture(root: Path, n_muni: int = 12, seed: int = 7) -> dict:
    """Small processed inputs with the real schema: two Verbände, 12 municipalities."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    ags = [f"0811{i:04d}" for i in range(n_muni)]
    verband = ["PIK-IM-1001" if i < n_muni // 2 else "PIK-IM-1002" for i in range(n_muni)]
    share = rng.dirichlet(np.full(n_muni, 3.0))
    total = np.concatenate([np.linspace(2000, 9000, 30), 9000 * np.exp(-0.008 * np.arange(42))])
    ref = rng.poisson(np.outer(share, total)).astype(float)
    refugees = pd.DataFrame({"ags": np.repeat(ags, len(MONTHS)), "gemeinde": "X", "month": np.tile(MONTHS, n_muni),
                             "refugees": ref.ravel()})
    verb = pd.DataFrame({"antrag_nr": ["PIK-IM-1001", "PIK-IM-1002"], "verband_id": ["PIK-IM-1001", "PIK-IM-1002"],
                         "art_antragsteller": ["Landratsamt", "Verwaltungsgemeinschaft"],
                         "vza_bewilligt": [3.0, 2.0], "foerdersumme_eur": [375000.0, 250000.0],
                         "bewilligt_am": pd.to_datetime(["2017-09-10", "2017-12-01"])})
    vza = np.where(np.array(verband) == "PIK-IM-1001", 3.0, 2.0) / (n_muni // 2)
    members = pd.DataFrame({"antrag_nr": verband, "ags": ags, "verband_id": verband, "vza_share": vza,
                            "refugees_2017_09_15": ref[:, 32].astype(int)})
    start = pd.to_datetime(["2017-10-01"] * (n_muni // 2) + ["2018-02-15"] * (n_muni - n_muni // 2))
    posts = pd.DataFrame({"stellen_id": [f"S{i:05d}" for i in range(n_muni)], "antrag_nr": verband, "ags": ags,
                          "vza_post": np.minimum(vza * 0.9, 1.0), "share": 1.0, "beginn": start,
                          "ende": pd.NaT, "beginn_month": start.to_period("M").to_timestamp()})
    g = np.where(start.month == 10, 34, 38)
    t = np.arange(1, len(MONTHS) + 1)
    emp = np.cumsum(rng.poisson(np.maximum(ref * 0.004, 0.1)), axis=1)
    panel = pd.DataFrame({"ags": np.repeat(ags, len(MONTHS)), "month": np.tile(MONTHS, n_muni),
                          "t": np.tile(t, n_muni), "g": np.repeat(g, len(MONTHS)), "refugees": ref.ravel(),
                          "employed": emp.ravel().astype(float),
                          "in_training": np.cumsum(rng.poisson(0.5, ref.shape), axis=1).ravel().astype(float),
                          "b1_holders": np.cumsum(rng.poisson(1.0, ref.shape), axis=1).ravel().astype(float)})
    panel.loc[rng.random(len(panel)) < 0.05, "b1_holders"] = np.nan
    quarters = pd.date_range("2017-10-01", "2020-10-01", freq="QS")
    kpi = pd.DataFrame({"ags": np.repeat(ags, len(quarters)), "gemeinde": "X", "quarter": "q",
                        "quarter_start": np.tile(quarters, n_muni)})
    for c in ("clients", *K.KPIS):
        kpi[c] = pd.array(rng.poisson(20 if c == "clients" else 2, len(kpi)), dtype="Int64")
    kpi.loc[rng.random(len(kpi)) < 0.2, "to_work"] = pd.NA
    kpi = kpi.drop(index=[3, 4])  # two quarters without a report row
    files = {"refugees": refugees, "funding_verbaende": verb, "funding_members": members, "posts": posts,
             "kpi": kpi, "panel": panel}
    paths = {}
    for k, df in files.items():
        paths[k] = root / f"{k}.parquet"
        df.to_parquet(paths[k], index=False)
    tidy = pd.DataFrame({"spec": ["cs_emp"] * 2, "estimator": "callaway_santanna", "outcome": "rate_employment",
                         "kind": ["overall", "event_time"], "term": ["dynamic", "e+0"], "estimate": [0.5, 0.4],
                         "se": [0.4, 0.3], "ci_low": [0.5 - T43 * 0.4, -0.2], "ci_high": [0.5 + T43 * 0.4, 1.0]})
    tidy.to_parquet(root / "cs_emp.parquet", index=False)
    meta = {"model": "cs_emp", "status": "ok", "alpha": 0.05, "estimator": "callaway_santanna",
            "info": {"headline": {"term": "dynamic", "aggregation": "event_time_mean", "event_times": list(range(13))}},
            "spec": {"event_window": [-12, 12]}}
    (root / "cs_emp.json").write_text(json.dumps(meta), encoding="utf-8")
    failed = {"model": "never", "status": "not_estimable", "info": {}}
    (root / "never.json").write_text(json.dumps(failed), encoding="utf-8")
    pd.DataFrame(columns=tidy.columns).to_parquet(root / "never.parquet", index=False)
    paths["tidy"] = [root / "cs_emp.parquet", root / "never.parquet"]
    paths["meta"] = [root / "cs_emp.json", root / "never.json"]
    return paths


def _cfg(tmp: Path, min_cell: int = 5, **policy) -> dict:
    return {"seed": 1, "data": {"source": "synthetic", "results_dir": str(tmp / "results"),
                                "processed_dir": str(tmp / "processed")},
            "disclosure": {"min_cell": min_cell}, "report": {"language": "de"},
            "policy": {"kpi_bootstrap": 29, "cost_draws": 4000, **policy}}


def _run(cfg: dict, inputs: dict):
    from ifm_eval.outputs.targets import policy_outputs
    from ifm_eval.policy.stage import run_policy
    from ifm_eval.stage_io import StageIO

    outs = policy_outputs(cfg)
    return run_policy(cfg, StageIO.of("policy", inputs, outs)), outs


def _check_outputs(cfg: dict, outs: dict, tables: dict) -> None:
    from ifm_eval.outputs.disclosure import check_files
    from ifm_eval.outputs.style import SYNTHETIC_MARK

    results = Path(cfg["data"]["results_dir"]).resolve()
    processed = Path(cfg["data"]["processed_dir"]).resolve()
    for name, path in outs.items():
        assert path.is_file() and path.stat().st_size > 0, name
    for name in ("demand_municipality", "funding_municipality", "fill_times_municipality", "kpi_quarterly"):
        assert processed in outs[name].resolve().parents and results not in outs[name].resolve().parents
    csvs = [p for p in outs.values() if p.suffix == ".csv" and results in p.resolve().parents]
    assert len(csvs) == 8
    assert check_files(csvs, cfg["disclosure"]["min_cell"]) == []
    for p in csvs:
        df = pd.read_csv(p)
        assert (df["data_source"] == SYNTHETIC_MARK).all(), p
    for key in ("demand", "funding", "kpi"):
        assert outs[f"{key}_figure"].read_bytes()[:4] == b"\x89PNG"
        assert outs[f"{key}_pdf"].read_bytes()[:4] == b"%PDF"
    assert set(tables) == {"summary", "demand_state", "demand_backtest", "funding_state", "fill_times",
                           "kpi_indicators", "kpi_correlations", "cost"}


def test_stage_end_to_end_on_fixture(tmp_path):
    inputs = _write_fixture(tmp_path / "in")
    cfg = _cfg(tmp_path, min_cell=7)
    tables, outs = _run(cfg, inputs)
    _check_outputs(cfg, outs, tables)
    # funded vs filled: 5 VZÄ funded, posts at 0.9 x the funded share each
    fs = tables["funding_state"].set_index("month")
    assert fs.loc[pd.Timestamp("2020-12-01"), "funded_vza"] == pytest.approx(5.0)
    assert fs.loc[pd.Timestamp("2020-12-01"), "filled_vza"] == pytest.approx(4.5)
    assert fs.loc[pd.Timestamp("2020-12-01"), "unfilled_share"] == pytest.approx(0.1)
    # months with fewer than min_cell (7) funded municipalities are not published
    assert fs.loc[pd.Timestamp("2017-09-01"), "n_municipalities_funded"] == 6
    assert np.isnan(fs.loc[pd.Timestamp("2017-09-01"), ["funded_vza", "unfilled_share"]].astype(float)).all()
    processed = pd.read_parquet(outs["funding_municipality"])
    assert processed.loc[processed["month"] == "2017-09-01", "funded_vza"].sum() == pytest.approx(3.0)
    proj = tables["demand_state"]
    assert (proj["kind"] == "projected").sum() == DEFAULTS["horizon_months"]
    cost = tables["cost"]
    assert list(cost["model"]) == ["cs_emp"] and cost["effect_df"].iloc[0] == pytest.approx(43, rel=1e-4)
    assert cost["cost_status"].iloc[0] == "upper unbounded" and np.isnan(cost["eur_per_person_year_high"].iloc[0])
    lin = pd.read_csv(outs["lineage"])
    assert {"kpi", "estimates"} <= set(lin["source"])
    drop = lin[(lin["source"] == "kpi") & (lin["step"] == "to_work vs employed")].iloc[0]
    assert drop["action"] == "drop" and drop["rows_in"] - drop["rows_out"] == drop["n_affected"] > 0
    assert "no headline" in lin.loc[lin["source"] == "estimates", "step"].iloc[0]
    exp_row = lin[lin["step"] == "expected quarters"].iloc[0]
    assert "2 expected municipality-quarters" in exp_row["reason"]
    # a second run gives byte-identical tables and figures (no timestamps, seeded draws)
    cfg2 = _cfg(tmp_path / "again", min_cell=7)
    _, outs2 = _run(cfg2, inputs)
    for name, path in outs.items():
        if path.suffix in {".csv", ".png", ".pdf"}:
            assert path.read_bytes() == outs2[name].read_bytes(), name


def test_stage_rejects_wrong_io(tmp_path):
    from ifm_eval.outputs.targets import policy_outputs
    from ifm_eval.policy.stage import run_policy
    from ifm_eval.stage_io import StageIO, StageIOError

    inputs = _write_fixture(tmp_path / "in")
    cfg = _cfg(tmp_path)
    outs = policy_outputs(cfg)
    del inputs["kpi"]
    with pytest.raises(StageIOError, match=r"missing input\(s\) \['kpi'\]"):
        run_policy(cfg, StageIO.of("policy", inputs, outs))


def test_stage_on_processed_stand_in_files(tmp_path):
    ingest = ROOT / "data" / "processed" / "ingest"
    panel = ROOT / "data" / "processed" / "panel" / "panel.parquet"
    est = ROOT / "results" / "estimates" / "callaway_santanna_rate_employment.parquet"
    if not ((ingest / "refugees_au.parquet").is_file() and panel.is_file() and est.is_file()):
        pytest.skip("processed stand-in files not built in this checkout")
    inputs = {"refugees": ingest / "refugees_au.parquet", "funding_verbaende": ingest / "funding_verbaende.parquet",
              "funding_members": ingest / "funding_members.parquet", "posts": ingest / "im_posts.parquet",
              "kpi": ingest / "kpi_reports.parquet", "panel": panel, "tidy": [est], "meta": [est.with_suffix(".json")]}
    cfg = _cfg(tmp_path)
    tables, outs = _run(cfg, inputs)
    _check_outputs(cfg, outs, tables)
    members = pd.read_parquet(ingest / "funding_members.parquet")
    fs = tables["funding_state"]
    assert fs["funded_vza"].max() == pytest.approx(members["vza_share"].sum())
    posts = pd.read_parquet(ingest / "im_posts.parquet")
    assert fs["filled_vza"].max() <= float((posts["vza_post"] * posts["share"]).sum()) + 1e-9
    bt = tables["demand_backtest"]
    assert (bt["mape"] >= 0).all() and bt["n_origins"].min() >= 1
    assert set(tables["kpi_indicators"]["verdict"]) <= set(K.VERDICTS)
    assert len(tables["cost"]) == 1
