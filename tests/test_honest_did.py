"""Tests of ``ifm_eval.sensitivity`` (Rambachan & Roth 2023 "HonestDiD").

(a) the Medicaid example of the R HonestDiD README (event study rebuilt with pyfixest);
(b) agreement with moderndid 0.2.0 on other inputs; (c) properties (nesting, identified sets,
breakdown values) and the building blocks (R random stream, truncated-normal quantile, FLCI bias).

R reference numbers: the README of github.com/asheshrambachan/HonestDiD (v0.2.8, README.md,
section "Example usage - Medicaid expansions") prints its tables to three significant digits; the
same tables are stored to full precision in that repository's knitr cache (README_cache/gfm/,
files named below), decoded from R's serialisation format for these tests.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import linprog
from scipy.stats import norm, truncnorm

from ifm_eval.sensitivity import breakdown, honest_did, original_ci
from ifm_eval.sensitivity._rng import r_rmvnorm, r_rnorm, r_runif
from ifm_eval.sensitivity.conditional import tn_quantile
from ifm_eval.sensitivity.flci import flci, folded_normal_quantile, worst_case_bias_coefficients
from ifm_eval.sensitivity.relative_magnitudes import rm_grid_contains, rm_identified_set
from ifm_eval.sensitivity.smoothness import sd_default_m_values, sd_identified_set

DATA = Path(__file__).parent / "data" / "medicaid_ehec.csv"

# --- R HonestDiD README (Medicaid, l_vec = first post period) ----------------------------------
# createSensitivityResults_relativeMagnitudes(Mbarvec = seq(0.5, 2, by = 0.5)), printed table:
README_RM_PRINTED = [  # (Mbar, lb, ub) as printed (3 significant digits)
    (0.5, 0.0241, 0.0673), (1.0, 0.0171, 0.0720), (1.5, 0.00859, 0.0796), (2.0, -0.00107, 0.0883),
]
# ... the same table at full precision (README_cache/gfm/unnamed-chunk-4_d08e3937...rdb). Its
# bounds are points of the grid l'b +- (Mbar sum_t t|l_t| max|diff b_pre| + 20 sd) (our
# grid="adaptive"), not of the current R default grid.
README_RM_FULL = [
    (0.5, 0.024130122237794344, 0.06726330158312863),
    (1.0, 0.017093720963044234, 0.07196297648143499),
    (1.5, 0.008586907802101723, 0.0795988279137052),
    (2.0, -0.0010670258970860713, 0.08834728003302408),
]
# the relative-magnitude results with Mbarvec = seq(0, 2, by = 0.5) stored in the same cache
# (unnamed-chunk-5_8563727f...rdb) lie on the current R default grid (+- 20 sd around 0):
README_RM_R_GRID = [
    (0.0, 0.02876563121251613, 0.06431042392097558),
    (0.5, 0.024001896107258697, 0.06724195321651863),
    (1.0, 0.017039514030343955, 0.07200568832177609),
    (1.5, 0.008244926143714831, 0.07970095272257657),
    (2.0, -0.0009161029048571911, 0.08812909944726285),
]
# createSensitivityResults(Mvec = seq(0, 0.05, by = 0.01)), printed table and full precision
# (unnamed-chunk-6_6a1a19c1...rdb):
README_SD_PRINTED = [
    (0.00, 0.0259, 0.0607), (0.01, 0.0132, 0.0787), (0.02, 0.00286, 0.0907),
    (0.03, -0.00714, 0.101), (0.04, -0.0171, 0.111), (0.05, -0.0271, 0.121),
]
README_SD_FULL = [
    (0.00, 0.02594147902742559, 0.06072578637633297),
    (0.01, 0.013197025151447349, 0.0786707425358153),
    (0.02, 0.002856995951433544, 0.09071603940652409),
    (0.03, -0.007142576403053387, 0.10071561176101101),
    (0.04, -0.017142576402225745, 0.11071561176018338),
    (0.05, -0.027142576401398125, 0.12071561175935576),
]
# l_vec = c(0.5, 0.5), Mbarvec = seq(0, 2, by = 0.5) and constructOriginalCS for it
# (unnamed-chunk-7_40d31aed...rdb; the README shows these only as a plot):
README_RM_AVG_FULL = [
    (0.0, 0.04053046714881314, 0.07512256249015431),
    (0.5, 0.03214178319537053, 0.07981560160559506),
    (1.0, 0.01938431730559176, 0.09014856148539291),
    (1.5, 0.005824264875491425, 0.1035014948083135),
    (2.0, -0.008538374094930495, 0.11724861535515924),
]
README_ORIGINAL_AVG = (0.04036995251077609, 0.07528307712819136)


@pytest.fixture(scope="module")
def medicaid() -> tuple[np.ndarray, np.ndarray]:
    """The README's TWFE event study: 2008-2015, 2015 adopters dropped, D = adopted 2014."""
    pf = pytest.importorskip("pyfixest")
    df = pd.read_csv(DATA)
    d = df[(df["year"] < 2016) & (df["yexp2"].isna() | (df["yexp2"] != 2015))].copy()
    d["D"] = (d["yexp2"] == 2014).astype(float)
    fit = pf.feols("dins ~ i(year, D, ref=2013) | stfips + year", data=d, vcov={"CRV1": "stfips"})
    names = [str(n) for n in fit._coefnames]
    assert names == [f"year::{y}:D" for y in (2008, 2009, 2010, 2011, 2012, 2014, 2015)]
    return np.asarray(fit.coef(), dtype=float), np.asarray(fit._vcov, dtype=float)


