"""Tests for ifm_eval.estimators.callaway_santanna (agreement with csdid 0.4.3 and R did)."""

from __future__ import annotations

import contextlib
import io
import itertools
import warnings

import numpy as np
import pandas as pd
import pytest

from ifm_eval.estimators.callaway_santanna import callaway_santanna

ATT_TOL = 1e-8
SE_TOL = 1e-6


def make_panel(n_units=200, n_periods=8, seed=0, never_share=0.25, effect_scale=1.0):
    """Balanced staggered panel with heterogeneous dynamic effects, a never-treated
    group, two time-invariant covariates that shift both treatment timing and trends,
    sampling weights and a cluster variable."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n_units)
    x2 = rng.binomial(1, 0.4, size=n_units).astype(float)
    cohorts = np.arange(3, n_periods + 1)
    # timing depends on covariates (so covariates matter)
    score = 0.8 * x1 + 0.5 * x2 + rng.normal(size=n_units)
    qs = np.quantile(score, np.linspace(0, 1, len(cohorts) + 2))
    g = np.digitize(score, qs[1:-1])  # 0..len(cohorts)
    never = rng.random(n_units) < never_share
    gval = np.where(never, 0, cohorts[np.clip(g, 0, len(cohorts) - 1)])
    unit_fe = rng.normal(size=n_units) + 0.5 * x1
    rows = []
    for t in range(1, n_periods + 1):
        trend = 0.3 * t + 0.2 * t * x1 - 0.1 * t * x2
        e = t - gval
        eff = np.where((gval > 0) & (e >= 0), effect_scale * (1.0 + 0.5 * e + 0.1 * gval), 0.0)
        y = unit_fe + trend + eff + rng.normal(scale=1.0, size=n_units)
        rows.append(
            pd.DataFrame(
                {
                    "id": np.arange(1, n_units + 1),
                    "t": t,
                    "g": gval,
                    "y": y,
                    "x1": x1,
                    "x2": x2,
                }
            )
        )
    df = pd.concat(rows, ignore_index=True)
    df["w"] = np.repeat(rng.uniform(0.5, 2.0, size=n_units)[None, :], n_periods, axis=0).ravel()
    df["cl"] = (df["id"] % 23).astype(int)
    return df


def run_csdid(
    df,
    *,
    covariates=None,
    control_group="not_yet_treated",
    method="dr",
    anticipation=0,
    base_period="varying",
    weights=None,
    cluster=None,
    yname="y",
    tname="t",
    idname="id",
    gname="g",
):
    from csdid.att_gt import ATTgt

    xf = f"{yname} ~ " + ("+".join(covariates) if covariates else "1")
    cg = "nevertreated" if control_group == "never_treated" else "notyettreated"
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = ATTgt(
            yname=yname,
            tname=tname,
            idname=idname,
            gname=gname,
            data=df.copy(),
            control_group=cg,
            xformla=xf,
            anticipation=anticipation,
            weights_name=weights,
            clustervar=cluster,
        )
        m.fit(est_method=method, base_period=base_period, bstrap=False)
    return m


def csdid_aggte(m, kind, **kw):
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m.aggte(typec=kind, na_rm=True, bstrap=False, cband=False, **kw)
    return m.atte


def _compare_attgt(ours, m):
    res = m.results
    ref = pd.DataFrame(
        {
            "cohort": np.asarray(res["group"], float),
            "time": np.asarray(res["year"], float),
            "att": np.asarray(res["att"], float),
            "se": np.asarray(res["se"], float),
        }
    )
    mine = ours.att_gt
    assert len(mine) == len(ref)
    np.testing.assert_array_equal(mine["cohort"].to_numpy(float), ref["cohort"].to_numpy())
    np.testing.assert_array_equal(mine["time"].to_numpy(float), ref["time"].to_numpy())
    a, b = mine["att"].to_numpy(float), ref["att"].to_numpy()
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    ok = ~np.isnan(a)
    d_att = float(np.max(np.abs(a[ok] - b[ok]))) if ok.any() else 0.0
    s1, s2 = mine["se"].to_numpy(float), ref["se"].to_numpy()
    np.testing.assert_array_equal(np.isnan(s1), np.isnan(s2))
    ok = ~np.isnan(s1)
    d_se = float(np.max(np.abs(s1[ok] - s2[ok]))) if ok.any() else 0.0
    assert d_att < ATT_TOL, d_att
    assert d_se < SE_TOL, d_se
    return d_att, d_se


def _compare_agg(ours, m, kind, **kw):
    mine = ours.aggregate(kind, **kw)
    ref = csdid_aggte(m, kind, **kw)
    d = abs(mine.overall - float(ref["overall_att"]))
    assert d < ATT_TOL, (kind, mine.overall, ref["overall_att"])
    assert abs(mine.overall_se - float(np.squeeze(ref["overall_se"]))) < SE_TOL
    if kind != "simple":
        est = np.asarray(ref["att_egt"], float)
        se = np.asarray(ref["se_egt"], float).ravel()
        lab = np.asarray(ref["egt"], float)
        col = {"dynamic": "event_time", "group": "cohort", "calendar": "time"}[kind]
        np.testing.assert_array_equal(mine.table[col].to_numpy(float), lab)
        assert np.max(np.abs(mine.table["estimate"].to_numpy() - est)) < ATT_TOL
        ok = np.isfinite(se)
        assert np.max(np.abs(mine.table["se"].to_numpy()[ok] - se[ok])) < SE_TOL
    return d


PANEL = make_panel(200, 8, seed=1)

# Every option crossed once for the two estimator-independent switches, in a
# pairwise-covering design over the remaining ones (keeps the suite quick).
GRID = []
for cg, bp, meth in itertools.product(
    ["not_yet_treated", "never_treated"], ["varying", "universal"], ["dr", "ipw", "reg"]
):
    for ant, cov, w, cl in [
        (0, None, None, None),
        (1, ["x1", "x2"], "w", "cl"),
        (0, ["x1", "x2"], None, "cl"),
        (1, None, "w", None),
    ]:
        GRID.append((cg, bp, meth, ant, cov, w, cl))


@pytest.mark.parametrize("cg,bp,meth,ant,cov,w,cl", GRID)
def test_attgt_matches_csdid(cg, bp, meth, ant, cov, w, cl):
    kw = dict(
        covariates=cov,
        control_group=cg,
        method=meth,
        anticipation=ant,
        base_period=bp,
        weights=w,
        cluster=cl,
    )
    ours = callaway_santanna(PANEL, "y", "id", "t", "g", **kw)
    m = run_csdid(PANEL, **kw)
    _compare_attgt(ours, m)


@pytest.mark.parametrize(
    "cg,meth,cov,w,cl",
    [
        ("not_yet_treated", "dr", ["x1", "x2"], None, None),
        ("never_treated", "reg", None, "w", "cl"),
        ("not_yet_treated", "ipw", ["x1", "x2"], "w", None),
    ],
)
@pytest.mark.parametrize("kind", ["simple", "dynamic", "group", "calendar"])
def test_aggregations_match_csdid(cg, meth, cov, w, cl, kind):
    kw = dict(covariates=cov, control_group=cg, method=meth, weights=w, cluster=cl)
    ours = callaway_santanna(PANEL, "y", "id", "t", "g", **kw)
    m = run_csdid(PANEL, **kw)
    _compare_agg(ours, m, kind)


def test_dynamic_window_and_balance_match_csdid():
    ours = callaway_santanna(PANEL, "y", "id", "t", "g", method="reg")
    m = run_csdid(PANEL, method="reg")
    _compare_agg(ours, m, "dynamic", min_e=-3, max_e=3)
    _compare_agg(ours, m, "dynamic", balance_e=2)
    _compare_agg(ours, m, "group", max_e=2)


@pytest.mark.parametrize("method", ["reg", "dr"])
def test_mpdta_published(mpdta, method):
    res = callaway_santanna(
        mpdta,
        "lemp",
        "countyreal",
        "year",
        "first.treat",
        method=method,
        control_group="never_treated",
    )
    simple = res.aggregate("simple")
    assert simple.overall == pytest.approx(-0.0400, abs=5e-5)
    # The published SE 0.0115 (R did vignette) is a multiplier-bootstrap SE; the
    # analytic SE (R did bstrap=FALSE, csdid) is 0.01203.
    assert simple.overall_se == pytest.approx(0.01203, abs=5e-5)
    boot = callaway_santanna(
        mpdta,
        "lemp",
        "countyreal",
        "year",
        "first.treat",
        method=method,
        control_group="never_treated",
        n_boot=999,
        seed=2024,
    )
    # within Monte Carlo error of both the published bootstrap SE and the analytic SE
    assert boot.aggregate("simple").overall_se == pytest.approx(0.0115, rel=0.15)
    assert boot.aggregate("simple").overall_se == pytest.approx(0.01203, rel=0.1)
    dyn = res.aggregate("dynamic")
    e0 = dyn.table.set_index("event_time").loc[0, "estimate"]
    assert e0 == pytest.approx(-0.0199, abs=5e-5)
    # ATT(2004, 2004) of the R did vignette
    row = res.att_gt.query("cohort == 2004 and time == 2004").iloc[0]
    assert row["att"] == pytest.approx(-0.0105, abs=5e-5)
    assert row["se"] == pytest.approx(0.0233, abs=5e-4)


def test_mpdta_with_covariate_matches_csdid(mpdta):
    ours = callaway_santanna(
        mpdta,
        "lemp",
        "countyreal",
        "year",
        "first.treat",
        covariates=["lpop"],
        method="dr",
        control_group="never_treated",
    )
    m = run_csdid(
        mpdta,
        covariates=["lpop"],
        method="dr",
        control_group="never_treated",
        yname="lemp",
        tname="year",
        idname="countyreal",
        gname="first.treat",
    )
    _compare_attgt(ours, m)
    _compare_agg(ours, m, "simple")
    # published DR with lpop: simple ATT about -0.0418 (R did vignette / CS 2021)
    assert ours.aggregate("simple").overall == pytest.approx(-0.0418, abs=1e-3)


def test_recovers_planted_effects():
    df = make_panel(3000, 8, seed=7, effect_scale=1.0)
    res = callaway_santanna(df, "y", "id", "t", "g", covariates=["x1", "x2"], method="dr")
    dyn = res.aggregate("dynamic").table.set_index("event_time")
    # truth: pre 0; at e>=0 the cohort-share-weighted mean of 1 + 0.5 e + 0.1 g
    units = df.drop_duplicates("id")
    for e in range(-3, 4):
        gs = [g for g in np.unique(units.g) if g > 0 and 1 <= g + e <= 8 and (e >= 0 or g + e >= 1)]
        if e >= 0:
            sizes = np.array([(units.g == g).sum() for g in gs], float)
            truth = np.sum(sizes * (1 + 0.5 * e + 0.1 * np.array(gs))) / sizes.sum()
        else:
            truth = 0.0
        est, se = dyn.loc[e, "estimate"], dyn.loc[e, "se"]
        assert abs(est - truth) < 3 * se, (e, est, truth, se)


def test_overlap_failure_reported_not_crashing():
    df = make_panel(200, 6, seed=3)
    # make cohort 4 perfectly predictable by x1 -> propensity score reaches 1
    ids4 = df.loc[df.g == 4, "id"].unique()
    df.loc[df.id.isin(ids4), "x1"] = 50.0 + df.loc[df.id.isin(ids4), "id"] * 0.01
    res = callaway_santanna(df, "y", "id", "t", "g", covariates=["x1", "x2"], method="dr")
    assert len(res.dropped_cells) > 0
    assert set(res.dropped_cells["cohort"]) == {4}
    assert res.dropped_cells["reason"].str.contains("overlap").all()
    assert any("dropped" in w for w in res.warnings)
    sub = res.att_gt[res.att_gt.cohort == 4]
    assert sub["att"].isna().all() and sub["dropped"].all()
    # other cells estimated, aggregation works and skips the dropped cells
    assert res.att_gt.loc[res.att_gt.cohort != 4, "att"].notna().all()
    agg = res.aggregate("dynamic")
    assert np.isfinite(agg.overall)
    # agrees with csdid on the retained cells (csdid also returns NaN there)
    m = run_csdid(df, covariates=["x1", "x2"], method="dr")
    _compare_attgt(res, m)
    _compare_agg(res, m, "simple")


def test_bootstrap_seeded_reproducible_and_close_to_analytic():
    df = make_panel(1500, 6, seed=11)
    kw = dict(method="reg", cluster="cl")
    a = callaway_santanna(df, "y", "id", "t", "g", **kw)
    b1 = callaway_santanna(df, "y", "id", "t", "g", n_boot=999, seed=42, **kw)
    b2 = callaway_santanna(df, "y", "id", "t", "g", n_boot=999, seed=42, **kw)
    pd.testing.assert_frame_equal(b1.att_gt, b2.att_gt)
    d1, d2 = b1.aggregate("dynamic"), b2.aggregate("dynamic")
    pd.testing.assert_frame_equal(d1.table, d2.table)
    ok = a.att_gt["se"].notna()
    ratio = b1.att_gt.loc[ok, "se"] / a.att_gt.loc[ok, "se"]
    assert ratio.between(0.85, 1.15).all(), ratio.describe()
    assert abs(np.median(ratio) - 1) < 0.1
    dyn_a = a.aggregate("dynamic").table
    r2 = d1.table["se"] / dyn_a["se"]
    assert r2.between(0.85, 1.15).all()
    # uniform band wider than pointwise
    assert b1.crit_val > 1.96
    assert (
        d1.table["cband_high"] - d1.table["cband_low"] > d1.table["ci_high"] - d1.table["ci_low"]
    ).all()
    unclustered = callaway_santanna(df, "y", "id", "t", "g", method="reg", n_boot=999, seed=1)
    u = (
        unclustered.att_gt.loc[ok, "se"]
        / callaway_santanna(df, "y", "id", "t", "g", method="reg").att_gt.loc[ok, "se"]
    )
    assert u.between(0.85, 1.15).all()


def test_never_treated_missing_cohort_and_no_never_treated():
    df = make_panel(200, 8, seed=5)
    df2 = df.copy()
    df2.loc[df2.g == 0, "g"] = np.nan
    a = callaway_santanna(df, "y", "id", "t", "g", method="reg")
    b = callaway_santanna(df2, "y", "id", "t", "g", method="reg")
    pd.testing.assert_frame_equal(a.att_gt, b.att_gt)
    # no never-treated: last cohort only as control, later periods dropped
    df3 = df[df.g > 0]
    ours = callaway_santanna(df3, "y", "id", "t", "g", method="reg")
    m = run_csdid(df3, method="reg")
    _compare_attgt(ours, m)
    assert any("no never-treated" in w for w in ours.warnings)


def test_influence_shape_and_bad_args():
    res = callaway_santanna(PANEL, "y", "id", "t", "g", method="reg")
    assert res.influence.shape == (PANEL.id.nunique(), len(res.att_gt))
    assert res.influence.dtype == float
    with pytest.raises(ValueError):
        callaway_santanna(PANEL, "y", "id", "t", "g", method="bogus")
    with pytest.raises(ValueError):
        callaway_santanna(PANEL, "y", "id", "t", "g", control_group="bogus")
    with pytest.raises(ValueError):
        res.aggregate("bogus")


def test_factored_influence_operator_is_exact():
    """The factored no-covariate influence operator (products, sums of squares, cluster
    sums, bootstrap sums) equals the dense matrix it represents."""
    from ifm_eval.estimators import _cs_influence as K

    df = make_panel(300, 7, seed=9)
    res = callaway_santanna(df, "y", "id", "t", "g", method="reg", weights="w")
    op = res._op
    assert isinstance(op, K.NocovInfluence)
    M = res.influence
    cells = np.flatnonzero(res.att_gt["se"].notna().to_numpy())
    A = np.random.default_rng(1).normal(size=(M.shape[1], 5))
    np.testing.assert_allclose(op.matmul(A), M @ A, atol=1e-9)
    np.testing.assert_allclose(op.col_sumsq(), (M**2).sum(0), rtol=1e-10, atol=1e-9)
    codes = np.arange(M.shape[0]) % 13
    np.testing.assert_allclose(op.cluster_sums(codes, 13), K.cluster_sums(M, codes, 13), atol=1e-9)
    prod, perm = op.boot_product(cells)
    Ut = np.random.default_rng(0).choice([-1.0, 1.0], size=(M.shape[0], 17))
    np.testing.assert_allclose(prod(Ut), M[perm][:, cells].T @ Ut, atol=1e-9)
    # bootstrap map for other control sets (never-treated only; no never-treated units)
    for sub, cg in (
        (df, "never_treated"),
        (df[df.g > 0], "not_yet_treated"),
        (df, "not_yet_treated"),
    ):
        r = callaway_santanna(
            sub,
            "y",
            "id",
            "t",
            "g",
            method="reg",
            control_group=cg,
            anticipation=1,
            base_period="universal",
        )
        Mr = r.influence
        cl = np.flatnonzero(r.att_gt["se"].notna().to_numpy())
        pr, pm = r._op.boot_product(cl)
        U2 = np.random.default_rng(2).choice([-1.0, 1.0], size=(Mr.shape[0], 9))
        np.testing.assert_allclose(pr(U2), Mr[pm][:, cl].T @ U2, atol=1e-9)
    # dense operator on a covariate fit
    res2 = callaway_santanna(df, "y", "id", "t", "g", covariates=["x1"], method="dr")
    mm = res2._op.matmul(A)  # rows held in cohort-sorted order until .influence is used
    cs = res2._op.cluster_sums(codes, 13)
    M2 = res2.influence
    np.testing.assert_allclose(mm, M2 @ A, atol=1e-9)
    np.testing.assert_allclose(cs, K.cluster_sums(M2, codes, 13), atol=1e-9)
    np.testing.assert_allclose(res2._op.matmul(A), mm, atol=1e-12)


def test_bootstrap_with_covariates_and_clusters():
    df = make_panel(1200, 6, seed=12)
    kw = dict(covariates=["x1", "x2"], method="dr", cluster="cl", weights="w")
    a = callaway_santanna(df, "y", "id", "t", "g", **kw)
    b = callaway_santanna(df, "y", "id", "t", "g", n_boot=999, seed=3, **kw)
    ok = a.att_gt["se"].notna()
    ratio = b.att_gt.loc[ok, "se"] / a.att_gt.loc[ok, "se"]
    assert ratio.between(0.8, 1.2).all(), ratio.describe()
    assert abs(np.median(ratio) - 1) < 0.1
    for kind in ("simple", "group", "calendar", "dynamic"):
        ga, gb = a.aggregate(kind), b.aggregate(kind)
        assert gb.overall == pytest.approx(ga.overall)
        assert gb.overall_se == pytest.approx(ga.overall_se, rel=0.2)


def test_municipality_panel_dr_matches_csdid_including_dropped_cells(standin_panel):
    """Quasi-separated cells (tiny late cohorts, no never-treated units): which cells are
    dropped depends on where the logit iterations stop; we follow statsmodels' IRLS.
    Runs on the full-scale stand-in municipality panel built from scratch (conftest)."""
    cols = ["ags", "t", "g", "rate_employment", "log_population", "urbanisation"]
    df = standin_panel["panel"][cols].copy()
    df["g"] = df["g"].fillna(0)
    df["ags"] = pd.factorize(df["ags"], sort=True)[0] + 1
    if not np.issubdtype(df["t"].dtype, np.integer):
        pytest.skip("period column not integer-coded")
    df = df.dropna()
    kw = dict(covariates=["log_population", "urbanisation"], method="dr")
    ours = callaway_santanna(df, "rate_employment", "ags", "t", "g", **kw)
    m = run_csdid(df, yname="rate_employment", tname="t", idname="ags", gname="g", **kw)
    _compare_attgt(ours, m)
    _compare_agg(ours, m, "dynamic")


def test_aggregate_fresh_bootstrap_on_analytic_fit():
    df = make_panel(1000, 6, seed=21)
    a = callaway_santanna(df, "y", "id", "t", "g", method="ipw", covariates=["x1"], seed=5)
    an = a.aggregate("dynamic")
    bt = a.aggregate("dynamic", n_boot=999)
    r = bt.table["se"] / an.table["se"]
    assert r.between(0.8, 1.2).all()
    assert np.isfinite(bt.crit_val) and bt.crit_val > 1.96
    pd.testing.assert_frame_equal(bt.table, a.aggregate("dynamic", n_boot=999).table)


@pytest.mark.parametrize(
    "kw",
    [
        dict(
            base_period="universal",
            method="dr",
            covariates=["x1", "x2"],
            anticipation=1,
            cluster="cl",
        ),
        dict(base_period="universal", method="reg", control_group="never_treated", weights="w"),
        dict(method="ipw", covariates=["x1"], anticipation=1, weights="w", cluster="cl"),
    ],
)
def test_aggregations_universal_anticipation_match_csdid(kw):
    ours = callaway_santanna(PANEL, "y", "id", "t", "g", **kw)
    m = run_csdid(PANEL, **kw)
    _compare_attgt(ours, m)
    for kind in ("simple", "dynamic", "group", "calendar"):
        _compare_agg(ours, m, kind)
    _compare_agg(ours, m, "dynamic", min_e=-2, max_e=2)
