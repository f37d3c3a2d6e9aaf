"""de Chaisemartin & D'Haultfoeuille (2020) weights of the static TWFE coefficient.

Exact identities (1e-10) against pyfixest's weighted TWFE fits (alternating projections
to 1e-14): noiseless ``Y = a_i + l_t + D tau`` on simulated unbalanced, weighted panels and
on the stand-in panel's real treatment timing, weights and planted cell effects; the
noisy decomposition with the untreated cells' weights; consistency with the Goodman-Bacon
decomposition; the robustness measures against a brute-force quadratic programme.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pyfixest as pf
import pytest
from pyfixest.estimation import demean
from scipy import optimize

from ifm_eval.diagnostics import (
    bacon_decomposition,
    fe_residual,
    twfe_weights,
    twfe_weights_summary,
)

EXACT = pf.MapDemeaner(fixef_tol=1e-14, fixef_maxiter=100_000)
#: pyfixest's own pandas-3 deprecations (its internal ``inplace=True`` calls)
pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword:DeprecationWarning")


def _twfe(data: pd.DataFrame, y: str, d: str, unit: str, time_: str, weights: str | None = None) -> float:
    fit = pf.feols(f"{y} ~ {d} | {unit} + {time_}", data=data, weights=weights, demeaner=EXACT)
    return float(fit.coef().iloc[0])


def _map_residual(df: pd.DataFrame, x: str, unit: str, time_: str, w: str | None) -> np.ndarray:
    """pyfixest's alternating-projection residual (independent of fe_residual)."""
    fl = np.column_stack([pd.factorize(df[unit])[0], pd.factorize(df[time_])[0]]).astype(np.uint64)
    wt = np.ones(len(df)) if w is None else df[w].to_numpy(float)
    out, converged = demean(df[[x]].to_numpy(float), fl, wt, tol=1e-14, maxiter=100_000)
    assert converged
    return out[:, 0]


def _staggered(seed: int = 0, n: int = 300, T: int = 20, drop: float = 0.1,
               noise: float = 0.0) -> pd.DataFrame:
    """Staggered panel: never treated (cohort 0), cohorts 3..16, effects heterogeneous
    by cohort and event time, ``drop`` share of cells missing, observation weights
    varying over cells, ``y = a_i + l_t + D tau (+ noise)``."""
    rng = np.random.default_rng(seed)
    cohort = rng.choice([0, 3, 6, 9, 12, 16], size=n)
    unit = np.repeat(np.arange(n), T)
    t = np.tile(np.arange(1, T + 1), n)
    g = cohort[unit]
    d = ((g > 0) & (t >= g)).astype(float)
    df = pd.DataFrame({"unit": unit, "time": t, "g": g, "d": d})[rng.random(n * T) >= drop]
    e = df["time"] - df["g"]
    df["tau"] = np.where(df["d"] == 1, 1.0 + 0.25 * e - 0.08 * df["g"] + 0.02 * e**2, 0.0)
    df["w"] = rng.uniform(0.2, 5.0, len(df))
    a, lt = rng.normal(0, 3, n), rng.normal(0, 1, T + 1)
    df["u"] = noise * rng.normal(size=len(df))
    df["y"] = a[df["unit"]] + lt[df["time"]] + df["d"] * df["tau"] + df["u"]
    return df.reset_index(drop=True)


def _merge(df: pd.DataFrame, w: pd.DataFrame, unit: str = "unit", time_: str = "time") -> pd.DataFrame:
    return df.merge(w, left_on=[unit, time_], right_on=["unit", "time"], how="inner",
                    validate="one_to_one", suffixes=("", "_w"))


# ---------------------------------------------------------------------- identities
@pytest.mark.parametrize("weights", [None, "w"])
def test_identity_noiseless_unbalanced(weights):
    df = _staggered()
    w = twfe_weights(df, "unit", "time", "d", weights)
    m = _merge(df, w)
    assert len(m) == int(df["d"].sum())
    beta = _twfe(df, "y", "d", "unit", "time", weights)
    assert abs((m["weight"] * m["tau"]).sum() - beta) < 1e-10
    assert w["weight"].sum() == pytest.approx(1.0, abs=1e-12)
    assert (w["weight"] < 0).any()  # staggered adoption: some negative weights