def _table(df: pd.DataFrame) -> np.ndarray:
    return df[["m", "lb", "ub"]].to_numpy()


def _assert_printed(actual: np.ndarray, printed: np.ndarray, extra: float) -> None:
    """``actual`` within half a unit of the printed 3rd significant digit plus ``extra``."""
    half_unit = 0.5 * 10.0 ** (np.floor(np.log10(np.abs(printed))) - 2)
    assert np.all(np.abs(actual - printed) <= half_unit + extra), (actual, printed)


def _synthetic(k: int, t: int, rho: float = 0.5, sd: float = 0.3, seed: int = 1):
    idx = np.arange(k + t)
    sigma = sd**2 * rho ** np.abs(idx[:, None] - idx[None, :])
    rng = np.random.default_rng(seed)
    beta = np.concatenate([rng.normal(0.0, 0.1, k), 1.0 + rng.normal(0.0, 0.1, t)])
    return beta, sigma


# ============================== (a) the R README example ========================================
def test_medicaid_original_ci(medicaid):
    b, s = medicaid
    # sigma reproduces R's exactly: the README's constructOriginalCS for l = (0.5, 0.5)
    avg = original_ci(b, s, 5, 2, l_vec=[0.5, 0.5])
    assert avg["method"].tolist() == ["Original"]
    np.testing.assert_allclose(avg[["lb", "ub"]].to_numpy()[0], README_ORIGINAL_AVG, atol=1e-12)
    first = original_ci(b, s, 5, 2)
    z = norm.ppf(0.975)
    np.testing.assert_allclose(
        first[["lb", "ub"]].to_numpy()[0], [b[5] - z * np.sqrt(s[5, 5]), b[5] + z * np.sqrt(s[5, 5])]
    )
    assert first["lb"].iloc[0] == pytest.approx(0.02851, abs=1e-5)


def test_medicaid_relative_magnitudes_readme(medicaid):
    b, s = medicaid
    mbars = [m for m, _, _ in README_RM_PRINTED]
    # default (R's current grid, +-20 sd around 0): within the README's rounding + one grid step
    # (R's printed bounds come from a coarser grid of its own; step here 3.7e-4)
    res = honest_did(b, s, 5, 2, "relative_magnitude", m_values=mbars)
    assert res.columns.tolist() == ["method", "m", "lb", "ub"]
    assert (res["method"] == "C-LF").all()
    _assert_printed(_table(res)[:, 1:], np.array(README_RM_PRINTED)[:, 1:], extra=1e-3)
    # on the grid the README table was computed on, every bound equals R's to rounding error:
    # the LF critical value reproduces R's set.seed(0) simulation draw for draw
    exact = pd.concat([
        honest_did(b, s, 5, 2, "relative_magnitude", m_values=[m], grid="adaptive") for m in mbars
    ])
    np.testing.assert_allclose(_table(exact), np.array(README_RM_FULL), rtol=0, atol=1e-12)


def test_medicaid_relative_magnitudes_current_r_grid(medicaid):
    b, s = medicaid
    res = honest_did(b, s, 5, 2, "relative_magnitude", m_values=[0, 0.5, 1, 1.5, 2])
    np.testing.assert_allclose(_table(res), np.array(README_RM_R_GRID), rtol=0, atol=1e-12)


