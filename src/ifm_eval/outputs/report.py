"""The final evaluation report: self-contained HTML and PDF (typst), German by default.

Structure: the report is a list of *section builders* (:data:`SECTION_BUILDERS`). Each is a
function ``builder(ctx) -> Section | None`` reading only the :class:`Context` (result files
under ``results/``); a builder that returns ``None`` (its result files do not exist yet) is
skipped. Later analysis stages plug in by dropping result files into
``results/{inference,sensitivity,power,heterogeneity}/`` (generic builders render every
CSV table, PNG figure and ``summary.json`` there) or by registering a dedicated builder with
:func:`register_section`.

Every number in the text is computed from result files (estimates, tables written by the
tables/descriptives stages, ``truth.json`` on stand-in data); none is typed by hand.
Paragraph strings support ``**bold**`` only.

Rendering: HTML with all images inlined as base64; PDF through ``typst.compile``. A
stand-in run carries "SYNTHETISCHE DATEN / SYNTHETIC DATA" on every page (header and
diagonal watermark) and in a banner of the HTML.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import logging
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from ifm_eval import paths as P
from ifm_eval.outputs import style
from ifm_eval.outputs.figures import load_estimates, model_table
from ifm_eval.outputs.style import SYNTHETIC_MARK, format_int, format_number, format_pct, label
from ifm_eval.outputs.targets import figures_dir, report_paths, tables_dir
from ifm_eval.outputs.truth import PlantedTruth, load_truth

log = logging.getLogger(__name__)

PACKAGES = ("ifm_eval", "numpy", "pandas", "scipy", "statsmodels", "pyfixest", "matplotlib", "geopandas",
            "pyarrow", "snakemake", "typst", "pyreadstat", "linearmodels")
PLUGIN_DIRS = {
    "inference": ("Inferenz mit wenigen Clustern", "Inference with few clusters"),
    "sensitivity": ("Sensitivität gegenüber Verletzungen paralleler Trends", "Sensitivity to violations of parallel trends"),
    "power": ("Minimal nachweisbare Effekte (Power)", "Minimum detectable effects (power)"),
    "heterogeneity": ("Heterogenität und Dosis", "Heterogeneity and dose"),
}


# ---------------------------------------------------------------------- document model
@dataclass
class Block:
    kind: str  # "p" | "list" | "figure" | "table" | "code"
    content: Any
    caption: str | None = None


@dataclass
class Section:
    key: str
    title: str
    blocks: list[Block] = field(default_factory=list)

    def p(self, text: str) -> Section:
        self.blocks.append(Block("p", text))
        return self

    def items(self, items: list[str]) -> Section:
        self.blocks.append(Block("list", items))
        return self

    def figure(self, path: Path, caption: str) -> Section:
        if Path(path).is_file():
            self.blocks.append(Block("figure", Path(path), caption))
        return self

    def table(self, df: pd.DataFrame, caption: str) -> Section:
        self.blocks.append(Block("table", df, caption))
        return self

    def code(self, text: str, caption: str | None = None) -> Section:
        self.blocks.append(Block("code", text, caption))
        return self


@dataclass
class Context:
    cfg: dict[str, Any]
    lang: str
    synthetic: bool
    results: Path
    est: pd.DataFrame
    meta: dict[str, dict]
    models: pd.DataFrame
    truth: PlantedTruth | None
    tables: dict[str, pd.DataFrame]
    figures: Path
    bench: pd.DataFrame
    started: float = 0.0

    def t(self, de: str, en: str) -> str:
        return de if self.lang == "de" else en

    def num(self, x: Any, digits: int = 2, signed: bool = False) -> str:
        return format_number(x, digits, self.lang, signed)

    def pct(self, x: Any, digits: int = 0) -> str:
        return format_pct(x, digits, self.lang)

    def int(self, x: Any) -> str:
        return format_int(x, self.lang)


def _read_table(path: Path) -> pd.DataFrame | None:
    """A published CSV without its stand-in mark column (the report marks every page)."""
    if not path.is_file():
        return None
    return pd.read_csv(path).drop(columns="data_source", errors="ignore")


def read_bench(logs_dir: str | Path = "logs") -> pd.DataFrame:
    """Run time per rule from Snakemake benchmark files ``logs/bench/**/*.tsv``."""
    rows = []
    root = Path(logs_dir) / "bench"
    for p in sorted(root.rglob("*.tsv")) if root.is_dir() else []:
        try:
            df = pd.read_csv(p, sep="\t")
        except Exception:  # pragma: no cover - malformed benchmark
            continue
        if "s" not in df or df.empty:
            continue
        rows.append({"job": str(p.relative_to(root).with_suffix("")), "seconds": float(df["s"].mean()),
                     "max_rss_mb": float(df["max_rss"].mean()) if "max_rss" in df and pd.api.types.is_numeric_dtype(df["max_rss"]) else np.nan})
    return pd.DataFrame(rows, columns=["job", "seconds", "max_rss_mb"])


def load_context(cfg: dict[str, Any], logs_dir: str | Path = "logs") -> Context:
    results = P.results_dir(cfg)
    est, meta = load_estimates(results)
    tdir = tables_dir(cfg)
    names = ["main_results", "all_specifications", "balance", "coverage", "item_nonresponse", "lineage",
             "descriptives_comparison", "descriptives_shares", "truth_comparison"]
    tables = {n: t for n in names if (t := _read_table(tdir / f"{n}.csv")) is not None}
    return Context(cfg=cfg, lang=style.language(cfg), synthetic=style.is_synthetic(cfg), results=results, est=est, meta=meta,
                   models=model_table(est, meta), truth=load_truth(cfg), tables=tables,
                   figures=figures_dir(cfg), bench=read_bench(logs_dir))


# ---------------------------------------------------------------------- helpers on results
def outcome_keys(ctx: Context) -> list[str]:
    return sorted(set(ctx.models["outcome_key"])) if len(ctx.models) else []


def main_row(ctx: Context, outcome: str, estimator: str = "callaway_santanna") -> pd.Series | None:
    mr = ctx.tables.get("main_results")
    if mr is None or mr.empty:
        return None
    sub = mr[(mr["outcome"] == outcome) & (mr["estimator"] == estimator)]
    if sub.empty:
        sub = mr[mr["outcome"] == outcome]
    return sub.iloc[0] if len(sub) else None


def event_rows(ctx: Context, model: str) -> pd.DataFrame:
    d = ctx.est[(ctx.est["model"] == model) & (ctx.est["kind"] == "event_time")]
    return d.sort_values("event_time")


@dataclass
class _Match:
    value: float
    event_min: float
    event_max: float
    z: float


def matched_truth(ctx: Context, r: pd.Series) -> _Match | None:
    """Planted truth of the same aggregate as main-results row ``r``, read from the
    ``truth_comparison`` table (stand-in data only), or None."""
    tc = ctx.tables.get("truth_comparison")
    if not ctx.synthetic or tc is None or tc.empty:
        return None
    hit = tc[tc["model"] == r["model"]]
    if hit.empty:
        return None
    h = hit.iloc[0]
    return _Match(float(h["truth"]), h["event_min"], h["event_max"], float(h["z"]))


def aggregate_phrase(ctx: Context, r: pd.Series) -> str:
    """What the overall number is, in words (no ambiguous "overall ATT")."""
    agg = str(r.get("aggregation", "att"))
    lo, hi = r.get("event_min", np.nan), r.get("event_max", np.nan)
    if agg == "dynamic" and pd.notna(lo) and pd.notna(hi):
        return ctx.t(f"im Mittel der Monate {ctx.int(lo)} bis {ctx.int(hi)} nach dem Start (jeder Monat gleich gewichtet)",
                     f"averaged over months {ctx.int(lo)} to {ctx.int(hi)} after the start (each month weighted equally)")
    if r.get("estimator") == "twfe_static":
        return ctx.t("als statischer TWFE-Koeffizient", "as the static TWFE coefficient")
    return ctx.t("im Mittel über alle behandelten Kommune-Monate", "averaged over all treated municipality-months")


def cluster_phrase(ctx: Context, r: pd.Series) -> str:
    spec = (ctx.meta.get(r["model"], {}) or {}).get("spec", {}) or {}
    unit = {"kreis": ("Kreisen", "districts"), "verband_id": ("Verbänden", "associations")}.get(spec.get("cluster"), ("Clustern", "clusters"))
    return ctx.t(f"{ctx.int(r['n_units'])} Kommunen in {ctx.int(r['n_clusters'])} {unit[0]}",
                 f"{ctx.int(r['n_units'])} municipalities in {ctx.int(r['n_clusters'])} {unit[1]}")


def baseline_rate(ctx: Context, outcome: str) -> float | None:
    bal = ctx.tables.get("balance")
    col = next((c for c in (bal.columns if bal is not None else []) if c.startswith(f"rate_{outcome}_")), None)
    if bal is None or col is None or bal.empty:
        return None
    v = pd.to_numeric(bal[col], errors="coerce").iloc[-1]
    return float(v) if v == v else None


def _fmt_df(df: pd.DataFrame, ctx: Context, max_rows: int = 40) -> pd.DataFrame:
    """Format a results table for display (numbers per language)."""
    from ifm_eval.outputs.tablefmt import format_frame

    kinds = {}
    for c in df.columns:
        if c in {"p"}:
            kinds[c] = "p"
        elif c.startswith("n_") or c in {"n"}:
            kinds[c] = "int"
    return format_frame(df.head(max_rows), kinds, ctx.lang)


# ---------------------------------------------------------------------- section builders
def sec_summary(ctx: Context) -> Section:
    s = Section("summary", ctx.t("Zusammenfassung", "Summary"))
    if ctx.synthetic:
        s.p(ctx.t("**Achtung: Dieser Bericht beruht auf synthetischen Ersatzdaten (Stand-in).** Alle Zahlen illustrieren die "
                  "Auswertungskette; sie sind keine Ergebnisse über das Integrationsmanagement in Baden-Württemberg.",
                  "**Caution: this report is based on synthetic stand-in data.** All numbers illustrate the pipeline; they are "
                  "not findings about integration management in Baden-Württemberg."))
    comp = ctx.tables.get("descriptives_comparison")
    if comp is not None and len(comp):
        c = comp.set_index(comp.columns[0]) if "item" not in comp else comp.set_index("item")
        col = "replicated" if "replicated" in comp else comp.columns[3]
        n_items = len(comp)
        maxdev = float(comp["difference"].abs().max()) if "difference" in comp else np.nan
        sentence = ctx.t(
            f"Die Beschreibung der Umsetzung repliziert {ctx.int(n_items)} Kennzahlen des Kurzberichts; die größte Abweichung "
            f"beträgt {ctx.num(maxdev, 1)} Prozentpunkte.",
            f"The implementation chapter replicates {ctx.int(n_items)} figures of the short report; the largest deviation is "
            f"{ctx.num(maxdev, 1)} percentage points.")
        if "share_by_2018_01" in c.index and "share_by_2018_05" in c.index:
            sentence += ctx.t(
                f" Im Januar 2018 arbeiteten in {ctx.pct(c.loc['share_by_2018_01', col])} der Kommunen Integrationsmanager/-innen, "
                f"im Mai 2018 in {ctx.pct(c.loc['share_by_2018_05', col])}.",
                f" In January 2018 integration managers worked in {ctx.pct(c.loc['share_by_2018_01', col])} of municipalities, "
                f"in May 2018 in {ctx.pct(c.loc['share_by_2018_05', col])}.")
        s.p(sentence)
    items = []
    for o in outcome_keys(ctx):
        r = main_row(ctx, o)
        if r is None:
            continue
        sig = (r["ci_low"] > 0) or (r["ci_high"] < 0)
        base = baseline_rate(ctx, o)
        txt = ctx.t(
            f"**{label(o, 'de')}:** Effekt auf die Quote {aggregate_phrase(ctx, r)}: {ctx.num(r['estimate'], 2, signed=True)} "
            f"Prozentpunkte (95-%-Konfidenzintervall {ctx.num(r['ci_low'])} bis {ctx.num(r['ci_high'])}; {label(r['estimator'], 'de')}, "
            f"N = {cluster_phrase(ctx, r)}"
            + (f"; Quote 2016, vor dem Start: {ctx.pct(base, 1)}" if base is not None else "") + ") – "
            + ("statistisch von null verschieden." if sig else "statistisch nicht von null zu unterscheiden."),
            f"**{label(o, 'en')}:** effect on the rate {aggregate_phrase(ctx, r)}: {ctx.num(r['estimate'], 2, signed=True)} percentage "
            f"points (95% confidence interval {ctx.num(r['ci_low'])} to {ctx.num(r['ci_high'])}; {label(r['estimator'], 'en')}, "
            f"N = {cluster_phrase(ctx, r)}"
            + (f"; rate in 2016, before the start: {ctx.pct(base, 1)}" if base is not None else "") + ") – "
            + ("statistically different from zero." if sig else "not statistically distinguishable from zero."))
        m = matched_truth(ctx, r)
        if m is not None:
            z = m.z
            txt += ctx.t(
                f" Eingepflanzter wahrer Effekt derselben Größe: {ctx.num(m.value, 2, signed=True)} Prozentpunkte "
                f"(Abweichung {ctx.num(z, 1, signed=True)} Standardfehler).",
                f" Planted true effect of the same quantity: {ctx.num(m.value, 2, signed=True)} percentage points "
                f"(deviation {ctx.num(z, 1, signed=True)} standard errors).")
        items.append(txt)
    if items:
        s.items(items)
    tw = ctx.tables.get("main_results")
    naive = next((e for e in ("twfe", "twfe_static", "twfe_dynamic") if tw is not None and e in set(tw["estimator"])), None)
    if naive:
        diffs = []
        for o in outcome_keys(ctx):
            a, b = main_row(ctx, o, naive), main_row(ctx, o)
            if a is not None and b is not None and a["estimator"] == naive and b["estimator"] != naive:
                diffs.append(float(a["estimate"] - b["estimate"]))
        tc = ctx.tables.get("truth_comparison")
        if ctx.synthetic and tc is not None and len(tc) and naive in set(tc["estimator"]):
            bias_naive = float(tc.loc[tc["estimator"] == naive, "difference"].abs().mean())
            main_est = main_row(ctx, outcome_keys(ctx)[0])["estimator"] if outcome_keys(ctx) else None
            bias_main = float(tc.loc[tc["estimator"] == main_est, "difference"].abs().mean()) if main_est in set(tc["estimator"]) else np.nan
            s.p(ctx.t(f"Gegenüber dem jeweils passenden wahren Effekt liegt die naive Schätzung – {label(naive, 'de')} – im Mittel der "
                      f"Ergebnisgrößen um {ctx.num(bias_naive)} Prozentpunkte daneben, der Hauptschätzer um {ctx.num(bias_main)} "
                      "Prozentpunkte (Tabelle „Schätzung und eingepflanzter wahrer Effekt“ im Ergebnisteil).",
                      f"Against the matching true effect, the naive estimate – {label(naive, 'en')} – is off by {ctx.num(bias_naive)} "
                      f"percentage points on average across outcomes, the main estimator by {ctx.num(bias_main)} percentage points "
                      "(table \"Estimate and planted true effect\" in the results)."))
        elif diffs:
            d = float(np.mean(diffs))
            s.p(ctx.t(f"Die naive TWFE-Schätzung ({label(naive, 'de')}) liegt im Mittel der Ergebnisgrößen um {ctx.num(abs(d))} "
                      f"Prozentpunkte {'über' if d > 0 else 'unter'} dem Hauptschätzer – ein Hinweis auf Verzerrung durch gestaffelte, "
                      "heterogene Effekte.",
                      f"The naive TWFE estimate ({label(naive, 'en')}) lies {ctx.num(abs(d))} percentage points {'above' if d > 0 else 'below'} "
                      "the main estimator on average across outcomes – a sign of bias from staggered, heterogeneous effects."))
    return s


def sec_programme(ctx: Context) -> Section:
    s = Section("programme", ctx.t("Programm und Daten", "Programme and data"))
    s.p(ctx.t(
        "Im Pakt für Integration mit den Kommunen (PIK) fördert das Land Baden-Württemberg Stellen von Integrationsmanager/-innen (IM), "
        "die Geflüchtete in der Anschlussunterbringung im Sinne eines Case-Managements beraten und begleiten. Der Startzeitpunkt einer "
        "Kommune ist der Monat, in dem mindestens die Hälfte der für sie geförderten Stellen besetzt war.",
        "Under the Pact for Integration (PIK) the Land Baden-Württemberg funds posts of integration managers (IM) who counsel refugees in "
        "follow-up housing as case managers. A municipality's start is the month in which at least half of its funded posts had started."))
    bal = ctx.tables.get("balance")
    if bal is not None and len(bal):
        total = bal.iloc[-1]
        never = bal[bal["cohort_group"].astype(str).str.contains("nie|never")]
        n_never = int(never["n_municipalities"].sum()) if len(never) else 0
        s.p(ctx.t(
            f"Das Analysepanel umfasst {ctx.int(total['n_municipalities'])} Kommunen (Kommune × Monat); davon sind "
            f"{ctx.int(n_never)} nie behandelt. Ergebnisgrößen sind die Anteile der Geflüchteten in der Anschlussunterbringung mit "
            "sozialversicherungspflichtiger Beschäftigung, in Aus- oder Weiterbildung und mit B1-Sprachzertifikat.",
            f"The analysis panel covers {ctx.int(total['n_municipalities'])} municipalities (municipality × month), of which "
            f"{ctx.int(n_never)} are never treated. Outcomes are the shares of refugees in follow-up housing in employment subject "
            "to social insurance, in vocational/further training, and holding a B1 language certificate."))
    cov = ctx.tables.get("coverage")
    if cov is not None and "share_missing" in cov and "variable" in cov and len(cov):
        worst = cov.sort_values("share_missing", ascending=False).iloc[0]
        share = float(worst["share_missing"]) * (100 if float(cov["share_missing"].max()) <= 1 else 1)
        s.p(ctx.t(f"Datenlücken: am stärksten betroffen ist {worst['variable']} mit {ctx.pct(share, 1)} fehlenden Werten "
                  "(Tabelle zur Datenabdeckung im Anhang).",
                  f"Data gaps: most affected is {worst['variable']} with {ctx.pct(share, 1)} missing values (coverage table in the appendix)."))
    return s


def sec_implementation(ctx: Context) -> Section | None:
    comp = ctx.tables.get("descriptives_comparison")
    d = ctx.figures / "descriptives"
    if comp is None and not d.is_dir():
        return None
    s = Section("implementation", ctx.t("Umsetzung des Integrationsmanagements", "Implementation of integration management"))
    s.p(ctx.t("Die folgenden Abbildungen replizieren die Grafiken des Kurzberichts aus den harmonisierten Umfrage- und Förderdaten. "
              "Anteile beziehen sich auf Kommunen mit gültiger Angabe.",
              "The following figures replicate the charts of the short report from the harmonised survey and funding data. Shares "
              "refer to municipalities with a valid answer."))
    captions = {
        "map_start": ("Start des IM nach Kommune", "IM start by municipality"),
        "start_month": ("Startmonat des IM", "IM start month"),
        "vza_per_municipality": ("Geförderte VZÄ pro Kommune", "Funded FTE per municipality"),
        "capacity_change": ("Veränderung der Beratungskapazitäten", "Change in counselling capacity"),
        "organisation": ("Organisation", "Organisation"),
        "decision_maker": ("Entscheidungsstellen", "Decision makers"),
        "target_legal_status": ("Zielgruppe: Rechtsstatus", "Target group: legal status"),
        "target_housing": ("Zielgruppe: Unterbringung", "Target group: housing"),
        "target_min_age": ("Zielgruppe: Mindestalter", "Target group: minimum age"),
        "target_arrival": ("Zielgruppe: Ankunftszeitraum", "Target group: arrival period"),
        "integration_plan": ("Nutzung des Integrationsplans", "Use of the integration plan"),
        "documentation": ("Dokumentation und Software", "Documentation and software"),
    }
    if comp is not None and len(comp):
        c = comp.set_index("item") if "item" in comp else comp
        def v(k: str) -> str:
            return ctx.pct(c.loc[k, "replicated"]) if k in c.index else "–"
        s.p(ctx.t(
            f"In {v('landratsamt')} der Kommunen wird das IM über das Landratsamt organisiert. Mehr Beratungskapazität als vorher "
            f"melden {v('share_more')} der Kommunen. Für 80–100\u00a0% ihrer Klientinnen und Klienten erstellen {v('80to100')} der "
            f"Kommunen einen Integrationsplan, {v('lt20')} für weniger als 20\u00a0%. Digital dokumentieren {v('digital')} der Kommunen.",
            f"In {v('landratsamt')} of municipalities IM is organised by the district office. {v('share_more')} report more counselling "
            f"capacity than before. {v('80to100')} draw up an integration plan for 80–100% of clients, {v('lt20')} for under 20%. "
            f"{v('digital')} document digitally."))
    for key, (de, en) in captions.items():
        s.figure(d / f"{key}.png", ctx.t(de, en))
    if comp is not None and len(comp):
        show = comp[[ctx.t("item_de", "item_en"), "qualifier", "published", "replicated", "difference", "n"]].copy()
        show.columns = [ctx.t("Kennzahl", "Figure"), "", ctx.t("Kurzbericht (%)", "Short report (%)"), ctx.t("Replikation (%)", "Replication (%)"),
                        ctx.t("Differenz (PP)", "Difference (pp)"), "N"]
        show["N"] = show["N"].map(ctx.int)
        for col in show.columns[2:5]:
            show[col] = show[col].map(lambda x: ctx.num(x, 1))
        show[""] = show[""].fillna("")
        s.table(show, ctx.t("Anteile im Vergleich zum Kurzbericht", "Shares compared with the short report"))
    return s


def sec_strategy(ctx: Context) -> Section:
    s = Section("strategy", ctx.t("Empirische Strategie", "Empirical strategy"))
    n_models = ctx.models["model"].nunique() if len(ctx.models) else 0
    ests = sorted(set(ctx.models["estimator"])) if len(ctx.models) else []
    ncl = ctx.est["n_clusters"].dropna()
    gt = ctx.est[ctx.est["kind"] == "att_gt"]
    n_coh = gt["cohort"].nunique() if len(gt) else 0
    s.p(ctx.t(
        "Die Kommunen beginnen zu unterschiedlichen Zeitpunkten mit dem IM (gestaffelte Einführung), fast alle Kommunen werden "
        "behandelt, und die Behandlung wird überwiegend auf Ebene der Verbände/Kreise zugewiesen. Deshalb ist die Zwei-Wege-"
        "Fixed-Effects-Regression (TWFE) nur die naive Vergleichsgröße; die Hauptschätzung verwendet den Schätzer von Callaway & "
        "Sant'Anna mit noch nicht behandelten Kommunen als Kontrollgruppe. Standardfehler sind auf Kreisebene geclustert.",
        "Municipalities start IM at different times (staggered adoption), almost all are treated, and treatment is mostly assigned "
        "at association/district level. Two-way fixed effects (TWFE) is therefore only the naive benchmark; the main estimate uses "
        "the Callaway & Sant'Anna estimator with not-yet-treated municipalities as controls. Standard errors are clustered by district."))
    s.p(ctx.t(
        "Alle Effekte sind Veränderungen der jeweiligen Quote (Anteil der Geflüchteten in der Anschlussunterbringung, in Prozent) und "
        "werden in Prozentpunkten (PP) angegeben. Der berichtete Gesamteffekt ist beim Hauptschätzer (und bei TWFE dynamisch) der "
        "ungewichtete Mittelwert der Ereigniszeit-Effekte ab dem Startmonat bis zum Ende des Ereignisfensters; bei Imputation, "
        "Gardner und Sun & Abraham das Mittel über alle behandelten Kommune-Monate im Fenster, bei TWFE statisch der "
        "Regressionskoeffizient. Die Zahlen der Schätzer sind daher nicht exakt dieselbe Größe.",
        "All effects are changes of the respective rate (share of refugees in follow-up housing, in per cent) and are given in "
        "percentage points (pp). The overall effect reported is, for the main estimator (and TWFE dynamic), the unweighted mean of the "
        "event-time effects from the start month to the end of the event window; for imputation, Gardner and Sun & Abraham the mean "
        "over all treated municipality-months in the window; for static TWFE the regression coefficient. The estimators' numbers are "
        "therefore not exactly the same quantity."))
    s.p(ctx.t(
        f"Geschätzt wurden {ctx.int(n_models)} Spezifikationen mit {ctx.int(len(ests))} Schätzern"
        + (f" ({', '.join(label(e, 'de') for e in ests)})" if ests else "")
        + (f"; höchstens {ctx.int(ncl.max())} Cluster" if len(ncl) else "")
        + (f"; {ctx.int(n_coh)} Startkohorten mit Gruppen-Zeit-Effekten" if n_coh else "") + ".",
        f"{ctx.int(n_models)} specifications were estimated with {ctx.int(len(ests))} estimators"
        + (f" ({', '.join(label(e, 'en') for e in ests)})" if ests else "")
        + (f"; at most {ctx.int(ncl.max())} clusters" if len(ncl) else "")
        + (f"; {ctx.int(n_coh)} start cohorts with group-time effects" if n_coh else "") + "."))
    return s


def sec_results(ctx: Context) -> Section | None:
    if ctx.est.empty:
        return None
    s = Section("results", ctx.t("Ergebnisse", "Results"))
    mr = ctx.tables.get("main_results")
    for o in outcome_keys(ctx):
        r = main_row(ctx, o)
        if r is None:
            continue
        ev = event_rows(ctx, r["model"])
        pre, post = ev[ev["event_time"] < 0], ev[ev["event_time"] >= 0]
        cover = float(((pre["ci_low"] <= 0) & (pre["ci_high"] >= 0)).mean() * 100) if len(pre) else np.nan
        txt = ctx.t(
            f"**{label(o, 'de')}.** {label(r['estimator'], 'de')} schätzt {aggregate_phrase(ctx, r)} einen Effekt von "
            f"{ctx.num(r['estimate'], 2, signed=True)} Prozentpunkten (Standardfehler {ctx.num(r['se'])}; N = {cluster_phrase(ctx, r)}).",
            f"**{label(o, 'en')}.** {label(r['estimator'], 'en')} estimates an effect of "
            f"{ctx.num(r['estimate'], 2, signed=True)} percentage points {aggregate_phrase(ctx, r)} (standard error {ctx.num(r['se'])}; "
            f"N = {cluster_phrase(ctx, r)}).")
        if len(pre):
            txt += ctx.t(
                f" Vor dem Start liegen die Koeffizienten im Mittel bei {ctx.num(pre['estimate'].mean(), 2, signed=True)} PP "
                f"(größter Betrag {ctx.num(pre['estimate'].abs().max())}); {ctx.pct(cover)} der punktweisen Vorperioden-KI "
                "überdecken null.",
                f" Before the start the coefficients average {ctx.num(pre['estimate'].mean(), 2, signed=True)} pp (largest "
                f"magnitude {ctx.num(pre['estimate'].abs().max())}); {ctx.pct(cover)} of the pointwise pre-period CIs cover zero.")
        if len(post):
            last = post.iloc[-1]
            txt += ctx.t(
                f" {ctx.int(last['event_time'])} Monate nach dem Start beträgt der Effekt {ctx.num(last['estimate'], 2, signed=True)} PP.",
                f" {ctx.int(last['event_time'])} months after the start the effect is {ctx.num(last['estimate'], 2, signed=True)} pp.")
        m = matched_truth(ctx, r)
        if m is not None:
            txt += ctx.t(
                f" Zum Vergleich: Der eingepflanzte wahre Effekt derselben Größe (Monate {ctx.int(m.event_min)} bis "
                f"{ctx.int(m.event_max)}) beträgt {ctx.num(m.value, 2, signed=True)} PP.",
                f" For comparison: the planted true effect of the same quantity (months {ctx.int(m.event_min)} to "
                f"{ctx.int(m.event_max)}) is {ctx.num(m.value, 2, signed=True)} pp.")
        s.p(txt)
        s.figure(ctx.figures / f"event_study_{o}.png", ctx.t(f"Ereignisstudie: {label(o, 'de')}", f"Event study: {label(o, 'en')}"))
    if mr is not None and len(mr):
        show = _read_table(tables_dir(ctx.cfg) / "main_results.csv")
        wide = show.pivot_table(index="estimator", columns="outcome", values="estimate", aggfunc="first")
        se = show.pivot_table(index="estimator", columns="outcome", values="se", aggfunc="first")
        disp = pd.DataFrame({label(o, ctx.lang): [f"{ctx.num(wide.loc[e, o], 2, signed=True)} ({ctx.num(se.loc[e, o])})"
                                                 if e in wide.index and o in wide.columns and wide.loc[e, o] == wide.loc[e, o] else "–"
                                                 for e in wide.index] for o in wide.columns})
        from ifm_eval.outputs.figures import _estimator_rank
        order = sorted(wide.index, key=_estimator_rank)
        disp.index = list(wide.index)
        disp = disp.loc[order]
        disp.insert(0, ctx.t("Schätzer", "Estimator"), [label(e, ctx.lang) for e in order])
        s.table(disp.reset_index(drop=True), ctx.t("Hauptergebnisse: Gesamteffekt in Prozentpunkten (Standardfehler); Definition je Schätzer "
                                                   "im Abschnitt Empirische Strategie",
                                                   "Main results: overall effect in percentage points (standard error); definition per "
                                                   "estimator in the section Empirical strategy"))
    tc = ctx.tables.get("truth_comparison")
    if ctx.synthetic and tc is not None and len(tc):
        show = pd.DataFrame({
            ctx.t("Schätzer", "Estimator"): tc["estimator"].map(lambda e: label(e, ctx.lang)),
            ctx.t("Ergebnis", "Outcome"): tc["outcome"].map(lambda o: label(o, ctx.lang)),
            ctx.t("Monate", "Months"): [f"{int(a)}–{int(b)}" if a == a and b == b else "–" for a, b in zip(tc["event_min"], tc["event_max"], strict=True)],
            ctx.t("Schätzung (PP)", "Estimate (pp)"): tc["estimate"].map(lambda x: ctx.num(x, 2, signed=True)),
            ctx.t("SF", "SE"): tc["se"].map(ctx.num),
            ctx.t("Wahrer Wert (PP)", "Truth (pp)"): tc["truth"].map(lambda x: ctx.num(x, 2, signed=True)),
            ctx.t("Differenz (PP)", "Difference (pp)"): tc["difference"].map(lambda x: ctx.num(x, 2, signed=True)),
            ctx.t("Differenz in SF", "Difference in SE"): tc["z"].map(lambda x: ctx.num(x, 1, signed=True)),
        })
        s.p(ctx.t("Auf den Ersatzdaten ist der wahre Effekt bekannt. Die folgende Tabelle stellt jede Hauptschätzung dem eingepflanzten "
                  "Effekt derselben Aggregation gegenüber (gleiche Ereigniszeiten bzw. Kohorte-Monat-Zellen und Gewichte).",
                  "On the stand-in data the true effect is known. The following table compares each main estimate with the planted "
                  "effect of the same aggregate (same event times or cohort-month cells and weights)."))
        s.table(show, ctx.t("Schätzung und eingepflanzter wahrer Effekt (Ersatzdaten)", "Estimate and planted true effect (stand-in data)"))
    return s


def sec_robustness(ctx: Context) -> Section | None:
    al = ctx.tables.get("all_specifications")
    if al is None or al.empty:
        return None
    s = Section("robustness", ctx.t("Robustheit", "Robustness"))
    items = []
    for o, g in al.groupby("outcome"):
        items.append(ctx.t(
            f"{label(o, 'de')}: {ctx.int(len(g))} Spezifikationen, ATT zwischen {ctx.num(g['estimate'].min(), 2, signed=True)} und "
            f"{ctx.num(g['estimate'].max(), 2, signed=True)} PP; {ctx.int(((g['ci_low'] > 0) | (g['ci_high'] < 0)).sum())} davon "
            "statistisch von null verschieden.",
            f"{label(o, 'en')}: {ctx.int(len(g))} specifications, ATT between {ctx.num(g['estimate'].min(), 2, signed=True)} and "
            f"{ctx.num(g['estimate'].max(), 2, signed=True)} pp; {ctx.int(((g['ci_low'] > 0) | (g['ci_high'] < 0)).sum())} of them "
            "statistically different from zero."))
    s.items(items)
    s.figure(ctx.figures / "robustness.png", ctx.t("Gesamteffekt über alle Spezifikationen", "Overall effect across all specifications"))
    return s


def _plugin_builder(key: str) -> Callable[[Context], Section | None]:
    def build(ctx: Context) -> Section | None:
        d = ctx.results / key
        if not d.is_dir():
            return None
        files = sorted(d.glob("*.csv")) + sorted(d.glob("*.png")) + sorted(d.glob("summary.json"))
        if not files:
            return None
        de, en = PLUGIN_DIRS[key]
        s = Section(key, ctx.t(de, en))
        summ = d / "summary.json"
        if summ.is_file():
            data = json.loads(summ.read_text(encoding="utf-8"))
            text = data.get(f"text_{ctx.lang}") or data.get("text")
            if text:
                s.p(str(text))
            vals = {k: v for k, v in data.items() if not k.startswith("text") and isinstance(v, (int, float, str))}
            if vals:
                s.items([f"{k}: {ctx.num(v) if isinstance(v, float) else v}" for k, v in vals.items()])
        for p in sorted(d.glob("*.png")):
            s.figure(p, p.stem.replace("_", " "))
        for p in sorted(d.glob("*.csv")):
            s.table(_fmt_df(_read_table(p), ctx), p.stem.replace("_", " "))
        return s

    build.__name__ = f"sec_{key}"
    return build


def sec_limitations(ctx: Context) -> Section:
    s = Section("limitations", ctx.t("Grenzen der Analyse", "Limitations"))
    items = []
    ncl = ctx.est["n_clusters"].dropna()
    if len(ncl):
        items.append(ctx.t(f"Wenige Cluster: Inferenz beruht auf höchstens {ctx.int(ncl.max())} Clustern; asymptotische Standardfehler "
                           "können zu klein sein (Wild-Cluster-Bootstrap empfohlen).",
                           f"Few clusters: inference rests on at most {ctx.int(ncl.max())} clusters; asymptotic standard errors may be "
                           "too small (wild cluster bootstrap recommended)."))
    bal = ctx.tables.get("balance")
    if bal is not None and len(bal):
        never = bal[bal["cohort_group"].astype(str).str.contains("nie|never")]
        n_never = int(never["n_municipalities"].sum()) if len(never) else 0
        items.append(ctx.t(f"Kaum nie behandelte Kommunen ({ctx.int(n_never)}): Vergleiche stützen sich auf später startende Kommunen.",
                           f"Hardly any never-treated municipalities ({ctx.int(n_never)}): comparisons rely on later starters."))
    inr = ctx.tables.get("item_nonresponse")
    if inr is not None and len(inr):
        w = inr.loc[pd.to_numeric(inr["share_missing"]).idxmax()]
        where = f"{w['variable']}, {w['wave']}" if "wave" in inr else f"{w['variable']}"
        items.append(ctx.t(f"Item-Nonresponse in den Umfragen bis {ctx.pct(w['share_missing'], 1)} ({where}).",
                           f"Survey item non-response up to {ctx.pct(w['share_missing'], 1)} ({where})."))
    items.append(ctx.t("Parallele Trends sind nicht überprüfbar; Vorperioden-Koeffizienten sind nur ein schwacher Test.",
                       "Parallel trends cannot be verified; pre-period coefficients are only a weak test."))
    s.items(items)
    return s


def sec_appendix(ctx: Context) -> Section:
    s = Section("appendix", ctx.t("Anhang", "Appendix"))
    for o in outcome_keys(ctx):
        s.figure(ctx.figures / f"raw_trends_{o}.png", ctx.t(f"Rohverläufe nach Startkohorte: {label(o, 'de')}", f"Raw trends by cohort: {label(o, 'en')}"))
        s.figure(ctx.figures / f"group_time_heatmap_{o}.png", ctx.t(f"Gruppen-Zeit-Effekte: {label(o, 'de')}", f"Group-time effects: {label(o, 'en')}"))
    s.figure(ctx.figures / "cohort_map.png", ctx.t("Startkohorten im Panel", "Start cohorts in the panel"))
    captions = {
        "all_specifications": ("Alle Spezifikationen", "All specifications"),
        "balance": ("Merkmale nach Startkohorte", "Characteristics by start cohort"),
        "coverage": ("Datenabdeckung", "Data coverage"),
        "item_nonresponse": ("Item-Nonresponse", "Item non-response"),
        "lineage": ("Datenherkunft (Lineage)", "Lineage"),
    }
    for key, (de, en) in captions.items():
        t = ctx.tables.get(key)
        if t is not None and len(t):
            if key == "all_specifications":
                t = t[[c for c in ("model", "estimate", "se", "ci_low", "ci_high", "p", "n_units", "n_clusters") if c in t]]
            s.table(_fmt_df(t, ctx), ctx.t(de, en) + (ctx.t(" (Auszug)", " (excerpt)") if len(t) > 40 else ""))
    return s


def _git(*args: str) -> str | None:
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=True, timeout=10).stdout.strip()
    except Exception:
        return None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def provenance_inputs(ctx: Context) -> list[Path]:
    files = [P.processed_path(ctx.cfg, k) for k in ("panel", "survey_harmonised", "treatment", "funding_members", "lineage", "data_quality")]
    if ctx.synthetic:
        files += [P.truth_path(ctx.cfg), P.truth_counts_path(ctx.cfg)]
    files += sorted((ctx.results / "estimates").glob("*.parquet"))
    files += sorted(tables_dir(ctx.cfg).glob("*.csv"))
    return [f for f in files if Path(f).is_file()]


def sec_provenance(ctx: Context) -> Section:
    s = Section("provenance", ctx.t("Herkunft und Reproduzierbarkeit", "Provenance and reproducibility"))
    commit = _git("rev-parse", "HEAD")
    dirty = _git("status", "--porcelain")
    s.items([
        ctx.t("Git-Commit: ", "Git commit: ") + (commit or "–") + (ctx.t(" (mit nicht eingecheckten Änderungen)", " (with uncommitted changes)") if dirty else ""),
        ctx.t("Datenquelle: ", "Data source: ") + str(ctx.cfg.get("data", {}).get("source")),
        ctx.t("Mindestfallzahl je Zelle (Geheimhaltung): ", "Minimum persons per cell (disclosure): ") + ctx.int(ctx.cfg.get("disclosure", {}).get("min_cell", 5)),
    ])
    versions = []
    for p in PACKAGES:
        try:
            versions.append((p, importlib_metadata.version(p)))
        except importlib_metadata.PackageNotFoundError:
            continue
    s.table(pd.DataFrame(versions, columns=[ctx.t("Paket", "Package"), "Version"]), ctx.t("Paketversionen", "Package versions"))
    inputs = provenance_inputs(ctx)
    if inputs:
        s.table(pd.DataFrame({ctx.t("Datei", "File"): [str(f) for f in inputs], "SHA-256": [_sha256(f)[:16] + "…" for f in inputs]}),
                ctx.t("Eingabedateien (SHA-256, gekürzt)", "Input files (SHA-256, truncated)"))
    if len(ctx.bench):
        b = ctx.bench.sort_values("seconds", ascending=False)
        show = pd.DataFrame({ctx.t("Job", "Job"): b["job"], ctx.t("Laufzeit (s)", "Run time (s)"): b["seconds"].map(lambda x: ctx.num(x, 1))})
        s.p(ctx.t(f"Gesamtlaufzeit der protokollierten Jobs: {ctx.num(b['seconds'].sum(), 1)} s in {ctx.int(len(b))} Jobs.",
                  f"Total run time of the benchmarked jobs: {ctx.num(b['seconds'].sum(), 1)} s in {ctx.int(len(b))} jobs."))
        s.table(show.reset_index(drop=True), ctx.t("Laufzeit je Regel (Snakemake-Benchmarks)", "Run time per rule (Snakemake benchmarks)"))
    cfg_text = yaml.safe_dump(ctx.cfg, sort_keys=True, allow_unicode=True)
    s.code(cfg_text, ctx.t("Konfiguration (validiert, mit Standardwerten)", "Configuration (validated, with defaults)"))
    return s


SectionBuilder = Callable[[Context], Section | None]

#: The report, in order. Plug-in analysis sections appear when their result files exist.
SECTION_BUILDERS: list[SectionBuilder] = [
    sec_summary,
    sec_programme,
    sec_implementation,
    sec_strategy,
    sec_results,
    sec_robustness,
    *[_plugin_builder(k) for k in PLUGIN_DIRS],
    sec_limitations,
    sec_appendix,
    sec_provenance,
]


def register_section(builder: SectionBuilder, before: str = "sec_limitations") -> None:
    """Insert a dedicated section builder (e.g. of a later analysis stage) before ``before``."""
    names = [b.__name__ for b in SECTION_BUILDERS]
    if builder.__name__ in names:
        SECTION_BUILDERS[names.index(builder.__name__)] = builder
        return
    idx = names.index(before) if before in names else len(SECTION_BUILDERS)
    SECTION_BUILDERS.insert(idx, builder)


def build_sections(ctx: Context) -> list[Section]:
    out = []
    for b in SECTION_BUILDERS:
        sec = b(ctx)
        if sec is not None and sec.blocks:
            out.append(sec)
    return out


def title_info(ctx: Context) -> str | None:
    """One line under the title: data basis, period, N, main estimator (from result files)."""
    bal = ctx.tables.get("balance")
    n = int(bal.iloc[-1]["n_municipalities"]) if bal is not None and len(bal) else None
    pan = ctx.cfg.get("panel", {})
    try:
        a, b = pd.Period(pan.get("start"), "M"), pd.Period(pan.get("end"), "M")
        period = f"{a.strftime('%m/%Y')}–{b.strftime('%m/%Y')}"
    except (TypeError, ValueError):
        period = None
    parts = [ctx.t("Datengrundlage: ", "Data: ") + (ctx.t("synthetische Ersatzdaten", "synthetic stand-in data") if ctx.synthetic
                                                   else ctx.t("Verwaltungs- und Umfragedaten", "administrative and survey data"))]
    if period:
        parts.append(ctx.t(f"Panel Kommune × Monat {period}", f"municipality × month panel {period}"))
    if n is not None:
        parts.append(ctx.t(f"N = {ctx.int(n)} Kommunen", f"N = {ctx.int(n)} municipalities"))
    return "; ".join(parts)


def title_of(ctx: Context) -> tuple[str, str]:
    return (ctx.t("Evaluation des Integrationsmanagements in Baden-Württemberg", "Evaluation of integration management in Baden-Württemberg"),
            ctx.t("Wirkungsanalyse – Abschlussbericht", "Impact analysis – final report"))


# ---------------------------------------------------------------------- HTML
def _inline(text: str, esc: Callable[[str], str], bold: tuple[str, str]) -> str:
    parts = str(text).split("**")
    return "".join(bold[0] + esc(p) + bold[1] if i % 2 else esc(p) for i, p in enumerate(parts))


CSS = """
body{font-family:'DejaVu Sans',Arial,sans-serif;max-width:62rem;margin:0 auto;padding:3.5rem 1.5rem 3rem;color:#111;line-height:1.45}
h1{font-size:1.7rem;margin-bottom:.2rem} h2{border-bottom:1px solid #999;padding-bottom:.2rem;margin-top:2.2rem}
.subtitle{color:#444;margin-top:0}
figure{margin:1.2rem 0} figure img{max-width:100%;border:1px solid #ddd} figcaption{font-size:.85rem;color:#333}
table{border-collapse:collapse;font-size:.8rem;margin:.6rem 0 1.2rem} caption{text-align:left;font-weight:bold;padding:.3rem 0}
thead th{border-top:2px solid #000;border-bottom:1px solid #000;padding:.2rem .5rem;text-align:left}
tbody td{padding:.15rem .5rem;text-align:right} tbody td:first-child{text-align:left} tbody tr:last-child td{border-bottom:2px solid #000}
pre{background:#f4f4f4;padding:.6rem;font-size:.72rem;overflow-x:auto}
.banner{position:fixed;top:0;left:0;right:0;background:#000;color:#fff;text-align:center;font-weight:bold;padding:.35rem;z-index:10;letter-spacing:.08em}
.watermark{position:fixed;top:45%;left:50%;transform:translate(-50%,-50%) rotate(-30deg);font-size:4.2rem;font-weight:bold;color:rgba(0,0,0,.07);white-space:nowrap;pointer-events:none;z-index:5}
"""


def render_html(ctx: Context, sections: list[Section]) -> str:
    title, subtitle = title_of(ctx)
    esc = html.escape
    out = [f"<!DOCTYPE html>\n<html lang='{ctx.lang}'><head><meta charset='utf-8'><title>{esc(title)}</title><style>{CSS}</style></head><body>"]
    if ctx.synthetic:
        out.append(f"<div class='banner'>{SYNTHETIC_MARK}</div><div class='watermark'>{SYNTHETIC_MARK}</div>")
    info = title_info(ctx)
    out.append(f"<h1>{esc(title)}</h1><p class='subtitle'>{esc(subtitle)}</p>" + (f"<p class='subtitle'>{esc(info)}</p>" if info else ""))
    out.append("<nav><ol>" + "".join(f"<li><a href='#{s.key}'>{esc(s.title)}</a></li>" for s in sections) + "</ol></nav>")
    for s in sections:
        out.append(f"<section id='{s.key}'><h2>{esc(s.title)}</h2>")
        for b in s.blocks:
            if b.kind == "p":
                out.append(f"<p>{_inline(b.content, esc, ('<strong>', '</strong>'))}</p>")
            elif b.kind == "list":
                out.append("<ul>" + "".join(f"<li>{_inline(i, esc, ('<strong>', '</strong>'))}</li>" for i in b.content) + "</ul>")
            elif b.kind == "figure":
                data = base64.b64encode(Path(b.content).read_bytes()).decode()
                out.append(f"<figure><img alt='{esc(b.caption or '')}' src='data:image/png;base64,{data}'><figcaption>{esc(b.caption or '')}</figcaption></figure>")
            elif b.kind == "table":
                df = b.content
                head = "".join(f"<th>{esc(str(c))}</th>" for c in df.columns)
                body = "".join("<tr>" + "".join(f"<td>{esc('' if pd.isna(v) else str(v))}</td>" for v in row) + "</tr>"
                               for row in df.itertuples(index=False))
                out.append(f"<table><caption>{esc(b.caption or '')}</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
            elif b.kind == "code":
                cap = f"<p><strong>{esc(b.caption)}</strong></p>" if b.caption else ""
                out.append(f"{cap}<pre>{esc(b.content)}</pre>")
        out.append("</section>")
    out.append("</body></html>\n")
    return "\n".join(out)


# ---------------------------------------------------------------------- typst / PDF
_TYP_SPECIAL = set("\\*_`$#@<>[]~/\"'=-+")


def typ_escape(text: str) -> str:
    return "".join("\\" + c if c in _TYP_SPECIAL else c for c in str(text)).replace("\n", " ")


def _typ_str(text: str) -> str:
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def render_typst(ctx: Context, sections: list[Section], images: dict[Path, str]) -> str:
    title, subtitle = title_of(ctx)
    mark = _typ_str(SYNTHETIC_MARK)
    lines = [
        f'#set document(title: {_typ_str(title)}, date: none)',
        f'#set text(lang: "{ctx.lang}", size: 10pt, font: ("Libertinus Serif", "DejaVu Serif"))',
        '#set par(justify: true)',
        '#set heading(numbering: "1.")',
        '#show heading: set block(above: 1.4em, below: 0.8em)',
        '#show figure.caption: set text(size: 8.5pt)',
    ]
    page = ['paper: "a4"', "margin: (x: 2.2cm, top: 2.6cm, bottom: 2.2cm)",
            'footer: context align(center, text(8pt)[#counter(page).display("1 / 1", both: true)])']
    if ctx.synthetic:
        page.append(f"header: align(center, box(stroke: 0.8pt, inset: 4pt, text(8pt, weight: \"bold\", {mark})))")
        page.append('background: rotate(-35deg, align(center, text(42pt, fill: luma(88%), weight: "bold")[SYNTHETISCHE DATEN \\ SYNTHETIC DATA]))')
    lines.append("#set page(" + ", ".join(page) + ")")
    title_c = typ_escape(title).replace("Baden\\-Württemberg", "#box[Baden\\-Württemberg]")  # never split the name
    lines.append(f'#align(center, block(width: 100%)[#set par(justify: false)\n#text(18pt, weight: "bold", hyphenate: false)[{title_c}] '
                 f'\\ #v(0.3em) #text(12pt, {_typ_str(subtitle)})])')
    info = title_info(ctx)
    if info:
        lines.append(f'#align(center, text(9pt)[{typ_escape(info)}])')
    if ctx.synthetic:
        lines.append(f'#align(center, box(fill: black, inset: 6pt, text(fill: white, weight: "bold", {mark})))')
    lines.append('#v(0.6em)\n#outline(depth: 1, title: ' + _typ_str(ctx.t("Inhalt", "Contents")) + ')\n#pagebreak()')
    for s in sections:
        lines.append(f"= {typ_escape(s.title)}")
        for b in s.blocks:
            if b.kind == "p":
                lines.append(_inline(b.content, typ_escape, ("*", "*")) + "\n")
            elif b.kind == "list":
                lines += [f"- {_inline(i, typ_escape, ('*', '*'))}" for i in b.content]
                lines.append("")
            elif b.kind == "figure":
                lines.append(f'#figure(image("{images.get(Path(b.content), Path(b.content).name)}", width: 92%), caption: [{typ_escape(b.caption or "")}])')
            elif b.kind == "table":
                df = b.content
                ncol = len(df.columns)
                cells = ", ".join(f"[{typ_escape('' if pd.isna(v) else str(v))}]" for row in df.itertuples(index=False) for v in row)
                head = ", ".join(f"[*{typ_escape(str(c))}*]" for c in df.columns)
                align = "(" + ", ".join(["left"] + ["right"] * (ncol - 1)) + ",)" if ncol > 1 else "left"
                size = "7pt" if ncol > 6 or len(df) > 25 else "8pt"
                lines.append(
                    f"#figure(kind: table, caption: [{typ_escape(b.caption or '')}], text({size}, table(columns: {ncol}, align: {align}, "
                    f"stroke: none, inset: (x: 4pt, y: 2.5pt), table.hline(stroke: 1pt), table.header({head}), table.hline(stroke: 0.5pt), "
                    f"{cells}{', ' if cells else ''}table.hline(stroke: 1pt))))")
            elif b.kind == "code":
                if b.caption:
                    lines.append(f"*{typ_escape(b.caption)}*")
                lines.append(f"#text(7pt, raw({_typ_str(b.content)}, block: true))")
    return "\n".join(lines) + "\n"


def _compile(ctx: Context, sections: list[Section], fmt: str = "pdf", ppi: float | None = None) -> bytes | list[bytes]:
    """Compile the typst source in a temporary directory holding copies of the figures."""
    import typst

    with tempfile.TemporaryDirectory(prefix="ifm_report_") as tmp:
        tmp = Path(tmp)
        images: dict[Path, str] = {}
        (tmp / "img").mkdir()
        for s in sections:
            for b in s.blocks:
                if b.kind == "figure" and Path(b.content) not in images:
                    name = f"img/{len(images):03d}_{Path(b.content).name}"
                    shutil.copyfile(b.content, tmp / name)
                    images[Path(b.content)] = name
        (tmp / "report.typ").write_text(render_typst(ctx, sections, images), encoding="utf-8")
        if fmt == "pdf":
            return typst.compile(str(tmp / "report.typ"), root=str(tmp))
        return typst.compile(str(tmp / "report.typ"), root=str(tmp), format="png", ppi=ppi or 60)


def render_pages_png(ctx: Context, sections: list[Section], out_dir: Path, ppi: float = 60) -> list[Path]:
    """Every PDF page as PNG (same typst source), for visual checks."""
    pages = _compile(ctx, sections, "png", ppi)
    pages = [pages] if isinstance(pages, bytes) else pages
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, data in enumerate(pages, 1):
        p = out_dir / f"page_{i:02d}.png"
        p.write_bytes(data)
        paths.append(p)
    return paths


def build_report(cfg: dict[str, Any], logs_dir: str | Path = "logs", pages_png: Path | None = None) -> tuple[Path, Path]:
    ctx = load_context(cfg, logs_dir)
    sections = build_sections(ctx)
    html_path, pdf_path = report_paths(cfg)
    html_path.parent.mkdir(parents=True, exist_ok=True)
    html_path.write_text(render_html(ctx, sections), encoding="utf-8")
    pdf_path.write_bytes(_compile(ctx, sections, "pdf"))
    if pages_png is not None:
        render_pages_png(ctx, sections, pages_png)
    log.info("report: %d sections -> %s, %s", len(sections), html_path, pdf_path)
    return html_path, pdf_path
