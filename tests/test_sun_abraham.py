"""Sun & Abraham (2021): agreement with diff-diff on mpdta, recovery of planted dynamic
effects with the last-treated cohort as control, covariance of the aggregated effects."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from test_twfe import simulate_staggered, true_path  # noqa: I001  (tests/ on sys.path)

from ifm_eval.estimators.sun_abraham import sun_abraham


@pytest.mark.parametrize("covariates", [None, ["xv"]])
def test_matches_diff_diff_on_mpdta(mpdta, covariates):
    dd = pytest.importorskip("diff_diff")
    res = sun_abraham(
        mpdta,
        "lemp",
        "countyreal",
        "year",
        "first.treat",
        covariates=covariates,
        control_group="never_treated",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = dd.SunAbraham(cluster="countyreal").fit(
            mpdta, "lemp", "countyreal", "year", "first.treat", covariates=covariates
        )
    es = res.rows("event_time")
    for e, eff in ref.event_study_effects.items():
        # point estimates: same regression, same cohort-share weights
        assert es.loc[int(e), "estimate"] == pytest.approx(eff["effect"], abs=1e-10)
        # SEs: both CR1 clustered by county with K excluding the nested unit effects
        # (pyfixest "nonnested" = diff-diff's absorbed-FE CR1 adjustment): equal to 1e-8
        assert es.loc[int(e), "se"] == pytest.approx(eff["se"], rel=1e-8)
    ov = res.rows("overall").iloc[0]
    assert ov["estimate"] == pytest.approx(ref.overall_att, abs=1e-10)
    assert ov["se"] == pytest.approx(ref.overall_se, rel=1e-8)


def test_recovers_planted_path_with_last_treated_control():
    df = simulate_staggered()
    window = (-5, 10)
    res = sun_abraham(df, "y", "unit", "time", "g", event_window=window, cluster="kreis")
    assert res.info["control"] == "last_treated" and res.info["control_cohort"] == 38
    truth = true_path(df, window)
    es = res.rows("event_time")
    post = es[es["event_time"] >= 0]
    z = (post["estimate"] - truth.reindex(post.index)) / post["se"]
    assert np.abs(z).max() < 3, z
    pre = es[(es["event_time"] < 0) & (es["term"] != "reference")]
    assert np.abs(pre["estimate"] / pre["se"]).max() < 3
    # no observation from the control cohort's treatment on
    assert any("dropped" in w and ">= 38" in w for w in res.warnings)


def test_aggregated_covariance_is_delta_method():
    df = simulate_staggered(n_units=120, n_periods=20, cohorts=(6, 10, 14, 18), seed=3)
    res = sun_abraham(df, "y", "unit", "time", "g", cluster="kreis")
    V = res.vcov.to_numpy()
    es = res.rows("event_time")
    es = es[es["term"] != "reference"]
    assert np.allclose(V, V.T)
    assert np.linalg.eigvalsh(V).min() > -1e-12
    np.testing.assert_allclose(np.sqrt(np.diag(V)), es.loc[res.vcov.index, "se"], rtol=1e-12)
    # cohort-share weights sum to one at each event time; aggregated estimates equal the
    # weighted cohort effects
    att = res.rows("att_gt")
    for e, w in res.info["weights"].items():
        assert sum(w.values()) == pytest.approx(1.0)
        cells = att[att["event_time"] == e].set_index("cohort")["estimate"]
        assert es.loc[e, "estimate"] == pytest.approx(sum(cells[g] * wt for g, wt in w.items()))
    # off-diagonal covariances are used: the overall SE differs from the no-covariance one
    post = [e for e in res.vcov.index if e >= 0]
    assert (
        np.abs(
            res.vcov.loc[post, post].to_numpy()
            - np.diag(np.diag(res.vcov.loc[post, post].to_numpy()))
        ).max()
        > 0
    )


def test_covariates_and_identification_warnings():
    df = simulate_staggered(n_units=120, n_periods=20, cohorts=(1, 6, 10, 14, 18), seed=4)
    res = sun_abraham(df, "y", "unit", "time", "g", covariates=["xv", "x"])
    # cohort 1 has no pre-period: not identified, dropped with a message
    assert any("no observation at the reference period" in w for w in res.warnings)
    assert 1 not in res.rows("att_gt")["cohort"].tolist()
    with pytest.raises(ValueError, match="never-treated"):
        sun_abraham(
            df, "y", "unit", "time", "g", control_group="never_treated", fallback_last_treated=False
        )
    fb = sun_abraham(df, "y", "unit", "time", "g", control_group="never_treated")
    assert fb.info["control"] == "last_treated"
    assert any("serves as never-treated" in w for w in fb.warnings)


def test_never_treated_control_keeps_all_periods():
    df = simulate_staggered(n_units=150, n_periods=20, cohorts=(6, 10, 14), never_treated=30)
    res = sun_abraham(df, "y", "unit", "time", "g", cluster="kreis")
    assert res.info["control"] == "never_treated"
    assert res.n_obs == len(df)
    last = sun_abraham(df, "y", "unit", "time", "g", control_group="last_treated")
    assert last.info["control_cohort"] == 14 and last.n_obs < len(df)


def test_periods_without_anchor_are_dropped_not_left_to_collinearity():
    """With a tiny last-treated control cohort that is unobserved in some periods, those
    periods have no control / reference observation: they are dropped explicitly."""
    df = simulate_staggered(n_units=100, n_periods=20, cohorts=(6, 10, 14, 18), seed=9)
    ctrl = df.loc[df["g"] == 18, "unit"].unique()
    df = df[~df["unit"].isin(ctrl[1:])]  # a single control unit ...
    df = df[~((df["unit"] == ctrl[0]) & (df["time"].isin([3, 4, 11])))]  # ... with gaps
    res = sun_abraham(df, "y", "unit", "time", "g", min_untreated_per_period=1)
    # periods 3, 4, 11 have no control unit: dropped and reported (by the control-count
    # rule; the anchor-graph rule would catch them otherwise)
    msg = [
        w
        for w in res.warnings
        if "not linked to the rest" in w or "periods 3 (0), 4 (0), 11 (0)" in w
    ]
    assert msg, res.warnings
    assert not any("collinear" in w for w in res.warnings)


def test_sparse_last_cohort_is_passed_over_as_control_cohort():
    """A last cohort observed only in a few early periods cannot anchor the time effects
    (the stand-in panel has one such municipality): the latest well-observed cohort is the
    control cohort and the sparse one joins the controls; the planted path is recovered."""
    df = simulate_staggered()  # cohorts 8..32 and 38
    last = df.loc[df["g"] == 38, "unit"].unique()
    keep = ~(df["unit"].isin(last[1:]))  # one unit left in the last cohort ...
    keep &= ~((df["unit"] == last[0]) & (df["time"] > 6))  # ... observed in t = 1..6 only
    df = df[keep]
    res = sun_abraham(df, "y", "unit", "time", "g", event_window=(-5, 10), cluster="kreis")
    assert res.info["control_cohort"] == 32
    assert any("[38]" in w for w in res.warnings)
    assert not any("collinear" in w or "not linked" in w for w in res.warnings)
    d = df[(df["g"] > 0) & (df["g"] < 32) & (df["time"] < 32)]
    d = d.assign(e=d["time"] - d["g"])
    truth = d[(d["e"] >= 0) & (d["e"] <= 10)].groupby("e")["tau"].mean()
    post = res.rows("event_time")
    post = post[post["event_time"] >= 0]
    z = (post["estimate"] - truth.reindex(post.index)) / post["se"]
    assert np.abs(z).max() < 3, z


def test_thin_last_cohort_is_not_the_control_and_thin_periods_are_dropped():
    """No never-treated units; the last cohort has 5 units: with min_untreated_per_period
    = 10 the control group is the last cohort with >= 10 units (with later ones), and the
    estimates are finite; with 1 the 5-unit cohort is the control."""
    df = simulate_staggered(n_units=300, n_periods=40, cohorts=(10, 20, 30), seed=3)
    u = df["unit"].str[1:].astype(int)
    df.loc[u < 5, "g"] = 36
    res = sun_abraham(df, "y", "unit", "time", "g", min_untreated_per_period=10)
    assert res.info["control_cohort"] == 30
    assert np.isfinite(res.rows("event_time")["estimate"]).all()
    thin = sun_abraham(df, "y", "unit", "time", "g", min_untreated_per_period=1)
    assert thin.info["control_cohort"] == 36
    assert any(
        "fewer than 1 units" in w or "control = last-treated cohort 36" in w for w in thin.warnings
    )