def test_medicaid_relative_magnitudes_average_effect(medicaid):
    b, s = medicaid
    res = pd.concat([
        honest_did(b, s, 5, 2, "relative_magnitude", [m], l_vec=[0.5, 0.5], grid="adaptive")
        for m in (0, 0.5, 1, 1.5, 2)
    ])
    np.testing.assert_allclose(_table(res), np.array(README_RM_AVG_FULL), rtol=0, atol=1e-12)


def test_medicaid_smoothness_readme(medicaid):
    b, s = medicaid
    ms = [m for m, _, _ in README_SD_PRINTED]
    res = honest_did(b, s, 5, 2, "smoothness", m_values=ms)
    assert (res["method"] == "FLCI").all()
    _assert_printed(_table(res)[:, 1:], np.array(README_SD_PRINTED)[:, 1:], extra=1e-4)
    # exact folded-normal quantile vs R's simulated one (1e6 draws): observed max |diff| 3.0e-5
    diff = np.abs(_table(res) - np.array(README_SD_FULL))
    assert diff.max() < 1e-4
    assert diff.max() > 1e-6  # the two quantiles do differ
    # with R's simulated quantile (flci_quantile="r") the bounds agree to 1e-8 for M > 0; at
    # M = 0 R's conic solver stops about 1e-5 from the minimum-variance estimator (which is
    # computed exactly here, see test_flci_m0_is_minimum_variance)
    r_like = honest_did(b, s, 5, 2, "smoothness", m_values=ms, flci_quantile="r")
    d_r = np.abs(_table(r_like) - np.array(README_SD_FULL))
    assert d_r[1:].max() < 1e-7
    assert d_r[0].max() < 2e-5


def test_medicaid_defaults_and_breakdown(medicaid):
    b, s = medicaid
    rm = honest_did(b, s, 5, 2)  # R's default Mbarvec = seq(0, 2, length.out = 10)
    np.testing.assert_allclose(rm["m"], np.linspace(0, 2, 10))
    sd = honest_did(b, s, 5, 2, "smoothness")  # R's default Mvec
    np.testing.assert_allclose(sd["m"], sd_default_m_values(b, s, 5))
    # DeltaSD_upperBound_Mpre by hand: max of +-second differences (with beta_0 = 0) + z_.95 se
    pre = np.concatenate([b[:5], [0.0]])
    a = np.array([[1.0 if j == i else -2.0 if j == i + 1 else 1.0 if j == i + 2 else 0.0
                   for j in range(6)] for i in range(4)])
    a = np.vstack([a, -a])[:, :5]
    s_pre = s[:5, :5]
    ub = np.max(a @ pre[:5] + norm.ppf(0.95) * np.sqrt(np.diag(a @ s_pre @ a.T)))
    assert sd["m"].iloc[-1] == pytest.approx(ub, rel=1e-12)
    # README: "the breakdown value for a significant effect is Mbar = 2" (CI at 2 contains 0,
    # at 1.5 it does not) and "M ~ 0.03" (table: excludes 0 at 0.02, includes it at 0.03)
    b_rm = breakdown(b, s, 5, 2, "relative_magnitude")
    assert 1.5 < b_rm <= 2.0
    b_sd = breakdown(b, s, 5, 2, "smoothness")
    assert 0.02 < b_sd < 0.03


# ============================== (b) moderndid 0.2.0 ==============================================
def _standin_5_6():
    """A stand-in-like event study: 5 pre, 6 post periods, AR(1)-correlated coefficients.

    The earliest pre-period difference is not the largest: moderndid 0.2.0 leaves the polyhedron
    of the earliest difference out of the Delta^RM union (its s runs over -(K-1)..-1, R's over
    -(K-1)..0), which then does not change the union.
    """
    k, t = 5, 6
    idx = np.arange(k + t)
    sigma = 0.009 * 0.6 ** np.abs(idx[:, None] - idx[None, :])
    rng = np.random.default_rng(3)
    pre = np.array([0.0, 0.02, -0.03, 0.05, -0.02])
    beta = np.concatenate([pre, 0.3 + 0.05 * np.arange(t) + rng.normal(0.0, 0.02, t)])
    return beta, sigma, k, t


