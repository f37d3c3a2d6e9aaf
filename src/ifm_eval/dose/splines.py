"""B-spline sieve of the dose: design matrices ``[1, B_2(d), ..., B_J(d)]`` and derivatives.

The parametric sieve of Callaway, Goodman-Bacon & Sant'Anna (2024) (``cont_did`` with
``dose_est_method="parametric"``): a B-spline basis of ``degree`` with the given interior
knots and boundary knots at the cohort's smallest and largest dose, the first basis function
dropped and an intercept added (R ``splines::bs(intercept = FALSE)`` plus a constant). With
no interior knots this is a global polynomial of ``degree``. Doses outside the boundary
knots are evaluated by continuing the boundary polynomial pieces (scipy ``extrapolate=True``,
as ``cont_did``).

The fitted function and its derivative depend only on the spline *space* (degree and
interior knots), not on the boundary knots, as long as these enclose the interior knots:
the boundary knots only affect the conditioning of the design.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.interpolate import BSpline


def interior_knots(doses: np.ndarray, num_knots: int) -> np.ndarray:
    """``num_knots`` interior knots at equally spaced quantiles of ``doses`` (as
    ``cont_did``'s ``choose_knots_quantile``: probabilities ``linspace(0, 1, k + 2)[1:-1]``)."""
    if num_knots <= 0 or len(doses) == 0:
        return np.empty(0)
    return np.quantile(np.asarray(doses, float), np.linspace(0.0, 1.0, num_knots + 2)[1:-1])


def usable_knots(knots: Sequence[float], lo: float, hi: float) -> np.ndarray:
    """The interior knots strictly inside ``(lo, hi)`` (knots outside a cohort's dose range
    cannot be estimated from that cohort and are dropped for it)."""
    k = np.unique(np.asarray(knots, float))
    return k[(k > lo) & (k < hi)]


def n_coef(degree: int, knots: np.ndarray) -> int:
    """Number of regression coefficients (intercept included): ``degree + 1 + #knots``."""
    return degree + 1 + len(knots)


def spline_design(
    x: np.ndarray, lo: float, hi: float, knots: np.ndarray, degree: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(X, dX)``: the (len(x) x p) design ``[1, B_2(x), ..., B_J(x)]`` and its derivative
    in x ``[0, B_2'(x), ..., B_J'(x)]``, p = ``degree + 1 + len(knots)``; boundary knots
    ``lo < hi`` (repeated ``degree + 1`` times)."""
    x = np.asarray(x, float)
    if not hi > lo:
        raise ValueError("the spline needs two distinct boundary knots (at least two distinct doses)")
    t = np.r_[np.repeat(lo, degree + 1), np.asarray(knots, float), np.repeat(hi, degree + 1)]
    nb = len(t) - degree - 1
    spl = BSpline(t, np.eye(nb), degree, extrapolate=True)
    basis = spl(x)
    deriv = spl.derivative()(x)
    X = np.empty((len(x), nb))
    X[:, 0] = 1.0
    X[:, 1:] = basis[:, 1:]
    dX = np.zeros((len(x), nb))
    dX[:, 1:] = deriv[:, 1:]
    return X, dX
