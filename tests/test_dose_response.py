"""Tests of ifm_eval.dose (continuous-treatment DiD of Callaway, Goodman-Bacon & Sant'Anna 2024).

Reference implementations (test-only): moderndid 0.2.0 ``cont_did`` for the point estimates
(and for the influence functions where its formulas are right), the project's
``callaway_santanna`` (validated against csdid) for ATT^o / the ATT^o event study with
clusters, weights, anticipation and both base periods, statsmodels' sandwich covariance
for the analytic SEs of ATT(d) / ACRT(d). See ``ifm_eval.dose.estimate``'s docstring for
the moderndid quirks these tests pin down.
"""

from __future__ import annotations

import types
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ifm_eval.dose import binned_dose_att, estimate_dose_response, plot_dose_response
from ifm_eval.dose.figures import save_dose_figure
from ifm_eval.dose.splines import spline_design
from ifm_eval.estimators.callaway_santanna import callaway_santanna

ROOT = Path(__file__).resolve().parents[1]
PANEL = ROOT / "data" / "processed" / "panel" / "panel.parquet"
TOL = 1e-8


def _close(a, b, tol: float = TOL) -> float:
    """Max abs difference, asserted <= tol * max(1, scale)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    assert a.shape == b.shape
    assert np.array_equal(np.isnan(a), np.isnan(b))
    d = float(np.nanmax(np.abs(a - b))) if np.isfinite(a).any() else 0.0
    scale = max(1.0, float(np.nanmax(np.abs(b))) if np.isfinite(b).any() else 1.0)
    assert d <= tol * scale, (d, scale)
    return d


# --------------------------------------------------------------------------- fixtures
@pytest.fixture
def md(monkeypatch):
    """moderndid with a shim: 0.2.0 under polars >= 2 fails on ``is_in`` of the Float64
    cohort column against an int ``np.arange``; ``process_panel`` gets a float ``arange``."""
    moderndid = pytest.importorskip("moderndid")
    import moderndid.didcont.estimation.process_panel as pp

    class _NP(types.ModuleType):
        def __getattr__(self, name):
            return getattr(np, name)

        @staticmethod
        def arange(*a, **k):
            return np.arange(*a, **k).astype(float)

    monkeypatch.setattr(pp, "np", _NP("numpy_float_arange"))
    warnings.filterwarnings("ignore", module="moderndid")
    return moderndid


def simulate(n: int = 2000, T: int = 12, n_clusters: int = 40, tau=None, dtau=None, seed: int = 0,
             cohorts=(0, 5, 7, 9), probs=(0.3, 0.25, 0.25, 0.2), dose_range=(0.5, 2.0), sd: float = 1.0):
    """Staggered panel; the effect of the dose ``tau(d)`` applies from the first treated
    period on; levels (not trends) depend on the dose; cluster x period shocks."""
    rng = np.random.default_rng(seed)
    g = rng.choice(np.asarray(cohorts), size=n, p=np.asarray(probs))
    d = rng.uniform(*dose_range, n)
    cl = rng.integers(0, n_clusters, n)
    t = np.arange(1, T + 1)
    lvl = rng.normal(size=n) + 0.5 * d
    shock = rng.normal(0, 0.3, (n_clusters, T))
    y = lvl[:, None] + 0.1 * t[None, :] + shock[cl] + rng.normal(0, sd, (n, T))
    post = (g[:, None] > 0) & (t[None, :] >= g[:, None])
    if tau is not None:
        y = y + post * tau(d)[:, None]
    df = pd.DataFrame({
        "id": np.repeat(np.arange(n), T), "t": np.tile(t, n), "g": np.repeat(g, T),
        "dose": np.repeat(np.where(g > 0, d, np.nan), T), "cl": np.repeat(cl, T), "y": y.ravel(),
    })
    return df


def _stand_in_balanced(t_max: int = 44) -> pd.DataFrame:
    """Stand-in main sample (t >= 13) restricted to t <= t_max and to units observed in
    every month; cohorts after t_max are never treated within it; t, g recoded to 1..T
    (cont_did needs that); never-treated dose 0."""
    if not PANEL.exists():
        pytest.skip("stand-in panel not built")
    df = pd.read_parquet(PANEL, columns=["ags", "t", "g", "kreis", "rate_employment", "vza_per_100_refugees",
                                         "refugees_per_1000_2017", "population"])
    df = df[(df["t"] >= 13) & (df["t"] <= t_max)].copy()
    full = df.groupby("ags")["rate_employment"].transform(lambda s: s.notna().all())
    df = df[full].copy()
    df.loc[df["g"] > t_max, "g"] = 0
    df["tt"] = df["t"] - 12
    df["gg"] = np.where(df["g"] > 0, df["g"] - 12, 0)
    df["dd"] = np.where(df["g"] > 0, df["vza_per_100_refugees"], 0.0)
    df["id"] = pd.factorize(df["ags"], sort=True)[0] + 1
    df["w17"] = np.round(df["refugees_per_1000_2017"] * df["population"] / 1000)
    return df.reset_index(drop=True)


def _fit(df, **kw):
    base = dict(outcome="y", dose="dose", unit="id", time="t", cohort="g", cluster="cl", min_comparison_units=1,
                n_boot=0, event_window=None)
    base.update(kw)
    return estimate_dose_response(df, **base)


# --------------------------------------------------------------------------- moderndid: point estimates
def _compare_md(md, data, r, **kw):
    """ATT(d), ACRT(d), ATT^o, ACRT^o (dose aggregation) and the ACRT^o event study vs cont_did."""
    common = dict(yname=kw.pop("yname"), tname=kw.pop("tname"), idname=kw.pop("idname"), gname=kw.pop("gname"),
                  dname=kw.pop("dname"), biters=50, random_state=1, **kw)
    m = md.cont_did(data, aggregation="dose", dvals=r.curves["dose"].to_numpy(), **common)
    out = {"att_d": _close(r.curves["att"], m.att_d), "acrt_d": _close(r.curves["acrt"], m.acrt_d),
           "att_o": _close(r.aggregate("att_overall")["estimate"], m.overall_att),
           "acrt_o": _close(r.aggregate("acrt_overall")["estimate"], m.overall_acrt)}
    e = md.cont_did(data, aggregation="eventstudy", target_parameter="slope", **common)
    es = r.event_study.set_index("event_time")
    assert set(e.event_study.event_times) <= set(es.index)
    out["acrt_e"] = _close(es.loc[e.event_study.event_times, "acrt"], e.event_study.att_by_event)
    return out, m, e


@pytest.mark.parametrize(
    ("control_group", "degree", "num_knots"),
    [("not_yet_treated", 3, 0), ("never_treated", 3, 0), ("not_yet_treated", 1, 0), ("not_yet_treated", 2, 2)],
)
def test_moderndid_point_estimates_simulated(md, control_group, degree, num_knots):
    data = md.gen_cont_did_data(n=1500, num_time_periods=5, seed=7, dose_quadratic_effect=0.3).to_pandas()
    knots = None
    if num_knots:  # cont_did: quantiles of the row-level post-treatment doses
        post = data[(data["G"] > 0) & (data["time_period"] >= data["G"])]
        knots = np.quantile(post["D"], np.linspace(0, 1, num_knots + 2)[1:-1])
    r = estimate_dose_response(data, outcome="Y", dose="D", unit="id", time="time_period", cohort="G", cluster=None,
                               control_group=control_group, degree=degree, knots=knots, min_comparison_units=1,
                               n_boot=0, event_window=None)
    assert len(np.unique(data["G"])) == 5  # four cohorts + never treated
    _compare_md(md, data, r, yname="Y", tname="time_period", idname="id", gname="G", dname="D",
                control_group=control_group.replace("_", ""), degree=degree, num_knots=num_knots)


def test_moderndid_universal_base_quirk(md):
    """Universal base: ATT^o, ACRT^o and the post-treatment ACRT^o(e) agree; cont_did's
    pre-treatment cells (and with them its ATT(d)/ACRT(d) curves) are NaN (lag sorted by period)."""
    data = md.gen_cont_did_data(n=1500, num_time_periods=5, seed=8).to_pandas()
    r = estimate_dose_response(data, outcome="Y", dose="D", unit="id", time="time_period", cohort="G", cluster=None,
                               base_period="universal", min_comparison_units=1, n_boot=0, event_window=None)
    kw = dict(yname="Y", tname="time_period", idname="id", gname="G", dname="D", base_period="universal",
              biters=50, random_state=1)
    m = md.cont_did(data, aggregation="dose", dvals=r.curves["dose"].to_numpy(), **kw)
    _close(r.aggregate("att_overall")["estimate"], m.overall_att)
    _close(r.aggregate("acrt_overall")["estimate"], m.overall_acrt)
    assert np.isnan(m.att_d).all() and np.isfinite(r.curves["att"]).all()
    e = md.cont_did(data, aggregation="eventstudy", target_parameter="slope", **kw)
    ev = np.asarray(e.event_study.event_times)
    es = r.event_study.set_index("event_time")
    post = ev >= -1
    _close(es.loc[ev[post], "acrt"], e.event_study.att_by_event[post])
    assert np.isnan(e.event_study.att_by_event[ev < -1]).all()
    assert np.isfinite(es.loc[ev[ev < -1], "acrt"]).all()


def test_moderndid_point_estimates_stand_in(md):
    df = _stand_in_balanced(t_max=40)
    assert df["id"].nunique() > 900 and df["gg"].nunique() > 10
    data = df[["id", "tt", "gg", "dd", "rate_employment"]]
    r = estimate_dose_response(data, outcome="rate_employment", dose="dd", unit="id", time="tt", cohort="gg",
                               cluster=None, min_comparison_units=1, n_boot=0, event_window=None)
    assert r.n_cells_dropped == 0
    _compare_md(md, data, r, yname="rate_employment", tname="tt", idname="id", gname="gg", dname="dd")


def test_moderndid_level_event_study_is_not_att(md):
    """cont_did's level event study feeds the continuous dose to the binary DR DiD: it
    differs from ATT^o(e), which equals the binary CS event study (tested below)."""
    data = md.gen_cont_did_data(n=1500, num_time_periods=5, seed=3).to_pandas()
    r = estimate_dose_response(data, outcome="Y", dose="D", unit="id", time="time_period", cohort="G", cluster=None,
                               min_comparison_units=1, n_boot=0, event_window=None)
    e = md.cont_did(data, yname="Y", tname="time_period", idname="id", gname="G", dname="D",
                    aggregation="eventstudy", target_parameter="level", biters=50, random_state=1)
    ours = r.event_study.set_index("event_time").loc[e.event_study.event_times, "att"].to_numpy()
    assert np.max(np.abs(ours - e.event_study.att_by_event)) > 0.01
    cs = callaway_santanna(data, "Y", "id", "time_period", "G", method="reg").aggregate("dynamic")
    _close(ours, cs.table.set_index("event_time").loc[e.event_study.event_times, "estimate"], 1e-10)


# --------------------------------------------------------------------------- moderndid: influence functions / SEs
def test_moderndid_influence_functions_one_cohort(md):
    """One cohort, two periods, cont_did's default grid (= the cohort's dose range, where its
    ACRT(d) IF is right): our ACRT(d) IF == theirs; ACRT^o: ours = theirs x n_cell / n_treated
    (their n / n_cell rescaling); ATT(d): ours^2 = theirs^2 + Var(comparison mean) (their IF
    misses the comparison term). Bootstrap SEs within Monte Carlo error of the analytic ones."""
    data = md.gen_cont_did_data(n=1200, num_time_periods=2, seed=5, dose_quadratic_effect=0.5).to_pandas()
    m = md.cont_did(data, yname="Y", tname="time_period", idname="id", gname="G", dname="D", aggregation="dose",
                    biters=999, random_state=1)
    r = estimate_dose_response(data, outcome="Y", dose="D", unit="id", time="time_period", cohort="G", cluster=None,
                               dose_grid=m.dose, min_comparison_units=1, n_boot=999, seed=2)
    n = data["id"].nunique()

    def se(f):
        return np.sqrt((np.asarray(f) ** 2).sum(axis=0)) / n

    _close(se(r.influence["acrt_d"]), se(m.acrt_d_inf_func), 1e-10)
    _close(r.curves["acrt_se_analytic"], se(m.acrt_d_inf_func), 1e-10)
    units = data.groupby("id")[["G", "D"]].first()
    wide = data.pivot(index="id", columns="time_period", values="Y")
    dy = (wide[2] - wide[1]).to_numpy()
    treated = (units["G"] == 2).to_numpy()
    _close(r.aggregate("acrt_overall")["se_analytic"], se(m.overall_acrt_inf_func) * n / treated.sum(), 1e-10)
    np.testing.assert_array_equal(m.overall_att_inf_func, m.overall_acrt_inf_func)  # ATT^o SE from the ACRT IF
    ctrl = dy[~treated]
    _close(r.curves["att_se_analytic"] ** 2, se(m.att_d_inf_func) ** 2 + ctrl.var() / len(ctrl), 1e-10)
    # bootstrap SEs (ours: Rademacher, theirs: Mammen) vs the analytic SE: Monte Carlo error only
    for ours_b, theirs_b, an in [(r.curves["acrt_se"], m.acrt_d_se, r.curves["acrt_se_analytic"])]:
        assert np.max(np.abs(np.asarray(ours_b) / an - 1)) < 0.12
        assert np.max(np.abs(np.asarray(theirs_b) / an - 1)) < 0.12


def test_analytic_se_matches_sandwich():
    """ATT(d) / ACRT(d) analytic SEs == statsmodels' cluster sandwich (no small-sample factor)
    of the stacked regression dY ~ 1{treated} x spline(D) + 1{comparison}."""
    sm = pytest.importorskip("statsmodels.api")
    df = simulate(n=1500, T=2, cohorts=(0, 2), probs=(0.4, 0.6), tau=lambda d: np.sqrt(d), seed=4)
    r = _fit(df, degree=3)
    u = df.groupby("id")[["g", "dose", "cl"]].first()
    wide = df.pivot(index="id", columns="t", values="y")
    dy = (wide[2] - wide[1]).to_numpy()
    tr = (u["g"] == 2).to_numpy()
    d = u["dose"].to_numpy()
    lo, hi = d[tr].min(), d[tr].max()
    X, _ = spline_design(d[tr], lo, hi, np.empty(0), 3)
    Z = np.zeros((len(dy), X.shape[1] + 1))
    Z[tr, :-1] = X
    Z[~tr, -1] = 1.0
    fit = sm.OLS(dy, Z).fit(cov_type="cluster", cov_kwds={"groups": u["cl"].to_numpy(), "use_correction": False})
    Xg, dXg = spline_design(r.curves["dose"].to_numpy(), lo, hi, np.empty(0), 3)
    a = np.column_stack([Xg, -np.ones(len(Xg))])
    b = np.column_stack([dXg, np.zeros(len(Xg))])
    V = fit.cov_params()
    _close(r.curves["att"], a @ fit.params, 1e-10)
    _close(r.curves["att_se_analytic"], np.sqrt(np.einsum("ip,pq,iq->i", a, V, a)), 1e-10)
    _close(r.curves["acrt_se_analytic"], np.sqrt(np.einsum("ip,pq,iq->i", b, V, b)), 1e-10)


# --------------------------------------------------------------------------- vs the project's CS estimator
@pytest.mark.parametrize("control_group", ["not_yet_treated", "never_treated"])
@pytest.mark.parametrize("base_period", ["varying", "universal"])
@pytest.mark.parametrize(("weights", "anticipation"), [(None, 0), ("w17", 2)])
def test_att_overall_and_event_study_equal_cs(control_group, base_period, weights, anticipation):
    """ATT^o(g,t) is the binary ATT(g,t): cells, ATT^o (= did 'group' aggregation) and the
    ATT^o event study (did 'dynamic'), estimates and clustered analytic SEs, equal
    callaway_santanna(method='reg') on the stand-in (Kreis clusters, refugee weights)."""
    df = _stand_in_balanced(t_max=44)
    r = estimate_dose_response(df, outcome="rate_employment", dose="dd", unit="id", time="tt", cohort="gg",
                               cluster="kreis", weights=weights, control_group=control_group,
                               base_period=base_period, anticipation=anticipation, min_comparison_units=1,
                               n_boot=0, event_window=None)
    cs = callaway_santanna(df, "rate_employment", "id", "tt", "gg", control_group=control_group, method="reg",
                           base_period=base_period, anticipation=anticipation, weights=weights, cluster="kreis")
    grp = cs.aggregate("group")
    _close(r.aggregate("att_overall")["estimate"], grp.overall, 1e-10)
    _close(r.aggregate("att_overall")["se_analytic"], grp.overall_se, 1e-10)
    tab = cs.aggregate("dynamic").table.set_index("event_time")
    es = r.event_study.set_index("event_time")
    assert list(es.index) == list(tab.index)
    _close(es["att"], tab["estimate"], 1e-10)
    _close(es["se_analytic"], tab["se"], 1e-10)
    cells = cs.att_gt.merge(r.cells, on=["cohort", "time"], how="left", suffixes=("", "_d"))
    _close(cells["att_d"], cells["att"], 1e-10)


# --------------------------------------------------------------------------- planted dose gradients
SCENARIOS = {
    "linear": (lambda d: 0.5 + 1.5 * d, lambda d: np.full_like(d, 1.5)),
    "concave": (lambda d: 3.0 * np.log(d), lambda d: 3.0 / d),
    "zero": (lambda d: np.zeros_like(d), lambda d: np.zeros_like(d)),
}


def _truth_overall(df, r, f):
    """Sample ATT^o / ACRT^o truth: cohort-share-weighted means of f(D) over the cohorts."""
    u = df.groupby("id")[["g", "dose"]].first()
    u = u[u["g"] > 0]
    sh = u.groupby("g").size() / len(u)
    return float(sum(sh[g] * f(u.loc[u["g"] == g, "dose"].to_numpy()).mean() for g in sh.index))


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_planted_gradient_recovered(scenario):
    """Small Monte Carlo (12 replications): the true ATT(d) inside the uniform band over the
    grid, the true ACRT(d) inside its band, ATT^o / ACRT^o CIs cover; power: a non-zero slope
    is detected (ACRT^o CI excludes 0)."""
    tau, dtau = SCENARIOS[scenario]
    R = 12
    cover = {"att_band": 0, "acrt_band": 0, "att_o": 0, "acrt_o": 0, "acrt_o_excl_0": 0}
    for rep in range(R):
        df = simulate(n=1500, T=12, n_clusters=40, tau=tau, seed=100 + rep)
        r = _fit(df, n_boot=499, seed=rep, event_window=(-3, 3))
        c = r.curves
        x = c["dose"].to_numpy()
        cover["att_band"] += bool(np.all((c["att_lo"] <= tau(x)) & (tau(x) <= c["att_hi"])))
        cover["acrt_band"] += bool(np.all((c["acrt_lo"] <= dtau(x)) & (dtau(x) <= c["acrt_hi"])))
        a, s = r.aggregate("att_overall"), r.aggregate("acrt_overall")
        cover["att_o"] += bool(a["ci_low"] <= _truth_overall(df, r, tau) <= a["ci_high"])
        cover["acrt_o"] += bool(s["ci_low"] <= _truth_overall(df, r, dtau) <= s["ci_high"])
        cover["acrt_o_excl_0"] += bool(s["ci_low"] > 0 or s["ci_high"] < 0)
        assert np.all(c["att_hi"] - c["att_lo"] >= c["att_hi_pointwise"] - c["att_lo_pointwise"] - 1e-12)
    for k in ("att_band", "acrt_band", "att_o", "acrt_o"):
        assert cover[k] >= R - 2, (k, cover)
    if scenario == "zero":
        assert cover["acrt_o_excl_0"] <= 2
    else:
        assert cover["acrt_o_excl_0"] >= R - 1, cover


def test_flat_curve_rejected_under_linear_gradient():
    """The band is informative: under a steep linear gradient the flat line at ATT^o
    leaves the uniform band."""
    tau = SCENARIOS["linear"][0]
    df = simulate(n=1500, tau=tau, seed=3)
    r = _fit(df, n_boot=499)
    flat = r.aggregate("att_overall")["estimate"]
    assert np.any((flat < r.curves["att_lo"]) | (flat > r.curves["att_hi"]))


# --------------------------------------------------------------------------- binned cross-check
def test_binned_agrees_with_spline_bins():
    tau = SCENARIOS["concave"][0]
    df = simulate(n=2400, tau=tau, seed=21)
    b = binned_dose_att(df, outcome="y", dose="dose", unit="id", time="t", cohort="g", cluster="cl",
                        min_comparison_units=1, n_boot=499, seed=1)
    tab = b.table
    assert len(tab) == 3 and np.all(np.diff(b.edges) > 0)
    assert (tab["n_units"].sum() == df.loc[df["g"] > 0, "id"].nunique())
    assert np.all(np.abs(tab["diff"]) <= 2.58 * tab["diff_se"])  # spline bin averages within SEs
    assert np.all(np.abs(tab["att"] - tab["spline_att"]) <= tab["se"])
    assert np.all(np.diff(tab["att"]) > 0)  # increasing dose response recovered by the bins
    u = df.groupby("id")[["g", "dose"]].first()
    for _, row in tab.iterrows():
        d = u.loc[(u["g"] > 0) & (u["dose"] >= row["dose_lo"]) & (u["dose"] <= row["dose_hi"]), "dose"]
        assert row["ci_low"] <= tau(d.to_numpy()).mean() <= row["ci_high"]


def test_binned_detects_misspecified_spline():
    """A linear spline fitted to a U-shaped response: the bins' mean residuals show it."""
    df = simulate(n=2400, tau=lambda d: 6.0 * (d - 1.25) ** 2, seed=22)
    b = binned_dose_att(df, outcome="y", dose="dose", unit="id", time="t", cohort="g", cluster="cl", degree=1,
                        min_comparison_units=1, n_boot=0)
    assert np.max(np.abs(b.table["diff"] / b.table["diff_se"])) > 4


