"""Cluster multiplier (wild score) bootstrap of estimators with influence functions.

Callaway & Sant'Anna, imputation and two-stage DiD are (asymptotically) linear in their
cluster-level influence sums ``psi_g`` (G x m, analytic ``Var = sum_g psi_g psi_g'``; R
``did`` since PR #261 also bootstraps cluster sums). The bootstrap distribution of
``theta^ - theta`` is that of ``T* = sum_g v_g psi_g`` with cluster weights ``v``
(:mod:`.weights`: Rademacher or Webb, full enumeration when it is cheaper than drawing).
The p-value of ``theta = 0`` is ``mean(|T*| > |theta^|)`` and the interval ``theta^ +/-
q_{1-alpha}(|T*|)`` (symmetric percentile-t with the analytic SE, which cancels). With few
clusters the draws' distribution is not normal (G distinct signs), which is what the
few-cluster view adds to the analytic normal interval.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ifm_eval.inference.weights import draw_weights


def multiplier_rows(terms: list[str], estimates: np.ndarray, psi: np.ndarray,
                    V: np.ndarray | str, alpha: float = 0.05, *, draws: int = 9999,
                    seed: int | None = None, weights: str | None = None, enumerated: bool = False,
                    ) -> tuple[pd.DataFrame, dict[str, np.ndarray], dict]:
    """Bootstrap p-values and intervals of ``estimates`` (m) from their cluster influence sums
    ``psi`` (G x m), with cluster weights ``V`` (B x G) or, given a weight kind instead
    (``"webb"``/``"rademacher"``), ``draws`` weights drawn with ``seed``. Returns the rows
    (``term``, ``boot_p``, ``boot_ci_low``, ``boot_ci_high``, ``boot_t``), the bootstrap
    t-statistics (term -> B; ``T*/se``) and the method's info."""
    psi = np.atleast_2d(np.asarray(psi, dtype=float))
    est = np.asarray(estimates, dtype=float)
    if psi.shape[1] != len(est) or len(terms) != len(est):
        raise ValueError(f"multiplier bootstrap: {len(terms)} terms, {len(est)} estimates, psi {psi.shape}")
    G = psi.shape[0]
    if isinstance(V, str):
        weights = V
        V, enumerated = draw_weights(V, G, draws, seed)
    if V.shape[1] != G:
        raise ValueError(f"weights for {V.shape[1]} clusters, psi has {G}")
    T = V @ np.nan_to_num(psi)
    se = np.sqrt((np.nan_to_num(psi) ** 2).sum(axis=0))
    absT = np.abs(T)
    ok = np.isfinite(est) & (se > 0) & np.isfinite(psi).all(axis=0)
    p = np.where(ok, (absT > np.abs(est)[None, :]).mean(axis=0), np.nan)
    crit = np.quantile(absT, 1 - alpha, axis=0, method="higher")
    with np.errstate(divide="ignore", invalid="ignore"):
        tb = T / se[None, :]
        t = est / se
    rows = pd.DataFrame({"term": terms, "boot_p": p,
                         "boot_ci_low": np.where(ok, est - crit, np.nan),
                         "boot_ci_high": np.where(ok, est + crit, np.nan),
                         "boot_t": np.where(ok, t, np.nan)})
    info = {"method": "cluster multiplier bootstrap of the influence function", "weights": weights,
            "draws": int(V.shape[0]), "enumerated": bool(enumerated), "clusters": int(G)}
    return rows, {term: tb[:, j] for j, term in enumerate(terms)}, info
