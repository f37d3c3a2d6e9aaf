"""Subgroup event studies and the differences between subgroups.

Estimand of subgroup k: the spec's estimand (e.g. the refugee-weighted ATT by event time
and its mean over the event months 0..12) for the treated municipalities of group k,
estimated on the panel restricted to group k's municipalities: the comparison units are
group k's not-yet-treated municipalities, i.e. parallel trends are assumed *within* the
group (as R ``did`` users do by subsetting). Each subgroup gets the spec's own inference
(cluster jackknife for the main specs).

Difference ``theta_a - theta_b`` between two groups (estimated on disjoint municipalities
that share clusters, the Kreise): its standard error is the cluster jackknife of the
difference, ``D_(-c) = theta_a,(-c) - theta_b,(-c)`` over the union of the clusters (a
cluster absent from one group's sample leaves that group's estimate unchanged), CV3 with
t(G - 1); without jackknife draws (analytic specs) the influence-function SE
``sqrt(sum_c (psi_a,c - psi_b,c)^2)``. Its bootstrap p-value is the cluster multiplier
bootstrap of the influence sums of the difference with the spec's bootstrap weights (Webb
by default; the same weight for the same Kreis in both groups).

A group with fewer than ``min_treated`` treated municipalities is reported with its counts
and status ``too_few_treated``, not estimated.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ifm_eval.estimators.jackknife import jackknife_se
from ifm_eval.estimators.results import EstimateResult, align_psi
from ifm_eval.estimators.runner import UNIT, estimate, prepare_data
from ifm_eval.heterogeneity.moderators import MISSING, group_labels, ordered_groups
from ifm_eval.inference.bootstrap import cluster_weights
from ifm_eval.inference.multiplier import multiplier_rows

log = logging.getLogger(__name__)

#: estimators whose subgroup fits expose influence sums and leave-one-cluster-out draws
SUBGROUP_ESTIMATORS = ("callaway_santanna", "imputation")
#: fewer treated municipalities than this: the group is not estimated
MIN_TREATED = 20
ALPHA = 0.05


@dataclass
class GroupFit:
    """One subgroup: its counts and, where estimated, the estimator's result."""

    group: str
    n_units: int
    n_treated: int
    status: str  # ok | too_few_treated | not_estimable
    result: EstimateResult | None = None
    error: str | None = None
    warnings: list[str] = field(default_factory=list)