def test_binned_one_bin_is_att_overall_and_two_period_by_hand():
    df = simulate(n=1500, tau=SCENARIOS["linear"][0], seed=9)
    kw = dict(outcome="y", dose="dose", unit="id", time="t", cohort="g", cluster="cl", min_comparison_units=1,
              n_boot=0)
    b = binned_dose_att(df, bins=1, **kw)
    r = estimate_dose_response(df, event_window=None, **kw)
    a = r.aggregate("att_overall")
    _close(b.table["att"], [a["estimate"]], 1e-10)
    _close(b.table["spline_att"], [a["estimate"]], 1e-10)
    _close(b.table["se"], [a["se_analytic"]], 1e-10)
    _close(b.table["spline_se_analytic"], [a["se_analytic"]], 1e-10)  # same IF (intercept in the spline)
    assert not (b.table["diff_se_analytic"] > 1e-8).any()
    _close(b.table["diff"], [0.0], 1e-10)
    # two periods, one cohort: bin ATT = mean change of the bin's treated - mean change of controls
    d2 = simulate(n=900, T=2, cohorts=(0, 2), probs=(0.4, 0.6), tau=SCENARIOS["linear"][0], seed=10)
    b2 = binned_dose_att(d2, bins=[0.5, 1.0, 1.5, 2.0], **kw)
    u = d2.groupby("id")[["g", "dose"]].first()
    wide = d2.pivot(index="id", columns="t", values="y")
    dy = wide[2] - wide[1]
    m0 = dy[u["g"] == 0].mean()
    for k, (lo, hi) in enumerate([(0.5, 1.0), (1.0, 1.5), (1.5, 2.0)]):
        sel = (u["g"] == 2) & (u["dose"] >= lo) & ((u["dose"] < hi) | (k == 2))
        assert b2.table.loc[k, "n_units"] == sel.sum()
        _close(b2.table.loc[k, "att"], dy[sel].mean() - m0, 1e-10)


