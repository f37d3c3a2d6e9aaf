"""The ``dose_summary`` job: the dose specs side by side (``run_summary``).

Inputs (``StageIO`` names): ``tables``, ``curves`` and ``meta`` of every ``dose_response``
job (lists, possibly empty). Outputs: ``summary`` (``results/heterogeneity/dose_summary.csv``:
one row per spec and aggregate — ATT^o, ACRT^o — with counts, the treated doses' 5/50/95 %
quantiles and, on stand-in data, the planted truth and its coverage) and ``figure`` /
``pdf`` (ATT(d) with uniform and pointwise bands; rows: outcomes, columns: dose variables;
drawn over the dose grid, the 10–90 % quantiles of the treated doses; ACRT^o and, on
stand-in data, its planted value in each panel's title).
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

COLUMNS = ["spec", "dose", "outcome", "term", "estimate", "se", "ci_low", "ci_high", "p", "truth", "covered",
           "n_units", "n_treated", "n_clusters", "degree", "knots", "dose_p05", "dose_p50", "dose_p95"]


def summary_table(tables: list[pd.DataFrame], metas: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per dose spec and aggregate term (``att_overall``, ``acrt_overall``)."""
    rows = []
    for t, m in zip(tables, metas, strict=True):
        agg = t[t["kind"] == "aggregate"]
        q = m.get("dose_quantiles", {})
        sp = m["spec"]["dose_spline"]
        for r in agg.itertuples(index=False):
            rows.append({"spec": m["model"], "dose": m["dose"], "outcome": m["outcome"], "term": r.term,
                         "estimate": r.estimate, "se": r.se, "ci_low": r.ci_low, "ci_high": r.ci_high, "p": r.p,
                         "truth": getattr(r, "truth", np.nan), "covered": getattr(r, "covered", pd.NA),
                         "n_units": m["n_units"], "n_treated": m["n_treated"], "n_clusters": m["n_clusters"],
                         "degree": sp["degree"], "knots": sp["knots"], "dose_p05": q.get("0.05"),
                         "dose_p50": q.get("0.5"), "dose_p95": q.get("0.95")})
    out = pd.DataFrame(rows, columns=COLUMNS)
    return out.sort_values(["outcome", "dose", "term"], kind="stable").reset_index(drop=True)


def summary_figure(curves: list[pd.DataFrame], summary: pd.DataFrame, lang: str):
    """ATT(d) of every dose spec (rows: outcomes, columns: doses)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ifm_eval.credibility.figures import outcome_label
    from ifm_eval.dose.stage import dose_label
    from ifm_eval.outputs import style

    style.apply_style()
    outcomes = list(dict.fromkeys(summary["outcome"])) if len(summary) else []
    doses = list(dict.fromkeys(summary["dose"])) if len(summary) else []
    if not outcomes:
        fig, ax = plt.subplots(figsize=(7.2, 1.6))
        ax.axis("off")
        ax.text(0.5, 0.5, "Keine Dosis-Spezifikation konfiguriert" if lang == "de" else "No dose specification configured",
                ha="center", va="center")
        return fig
    fig, axes = plt.subplots(len(outcomes), len(doses), figsize=(3.6 * len(doses), 2.1 * len(outcomes) + 0.4),
                             squeeze=False, sharex="col")
    by_spec = {str(c["spec"].iloc[0]): c for c in curves if len(c)}
    acrt = summary[summary["term"] == "acrt_overall"].set_index("spec")
    for i, o in enumerate(outcomes):
        for j, d in enumerate(doses):
            ax = axes[i][j]
            hit = summary[(summary["outcome"] == o) & (summary["dose"] == d)]
            if not len(hit):
                ax.axis("off")
                continue
            spec = str(hit["spec"].iloc[0])
            c = by_spec[spec]
            x = c["dose"].to_numpy(float)
            if c["att_lo"].notna().any():
                ax.fill_between(x, c["att_lo"], c["att_hi"], color="#d9d9d9", linewidth=0)
            ax.fill_between(x, c["att_lo_pointwise"], c["att_hi_pointwise"], color="#a6a6a6", linewidth=0)
            ax.plot(x, c["att"], color="#000000", linewidth=1.4)
            ax.axhline(0.0, color="#555555", linewidth=0.8, linestyle="--")
            ax.set_xlim(x.min(), x.max())
            a = acrt.loc[spec]
            txt = f"ACRT° {style.format_number(a['estimate'], 2, lang, signed=True)} " \
                  f"({style.format_number(a['se'], 2, lang)})"
            if pd.notna(a.get("truth", np.nan)):
                txt += f"; {'wahr' if lang == 'de' else 'true'} {style.format_number(a['truth'], 2, lang, signed=True)}"
            ax.set_title(txt, fontsize=7)
            if j == 0:
                ax.set_ylabel(f"ATT(d), {outcome_label(o, lang)}", fontsize=7)
            if i == len(outcomes) - 1:
                ax.set_xlabel(dose_label(d, lang), fontsize=7)
    fig.tight_layout()
    return fig


def run_summary(cfg: dict[str, Any], io: StageIO, args: Any = None) -> pd.DataFrame:
    """The ``dose_summary`` job."""
    from ifm_eval.outputs import style
    from ifm_eval.outputs.tablefmt import write_csv

    # the per-spec lists are empty (and then not passed) without dose specs
    io.require(optional_inputs=("tables", "curves", "meta"), outputs=("summary", "figure", "pdf"))
    synthetic, lang = style.is_synthetic(cfg), style.language(cfg)
    tables = [pd.read_csv(p).drop(columns=["data_source"], errors="ignore") for p in io.input_list("tables")]
    curves = [pd.read_csv(p).drop(columns=["data_source"], errors="ignore") for p in io.input_list("curves")]
    metas = [json.loads(Path(p).read_text(encoding="utf-8")) for p in io.input_list("meta")]
    summary = summary_table(tables, metas)
    write_csv(summary, io.output("summary"), synthetic=synthetic)
    fig = summary_figure(curves, summary, lang)
    note = ("Kurve über das 10- bis 90-%-Quantil der Dosen der behandelten Kommunen; hell: simultanes 95-%-Band, "
            "dunkel: punktweise; Titel: mittlere Steigung ACRT° (SE)." if lang == "de" else
            "Curve over the 10-90% quantiles of the treated municipalities' doses; light: uniform 95% band, "
            "dark: pointwise; title: average slope ACRT° (SE).")
    n = None
    if len(summary):
        lo, hi = int(summary["n_treated"].min()), int(summary["n_treated"].max())
        n = (f"{style.format_int(lo, lang)}–{style.format_int(hi, lang)} " if lo != hi else f"{style.format_int(lo, lang)} ") \
            + ("behandelte Kommunen mit Dosis" if lang == "de" else "treated municipalities with a dose")
    files = style.finish_figure(fig, Path(io.output("figure")).with_suffix(""), synthetic=synthetic, n=n, note=note,
                                lang=lang)
    assert {p.resolve() for p in files} == {Path(io.output("figure")).resolve(), Path(io.output("pdf")).resolve()}
    log.info("dose summary: %d specs", len(metas))
    return summary
