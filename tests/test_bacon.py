"""Goodman-Bacon decomposition: the exact identity with the static TWFE coefficient
(pyfixest) and the reference values of R ``bacondecomp`` on the castle-doctrine data.

R reference values (https://github.com/evanjflack/bacondecomp, commit ec99dd0). The
package README's printed example uses ``math_reform`` (not shipped here); on the castle
data, ``bacon(l_homicide ~ post, data = castle, id_var = "state", time_var = "year")`` is
pinned by

* ``tests/testthat/test_summary.R`` (checked there against Stata's ``bacondecomp``):
  ``bacon_summary`` weight 0.060 / 0.032 / 0.908 and avg_est -0.006 / 0.070 / 0.088 for
  Earlier vs Later / Later vs Earlier / Treated vs Untreated, rounded to 3 decimals;
* ``index.ipynb`` (the package's example notebook): TWFE 0.0818116169306475, type weights
  0.05976325 / 0.03189818 / 0.90833857 and the largest 2x2, 2006 vs never treated,
  estimate 0.06823587 with weight 0.5923947 (its per-type averages come from an older
  version that printed the same value for both timing types and are not used);
* ``tests/testthat/test_bacon_weights.R``: Goodman-Bacon's Figure 2 weights .365 / .222 /
  .278 / .135.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyfixest as pf
import pytest

from ifm_eval.diagnostics import bacon_decomposition, bacon_summary

CASTLE = Path(__file__).parent / "data" / "castle_doctrine.csv"
#: pyfixest's alternating projections to (near) machine precision
EXACT = pf.MapDemeaner(fixef_tol=1e-14, fixef_maxiter=100_000)
#: pyfixest's own pandas-3 deprecations (its internal ``inplace=True`` calls)
pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword:DeprecationWarning")


def _twfe(data: pd.DataFrame, y: str, d: str, unit: str, time: str, weights: str | None = None) -> float:
    fit = pf.feols(f"{y} ~ {d} | {unit} + {time}", data=data, weights=weights, demeaner=EXACT)
    return float(fit.coef().iloc[0])


@pytest.fixture(scope="module")
def castle() -> pd.DataFrame:
    return pd.read_csv(CASTLE)


def _panel(seed: int = 3, n: int = 120, T: int = 12) -> pd.DataFrame:
    """Balanced staggered panel: never treated (cohort 0), always treated (cohort 1 = the
    first period), cohorts 4, 7 and 10; dynamic effects heterogeneous by cohort; noise;
    time-invariant unit weights."""
    rng = np.random.default_rng(seed)
    cohort = rng.choice([0, 1, 4, 7, 10], size=n, p=[0.25, 0.15, 0.2, 0.2, 0.2])
    unit = np.repeat(np.arange(n), T)
    time = np.tile(np.arange(1, T + 1), n)
    g = cohort[unit]
    d = ((g > 0) & (time >= g)).astype(float)
    tau = d * (0.5 + 0.3 * (time - g) + 0.05 * g)
    y = rng.normal(size=n)[unit] + 0.2 * time + rng.normal(size=T + 1)[time] + tau + rng.normal(size=n * T)
    return pd.DataFrame({"unit": unit, "time": time, "cohort": g.astype(float), "d": d, "y": y,
                         "w": rng.uniform(0.5, 4.0, size=n)[unit]})


# -------------------------------------------------------------------- exact identity
@pytest.mark.parametrize("weights", [None, "popwt"])
def test_castle_identity(castle, weights):
    dec = bacon_decomposition(castle, "l_homicide", "state", "year", "effyear", weights=weights)
    beta = _twfe(castle, "l_homicide", "post", "state", "year", weights)
    assert dec["weight"].sum() == pytest.approx(1.0, abs=1e-12)
    assert (dec["weight"] > 0).all()
    assert abs((dec["weight"] * dec["estimate"]).sum() - beta) < 1e-10
    assert abs(dec.attrs["twfe"] - beta) < 1e-10


@pytest.mark.parametrize("weights", [None, "w"])
def test_simulated_identity_with_never_and_always_treated(weights):
    df = _panel()
    dec = bacon_decomposition(df, "y", "unit", "time", "cohort", weights=weights)
    beta = _twfe(df, "y", "d", "unit", "time", weights)
    assert set(dec["type"]) == {"earlier_vs_later", "later_vs_earlier", "later_vs_always",
                                "treated_vs_untreated"}
    assert set(dec.loc[dec["type"] == "later_vs_always", "comparison"]) == {"always"}
    assert set(dec.loc[dec["type"] == "treated_vs_untreated", "comparison"]) == {"never"}
    assert "always" not in set(dec["treated"])
    assert dec["weight"].sum() == pytest.approx(1.0, abs=1e-12)
    assert abs((dec["weight"] * dec["estimate"]).sum() - beta) < 1e-10


@pytest.mark.parametrize("weights", [None, "w"])
def test_each_2x2_is_the_twfe_of_its_subsample(weights):
    df = _panel(seed=5, n=60)
    dec = bacon_decomposition(df, "y", "unit", "time", "cohort", weights=weights)
    start = df["cohort"].where(df["cohort"] > 0, np.inf).replace(1.0, "always")
    start = start.where(start != np.inf, "never")
    for row in dec.itertuples():
        sub = df[start.isin([row.treated, row.comparison])
                 & df["time"].between(row.period_start, row.period_end)]
        assert abs(_twfe(sub, "y", "d", "unit", "time", weights) - row.estimate) < 1e-10, row


def test_goodman_bacon_figure_2_weights():
    """Three units, 100 periods, treated at 34 and 85, one never treated (R
    test_bacon_weights.R / Goodman-Bacon 2021, Figure 2)."""
    t = np.arange(1, 101)
    df = pd.DataFrame({"id": np.repeat([1, 2, 3], 100), "time": np.tile(t, 3),
                       "g": np.repeat([np.nan, 34, 85], 100),
                       "y": np.random.default_rng(0).normal(size=300)})
    dec = bacon_decomposition(df, "y", "id", "time", "g").set_index(["treated", "comparison"])
    got = [dec.loc[(34, "never"), "weight"], dec.loc[(85, "never"), "weight"],
           dec.loc[(34, 85), "weight"], dec.loc[(85, 34), "weight"]]
    np.testing.assert_allclose(np.round(got, 3), [0.365, 0.222, 0.278, 0.135])


# --------------------------------------------------------------- R reference values
def test_castle_matches_r_bacondecomp(castle):
    dec = bacon_decomposition(castle, "l_homicide", "state", "year", "effyear")
    summ = bacon_summary(dec).set_index("type")
    # test_summary.R (Stata-checked), rounded to 3 decimals
    np.testing.assert_array_equal(summ["weight"].round(3).to_numpy(), [0.060, 0.032, 0.908])
    np.testing.assert_array_equal(summ["avg_est"].round(3).to_numpy(), [-0.006, 0.070, 0.088])
    # index.ipynb, printed to 7-8 significant digits
    np.testing.assert_allclose(summ["weight"], [0.05976325, 0.03189818, 0.90833857], atol=5e-9)
    assert dec.attrs["twfe"] == pytest.approx(0.0818116169306475, abs=1e-13)
    top = dec.loc[dec["weight"].idxmax()]
    assert (top["treated"], top["comparison"], top["type"]) == (2006, "never", "treated_vs_untreated")
    assert top["estimate"] == pytest.approx(0.06823587, abs=5e-9)
    assert top["weight"] == pytest.approx(0.5923947, abs=5e-8)
    assert len(dec) == 25  # 5 cohorts: 5 vs never + 5 * 4 timing pairs


# ----------------------------------------------------------------------- conventions
def test_never_treated_codes_are_equivalent():
    df = _panel(seed=8)
    base = bacon_decomposition(df, "y", "unit", "time", "cohort")
    never = df["cohort"] == 0
    for code in (np.nan, np.inf, 99.0):  # 99: after the last period
        alt = df.assign(cohort=df["cohort"].where(~never, code))
        pd.testing.assert_frame_equal(bacon_decomposition(alt, "y", "unit", "time", "cohort"), base)
    # an always-treated cohort coded before the first period is the same group
    alt = df.assign(cohort=df["cohort"].replace(1.0, -5.0))
    pd.testing.assert_frame_equal(bacon_decomposition(alt, "y", "unit", "time", "cohort"), base)


def test_unbalanced_panel_names_units(castle):
    with pytest.raises(ValueError, match=r"balanced panel: unit\(s\) \['Ohio'\]"):
        bacon_decomposition(castle[~((castle["state"] == "Ohio") & (castle["year"] == 2003))],
                            "l_homicide", "state", "year", "effyear")
    gap = castle.copy()
    gap.loc[(gap["state"] == "Texas") & (gap["year"] == 2001), "l_homicide"] = np.nan
    with pytest.raises(ValueError, match="Texas"):
        bacon_decomposition(gap, "l_homicide", "state", "year", "effyear")
    with pytest.raises(ValueError, match="Utah"):
        bacon_decomposition(pd.concat([castle, castle[castle["state"] == "Utah"].head(1)]),
                            "l_homicide", "state", "year", "effyear")


def test_time_varying_weights_not_implemented(castle):
    df = castle.assign(w=castle["popwt"] * (1 + 0.01 * (castle["year"] - 2000)))
    with pytest.raises(NotImplementedError, match="time-invariant unit weights"):
        bacon_decomposition(df, "l_homicide", "state", "year", "effyear", weights="w")


def test_other_input_errors(castle):
    with pytest.raises(ValueError, match="cohort varies"):
        bad = castle.assign(effyear=castle["effyear"].where(castle["year"] != 2004, 2005.0))
        bacon_decomposition(bad, "l_homicide", "state", "year", "effyear")
    with pytest.raises(ValueError, match="no variation in treatment timing"):
        bacon_decomposition(castle.assign(g=np.nan), "l_homicide", "state", "year", "g")
    with pytest.raises(ValueError, match="positive"):
        bacon_decomposition(castle.assign(w=0.0), "l_homicide", "state", "year", "effyear", weights="w")
    with pytest.raises(KeyError, match="nope"):
        bacon_decomposition(castle, "nope", "state", "year", "effyear")