def test_identity_with_noise_uses_all_cells():
    """beta = sum_{D=1} w tau + sum_all w u (the untreated cells' weights multiply u)."""
    df = _staggered(seed=1, noise=1.0)
    w = twfe_weights(df, "unit", "time", "d", "w", all_cells=True)
    m = _merge(df, w)
    assert len(m) == len(df) and (m["treated"] == (m["d"] == 1)).all()
    beta = _twfe(df, "y", "d", "unit", "time", "w")
    t = m["treated"]
    total = (m.loc[t, "weight"] * m.loc[t, "tau"]).sum() + (m["weight"] * m["u"]).sum()
    assert abs(total - beta) < 1e-10
    assert m.loc[t, "weight"].sum() == pytest.approx(1.0, abs=1e-12)
    assert w.attrs["denominator"] == pytest.approx((m["n"] * m["epsilon"] ** 2).sum(), rel=1e-10)


def test_epsilon_equals_alternating_projections():
    df = _staggered(seed=2)
    w = twfe_weights(df, "unit", "time", "d", "w", all_cells=True)
    m = _merge(df, w)
    np.testing.assert_allclose(m["epsilon"], _map_residual(m, "d", "unit", "time", "w"), atol=1e-10)


def test_fe_residual_balanced_closed_form():
    rng = np.random.default_rng(4)
    n, T = 40, 9
    x = rng.normal(size=(n, T))
    r = fe_residual(x.ravel(), np.repeat(np.arange(n), T), np.tile(np.arange(T), n))
    ref = x - x.mean(1, keepdims=True) - x.mean(0, keepdims=True) + x.mean()
    np.testing.assert_allclose(r, ref.ravel(), atol=1e-13)
    # more periods than units: the other factor is eliminated; same answer
    rt = fe_residual(x.T.ravel(), np.repeat(np.arange(T), n), np.tile(np.arange(n), T))
    np.testing.assert_allclose(rt, ref.T.ravel(), atol=1e-13)


def test_fe_residual_lsqr_path_agrees():
    df = _staggered(seed=5, n=60, T=12)
    u, t = pd.factorize(df["unit"])[0], pd.factorize(df["time"])[0]
    dense = fe_residual(df["d"], u, t, df["w"])
    sparse = fe_residual(df["d"], u, t, df["w"], max_dense=1)
    np.testing.assert_allclose(sparse, dense, atol=1e-9)


def test_rows_within_a_cell_are_aggregated():
    """Individual-level rows (several per unit-period cell, weights summed): the weights
    are those of the regression on the individual rows."""
    df = _staggered(seed=3, n=80, T=10, drop=0.0)
    rng = np.random.default_rng(3)
    rep = df.loc[df.index.repeat(rng.integers(1, 4, len(df)))].reset_index(drop=True)
    rep["w"] = rng.uniform(0.5, 2.0, len(rep))
    w = twfe_weights(rep, "unit", "time", "d", "w")
    assert len(w) == int(df["d"].sum())
    cells = rep.groupby(["unit", "time"])["w"].sum()
    np.testing.assert_allclose(w.set_index(["unit", "time"])["n"], cells.reindex(w.set_index(["unit", "time"]).index))
    m = _merge(df, w)
    assert abs((m["weight"] * m["tau"]).sum() - _twfe(rep, "y", "d", "unit", "time", "w")) < 1e-10


def test_dcdh_and_bacon_reproduce_the_same_twfe():
    """Balanced, unweighted: sum w tau (dCDH) and sum s beta_2x2 (Goodman-Bacon) both
    equal the TWFE coefficient; with time-invariant weights too."""
    df = _staggered(seed=6, drop=0.0)
    df["wu"] = 1.0 + (df["unit"] % 7)
    for weights in (None, "wu"):
        beta = _twfe(df, "y", "d", "unit", "time", weights)
        w = twfe_weights(df, "unit", "time", "d", weights)
        dec = bacon_decomposition(df, "y", "unit", "time", "g", weights=weights)
        m = _merge(df, w)
        assert abs((m["weight"] * m["tau"]).sum() - beta) < 1e-10
        assert abs((dec["weight"] * dec["estimate"]).sum() - beta) < 1e-10


