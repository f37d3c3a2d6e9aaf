"""Borusyak-Jaravel-Spiess imputation and Gardner two-stage DiD: agreement with diff-diff
on mpdta, recovery of planted effects, single-period cohorts, memory (no dense dummies)."""

from __future__ import annotations

import tracemalloc
import warnings

import numpy as np
import pandas as pd
import pytest
from test_twfe import simulate_staggered, true_path  # noqa: I001  (tests/ on sys.path)

from ifm_eval.estimators.gardner import gardner
from ifm_eval.estimators.imputation import imputation


@pytest.fixture(scope="module")
def sim() -> pd.DataFrame:
    return simulate_staggered()


@pytest.mark.parametrize("covariates", [None, ["xv"]])
def test_imputation_matches_diff_diff_on_mpdta(mpdta, covariates):
    dd = pytest.importorskip("diff_diff")
    res = imputation(mpdta, "lemp", "countyreal", "year", "first.treat", covariates=covariates)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = dd.ImputationDiD(cluster="countyreal").fit(
            mpdta, "lemp", "countyreal", "year", "first.treat", covariates=covariates
        )
        es_ref = ref.aggregate("event_study")
    ov = res.rows("overall").iloc[0]
    assert ov["estimate"] == pytest.approx(ref.overall_att, abs=1e-10)
    # Theorem-3 conservative SE, same v_it and cohort x horizon auxiliary partition
    assert ov["se"] == pytest.approx(ref.overall_se, rel=1e-8)
    es = res.rows("event_time")
    for e, att, se in zip(es_ref.event_time, es_ref.att, es_ref.se, strict=False):
        if e < 0:
            continue  # pre-periods: different lead conventions (see test_pretrend_rows)
        assert es.loc[int(e), "estimate"] == pytest.approx(att, abs=1e-10)
        assert es.loc[int(e), "se"] == pytest.approx(se, rel=1e-8)


def test_gardner_matches_diff_diff_on_mpdta(mpdta):
    dd = pytest.importorskip("diff_diff")
    res = gardner(mpdta, "lemp", "countyreal", "year", "first.treat")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = dd.TwoStageDiD(cluster="countyreal").fit(
            mpdta, "lemp", "countyreal", "year", "first.treat"
        )
        es_ref = ref.aggregate("event_study")
    ov = res.rows("overall").iloc[0]
    assert ov["estimate"] == pytest.approx(ref.overall_att, abs=1e-10)
    assert ov["se"] == pytest.approx(ref.overall_se, rel=1e-8)  # GMM-corrected, clustered
    es = res.rows("event_time")
    for e, att, se in zip(es_ref.event_time, es_ref.att, es_ref.se, strict=False):
        if e >= 0:
            assert es.loc[int(e), "estimate"] == pytest.approx(att, abs=1e-10)
            assert es.loc[int(e), "se"] == pytest.approx(se, rel=1e-8)


@pytest.mark.parametrize("estimator", [imputation, gardner])
def test_recovers_planted_path(sim, estimator):
    window = (-5, 10)
    res = estimator(sim, "y", "unit", "time", "g", event_window=window, cluster="kreis")
    truth = true_path(sim, window)
    es = res.rows("event_time")
    post = es[es["event_time"] >= 0]
    z = (post["estimate"] - truth.reindex(post.index)) / post["se"]
    assert np.abs(z).max() < 3, z
    # overall: treated observations with a control (t < last cohort), e in [0, 10]
    last = sim["g"].max()
    tr = sim[
        (sim["g"] > 0)
        & (sim["time"] >= sim["g"])
        & (sim["time"] < last)
        & (sim["time"] - sim["g"] <= window[1])
    ]
    ov = res.rows("overall").iloc[0]
    if estimator is imputation:
        assert abs(ov["estimate"] - tr["tau"].mean()) < 3 * ov["se"]
    # the observations after the last cohort starts cannot be imputed, and say so
    assert any("cannot be imputed" in w for w in res.warnings)


def test_single_untreated_period_cohorts_do_not_crash():
    df = simulate_staggered(n_units=90, n_periods=12, cohorts=(1, 2, 6, 9, 12), seed=5)
    # cohort 2 has exactly one untreated period (t = 1); cohort 1 has none
    for est in (imputation, gardner):
        res = est(df, "y", "unit", "time", "g", covariates=["xv"], event_window=(-3, 5))
        assert np.isfinite(res.rows("overall")["estimate"]).all()
        msg = [w for w in res.warnings if "cannot be imputed" in w]
        assert msg and "1" in msg[0]
    res = imputation(df, "y", "unit", "time", "g", event_window=(-3, 5))
    assert res.info["n_treated_not_imputable"] >= (df["g"] == 1).sum()
    groups = res.rows("group")["cohort"].tolist()
    assert 2 in groups and 1 not in groups


def test_weights_and_anticipation(sim):
    res = imputation(
        sim, "y", "unit", "time", "g", weights="w", anticipation=2, event_window=(-5, 6)
    )
    es = res.rows("event_time")
    assert es.loc[es["term"].str.startswith("pre"), "event_time"].tolist() == [-5, -4, -3]
    es = es[~es["term"].str.startswith("pre")]
    assert es["event_time"].min() == -2  # anticipation horizons are reported
    truth = true_path(sim, (-5, 6))
    post = es[es["event_time"] >= 0]
    # weights are unrelated to effects here, so the weighted path is still the truth
    z = (post["estimate"] - truth.reindex(post.index)) / post["se"]
    assert np.abs(z).max() < 3.5
    assert np.abs(es.loc[[-2, -1], "estimate"] / es.loc[[-2, -1], "se"]).max() < 3