@pytest.fixture(scope="module")
def md_honest():
    pytest.importorskip("cvxpy")
    return pytest.importorskip("moderndid.didhonest")


@pytest.mark.parametrize("which", ["first", "average"])
def test_flci_matches_moderndid(md_honest, which):
    beta, sigma, k, t = _standin_5_6()
    l_vec = np.eye(t)[0] if which == "first" else np.full(t, 1.0 / t)
    ms = [0.0, 0.01, 0.05, 0.2]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = md_honest.create_sensitivity_results_sm(beta, sigma, k, t, m_vec=ms, l_vec=l_vec)
    ours = honest_did(beta, sigma, k, t, "smoothness", m_values=ms, l_vec=l_vec)
    # both use the exact folded-normal quantile; moderndid optimises with a conic solver
    # (tolerance ~1e-8) and a bisection in h. The half-lengths agree to 3e-7; the centre
    # v'betahat moves at first order along the flat optimum (observed up to 2.2e-5, at M = 0
    # where the conic solution of the degenerate minimum-variance problem is least accurate)
    np.testing.assert_allclose(ours["lb"], ref["lb"].to_numpy(), atol=5e-5)
    np.testing.assert_allclose(ours["ub"], ref["ub"].to_numpy(), atol=5e-5)
    half_ours = (ours["ub"] - ours["lb"]).to_numpy() / 2
    half_ref = (ref["ub"] - ref["lb"]).to_numpy() / 2
    np.testing.assert_allclose(half_ours, half_ref, atol=1e-6)
    assert np.all(half_ours <= half_ref + 1e-9)  # never longer than moderndid's