def plain_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec as one fit needs it: without the heterogeneity key and the per-fit bootstrap
    (the differences get one joint bootstrap instead)."""
    s = copy.deepcopy(spec)
    s["heterogeneity"] = None
    s["dose"] = None
    s["inference"] = {**s["inference"], "bootstrap": None}
    return s


def fit_subgroups(panel: pd.DataFrame, spec: dict[str, Any], moderator: str,
                  min_treated: int = MIN_TREATED) -> tuple[list[GroupFit], dict[str, Any]]:
    """Fit the (normalised) ``spec`` once per subgroup of ``moderator``. Returns the fits in
    group order and ``info`` (sample filter warnings, group sizes, cluster universe)."""
    if spec["estimator"] not in SUBGROUP_ESTIMATORS:
        raise ValueError(f"heterogeneity: estimator {spec['estimator']!r} is not supported "
                         f"(one of {', '.join(SUBGROUP_ESTIMATORS)})")
    one = plain_spec(spec)
    data, gcol, warns = prepare_data(panel, one)
    labels = group_labels(data, moderator)
    unit_label = data[UNIT].map(labels)
    treated_units = data.loc[data[gcol] > 0, UNIT].unique()
    fits: list[GroupFit] = []
    from ifm_eval.progress import track

    groups = ordered_groups(labels, moderator)
    for grp in track(groups, f"subgroups of {moderator}: fitted", logger=log):
        sub = data[unit_label == grp]
        units = sub[UNIT].unique()
        n_tr = int(np.isin(units, treated_units).sum())
        if n_tr < min_treated:
            fits.append(GroupFit(grp, len(units), n_tr, "too_few_treated",
                                 error=f"{n_tr} treated municipalities (< {min_treated})"))
            continue
        try:
            res = estimate(sub, one, gcol)
        except ValueError as exc:
            fits.append(GroupFit(grp, len(units), n_tr, "not_estimable", error=f"{type(exc).__name__}: {exc}"))
            log.warning("heterogeneity %s=%s not estimable: %s", moderator, grp, exc)
            continue
        fits.append(GroupFit(grp, len(units), n_tr, "ok", res, warnings=list(res.warnings)))
        log.info("heterogeneity %s=%s: %d municipalities (%d treated) fitted", moderator, grp, len(units), n_tr)
    universe = data[one["cluster"]].dropna().to_numpy() if one["cluster"] else data[UNIT].to_numpy()
    info = {"warnings": warns, "cohort_column": gcol, "universe": universe,
            "n_missing_units": int((labels == MISSING).sum()),
            "n_missing_treated": int(((labels == MISSING) & labels.index.isin(treated_units)).sum())}
    return fits, info


def headline_term(res: EstimateResult) -> str:
    return (res.info.get("headline") or {}).get("term") or "att"


def group_table(fits: list[GroupFit], moderator: str) -> pd.DataFrame:
    """Long table of every group's overall and event-time rows (``group``, ``kind``,
    ``term``, ``event_time``, ``estimate``, ``se``, ``ci_low``, ``ci_high``, ``p``) plus the
    counts; groups not estimated get one row with their status."""
    rows = []
    for f in fits:
        base = {"moderator": moderator, "group": f.group, "n_units": f.n_units, "n_treated": f.n_treated,
                "status": f.status, "error": f.error}
        if f.result is None:
            rows.append(pd.DataFrame([base]))
            continue
        t = f.result.table
        t = t[t["kind"].isin(["overall", "event_time"])]
        cols = [c for c in ("kind", "term", "event_time", "estimate", "se", "ci_low", "ci_high", "p") if c in t]
        part = t[cols].copy()
        part["headline"] = part["term"].eq(headline_term(f.result)) & part["kind"].eq("overall")
        rows.append(part.assign(**base))
    out = pd.concat(rows, ignore_index=True)
    lead = ["moderator", "group", "status", "n_units", "n_treated", "kind", "term", "event_time", "headline"]
    return out[[c for c in lead if c in out] + [c for c in out.columns if c not in lead]]


def _jk_matrix(res: EstimateResult, terms: list[str], labels: pd.Index) -> np.ndarray | None:
    """Leave-one-cluster-out estimates of ``terms`` over ``labels`` (full-sample estimate
    where a cluster is not in the sample); None without jackknife draws."""
    jk = res.jackknife
    if jk is None:
        return None
    est = res.table.set_index("term")["estimate"]
    full = np.array([float(est.get(t, np.nan)) for t in terms])
    out = np.tile(full, (len(labels), 1))
    pos = labels.get_indexer(pd.Index(np.asarray(jk.clusters)))
    col = {t: j for j, t in enumerate(jk.terms)}
    for k, t in enumerate(terms):
        if t in col:
            out[pos, k] = jk.estimates[:, col[t]]
        else:
            out[:, k] = np.nan
    return out


def differences(fits: list[GroupFit], universe: np.ndarray, boot: dict[str, Any] | None,
                alpha: float = ALPHA) -> pd.DataFrame:
    """Every pair of estimated groups (in group order, ``group_a - group_b`` with a listed
    earlier group as b): the difference of the headline and of each common event time, its
    SE (jackknife, else influence function), t(G - 1) interval and p, and for the headline
    the multiplier-bootstrap p (``boot_p``) when ``boot`` (``{weights, draws, seed}``) is
    given."""
    ok = [f for f in fits if f.status == "ok"]
    rows = []
    for fb, fa in combinations(ok, 2):
        ra, rb = fa.result, fb.result
        ta, tb = ra.table.set_index("term"), rb.table.set_index("term")
        head = headline_term(ra)
        ev_terms = [t for t in ta.index[ta["kind"] == "event_time"] if t in tb.index]
        terms = [head] + ev_terms
        est = np.array([float(ta.loc[t, "estimate"]) - float(tb.loc[t, "estimate"]) for t in terms])
        labels = pd.Index(pd.unique(np.concatenate([np.asarray(r.jackknife.clusters) if r.jackknife is not None
                                                    else np.asarray(r.boot_source.clusters) for r in (ra, rb)])))
        labels = labels.sort_values()
        A, B = _jk_matrix(ra, terms, labels), _jk_matrix(rb, terms, labels)
        if A is not None and B is not None:
            D = A - B
            se = jackknife_se(D)
            G = np.isfinite(D).sum(axis=0)
            df = np.maximum(G - 1, 1).astype(float)
            method = "cluster_jackknife"
        else:
            se = np.full(len(terms), np.nan)
            df = np.full(len(terms), np.inf)
            method = "influence_function"
            srcs = (ra.boot_source, rb.boot_source)
            if all(s is not None and s.psi is not None for s in srcs):
                for k, t in enumerate(terms):
                    ia = [i for i, x in enumerate(srcs[0].terms) if x == _boot_term(t, ra)]
                    ib = [i for i, x in enumerate(srcs[1].terms) if x == _boot_term(t, rb)]
                    if ia and ib:
                        _, P = align_psi([(srcs[0].clusters, srcs[0].psi[:, ia]), (srcs[1].clusters, srcs[1].psi[:, ib])])
                        se[k] = float(np.sqrt(((P[:, 0] - P[:, 1]) ** 2).sum()))
        with np.errstate(divide="ignore", invalid="ignore"):
            tstat = est / se
        crit = stats.t.ppf(1 - alpha / 2, df)
        p = 2 * stats.t.sf(np.abs(tstat), df)
        boot_p = np.full(len(terms), np.nan)
        if boot:
            boot_p[0] = _boot_p(ra, rb, est[0], universe, boot, alpha)
        evt = [np.nan] + [float(ta.loc[t, "event_time"]) for t in ev_terms]
        rows.append(pd.DataFrame({
            "group_a": fa.group, "group_b": fb.group, "term": terms, "event_time": evt,
            "kind": ["overall"] + ["event_time"] * len(ev_terms), "headline": [True] + [False] * len(ev_terms),
            "estimate": est, "se": se, "ci_low": est - crit * se, "ci_high": est + crit * se, "p": p,
            "df": df, "boot_p": boot_p, "se_method": method,
        }))
    if not rows:
        return pd.DataFrame(columns=["group_a", "group_b", "term", "event_time", "kind", "headline", "estimate",
                                     "se", "ci_low", "ci_high", "p", "df", "boot_p", "se_method"])
    return pd.concat(rows, ignore_index=True)


def _boot_term(term: str, res: EstimateResult) -> str:
    """The bootstrap source's name of a table term (CS names event times ``e+k`` there)."""
    src = res.boot_source
    if src is None or term in src.terms:
        return term
    t = res.table.set_index("term")
    if term in t.index and t.loc[term, "kind"] == "event_time":
        return f"e{int(t.loc[term, 'event_time']):+d}"
    return term


def _boot_p(ra: EstimateResult, rb: EstimateResult, est: float, universe: np.ndarray,
            boot: dict[str, Any], alpha: float) -> float:
    """Multiplier-bootstrap p of ``theta_a - theta_b = 0`` for the headline."""
    sa, sb = ra.boot_source, rb.boot_source
    if sa is None or sb is None or sa.psi is None or sb.psi is None:
        return float("nan")
    ia, ib = sa.terms.index(headline_term(ra)), sb.terms.index(headline_term(rb))
    labels, P = align_psi([(sa.clusters, sa.psi[:, [ia]]), (sb.clusters, sb.psi[:, [ib]])])
    V, enumerated = cluster_weights(universe, labels, boot["weights"], int(boot["draws"]), int(boot["seed"]))
    rows, _, _ = multiplier_rows(["diff"], np.array([est]), (P[:, 0] - P[:, 1])[:, None], V, alpha,
                                 weights=boot["weights"], enumerated=enumerated)
    return float(rows["boot_p"].iloc[0])
