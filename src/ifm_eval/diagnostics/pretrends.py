"""Pre-trend tests and their power (Roth 2022).

Event-study coefficients ``betahat`` (event times ``t_vec``, the reference period omitted)
with covariance ``sigma`` are approximately ``N(tau + delta, sigma)``: ``tau`` the
treatment effects (zero before treatment), ``delta`` a violation of parallel trends.

* :func:`pretest_wald`: joint Wald test that every pre-period coefficient
  (``t < reference_period``) is zero.
* The *conventional pre-test* of Roth (2022) rejects when ANY pre-period coefficient is
  individually significant, ``|betahat_t| > z * se_t``. It passes with probability
  ``P(b in box)``, ``b ~ N(delta_pre, sigma_pre)``, ``box = prod_t [-z se_t, z se_t]``.
  :func:`slope_for_power` finds the linear violation ``delta_t = slope (t - reference)``
  that the pre-test detects with a target power; :func:`pretrend_power` reports, for a
  hypothesised ``delta``, the power, the Bayes factor ``P(pass | delta) / P(pass | 0)``, the
  likelihood ratio ``phi(betahat_pre; delta_pre) / phi(betahat_pre; 0)`` and the expected
  coefficients conditional on passing the pre-test (the bias that survives pre-testing).

Definitions follow the R package ``pretrends`` (J. Roth, ``pretrends()`` and
``slope_for_power()``), whose threshold is fixed at 1.96; here it is ``z_{1 - alpha/2}``
unless ``threshold`` is given (``threshold=1.96`` reproduces R).

Numerics. Box probabilities of dimension 1 and 2 are exact (scipy's univariate and
bivariate normal integrals); from dimension 3 on they come from scipy's randomised
lattice quasi-Monte Carlo (Genz) with a fixed seed and absolute error target ``abseps``
(deterministic for given inputs). The truncated-normal mean uses the closed form of
Tallis (1961) / Manjunath & Wilhelm (2012): ``E[X | a <= X <= b] = mu + Sigma F`` with
``F_j`` the difference of the truncated marginal density of ``X_j`` at ``a_j`` and ``b_j``,
so besides the k-dimensional probability it needs 2k (k-1)-dimensional ones (exact for
k <= 3). R uses mvtnorm's
randomised integration with ``abseps = 1e-3``; its printed values carry errors of order
1e-4 (see tests/test_pretrends.py).

Reference: Roth, J. (2022). Pretest with Caution: Event-Study Estimates after Testing for
Parallel Trends. American Economic Review: Insights 4(3), 305-322.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, stats

__all__ = ["PretrendPower", "pretest_threshold", "pretest_wald", "pretrend_power", "slope_for_power"]

#: Default absolute error target of the quasi-Monte Carlo box probabilities (dim >= 3):
#: ~0.05 s per probability with 3 pre-periods, ~0.4 s with 11.
DEFAULT_ABSEPS = 1e-6
#: Seed of the quasi-Monte Carlo randomisation (a fresh generator per call: deterministic).
QMC_SEED = 20220601
#: Largest number of integration points per box probability.
QMC_MAXPTS = 50_000_000


# ----------------------------------------------------------------------------- inputs
def _inputs(betahat: Any, sigma: Any, t_vec: Any) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    t = np.asarray(t_vec, dtype=float).ravel()
    S = np.asarray(sigma, dtype=float)
    if S.ndim != 2 or S.shape != (len(t), len(t)):
        raise ValueError(f"sigma must be {len(t)} x {len(t)} (one row per event time), got {S.shape}")
    if not np.allclose(S, S.T, rtol=1e-10, atol=1e-14):
        raise ValueError("sigma must be symmetric")
    lam = np.linalg.eigvalsh((S + S.T) / 2)
    if len(lam) and lam.min() < -1e-12 * max(float(lam.max()), 1e-300):
        raise ValueError("sigma must be positive semi-definite")
    b = None
    if betahat is not None:
        b = np.asarray(betahat, dtype=float).ravel()
        if len(b) != len(t):
            raise ValueError(f"betahat has {len(b)} entries, t_vec {len(t)}")
    return b, (S + S.T) / 2, t


def _split(t: np.ndarray, reference_period: float) -> tuple[np.ndarray, np.ndarray]:
    pre, post = t < reference_period, t > reference_period
    if not pre.any():
        raise ValueError(f"no pre-period coefficient (t < {reference_period}) in t_vec")
    return pre, post


def pretest_threshold(alpha: float = 0.05, threshold: float | None = None) -> float:
    """The pre-test's critical |t|: ``threshold`` if given, else ``z_{1 - alpha/2}``."""
    if threshold is not None:
        if threshold <= 0:
            raise ValueError("threshold must be positive")
        return float(threshold)
    if not 0 < alpha < 1:
        raise ValueError("alpha must be in (0, 1)")
    return float(stats.norm.ppf(1 - alpha / 2))