@pytest.mark.parametrize("which", ["average", "first"])
def test_rm_conditional_matches_moderndid(md_honest, which):
    """The purely conditional ARP test has no simulation: grid decisions must coincide."""
    beta, sigma, k, t = _standin_5_6()
    l_vec = np.full(t, 1.0 / t) if which == "average" else np.eye(t)[0]
    sd = float(np.sqrt(l_vec @ sigma[k:, k:] @ l_vec))
    grid = dict(grid_points=101, grid_lb=-20 * sd, grid_ub=20 * sd)
    mbars = [0.5, 1.0] if which == "average" else [1.0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = md_honest.create_sensitivity_results_rm(
            beta, sigma, k, t, method="Conditional", m_bar_vec=mbars, l_vec=l_vec, **grid
        )
    ours = honest_did(beta, sigma, k, t, "relative_magnitude", mbars, l_vec,
                      ci_method="Conditional", **grid)
    assert (ours["method"] == "Conditional").all()
    np.testing.assert_allclose(ours["lb"], ref["lb"].to_numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours["ub"], ref["ub"].to_numpy(), rtol=0, atol=1e-12)


class _RDraws:
    """Stands in for numpy's Generator in moderndid: multivariate normals from R's stream."""

    def __init__(self, seed):
        self.seed = 0 if seed is None else int(seed)

    def multivariate_normal(self, mean, cov, size):
        return r_rmvnorm(self.seed, size, np.asarray(cov))


@pytest.mark.slow
def test_rm_clf_matches_moderndid_with_r_draws(md_honest, monkeypatch):
    """C-LF: with moderndid's LF simulation fed R's draws the grid decisions coincide.

    (With its own numpy draws moderndid's critical value differs by simulation noise and the
    bounds by about one grid step.) Slow: moderndid solves 1000 LPs per polyhedron.
    """
    from moderndid.didhonest import arp_nuisance

    proxy = SimpleNamespace(**{n: getattr(np, n) for n in dir(np) if not n.startswith("__")})
    proxy.random = SimpleNamespace(default_rng=_RDraws)
    monkeypatch.setattr(arp_nuisance, "np", proxy)
    beta, sigma, k, t = _standin_5_6()
    for l_vec in (np.full(t, 1.0 / t), np.eye(t)[0]):
        sd = float(np.sqrt(l_vec @ sigma[k:, k:] @ l_vec))
        grid = dict(grid_points=101, grid_lb=-20 * sd, grid_ub=20 * sd)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = md_honest.create_sensitivity_results_rm(
                beta, sigma, k, t, method="C-LF", m_bar_vec=[1.0], l_vec=l_vec, **grid
            )
        ours = honest_did(beta, sigma, k, t, "relative_magnitude", [1.0], l_vec, **grid)
        np.testing.assert_allclose(ours["lb"], ref["lb"].to_numpy(), rtol=0, atol=1e-12)
        np.testing.assert_allclose(ours["ub"], ref["ub"].to_numpy(), rtol=0, atol=1e-12)


def test_original_ci_matches_moderndid(md_honest):
    beta, sigma, k, t = _standin_5_6()
    for l_vec in (np.eye(t)[0], np.full(t, 1.0 / t)):
        ref = md_honest.construct_original_cs(beta, sigma, k, t, l_vec=l_vec)
        ours = original_ci(beta, sigma, k, t, l_vec)
        # moderndid uses z = 1.96, R and we qnorm(0.975) = 1.959964: differences ~ 4e-5 * se
        se = float(np.sqrt(l_vec @ sigma[k:, k:] @ l_vec))
        assert ours["lb"].iloc[0] == pytest.approx(ref.lb, abs=1e-4 * se)
        assert ours["ub"].iloc[0] == pytest.approx(ref.ub, abs=1e-4 * se)


# ============================== (c) properties ===================================================
def test_intervals_nested_in_m(medicaid):
    b, s = medicaid
    beta, sigma, k, t = _standin_5_6()
    for bb, ss, kk, tt in ((b, s, 5, 2), (beta, sigma, k, t)):
        rm = honest_did(bb, ss, kk, tt, "relative_magnitude", [0.0, 0.5, 1.0, 3.0])
        sd = honest_did(bb, ss, kk, tt, "smoothness", [0.0, 0.01, 0.05, 0.5])
        for res in (rm, sd):
            lb, ub = res["lb"].to_numpy(), res["ub"].to_numpy()
            assert np.all(np.diff(lb) <= 1e-12) and np.all(np.diff(ub) >= -1e-12)
            assert ub[-1] - lb[-1] > 2 * (ub[0] - lb[0])  # large m: much wider


def test_breakdown_brackets_zero():
    beta, sigma = _synthetic(4, 3, sd=0.1)
    for method, eps in (("relative_magnitude", 0.01), ("smoothness", 2e-3)):
        tol = 1e-3 if method == "relative_magnitude" else 1e-4
        bd = breakdown(beta, sigma, 4, 3, method, tol=tol)
        assert 0.0 < bd < np.inf
        below = honest_did(beta, sigma, 4, 3, method, [bd - eps])
        above = honest_did(beta, sigma, 4, 3, method, [bd + eps])
        assert below["lb"].iloc[0] > 0.0  # significant just below the breakdown value
        assert above["lb"].iloc[0] <= 0.0 <= above["ub"].iloc[0]
        at = honest_did(beta, sigma, 4, 3, method, [bd])
        assert at["lb"].iloc[0] <= 0.0
        just_below = honest_did(beta, sigma, 4, 3, method, [bd - 1.5 * tol])
        assert just_below["lb"].iloc[0] > 0.0


def test_grid_contains_matches_full_grid(medicaid):
    b, s = medicaid
    lv = np.array([1.0, 0.0])
    sd = np.sqrt(s[5, 5])
    theta = np.linspace(-20 * sd, 20 * sd, 1000)
    for mbar in (1.5, 1.9, 1.95, 2.0):
        res = honest_did(b, s, 5, 2, "relative_magnitude", [mbar])
        full = bool(res["lb"].iloc[0] <= 0.0 <= res["ub"].iloc[0])
        assert rm_grid_contains(b, s, 5, 2, lv, mbar, theta) == full
    assert not rm_grid_contains(b, s, 5, 2, lv, 1.9, theta)
    assert rm_grid_contains(b, s, 5, 2, lv, 2.0, theta)


def test_breakdown_conventions():
    beta, sigma = _synthetic(3, 2, sd=0.1)
    insignificant = beta.copy()
    insignificant[3:] = 0.05  # original CI contains 0
    assert breakdown(insignificant, sigma, 3, 2, "smoothness") == 0.0
    assert breakdown(insignificant, sigma, 3, 2, "relative_magnitude") == 0.0
    # search range exhausted: inf
    assert breakdown(beta, sigma, 3, 2, "smoothness", m_max=1e-3) == np.inf
    # an empty identified set (pre-trends violate Delta^SD(M)) is reported as NaN
    assert np.isnan(sd_identified_set(np.array([0.1, -0.1, 0.1, 0.0, 0.0]), 3, 2, [1, 0], 0.01)[0])


def test_rm_ci_approaches_identified_set():
    """With negligible sampling noise the C-LF CI is the identified set (LPs), up to the grid."""
    beta = np.array([0.02, -0.01, 0.03, 0.0, 0.5, 0.6, 0.55])
    idx = np.arange(7)
    sigma = 1e-10 * 0.5 ** np.abs(idx[:, None] - idx[None, :])
    for l_vec in (np.eye(3)[0], np.array([0.2, 0.3, 0.5])):
        for mbar in (0.5, 1.0):
            lo, hi = rm_identified_set(beta, 4, 3, l_vec, mbar)
            grid = np.linspace(lo - 0.05, hi + 0.05, 2001)
            res = honest_did(beta, sigma, 4, 3, "relative_magnitude", [mbar], l_vec,
                             grid_points=2001, grid_lb=grid[0], grid_ub=grid[-1])
            step = grid[1] - grid[0]
            assert res["lb"].iloc[0] == pytest.approx(lo, abs=2 * step)
            assert res["ub"].iloc[0] == pytest.approx(hi, abs=2 * step)
    # one post period (the no-nuisance test of R's .APR_computeCI_NoNuis)
    for mbar in (0.5, 2.0):
        lo, hi = rm_identified_set(beta[:5], 4, 1, np.ones(1), mbar)
        res = honest_did(beta[:5], sigma[:5, :5], 4, 1, "relative_magnitude", mbar,
                         grid_points=2001, grid_lb=lo - 0.05, grid_ub=hi + 0.05)
        step = (hi - lo + 0.1) / 2000
        assert res["lb"].iloc[0] == pytest.approx(lo, abs=2 * step)
        assert res["ub"].iloc[0] == pytest.approx(hi, abs=2 * step)


def test_open_grid_warns():
    beta, sigma = _synthetic(3, 2, sd=0.1)
    with pytest.warns(UserWarning, match="open at an end"):  # +-20 sd = +-2 is too narrow
        honest_did(beta, sigma, 3, 2, "relative_magnitude", [8.0])
    with warnings.catch_warnings():  # the adaptive grid widens with Mbar
        warnings.simplefilter("error")
        res = honest_did(beta, sigma, 3, 2, "relative_magnitude", [8.0], grid="adaptive")
    assert res["lb"].iloc[0] < -0.5 and res["ub"].iloc[0] > 2.5


def test_flci_approaches_identified_set():
    # pre-period second differences (0.002, -0.001, 0) satisfy Delta^SD(M) for both M below
    beta = np.array([-0.04, -0.031, -0.02, -0.01, 0.5, 0.6, 0.55])
    idx = np.arange(7)
    sigma = 1e-14 * 0.5 ** np.abs(idx[:, None] - idx[None, :])
    for l_vec in (np.eye(3)[0], np.array([0.2, 0.3, 0.5])):
        for m in (0.01, 0.1):
            lo, hi = sd_identified_set(beta, 4, 3, l_vec, m)
            assert np.isfinite(lo) and hi - lo > 0
            res = honest_did(beta, sigma, 4, 3, "smoothness", [m], l_vec)
            np.testing.assert_allclose([res["lb"].iloc[0], res["ub"].iloc[0]], [lo, hi],
                                       atol=1e-5)


def test_worst_case_bias_matches_lp():
    """sup over Delta^SD(1) of v'delta (LP over delta) equals ||H'v||_1 for trend-free v."""
    k, t = 4, 3
    trend, h = worst_case_bias_coefficients(k, t)
    a = np.zeros((k + t - 1, k + t + 1))
    for r in range(k + t - 1):
        a[r, r : r + 3] = (1.0, -2.0, 1.0)
    a = np.delete(a, k, axis=1)
    rng = np.random.default_rng(0)
    for _ in range(5):
        v = rng.normal(size=k + t)
        v[0] -= (trend @ v) / trend[0]  # make v orthogonal to the linear trend
        res = linprog(-v, A_ub=np.vstack([a, -a]), b_ub=np.ones(2 * a.shape[0]),
                      bounds=[(None, None)] * (k + t), method="highs")
        assert -res.fun == pytest.approx(np.abs(h.T @ v).sum(), rel=1e-9)


def test_flci_m0_is_minimum_variance():
    beta, sigma = _synthetic(5, 4)
    l_vec = np.array([0.1, 0.2, 0.3, 0.4])
    r = flci(beta, sigma, 5, 4, l_vec, 0.0)
    # closed form: min v'Sigma v over v = (v_pre, l) with t'v = 0 (KKT system)
    tpre, tpost = np.arange(-5, 0.0), np.arange(1, 5.0)
    kkt = np.block([[2 * sigma[:5, :5], tpre[:, None]], [tpre[None, :], np.zeros((1, 1))]])
    rhs = np.concatenate([-2 * sigma[:5, 5:] @ l_vec, [-tpost @ l_vec]])
    v_pre = np.linalg.solve(kkt, rhs)[:5]
    np.testing.assert_allclose(r.weights[:5], v_pre, atol=1e-10)
    assert r.half_length == pytest.approx(norm.ppf(0.975) * r.sd, rel=1e-12)


def test_folded_normal_quantile():
    for b in (0.0, 0.3, 1.7, 5.0, 60.0):
        c = folded_normal_quantile(0.95, b)
        assert norm.cdf(c - b) - norm.cdf(-c - b) == pytest.approx(0.95, abs=1e-12)


def test_r_random_stream():
    # R: set.seed(0); runif(3)  -> 0.8966972 0.2655087 0.3721239
    np.testing.assert_allclose(r_runif(0, 3), [0.8966972, 0.2655087, 0.3721239], atol=5e-8)
    # R: set.seed(42); rnorm(3) -> 1.3709584 -0.5646982 0.3631284
    np.testing.assert_allclose(r_rnorm(42, 3), [1.3709584, -0.5646982, 0.3631284], atol=5e-8)
    # R: set.seed(0); rnorm(2)  -> 1.2629543 -0.3262334
    np.testing.assert_allclose(r_rnorm(0, 2), [1.2629543, -0.3262334], atol=5e-8)


def test_truncated_normal_quantile():
    lo = np.array([-1.0, 0.5, -np.inf, 2.0, -3.0, 9.0, -40.0])
    hi = np.array([1.0, np.inf, 0.3, 2.5, 8.0, 12.0, -38.0])
    for p in (0.05, 0.5, 0.95):
        q = tn_quantile(p, lo, hi)
        ok = slice(0, 5)  # scipy is accurate here
        np.testing.assert_allclose(q[ok], truncnorm.ppf(p, lo[ok], hi[ok]), atol=1e-9)
        assert np.all((q >= lo) & (q <= hi))
    # far tails: the quantile stays finite and inside
    q = tn_quantile(0.9, np.array([40.0]), np.array([np.inf]))
    assert 40.0 < q[0] < 40.1


def test_input_validation():
    beta, sigma = _synthetic(3, 2)
    with pytest.raises(ValueError):
        honest_did(beta, sigma, 3, 3)
    with pytest.raises(ValueError):
        honest_did(beta, sigma, 3, 2, l_vec=[1.0])
    with pytest.raises(ValueError):
        honest_did(beta, sigma, 3, 2, method="sign")
    with pytest.raises(ValueError):
        honest_did(beta, sigma, 3, 2, "smoothness", ci_method="C-LF")
    # max_pre_periods keeps the last k pre-periods
    full = honest_did(beta[1:], sigma[1:, 1:], 2, 2, "smoothness", [0.1])
    cut = honest_did(beta, sigma, 3, 2, "smoothness", [0.1], max_pre_periods=2)
    pd.testing.assert_frame_equal(full, cut)


# ============================== run time on the pipeline's shape =================================
@pytest.mark.slow
def test_timing_12_19():
    """12 pre + 19 post periods, AR(1) sd 0.3: one call per method with default m values."""
    beta, sigma = _synthetic(12, 19)
    t0 = time.perf_counter()
    sd = honest_did(beta, sigma, 12, 19, "smoothness")
    t_sd = time.perf_counter() - t0
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rm = honest_did(beta, sigma, 12, 19, "relative_magnitude")
    t_rm = time.perf_counter() - t0
    print(f"12+19: smoothness {t_sd:.1f} s, relative magnitudes {t_rm:.1f} s")
    assert len(sd) == 10 and len(rm) == 10
    assert sd[["lb", "ub"]].notna().all().all() and rm[["lb", "ub"]].notna().all().all()
    assert t_sd < 60 and t_rm < 60