# --------------------------------------------------------------------------- input errors
def test_errors_name_the_dose_column():
    df = simulate(n=200, T=6, cohorts=(0, 4), probs=(0.5, 0.5), seed=1)
    kw = dict(outcome="y", unit="id", time="t", cohort="g", cluster="cl", n_boot=0, min_comparison_units=1)
    with pytest.raises(ValueError, match="'vza'"):
        estimate_dose_response(df, dose="vza", **kw)
    tr = df.loc[df["g"] > 0, "id"].iloc[0]
    bad = df.copy()
    bad.loc[(bad["id"] == tr) & (bad["t"] == 6), "dose"] += 0.1
    with pytest.raises(ValueError, match="'dose'.*not constant within 'id'"):
        estimate_dose_response(bad, dose="dose", **kw)
    bad = df.copy()
    bad.loc[bad["id"] == tr, "dose"] = 0.0
    with pytest.raises(ValueError, match="'dose'.*must be > 0"):
        estimate_dose_response(bad, dose="dose", **kw)
    bad = df.copy()
    bad.loc[(bad["id"] == tr) & (bad["t"] == 2), "dose"] = np.nan
    with pytest.raises(ValueError, match="'dose'.*missing"):
        estimate_dose_response(bad, dose="dose", **kw)
    with pytest.raises(ValueError, match="'dose'.*missing"):
        binned_dose_att(bad, dose="dose", **kw)
    ok = df.copy()  # never-treated units' dose is irrelevant
    ok.loc[ok["g"] == 0, "dose"] = np.where(np.arange((ok["g"] == 0).sum()) % 2, -1.0, np.nan)
    estimate_dose_response(ok, dose="dose", **kw)
    bad = df.copy()
    bad.loc[(bad["id"] == tr) & (bad["t"] == 3), "g"] = 5
    with pytest.raises(ValueError, match="'g'.*not constant"):
        estimate_dose_response(bad, dose="dose", **kw)
    bad = df.copy()
    bad["w"] = 1.0
    bad.loc[(bad["id"] == tr) & (bad["t"] == 3), "w"] = 2.0
    with pytest.raises(ValueError, match="'w'.*not constant"):
        estimate_dose_response(bad, dose="dose", weights="w", **kw)


