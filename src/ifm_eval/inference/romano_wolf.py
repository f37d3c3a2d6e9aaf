"""Romano–Wolf step-down p-values (Romano & Wolf 2005, 2016) for a family of hypotheses.

Input: the observed t-statistics ``t`` (m) and bootstrap t-statistics under the nulls
``t_boot`` (B x m) drawn JOINTLY (the same cluster weights for every hypothesis, so their
dependence is kept). Hypotheses are taken in decreasing ``|t|``; the j-th one's raw p-value
is ``mean(max_{k in remaining} |t*_k| >= |t_j|)`` over the hypotheses not yet rejected, and
the adjusted p-values are made monotone (``p_(j) = max(p_(j), p_(j-1))``). Rejecting where
the adjusted p is at most alpha controls the family-wise error rate at alpha.
"""

from __future__ import annotations

import numpy as np


def romano_wolf(t: np.ndarray, t_boot: np.ndarray) -> np.ndarray:
    """Adjusted p-values (m), in the order of ``t``. Hypotheses with a non-finite ``t`` get
    NaN and are left out of the family."""
    t = np.asarray(t, dtype=float)
    tb = np.atleast_2d(np.asarray(t_boot, dtype=float))
    if tb.shape[1] != len(t):
        raise ValueError(f"romano_wolf: {len(t)} statistics but t_boot is {tb.shape}")
    out = np.full(len(t), np.nan)
    ok = np.flatnonzero(np.isfinite(t) & np.isfinite(tb).all(axis=0))
    if not len(ok):
        return out
    order = ok[np.argsort(-np.abs(t[ok]), kind="stable")]
    a = np.abs(tb[:, order])
    # running max over the hypotheses not yet rejected: from the least significant end
    tail_max = np.maximum.accumulate(a[:, ::-1], axis=1)[:, ::-1]
    prev = 0.0
    for j, h in enumerate(order):
        pj = float(np.mean(tail_max[:, j] >= abs(t[h])))
        prev = max(prev, pj)
        out[h] = prev
    return out
