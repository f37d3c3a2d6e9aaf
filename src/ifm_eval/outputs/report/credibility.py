"""The report chapter "Credibility of the results" (German title in strings.yaml): for each
outcome, in plain words, the analytic vs few-cluster bootstrap vs randomization p-value and
the Romano–Wolf p across the outcomes; the pre-test, the trend it could have detected and the
bias that trend would leave; the HonestDiD breakdown values; what the naive TWFE averages
(Goodman-Bacon, de Chaisemartin–D'Haultfœuille).

Reads the tables ``inference``, ``pretrends``, ``pretrend_power``, ``bacon_summary``,
``twfe_weights``, ``honest_did``, ``honest_did_breakdown`` and the figures
``inference/randomization``, ``diagnostics/bacon``, ``sensitivity/honest_did`` (outputs of the
credibility rules, declared inputs of the report rule).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ifm_eval.outputs.report import reliability  # noqa: F401  (its chapter comes before this one)
from ifm_eval.outputs.report.context import Context, main_model
from ifm_eval.outputs.report.document import Section
from ifm_eval.outputs.style import label

TABLES = ("inference", "pretrends", "pretrend_power", "bacon_summary", "twfe_weights", "honest_did",
          "honest_did_breakdown")
FIGURES = ("inference/randomization", "diagnostics/bacon", "sensitivity/honest_did")
#: p-values that differ by more than this (or on opposite sides of 5 %) are pointed out
P_DIFFERENCE = 0.05


def _key(outcome: str) -> str:
    return str(outcome).removeprefix("rate_")


def _p(ctx: Context, x: object) -> str:
    """A p-value with three decimals; below 0.001 (e.g. no bootstrap draw as extreme) as
    "< 0.001"."""
    if x is None or pd.isna(x):
        return "–"
    return f"< {ctx.num(0.001, 3)}" if float(x) < 0.001 else ctx.num(float(x), 3)


def _inference(ctx: Context, s: Section) -> None:
    inf = ctx.tables["inference"]
    if not len(inf):
        return
    rows = []
    for r in inf.sort_values(["outcome", "estimator"]).itertuples():
        rows.append({
            ctx.s("cred.col.outcome"): label(_key(r.outcome), ctx.lang),
            ctx.s("cred.col.estimator"): label(r.estimator, ctx.lang),
            ctx.s("cred.col.estimate"): ctx.num(r.estimate, 2, signed=True),
            ctx.s("cred.col.p"): _p(ctx, r.p),
            ctx.s("cred.col.p_boot"): _p(ctx, r.boot_p),
            ctx.s("cred.col.boot_ci"): "–" if pd.isna(r.boot_ci_low) else
            f"[{ctx.num(r.boot_ci_low, 2)}; {ctx.num(r.boot_ci_high, 2)}]",
            ctx.s("cred.col.p_ri"): _p(ctx, r.p_randomization),
            ctx.s("cred.col.p_rw"): _p(ctx, r.p_romano_wolf),
        })
    draws = inf["boot_draws"].dropna()
    ri = inf["ri_draws"].dropna()
    s.p(ctx.s("cred.inference_intro", draws=ctx.int(int(draws.max()) if len(draws) else 0),
              weights=str(inf["boot_weights"].dropna().iloc[0]) if inf["boot_weights"].notna().any() else "–",
              k=ctx.int(int(ri.max()) if len(ri) else 0)))
    s.table(pd.DataFrame(rows), ctx.s("cred.table.inference"))
    s.figure(ctx.figure("inference/randomization"), ctx.s("cred.figure.randomization"))
    items = []
    for o in ctx.outcomes:
        model = main_model(ctx, o)
        r = inf[inf["model"] == model]
        if not len(r):
            continue
        r = r.iloc[0]
        txt = ctx.s("cred.inference_outcome", outcome=label(o, ctx.lang), estimator=label(r["estimator"], ctx.lang),
                    estimate=ctx.num(r["estimate"], 2, signed=True), p=_p(ctx, r["p"]), p_boot=_p(ctx, r["boot_p"]),
                    p_ri=_p(ctx, r["p_randomization"]), p_rw=_p(ctx, r["p_romano_wolf"]))
        ps = [float(x) for x in (r["p"], r["boot_p"], r["p_randomization"]) if pd.notna(x)]
        if ps and (max(ps) - min(ps) > P_DIFFERENCE or (min(ps) <= 0.05 < max(ps))):
            txt += " " + ctx.s("cred.inference_differ")
        items.append(txt)
    if items:
        s.items(items)
    s.p(ctx.s("cred.inference_why"))


def _pretrends(ctx: Context, s: Section) -> None:
    wald, power = ctx.tables["pretrends"], ctx.tables["pretrend_power"]
    if not len(wald):
        return
    rows = []
    for r in wald.sort_values(["outcome", "estimator"]).itertuples():
        rows.append({
            ctx.s("cred.col.outcome"): label(_key(r.outcome), ctx.lang),
            ctx.s("cred.col.estimator"): label(r.estimator, ctx.lang),
            ctx.s("cred.col.n_pre"): ctx.int(int(r.n_pre)),
            ctx.s("cred.col.wald"): "–" if pd.isna(r.wald) else f"{ctx.num(r.wald, 1)} ({ctx.int(int(r.df))})",
            ctx.s("cred.col.p_wald"): _p(ctx, r.p_wald),
        })
    s.p(ctx.s("cred.pretrends_intro"))
    s.table(pd.DataFrame(rows), ctx.s("cred.table.pretrends"))
    items = []
    for o in ctx.outcomes:
        model = main_model(ctx, o)
        w = wald[wald["model"] == model]
        p = power[power["model"] == model] if len(power) else power
        if not len(w) or not len(p):
            continue
        w = w.iloc[0]
        p50 = p[np.isclose(p["target_power"], 0.5)]
        p80 = p[np.isclose(p["target_power"], 0.8)]
        if not len(p50) or not len(p80):
            continue
        a, b = p50.iloc[0], p80.iloc[0]
        items.append(ctx.s("cred.pretrends_outcome", outcome=label(o, ctx.lang), estimator=label(w["estimator"], ctx.lang),
                           wald=ctx.num(w["wald"], 1), df=ctx.int(int(w["df"])), p=_p(ctx, w["p_wald"]),
                           slope50=ctx.num(a["slope"], 3), slope80=ctx.num(b["slope"], 3),
                           bias50=ctx.num(a["bias_headline"], 2), bias80=ctx.num(b["bias_headline"], 2),
                           estimate=ctx.num(a["estimate_headline"], 2, signed=True)))
    if items:
        s.items(items)


def _honest(ctx: Context, s: Section) -> None:
    brk = ctx.tables["honest_did_breakdown"]
    if not len(brk):
        return
    head = brk[brk["target"] == "headline"]
    s.p(ctx.s("cred.honest_intro", n_pre=ctx.int(int(head["n_pre"].max()) if len(head) else 0)))
    rows = []
    for r in brk.sort_values(["outcome", "estimator", "target", "restriction"]).itertuples():
        rows.append({
            ctx.s("cred.col.outcome"): label(_key(r.outcome), ctx.lang),
            ctx.s("cred.col.estimator"): label(r.estimator, ctx.lang),
            ctx.s("cred.col.target"): ctx.s("cred.target.headline") if r.target == "headline" else r.target,
            ctx.s("cred.col.restriction"): ctx.s(f"cred.restriction.{r.restriction}"),
            ctx.s("cred.col.original"): f"[{ctx.num(r.original_lb, 2)}; {ctx.num(r.original_ub, 2)}]",
            ctx.s("cred.col.breakdown"): _breakdown(ctx, r.breakdown),
        })
    s.table(pd.DataFrame(rows), ctx.s("cred.table.honest"))
    s.figure(ctx.figure("sensitivity/honest_did"), ctx.s("cred.figure.honest"))
    items = []
    for o in ctx.outcomes:
        sub = head[head["outcome"].map(_key) == o]
        for r in sub.itertuples():
            if r.original_lb <= 0 <= r.original_ub:
                items.append(ctx.s("cred.honest_zero", outcome=label(o, ctx.lang), estimator=label(r.estimator, ctx.lang),
                                   restriction=ctx.s(f"cred.restriction.{r.restriction}")))
            elif float(r.breakdown) == 0:
                items.append(ctx.s("cred.honest_zero_robust", outcome=label(o, ctx.lang),
                                   estimator=label(r.estimator, ctx.lang),
                                   restriction=ctx.s(f"cred.restriction.{r.restriction}")))
            else:
                items.append(ctx.s(f"cred.honest_{r.restriction}", outcome=label(o, ctx.lang),
                                   estimator=label(r.estimator, ctx.lang), value=_breakdown(ctx, r.breakdown)))
    if items:
        s.items(items)


def _breakdown(ctx: Context, x: object) -> str:
    if x is None or pd.isna(x):
        return "–"
    return "∞" if np.isinf(float(x)) else ctx.num(float(x), 3)


def _twfe(ctx: Context, s: Section) -> None:
    bs, wt = ctx.tables["bacon_summary"], ctx.tables["twfe_weights"]
    if not len(bs):
        return
    s.p(ctx.s("cred.bacon_intro"))
    rows = []
    for r in bs.sort_values(["outcome", "type"]).itertuples():
        rows.append({ctx.s("cred.col.outcome"): label(_key(r.outcome), ctx.lang),
                     ctx.s("cred.col.type"): ctx.s(f"cred.type.{r.type}"),
                     ctx.s("cred.col.weight"): ctx.pct(100 * float(r.weight), 1),
                     ctx.s("cred.col.avg_est"): ctx.num(r.avg_est, 2, signed=True)})
    s.table(pd.DataFrame(rows), ctx.s("cred.table.bacon"))
    s.figure(ctx.figure("diagnostics/bacon"), ctx.s("cred.figure.bacon"))
    items = []
    for r in wt.itertuples():
        forb = bs[(bs["model"] == r.model) & (bs["type"] == "later_vs_earlier")]["weight"].sum()
        txt = ctx.s("cred.twfe_outcome", outcome=label(_key(r.outcome), ctx.lang), beta=ctx.num(r.twfe, 2, signed=True),
                    forbidden=ctx.pct(100 * float(forb), 1), n_neg=ctx.int(int(r.n_negative)),
                    n=ctx.int(int(r.n_treated_cells)), sum_neg=ctx.num(float(r.sum_negative), 3))
        if "sum_w_tau" in wt.columns and pd.notna(getattr(r, "sum_w_tau", np.nan)):
            txt += " " + ctx.s("cred.twfe_truth", sum_w_tau=ctx.num(r.sum_w_tau, 2, signed=True),
                               att=ctx.num(r.att_tau, 2, signed=True))
        items.append(txt)
    if items:
        s.items(items)


def sec_credibility(ctx: Context) -> Section | None:
    s = Section("credibility", ctx.s("cred.title"))
    s.p(ctx.s("cred.intro"))
    _inference(ctx, s)
    _pretrends(ctx, s)
    _honest(ctx, s)
    _twfe(ctx, s)
    return s


def register() -> None:
    """Add the chapter to the report (before the limitations) with its declared inputs."""
    from ifm_eval.outputs.report.content import register_section

    register_section(sec_credibility, before="sec_limitations", tables=TABLES, figures=FIGURES)


register()
