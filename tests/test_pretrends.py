"""Pre-trend power analysis (Roth 2022) against R ``pretrends`` and independent computations.

R reference values: the README of https://github.com/jonathandroth/pretrends (commit
122731d, "updated readme"), He & Wang (2017) example, ``referencePeriod = -1``:

* ``slope_for_power(sigma, targetPower = 0.5, tVec, referencePeriod)`` -> 0.05205871
* ``pretrends(beta, sigma, tVec, referencePeriod, deltatrue = slope50 * (tVec - ref))``:
  Power 0.4999776, Bayes.Factor 0.56901, Likelihood.Ratio 0.1057627, and
  ``df_eventplot$meanAfterPretesting`` (below)
* quadratic ``deltatrue = 0.024 * (tVec - ref)^2``: Power 0.6624282, Bayes.Factor
  0.3841516, Likelihood.Ratio 0.4332635

R fixes the pre-test threshold at 1.96 (``threshold=1.96`` here). Its Gaussian
probabilities come from mvtnorm's randomised lattice rule at its default ``abseps =
1e-3`` (25,000 points) and its root from ``uniroot`` at tolerance ~1.2e-4, so the README
is itself accurate only to ~1e-4: R's own power at its 50 %-power slope is 0.4999776, not
0.5. Our values are checked against an independent nested quadrature to 1e-8; against R
the likelihood ratio (closed form) agrees to 7 digits, the quadratic case and the
conditional means to < 4e-5 (relative), and the linear-trend power, Bayes factor and slope
differ by 1.7e-4 - 2.2e-4 (relative): R's integration error, hence the 5e-4 tolerance.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import integrate, stats

from ifm_eval.diagnostics import pretest_threshold, pretest_wald, pretrend_power, slope_for_power
from ifm_eval.diagnostics.pretrends import _pass_probability, _truncated_mean

DATA = Path(__file__).parent / "data" / "he_wang_event_study.json"
REF = -1

R_SLOPE50 = 0.05205871
R_LINEAR = {"power": 0.4999776, "bayes_factor": 0.56901, "likelihood_ratio": 0.1057627}
R_QUADRATIC = {"power": 0.6624282, "bayes_factor": 0.3841516, "likelihood_ratio": 0.4332635}
#: df_eventplot: t, deltatrue, se, meanAfterPretesting (R README, linear trend at slope50)
R_EVENTPLOT = np.array([
    [-4, -0.15617613, 0.09437463, -0.09230764],
    [-3, -0.10411742, 0.07705139, -0.05555285],
    [-2, -0.05205871, 0.05512372, -0.02790950],
    [-1, 0.00000000, 0.00000000, 0.00000000],
    [0, 0.05205871, 0.06264775, 0.06490184],
    [1, 0.10411742, 0.08981034, 0.12084694],
    [2, 0.15617613, 0.08877826, 0.16946498],
    [3, 0.20823484, 0.09893648, 0.22453827],
])
#: relative tolerance against the README (R's mvtnorm abseps = 1e-3; module docstring)
R_RTOL = 5e-4


@pytest.fixture(scope="module")
def hw():
    d = json.loads(DATA.read_text())
    return np.array(d["beta"]), np.array(d["sigma"]), np.array(d["tVec"], dtype=float)


def _nested_pass_probability(mu: np.ndarray, S: np.ndarray, h: np.ndarray) -> float:
    """P(|X| <= h), X ~ N(mu, S) in 3 dimensions: adaptive quadrature over X_1 of the exact
    bivariate probability of (X_2, X_3) given X_1 (independent of the QMC code path)."""
    c = S[1:, 0] / S[0, 0]
    Sc = S[1:, 1:] - np.outer(S[1:, 0], S[0, 1:]) / S[0, 0]

    def f(x: float) -> float:
        m = mu[1:] + c * (x - mu[0])
        p2 = stats.multivariate_normal.cdf(h[1:], mean=m, cov=Sc, lower_limit=-h[1:])
        return stats.norm.pdf(x, mu[0], np.sqrt(S[0, 0])) * p2

    return integrate.quad(f, -h[0], h[0], epsabs=1e-13, epsrel=1e-13, limit=200)[0]


def _pre(hw):
    _, S, t = hw
    pre = t < REF
    return S[np.ix_(pre, pre)], t[pre] - REF


# ------------------------------------------------------------------------ against R
def test_slope_for_power_matches_r_readme(hw):
    _, S, t = hw
    slope = slope_for_power(S, t, REF, target_power=0.5, threshold=1.96)
    assert slope == pytest.approx(R_SLOPE50, rel=R_RTOL)
    # our root is the exact one: the nested-quadrature power there is 0.5
    Sp, rel = _pre(hw)
    h = 1.96 * np.sqrt(np.diag(Sp))
    assert 1 - _nested_pass_probability(slope * rel, Sp, h) == pytest.approx(0.5, abs=1e-6)


def test_pretrends_linear_trend_matches_r_readme(hw):
    b, S, t = hw
    res = pretrend_power(b, S, t, R_SLOPE50 * (t - REF), REF, threshold=1.96)
    assert res.likelihood_ratio == pytest.approx(R_LINEAR["likelihood_ratio"], rel=1e-6)
    assert res.power == pytest.approx(R_LINEAR["power"], rel=R_RTOL)
    assert res.bayes_factor == pytest.approx(R_LINEAR["bayes_factor"], rel=R_RTOL)
    ep = res.event_plot
    np.testing.assert_allclose(ep["t"], R_EVENTPLOT[:, 0])
    np.testing.assert_allclose(ep["delta"], R_EVENTPLOT[:, 1], rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(ep["se"], R_EVENTPLOT[:, 2], rtol=1e-6)
    np.testing.assert_allclose(ep["mean_after_pretest"], R_EVENTPLOT[:, 3], rtol=1e-4, atol=1e-9)
    # bias of the post-period coefficients: unconditional delta, conditional on passing
    bias = res.bias
    post = R_EVENTPLOT[R_EVENTPLOT[:, 0] > REF]
    np.testing.assert_allclose(bias["bias_unconditional"], post[:, 1], rtol=1e-7)
    np.testing.assert_allclose(bias["bias_conditional"], post[:, 3], rtol=1e-4)
    assert (bias["bias_conditional"] > bias["bias_unconditional"]).all()  # pre-testing adds bias here


def test_pretrends_quadratic_trend_matches_r_readme(hw):
    b, S, t = hw
    res = pretrend_power(b, S, t, 0.024 * (t - REF) ** 2, REF, threshold=1.96)
    for key, value in R_QUADRATIC.items():
        assert getattr(res, key) == pytest.approx(value, rel=1e-4), key
    d = res.to_dict()
    assert d["power"] == res.power and len(d["event_plot"]) == 8 and len(d["bias"]) == 4


# ------------------------------------------------------------ independent computations
def test_power_and_bayes_factor_equal_nested_quadrature(hw):
    b, S, t = hw
    Sp, rel = _pre(hw)
    h = 1.96 * np.sqrt(np.diag(Sp))
    p_delta = _nested_pass_probability(R_SLOPE50 * rel, Sp, h)
    p_zero = _nested_pass_probability(np.zeros(3), Sp, h)
    # tight QMC error target: agreement to 3e-8; the default (abseps 1e-6) to 2e-6
    for abseps, tol in ((1e-8, 3e-8), (None, 2e-6)):
        kw = {} if abseps is None else {"abseps": abseps}
        res = pretrend_power(b, S, t, R_SLOPE50 * (t - REF), REF, threshold=1.96, **kw)
        assert res.power == pytest.approx(1 - p_delta, abs=tol)
        assert res.size == pytest.approx(1 - p_zero, abs=tol)
        assert res.bayes_factor == pytest.approx(p_delta / p_zero, abs=2 * tol)


def test_conditional_means_equal_simulation(hw):
    """Pre- and post-period means after passing, vs a seeded simulation of the full
    coefficient vector (8 million draws; 5 standard errors)."""
    b, S, t = hw
    delta = R_SLOPE50 * (t - REF)
    res = pretrend_power(b, S, t, delta, REF, threshold=1.96)
    rng = np.random.default_rng(12345)
    pre = t < REF
    h = 1.96 * np.sqrt(np.diag(S)[pre])
    L = np.linalg.cholesky(S)
    total, total_sq, n = np.zeros(len(t)), np.zeros(len(t)), 0
    for _ in range(4):
        X = delta + rng.standard_normal((2_000_000, len(t))) @ L.T
        ok = (np.abs(X[:, pre]) <= h).all(axis=1)
        total += X[ok].sum(axis=0)
        total_sq += (X[ok] ** 2).sum(axis=0)
        n += int(ok.sum())
    mean = total / n
    se = np.sqrt(total_sq / n - mean**2) / np.sqrt(n)
    ours = res.event_plot.set_index("t").loc[t, "mean_after_pretest"].to_numpy()
    assert np.all(np.abs(ours - mean) < 5 * se), (ours - mean) / se


def test_truncated_mean_one_dimension_is_truncnorm():
    mu, s, lo, hi = 0.3, 0.7, -1.1, 0.9
    ours = _truncated_mean(np.array([mu]), np.array([[s**2]]), np.array([lo]), np.array([hi]))
    ref = stats.truncnorm.mean((lo - mu) / s, (hi - mu) / s, loc=mu, scale=s)
    assert ours[0] == pytest.approx(ref, rel=1e-12)


def test_single_pre_period_closed_form():
    """One pre-period: power = 1 - [Phi(z - d/se) - Phi(-z - d/se)] exactly."""
    S = np.array([[0.04, 0.01], [0.01, 0.09]])
    res = pretrend_power([0.1, 0.2], S, [-2, 0], [-0.3, 0.3], REF)
    z, se = stats.norm.ppf(0.975), 0.2
    assert res.power == pytest.approx(1 - (stats.norm.cdf(z + 0.3 / se) - stats.norm.cdf(-z + 0.3 / se)), rel=1e-12)
    assert res.size == pytest.approx(0.05, rel=1e-12)
    lr = stats.norm.pdf(0.1, -0.3, se) / stats.norm.pdf(0.1, 0, se)
    assert res.likelihood_ratio == pytest.approx(lr, rel=1e-12)


# ----------------------------------------------------------------------- properties
@pytest.mark.parametrize("target", [0.5, 0.8])
def test_power_at_slope_for_power_is_target(hw, target):
    b, S, t = hw
    slope = slope_for_power(S, t, REF, target_power=target)
    res = pretrend_power(b, S, t, slope * (t - REF), REF)
    assert res.power == pytest.approx(target, abs=1e-4)
    # independent: seeded Monte Carlo rejection rate of the pre-test (4 standard errors)
    Sp, rel = _pre(hw)
    X = stats.multivariate_normal(slope * rel, Sp).rvs(size=1_000_000, random_state=7)
    reject = (np.abs(X) > pretest_threshold(0.05) * np.sqrt(np.diag(Sp))).any(axis=1).mean()
    assert abs(reject - target) < 4 * np.sqrt(target * (1 - target) / 1_000_000)


def test_power_increases_with_slope_and_symmetric(hw):
    Sp, rel = _pre(hw)
    z = pretest_threshold(0.05)
    powers = [1 - _pass_probability(s * rel, Sp, z) for s in (0.0, 0.02, 0.04, 0.08)]
    assert np.all(np.diff(powers) > 0)
    assert 1 - _pass_probability(-0.04 * rel, Sp, z) == pytest.approx(powers[2], abs=1e-6)


def test_threshold_from_alpha(hw):
    _, S, t = hw
    assert pretest_threshold(0.05) == pytest.approx(1.959963984540054)
    assert pretest_threshold(0.1, threshold=2.5) == 2.5
    s_alpha = slope_for_power(S, t, REF, 0.5)
    s_r = slope_for_power(S, t, REF, 0.5, threshold=1.96)
    assert 0 < s_r - s_alpha < 1e-5  # 1.96 vs z_0.975: a slightly larger slope


# --------------------------------------------------------------------------- Wald
def test_pretest_wald(hw):
    b, S, t = hw
    res = pretest_wald(b, S, t, REF)
    pre = t < REF
    stat = b[pre] @ np.linalg.inv(S[np.ix_(pre, pre)]) @ b[pre]
    assert res["df"] == 3 and res["t_pre"] == [-4.0, -3.0, -2.0]
    assert res["statistic"] == pytest.approx(stat, rel=1e-12)
    assert res["p_value"] == pytest.approx(stats.chi2.sf(stat, 3), rel=1e-12)
    diag = pretest_wald([1.0, 2.0, 5.0], np.diag([0.25, 1.0, 4.0]), [-3, -2, 0], REF)
    assert diag["statistic"] == pytest.approx(4.0 + 4.0) and diag["df"] == 2


# ------------------------------------------------------------------------ errors
def test_input_errors(hw):
    b, S, t = hw
    with pytest.raises(ValueError, match="sigma must be"):
        pretest_wald(b, S[:3, :3], t)
    with pytest.raises(ValueError, match="symmetric"):
        pretest_wald(b, S + np.triu(np.full_like(S, 0.01), 1), t)
    with pytest.raises(ValueError, match="no pre-period"):
        pretest_wald(b, S, t + 10)
    with pytest.raises(ValueError, match="delta has"):
        pretrend_power(b, S, t, [0.0, 1.0], REF)
    with pytest.raises(ValueError, match="target_power"):
        slope_for_power(S, t, REF, target_power=0.05)
