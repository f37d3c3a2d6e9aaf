r"""Robust confidence intervals for event studies under violations of parallel trends.

Rambachan, A. & Roth, J. (2023), "A More Credible Approach to Parallel Trends", Review of Economic
Studies 90(5), 2555-2591 - the method of the R package HonestDiD (Rambachan & Roth; version 0.2.8
read for this implementation). The event-study coefficients :math:`\hat\beta = (\hat\beta_{pre},
\hat\beta_{post})` (reference period omitted, :math:`\hat\beta \approx N(\beta, \Sigma)`) satisfy
:math:`\beta = \tau + \delta` with :math:`\tau_{pre} = 0`; the target is
:math:`\theta = l'\tau_{post}` and the bias :math:`\delta` is restricted to a set :math:`\Delta`:

* ``method="relative_magnitude"``: :math:`\Delta^{RM}(\bar M)` - post-period first differences of
  :math:`\delta` at most :math:`\bar M` times the largest pre-period first difference; CIs by the
  conditional-least-favourable hybrid ("C-LF", Andrews, Roth & Pakes 2023) inverted on a grid
  (:mod:`.relative_magnitudes`, :mod:`.conditional`);
* ``method="smoothness"``: :math:`\Delta^{SD}(M)` - second differences of :math:`\delta` at most
  :math:`M` in absolute value; the optimal fixed-length CI ("FLCI", Armstrong & Kolesár 2018)
  (:mod:`.smoothness`, :mod:`.flci`).

Run time (this project's 2-core machine, shared; synthetic event study with 12 pre- and 19
post-periods, AR(1) correlation 0.5, sd 0.3; one call, default ``m_values`` = 10 values):
smoothness/FLCI 0.4-0.7 s; relative magnitudes/C-LF about 22 s for ``l_vec = e_1`` and 12 s for
the average of the post periods (24 polyhedra x 10 Mbar x 1000 grid points, every LP certified
by a cached simplex basis, see :mod:`._lp`); ``breakdown`` about 5 s (RM: each step tests only
until 0 is known to be inside or outside) and 1 s (SD). To stay well below 60 s per outcome on
larger problems use ``max_pre_periods`` (only the last ``k`` pre-periods: ``2k`` polyhedra;
``k = 4`` gives 4 s above) and/or fewer ``m_values``; lowering ``grid_points`` helps less (200
points: 11 s), as the number of LPs hardly depends on the grid.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import norm

from .flci import flci
from .relative_magnitudes import rm_accept_grid, rm_grid_contains
from .smoothness import sd_default_m_values

_METHODS = ("relative_magnitude", "smoothness")


def _prepare(
    betahat, sigma, num_pre: int, num_post: int, l_vec, max_pre_periods: int | None = None
) -> tuple[np.ndarray, np.ndarray, int, np.ndarray]:
    b = np.asarray(betahat, dtype=float).ravel()
    s = np.asarray(sigma, dtype=float)
    if num_pre < 1 or num_post < 1:
        raise ValueError("need at least one pre- and one post-period")
    n = num_pre + num_post
    if b.shape != (n,) or s.shape != (n, n):
        raise ValueError(
            f"betahat ({b.shape}) and sigma ({s.shape}) must have {n} = {num_pre} + {num_post}"
            " entries / rows and columns"
        )
    if not (np.all(np.isfinite(b)) and np.all(np.isfinite(s))):
        raise ValueError("betahat and sigma must be finite")
    asym = float(np.max(np.abs(s - s.T)))
    if asym > 1e-8 * max(1.0, float(np.max(np.abs(s)))):
        warnings.warn(f"sigma is not symmetric (largest asymmetry {asym:g}); symmetrised",
                      stacklevel=3)
    s = (s + s.T) / 2.0
    if np.min(np.linalg.eigvalsh(s)) < -1e-10 * max(1.0, float(np.max(np.abs(s)))):
        warnings.warn("sigma is not positive semi-definite", stacklevel=3)
    lv = np.eye(num_post)[0] if l_vec is None else np.asarray(l_vec, dtype=float).ravel()
    if lv.shape != (num_post,):
        raise ValueError(f"l_vec must have length num_post_periods = {num_post}")
    if not np.any(lv != 0):
        raise ValueError("l_vec must not be zero")
    if max_pre_periods is not None and max_pre_periods < num_pre:
        if max_pre_periods < 1:
            raise ValueError("max_pre_periods must be at least 1")
        drop = num_pre - max_pre_periods
        b, s = b[drop:], s[drop:, drop:]
        num_pre = max_pre_periods
    return b, s, num_pre, lv


def original_ci(
    betahat: Sequence[float] | np.ndarray,
    sigma: np.ndarray,
    num_pre_periods: int,
    num_post_periods: int,
    l_vec: Sequence[float] | np.ndarray | None = None,
    alpha: float = 0.05,
) -> pd.DataFrame:
    r"""Conventional CI for :math:`\theta = l'\tau_{post}` assuming exact parallel trends.

    :math:`l'\hat\beta_{post} \pm z_{1-\alpha/2}\sqrt{l'\Sigma_{post}l}` (R HonestDiD
    ``constructOriginalCS``). Returns one row: ``method`` ("Original"), ``lb``, ``ub``.
    """
    b, s, k, lv = _prepare(betahat, sigma, num_pre_periods, num_post_periods, l_vec)
    post = slice(k, k + num_post_periods)
    est = float(lv @ b[post])
    se = float(np.sqrt(lv @ s[post, post] @ lv))
    z = float(norm.ppf(1.0 - alpha / 2.0))
    return pd.DataFrame({"method": ["Original"], "lb": [est - z * se], "ub": [est + z * se]})


def _rm_grid(b, s, k, t, lv, mbar, grid, grid_points, grid_lb, grid_ub) -> np.ndarray:
    post = slice(k, k + t)
    sd_theta = float(np.sqrt(lv @ s[post, post] @ lv))
    if grid == "r":
        lo, hi = -20.0 * sd_theta, 20.0 * sd_theta
    elif grid == "adaptive":
        maxpre = float(np.max(np.abs(np.diff(np.concatenate([b[:k], [0.0]])))))
        half = mbar * float(np.arange(1, t + 1) @ np.abs(lv)) * maxpre + 20.0 * sd_theta
        centre = float(lv @ b[post])
        lo, hi = centre - half, centre + half
    else:
        raise ValueError("grid must be 'r' or 'adaptive'")
    lo = lo if grid_lb is None else float(grid_lb)
    hi = hi if grid_ub is None else float(grid_ub)
    return np.linspace(lo, hi, grid_points)


def _rm_ci(b, s, k, t, lv, mbar, alpha, hybrid, grid, grid_points, grid_lb, grid_ub, sims,
           seed) -> tuple[float, float]:
    theta = _rm_grid(b, s, k, t, lv, mbar, grid, grid_points, grid_lb, grid_ub)
    acc = rm_accept_grid(b, s, k, t, lv, mbar, theta, alpha, hybrid, None, sims, seed)
    if not acc.any():
        warnings.warn(f"empty robust confidence set at Mbar = {mbar:g}", stacklevel=3)
        return float("nan"), float("nan")
    if acc[0] or acc[-1]:
        warnings.warn(
            f"robust CI at Mbar = {mbar:g} is open at an end of the theta grid; its length may "
            "be understated (widen grid_lb / grid_ub)", stacklevel=3,
        )
    return float(theta[acc].min()), float(theta[acc].max())


def honest_did(
    betahat: Sequence[float] | np.ndarray,
    sigma: np.ndarray,
    num_pre_periods: int,
    num_post_periods: int,
    method: str = "relative_magnitude",
    m_values: Sequence[float] | np.ndarray | None = None,
    l_vec: Sequence[float] | np.ndarray | None = None,
    alpha: float = 0.05,
    *,
    ci_method: str | None = None,
    grid: str = "r",
    grid_points: int = 1000,
    grid_lb: float | None = None,
    grid_ub: float | None = None,
    max_pre_periods: int | None = None,
    flci_quantile: str = "exact",
    sims: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    r"""Robust :math:`1-\alpha` confidence intervals for :math:`\theta = l'\tau_{post}`.

    ``betahat`` holds the pre- then post-period event-study coefficients (reference period
    omitted), ``sigma`` their covariance; ``l_vec`` defaults to the first post period.

    ``method="relative_magnitude"``: :math:`\delta \in \Delta^{RM}(\bar M) = \{|\delta_{t+1} -
    \delta_t| \le \bar M \max_{s<0}|\delta_{s+1} - \delta_s|,\ t \ge 0\}` for each ``Mbar`` in
    ``m_values`` (default R's ``seq(0, 2, length.out = 10)``). ``ci_method`` "C-LF" (default,
    conditional-least-favourable hybrid, :math:`\kappa = \alpha/10`, ``sims`` draws of R's
    ``set.seed(seed)`` stream) or "Conditional" (ARP conditional test); the CI is
    ``[min, max]`` of the accepted points of a ``grid_points`` grid - ``grid="r"``:
    :math:`\pm 20\,sd(l'\hat\beta_{post})` around 0 (R HonestDiD 0.2.8), ``grid="adaptive"``:
    :math:`l'\hat\beta_{post} \pm (\bar M \sum_t t|l_t| \max_s|\Delta\hat\beta_s| +
    20\,sd)` (Stata honestdid / moderndid; the grid of the R README's printed table);
    ``grid_lb`` / ``grid_ub`` override either end. Bounds are exact up to the grid spacing.

    ``method="smoothness"``: :math:`\delta \in \Delta^{SD}(M) = \{|\delta_{t+1} - 2\delta_t +
    \delta_{t-1}| \le M\}` for each ``M`` in ``m_values`` (default R's: 10 values on
    ``[0, DeltaSD_upperBound_Mpre]``); ``ci_method`` "FLCI" (the only one offered): the optimal
    fixed-length CI, with the exact folded-normal quantile (``flci_quantile="exact"``) or R's
    simulated one (``"r"``).

    ``max_pre_periods=k`` keeps only the last ``k`` pre-periods (drops the earlier coefficients
    and their covariances) - a different, weaker use of the pre-trends, but ``2k`` instead of
    ``2K`` polyhedra for relative magnitudes (the run-time lever for long pre-periods).

    Returns a DataFrame with columns ``method`` ("C-LF", "Conditional" or "FLCI"), ``m``
    (Mbar or M), ``lb``, ``ub`` (NaN if the robust confidence set is empty).

    Reference: Rambachan & Roth (2023), Sections 2-5; R HonestDiD
    ``createSensitivityResults_relativeMagnitudes`` / ``createSensitivityResults``.
    """
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}")
    b, s, k, lv = _prepare(betahat, sigma, num_pre_periods, num_post_periods, l_vec,
                           max_pre_periods)
    t = num_post_periods
    rows: list[tuple[str, float, float, float]] = []
    if method == "relative_magnitude":
        ci_method = ci_method or "C-LF"
        hybrid = {"C-LF": "LF", "Conditional": "ARP"}.get(ci_method)
        if hybrid is None:
            raise ValueError("ci_method for relative magnitudes must be 'C-LF' or 'Conditional'")
        mv = np.linspace(0.0, 2.0, 10) if m_values is None else np.atleast_1d(
            np.asarray(m_values, dtype=float))
        for mbar in mv:
            if mbar < 0:
                raise ValueError("Mbar must be non-negative")
            lb, ub = _rm_ci(b, s, k, t, lv, float(mbar), alpha, hybrid, grid, grid_points,
                            grid_lb, grid_ub, sims, seed)
            rows.append((ci_method, float(mbar), lb, ub))
    else:
        ci_method = ci_method or "FLCI"
        if ci_method != "FLCI":
            raise ValueError("ci_method for smoothness must be 'FLCI'")
        mv = sd_default_m_values(b, s, k) if m_values is None else np.atleast_1d(
            np.asarray(m_values, dtype=float))
        for m in mv:
            if m < 0:
                raise ValueError("M must be non-negative")
            r = flci(b, s, k, t, lv, float(m), alpha, flci_quantile)
            rows.append(("FLCI", float(m), r.lb, r.ub))
    out = pd.DataFrame(rows, columns=["method", "m", "lb", "ub"])
    out.attrs["restriction"] = "DeltaRM" if method == "relative_magnitude" else "DeltaSD"
    return out


def breakdown(
    betahat: Sequence[float] | np.ndarray,
    sigma: np.ndarray,
    num_pre_periods: int,
    num_post_periods: int,
    method: str = "relative_magnitude",
    l_vec: Sequence[float] | np.ndarray | None = None,
    alpha: float = 0.05,
    *,
    tol: float | None = None,
    m_max: float | None = None,
    require_significant_original: bool = True,
    **options: object,
) -> float:
    r"""Breakdown value: the smallest Mbar (RM) or M (SD) whose robust CI contains 0.

    "Contains 0" means ``lb <= 0 <= ub`` for the CI :func:`honest_did` reports with the same
    ``method``, ``l_vec``, ``alpha`` and ``options`` (``ci_method``, ``grid``, ``grid_points``,
    ``max_pre_periods``, ...); an empty robust set does not contain 0. Conventions:

    * ``0.0`` if the original CI (:func:`original_ci`) already contains 0 (with
      ``require_significant_original=True``, the default: there is no significant result whose
      robustness could be measured), or if the robust CI at ``m = 0`` contains 0 (the result does
      not survive even the most restrictive member of the family);
    * ``inf`` if the robust CI excludes 0 for every value up to ``m_max`` (default 100 for Mbar,
      ``1e4 * sd(l'betahat_post)`` for M);
    * otherwise the search doubles an upper bracket from 1 (Mbar) or ``sd(l'betahat_post)`` (M)
      and bisects until the bracket is shorter than ``tol`` (default 1e-3 for Mbar,
      ``1e-3 * sd(l'betahat_post)`` for M); the returned value is the bracket's upper end: the
      robust CI at it contains 0, at ``value - tol`` it does not (precision ``tol``). The search
      assumes the CIs widen with m (true of the identified sets; for the C-LF CIs up to the
      simulated critical value and the grid), otherwise it finds one switching point.

    Reference: Rambachan & Roth (2023), Section 2 ("breakdown value").
    """
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}")
    b, s, k, lv = _prepare(betahat, sigma, num_pre_periods, num_post_periods, l_vec)
    t = num_post_periods
    if require_significant_original:
        o = original_ci(b, s, k, t, lv, alpha)
        if o["lb"].iloc[0] <= 0.0 <= o["ub"].iloc[0]:
            return 0.0
    sd_theta = float(np.sqrt(lv @ s[k:, k:] @ lv))
    rm = method == "relative_magnitude"
    tol = (1e-3 if rm else 1e-3 * sd_theta) if tol is None else float(tol)
    m_max = (100.0 if rm else 1e4 * sd_theta) if m_max is None else float(m_max)

    opts: dict = dict(options)
    unknown = set(opts) - {"ci_method", "grid", "grid_points", "grid_lb", "grid_ub",
                           "max_pre_periods", "flci_quantile", "sims", "seed"}
    if unknown:
        raise TypeError(f"unknown options: {sorted(unknown)}")
    if rm:
        bb, ss, kk, _ = _prepare(b, s, k, t, lv, opts.get("max_pre_periods"))
        hybrid = {"C-LF": "LF", "Conditional": "ARP"}.get(opts.get("ci_method") or "C-LF")
        if hybrid is None:
            raise ValueError("ci_method for relative magnitudes must be 'C-LF' or 'Conditional'")

    def contains0(m: float) -> bool:
        if rm:  # the decision honest_did's [lb, ub] gives, with early stopping
            theta = _rm_grid(bb, ss, kk, t, lv, m, opts.get("grid", "r"),
                             int(opts.get("grid_points", 1000)), opts.get("grid_lb"),
                             opts.get("grid_ub"))
            return rm_grid_contains(bb, ss, kk, t, lv, m, theta, 0.0, alpha, hybrid, None,
                                    int(opts.get("sims", 1000)), int(opts.get("seed", 0)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = honest_did(b, s, k, t, method, [m], lv, alpha, **options)  # type: ignore[arg-type]
        lb, ub = r["lb"].iloc[0], r["ub"].iloc[0]
        return bool(np.isfinite(lb) and lb <= 0.0 <= ub)

    if contains0(0.0):
        return 0.0
    lo, hi = 0.0, (1.0 if rm else sd_theta)
    while not contains0(hi):
        lo = hi
        if hi >= m_max:
            return float("inf")
        hi = min(2.0 * hi, m_max)
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        if contains0(mid):
            hi = mid
        else:
            lo = mid
    return float(hi)