# ------------------------------------------------------------------------- summary
def _qp_min_sd(wt: np.ndarray, P: np.ndarray, beta: float, mode: str) -> float:
    """min sigma(Delta) s.t. sum wt Delta = beta and (mode "zero") sum P Delta = 0 or
    (mode "sign") every Delta of the sign opposite to beta: a convex QP."""
    def sd2(x: np.ndarray) -> float:
        return float(P @ (x - P @ x) ** 2)

    cons = [{"type": "eq", "fun": lambda x: wt @ x - beta}]
    bounds = None
    if mode == "zero":
        cons.append({"type": "eq", "fun": lambda x: P @ x})
    else:
        bounds = [(None, 0.0) if beta > 0 else (0.0, None)] * len(wt)
    x0 = np.where(wt < 0, beta / wt.clip(max=-1e-12) / max((wt < 0).sum(), 1), 0.0)
    res = optimize.minimize(sd2, x0, constraints=cons, bounds=bounds, method="SLSQP",
                            options={"ftol": 1e-15, "maxiter": 2000})
    assert res.success
    return float(np.sqrt(res.fun))


def test_summary_counts_and_robustness_measures():
    df = _staggered(seed=12, n=20, T=10, drop=0.0)
    w = twfe_weights(df, "unit", "time", "d", "w")
    m = _merge(df, w)
    beta = float((m["weight"] * m["tau"]).sum())
    s = twfe_weights_summary(w, beta=beta)
    eps = w["epsilon"].to_numpy()
    assert s["n_treated_cells"] == len(w) == 64 and s["n_negative"] == int((eps < 0).sum()) == 10
    assert s["n_positive"] + s["n_negative"] + s["n_zero"] == len(w)
    assert s["sum_positive"] + s["sum_negative"] == pytest.approx(1.0, abs=1e-12)
    P = (w["n"] / w["n"].sum()).to_numpy()
    wt = w["weight"].to_numpy()
    assert s["sigma_fe"] == pytest.approx(_qp_min_sd(wt, P, beta, "zero"), rel=1e-5)
    assert s["sigma_fe_sign"] == pytest.approx(_qp_min_sd(wt, P, beta, "sign"), rel=1e-5)
    assert s["sigma_fe_sign"] > s["sigma_fe"]
    assert twfe_weights_summary(w)["n_negative"] == s["n_negative"] and "sigma_fe" not in twfe_weights_summary(w)


def test_no_negative_weights_in_a_single_cohort_design():
    """One treated cohort vs never treated: all treated cells get the same weight > 0."""
    df = _staggered(seed=10, drop=0.0)
    df = df[df["g"].isin([0, 9])]
    w = twfe_weights(df, "unit", "time", "d")
    np.testing.assert_allclose(w["weight"], 1 / len(w), rtol=1e-10)
    s = twfe_weights_summary(w, beta=1.0)
    assert s["n_negative"] == 0 and s["sigma_fe_sign"] is None and s["sigma_fe"] is None


def test_input_errors():
    df = _staggered(seed=11, n=30, T=6)
    with pytest.raises(ValueError, match="binary"):
        twfe_weights(df.assign(d=df["d"] * 2), "unit", "time", "d")
    with pytest.raises(ValueError, match="missing"):
        twfe_weights(df.assign(w=df["w"].where(df.index != 3)), "unit", "time", "d", "w")
    with pytest.raises(ValueError, match="varies within"):
        dup = pd.concat([df.head(1), df.head(1).assign(d=1 - df["d"].iloc[0])])
        twfe_weights(pd.concat([df, dup]), "unit", "time", "d")
    with pytest.raises(ValueError, match="collinear"):
        twfe_weights(df.assign(d=(df["time"] >= 4).astype(float)), "unit", "time", "d")


