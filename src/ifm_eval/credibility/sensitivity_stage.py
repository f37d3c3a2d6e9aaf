"""Stage ``honest-did``: HonestDiD sensitivity (Rambachan & Roth 2023) of the main event
studies (relative magnitudes on the adaptive grid of Stata honestdid / moderndid, which does
not truncate wide sets for averaged targets; the last ``pre_periods`` pre-periods): robust confidence sets of the headline (mean of the post months), of e = 0 and of
the last month under relative-magnitude (Mbar) and smoothness (M) restrictions on the
post-period violations of parallel trends, the original interval and the breakdown values."""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import pandas as pd

from ifm_eval.credibility.event_studies import EventStudy, diagnostic_event_study
from ifm_eval.credibility.select import diagnosed_specs, read_meta, read_tidy
from ifm_eval.stage_io import StageIO

log = logging.getLogger(__name__)
ALPHA = 0.05
METHODS = {"relative_magnitude": "mbar", "smoothness": "m"}
ROW_COLUMNS = ["model", "estimator", "outcome", "n_pre", "n_post", "source", "note", "target", "estimate",
               "restriction", "method", "m", "lb", "ub"]
BREAKDOWN_COLUMNS = ["model", "estimator", "outcome", "n_pre", "n_post", "source", "note", "target", "estimate",
                     "restriction", "original_lb", "original_ub", "breakdown", "seconds"]


def restrict_pre(es: EventStudy, pre_periods: int | None) -> EventStudy:
    """The event study with the last ``pre_periods`` pre-periods (all: None) and every post
    period (HonestDiD needs consecutive pre- and post-periods around the reference)."""
    pre = np.flatnonzero(es.t < es.reference)
    keep = es.t >= 0
    if pre_periods is not None and len(pre) > pre_periods:
        keep[pre[-pre_periods:]] = True
    else:
        keep[pre] = True
    return es.subset(keep)


def l_vector(es: EventStudy, target: str | int) -> np.ndarray | None:
    """Weights over the post periods of ``es`` for a target (``headline`` or an event month)."""
    post = es.t[es.t >= 0]
    if target == "headline":
        v = np.isin(post, es.headline_events).astype(float)
    else:
        v = (post == int(target)).astype(float)
    return v / v.sum() if v.sum() > 0 else None


def sensitivity_rows(es: EventStudy, hd: dict[str, Any]) -> tuple[list[dict], list[dict]]:
    """The robust-CI rows and the breakdown rows of one event study."""
    from ifm_eval.sensitivity import breakdown, honest_did, original_ci

    es = restrict_pre(es, hd["pre_periods"])
    npre, npost = es.n_pre, es.n_post
    base = {"model": es.model, "estimator": es.estimator, "outcome": es.outcome, "n_pre": npre, "n_post": npost,
            "source": es.source, "note": "; ".join(es.notes) or None}
    rows, brk = [], []
    if npre < 1 or npost < 1:
        return rows, brk
    for target in hd["targets"]:
        lv = l_vector(es, target)
        if lv is None:
            continue
        tkey = "headline" if target == "headline" else f"e{int(target):+d}"
        est = float(lv @ es.beta[es.t >= 0])
        orig = original_ci(es.beta, es.sigma, npre, npost, l_vec=lv, alpha=ALPHA).iloc[0]
        rows.append({**base, "target": tkey, "estimate": est, "restriction": "none", "method": "Original",
                     "m": np.nan, "lb": float(orig["lb"]), "ub": float(orig["ub"])})
        for restriction, key in METHODS.items():
            t0 = time.perf_counter()
            opts = {"grid": "adaptive"} if restriction == "relative_magnitude" else {}
            res = honest_did(es.beta, es.sigma, npre, npost, method=restriction,
                             m_values=[float(x) for x in hd[key]], l_vec=lv, alpha=ALPHA, **opts)
            for r in res.itertuples(index=False):
                rows.append({**base, "target": tkey, "estimate": est, "restriction": restriction,
                             "method": r.method, "m": float(r.m), "lb": float(r.lb), "ub": float(r.ub)})
            b = breakdown(es.beta, es.sigma, npre, npost, method=restriction, l_vec=lv, alpha=ALPHA, **opts)
            brk.append({**base, "target": tkey, "estimate": est, "restriction": restriction,
                        "original_lb": float(orig["lb"]), "original_ub": float(orig["ub"]),
                        "breakdown": float(b), "seconds": round(time.perf_counter() - t0, 2)})
            log.info("%s %s %s: breakdown %.3g (%.1f s)", es.model, tkey, restriction, b, time.perf_counter() - t0)
    return rows, brk


