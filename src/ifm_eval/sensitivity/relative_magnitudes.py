r"""Relative-magnitudes restriction :math:`\Delta^{RM}(\bar M)` (Rambachan & Roth 2023, Sec. 2.4).

With pre-period coefficients :math:`t = -K, \dots, -1`, post periods :math:`t = 1, \dots, \bar T`
and the normalisation :math:`\delta_0 = 0`,

.. math::

    \Delta^{RM}(\bar M) = \{\delta : |\delta_{t+1} - \delta_t| \le
        \bar M \max_{s<0} |\delta_{s+1} - \delta_s| \ \forall t \ge 0\}.

It is the union over the location ``s`` of the largest pre-period first difference and its sign
of the polyhedra :math:`\Delta^{RM}_{s,\pm}(\bar M) = \{A_{s,\pm} \delta \le 0\}` built by
:func:`rm_constraint_matrix`. The confidence set of :math:`\theta = l'\tau_{post}` is the union of
the ARP tests' confidence sets over those ``2K`` polyhedra, each inverted over a grid of theta
(R HonestDiD's ``computeConditionalCS_DeltaRM``: 1000 points on :math:`\pm 20\,sd(l'\hat\beta)`,
only the moments involving post-period coefficients, C-LF hybrid with
:math:`\kappa = \alpha / 10`).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linprog

from ._lp import MinMaxLP
from .conditional import lf_critical_value, no_nuisance_accept, nuisance_accept


def rm_constraint_matrix(
    num_pre: int, num_post: int, mbar: float, s: int, max_positive: bool
) -> np.ndarray:
    r"""Matrix ``A`` with :math:`\Delta^{RM}_{s,\pm}(\bar M) = \{\delta : A\delta \le 0\}`.

    ``s`` in ``-(num_pre - 1), ..., 0`` names the pre-period first difference
    :math:`\delta_s - \delta_{s-1}` assumed to be the largest in absolute value, with sign + when
    ``max_positive``. Columns are :math:`\delta_{-K}, \dots, \delta_{-1}, \delta_1, \dots,
    \delta_{\bar T}`; rows as in R HonestDiD's ``.create_A_RM`` (all-zero rows dropped).
    """
    n = num_pre + num_post
    diffs = np.zeros((n, n + 1))
    for r in range(n):
        diffs[r, r], diffs[r, r + 1] = -1.0, 1.0
    vmax = np.zeros(n + 1)
    j = num_pre + s - 1
    vmax[j], vmax[j + 1] = -1.0, 1.0
    if not max_positive:
        vmax = -vmax
    ub = np.vstack([np.tile(vmax, (num_pre, 1)), np.tile(mbar * vmax, (num_post, 1))])
    a = np.vstack([diffs - ub, -diffs - ub])
    a = a[(a * a).sum(axis=1) > 1e-10]
    return np.delete(a, num_pre, axis=1)


def _gamma_inverse(l_vec: np.ndarray) -> np.ndarray:
    """Inverse of an invertible ``Gamma`` whose first row is ``l'`` (rest: unit vectors)."""
    t = l_vec.shape[0]
    jstar = int(np.flatnonzero(l_vec)[-1])
    rows = [l_vec] + [np.eye(t)[j] for j in range(t) if j != jstar]
    return np.linalg.inv(np.vstack(rows))


def rm_identified_set(
    beta: np.ndarray, num_pre: int, num_post: int, l_vec: np.ndarray, mbar: float
) -> tuple[float, float]:
    r"""Identified set of :math:`\theta = l'\tau_{post}` under :math:`\Delta^{RM}(\bar M)`.

    For population coefficients ``beta``: the union over ``(s, sign)`` of
    :math:`[l'\beta_{post} - \max l'\delta_{post},\ l'\beta_{post} - \min l'\delta_{post}]` over
    :math:`\delta \in \Delta^{RM}_{s,\pm}(\bar M)` with :math:`\delta_{pre} = \beta_{pre}` (LPs;
    R's ``.compute_IDset_DeltaRM``). Returns ``(nan, nan)`` if every polyhedron is empty.
    """
    beta = np.asarray(beta, dtype=float)
    l_vec = np.asarray(l_vec, dtype=float)
    c = np.concatenate([np.zeros(num_pre), l_vec])
    a_eq = np.hstack([np.eye(num_pre), np.zeros((num_pre, num_post))])
    point = float(l_vec @ beta[num_pre:])
    lbs, ubs = [], []
    for s in range(-(num_pre - 1), 1):
        for sign in (True, False):
            a = rm_constraint_matrix(num_pre, num_post, mbar, s, sign)
            kw = dict(
                A_ub=a, b_ub=np.zeros(a.shape[0]), A_eq=a_eq, b_eq=beta[:num_pre],
                bounds=[(None, None)] * (num_pre + num_post), method="highs",
            )
            lo = linprog(c, **kw)
            hi = linprog(-c, **kw)
            if lo.status == 0 and hi.status == 0:
                lbs.append(point + hi.fun)  # point - max l'delta
                ubs.append(point - lo.fun)
            elif lo.status == 3 or hi.status == 3:
                lbs.append(-np.inf if hi.status == 3 else point + hi.fun)
                ubs.append(np.inf if lo.status == 3 else point - lo.fun)
    if not lbs:
        return float("nan"), float("nan")
    return float(min(lbs)), float(max(ubs))


