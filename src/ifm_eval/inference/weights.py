"""Cluster-level bootstrap weights (Rademacher, Webb), with full enumeration when it is cheaper
than drawing.

Rademacher weights take ±1 with probability 1/2; Webb's (2023) six-point weights take
±sqrt(1/2), ±1, ±sqrt(3/2) with probability 1/6 each (same first two moments, E v^4 = 7/6,
and 6^G instead of 2^G distinct vectors: the choice when clusters are few). When the number
of distinct weight vectors (2^G for Rademacher, 6^G for Webb) is at most the requested number
of draws, every vector is used once (full enumeration): the bootstrap distribution is then
exact and deterministic, as in ``wildboottest`` / ``boottest``.
"""

from __future__ import annotations

import itertools

import numpy as np

#: Allowed weight distributions and their support.
WEIGHT_KINDS: dict[str, np.ndarray] = {
    "rademacher": np.array([-1.0, 1.0]),
    "webb": np.array([-np.sqrt(1.5), -1.0, -np.sqrt(0.5), np.sqrt(0.5), 1.0, np.sqrt(1.5)]),
}


def draw_weights(kind: str, n_clusters: int, draws: int, seed: int | None) -> tuple[np.ndarray, bool]:
    """``(V, enumerated)``: a (B x G) matrix of cluster weights and whether it is the full
    enumeration (then B = support^G <= ``draws``; otherwise B = ``draws`` i.i.d. rows from
    ``numpy.random.default_rng(seed)``)."""
    if kind not in WEIGHT_KINDS:
        raise ValueError(f"bootstrap weights {kind!r} unknown (one of {', '.join(WEIGHT_KINDS)})")
    if n_clusters < 1 or draws < 1:
        raise ValueError("bootstrap needs at least one cluster and one draw")
    support = WEIGHT_KINDS[kind]
    if len(support) ** n_clusters <= draws:
        V = np.array(list(itertools.product(support, repeat=n_clusters)), dtype=float)
        return V, True
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(support), size=(draws, n_clusters))
    return support[idx], False
