"""The Monte Carlo and power jobs: each reads the files its rule declares, writes exactly
the files it declares.

* ``mc-replicate`` (one job per design and seed): input ``gv`` (the Destatis extract the
  worlds are drawn on); output ``rows`` (:data:`~.replicate.ROW_COLUMNS`).
* ``monte-carlo``: inputs ``rows`` (every replicate of the configured designs), optional
  ``recorded``/``recorded_before`` (:mod:`~.evidence`); outputs ``summary``, ``event_time``,
  ``targets``, ``evidence`` (CSV) and the coverage figure ``figure``/``pdf``.
* ``power``: inputs ``rows`` (the ``zero`` and ``hr<x>`` replicates), the main specs'
  ``tidy``/``meta`` and the ``panel``; outputs ``mde``, ``curve``, ``detectable`` (CSV) and
  the figures ``mde_figure``, ``power_figure`` (+ PDFs).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ifm_eval.stage_io import StageIO

log = logging.getLogger(__name__)

OUTCOME_ORDER = ("rate_employment", "rate_training", "rate_language")


def replicate_seeds(cfg: dict[str, Any], k: int | None = None) -> list[int]:
    mc = cfg["monte_carlo"]
    return [int(mc["seed_base"]) + i for i in range(int(mc["k"] if k is None else k))]


def power_designs(cfg: dict[str, Any]) -> list[str]:
    return [f"hr{x:g}" for x in cfg["monte_carlo"]["power"]["max_hazard_ratio"]]


def mc_replicate(cfg: dict[str, Any], io: StageIO, design: str, seed: int) -> pd.DataFrame:
    from ifm_eval.montecarlo.replicate import run_replicate
    from ifm_eval.reference import read_gemeindeverzeichnis

    io.require(inputs=("gv",), outputs=("rows",))
    rows = run_replicate(cfg, design, seed, read_gemeindeverzeichnis(io.input("gv")),
                         cfg["monte_carlo"]["models"])
    rows.to_parquet(io.output("rows"), index=False)
    return rows


def read_rows(files: list[Path]) -> pd.DataFrame:
    frames = [pd.read_parquet(f) for f in files]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def monte_carlo(cfg: dict[str, Any], io: StageIO, args: Any = None) -> pd.DataFrame:
    """Summary, event-time summary, targets and coverage figure of this run's replicates.
    Optional inputs ``recorded`` / ``recorded_before``: the recorded full-size summaries
    (:mod:`~.evidence`); the targets also apply the recorded run made with this very
    configuration, and ``evidence`` (CSV) sets the recorded runs side by side (empty if none
    matches the configuration)."""
    from ifm_eval.montecarlo.evidence import evidence_table, matching, read_recorded, with_recorded
    from ifm_eval.montecarlo.summary import event_time_summary, passes, summarise
    from ifm_eval.outputs import style
    from ifm_eval.outputs.tablefmt import write_csv

    io.require(inputs=("rows",), outputs=("summary", "event_time", "targets", "evidence", "figure", "pdf"),
               optional_inputs=("recorded", "recorded_before"))
    rows = read_rows(io.input_list("rows"))
    synthetic = style.is_synthetic(cfg)
    summ = summarise(rows)
    write_csv(summ, io.output("summary"), synthetic=synthetic)
    write_csv(event_time_summary(rows), io.output("event_time"), synthetic=synthetic)
    rec = io.optional_input("recorded")
    rec = matching(read_recorded(rec), cfg) if rec else None
    before = io.optional_input("recorded_before")
    before = read_recorded(before).drop(columns="fingerprint") if before else None
    if rec is None:
        log.warning("no recorded full-size Monte Carlo matches this configuration: the targets rest on "
                    "this run's %d replicates per design only", int(summ["k"].max()) if len(summ) else 0)
    write_csv(with_recorded(passes(summ), None if rec is None else passes(rec)), io.output("targets"),
              synthetic=synthetic)
    write_csv(evidence_table(rec, before), io.output("evidence"), synthetic=synthetic)
    fig = coverage_figure(summ, style.language(cfg))
    written = style.finish_figure(fig, io.output("figure").with_suffix(""), synthetic=synthetic,
                                  n=f"K = {int(summ['k'].max()) if len(summ) else 0}", lang=style.language(cfg),
                                  source="Monte Carlo (ifm_eval.montecarlo)",
                                  note=("95-%-Konfidenzintervalle; Linien: Zielbereich 93–97 %; Balken: ±2 Monte-Carlo-SF"
                                        if style.language(cfg) == "de" else
                                        "95% confidence intervals; lines: target band 93-97%; bars: ±2 Monte Carlo SE"))
    assert {p.resolve() for p in written} == {io.output("figure").resolve(), io.output("pdf").resolve()}
    log.info("Monte Carlo: %d replicate rows, %d estimator x outcome x design cells", len(rows), len(summ))
    return summ


def coverage_figure(summ: pd.DataFrame, lang: str):
    import matplotlib.pyplot as plt

    from ifm_eval.outputs.style import label

    designs = [d for d in ("effects", "zero", "violated") if d in set(summ["design"])]
    fig, axes = plt.subplots(1, max(len(designs), 1), figsize=(3.4 * max(len(designs), 1) + 0.6, 3.6), sharey=True,
                             squeeze=False)
    for ax, d in zip(axes[0], designs, strict=False):
        s = summ[summ["design"] == d].copy()
        s["key"] = s["estimator"].map(lambda e: label(e, lang)) + " · " + s["outcome"].map(lambda o: label(o, lang))
        s = s.sort_values(["estimator", "outcome"])
        y = np.arange(len(s))
        ax.errorbar(s["coverage"], y, xerr=2 * s["coverage_mcse"], fmt="o", color="black", ms=3, lw=0.8)
        ax.axvspan(0.93, 0.97, color="0.85", zorder=0)
        ax.axvline(0.95, color="0.4", lw=0.6, ls="--")
        ax.set_yticks(y, s["key"], fontsize=6.5)
        ax.set_xlim(0, 1.02)
        ttl = {"effects": ("geplante Effekte", "planted effects"), "zero": ("Effekt null", "zero effect"),
               "violated": ("verletzte Annahme", "violated assumption")}[d]
        ax.set_title(ttl[0] if lang == "de" else ttl[1], loc="left", fontsize=8)
        ax.set_xlabel("Überdeckung" if lang == "de" else "coverage", fontsize=7)
    fig.tight_layout()
    return fig


def power(cfg: dict[str, Any], io: StageIO, args: Any = None) -> None:
    from ifm_eval.montecarlo.power import analytic_mde, baseline_rates, detectable_effect
    from ifm_eval.montecarlo.summary import power_curve
    from ifm_eval.outputs import style
    from ifm_eval.outputs.figures import load_estimates
    from ifm_eval.outputs.tablefmt import write_csv

    io.require(inputs=("rows", "tidy", "meta", "panel"),
               outputs=("mde", "curve", "detectable", "mde_figure", "mde_pdf", "power_figure", "power_pdf"))
    synthetic, lang = style.is_synthetic(cfg), style.language(cfg)
    est, meta = load_estimates(io.input_list("tidy"), io.input_list("meta"))
    panel = pd.read_parquet(io.input("panel"))
    base = baseline_rates(panel, list(OUTCOME_ORDER))
    parts = []
    for model, md in sorted(meta.items()):
        spec = md.get("spec", {})
        if spec.get("role") != "main" or md.get("status") != "ok":
            continue
        head = (md.get("info") or {}).get("headline", {}).get("term") or "att"
        t = analytic_mde(est[est["model"] == model], head, base.get(spec["outcome"], np.nan))
        parts.append(t.assign(model=model, estimator=spec["estimator"], outcome=spec["outcome"]))
    mde = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if len(mde):
        mde = mde[["model", "estimator", "outcome", "row", "event_time", "se", "mde80_pp", "baseline_rate_2016",
                   "mde80_relative"]]
    write_csv(mde, io.output("mde"), synthetic=synthetic)
    rows = read_rows(io.input_list("rows"))
    curve = power_curve(rows)
    write_csv(curve, io.output("curve"), synthetic=synthetic)
    det = detectable_effect(curve)
    write_csv(det, io.output("detectable"), synthetic=synthetic)
    k = int(curve["k"].max()) if len(curve) else 0
    for fig, stem, names, note in (
        (mde_figure(mde, lang), io.output("mde_figure"), ("mde_figure", "mde_pdf"),
         "MDE₈₀ = 2,80 × SF (zweiseitig 5 %, Power 80 %)" if lang == "de" else "MDE₈₀ = 2.80 × SE (two-sided 5%, power 80%)"),
        (power_figure(curve, lang), io.output("power_figure"), ("power_figure", "power_pdf"),
         f"Anteil der Replikate mit 95-%-KI ohne null; K = {k} je Punkt" if lang == "de"
         else f"share of replicates whose 95% CI excludes zero; K = {k} per point"),
    ):
        written = style.finish_figure(fig, stem.with_suffix(""), synthetic=synthetic, note=note, lang=lang,
                                      source="ifm_eval.montecarlo")
        assert {p.resolve() for p in written} == {io.output(n).resolve() for n in names}
    log.info("power: %d MDE rows, %d power-curve points", len(mde), len(curve))


def mde_figure(mde: pd.DataFrame, lang: str):
    import matplotlib.pyplot as plt

    from ifm_eval.outputs.style import label

    outs = [o for o in OUTCOME_ORDER if len(mde) and o in set(mde["outcome"])]
    fig, axes = plt.subplots(1, max(len(outs), 1), figsize=(3.3 * max(len(outs), 1), 3.0), squeeze=False)
    for ax, o in zip(axes[0], outs, strict=False):
        d = mde[(mde["outcome"] == o) & (mde["row"] == "event_time")]
        for j, (e, g) in enumerate(d.groupby("estimator")):
            g = g.sort_values("event_time")
            ax.plot(g["event_time"], g["mde80_pp"], lw=1, marker="o", ms=2, color=str(0.1 + 0.15 * j),
                    label=label(e, lang))
        ax.set_title(label(o, lang), loc="left", fontsize=8)
        ax.set_xlabel(label("event_time", lang), fontsize=7)
        ax.set_ylabel("MDE₈₀ (PP)" if lang == "de" else "MDE₈₀ (pp)", fontsize=7)
    if outs:
        axes[0][0].legend(fontsize=6, frameon=False)
    fig.tight_layout()
    return fig


def power_figure(curve: pd.DataFrame, lang: str):
    import matplotlib.pyplot as plt

    from ifm_eval.outputs.style import label

    outs = [o for o in OUTCOME_ORDER if len(curve) and o in set(curve["outcome"])]
    fig, axes = plt.subplots(1, max(len(outs), 1), figsize=(3.3 * max(len(outs), 1), 3.0), squeeze=False, sharey=True)
    for ax, o in zip(axes[0], outs, strict=False):
        d = curve[curve["outcome"] == o]
        for j, (e, g) in enumerate(d.groupby("estimator")):
            g = g.sort_values("max_hazard_ratio")
            ax.errorbar(g["max_hazard_ratio"], g["rejection"], yerr=2 * g["rejection_mcse"], lw=1, marker="o", ms=2,
                        color=str(0.1 + 0.15 * j), label=label(e, lang), capsize=1.5)
        ax.axhline(0.8, color="0.5", lw=0.6, ls="--")
        ax.axhline(0.05, color="0.5", lw=0.6, ls=":")
        ax.set_ylim(0, 1.02)
        ax.set_title(label(o, lang), loc="left", fontsize=8)
        ax.set_xlabel("geplantes max. Hazard-Verhältnis" if lang == "de" else "planted max hazard ratio", fontsize=7)
        ax.set_ylabel("Power" if lang == "de" else "power", fontsize=7)
    if outs:
        axes[0][0].legend(fontsize=6, frameon=False)
    fig.tight_layout()
    return fig


def summary_json(summary: pd.DataFrame) -> str:
    return json.dumps(summary.to_dict(orient="records"), indent=1, default=float)