# ------------------------------------------------------------------ Gaussian integrals
def _box_probability(mean: np.ndarray, cov: np.ndarray, lower: np.ndarray, upper: np.ndarray,
                     abseps: float = DEFAULT_ABSEPS) -> float:
    """``P(lower <= X <= upper)`` for ``X ~ N(mean, cov)`` (exact for dimension <= 2, else
    seeded quasi-Monte Carlo to ``abseps``)."""
    k = len(mean)
    if k == 0:
        return 1.0
    if k == 1:
        s = float(np.sqrt(cov[0, 0]))
        return float(stats.norm.cdf(upper[0], mean[0], s) - stats.norm.cdf(lower[0], mean[0], s))
    p = stats.multivariate_normal.cdf(upper, mean=mean, cov=cov, lower_limit=lower,
                                      abseps=abseps, releps=0.0, maxpts=QMC_MAXPTS,
                                      rng=np.random.default_rng(QMC_SEED))
    return float(np.clip(p, 0.0, 1.0))


def _pass_probability(delta_pre: np.ndarray, sigma_pre: np.ndarray, z: float,
                      abseps: float = DEFAULT_ABSEPS) -> float:
    """Probability that no pre-period coefficient is significant, ``b ~ N(delta, sigma)``."""
    h = z * np.sqrt(np.diag(sigma_pre))
    return _box_probability(delta_pre, sigma_pre, -h, h, abseps)


def _truncated_mean(mean: np.ndarray, cov: np.ndarray, lower: np.ndarray, upper: np.ndarray,
                    abseps: float = DEFAULT_ABSEPS, prob: float | None = None) -> np.ndarray:
    """``E[X | lower <= X <= upper]``, ``X ~ N(mean, cov)`` (Tallis 1961; infinite bounds
    contribute nothing). ``prob``: the box probability, if already computed."""
    k = len(mean)
    alpha = _box_probability(mean, cov, lower, upper, abseps) if prob is None else prob
    if alpha <= 0:
        raise ValueError("the truncation box has zero probability")
    F = np.zeros(k)
    for j in range(k):
        o = np.r_[0:j, j + 1:k]
        sjj = cov[j, j]
        slope = cov[o, j] / sjj
        cov_c = cov[np.ix_(o, o)] - np.outer(cov[o, j], cov[j, o]) / sjj
        for x, sign in ((lower[j], 1.0), (upper[j], -1.0)):
            if not np.isfinite(x):
                continue
            dens = stats.norm.pdf(x, mean[j], np.sqrt(sjj))
            cond = _box_probability(mean[o] + slope * (x - mean[j]), cov_c, lower[o], upper[o], abseps)
            F[j] += sign * dens * cond / alpha
    return mean + cov @ F