# --------------------------------------------------------------------------- mechanics
def test_reproducible_with_seed():
    df = simulate(n=800, tau=SCENARIOS["concave"][0], seed=5)
    a = _fit(df, n_boot=199, seed=42, event_window=(-3, 3))
    b = _fit(df, n_boot=199, seed=42, event_window=(-3, 3))
    c = _fit(df, n_boot=199, seed=43, event_window=(-3, 3))
    for name in ("curves", "aggregates", "event_study", "cells"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))
    assert a.info["crit_att"] == b.info["crit_att"]
    pd.testing.assert_series_equal(a.curves["att"], c.curves["att"])
    assert not np.allclose(a.curves["att_se"], c.curves["att_se"])
    m = _fit(df, n_boot=199, seed=42, boot_weights="mammen", event_window=(-3, 3))
    assert np.max(np.abs(m.curves["att_se"] / m.curves["att_se_analytic"] - 1)) < 0.25


def test_bootstrap_se_close_to_analytic():
    df = simulate(n=3000, n_clusters=150, tau=SCENARIOS["linear"][0], seed=12)
    r = _fit(df, n_boot=999, seed=3, event_window=(-4, 4))
    assert np.max(np.abs(r.aggregates["se"] / r.aggregates["se_analytic"] - 1)) < 0.12
    assert np.median(np.abs(r.curves["att_se"] / r.curves["att_se_analytic"] - 1)) < 0.08
    es = r.event_study[~r.event_study["reference"]]
    assert np.median(np.abs(es["se"] / es["se_analytic"] - 1)) < 0.08


