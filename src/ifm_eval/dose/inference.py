"""Cluster-robust inference from influence functions: analytic SEs and the multiplier bootstrap.

With unit influence functions ``IF_i`` (full-sample scale, ``theta_hat - theta ~ (1/n) sum IF_i``)
and cluster sums ``S_c = sum_{i in c} IF_i``:

* analytic SE ``sqrt(sum_c S_c^2) / n`` (R ``did``; no small-sample factor);
* multiplier bootstrap: one weight ``V_bc`` per cluster and draw (Rademacher +-1, or Mammen's
  two-point weights with mean 0 and variance 1), bootstrap deviations ``sum_c V_bc S_c / n``;
  SE = interquartile range / (z_.75 - z_.25) (R ``did`` / ``cont_did``'s ``mboot``);
  sup-t critical value of a family (e.g. ATT(d) over the dose grid) = (1 - alpha) quantile
  of ``max_j |dev_bj| / SE_j``, never below the pointwise normal value (as R ``did``).
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.stats import norm

BOOT_WEIGHTS = ("rademacher", "mammen")
_TINY = np.sqrt(np.finfo(float).eps) * 10.0


def cluster_sums(psi: np.ndarray, codes: np.ndarray, n_clusters: int) -> np.ndarray:
    """(G x M) within-cluster sums of the rows of ``psi`` (n x M)."""
    n = psi.shape[0]
    agg = sparse.csr_matrix((np.ones(n), (codes, np.arange(n))), shape=(n_clusters, n))
    return np.asarray(agg @ psi)


def analytic_se(S: np.ndarray, n: int) -> np.ndarray:
    """``sqrt(sum_c S_c^2) / n`` per column; NaN where (numerically) zero."""
    se = np.sqrt(np.einsum("cj,cj->j", S, S)) / n
    se[~(se > _TINY)] = np.nan
    return se


def multipliers(kind: str, n_clusters: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot x G) multiplier weights drawn per cluster."""
    if kind == "rademacher":
        return np.where(rng.random((n_boot, n_clusters)) < 0.5, -1.0, 1.0)
    if kind == "mammen":
        s5 = np.sqrt(5.0)
        p_low = (s5 + 1.0) / (2.0 * s5)
        return np.where(rng.random((n_boot, n_clusters)) < p_low, (1.0 - s5) / 2.0, (1.0 + s5) / 2.0)
    raise ValueError(f"boot_weights must be one of {BOOT_WEIGHTS}, got {kind!r}")


def bootstrap(
    S: np.ndarray,
    n: int,
    *,
    n_boot: int,
    kind: str,
    seed: int | np.random.Generator | None,
    alpha: float,
    bands: dict[str, np.ndarray],
) -> tuple[np.ndarray, dict[str, float]]:
    """Bootstrap SEs (M,) of the columns of the cluster sums ``S`` (G x M) and the sup-t
    critical values of the column families in ``bands`` (name -> column indices)."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    G = S.shape[0]
    dev = np.empty((n_boot, S.shape[1]))  # (B x M) bootstrap deviations
    chunk = max(1, min(n_boot, (16 * 2**20) // (8 * G)))  # draw matrices of <= 16 MB
    for b0 in range(0, n_boot, chunk):
        b = min(chunk, n_boot - b0)
        dev[b0:b0 + b] = multipliers(kind, G, b, rng) @ S / n
    q25, q75 = np.quantile(dev, [0.25, 0.75], axis=0, method="inverted_cdf")
    se = (q75 - q25) / (norm.ppf(0.75) - norm.ppf(0.25))
    se[~(se > _TINY)] = np.nan
    z = norm.ppf(1 - alpha / 2)
    crit: dict[str, float] = {}
    for name, cols in bands.items():
        cols = np.asarray(cols)
        cols = cols[np.isfinite(se[cols])]
        if len(cols) == 0:
            crit[name] = np.nan
            continue
        tmax = np.max(np.abs(dev[:, cols]) / se[cols], axis=1)
        c = float(np.quantile(tmax, 1 - alpha, method="inverted_cdf"))
        crit[name] = max(c, z)
    return se, crit