# ------------------------------------------------------------------------- timing
def test_timing_1101_units_by_84_months(record_property):
    rng = np.random.default_rng(12)
    n, T = 1101, 84
    g = rng.choice(np.r_[0, np.arange(13, 80)], size=n)
    unit, t = np.repeat(np.arange(n), T), np.tile(np.arange(1, T + 1), n)
    df = pd.DataFrame({"unit": unit, "time": t, "g": g[unit], "w": rng.uniform(1, 500, n)[unit],
                       "y": rng.normal(size=n * T)})
    df["d"] = ((df["g"] > 0) & (df["time"] >= df["g"])).astype(float)
    t0 = time.perf_counter()
    w = twfe_weights(df, "unit", "time", "d", "w")
    seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    dec = bacon_decomposition(df, "y", "unit", "time", "g", weights="w")
    seconds_bacon = time.perf_counter() - t0
    record_property("twfe_weights_seconds", round(seconds, 3))
    record_property("bacon_seconds", round(seconds_bacon, 3))
    print(f"1,101 x 84 ({len(df)} rows): twfe_weights {seconds:.3f} s, bacon_decomposition "
          f"{seconds_bacon:.3f} s ({len(dec)} 2x2s)")
    assert len(df) == 92_484 and w["weight"].sum() == pytest.approx(1.0, abs=1e-10)
    assert seconds < 5 and seconds_bacon < 10


# ---------------------------------------------------------------------- stand-in
@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:1 singleton fixed effect:UserWarning")  # a unit seen once
def test_standin_panel_planted_effects(standin_panel, record_property):
    """The stand-in panel's real design -- main specification sample (t >= 13, outcome
    observed), cohorts ``g_half_posts``, refugee weights ``refugees_2017`` -- with the
    planted cell effects of the employment rate (truth_counts: observed minus
    counterfactual stock, pp): for ``Y = a_i + l_t + D tau_it`` the weighted TWFE coefficient
    is ``sum w_it tau_it`` exactly, and the negative weights are the treated cells with a
    negative residual of D on the fixed effects (pyfixest's alternating projections)."""
    from ifm_eval.validation import cell_effects, tau_column

    panel = standin_panel["panel"]
    cells = standin_panel.get("_cells")
    if cells is None:
        cells = standin_panel["_cells"] = cell_effects(panel, standin_panel["truth_counts"])
    # refugees_2017 as the runner derives it (estimators.runner.DERIVED_WEIGHTS)
    d = cells.assign(w=(cells["refugees_per_1000_2017"] * cells["population"] / 1000.0).round())
    g = d["g_half_posts"]
    d["D"] = ((g > 0) & (d["t"] >= g)).astype(float)
    d = d[(d["t"] >= 13) & d["rate_employment"].notna() & (d["w"] > 0)].reset_index(drop=True)
    tau = d[tau_column("rate_employment")]
    assert np.isfinite(tau[d["D"] == 1]).all() and (tau[d["D"] == 0].abs() < 1e-9).all()
    d["tau"] = np.where(d["D"] == 1, tau, 0.0)
    rng = np.random.default_rng(2017)
    a = pd.Series(rng.normal(0, 5, d["ags"].nunique()), index=np.sort(d["ags"].unique()))
    lt = pd.Series(rng.normal(0, 2, int(d["t"].max()) + 1))
    d["y"] = a.reindex(d["ags"]).to_numpy() + lt.reindex(d["t"]).to_numpy() + d["D"] * d["tau"]

    t0 = time.perf_counter()
    w = twfe_weights(d, "ags", "t", "D", "w")
    seconds = time.perf_counter() - t0
    m = _merge(d, w, "ags", "t")
    beta = _twfe(d, "y", "D", "ags", "t", "w")
    assert abs((m["weight"] * m["tau"]).sum() - beta) < 1e-10

    summary = twfe_weights_summary(w, beta=beta)
    eps_map = _map_residual(d, "D", "ags", "t", "w")[d["D"].to_numpy() == 1]
    assert summary["n_zero"] == 0
    assert summary["n_negative"] == int((eps_map < 0).sum())
    assert 0 < summary["n_negative"] < summary["n_treated_cells"] == int(d["D"].sum())
    wmean_tau = float((m["n"] * m["tau"]).sum() / m["n"].sum())
    record_property("standin_twfe_weights", {**summary, "seconds": round(seconds, 3),
                                             "weighted_mean_tau": wmean_tau})
    print(f"stand-in: {summary['n_treated_cells']} treated cells, {summary['n_negative']} negative "
          f"weights (sum {summary['sum_negative']:.3f}); beta {beta:.3f} pp vs weighted mean tau "
          f"{wmean_tau:.3f} pp; twfe_weights {seconds:.3f} s")