def test_weights_equal_duplicated_units():
    """Integer unit weights == duplicating units (same cluster): estimates and clustered SEs."""
    df = simulate(n=600, tau=SCENARIOS["concave"][0], seed=6)
    rng = np.random.default_rng(0)
    w = pd.Series(rng.integers(1, 4, df["id"].nunique()), index=np.unique(df["id"]))
    df["w"] = df["id"].map(w)
    rep = df.loc[df.index.repeat(df["w"])].copy()
    rep["copy"] = rep.groupby(["id", "t"]).cumcount()
    rep["id"] = rep["id"] * 10 + rep["copy"]
    grid = np.linspace(0.7, 1.8, 12)
    a = _fit(df, weights="w", dose_grid=grid)
    b = _fit(rep, dose_grid=grid)
    for col in ("att", "acrt", "att_se_analytic", "acrt_se_analytic"):
        _close(a.curves[col], b.curves[col], 1e-9)
    _close(a.aggregates[["estimate", "se_analytic"]], b.aggregates[["estimate", "se_analytic"]], 1e-9)
    _close(a.event_study[["att", "acrt", "se_analytic"]].fillna(0), b.event_study[["att", "acrt", "se_analytic"]]
           .fillna(0), 1e-9)
    u = _fit(df, dose_grid=grid)
    assert not np.allclose(u.curves["att"], a.curves["att"])


