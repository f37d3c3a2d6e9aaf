"""The few-cluster bootstrap as the estimators run it (spec key ``inference.bootstrap``):
the influence sums behind the multiplier bootstrap reproduce each estimator's analytic
variance, the WCR restrictions reproduce its estimates, bootstrap and analytic p agree with
many clusters, the draws are joint across specs, Romano–Wolf controls the FWER and the spec
schema names a bad key."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from scipy import stats

from ifm_eval.estimators import registry
from ifm_eval.estimators.design import Design
from ifm_eval.estimators.results import TIDY_COLUMNS, tidy_frame
from ifm_eval.estimators.specs import SpecError, normalise_spec
from ifm_eval.inference.bootstrap import cluster_weights
from ifm_eval.inference.multiplier import multiplier_rows
from ifm_eval.inference.romano_wolf import romano_wolf

BOOT = {"weights": "webb", "draws": 4999, "seed": 11}


def _spec(estimator: str, outcome: str = "lemp", **kw):
    """A validated spec (schema-valid names) pointed at the mpdta columns."""
    raw = {"estimator": estimator, "outcome": "rate_employment", "event_window": [-3, 3],
           "control_group": "not_yet_treated", "inference": {"type": "analytic", "bootstrap": dict(BOOT)}}
    if estimator == "callaway_santanna":
        raw["method"] = "reg"
    raw.update(kw)
    spec = normalise_spec(f"t_{estimator}", raw)
    return {**spec, "outcome": outcome, "cluster": "countyreal", "covariates": []}


def _fit(mpdta, estimator: str, **kw):
    spec = _spec(estimator, **kw)
    design = Design.from_spec(spec, unit="countyreal", time="year").with_(cohort="first.treat")
    return registry.fit(mpdta, design, spec), spec


def test_bootstrap_key_validated_and_defaults_filled():
    base = {"estimator": "imputation", "outcome": "rate_employment"}
    s = normalise_spec("m", {**base, "inference": {"bootstrap": {"weights": "rademacher"}}})
    assert s["inference"]["bootstrap"] == {"weights": "rademacher", "draws": 9999, "seed": 20261201}
    assert "bootstrap" not in normalise_spec("m", base)["inference"]
    with pytest.raises(SpecError, match="inference/bootstrap/weights"):
        normalise_spec("m", {**base, "inference": {"bootstrap": {"weights": "mammen"}}})
    with pytest.raises(SpecError, match="'draw'"):
        normalise_spec("m", {**base, "inference": {"bootstrap": {"draw": 99}}})


@pytest.mark.parametrize("estimator", ["callaway_santanna", "imputation", "gardner"])
def test_influence_sums_reproduce_the_analytic_variance(mpdta, estimator):
    """sqrt(sum_g psi_g^2) is each row's analytic SE: the multiplier bootstrap resamples the
    estimator's own variance."""
    res, _ = _fit(mpdta, estimator)
    src = res.boot_source
    assert src.kind == "multiplier" and src.psi.shape == (500, len(src.terms))
    se = np.sqrt((src.psi ** 2).sum(axis=0))
    tab = res.table.set_index("term")
    for j, term in enumerate(src.terms):
        assert np.isclose(se[j], tab.loc[term, "se"], rtol=1e-8), term
        assert np.isclose(src.estimates[j], tab.loc[term, "estimate"], rtol=1e-12), term


@pytest.mark.parametrize("estimator", ["twfe_static", "twfe_dynamic", "sun_abraham"])
def test_wcr_restrictions_reproduce_the_estimates(mpdta, estimator):
    kw = {"control_group": "last_treated"} if estimator == "sun_abraham" else {}
    res, _ = _fit(mpdta, estimator, **kw)
    src = res.boot_source
    tab = res.table.set_index("term")
    fitted = src.restrictions @ src.fit.coef
    for term, value in zip(src.terms, fitted, strict=True):
        assert np.isclose(value, tab.loc[term, "estimate"], rtol=1e-10, atol=1e-12), term
    # the WCR test inversion brackets the estimate and the p-value is a proper probability
    rows = res.table[res.table["term"].isin(src.terms)]
    assert (rows["boot_ci_low"] < rows["estimate"]).all() and (rows["estimate"] < rows["boot_ci_high"]).all()
    assert rows["boot_p"].between(0, 1).all()


@pytest.mark.parametrize("estimator", ["callaway_santanna", "imputation", "twfe_dynamic"])
def test_bootstrap_agrees_with_analytic_with_many_clusters(mpdta, estimator):
    """500 county clusters: bootstrap and analytic (normal) p-values agree within Monte
    Carlo error of 4,999 draws, and so do the interval widths."""
    res, _ = _fit(mpdta, estimator)
    rows = res.table[res.table["boot_p"].notna() & res.table["se"].gt(0)]
    assert len(rows) >= 4
    p_an = 2 * stats.norm.sf(np.abs(rows["estimate"] / rows["se"]))
    mcse = np.sqrt(np.clip(p_an * (1 - p_an), 1e-4, None) / BOOT["draws"])
    assert np.all(np.abs(rows["boot_p"] - p_an) <= 4 * mcse + 0.012)
    width_an = 2 * 1.959964 * rows["se"]
    width_bt = rows["boot_ci_high"] - rows["boot_ci_low"]
    np.testing.assert_allclose(width_bt, width_an, rtol=0.06)


