"""The report chapter "Reliability and detection limits" (German title in strings.yaml):
the Monte Carlo self-validation of the main specifications, the analytic MDE and
the simulated power curve (:mod:`ifm_eval.montecarlo`), and a plain statement of what the
design could have detected.

Reads the tables ``mc_summary``, ``mc_targets``, ``mde``, ``power_curve``,
``detectable_effect`` and the figures ``montecarlo/coverage``, ``power/mde``,
``power/power_curve`` (declared inputs of the report rule). The headline of the summary uses
only estimators that pass the Monte Carlo check (:func:`passing`,
:func:`ifm_eval.outputs.figures.headline_models`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ifm_eval.outputs.report.context import Context, main_model
from ifm_eval.outputs.report.document import Section
from ifm_eval.outputs.style import label

TABLES = ("mc_summary", "mc_targets", "mc_evidence", "mde", "power_curve", "detectable_effect")
FIGURES = ("montecarlo/coverage", "power/mde", "power/power_curve")
SMALL_K = 200  # below this many draws per scenario the report says how weak the check is


def _share(ctx: Context, x: object, digits: int = 0) -> str:
    """A proportion (0..1) as a percentage in the report language."""
    return ctx.pct(100 * float(x), digits) if x is not None and pd.notna(x) else "–"


def outcome_key(outcome: str) -> str:
    return str(outcome).removeprefix("rate_")


def passing(targets: pd.DataFrame) -> set[tuple[str, str]]:
    """(estimator, outcome key) pairs that meet every Monte Carlo target."""
    if targets is None or targets.empty:
        return set()
    ok = targets[targets["passes"].astype(str).str.lower().isin(["true", "1"])]
    return {(str(r.estimator), outcome_key(r.outcome)) for r in ok.itertuples()}


def _check(ok: object) -> str:
    return "✓" if str(ok).lower() in ("true", "1") else "✗"


def sec_reliability(ctx: Context) -> Section | None:
    summ, tg = ctx.tables["mc_summary"], ctx.tables["mc_targets"]
    s = Section("reliability", ctx.s("reliability.title"))
    k = int(summ["k"].max()) if len(summ) else 0
    s.p(ctx.s("reliability.intro", k=ctx.int(k), designs=", ".join(
        ctx.s(f"reliability.design.{d}") for d in summ["design"].drop_duplicates())))
    if len(summ):
        eff = summ[summ["design"] == "effects"].set_index(["estimator", "outcome"])
        nul = summ[summ["design"] == "zero"].set_index(["estimator", "outcome"])
        t = tg.set_index(["estimator", "outcome"]) if len(tg) else None
        keys = sorted(eff.index.union(nul.index), key=lambda x: (x[1], x[0]))
        rows = []
        for key in keys:
            e = eff.loc[key] if key in eff.index else None
            n = nul.loc[key] if key in nul.index else None
            rows.append({
                ctx.s("reliability.col.outcome"): label(key[1], ctx.lang),
                ctx.s("reliability.col.estimator"): label(key[0], ctx.lang),
                ctx.s("reliability.col.bias"): "–" if e is None else ctx.num(e["bias"], 2, signed=True),
                ctx.s("reliability.col.bias_se"): "–" if e is None else ctx.num(e["bias_se"], 2, signed=True),
                ctx.s("reliability.col.rmse"): "–" if e is None else ctx.num(e["rmse"], 2),
                ctx.s("reliability.col.calibration"): "–" if e is None else ctx.num(e["calibration"], 2),
                ctx.s("reliability.col.coverage"): "–" if e is None else
                f"{_share(ctx, e['coverage'])} (±{_share(ctx, e['coverage_mcse'])})",
                ctx.s("reliability.col.size"): "–" if n is None else _share(ctx, n["rejection"]),
                ctx.s("reliability.col.passes"): _check(t.loc[key, "passes"]) if t is not None and key in t.index else "–",
            })
        recorded = t is not None and "recorded_k" in t.columns and t["recorded_k"].notna().any()
        if recorded:  # the recorded full-size run of this very configuration
            kr = ctx.int(int(t["recorded_k"].max()))
            for row, key in zip(rows, keys, strict=True):
                r = t.loc[key] if key in t.index else None
                ok = r is not None and pd.notna(r["recorded_k"])
                row[ctx.s("reliability.col.recorded_coverage", k=kr)] = _share(ctx, r["recorded_coverage"], 1) if ok else "–"
                row[ctx.s("reliability.col.recorded_size", k=kr)] = _share(ctx, r["recorded_rejection_null"], 1) if ok else "–"
        s.table(pd.DataFrame(rows), ctx.s("reliability.table.mc", k=ctx.int(k)))
        s.figure(ctx.figure("montecarlo/coverage"), ctx.s("reliability.figure.coverage"))
        if recorded:
            s.p(ctx.s("reliability.recorded", k=ctx.int(int(t["recorded_k"].max()))))
        elif k < SMALL_K:
            s.p(ctx.s("reliability.small_k", k=ctx.int(k), mcse=_share(ctx, float(np.sqrt(0.95 * 0.05 / max(k, 1))))))
        _evidence(ctx, s)
    ok = passing(tg)
    fails = sorted({(e, o) for e, o in ((str(r.estimator), outcome_key(r.outcome)) for r in tg.itertuples())} - ok) \
        if len(tg) else []
    verdict = []
    for o in ctx.outcomes:
        good = sorted(e for e, oo in ok if oo == o)
        head = main_model(ctx, o)
        verdict.append(ctx.s("reliability.verdict", outcome=label(o, ctx.lang),
                             passing=", ".join(label(e, ctx.lang) for e in good) if good else ctx.s("reliability.none"),
                             headline=label(ctx.spec(head)["estimator"], ctx.lang) if head else ctx.s("reliability.no_headline")))
    if fails:
        verdict.append(ctx.s("reliability.fails", which="; ".join(
            f"{label(e, ctx.lang)} ({label(o, ctx.lang)})" for e, o in fails)))
    s.items(verdict)

    # ---- what the design can detect
    mde, curve, det = ctx.tables["mde"], ctx.tables["power_curve"], ctx.tables["detectable_effect"]
    s.p(ctx.s("reliability.mde_intro"))
    head = mde[mde["row"] == "headline"] if len(mde) else mde
    if len(head):
        show = pd.DataFrame({
            ctx.s("reliability.col.outcome"): head["outcome"].map(lambda o: label(o, ctx.lang)),
            ctx.s("reliability.col.estimator"): head["estimator"].map(lambda e: label(e, ctx.lang)),
            ctx.s("reliability.col.se"): head["se"].map(ctx.num),
            ctx.s("reliability.col.mde"): head["mde80_pp"].map(ctx.num),
            ctx.s("reliability.col.baseline"): head["baseline_rate_2016"].map(lambda x: ctx.num(x, 1)),
            ctx.s("reliability.col.mde_rel"): head["mde80_relative"].map(lambda x: _share(ctx, x)),
        })
        s.table(show.reset_index(drop=True), ctx.s("reliability.table.mde"))
    s.figure(ctx.figure("power/mde"), ctx.s("reliability.figure.mde"))
    s.figure(ctx.figure("power/power_curve"), ctx.s("reliability.figure.power", k=ctx.int(
        int(curve["k"].max()) if len(curve) else 0)))
    statements = []
    ncl = _clusters(ctx)
    for o in ctx.outcomes:
        model = main_model(ctx, o)
        if model is None:
            continue
        est = ctx.spec(model)["estimator"]
        h = head[(head["model"] == model)] if len(head) else head
        if not len(h):
            continue
        h = h.iloc[0]
        d = det[(det["estimator"] == est) & (det["outcome"].map(outcome_key) == o)] if len(det) else det
        txt = ctx.s("reliability.statement", outcome=label(o, ctx.lang), n_clusters=ctx.int(ncl),
                    mde=ctx.num(h["mde80_pp"]), relative=_share(ctx, h["mde80_relative"]), estimator=label(est, ctx.lang))
        if len(d) and np.isfinite(float(d["effect_pp_80"].iloc[0])):
            sim = float(d["effect_pp_80"].iloc[0])
            txt += ctx.s("reliability.simulated", hr=ctx.num(float(d["max_hazard_ratio_80"].iloc[0]), 2),
                         effect=ctx.num(sim), ratio=ctx.num(sim / float(h["mde80_pp"]), 2))
        elif len(d):
            txt += ctx.s("reliability.simulated_not_reached", power=_share(ctx, float(d["max_power_on_grid"].iloc[0])))
        statements.append(txt)
    if statements:
        s.items(statements)
        s.p(ctx.s("reliability.why_differ"))
    return s


def _evidence(ctx: Context, s: Section) -> None:
    """The recorded runs before and after the change of the main specification (issue 9)."""
    ev = ctx.tables["mc_evidence"]
    if not len(ev) or ev["before_k"].isna().all():
        return
    rows = []
    for r in ev.sort_values(["outcome", "estimator"]).itertuples():
        rows.append({
            ctx.s("reliability.col.outcome"): label(r.outcome, ctx.lang),
            ctx.s("reliability.col.estimator"): label(r.estimator, ctx.lang),
            ctx.s("reliability.col.coverage"): f"{_share(ctx, r.before_coverage)} → {_share(ctx, r.after_coverage)}",
            ctx.s("reliability.col.size"): f"{_share(ctx, r.before_rejection)} → {_share(ctx, r.after_rejection)}",
            ctx.s("reliability.col.calibration"): f"{ctx.num(r.before_calibration)} → {ctx.num(r.after_calibration)}",
            ctx.s("reliability.col.bias_se"): f"{ctx.num(r.before_bias_se, 2, signed=True)} → "
                                              f"{ctx.num(r.after_bias_se, 2, signed=True)}",
        })
    s.p(ctx.s("reliability.evidence_intro"))
    s.table(pd.DataFrame(rows), ctx.s("reliability.table.evidence", k=ctx.int(int(ev["after_k"].max()))))


def _clusters(ctx: Context) -> int:
    main = ctx.models.loc[ctx.models["is_main"], "model"]
    ncl = ctx.est.loc[ctx.est["model"].isin(main), "n_clusters"].dropna()
    return int(ncl.max()) if len(ncl) else 0


def register() -> None:
    """Add the chapter to the report (before the limitations) with its declared inputs."""
    from ifm_eval.outputs.report.content import register_section

    register_section(sec_reliability, before="sec_limitations", tables=TABLES, figures=FIGURES)


register()