def test_missing_outcomes_use_units_observed_in_both_periods():
    df = simulate(n=900, tau=SCENARIOS["concave"][0], seed=8)
    rng = np.random.default_rng(1)
    df.loc[rng.random(len(df)) < 0.1, "y"] = np.nan
    df = df.drop(index=df.index[rng.random(len(df)) < 0.05])  # and some rows missing
    r = _fit(df, control_group="not_yet_treated")
    g, t, b = 7, 9, 6
    row = r.cells[(r.cells["cohort"] == g) & (r.cells["time"] == t)].iloc[0]
    assert row["base_period"] == b
    wide = df.pivot(index="id", columns="t", values="y")
    u = df.groupby("id")[["g", "dose"]].first()
    dy = (wide[t] - wide[b]).dropna()
    gg = u.loc[dy.index, "g"]
    tr = gg == g
    comp = (gg == 0) | (gg > t)
    assert row["n_treated"] == tr.sum() and row["n_comparison"] == comp.sum()
    _close(row["att"], dy[tr].mean() - dy[comp].mean(), 1e-10)
    coef = np.polyfit(u.loc[dy[tr].index, "dose"], dy[tr], 3)  # cubic = the spline with no knots
    _close(row["acrt"], np.polyval(np.polyder(coef), u.loc[dy[tr].index, "dose"]).mean(), 1e-8)


