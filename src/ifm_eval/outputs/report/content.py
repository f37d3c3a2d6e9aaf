"""The report's content: one *section builder* per section (:data:`SECTION_BUILDERS`), each
``builder(ctx) -> Section | None`` reading only the :class:`~.context.Context`. Every text
comes from ``strings.yaml`` (:meth:`Context.s`), every number from the declared result files.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Callable
from importlib import metadata as importlib_metadata
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from ifm_eval.outputs.figures import _estimator_rank
from ifm_eval.outputs.report import methods
from ifm_eval.outputs.report.context import (
    EXTRA_INPUTS,
    Context,
    SectionInputs,
    aggregate_phrase,
    baseline_rate,
    cluster_phrase,
    event_rows,
    fmt_df,
    main_row,
    matched_truth,
    never_treated,
    without_estimates,
)
from ifm_eval.outputs.report.document import Section
from ifm_eval.outputs.style import label
from ifm_eval.outputs.targets import TRUTH_TABLE

PACKAGES = ("ifm_eval", "numpy", "pandas", "scipy", "statsmodels", "pyfixest", "matplotlib", "geopandas",
            "pyarrow", "snakemake", "typst", "pyreadstat", "linearmodels")

#: Figures of the implementation chapter (replicating the short report), in order.
IMPLEMENTATION_FIGURES = ("map_start", "start_month", "vza_per_municipality", "capacity_change", "organisation",
                          "decision_maker", "target_legal_status", "target_housing", "target_min_age", "target_arrival",
                          "integration_plan", "documentation")
#: Tables shown in full (excerpt) in the appendix.
APPENDIX_TABLES = ("all_specifications", "balance", "coverage", "item_nonresponse", "lineage")
#: Naive benchmarks compared with the headline estimate in the summary (first with a main spec).
NAIVE_ESTIMATORS = ("twfe_static", "twfe_dynamic")


# ---------------------------------------------------------------------- summary
def sec_summary(ctx: Context) -> Section:
    s = Section("summary", ctx.s("summary.title"))
    if ctx.synthetic:
        s.p(ctx.s("summary.caution"))
    comp = ctx.tables["descriptives_comparison"]
    c = comp.set_index("item")
    sentence = ctx.s("summary.replication", n_items=ctx.int(len(comp)),
                     max_deviation=ctx.num(float(comp["difference"].abs().max()), 1))
    sentence += ctx.s("summary.replication_2018", share_jan=ctx.pct(c.loc["share_by_2018_01", "replicated"]),
                      share_may=ctx.pct(c.loc["share_by_2018_05", "replicated"]))
    s.p(sentence)
    items = []
    for o in ctx.outcomes:
        r = main_row(ctx, o)
        if r is None:
            if "mc_targets" in ctx.tables and o not in ctx.headline:
                items.append(ctx.s("summary.no_headline", outcome=label(o, ctx.lang)))
            continue
        sig = (r["ci_low"] > 0) or (r["ci_high"] < 0)
        base = baseline_rate(ctx, o)
        txt = ctx.s("summary.effect", outcome=label(o, ctx.lang), aggregate=aggregate_phrase(ctx, r),
                    estimate=ctx.num(r["estimate"], 2, signed=True), ci_low=ctx.num(r["ci_low"]),
                    ci_high=ctx.num(r["ci_high"]), estimator=label(r["estimator"], ctx.lang), n=cluster_phrase(ctx, r),
                    baseline=ctx.s("summary.baseline", year=base[0], rate=ctx.pct(base[1], 1)) if base is not None else "",
                    significance=ctx.s("summary.significant" if sig else "summary.not_significant"))
        m = matched_truth(ctx, r)
        if m is not None:
            txt += ctx.s("summary.truth", truth=ctx.num(m.value, 2, signed=True), z=ctx.num(m.z, 1, signed=True))
        items.append(txt)
    if items:
        s.items(items)
    mr = ctx.tables["main_results"]
    naive = next((e for e in NAIVE_ESTIMATORS if e in set(mr["estimator"])), None)
    if naive:
        diffs = []
        for o in ctx.outcomes:
            a, b = main_row(ctx, o, naive), main_row(ctx, o)
            if a is not None and b is not None and b["estimator"] != naive:
                diffs.append(float(a["estimate"] - b["estimate"]))
        tc = ctx.tables[TRUTH_TABLE] if ctx.synthetic else None
        if tc is not None and naive in set(tc["estimator"]):
            bias_naive = float(tc.loc[tc["estimator"] == naive, "difference"].abs().mean())
            heads = tc[tc["model"].isin(ctx.headline.values())]
            bias_main = float(heads["difference"].abs().mean()) if len(heads) else np.nan
            s.p(ctx.s("summary.naive_vs_truth", naive=label(naive, ctx.lang), bias_naive=ctx.num(bias_naive),
                      bias_main=ctx.num(bias_main)))
        elif diffs:
            d = float(np.mean(diffs))
            s.p(ctx.s("summary.naive_vs_main", naive=label(naive, ctx.lang), difference=ctx.num(abs(d)),
                      direction=ctx.s("summary.above" if d > 0 else "summary.below")))
    return s


# ---------------------------------------------------------------------- programme and data
def sec_programme(ctx: Context) -> Section:
    s = Section("programme", ctx.s("programme.title"))
    rule = methods.start_rule_sentence(ctx)
    s.p(ctx.s("programme.intro") + (" " + rule if rule else ""))
    total = ctx.tables["balance"].iloc[-1]
    s.p(ctx.s("programme.panel", n_municipalities=ctx.int(total["n_municipalities"]), n_never=ctx.int(never_treated(ctx))))
    cov = ctx.tables["coverage"]
    cov = cov[cov["table"] == "coverage"].groupby(["source", "variable"], sort=True)[["n_units", "n_reported"]].sum()
    missing = (1 - cov["n_reported"] / cov["n_units"]).sort_values(ascending=False, kind="stable")
    if len(missing) and missing.iloc[0] > 0:
        source, variable = missing.index[0]
        s.p(ctx.s("programme.gaps", variable=variable, source=source, share=ctx.pct(100 * missing.iloc[0], 1)))
    else:
        s.p(ctx.s("programme.no_gaps"))
    return s


# ---------------------------------------------------------------------- implementation
def sec_implementation(ctx: Context) -> Section:
    comp = ctx.tables["descriptives_comparison"]
    s = Section("implementation", ctx.s("implementation.title"))
    s.p(ctx.s("implementation.intro"))
    c = comp.set_index("item")

    def v(k: str) -> str:
        return ctx.pct(c.loc[k, "replicated"])

    s.p(ctx.s("implementation.shares", landratsamt=v("landratsamt"), share_more=v("share_more"),
              plan_80to100=v("80to100"), plan_lt20=v("lt20"), digital=v("digital")))
    for key in IMPLEMENTATION_FIGURES:
        s.figure(ctx.figure(f"descriptives/{key}"), ctx.s(f"implementation.figure.{key}"))
    if len(comp):
        show = comp[["item_de" if ctx.lang == "de" else "item_en", "qualifier", "published", "replicated", "difference", "n"]].copy()
        show.columns = [ctx.s("implementation.col.item"), "", ctx.s("implementation.col.published"),
                        ctx.s("implementation.col.replicated"), ctx.s("implementation.col.difference"), "N"]
        show["N"] = show["N"].map(ctx.int)
        for col in show.columns[2:5]:
            show[col] = show[col].map(lambda x: ctx.num(x, 1))
        show[""] = show[""].fillna("")
        s.table(show, ctx.s("implementation.table"))
    return s


# ---------------------------------------------------------------------- empirical strategy
def sec_strategy(ctx: Context) -> Section:
    s = Section("strategy", ctx.s("strategy.title"))
    n_models = ctx.models["model"].nunique() if len(ctx.models) else 0
    ests = sorted(set(ctx.models["estimator"])) if len(ctx.models) else []
    ncl = ctx.est["n_clusters"].dropna()
    gt = ctx.est[ctx.est["kind"] == "att_gt"]
    n_coh = gt["cohort"].nunique() if len(gt) else 0
    s.p(methods.design_paragraph(ctx))
    if items := methods.spec_items(ctx):
        s.p(methods.spec_intro(ctx))
        s.items(items)
    s.p(methods.aggregates_paragraph(ctx))
    s.p(ctx.s("strategy.counts", n_models=ctx.int(n_models), n_estimators=ctx.int(len(ests)),
              estimators=ctx.s("strategy.counts_estimators", names=", ".join(label(e, ctx.lang) for e in ests)) if ests else "",
              clusters=ctx.s("strategy.counts_clusters", n=ctx.int(ncl.max())) if len(ncl) else "",
              cohorts=ctx.s("strategy.counts_cohorts", n=ctx.int(n_coh)) if n_coh else ""))
    return s


# ---------------------------------------------------------------------- results
def sec_results(ctx: Context) -> Section | None:
    if ctx.est.empty:
        return None
    s = Section("results", ctx.s("results.title"))
    mr = ctx.tables["main_results"]
    for o in ctx.outcomes:
        r = main_row(ctx, o)
        if r is None:
            continue
        ev = event_rows(ctx, r["model"])
        pre, post = ev[ev["event_time"] < 0], ev[ev["event_time"] >= 0]
        cover = float(((pre["ci_low"] <= 0) & (pre["ci_high"] >= 0)).mean() * 100) if len(pre) else np.nan
        txt = ctx.s("results.effect", outcome=label(o, ctx.lang), estimator=label(r["estimator"], ctx.lang),
                    aggregate=aggregate_phrase(ctx, r), estimate=ctx.num(r["estimate"], 2, signed=True),
                    se=ctx.num(r["se"]), n=cluster_phrase(ctx, r))
        if len(pre):
            txt += ctx.s("results.pre", mean=ctx.num(pre["estimate"].mean(), 2, signed=True),
                         max_abs=ctx.num(pre["estimate"].abs().max()), cover=ctx.pct(cover))
        if len(post):
            last = post.iloc[-1]
            txt += ctx.s("results.last", event_time=ctx.int(last["event_time"]), estimate=ctx.num(last["estimate"], 2, signed=True))
        m = matched_truth(ctx, r)
        if m is not None:
            txt += ctx.s("results.truth", event_min=ctx.int(m.event_min), event_max=ctx.int(m.event_max),
                         truth=ctx.num(m.value, 2, signed=True))
        s.p(txt)
        s.figure(ctx.figure(f"event_study_{o}"), ctx.s("results.figure.event_study", outcome=label(o, ctx.lang)))
    if len(mr):
        wide = mr.pivot_table(index="estimator", columns="outcome", values="estimate", aggfunc="first")
        se = mr.pivot_table(index="estimator", columns="outcome", values="se", aggfunc="first")
        disp = pd.DataFrame({label(o, ctx.lang): [f"{ctx.num(wide.loc[e, o], 2, signed=True)} ({ctx.num(se.loc[e, o])})"
                                                 if e in wide.index and o in wide.columns and wide.loc[e, o] == wide.loc[e, o] else "–"
                                                 for e in wide.index] for o in wide.columns})
        order = sorted(wide.index, key=_estimator_rank)
        disp.index = list(wide.index)
        disp = disp.loc[order]
        disp.insert(0, ctx.s("results.col.estimator"), [label(e, ctx.lang) for e in order])
        s.table(disp.reset_index(drop=True), ctx.s("results.table.main"))
    tc = ctx.tables[TRUTH_TABLE] if ctx.synthetic else None
    if tc is not None and len(tc):
        show = pd.DataFrame({
            ctx.s("results.col.estimator"): tc["estimator"].map(lambda e: label(e, ctx.lang)),
            ctx.s("results.col.outcome"): tc["outcome"].map(lambda o: label(o, ctx.lang)),
            ctx.s("results.col.months"): [f"{int(a)}–{int(b)}" if a == a and b == b else "–"
                                          for a, b in zip(tc["event_min"], tc["event_max"], strict=True)],
            ctx.s("results.col.estimate"): tc["estimate"].map(lambda x: ctx.num(x, 2, signed=True)),
            ctx.s("results.col.se"): tc["se"].map(ctx.num),
            ctx.s("results.col.truth"): tc["truth"].map(lambda x: ctx.num(x, 2, signed=True)),
            ctx.s("results.col.difference"): tc["difference"].map(lambda x: ctx.num(x, 2, signed=True)),
            ctx.s("results.col.z"): tc["z"].map(lambda x: ctx.num(x, 1, signed=True)),
        })
        s.p(ctx.s("results.truth_intro"))
        s.table(show, ctx.s("results.table.truth"))
    return s


# ---------------------------------------------------------------------- robustness
def sec_robustness(ctx: Context) -> Section | None:
    al = ctx.tables["all_specifications"]
    none = without_estimates(ctx)
    if al.empty and not none:
        return None
    s = Section("robustness", ctx.s("robustness.title"))
    items = []
    for o, g in al.groupby("outcome"):
        items.append(ctx.s("robustness.outcome", outcome=label(o, ctx.lang), n_specs=ctx.int(len(g)),
                           min=ctx.num(g["estimate"].min(), 2, signed=True), max=ctx.num(g["estimate"].max(), 2, signed=True),
                           n_significant=ctx.int(((g["ci_low"] > 0) | (g["ci_high"] < 0)).sum())))
    if none:
        items.append(ctx.s("robustness.without_estimates", models=", ".join(none)))
    s.items(items)
    s.figure(ctx.figure("robustness"), ctx.s("robustness.figure"))
    return s


# ---------------------------------------------------------------------- limitations
def sec_limitations(ctx: Context) -> Section:
    s = Section("limitations", ctx.s("limitations.title"))
    items = []
    main = ctx.models.loc[ctx.models["is_main"], "model"]
    ncl = ctx.est.loc[ctx.est["model"].isin(main), "n_clusters"].dropna()
    if len(ncl):
        items.append(ctx.s("limitations.clusters", n=ctx.int(ncl.max())))
    items.append(ctx.s("limitations.never_treated", n=ctx.int(never_treated(ctx))))
    inr = ctx.tables["item_nonresponse"]
    if len(inr):
        w = inr.loc[pd.to_numeric(inr["share_missing"]).idxmax()]
        items.append(ctx.s("limitations.item_nonresponse", share=ctx.pct(w["share_missing"], 1),
                           where=f"{w['variable']}, {w['wave']}"))
    items.append(ctx.s("limitations.parallel_trends"))
    s.items(items)
    return s


# ---------------------------------------------------------------------- appendix
def sec_appendix(ctx: Context) -> Section:
    s = Section("appendix", ctx.s("appendix.title"))
    for o in ctx.outcomes:
        s.figure(ctx.figure(f"raw_trends_{o}"), ctx.s("appendix.figure.raw_trends", outcome=label(o, ctx.lang)))
        s.figure(ctx.figure(f"group_time_heatmap_{o}"), ctx.s("appendix.figure.heatmap", outcome=label(o, ctx.lang)))
    s.figure(ctx.figure("cohort_map"), ctx.s("appendix.figure.cohort_map"))
    for key in APPENDIX_TABLES:
        t = ctx.tables[key]
        if len(t):
            if key == "all_specifications":
                t = t[[c for c in ("model", "estimate", "se", "ci_low", "ci_high", "p", "n_units", "n_clusters") if c in t]]
            s.table(fmt_df(t, ctx), ctx.s(f"appendix.table.{key}") + (ctx.s("excerpt") if len(t) > 40 else ""))
    return s


# ---------------------------------------------------------------------- provenance
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


def sec_provenance(ctx: Context) -> Section:
    s = Section("provenance", ctx.s("provenance.title"))
    commit = _git("rev-parse", "HEAD")
    dirty = _git("status", "--porcelain")
    s.items([
        ctx.s("provenance.commit", commit=commit or "–", dirty=ctx.s("provenance.dirty") if dirty else ""),
        ctx.s("provenance.source", source=str(ctx.cfg["data"]["source"])),
        ctx.s("provenance.min_cell", n=ctx.int(ctx.cfg["disclosure"]["min_cell"])),
    ])
    versions = []
    for p in PACKAGES:
        try:
            versions.append((p, importlib_metadata.version(p)))
        except importlib_metadata.PackageNotFoundError:
            continue
    s.table(pd.DataFrame(versions, columns=[ctx.s("provenance.col.package"), "Version"]), ctx.s("provenance.table.versions"))
    if ctx.inputs:
        s.table(pd.DataFrame({ctx.s("provenance.col.file"): [str(f) for f in ctx.inputs],
                              "SHA-256": [_sha256(f)[:16] + "…" for f in ctx.inputs]}),
                ctx.s("provenance.table.inputs"))
    rt = pd.DataFrame([{"model": m, "seconds": float(md["runtime_seconds"])} for m, md in sorted(ctx.meta.items())])
    if len(rt):
        rt = rt.sort_values("seconds", ascending=False)
        show = pd.DataFrame({ctx.s("provenance.col.model"): rt["model"],
                             ctx.s("provenance.col.runtime"): rt["seconds"].map(lambda x: ctx.num(x, 1))})
        s.p(ctx.s("provenance.runtime_total", seconds=ctx.num(rt["seconds"].sum(), 1), n_models=ctx.int(len(rt))))
        s.table(show.reset_index(drop=True), ctx.s("provenance.table.runtime"))
    cfg_text = yaml.safe_dump(ctx.cfg, sort_keys=True, allow_unicode=True)
    s.code(cfg_text, ctx.s("provenance.config"))
    return s


# ---------------------------------------------------------------------- the report
SectionBuilder = Callable[[Context], Section | None]

#: The report, in order. A later analysis stage adds its own builder (:func:`register_section`)
#: and declares its result files as inputs of the report rule.
SECTION_BUILDERS: list[SectionBuilder] = [
    sec_summary,
    sec_programme,
    sec_implementation,
    sec_strategy,
    sec_results,
    sec_robustness,
    sec_limitations,
    sec_appendix,
    sec_provenance,
]


def register_section(builder: SectionBuilder, before: str = "sec_limitations", tables: tuple[str, ...] = (),
                     figures: tuple[str, ...] = (), synthetic_only: bool = False) -> None:
    """Insert a dedicated section builder (e.g. of a later analysis stage) before ``before``.
    ``tables`` / ``figures``: what it reads (``ctx.tables[...]``, ``ctx.figure(...)``); the
    report rule must declare them as inputs (on stand-in data only if ``synthetic_only``),
    and the report fails if they are missing."""
    EXTRA_INPUTS[builder.__name__] = SectionInputs(tuple(tables), tuple(figures), synthetic_only)
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
    """One line under the title: data basis, period, N (from result files)."""
    n = int(ctx.tables["balance"].iloc[-1]["n_municipalities"])
    a, b = pd.Period(ctx.cfg["panel"]["start"], "M"), pd.Period(ctx.cfg["panel"]["end"], "M")
    return "; ".join([ctx.s("info.data", basis=ctx.s("info.basis_synthetic" if ctx.synthetic else "info.basis_real")),
                      ctx.s("info.period", period=f"{a.strftime('%m/%Y')}–{b.strftime('%m/%Y')}"),
                      ctx.s("info.n", n=ctx.int(n))])


def title_of(ctx: Context) -> tuple[str, str]:
    return ctx.s("title"), ctx.s("subtitle")