def test_tidy_columns_are_nan_without_bootstrap(mpdta):
    spec = _spec("imputation")
    spec = copy.deepcopy(spec)
    spec["inference"].pop("bootstrap")
    design = Design.from_spec(spec, unit="countyreal", time="year").with_(cohort="first.treat")
    res = registry.fit(mpdta, design, spec)
    tidy = tidy_frame(res.table, spec="x", estimator="imputation", outcome="lemp")
    assert tuple(tidy.columns) == TIDY_COLUMNS
    assert tidy[["boot_p", "boot_ci_low", "boot_ci_high"]].isna().all().all()
    assert res.boot_draws is None and "bootstrap" not in res.info


def test_weights_follow_cluster_labels_across_specs():
    """The same label gets the same weight whatever the order or subset of a spec's clusters:
    the draws of specs on the same data are joint."""
    universe = np.array(["k3", "k1", "k2", "k4", "k1"])
    V_all, _ = cluster_weights(universe, np.array(["k1", "k2", "k3", "k4"]), "webb", 50, 5)
    V_sub, _ = cluster_weights(universe, np.array(["k4", "k2"]), "webb", 50, 5)
    np.testing.assert_array_equal(V_sub, V_all[:, [3, 1]])
    with pytest.raises(ValueError, match="k9"):
        cluster_weights(universe, np.array(["k9"]), "webb", 50, 5)


def test_same_seed_gives_joint_draws_across_outcomes(mpdta):
    """Two outcomes of one estimator with the same bootstrap seed: the bootstrap t-statistics
    come from the same cluster weights (their correlation is the outcomes' correlation, not
    zero)."""
    d = mpdta.assign(lemp2=mpdta["lemp"] + 0.3 * np.random.default_rng(2).normal(size=len(mpdta)))
    a, _ = _fit(d, "imputation")
    b, _ = _fit(d, "imputation", outcome="lemp2")
    ta, tb = a.boot_draws["att"], b.boot_draws["att"]
    assert np.corrcoef(ta, tb)[0, 1] > 0.5
    c, _ = _fit(d, "imputation", outcome="lemp2", inference={"type": "analytic", "bootstrap": {**BOOT, "seed": 12}})
    assert abs(np.corrcoef(ta, c.boot_draws["att"])[0, 1]) < 0.1


def test_romano_wolf_controls_the_familywise_error_rate():
    """Three null outcomes with correlated cluster errors (rho = 0.3), 200 clusters (so that
    each single bootstrap test has its nominal size and the check is about the step-down):
    rejecting any unadjusted p <= 5% happens in ~13% of samples, any Romano–Wolf p <= 5% in
    at most 5% (600 samples: Monte Carlo SE ~0.9 points)."""
    rng = np.random.default_rng(7)
    G, reps, B = 200, 600, 999
    C = np.full((3, 3), 0.3) + 0.7 * np.eye(3)
    L = np.linalg.cholesky(C)
    any_raw = any_rw = 0
    for r in range(reps):
        e = rng.normal(size=(G, 3)) @ L.T  # cluster-level errors
        est = e.mean(axis=0)
        psi = (e - est) / G  # cluster influence sums of the means
        rows, tb, _ = multiplier_rows(["a", "b", "c"], est, psi, "rademacher", draws=B, seed=r)
        t = rows["boot_t"].to_numpy()
        adj = romano_wolf(t, np.column_stack([tb["a"], tb["b"], tb["c"]]))
        any_raw += bool((rows["boot_p"] <= 0.05).any())
        any_rw += bool((adj <= 0.05).any())
        assert np.all(adj >= rows["boot_p"].to_numpy() - 1e-12)  # adjusted never below raw
    assert any_raw / reps > 0.09
    assert any_rw / reps <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / reps)


def test_romano_wolf_order_and_monotonicity():
    rng = np.random.default_rng(0)
    tb = rng.normal(size=(2000, 3))
    t = np.array([0.5, 3.5, 2.2])
    adj = romano_wolf(t, tb)
    assert adj[1] <= adj[2] <= adj[0]  # ordered like |t|
    single = np.mean(np.abs(tb).max(axis=1) >= 3.5)  # the largest |t| faces the max over all
    assert adj[1] == pytest.approx(single)
    assert np.isnan(romano_wolf(np.array([np.nan, 1.0]), tb[:, :2])[0])