# ------------------------------------------------------------------------------ tests
def pretest_wald(betahat: Any, sigma: Any, t_vec: Any, reference_period: float = -1) -> dict[str, Any]:
    """Joint Wald test of ``H0: beta_t = 0`` for every pre-period ``t < reference_period``.

    ``W = b_pre' sigma_pre^{-1} b_pre ~ chi2(k_pre)`` under H0. Returns ``statistic``,
    ``df``, ``p_value`` and the pre-period event times ``t_pre``.
    """
    b, S, t = _inputs(betahat, sigma, t_vec)
    pre, _ = _split(t, reference_period)
    bp, Sp = b[pre], S[np.ix_(pre, pre)]
    stat = float(bp @ np.linalg.solve(Sp, bp))
    df = int(pre.sum())
    return {"statistic": stat, "df": df, "p_value": float(stats.chi2.sf(stat, df)),
            "t_pre": t[pre].tolist()}


def _linear_power(slope: float, rel: np.ndarray, Sp: np.ndarray, z: float, abseps: float) -> float:
    return 1.0 - _pass_probability(slope * rel, Sp, z, abseps)


def slope_for_power(sigma: Any, t_vec: Any, reference_period: float = -1, target_power: float = 0.5,
                    alpha: float = 0.05, threshold: float | None = None,
                    abseps: float = DEFAULT_ABSEPS, xtol: float = 1e-12) -> float:
    """Slope of the linear violation ``delta_t = slope (t - reference_period)`` against which
    the conventional pre-test (reject if any pre-period ``|t| > z``) has power
    ``target_power`` (Roth 2022; R ``pretrends::slope_for_power``). A magnitude (>= 0):
    by symmetry the power is the same for ``-slope``. Solved with Brent's method to
    ``xtol`` (R: ``uniroot`` at its default tolerance ~1e-4).
    """
    _, S, t = _inputs(None, sigma, t_vec)
    pre, _ = _split(t, reference_period)
    z = pretest_threshold(alpha, threshold)
    Sp, rel = S[np.ix_(pre, pre)], t[pre] - reference_period
    size = _linear_power(0.0, rel, Sp, z, abseps)
    if not size < target_power < 1:
        raise ValueError(f"target_power must lie in (size of the pre-test = {size:.4f}, 1)")
    hi = 8 * float(np.sqrt(np.diag(Sp)).max())
    while _linear_power(hi, rel, Sp, z, abseps) < target_power:
        hi *= 2
    return float(optimize.brentq(lambda s: _linear_power(s, rel, Sp, z, abseps) - target_power,
                                 0.0, hi, xtol=xtol, rtol=4 * np.finfo(float).eps))


