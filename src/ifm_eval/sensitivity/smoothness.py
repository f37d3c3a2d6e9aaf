r"""Smoothness restriction :math:`\Delta^{SD}(M)` (Rambachan & Roth 2023, Section 2.3).

With :math:`\delta_0 = 0` (reference period) and periods :math:`t = -K, \dots, \bar T`,

.. math::

    \Delta^{SD}(M) = \{\delta : |(\delta_{t+1} - \delta_t) - (\delta_t - \delta_{t-1})| \le M
        \ \forall t\},

i.e. the slope of the differential trend changes by at most ``M`` between consecutive periods
(``M = 0``: exactly linear trends). This module holds the constraint matrix, the identified set
and R HonestDiD's default grid of ``M``; the fixed-length confidence interval is in
:mod:`.flci`.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linprog
from scipy.stats import norm


def sd_constraint_matrix(num_pre: int, num_post: int) -> np.ndarray:
    r"""``A`` with :math:`\Delta^{SD}(M) = \{\delta : A\delta \le M\}`: rows ``+-`` second differences.

    Columns :math:`\delta_{-K}, \dots, \delta_{-1}, \delta_1, \dots, \delta_{\bar T}` (the
    reference period, fixed at 0, dropped); as R's ``.create_A_SD``.
    """
    n = num_pre + num_post
    a = np.zeros((n - 1, n + 1))
    for r in range(n - 1):
        a[r, r : r + 3] = (1.0, -2.0, 1.0)
    a = np.delete(a, num_pre, axis=1)
    return np.vstack([a, -a])


def sd_identified_set(
    beta: np.ndarray, num_pre: int, num_post: int, l_vec: np.ndarray, m: float
) -> tuple[float, float]:
    r"""Identified set of :math:`\theta = l'\tau_{post}` under :math:`\Delta^{SD}(M)` (two LPs).

    :math:`[l'\beta_{post} - \max l'\delta_{post},\ l'\beta_{post} - \min l'\delta_{post}]` over
    :math:`\delta \in \Delta^{SD}(M)` with :math:`\delta_{pre} = \beta_{pre}`; ``(nan, nan)``
    if the pre-period coefficients themselves violate the restriction (empty set).
    """
    beta = np.asarray(beta, dtype=float)
    l_vec = np.asarray(l_vec, dtype=float)
    a = sd_constraint_matrix(num_pre, num_post)
    c = np.concatenate([np.zeros(num_pre), l_vec])
    kw = dict(
        A_ub=a, b_ub=np.full(a.shape[0], m),
        A_eq=np.hstack([np.eye(num_pre), np.zeros((num_pre, num_post))]), b_eq=beta[:num_pre],
        bounds=[(None, None)] * (num_pre + num_post), method="highs",
    )
    lo, hi = linprog(c, **kw), linprog(-c, **kw)
    if lo.status != 0 or hi.status != 0:
        return float("nan"), float("nan")
    point = float(l_vec @ beta[num_pre:])
    return point + float(hi.fun), point - float(lo.fun)


def sd_default_m_values(
    betahat: np.ndarray, sigma: np.ndarray, num_pre: int, n: int = 10
) -> np.ndarray:
    r"""R's default ``Mvec`` of ``createSensitivityResults``: ``n`` values on ``[0, M_ub]``.

    ``M_ub`` (R's ``DeltaSD_upperBound_Mpre`` at level 0.05) is the largest one-sided 95% upper
    confidence bound of the pre-period second differences :math:`\pm\Delta^2\hat\beta_t`
    (including the reference :math:`\beta_0 = 0`); with a single pre-period it is
    :math:`sd(\hat\beta_{-1})`.
    """
    if num_pre == 1:
        return np.linspace(0.0, float(np.sqrt(sigma[0, 0])), n)
    a = sd_constraint_matrix(num_pre, 0)
    diffs = a @ betahat[:num_pre]
    se = np.sqrt(np.diag(a @ sigma[:num_pre, :num_pre] @ a.T))
    return np.linspace(0.0, float(np.max(diffs + norm.ppf(0.95) * se)), n)
