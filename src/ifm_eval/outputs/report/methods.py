"""The methods text ("Empirische Strategie" / "Empirical strategy") and the start rule of the
programme section, generated from the main specifications' metadata (``meta[model]["spec"]``
of every model with ``role: main``) and the main-results table -- so a config edit can never
make the report state something false.

Each aspect (control group, clustering, weights, covariates, sample, event window,
anticipation, inference, start rule, Callaway & Sant'Anna's method) becomes one phrase per
main spec; if all main specs agree, the phrase is stated once, else each distinct phrase with
the estimators (or estimator and outcomes) it applies to.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pandas as pd

from ifm_eval.outputs.figures import _estimator_rank
from ifm_eval.outputs.report import strings
from ifm_eval.outputs.report.context import Context, cluster_unit, join_words
from ifm_eval.outputs.targets import outcome_key

Phrase = Callable[[Context, str, dict[str, Any]], str]

#: Estimators that use every untreated observation (control_group is always not_yet_treated).
ALL_UNTREATED = ("twfe_static", "twfe_dynamic", "imputation", "gardner")


def _ordered(ctx: Context, specs: dict[str, dict[str, Any]]) -> list[str]:
    return sorted(specs, key=lambda m: (_estimator_rank(specs[m]["estimator"]), outcome_key(specs[m]["outcome"]), m))


def grouped(ctx: Context, specs: dict[str, dict[str, Any]], phrase: Phrase) -> str:
    """``phrase`` of every spec, each distinct one once; if they differ, each with the
    estimators (or "estimator: outcomes") it applies to."""
    order = _ordered(ctx, specs)
    by_phrase: dict[str, list[str]] = {}
    for m in order:
        by_phrase.setdefault(phrase(ctx, m, specs[m]), []).append(m)
    if len(by_phrase) == 1:
        return next(iter(by_phrase))
    parts = []
    for value, members in by_phrase.items():
        names = []
        for est in dict.fromkeys(specs[m]["estimator"] for m in members):
            of_est = [m for m in order if specs[m]["estimator"] == est]
            mine = [m for m in members if specs[m]["estimator"] == est]
            if mine == of_est:
                names.append(ctx.label(est))
            else:
                names.append(ctx.s("methods.members_outcomes", estimator=ctx.label(est),
                                   outcomes=join_words(ctx, [ctx.label(outcome_key(specs[m]["outcome"])) for m in mine])))
        parts.append(ctx.s("methods.group", value=value, members=join_words(ctx, names)))
    return "; ".join(parts)


# ---------------------------------------------------------------------- phrases per spec
def control_group(ctx: Context, model: str, spec: dict[str, Any]) -> str:
    est, cg = spec["estimator"], spec["control_group"]
    if est in ALL_UNTREATED:
        return ctx.s("control.all_untreated")
    if est == "sun_abraham" and cg in ("not_yet_treated", "last_treated"):  # SA reads not_yet_treated as last_treated
        return ctx.s("control.last_treated")
    return ctx.s(f"control.{cg}")


def clustering(ctx: Context, model: str, spec: dict[str, Any]) -> str:
    n = ctx.meta[model]["n_clusters"]
    unit = cluster_unit(ctx, spec["cluster"])
    return ctx.s("cluster.level_n", unit=unit, n=ctx.int(n)) if n else ctx.s("cluster.level", unit=unit)


def weights(ctx: Context, model: str, spec: dict[str, Any]) -> str:
    return ctx.s(f"weights.{spec['weights'] or 'none'}")


def covariates(ctx: Context, model: str, spec: dict[str, Any]) -> str:
    covs = list(spec["covariates"])
    if not covs:
        return ctx.s("covariates.none")
    known = strings.strings()
    return join_words(ctx, [ctx.s(f"covariate.{c}") if f"covariate.{c}" in known else c for c in covs])


_FROM_T = re.compile(r"^\s*t\s*>=\s*(\d+)\s*$")


def sample(ctx: Context, model: str, spec: dict[str, Any]) -> str:
    start, end = pd.Period(ctx.cfg["panel"]["start"], "M"), pd.Period(ctx.cfg["panel"]["end"], "M")
    q = spec["sample"]
    if q is None:
        return ctx.s("sample.all", start=start.strftime("%m/%Y"), end=end.strftime("%m/%Y"))
    if m := _FROM_T.match(q):  # t = 1 is the panel's first month
        return ctx.s("sample.from", start=(start + int(m.group(1)) - 1).strftime("%m/%Y"), end=end.strftime("%m/%Y"))
    return ctx.s("sample.query", query=q)


def event_window(ctx: Context, model: str, spec: dict[str, Any]) -> str:
    lo, hi = spec["event_window"]
    return ctx.s("event_window.range", lo=ctx.int(lo), hi=ctx.int(hi))


def anticipation(ctx: Context, model: str, spec: dict[str, Any]) -> str:
    k = int(spec["anticipation"])
    return ctx.s("anticipation.none") if k == 0 else ctx.s("anticipation.months", n=ctx.int(k))


def inference(ctx: Context, model: str, spec: dict[str, Any]) -> str:
    inf = spec["inference"]
    if inf["type"] == "bootstrap":
        return ctx.s("inference.bootstrap", draws=ctx.int(inf["draws"]))
    return ctx.s("inference.analytic")


def start_rule(ctx: Context, model: str, spec: dict[str, Any]) -> str:
    return ctx.s(f"rule.{spec['treatment_rule']}")


def cs_method(ctx: Context, model: str, spec: dict[str, Any]) -> str:
    return ctx.s(f"cs_method.{spec['method']}")


#: The aspects of the main specification stated in the methods text, in order.
ASPECTS: tuple[tuple[str, Phrase], ...] = (
    ("methods.control_group", control_group),
    ("methods.cluster", clustering),
    ("methods.weights", weights),
    ("methods.covariates", covariates),
    ("methods.sample", sample),
    ("methods.event_window", event_window),
    ("methods.anticipation", anticipation),
    ("methods.inference", inference),
)


# ---------------------------------------------------------------------- paragraphs
def headline_estimators(ctx: Context) -> str:
    """The headline estimator(s) in words (per outcome if they differ)."""
    specs = {m: ctx.spec(m) for m in ctx.headline.values()}
    return grouped(ctx, specs, lambda c, m, s: c.label(s["estimator"])) if specs else "–"


def design_paragraph(ctx: Context) -> str:
    main = ctx.main_specs()
    twfe = any(s["estimator"] in ("twfe_static", "twfe_dynamic") for s in main.values())
    return ctx.s("strategy.design") + " " + ctx.s("strategy.headline_vs_twfe" if twfe else "strategy.headline",
                                                  headline=headline_estimators(ctx))


def spec_items(ctx: Context) -> list[str]:
    """One item per aspect of :data:`ASPECTS` (+ Callaway & Sant'Anna's method if it has a
    main spec), stated for all main specs."""
    main = ctx.main_specs()
    if not main:
        return []
    items = [ctx.s(key, value=grouped(ctx, main, phrase)) for key, phrase in ASPECTS]
    cs = {m: s for m, s in main.items() if s["estimator"] == "callaway_santanna"}
    if cs:
        items.append(ctx.s("methods.cs_method", value=grouped(ctx, cs, cs_method)))
    return items


def spec_intro(ctx: Context) -> str:
    n = len(ctx.main_specs())
    return ctx.s("methods.intro_one") if n == 1 else ctx.s("methods.intro", n_main=ctx.int(n))


def aggregates_paragraph(ctx: Context) -> str:
    """Units of the effects and what each main estimator's overall number is (from the
    main-results table's ``aggregation``)."""
    mr = ctx.tables["main_results"]
    kinds: dict[str, list[str]] = {}
    for est in sorted(set(mr["estimator"]), key=_estimator_rank):
        aggs = set(mr.loc[mr["estimator"] == est, "aggregation"].astype(str))
        kind = "dynamic" if aggs == {"dynamic"} else "twfe_static" if est == "twfe_static" else "att"
        kinds.setdefault(kind, []).append(ctx.label(est))
    parts = [ctx.s(f"strategy.aggregate_{k}", estimators=join_words(ctx, kinds[k]))
             for k in ("dynamic", "att", "twfe_static") if k in kinds]
    text = ctx.s("strategy.units")
    if parts:
        text += " " + ctx.s("strategy.overall", parts="; ".join(parts))
        if len(parts) > 1:
            text += " " + ctx.s("strategy.not_same_quantity")
    return text


def start_rule_sentence(ctx: Context) -> str | None:
    """"A municipality's start is ..." for the main specs' treatment rule(s)."""
    main = ctx.main_specs()
    return ctx.s("programme.start", rule=grouped(ctx, main, start_rule)) if main else None
