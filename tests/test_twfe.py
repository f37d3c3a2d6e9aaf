"""TWFE static / dynamic: cross-checked against linearmodels PanelOLS; bias under
heterogeneous dynamic effects. Also hosts the simulated staggered panel used by the
other estimator tests (``simulate_staggered``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ifm_eval.estimators.twfe import event_dummies, twfe_dynamic, twfe_static

COHORTS = (8, 14, 20, 26, 32, 38)  # 38 = last-treated cohort (no never-treated units)


def true_effect(g: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Planted effect: grows with event time, larger for earlier cohorts (heterogeneous)."""
    g = np.asarray(g, dtype=float)
    e = np.asarray(e, dtype=float)
    scale = 1.0 + 0.05 * (COHORTS[-1] - g)
    return np.where(e >= 0, 0.25 * (e + 1) * scale, 0.0)


def simulate_staggered(
    n_units: int = 300,
    n_periods: int = 40,
    seed: int = 7,
    cohorts: tuple[int, ...] = COHORTS,
    never_treated: int = 0,
) -> pd.DataFrame:
    """Balanced staggered panel with unit/time effects and heterogeneous dynamic effects.

    Columns: unit (str), time (1..n_periods), g (0 = never treated), y, kreis (clusters of
    ~10 units), x (time-invariant), xv (time-varying covariate with a true coefficient),
    w (positive weights), tau (the planted effect).
    """
    rng = np.random.default_rng(seed)
    g_unit = np.concatenate(
        [
            np.zeros(never_treated, dtype=int),
            np.array(cohorts)[np.arange(n_units - never_treated) % len(cohorts)],
        ]
    )
    units = np.arange(n_units)
    alpha = rng.normal(0, 1, n_units) + 0.05 * g_unit  # selection on levels is allowed
    x = rng.normal(0, 1, n_units)
    lam = 0.1 * np.arange(1, n_periods + 1) + rng.normal(0, 0.5, n_periods)
    uu = np.repeat(units, n_periods)
    tt = np.tile(np.arange(1, n_periods + 1), n_units)
    gg = g_unit[uu]
    e = np.where(gg > 0, tt - gg, -1000)
    tau = np.where(gg > 0, true_effect(gg, e), 0.0)
    xv = rng.normal(0, 1, len(uu)) + 0.02 * tt
    y = alpha[uu] + lam[tt - 1] + 0.5 * xv + tau + rng.normal(0, 1, len(uu))
    return pd.DataFrame(
        {
            "unit": pd.Series(uu).map(lambda i: f"u{i:04d}"),
            "time": tt,
            "g": gg,
            "y": y,
            "kreis": pd.Series(uu // 10).map(lambda i: f"k{i:03d}"),
            "x": x[uu],
            "xv": xv,
            "w": 1.0 + (uu % 3),
            "tau": tau,
        }
    )


def true_path(df: pd.DataFrame, window: tuple[int, int]) -> pd.Series:
    """Event-time truth: observation-weighted mean effect among treated cohorts at e,
    using only periods before the last cohort starts (where a control exists)."""
    last = df.loc[df["g"] > 0, "g"].max()
    d = df[(df["g"] > 0) & (df["g"] < last) & (df["time"] < last)]
    d = d.assign(e=d["time"] - d["g"])
    d = d[(d["e"] >= 0) & (d["e"] <= window[1])]
    return d.groupby("e")["tau"].mean()


@pytest.fixture(scope="module")
def sim() -> pd.DataFrame:
    return simulate_staggered()


def _panelols(df, regressors, cluster):
    lm = pytest.importorskip("linearmodels")
    d = df.set_index(["unit", "time"])
    mod = lm.PanelOLS(d["y"], d[regressors], entity_effects=True, time_effects=True)
    return mod.fit(
        cov_type="clustered",
        clusters=d[[cluster]] if cluster != "unit" else None,
        cluster_entity=cluster == "unit",
        group_debias=True,
    )


@pytest.mark.parametrize("cluster", ["unit", "kreis"])
def test_static_matches_panelols(sim, cluster):
    d = sim.assign(D=((sim["g"] > 0) & (sim["time"] >= sim["g"])).astype(float))
    cl = None if cluster == "unit" else cluster
    # K counting every absorbed effect = linearmodels' convention (group_debias=True adds
    # the G/(G-1) factor): identical to 1e-8.
    full = twfe_static(d, "y", "unit", "time", "g", covariates=["xv"], cluster=cl, k_fixef="full")
    ref = _panelols(d, ["D", "xv"], cluster)
    coef = full.table.drop_duplicates("term").set_index("term")
    np.testing.assert_allclose(coef.loc["att", "estimate"], ref.params["D"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(coef.loc["xv", "estimate"], ref.params["xv"], atol=1e-9)
    np.testing.assert_allclose(coef.loc["att", "se"], ref.std_errors["D"], rtol=1e-8)
    np.testing.assert_allclose(coef.loc["xv", "se"], ref.std_errors["xv"], rtol=1e-8)
    # default: fixest's "nonnested" K (effects nested in the clusters not counted) - the
    # same sandwich with a slightly smaller small-sample factor
    res = twfe_static(d, "y", "unit", "time", "g", covariates=["xv"], cluster=cl)
    se = res.rows("overall")["se"].iloc[0]
    assert se == pytest.approx(coef.loc["att", "se"], rel=0.03)
    assert res.rows("overall")["estimate"].iloc[0] == pytest.approx(ref.params["D"], abs=1e-9)


def test_dynamic_matches_panelols(sim):
    window = (-5, 8)
    res = twfe_dynamic(
        sim,
        "y",
        "unit",
        "time",
        "g",
        event_window=window,
        cluster="kreis",
        k_fixef="full",
        min_untreated_per_period=0,  # textbook TWFE on every period, as PanelOLS below
    )
    rel = pd.Series(np.where(sim["g"] > 0, sim["time"] - sim["g"], np.nan))
    dummies, periods = event_dummies(rel, window, -1)
    d = pd.concat([sim, dummies], axis=1)
    ref = _panelols(d, list(dummies.columns), "kreis")
    es = res.rows("event_time").drop(-1)
    np.testing.assert_allclose(es["estimate"].to_numpy(), ref.params.to_numpy(), atol=1e-9)
    np.testing.assert_allclose(es["se"].to_numpy(), ref.std_errors.to_numpy(), rtol=1e-8)
    # the covariance matrix is the regression's, restricted to the event-time block
    np.testing.assert_allclose(np.sqrt(np.diag(res.vcov)), es["se"].to_numpy(), rtol=1e-12)
    assert res.rows("event_time").loc[-1, "estimate"] == 0.0


def test_binned_endpoints():
    rel = pd.Series([-9.0, -5, -2, -1, 0, 3, 7, 12, np.nan])
    d, periods = event_dummies(rel, (-5, 7), -1)
    assert -1 not in periods and periods[0] == -5 and periods[-1] == 7
    assert d["_et_m5"].tolist() == [1, 1, 0, 0, 0, 0, 0, 0, 0]  # -9 binned into -5
    assert d["_et_p7"].tolist() == [0, 0, 0, 0, 0, 0, 1, 1, 0]  # 12 binned into 7
    assert d.iloc[3].sum() == 0 and d.iloc[-1].sum() == 0  # reference and never-treated


def test_static_twfe_is_biased_under_heterogeneous_dynamics(sim):
    res = twfe_static(sim, "y", "unit", "time", "g", covariates=["xv"], cluster="kreis")
    att = res.rows("overall").iloc[0]
    last = sim["g"].max()
    treated = sim[(sim["g"] > 0) & (sim["time"] >= sim["g"])]
    truth_all = treated["tau"].mean()
    truth_early = treated[treated["time"] < last]["tau"].mean()
    for truth in (truth_all, truth_early):
        assert abs(att["estimate"] - truth) > 3 * att["se"], (att["estimate"], truth)


def test_anticipation_moves_reference(sim):
    res = twfe_dynamic(sim, "y", "unit", "time", "g", anticipation=2, event_window=(-6, 4))
    assert res.info["reference"] == -3
    es = res.rows("event_time")
    assert es.loc[-3, "term"] == "reference" and es.loc[-1, "term"] == "e-1"
    with pytest.raises(ValueError, match="reference period"):
        twfe_dynamic(sim, "y", "unit", "time", "g", anticipation=2, event_window=(-2, 4))


def test_time_invariant_covariate_enters_as_trends(sim):
    res = twfe_static(sim, "y", "unit", "time", "g", covariates=["x"])
    assert res.info["coefficients"].keys() == {"treated"}  # x:t<k> rows not reported
    assert "x" not in res.warnings


def test_every_estimator_recovers_path_static_twfe_does_not(sim):
    """The headline check on one simulated panel: CS, SA, BJS and Gardner recover the
    planted dynamic path within 3 SE at every post period; static TWFE is > 3 SE off."""
    from ifm_eval.estimators import callaway_santanna, gardner, imputation, sun_abraham

    window = (-5, 10)
    truth = true_path(sim, window)
    paths = {}
    for name, fn in (
        ("sun_abraham", sun_abraham),
        ("imputation", imputation),
        ("gardner", gardner),
    ):
        es = fn(sim, "y", "unit", "time", "g", event_window=window, cluster="kreis").rows(
            "event_time"
        )
        paths[name] = es[es["event_time"] >= 0]
    try:
        cs = callaway_santanna(sim, "y", "unit", "time", "g", cluster="kreis")
    except ImportError:  # pragma: no cover - module of another work package
        cs = None
    if cs is not None:
        tab = cs.aggregate("dynamic", min_e=window[0], max_e=window[1]).table
        paths["callaway_santanna"] = tab[tab["event_time"] >= 0].set_index("event_time")
    for name, post in paths.items():
        z = (post["estimate"] - truth.reindex(post.index)) / post["se"]
        assert z.notna().all() and np.abs(z).max() < 3, (name, z.round(2).to_dict())
    static = twfe_static(sim, "y", "unit", "time", "g", cluster="kreis").rows("overall").iloc[0]
    treated = sim[(sim["g"] > 0) & (sim["time"] >= sim["g"])]
    assert abs(static["estimate"] - treated["tau"].mean()) > 3 * static["se"]


def test_dynamic_drops_periods_without_untreated_units():
    df = simulate_staggered(n_units=300, n_periods=40, cohorts=(10, 20, 30), seed=3)
    u = df["unit"].str[1:].astype(int)
    df.loc[u < 5, "g"] = 36
    res = twfe_dynamic(
        df, "y", "unit", "time", "g", event_window=(-5, 10), min_untreated_per_period=10
    )
    cells = pd.DataFrame(res.info["dropped_cells"])
    assert set(cells["time"]) == set(range(30, 41))
    assert any("fewer than 10 untreated units" in w for w in res.warnings)
    assert res.n_obs == int((df["time"] < 30).sum())
    assert np.isfinite(res.rows("event_time")["estimate"]).all()
