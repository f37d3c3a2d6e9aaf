"""Cluster-jackknife (CV3) inference: every estimator's fast leave-one-cluster-out
estimates equal re-estimating without each cluster (brute force), the SE is the CV3 formula
of those, intervals use t(G - 1), and the spec rules name what is not supported."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from test_twfe import simulate_staggered  # noqa: I001  (tests/ on sys.path)

from ifm_eval.estimators.callaway_santanna import callaway_santanna
from ifm_eval.estimators.gardner import gardner
from ifm_eval.estimators.imputation import imputation
from ifm_eval.estimators.jackknife import jackknife_se
from ifm_eval.estimators.specs import SpecError, normalise_spec
from ifm_eval.estimators.sun_abraham import sun_abraham
from ifm_eval.estimators.twfe import twfe_dynamic, twfe_static

WINDOW = (-4, 8)


@pytest.fixture(scope="module")
def sim() -> pd.DataFrame:
    df = simulate_staggered(n_units=240, n_periods=30, seed=11, never_treated=24)
    return df


def _fit(name: str, df: pd.DataFrame, jackknife: bool):
    kw = dict(cluster="kreis", weights="w", jackknife=jackknife)
    if name == "twfe_static":
        return twfe_static(df, "y", "unit", "time", "g", covariates=["x"], **kw)
    if name == "twfe_dynamic":
        return twfe_dynamic(df, "y", "unit", "time", "g", covariates=["x"], event_window=WINDOW,
                            min_untreated_per_period=1, **kw)
    if name == "sun_abraham":
        return sun_abraham(df, "y", "unit", "time", "g", covariates=["x"], event_window=WINDOW,
                           control_group="never_treated", min_untreated_per_period=1, **kw)
    if name == "imputation":
        return imputation(df, "y", "unit", "time", "g", covariates=["x"], event_window=WINDOW,
                          min_untreated_per_period=1, pretrends=False, **kw)
    if name == "gardner":
        return gardner(df, "y", "unit", "time", "g", covariates=["x"], event_window=WINDOW,
                       min_untreated_per_period=1, **kw)
    res = callaway_santanna(df, "y", "unit", "time", "g", covariates=["x"], control_group="not_yet_treated",
                            method="reg", weights="w", cluster="kreis")
    return res.to_result(WINDOW, None, jackknife=jackknife)


HEADLINE = {"twfe_static": "att", "twfe_dynamic": "dynamic", "sun_abraham": "att", "imputation": "att",
            "gardner": "att", "callaway_santanna": "dynamic"}


def _terms(tab: pd.DataFrame, terms: list[str]) -> pd.Series:
    t = tab[tab["kind"].isin(["overall", "event_time"])].drop_duplicates("term").set_index("term")
    return t.loc[terms, "estimate"]


@pytest.mark.parametrize("name", list(HEADLINE))
def test_fast_jackknife_equals_brute_force(sim, name):
    res = _fit(name, sim, True)
    tab = res.table
    terms = [HEADLINE[name]] + ([] if name == "twfe_static" else ["e+0", "e+3", "e+8"])
    assert res.info["inference"] == "cluster_jackknife"
    clusters = sorted(sim["kreis"].unique())
    loo = np.array([_terms(_fit(name, sim[sim["kreis"] != k], False).table, terms).to_numpy() for k in clusters])
    G = len(clusters)
    cv3 = np.sqrt((G - 1) / G * ((loo - loo.mean(axis=0)) ** 2).sum(axis=0))
    got = tab[tab["kind"].isin(["overall", "event_time"])].drop_duplicates("term").set_index("term").loc[terms]
    np.testing.assert_allclose(got["se"].to_numpy(float), cv3, rtol=1e-7)
    np.testing.assert_allclose(jackknife_se(loo), cv3, rtol=1e-12)
    # the point estimates are the full-sample ones, the interval is t(G - 1) wide
    np.testing.assert_allclose(got["estimate"].to_numpy(float),
                               _terms(_fit(name, sim, False).table, terms).to_numpy(float), rtol=1e-12)
    crit = stats.t.ppf(0.975, G - 1)
    np.testing.assert_allclose(got["ci_high"] - got["estimate"], crit * got["se"], rtol=1e-10)
    # the analytic SEs are kept for comparison
    assert set(res.info["se_analytic"]) >= set(terms)


def test_blocked_leave_out_solves_equal_one_block(sim, monkeypatch):
    """Many clusters: the leave-out systems are solved in blocks (bounded memory) with the
    same result."""
    full = _fit("imputation", sim, True).table
    import ifm_eval.estimators.fe as fe

    orig = fe.cluster_jackknife

    def small_blocks(*a, **k):
        return orig(*a, **k, block=3)

    monkeypatch.setattr(fe, "cluster_jackknife", small_blocks)
    blocked = _fit("imputation", sim, True).table
    pd.testing.assert_frame_equal(full, blocked, check_exact=False, rtol=1e-10)


def test_jackknife_se_formula():
    est = np.array([[1.0, 2.0], [2.0, np.nan], [3.0, 4.0]])
    se = jackknife_se(est)
    assert se[0] == pytest.approx(np.sqrt(2 / 3 * 2.0))
    assert se[1] == pytest.approx(np.sqrt(1 / 2 * 2.0))  # the cluster without an estimate is left out


@pytest.mark.parametrize("raw, msg", [
    ({"estimator": "callaway_santanna", "method": "dr", "inference": {"type": "jackknife"}, "cluster": "kreis"},
     "needs method 'reg'"),
    ({"estimator": "callaway_santanna", "method": "reg", "inference": {"type": "jackknife"}, "balance_e": 6},
     "does not support balance_e"),
])
def test_jackknife_spec_rules(raw, msg):
    with pytest.raises(SpecError, match=msg):
        normalise_spec("m", {"outcome": "rate_employment", **raw})
