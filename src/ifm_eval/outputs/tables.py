"""Result tables, each as CSV (raw numbers) + LaTeX (booktabs) + HTML (formatted):

- ``main_results``: overall ATT of the main specification, estimator x outcome;
- ``all_specifications``: every model specification (appendix);
- ``balance``: municipality characteristics and pre-period outcomes by start cohort;
- ``coverage``: data coverage / quality of the panel sources (from ``data_quality.csv``);
- ``item_nonresponse``: item non-response of the harmonised survey variables;
- ``lineage``: rows in/out per stage and why (from ``lineage.csv``).

Main specifications are those with ``role: main`` in their metadata (``spec.role``), never
guessed from names; the truth comparison is written on stand-in data only, from the declared
true cell effects.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ifm_eval.outputs import style
from ifm_eval.outputs.disclosure import min_cell, suppress_table
from ifm_eval.outputs.figures import (
    OUTCOME_COUNTS,
    _estimator_rank,
    cohort_group,
    model_table,
    overall_rows,
    spec_of,
)
from ifm_eval.outputs.style import format_number, label
from ifm_eval.outputs.tablefmt import write_table

log = logging.getLogger(__name__)

SPEC_FIELDS = ("control_group", "method", "anticipation", "covariates", "cluster", "treatment_rule", "weights", "sample")


def _t(lang: str, de: str, en: str) -> str:
    return de if lang == "de" else en


def _event_support(est: pd.DataFrame, model: str) -> tuple[float, float]:
    ev = est[(est["model"] == model) & (est["kind"] == "event_time") & est["estimate"].notna()]["event_time"].dropna()
    ev = ev[ev >= 0]
    return (float(ev.min()), float(ev.max())) if len(ev) else (np.nan, np.nan)


def main_results(est: pd.DataFrame, models: pd.DataFrame) -> pd.DataFrame:
    """Long table: one row per (estimator, outcome) main model with its headline overall
    effect (column ``aggregation``: ``dynamic`` = mean of the event-time effects over
    ``event_min..event_max``; ``att`` = the estimator's overall ATT)."""
    ov = overall_rows(est).merge(models[["model", "is_main"]], on="model")
    ov = ov[ov["is_main"]].copy()
    ov["rank"] = ov["estimator"].map(_estimator_rank)
    ov = ov.sort_values(["rank", "outcome_key"])
    sup = [_event_support(est, m) if a == "dynamic" else (np.nan, np.nan) for m, a in zip(ov["model"], ov["aggregation"], strict=True)]
    ov["event_min"] = [a for a, _ in sup]
    ov["event_max"] = [b for _, b in sup]
    return ov[["estimator", "outcome_key", "model", "aggregation", "event_min", "event_max", "estimate", "se", "ci_low", "ci_high", "p",
               "n_units", "n_obs", "n_clusters"]].rename(columns={"outcome_key": "outcome"}).reset_index(drop=True)


def truth_comparison(est: pd.DataFrame, models: pd.DataFrame, meta: dict[str, dict], cells: pd.DataFrame,
                     used: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Each main estimate next to its MATCHED planted truth (stand-in data): the true cell
    effects of ``truth_counts`` averaged with the spec's weights over exactly the treated
    observations the estimator used (``used``: model -> its used treated observations), for
    the same aggregate (:func:`ifm_eval.validation.matched_truth`);
    estimate, SE, truth, difference and difference in SE units. ``cells``:
    :func:`ifm_eval.validation.cell_effects` of the panel (stand-in data only)."""
    from ifm_eval.outputs.truth import z_difference
    from ifm_eval.validation import matched_truth

    cols = ["estimator", "outcome", "model", "aggregation", "truth_aggregation", "event_min", "event_max", "estimate", "se",
            "truth", "difference", "z", "covered", "n_obs_truth"]
    if cells is None:
        raise ValueError("truth comparison without the true cell effects (stand-in data only)")
    rows = []
    mr = main_results(est, models)
    for r in mr.itertuples():
        spec = spec_of(meta, r.model)
        if f"tau_{spec['outcome']}" not in cells:
            raise KeyError(f"true cell effects have no tau_{spec['outcome']} (model {r.model})")
        if r.model not in used:
            raise KeyError(f"no used observations of model {r.model!r} (stand-in runs declare them)")
        headline = (meta[r.model].get("info") or {}).get("headline") or {}
        if headline.get("term") != r.aggregation:
            raise ValueError(f"model {r.model}: headline {headline.get('term')!r} is not the reported {r.aggregation!r}")
        m = matched_truth(cells, spec["outcome"], used[r.model], headline)
        if m.overall is None or not np.isfinite(m.overall):
            continue
        rows.append({"estimator": r.estimator, "outcome": r.outcome, "model": r.model, "aggregation": r.aggregation,
                     "truth_aggregation": m.aggregation, "event_min": m.event_min, "event_max": m.event_max,
                     "estimate": r.estimate, "se": r.se, "truth": m.overall, "difference": r.estimate - m.overall,
                     "z": z_difference(r.estimate, m.overall, r.se),
                     "covered": bool(r.ci_low <= m.overall <= r.ci_high) if r.ci_low == r.ci_low else None,
                     "n_obs_truth": m.n_obs})
    return pd.DataFrame(rows, columns=cols)


def all_specifications(est: pd.DataFrame, models: pd.DataFrame, meta: dict[str, dict]) -> pd.DataFrame:
    ov = overall_rows(est).merge(models[["model", "is_main", "spec_dict"]], on="model", how="left", validate="many_to_one")
    rows = []
    for r in ov.itertuples():
        spec = r.spec_dict
        row = {"model": r.model, "estimator": r.estimator, "outcome": r.outcome_key, "main": bool(r.is_main), "aggregation": r.aggregation}
        for f in SPEC_FIELDS:
            v = spec.get(f)
            row[f] = ", ".join(map(str, v)) if isinstance(v, (list, tuple)) else (None if v is None else str(v))
        row |= {"estimate": r.estimate, "se": r.se, "ci_low": r.ci_low, "ci_high": r.ci_high, "p": r.p,
                "n_units": r.n_units, "n_clusters": r.n_clusters, "runtime_s": meta[r.model]["runtime_seconds"]}
        rows.append(row)
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    df["rank"] = df["estimator"].map(_estimator_rank)
    df = df.sort_values(["outcome", "rank", "main", "model"], ascending=[True, True, False, True]).drop(columns="rank")
    return df.dropna(axis=1, how="all").reset_index(drop=True)


def balance_table(panel: pd.DataFrame, threshold: int, lang: str, year: int = 2016) -> pd.DataFrame:
    """Characteristics by start-cohort group; pre-period (``year``) outcome rates person-weighted."""
    first = panel.drop_duplicates("ags").copy()
    first["start"] = pd.to_datetime(first["cohort_month"]).dt.to_period("M")
    first["cohort_group"], first["group_rank"] = cohort_group(first["start"], lang)
    pre = panel[pd.to_datetime(panel["month"]).dt.year == year].merge(first[["ags", "cohort_group", "group_rank"]], on="ags")
    covs = [c for c in ("log_population", "urbanisation", "refugees_per_1000_2017", "density", "funded_vza") if c in first]
    rows = []
    groups = sorted(first["group_rank"].unique(), key=lambda g: (g < 0, g))
    for g in groups + ["all"]:
        sub = first if g == "all" else first[first["group_rank"] == g]
        psub = pre if g == "all" else pre[pre["group_rank"] == g]
        row = {"cohort_group": _t(lang, "Alle", "All") if g == "all" else sub["cohort_group"].iloc[0],
               "n_municipalities": int(sub["ags"].nunique())}
        for c in covs:
            row[c] = float(pd.to_numeric(sub[c], errors="coerce").mean())
        months = max(psub["month"].nunique(), 1)
        row["n_persons"] = float(psub["refugees"].sum() / months) if len(psub) else np.nan  # mean monthly stock
        for o, cnt in OUTCOME_COUNTS.items():
            if cnt in psub:
                den = psub["refugees"].sum()
                row[f"rate_{o}_{year}"] = 100 * psub[cnt].sum() / den if den > 0 else np.nan
        rows.append(row)
    df = pd.DataFrame(rows)
    # persons per group: primary + secondary suppression across groups (the "all" row is the total)
    sup = suppress_table(df[["n_persons"]].iloc[:-1].round(), threshold, row_totals=False, col_totals=True)
    df.loc[df.index[:-1], "n_persons"] = sup.table["n_persons"].to_numpy()
    df["n_persons"] = df["n_persons"].round()
    for o in OUTCOME_COUNTS:
        c = f"rate_{o}_{year}"
        if c in df:
            df.loc[df["n_persons"].isna(), c] = np.nan
    return df


INR_COLUMNS = ["wave", "variable", "n", "n_refused", "n_dont_know", "n_not_applicable",
               "n_not_asked", "n_system", "n_missing", "share_missing"]


def item_nonresponse(quality: pd.DataFrame) -> pd.DataFrame:
    """Item non-response by survey wave and raw variable, with missing counts by reason
    (``share_missing`` in per cent).

    Taken from the data-quality table of the panel stage (rows ``table ==
    'item_nonresponse'``, built by :func:`ifm_eval.ingest.survey_harmonise.item_nonresponse`).
    """
    inr = quality.loc[quality["table"] == "item_nonresponse", INR_COLUMNS].copy()
    inr["share_missing"] = 100 * inr["share_missing"]
    return inr.sort_values(["wave", "variable"]).reset_index(drop=True)


def _safe_passthrough(df: pd.DataFrame, threshold: int) -> pd.DataFrame:
    """Copy a processed table for publication, suppressing small person counts if any."""
    from ifm_eval.outputs.disclosure import is_person_count_column

    cols = [c for c in df.columns if is_person_count_column(c) and pd.api.types.is_numeric_dtype(df[c])]
    if cols:
        df = suppress_table(df, threshold, columns=cols, row_totals=False, col_totals=False).table
    return df


def build_tables(cfg: dict[str, Any], est: pd.DataFrame, meta: dict[str, dict[str, Any]], panel: pd.DataFrame,
                 cells: pd.DataFrame | None, quality: pd.DataFrame, lineage: pd.DataFrame, out: Path,
                 used: dict[str, pd.DataFrame] | None = None) -> list[Path]:
    """Every result table (CSV, LaTeX, HTML) into ``out``; the truth comparison only with the
    true cell effects ``cells`` (stand-in data; None on real data). ``quality``: the panel's
    data-quality table (coverage and item non-response rows, column ``table``)."""
    lang = style.language(cfg)
    synthetic = style.is_synthetic(cfg)
    threshold = min_cell(cfg)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    models = model_table(est, meta)
    written: list[Path] = []

    # main results -------------------------------------------------------------------
    mr = main_results(est, models)
    outcomes = sorted(mr["outcome"].unique()) if len(mr) else []
    wide = []
    for e in sorted(mr["estimator"].unique(), key=_estimator_rank) if len(mr) else []:
        row = {"estimator": label(e, lang)}
        for o in outcomes:
            r = mr[(mr["estimator"] == e) & (mr["outcome"] == o)]
            if len(r):
                r = r.iloc[0]
                row[o] = (f"{format_number(r.estimate, 2, lang)} ({format_number(r.se, 2, lang)}) "
                          f"[{format_number(r.ci_low, 2, lang)}; {format_number(r.ci_high, 2, lang)}]")
            else:
                row[o] = "–"
        wide.append(row)
    wide_df = pd.DataFrame(wide, columns=["estimator"] + outcomes)
    heads = {"estimator": _t(lang, "Schätzer", "Estimator")} | {o: label(o, lang) for o in outcomes}
    written += write_table(wide_df, out / "main_results", csv_frame=mr, headers=heads, kinds={c: "text" for c in wide_df},
                           caption=_t(lang, "Hauptergebnisse: durchschnittlicher Effekt (ATT, Prozentpunkte)", "Main results: average effect (ATT, percentage points)"),
                           note=_t(lang, "ATT (Standardfehler) [95-%-Konfidenzintervall] in Prozentpunkten; Standardfehler geclustert. "
                                         "Gesamteffekt: Callaway & Sant'Anna und TWFE dynamisch: ungewichteter Mittelwert der "
                                         "Ereigniszeit-Effekte ab Monat 0 im Ereignisfenster; übrige Schätzer: Mittel über die behandelten "
                                         "Kommune-Monate (TWFE statisch: Regressionskoeffizient).",
                                   "ATT (standard error) [95% confidence interval] in percentage points; clustered standard errors. "
                                   "Overall effect: Callaway & Sant'Anna and TWFE dynamic: unweighted mean of the event-time effects from "
                                   "month 0 within the event window; other estimators: mean over treated municipality-months (TWFE static: "
                                   "regression coefficient)."),
                           lang=lang, synthetic=synthetic).values()

    # truth comparison (stand-in data) -----------------------------------------------------
    if synthetic:
        if cells is None:
            raise ValueError("stand-in run without the true cell effects (truth_counts): the rule must declare them")
        tc = truth_comparison(est, models, meta, cells, used or {})
        show = tc.copy()
        if len(show):
            show["estimator"] = show["estimator"].map(lambda e: label(e, lang))
            show["outcome"] = show["outcome"].map(lambda o: label(o, lang))
            show["covered"] = show["covered"].map({True: _t(lang, "ja", "yes"), False: _t(lang, "nein", "no")})
            show["months"] = [f"{int(a)}–{int(b)}" if a == a and b == b else "–" for a, b in zip(show["event_min"], show["event_max"], strict=True)]
        show = show[[c for c in ("estimator", "outcome", "months", "estimate", "se", "truth", "difference", "z", "covered") if c in show]]
        written += write_table(
            show, out / "truth_comparison", csv_frame=tc, lang=lang, synthetic=synthetic,
            kinds={"estimate": "num", "se": "num", "truth": "num", "difference": "num", "z": "num"}, digits={"z": 1},
            headers={"estimator": _t(lang, "Schätzer", "Estimator"), "outcome": _t(lang, "Ergebnis", "Outcome"),
                     "months": _t(lang, "Monate", "Months"), "estimate": _t(lang, "Schätzung (PP)", "Estimate (pp)"),
                     "se": _t(lang, "SF", "SE"), "truth": _t(lang, "Wahrer Wert (PP)", "Truth (pp)"),
                     "difference": _t(lang, "Differenz (PP)", "Difference (pp)"), "z": _t(lang, "Differenz in SF", "Difference in SE"),
                     "covered": _t(lang, "im 95-%-KI", "in 95% CI")},
            caption=_t(lang, "Schätzung und eingepflanzter wahrer Effekt derselben Aggregation (Ersatzdaten)",
                       "Estimate and planted true effect of the same aggregate (stand-in data)"),
            note=_t(lang, "Wahrer Wert: wahre Effekte der Kommune-Monat-Zellen (beobachteter minus kontrafaktischer Bestand je "
                          "Geflüchtetem) über genau die behandelten Beobachtungen, die der Schätzer verwendet (Stichprobe, Zellen, "
                          "Ereignisfenster), mit den Gewichten der Spezifikation und in derselben Aggregation (Monate: Ereigniszeiten "
                          "nach Start). Differenz in SF = (Schätzung − wahrer Wert) / SF.",
                    "Truth: true effects of the municipality-month cells (observed minus counterfactual stock per refugee) over exactly "
                    "the treated observations the estimator uses (sample, cells, event window), with the spec's weights and in the same "
                    "aggregation (months: event times after the start). Difference in SE = (estimate − truth) / SE.")).values()

    # all specifications -----------------------------------------------------------------
    al = all_specifications(est, models, meta)
    kinds = {"estimate": "num", "se": "num", "ci_low": "num", "ci_high": "num", "p": "p", "n_units": "int", "n_clusters": "int", "runtime_s": "num"}
    digits = {"runtime_s": 1}
    heads = {"model": "Modell" if lang == "de" else "Model", "estimator": _t(lang, "Schätzer", "Estimator"), "outcome": _t(lang, "Ergebnis", "Outcome"),
             "main": _t(lang, "Haupt", "Main"), "estimate": "ATT", "se": _t(lang, "SF", "SE"), "ci_low": _t(lang, "KI unten", "CI low"),
             "ci_high": _t(lang, "KI oben", "CI high"), "p": "p", "n_units": "N", "n_clusters": "Cluster", "runtime_s": _t(lang, "Laufzeit (s)", "Runtime (s)")}
    show = al.copy()
    if "main" in show:
        show["main"] = show["main"].map({True: "✓", False: ""})
    written += write_table(show, out / "all_specifications", csv_frame=al, headers=heads, kinds=kinds, digits=digits, lang=lang, synthetic=synthetic,
                           caption=_t(lang, "Alle Spezifikationen: Gesamteffekt (ATT)", "All specifications: overall effect (ATT)")).values()

    # balance ----------------------------------------------------------------------------
    bal = balance_table(panel, threshold, lang)
    heads = {"cohort_group": _t(lang, "Startkohorte", "Start cohort"), "n_municipalities": _t(lang, "Kommunen", "Municipalities"),
             "log_population": _t(lang, "log. Bevölkerung", "log population"), "urbanisation": _t(lang, "Verstädterung", "Urbanisation"),
             "refugees_per_1000_2017": _t(lang, "Geflüchtete je 1.000 (2017)", "Refugees per 1,000 (2017)"),
             "density": _t(lang, "Dichte (EW/km²)", "Density (inh./km²)"), "funded_vza": _t(lang, "Geförderte VZÄ", "Funded FTE"),
             "n_persons": _t(lang, "Geflüchtete AU (Ø 2016)", "Refugees AU (mean 2016)")}
    heads |= {f"rate_{o}_2016": f"{label(o, lang)} 2016 (%)" for o in OUTCOME_COUNTS}
    written += write_table(bal, out / "balance", headers=heads, kinds={"n_municipalities": "int", "n_persons": "int"}, lang=lang, synthetic=synthetic,
                           caption=_t(lang, "Merkmale nach Startkohorte (Mittelwerte; Quoten personengewichtet, 2016)",
                                      "Characteristics by start cohort (means; rates person-weighted, 2016)"),
                           note=_t(lang, f"Zellen mit weniger als {threshold} Personen unterdrückt (–).", f"Cells with fewer than {threshold} persons suppressed (–).")).values()

    # coverage, item non-response, lineage --------------------------------------------------
    coverage = quality.loc[quality["table"] != "item_nonresponse"].dropna(axis=1, how="all")
    cov = _safe_passthrough(coverage, threshold)
    written += write_table(cov, out / "coverage", lang=lang, synthetic=synthetic,
                           caption=_t(lang, "Datenabdeckung und Datenqualität der Quellen", "Data coverage and quality of the sources")).values()
    inr = item_nonresponse(quality)
    written += write_table(inr, out / "item_nonresponse", lang=lang, synthetic=synthetic, kinds={"share_missing": "num"}, digits={"share_missing": 1},
                           headers={"wave": _t(lang, "Welle", "Wave"), "variable": "Variable", "n": "N",
                                    "n_refused": _t(lang, "keine Angabe", "refused"), "n_dont_know": _t(lang, "weiß nicht", "don't know"),
                                    "n_not_applicable": _t(lang, "trifft nicht zu", "not applicable"), "n_not_asked": _t(lang, "nicht gefragt", "not asked"),
                                    "n_system": _t(lang, "systemfehlend", "system missing"), "n_missing": _t(lang, "fehlend", "missing"),
                                    "share_missing": _t(lang, "fehlend (%)", "missing (%)")},
                           caption=_t(lang, "Item-Nonresponse der Umfragevariablen (Kommunen)", "Item non-response of the survey variables (municipalities)")).values()
    lin = _safe_passthrough(lineage, threshold)
    written += write_table(lin, out / "lineage", lang=lang, synthetic=synthetic,
                           caption=_t(lang, "Datenherkunft: Zeilen je Verarbeitungsschritt", "Lineage: rows per processing step")).values()
    log.info("tables: %d file(s)", len(written))
    return written
