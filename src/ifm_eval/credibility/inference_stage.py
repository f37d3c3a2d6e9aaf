"""Stages ``randomization`` (one job per estimator) and ``credibility-inference``: analytic,
few-cluster bootstrap, randomization and Romano–Wolf p-values of the diagnosed specs'
headline estimates, side by side, and the permutation distributions."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ifm_eval.credibility.select import (
    diagnosed_specs,
    headline_row,
    model_of,
    read_meta,
    read_tidy,
    specs_of,
)
from ifm_eval.stage_io import StageIO

log = logging.getLogger(__name__)

#: columns of results/inference/inference.csv
INFERENCE_COLUMNS = ("model", "estimator", "outcome", "term", "estimate", "inference", "se", "p", "ci_low",
                     "ci_high", "boot_method", "boot_weights", "boot_draws", "boot_p", "boot_ci_low",
                     "boot_ci_high", "ri_draws", "p_randomization", "p_randomization_estimate", "p_romano_wolf",
                     "rw_note")


def randomization(cfg: dict[str, Any], io: StageIO, estimator: str) -> pd.DataFrame:
    """The ``randomization`` job of one estimator: its diagnosed specs' headline on the
    observed and on ``credibility.randomization.draws`` permuted start months (output
    ``draws``: model, draw, estimate; draw 0 = observed)."""
    from ifm_eval.inference.randomization import randomization_draws

    io.require(inputs=("panel",), outputs=("draws",))
    rc = cfg["credibility"]["randomization"]
    specs = specs_of(cfg, estimator)
    if not specs:
        raise ValueError(f"randomization: no diagnosed spec uses estimator {estimator!r}")
    panel = pd.read_parquet(io.input("panel"))
    draws = randomization_draws(panel, specs, int(rc["draws"]), int(rc["seed"]), verband=rc["verband"])
    draws.to_parquet(io.output("draws"), index=False)
    return draws


def romano_wolf_p(meta: dict[str, dict[str, Any]], boot_files: dict[str, Path], models: list[str]
                  ) -> tuple[dict[str, float], str]:
    """Romano–Wolf adjusted p-values of the headlines of ``models`` (one estimator, several
    outcomes) from their joint bootstrap draws; NaN with a note where the draws are not
    joint (different weights, draws or clusters)."""
    from ifm_eval.inference.romano_wolf import romano_wolf

    t, tb, keys = [], [], []
    for m in models:
        info = (meta[m].get("info") or {}).get("bootstrap")
        term = ((meta[m].get("info") or {}).get("headline") or {}).get("term")
        f = boot_files.get(m)
        if not info or f is None:
            return {m: np.nan for m in models}, "no bootstrap"
        b = pd.read_parquet(f)
        b = b[b["term"] == term]
        if not len(b):
            return {m: np.nan for m in models}, "no bootstrap draws"
        t.append(float(info["t"].get(term, np.nan)))
        tb.append(b.sort_values("draw")["t_boot"].to_numpy(float))
        keys.append((info["weights"], info["draws"], info["seed"], info["universe_clusters"]))
    if len(set(keys)) > 1 or len({len(x) for x in tb}) > 1:
        return {m: np.nan for m in models}, "draws not joint (weights, seed or clusters differ)"
    adj = romano_wolf(np.array(t), np.column_stack(tb))
    return dict(zip(models, adj.tolist(), strict=True)), f"joint over {len(models)} outcomes"


def inference_table(cfg: dict[str, Any], tidy: pd.DataFrame, meta: dict[str, dict[str, Any]],
                    boot_files: dict[str, Path], ri: pd.DataFrame) -> pd.DataFrame:
    """One row per diagnosed spec (:data:`INFERENCE_COLUMNS`)."""
    from ifm_eval.inference.randomization import randomization_p

    specs = diagnosed_specs(cfg)
    rip = randomization_p(ri).set_index("model") if len(ri) else pd.DataFrame()
    rw: dict[str, float] = {}
    notes: dict[str, str] = {}
    for est in dict.fromkeys(s["estimator"] for s in specs.values()):
        models = [m for m, s in specs.items() if s["estimator"] == est and m in meta]
        adj, note = romano_wolf_p(meta, boot_files, models)
        rw.update(adj)
        notes.update(dict.fromkeys(models, note))
    rows = []
    for m, s in specs.items():
        md = meta.get(m)
        h = headline_row(tidy, md) if md else None
        bi = ((md or {}).get("info") or {}).get("bootstrap") or {}
        inf = ((md or {}).get("info") or {}).get("inference") or s["inference"]["type"]
        rows.append({
            "model": m, "estimator": s["estimator"], "outcome": s["outcome"],
            "term": None if h is None else h["term"], "estimate": np.nan if h is None else h["estimate"],
            "inference": inf, "se": np.nan if h is None else h["se"], "p": np.nan if h is None else h["p"],
            "ci_low": np.nan if h is None else h["ci_low"], "ci_high": np.nan if h is None else h["ci_high"],
            "boot_method": bi.get("method"), "boot_weights": bi.get("weights"), "boot_draws": bi.get("draws"),
            "boot_p": np.nan if h is None else h["boot_p"], "boot_ci_low": np.nan if h is None else h["boot_ci_low"],
            "boot_ci_high": np.nan if h is None else h["boot_ci_high"],
            "ri_draws": int(rip.loc[m, "n_draws"]) if m in rip.index else 0,
            "p_randomization": float(rip.loc[m, "p_randomization"]) if m in rip.index else np.nan,
            "p_randomization_estimate": float(rip.loc[m, "p_randomization_estimate"]) if m in rip.index else np.nan,
            "p_romano_wolf": rw.get(m, np.nan), "rw_note": notes.get(m),
        })
    return pd.DataFrame(rows, columns=list(INFERENCE_COLUMNS))


def credibility_inference(cfg: dict[str, Any], io: StageIO, args: Any = None) -> pd.DataFrame:
    """Inputs ``tidy``, ``meta``, ``boot`` (the diagnosed specs' estimate files) and ``draws``
    (the randomization jobs); outputs ``table`` (CSV), ``ri_draws`` (CSV: the permutation
    distributions, aggregates), ``figure`` / ``pdf`` (the permutation distributions with the
    estimates)."""
    from ifm_eval.credibility.figures import randomization_figure
    from ifm_eval.outputs import style
    from ifm_eval.outputs.tablefmt import write_csv

    io.require(inputs=("tidy", "meta", "boot", "draws"), outputs=("table", "ri_draws", "figure", "pdf"))
    tidy = read_tidy(io.input_list("tidy"))
    meta = read_meta(io.input_list("meta"))
    boot = {model_of(p, "_boot"): p for p in io.input_list("boot")}
    frames = [pd.read_parquet(p) for p in io.input_list("draws")]
    ri = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["model", "draw", "estimate", "se"])
    table = inference_table(cfg, tidy, meta, boot, ri)
    synthetic = style.is_synthetic(cfg)
    write_csv(table, io.output("table"), synthetic=synthetic)
    write_csv(ri, io.output("ri_draws"), synthetic=synthetic)
    lang = style.language(cfg)
    fig = randomization_figure(table, ri, lang)
    style.finish_figure(fig, io.output("figure").with_suffix(""), synthetic=synthetic, lang=lang,
                        n=f"K = {int(cfg['credibility']['randomization']['draws'])}",
                        source="ifm_eval.inference.randomization",
                        note=("t-Statistik der Kopfzahl, Startmonate zwischen Verbänden permutiert; Linie: beobachtet"
                              if lang == "de" else
                              "t-statistic of the headline, start months permuted across Verbände; line: observed"))
    for _, r in table.iterrows():
        log.info("%s: p analytic %.3f, bootstrap %.3f, randomization %.3f, Romano-Wolf %.3f",
                 r["model"], r["p"], r["boot_p"], r["p_randomization"], r["p_romano_wolf"])
    return table