def honest_models(cfg: dict[str, Any]) -> list[str]:
    """The diagnosed specs whose estimator ``credibility.honest_did.estimators`` names (one
    ``honest_did_model`` job each)."""
    est = set(cfg["credibility"]["honest_did"]["estimators"])
    return [n for n, s in diagnosed_specs(cfg).items() if s["estimator"] in est]


def honest_did_model(cfg: dict[str, Any], io: StageIO, args: Any = None) -> pd.DataFrame:
    """One event study (``--model``): inputs ``tidy``, ``meta`` (that spec) and ``panel``;
    outputs ``rows`` and ``breakdown`` (Parquet, aggregates)."""
    io.require(inputs=("tidy", "meta", "panel"), outputs=("rows", "breakdown"))
    name = args.model
    spec = diagnosed_specs(cfg)[name]
    tidy = read_tidy(io.input_list("tidy"))
    meta = read_meta(io.input_list("meta"))
    panel = pd.read_parquet(io.input("panel"))
    es = diagnostic_event_study(name, spec, tidy, meta.get(name, {}), panel)
    rows, brk = sensitivity_rows(es, cfg["credibility"]["honest_did"]) if es is not None else ([], [])
    table = pd.DataFrame(rows, columns=ROW_COLUMNS)
    table.to_parquet(io.output("rows"), index=False)
    pd.DataFrame(brk, columns=BREAKDOWN_COLUMNS).to_parquet(io.output("breakdown"), index=False)
    return table


def honest_did_stage(cfg: dict[str, Any], io: StageIO, args: Any = None) -> pd.DataFrame:
    """Inputs ``rows`` and ``breakdown`` (the per-spec jobs); outputs ``table`` (robust CIs),
    ``breakdown`` (CSV) and the sensitivity figure."""
    from ifm_eval.credibility.figures import honest_did_figure
    from ifm_eval.outputs import style
    from ifm_eval.outputs.tablefmt import write_csv

    io.require(inputs=("rows", "breakdown_rows"), outputs=("table", "breakdown", "figure", "pdf"))
    hd = cfg["credibility"]["honest_did"]
    frames = [pd.read_parquet(p) for p in io.input_list("rows")]
    table = pd.concat([f for f in frames if len(f)], ignore_index=True) if any(len(f) for f in frames) \
        else pd.DataFrame(columns=ROW_COLUMNS)
    frames = [pd.read_parquet(p) for p in io.input_list("breakdown_rows")]
    brk = pd.concat([f for f in frames if len(f)], ignore_index=True) if any(len(f) for f in frames) \
        else pd.DataFrame(columns=BREAKDOWN_COLUMNS)
    synthetic = style.is_synthetic(cfg)
    write_csv(table, io.output("table"), synthetic=synthetic)
    write_csv(brk, io.output("breakdown"), synthetic=synthetic)
    lang = style.language(cfg)
    style.finish_figure(honest_did_figure(table, lang), io.output("figure").with_suffix(""), synthetic=synthetic,
                        lang=lang, source="ifm_eval.sensitivity.honest_did",
                        note=(f"Kopfzahl (Mittel der Monate 0 bis Fensterende); {hd['pre_periods']} Vorperioden; "
                              "links: ursprüngliches 95-%-KI" if lang == "de" else
                              f"headline (mean of months 0 to the window end); {hd['pre_periods']} pre-periods; "
                              "left: original 95% CI"))
    return table
