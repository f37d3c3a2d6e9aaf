"""Cluster jackknife (CV3) inference for the estimators' aggregates.

With few and unequal clusters (44 Kreise, a handful of large Stadtkreise carrying much of
the refugee weight) the cluster-robust sandwich (CRV1) and the analytic influence-function
variances understate the sampling variance: the Monte Carlo of :mod:`ifm_eval.montecarlo`
measures it. The leave-one-cluster-out jackknife

    V_CV3 = (G - 1) / G * sum_c (theta_(-c) - mean_c theta_(-c))^2

with t(G - 1) critical values is the small-sample correction recommended by MacKinnon,
Nielsen & Webb (2023, "Cluster-robust inference: a guide to empirical practice"). Every
estimator computes its leave-one-cluster-out estimates exactly and fast (no refits: the
normal equations are sums of per-cluster parts, see :func:`.fe.cluster_jackknife`); this
module turns them into standard errors and confidence intervals.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ifm_eval.estimators.results import t_inference


def jackknife_se(estimates: np.ndarray) -> np.ndarray:
    """CV3 standard errors from leave-one-cluster-out estimates (G x m): ``sqrt((G-1)/G
    sum_c (est_(-c) - mean)^2)``; clusters whose estimate is not finite are left out."""
    est = np.atleast_2d(np.asarray(estimates, dtype=float))
    ok = np.isfinite(est)
    G = ok.sum(axis=0)
    mean = np.where(ok, est, 0.0).sum(axis=0) / np.maximum(G, 1)
    dev = np.where(ok, est - mean, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(G > 1, np.sqrt((G - 1) / np.maximum(G, 1) * (dev ** 2).sum(axis=0)), np.nan)


def jackknife_vcov(estimates: np.ndarray) -> np.ndarray:
    """CV3 covariance (m x m) of the leave-one-cluster-out estimates (G x m), over the
    clusters where all m are finite."""
    est = np.atleast_2d(np.asarray(estimates, dtype=float))
    ok = np.isfinite(est).all(axis=1)
    G = int(ok.sum())
    if G < 2:
        return np.full((est.shape[1], est.shape[1]), np.nan)
    dev = est[ok] - est[ok].mean(axis=0)
    return (G - 1) / G * dev.T @ dev


def apply_jackknife(table: pd.DataFrame, rows: np.ndarray, estimates: np.ndarray,
                    alpha: float) -> dict[str, Any]:
    """Replace the SEs, confidence bounds and p-values of ``table``'s rows ``rows`` (index
    labels, in the column order of ``estimates``, G x len(rows)) by the jackknife's, with
    t(G - 1) critical values (G: per row, the clusters with a finite leave-out estimate, i.e.
    without which the row is still identified). Returns the ``info`` entries: inference
    kind, the number of clusters and the replaced analytic SEs by term."""
    rows = np.asarray(rows)
    est = np.atleast_2d(np.asarray(estimates, dtype=float))
    se = jackknife_se(est)
    G = np.isfinite(est).sum(axis=0)
    info = {"inference": "cluster_jackknife", "jackknife_clusters": int(est.shape[0]),
            "se_analytic": {str(k): (None if not np.isfinite(v) else float(v))
                            for k, v in zip(table.loc[rows, "term"], table.loc[rows, "se"], strict=True)}}
    table.loc[rows, "se"] = se
    for k, v in t_inference(table.loc[rows, "estimate"].to_numpy(float), se, np.maximum(G - 1, 1), alpha).items():
        table.loc[rows, k] = v
    return info