# ------------------------------------------------------------------------------ power
@dataclass(frozen=True)
class PretrendPower:
    """Power analysis of the conventional pre-test against a hypothesised trend ``delta``.

    ``power``: P(some pre-period coefficient significant | delta). ``size``: the same under
    delta = 0. ``bayes_factor``: P(pass | delta) / P(pass | 0). ``likelihood_ratio``:
    density of the observed pre-period coefficients under delta relative to under 0.
    ``event_plot``: per event time (reference included with zeros, as R's
    ``df_eventplot``) ``t, betahat, delta, se, mean_after_pretest`` -- the expected
    coefficient conditional on passing the pre-test when the true coefficients are
    ``delta`` (R's ``meanAfterPretesting``). :attr:`bias` gives, for the post periods, the
    unconditional bias ``delta_t`` and the bias conditional on passing,
    ``E[betahat_t - tau_t | pass] = delta_t + sigma_{t,pre} sigma_pre^{-1}
    (E[b_pre | pass] - delta_pre)`` (it does not depend on tau).
    """

    power: float
    size: float
    bayes_factor: float
    likelihood_ratio: float
    threshold: float
    reference_period: float
    event_plot: pd.DataFrame = field(repr=False)

    @property
    def bias(self) -> pd.DataFrame:
        post = self.event_plot[self.event_plot["t"] > self.reference_period]
        return pd.DataFrame({"t": post["t"].to_numpy(),
                             "bias_unconditional": post["delta"].to_numpy(),
                             "bias_conditional": post["mean_after_pretest"].to_numpy()})

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly: scalars, ``event_plot`` and ``bias`` as lists of records."""
        return {"power": self.power, "size": self.size, "bayes_factor": self.bayes_factor,
                "likelihood_ratio": self.likelihood_ratio, "threshold": self.threshold,
                "reference_period": self.reference_period,
                "event_plot": self.event_plot.to_dict(orient="records"),
                "bias": self.bias.to_dict(orient="records")}


def _log_density_ratio(b: np.ndarray, delta: np.ndarray, S: np.ndarray) -> float:
    """log phi(b; delta, S) - log phi(b; 0, S)."""
    r1, r0 = b - delta, b
    return float(-0.5 * (r1 @ np.linalg.solve(S, r1) - r0 @ np.linalg.solve(S, r0)))


def _conditional_means(delta: np.ndarray, S: np.ndarray, pre: np.ndarray, post: np.ndarray,
                       z: float, abseps: float, prob: float) -> tuple[np.ndarray, np.ndarray]:
    """Expected pre and post coefficients given passing (probability ``prob``), when the
    mean is ``delta``: the truncated mean of the pre-period block, and for the post periods
    their regression on the pre-period coefficients evaluated there."""
    Sp = S[np.ix_(pre, pre)]
    h = z * np.sqrt(np.diag(Sp))
    m_pre = _truncated_mean(delta[pre], Sp, -h, h, abseps, prob)
    m_post = delta[post] + S[np.ix_(post, pre)] @ np.linalg.solve(Sp, m_pre - delta[pre])
    return m_pre, m_post


def pretrend_power(betahat: Any, sigma: Any, t_vec: Any, delta: Any, reference_period: float = -1,
                   alpha: float = 0.05, threshold: float | None = None,
                   abseps: float = DEFAULT_ABSEPS) -> PretrendPower:
    """Power of the conventional pre-test against ``delta`` (a vector over ``t_vec``), the
    Bayes factor and likelihood ratio, and the coefficients' expectation after passing the
    pre-test (:class:`PretrendPower`; Roth 2022, R ``pretrends::pretrends()``).

    ``threshold=1.96`` reproduces R, which fixes it; the default is ``z_{1 - alpha/2}``.
    Coefficients at ``t == reference_period`` (if any) are ignored.
    """
    b, S, t = _inputs(betahat, sigma, t_vec)
    d = np.asarray(delta, dtype=float).ravel()
    if len(d) != len(t):
        raise ValueError(f"delta has {len(d)} entries, t_vec {len(t)}")
    pre, post = _split(t, reference_period)
    z = pretest_threshold(alpha, threshold)
    Sp = S[np.ix_(pre, pre)]
    pass_delta = _pass_probability(d[pre], Sp, z, abseps)
    pass_zero = _pass_probability(np.zeros(int(pre.sum())), Sp, z, abseps)
    m_pre, m_post = _conditional_means(d, S, pre, post, z, abseps, pass_delta)
    plot = pd.DataFrame({"t": t, "betahat": b, "delta": d, "se": np.sqrt(np.diag(S)),
                         "mean_after_pretest": np.nan})
    plot.loc[pre, "mean_after_pretest"] = m_pre
    plot.loc[post, "mean_after_pretest"] = m_post
    if not (t == reference_period).any():
        ref = pd.DataFrame({"t": [float(reference_period)], "betahat": [0.0], "delta": [0.0],
                            "se": [0.0], "mean_after_pretest": [0.0]})
        plot = pd.concat([plot, ref], ignore_index=True)
    plot = plot.sort_values("t", kind="stable", ignore_index=True)
    return PretrendPower(power=1.0 - pass_delta, size=1.0 - pass_zero,
                         bayes_factor=pass_delta / pass_zero,
                         likelihood_ratio=float(np.exp(_log_density_ratio(b[pre], d[pre], Sp))),
                         threshold=z, reference_period=float(reference_period), event_plot=plot)