def test_dropped_cells_counts_and_window():
    df = simulate(n=400, T=12, cohorts=(0, 5, 7, 9), probs=(0.05, 0.35, 0.35, 0.25), seed=2)
    r = estimate_dose_response(df, outcome="y", dose="dose", unit="id", time="t", cohort="g", cluster="cl",
                               min_comparison_units=30, n_boot=0, event_window=(-2, 2))
    few = r.cells["reason"] == "few_comparison_units"
    assert r.n_cells_dropped == few.sum() > 0
    assert np.all(r.cells.loc[few, "n_comparison"] < 30) and np.all(r.cells.loc[~few, "n_comparison"] >= 30)
    assert r.n_cells_used == (~r.cells["dropped"] & ~r.cells["universal_base"]).sum()
    assert r.cells.loc[r.cells["dropped"], "weight"].eq(0).all()
    _close(r.cells["weight"].sum(), 1.0, 1e-12)
    assert r.event_study["event_time"].between(-2, 2).all()
    assert r.n_clusters == df["cl"].nunique() and r.n_treated == df.loc[df["g"] > 0, "id"].nunique()
    nt = _fit(df, control_group="never_treated")
    assert not np.isclose(nt.aggregate("att_overall")["estimate"], _fit(df).aggregate("att_overall")["estimate"])