def test_memory_has_no_dense_dummies():
    # 1,000 units x 60 periods: a dense unit-dummy matrix alone would take 480 MB
    df = simulate_staggered(n_units=1000, n_periods=60, cohorts=(10, 20, 30, 40, 50, 60))
    tracemalloc.start()
    try:
        imputation(df, "y", "unit", "time", "g", event_window=(-6, 12), cluster="kreis")
        gardner(df, "y", "unit", "time", "g", event_window=(-6, 12), cluster="kreis")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 200e6, peak


def test_pretrend_rows(sim):
    """Pre-periods are BJS Test 1 (Stata did_imputation pretrends(k) convention): leads
    -k..-1 on untreated observations relative to earlier periods. diff-diff instead omits
    e = -1 as the reference, so its lead coefficients are not comparable one to one."""
    res = imputation(sim, "y", "unit", "time", "g", event_window=(-4, 6), cluster="kreis")
    es = res.rows("event_time")
    pre = es[es["term"].str.startswith("pre")]
    assert pre["event_time"].tolist() == [-4, -3, -2, -1]
    assert np.abs(pre["estimate"] / pre["se"]).max() < 3  # parallel trends hold in sim
    assert set(res.vcov.index) == set(range(0, 7))  # leads are not in the imputation vcov
    off = imputation(sim, "y", "unit", "time", "g", event_window=(-4, 6), pretrends=False)
    assert not off.rows("event_time")["term"].str.startswith("pre").any()


def test_disconnected_untreated_graph_is_not_bridged():
    """Units observed only early and units observed only late share no untreated period:
    their effects are not comparable, so no treated observation is imputed across groups."""
    df = simulate_staggered(n_units=120, n_periods=20, cohorts=(6, 10, 14, 18), seed=8)
    u = df["unit"].str[1:].astype(int)
    early = u % 2 == 0
    df = df[(early & (df["time"] <= 10)) | (~early & (df["time"] > 10))]
    res = imputation(df, "y", "unit", "time", "g", event_window=(-3, 5))
    assert any("disconnected" in w for w in res.warnings)
    assert np.isfinite(res.rows("overall")["estimate"]).all()


def _no_never_treated_thin_tail(seed: int = 3) -> pd.DataFrame:
    """No never-treated units; the last cohort (g = 36) has only 5 units, so periods
    30..35 have 5 untreated units and periods >= 36 none."""
    df = simulate_staggered(n_units=300, n_periods=40, cohorts=(10, 20, 30), seed=seed)
    u = df["unit"].str[1:].astype(int)
    late = u < 5
    df.loc[late, "g"] = 36
    e = df["time"] - df["g"]
    df.loc[late, "tau"] = np.where(e[late] >= 0, 1.0, 0.0)
    df.loc[late, "y"] = df.loc[late, "y"]  # effects of the original cohort are irrelevant
    return df


@pytest.mark.parametrize("estimator", [imputation, gardner])
@pytest.mark.parametrize("min_untreated", [1, 10])
def test_periods_without_enough_untreated_units_are_dropped_and_reported(estimator, min_untreated):
    df = _no_never_treated_thin_tail()
    res = estimator(
        df,
        "y",
        "unit",
        "time",
        "g",
        covariates=["x"],
        event_window=(-5, 25),
        min_untreated_per_period=min_untreated,
    )
    es = res.rows("event_time")
    assert np.isfinite(es["estimate"]).all() and np.isfinite(res.rows("overall")["estimate"]).all()
    cells = pd.DataFrame(res.info["dropped_cells"])
    assert set(cells.loc[cells["reason"] == "no_untreated_observation", "time"]) == set(
        range(36, 41)
    )
    cells = cells[cells["reason"] == "thin_period"]
    # periods >= 36: no untreated unit at all -> never imputed (unit/period rule);
    # periods 30..35 (5 untreated units) are dropped when 5 < min_untreated
    thin = set(cells["time"]) if len(cells) else set()
    if min_untreated > 5:
        assert thin == set(range(30, 36))
        assert set(cells["cohort"]) == {10, 20, 30}
        exp = int(((df["g"] <= df["time"]) & df["time"].between(30, 35)).sum())
        assert cells["n_obs"].sum() == exp
        assert any("fewer than 10 untreated units" in w for w in res.warnings)
    else:
        assert thin == set()
    # with min 10 no treated observation after period 29 is used
    if min_untreated > 5 and estimator is imputation:
        assert res.info["n_treated_imputed"] == int(
            ((df["g"] <= df["time"]) & (df["time"] < 30)).sum()
        )


def test_unidentified_covariate_slopes_make_a_period_unsupported():
    """With one untreated unit in a period, a covariate x period slope is not identified
    (pyfixest drops it as collinear): even with min_untreated_per_period=1 the treated
    observations of that period are not imputed with an arbitrary slope."""
    df = simulate_staggered(n_units=200, n_periods=20, cohorts=(8, 14), seed=2)
    u = df["unit"].str[1:].astype(int)
    df.loc[u == 0, "g"] = 18  # one unit untreated in periods 14..17
    res = imputation(
        df,
        "y",
        "unit",
        "time",
        "g",
        covariates=["x"],
        event_window=(-3, 8),
        min_untreated_per_period=1,
    )
    cells = pd.DataFrame(res.info["dropped_cells"])
    assert set(cells.loc[cells["reason"] == "thin_period", "time"]) == {14, 15, 16, 17}
    assert np.isfinite(res.rows("event_time")["estimate"]).all()
