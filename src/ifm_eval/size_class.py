"""Municipality size classes (population 31.12.2019), shared by the stand-in generator (a
planted effect gradient) and the heterogeneity analysis (a moderator).

Classes follow the Gemeindegrößenklassen of official statistics, merged to three so that
every class holds enough treated municipalities: under 5,000, 5,000 to under 20,000,
20,000 and more inhabitants.
"""

from __future__ import annotations

import numpy as np

#: (label, lower bound inclusive) in increasing order
SIZE_CLASSES: tuple[tuple[str, int], ...] = (("lt5k", 0), ("5k_20k", 5_000), ("20k_plus", 20_000))


def size_class_index(population: np.ndarray) -> np.ndarray:
    """0, 1, 2 for the classes of :data:`SIZE_CLASSES` (population as a float array; NaN
    gives -1)."""
    pop = np.asarray(population, dtype=float)
    bounds = np.array([lo for _, lo in SIZE_CLASSES[1:]], dtype=float)
    idx = np.searchsorted(bounds, pop, side="right").astype(np.int64)
    return np.where(np.isnan(pop), -1, idx)


def size_class_label(population: np.ndarray) -> np.ndarray:
    """The class label of each population (None where population is missing)."""
    idx = size_class_index(population)
    labels = np.array([lab for lab, _ in SIZE_CLASSES], dtype=object)
    return np.where(idx >= 0, labels[np.clip(idx, 0, None)], None)