def rm_accept_grid(
    betahat: np.ndarray,
    sigma: np.ndarray,
    num_pre: int,
    num_post: int,
    l_vec: np.ndarray,
    mbar: float,
    theta: np.ndarray,
    alpha: float = 0.05,
    hybrid: str = "LF",
    kappa: float | None = None,
    sims: int = 1000,
    seed: int = 0,
) -> np.ndarray:
    r"""Acceptance of each ``theta`` by the union of the ``2K`` per-polyhedron tests.

    ``hybrid="LF"`` is R's "C-LF" (``kappa`` defaults to ``alpha / 10``), ``"ARP"`` the purely
    conditional test ("Conditional").
    """
    kappa = alpha / 10.0 if kappa is None else kappa
    accept = np.zeros(theta.shape[0], dtype=bool)
    for s in range(-(num_pre - 1), 1):
        for sign in (True, False):
            accept |= _accept_fixed_s(
                betahat, sigma, num_pre, num_post, l_vec, mbar, s, sign, theta,
                alpha, hybrid, kappa, sims, seed,
            )
    return accept


def rm_grid_contains(
    betahat: np.ndarray,
    sigma: np.ndarray,
    num_pre: int,
    num_post: int,
    l_vec: np.ndarray,
    mbar: float,
    theta: np.ndarray,
    value: float = 0.0,
    alpha: float = 0.05,
    hybrid: str = "LF",
    kappa: float | None = None,
    sims: int = 1000,
    seed: int = 0,
) -> bool:
    """Whether ``[min, max]`` of the accepted grid points contains ``value``.

    The same decision as from :func:`rm_accept_grid` - an accepted point at or below and one at
    or above ``value`` - but testing the two halves of the grid only until each has an accepted
    point (polyhedra in order of the size of their pre-period difference), which makes
    breakdown searches cheaper.
    """
    kappa = alpha / 10.0 if kappa is None else kappa
    halves = [theta[theta <= value], theta[theta >= value]]
    found = [h.size == 0 for h in halves]
    if all(found):
        return False
    diffs = np.diff(np.concatenate([betahat[:num_pre], [0.0]]))
    combos = [(s, sign) for s in range(-(num_pre - 1), 1) for sign in (True, False)]
    combos.sort(key=lambda c: -(diffs[num_pre + c[0] - 1] * (1 if c[1] else -1)))
    for s, sign in combos:
        for i, h in enumerate(halves):
            if not found[i]:
                found[i] = bool(_accept_fixed_s(
                    betahat, sigma, num_pre, num_post, l_vec, mbar, s, sign, h, alpha, hybrid,
                    kappa, sims, seed,
                ).any())
        if all(found):
            return True
    return False


def _accept_fixed_s(
    betahat, sigma, num_pre, num_post, l_vec, mbar, s, sign, theta, alpha, hybrid, kappa,
    sims, seed,
) -> np.ndarray:
    a = rm_constraint_matrix(num_pre, num_post, mbar, s, sign)
    post = slice(num_pre, num_pre + num_post)
    if num_post == 1:
        rows = np.flatnonzero(a[:, -1] != 0)
        a = a[rows]
        d = np.zeros(a.shape[0])
        cv = None
        if hybrid == "LF":
            cv = lf_critical_value(None, a @ sigma @ a.T, kappa, sims, seed)
        y = betahat[None, :] - np.outer(theta / l_vec[0], np.eye(num_pre + 1)[num_pre])
        return no_nuisance_accept(y, a, d, sigma, alpha, hybrid, kappa, cv)
    rows = np.flatnonzero((a[:, post] != 0).any(axis=1))
    a_gi = a[:, post] @ _gamma_inverse(l_vec)
    y0 = (a @ betahat)[rows]
    sig_y = (a @ sigma @ a.T)[np.ix_(rows, rows)]
    x = a_gi[rows, 1:]
    a_one = a_gi[rows, 0]
    lp = MinMaxLP(x, np.sqrt(np.diag(sig_y)))
    cv = lf_critical_value(x, sig_y, kappa, sims, seed) if hybrid == "LF" else None
    y = y0[None, :] - np.outer(theta, a_one)
    return nuisance_accept(y, x, sig_y, alpha, hybrid, kappa, cv, lp)
