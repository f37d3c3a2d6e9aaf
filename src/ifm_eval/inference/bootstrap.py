"""Apply a spec's few-cluster bootstrap (``inference.bootstrap``) to an estimate.

The estimator leaves a :class:`~ifm_eval.estimators.results.BootstrapSource` on its result;
this module draws the cluster weights once per spec for the sorted cluster labels of the
estimation data (``universe``), so specs on the same data and seed share them (joint draws
across outcomes), runs the WCR or the multiplier bootstrap and writes ``boot_p``,
``boot_ci_low`` and ``boot_ci_high`` into the result's table.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ifm_eval.estimators.results import EstimateResult
from ifm_eval.inference.multiplier import multiplier_rows
from ifm_eval.inference.weights import draw_weights
from ifm_eval.inference.wild_cluster import WCRProblem, restriction_rows


def cluster_weights(universe: np.ndarray, labels: np.ndarray, kind: str, draws: int,
                    seed: int) -> tuple[np.ndarray, bool]:
    """Weights (B x G) for the clusters ``labels`` (in that order), drawn for the sorted
    ``universe`` of labels: the same label gets the same weight in every spec."""
    uni = pd.Index(pd.unique(np.asarray(universe))).sort_values()
    V, enumerated = draw_weights(kind, len(uni), draws, seed)
    pos = uni.get_indexer(pd.Index(np.asarray(labels)))
    if (pos < 0).any():
        raise ValueError(f"bootstrap: cluster label(s) {list(np.asarray(labels)[pos < 0][:5])} not in the data")
    return V[:, pos], enumerated


def apply_bootstrap(result: EstimateResult, boot: dict[str, Any], universe: np.ndarray,
                    alpha: float = 0.05) -> EstimateResult:
    """Fill the bootstrap columns of ``result.table`` (in place; also returned) for the terms
    of its bootstrap source; ``result.boot_draws`` gets the bootstrap t-statistics and
    ``result.info["bootstrap"]`` the method."""
    src = result.boot_source
    if src is None:
        result.warnings.append(f"{result.estimator}: no bootstrap available; boot_* columns left empty")
        return result
    V, enumerated = cluster_weights(universe, src.clusters, boot["weights"], int(boot["draws"]), int(boot["seed"]))
    if src.kind == "wcr":
        prob = WCRProblem.with_weights(src.fit, V, enumerated, boot["weights"])
        rows, tboot, info = restriction_rows(prob, dict(zip(src.terms, src.restrictions, strict=True)), alpha)
    elif src.kind == "multiplier":
        rows, tboot, info = multiplier_rows(src.terms, src.estimates, src.psi, V, alpha,
                                            weights=boot["weights"], enumerated=enumerated)
    else:
        raise ValueError(f"unknown bootstrap source {src.kind!r}")
    info = {**info, "seed": int(boot["seed"]), "universe_clusters": int(len(pd.unique(np.asarray(universe)))),
            "t": {str(t): float(v) for t, v in zip(rows["term"], rows["boot_t"], strict=True)}}
    table = result.table
    for col in ("boot_p", "boot_ci_low", "boot_ci_high"):
        if col not in table:
            table[col] = np.nan
    pos = {t: i for i, t in enumerate(table["term"])}
    for r in rows.itertuples(index=False):
        if r.term in pos:
            i = table.index[pos[r.term]]
            table.loc[i, ["boot_p", "boot_ci_low", "boot_ci_high"]] = [r.boot_p, r.boot_ci_low, r.boot_ci_high]
    result.boot_draws = tboot
    result.info["bootstrap"] = info
    return result