def test_stand_in_panel_smoke():
    if not PANEL.exists():
        pytest.skip("stand-in panel not built")
    df = pd.read_parquet(PANEL)
    df = df[df["t"] >= 13].copy()
    df["refugees_2017"] = np.round(df["refugees_per_1000_2017"] * df["population"] / 1000)
    r = estimate_dose_response(df, outcome="rate_employment", dose="vza_per_100_refugees",
                               weights="refugees_2017", n_boot=199)
    assert r.n_clusters == 44 and r.n_treated > 1000 and len(r.curves) > 40
    assert r.info["seconds"] < 30
    assert np.isfinite(r.aggregates[["estimate", "se"]].to_numpy()).all()
    assert set(r.aggregates["term"]) == {"att_overall", "acrt_overall"}
    assert r.event_study["event_time"].between(-12, 12).all()


def test_figure_deterministic(tmp_path):
    df = simulate(n=600, tau=SCENARIOS["concave"][0], seed=5)
    r = _fit(df, n_boot=199)
    digests = []
    for i in range(2):
        fig = plot_dose_response(r, title="Test")
        assert len(fig.axes) >= 2
        paths = save_dose_figure(fig, tmp_path / f"run{i}" / "dose", synthetic=True, n=r.n_units)
        digests.append([p.read_bytes() for p in paths])
    assert [p.suffix for p in paths] == [".png", ".pdf"]
    assert digests[0] == digests[1]
