"""The report chapter "The Landtag's questions" (German title in strings.yaml): the five
requests of the Landtag after the Rechnungshof's Denkschrift 2022 (Beitrag 15) one by one,
each with what the data support — every number computed by the policy, heterogeneity and
dose-response rules:

1. demand (``demand_state``, ``demand_backtest``, figure ``policy/demand``);
2. unspent funds (``funding_state``, ``fill_times``, figure ``policy/funding``);
3. case management: the effect by integration-plan use (``summary``, ``differences`` of
   the heterogeneity summary);
4. funding rates and target group: the dose response in funded FTE (VZAE) per 100 refugees and
   in the capacity increase (``dose_summary``, figure ``figures/dose_response``), the effect
   by target-group definition (``summary``, ``differences``);
5. indicators (``kpi_indicators``, figure ``policy/kpi``);

and the cost per additional person (``cost_per_person``). Where a configuration has no
heterogeneity or dose specs, the part says so instead of showing numbers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ifm_eval.outputs.report import credibility  # noqa: F401  (its chapter comes before this one)
from ifm_eval.outputs.report.context import Context, main_model
from ifm_eval.outputs.report.document import Section
from ifm_eval.outputs.style import label

TABLES = ("demand_state", "demand_backtest", "funding_state", "fill_times", "kpi_indicators", "cost_per_person",
          "summary", "differences", "dose_summary")
FIGURES = ("policy/demand", "policy/funding", "policy/kpi", "figures/dose_response")
#: a dose whose 5-95 % quantile range is below this share (%) of its median is called narrow
NARROW_DOSE_PCT = 20.0
#: estimator whose subgroup estimates the chapter reports (the headline estimator)
SUBGROUP_ESTIMATOR = "callaway_santanna"


def _key(outcome: str) -> str:
    return str(outcome).removeprefix("rate_")


def _ci(ctx: Context, lo: float, hi: float, digits: int = 2) -> str:
    if pd.isna(lo) or pd.isna(hi):
        return "–"
    return f"[{ctx.num(lo, digits, signed=True)}; {ctx.num(hi, digits, signed=True)}]"


def _month(ctx: Context, m: object) -> str:
    return pd.Timestamp(m).strftime("%m/%Y")


# --------------------------------------------------------------------------- 1 demand
def _demand(ctx: Context, s: Section) -> None:
    st = ctx.tables["demand_state"].copy()
    st["month"] = pd.to_datetime(st["month"])
    obs, proj = st[st["kind"] == "observed"], st[st["kind"] == "projected"]
    s.p(ctx.s("landtag.q1"))
    if not len(obs) or not len(proj):
        return
    last, end = obs.iloc[-1], proj.iloc[-1]
    bt = ctx.tables["demand_backtest"].set_index("h")
    h = int(bt.index.max())
    b = bt.loc[h]
    hi95 = "refugees_hi95" if "refugees_hi95" in proj else None
    s.p(ctx.s("landtag.demand", last_month=_month(ctx, last["month"]), n_last=ctx.int(last["refugees"]),
              end_month=_month(ctx, end["month"]), n_end=ctx.int(round(end["refugees"])),
              lo=ctx.int(round(end["refugees_lo95"])) if hi95 else "–",
              hi=ctx.int(round(end["refugees_hi95"])) if hi95 else "–",
              h=ctx.int(h), mape=ctx.num(b["mape"], 1), naive=ctx.num(b["naive_mape"], 1),
              cov=ctx.pct(100 * float(b["coverage95"]), 0), muni_wape=ctx.num(b["muni_wape"], 1)))
    s.p(ctx.s("landtag.caseload", case_now=ctx.num(last["caseload_funded"], 0),
              case_end=ctx.num(end["caseload_funded"], 0), end_month=_month(ctx, end["month"]),
              funded=ctx.num(last["funded_vza"], 0), needed=ctx.num(end["vza_needed"], 0),
              lo=ctx.num(end["vza_needed_lo95"], 0), hi=ctx.num(end["vza_needed_hi95"], 0),
              change=ctx.pct(100 * (float(end["vza_needed"]) / float(last["funded_vza"]) - 1), 0)
              if float(last["funded_vza"]) > 0 else "–"))
    s.figure(ctx.figure("policy/demand"), ctx.s("landtag.figure.demand"))


# --------------------------------------------------------------------------- 2 funds
def _funds(ctx: Context, s: Section) -> None:
    fs = ctx.tables["funding_state"].copy()
    s.p(ctx.s("landtag.q2"))
    on = fs[pd.to_numeric(fs["funded_vza"], errors="coerce") > 0]
    if not len(on):
        return
    last = on.iloc[-1]
    unfilled_all = 1 - float(on["filled_vza"].sum()) / float(on["funded_vza"].sum())
    ft = ctx.tables["fill_times"].set_index("group")
    a = ft.loc["all"] if "all" in ft.index else None
    s.p(ctx.s("landtag.funds", month=_month(ctx, last["month"]), funded=ctx.num(last["funded_vza"], 0),
              filled=ctx.num(last["filled_vza"], 0), unfilled=ctx.pct(100 * float(last["unfilled_share"]), 1),
              unfilled_all=ctx.pct(100 * unfilled_all, 1),
              eur=ctx.num(float(on["eur_shortfall_verband"].sum()) / 1e6, 1),
              eur_total=ctx.num(float(on["eur_funded"].sum()) / 1e6, 1),
              first=ctx.num(a["months_to_first_post_median"], 0) if a is not None else "–",
              fill90=ctx.num(a["months_to_fill90_median"], 0) if a is not None else "–"))
    s.figure(ctx.figure("policy/funding"), ctx.s("landtag.figure.funding"))


# --------------------------------------------------------------------------- 3/4 subgroups
def _group_label(ctx: Context, group: str) -> str:
    from ifm_eval.heterogeneity.moderators import group_label

    return group_label(group, ctx.lang)


def _subgroups(ctx: Context, s: Section, moderator: str) -> None:
    summ = ctx.tables["summary"]
    rows = summ[(summ["moderator"] == moderator) & (summ["estimator"] == SUBGROUP_ESTIMATOR)] if len(summ) else summ
    if not len(rows):
        s.p(ctx.s("landtag.no_subgroups", moderator=moderator))
        return
    table = []
    for r in rows.itertuples(index=False):
        ok = r.status == "ok"
        rec = {ctx.s("cred.col.outcome"): label(_key(r.outcome), ctx.lang),
               ctx.s("landtag.col.group"): _group_label(ctx, str(r.group)),
               ctx.s("landtag.col.n_treated"): ctx.int(r.n_treated),
               ctx.s("landtag.col.estimate"): ctx.num(r.estimate, 2, signed=True) if ok else ctx.s(f"landtag.status.{r.status}"),
               ctx.s("landtag.col.ci"): _ci(ctx, r.ci_low, r.ci_high) if ok else "–"}
        if ctx.synthetic:
            rec[ctx.s("landtag.col.truth")] = ctx.num(r.truth, 2, signed=True) if ok and pd.notna(r.truth) else "–"
        table.append(rec)
    s.table(pd.DataFrame(table), ctx.s(f"landtag.table.{moderator}"))
    diffs = ctx.tables["differences"]
    d = diffs[(diffs["moderator"] == moderator) & (diffs["estimator"] == SUBGROUP_ESTIMATOR)] if len(diffs) else diffs
    if not len(d):
        return
    items = []
    for r in d.itertuples(index=False):
        if str(r.group_a) == "missing" or str(r.group_b) == "missing":
            continue
        txt = ctx.s("landtag.difference", outcome=label(_key(r.outcome), ctx.lang), a=_group_label(ctx, str(r.group_a)),
                    b=_group_label(ctx, str(r.group_b)), estimate=ctx.num(r.estimate, 2, signed=True),
                    ci=_ci(ctx, r.ci_low, r.ci_high), p=ctx.num(r.p, 2),
                    boot_p=ctx.num(r.boot_p, 2) if pd.notna(r.boot_p) else "–")
        if ctx.synthetic and pd.notna(getattr(r, "truth", np.nan)):
            txt += " " + ctx.s("landtag.difference_truth", truth=ctx.num(r.truth, 2, signed=True))
        items.append(txt)
    if items:
        s.items(items)
    se = pd.to_numeric(d["se"], errors="coerce").dropna()
    if len(se):
        s.p(ctx.s("landtag.difference_mde", se_lo=ctx.num(se.min(), 1), se_hi=ctx.num(se.max(), 1),
                  mde_lo=ctx.num(2.8 * se.min(), 1), mde_hi=ctx.num(2.8 * se.max(), 1)))


def _case_management(ctx: Context, s: Section) -> None:
    s.p(ctx.s("landtag.q3"))
    _subgroups(ctx, s, "plan_use_band")


def _dose(ctx: Context, s: Section) -> None:
    ds = ctx.tables["dose_summary"]
    if not len(ds):
        s.p(ctx.s("landtag.no_dose"))
        return
    items = []
    for r in ds[ds["term"] == "acrt_overall"].itertuples(index=False):
        txt = ctx.s(f"landtag.dose.{r.dose}" if f"landtag.dose.{r.dose}" in _strings() else "landtag.dose.other",
                    outcome=label(_key(r.outcome), ctx.lang), estimate=ctx.num(r.estimate, 2, signed=True),
                    ci=_ci(ctx, r.ci_low, r.ci_high), n=ctx.int(r.n_treated), p05=ctx.num(r.dose_p05, 2),
                    p95=ctx.num(r.dose_p95, 2))
        if ctx.synthetic and pd.notna(r.truth):
            txt += " " + ctx.s("landtag.dose_truth", truth=ctx.num(r.truth, 2, signed=True))
        items.append(txt)
    s.p(ctx.s("landtag.dose_intro"))
    s.items(items)
    for d, g in ds.groupby("dose", sort=False):
        r = g.iloc[0]
        if pd.notna(r["dose_p50"]) and r["dose_p50"] > 0:
            spread = 100 * (float(r["dose_p95"]) - float(r["dose_p05"])) / float(r["dose_p50"])
            if spread < NARROW_DOSE_PCT:
                s.p(ctx.s("landtag.dose_narrow", dose=_dose_name(ctx, str(d)), spread=ctx.num(spread, 0)))
    s.figure(ctx.figure("figures/dose_response"), ctx.s("landtag.figure.dose"))


def _dose_name(ctx: Context, dose: str) -> str:
    from ifm_eval.dose.stage import dose_label

    return dose_label(dose, ctx.lang)


def _strings() -> dict:
    from ifm_eval.outputs.report.strings import strings

    return strings()


def _target_group(ctx: Context, s: Section) -> None:
    s.p(ctx.s("landtag.q4"))
    _dose(ctx, s)
    s.p(ctx.s("landtag.target_intro"))
    _subgroups(ctx, s, "target_group")


# --------------------------------------------------------------------------- 5 indicators
def _indicators(ctx: Context, s: Section) -> None:
    s.p(ctx.s("landtag.q5"))
    k = ctx.tables["kpi_indicators"]
    if not len(k):
        return
    rows = [{ctx.s("landtag.col.kpi"): ctx.s(f"landtag.kpi.{r.kpi}") if f"landtag.kpi.{r.kpi}" in _strings() else r.kpi,
             ctx.s("landtag.col.target"): ctx.s(f"landtag.kpi_target.{r.outcome}")
             if f"landtag.kpi_target.{r.outcome}" in _strings() else r.outcome,
             ctx.s("landtag.col.coverage"): ctx.pct(100 * float(r.coverage), 0),
             ctx.s("landtag.col.max_gap"): ctx.int(r.max_gap_quarters),
             ctx.s("landtag.col.r_within"): f"{ctx.num(r.r_within, 2)} {_ci(ctx, r.r_within_ci_low, r.r_within_ci_high)}",
             ctx.s("landtag.col.verdict"): ctx.s(f"landtag.verdict.{str(r.verdict).replace(' ', '_')}")}
            for r in k.itertuples(index=False)]
    s.table(pd.DataFrame(rows), ctx.s("landtag.table.kpi"))
    tracks = [ctx.s(f"landtag.kpi.{r.kpi}") for r in k.itertuples(index=False) if r.verdict == "tracks"]
    not_ = [ctx.s(f"landtag.kpi.{r.kpi}") for r in k.itertuples(index=False) if r.verdict != "tracks"]
    from ifm_eval.outputs.report.context import join_words

    s.p(ctx.s("landtag.kpi_verdict", tracks=join_words(ctx, tracks) or "–", others=join_words(ctx, not_) or "–"))
    s.figure(ctx.figure("policy/kpi"), ctx.s("landtag.figure.kpi"))


# --------------------------------------------------------------------------- cost
def _cost(ctx: Context, s: Section) -> None:
    c = ctx.tables["cost_per_person"]
    s.p(ctx.s("landtag.cost_intro"))
    rows, items = [], []
    for o in ctx.outcomes:
        model = main_model(ctx, o)
        hit = c[c["model"] == model] if model is not None and len(c) else c.iloc[0:0]
        if not len(hit):
            continue
        r = hit.iloc[0]
        hi = r["eur_per_person_year_high"]
        unb = pd.isna(hi) or not np.isfinite(float(hi))
        rows.append({ctx.s("cred.col.outcome"): label(o, ctx.lang),
                     ctx.s("cred.col.estimator"): label(r["estimator"], ctx.lang),
                     ctx.s("landtag.col.effect"): f"{ctx.num(r['effect_pp'], 2, signed=True)} "
                                                  f"{_ci(ctx, r['effect_low'], r['effect_high'])}",
                     ctx.s("landtag.col.eur_year"): ctx.int(round(float(r["eur_per_person_year"])))
                     if pd.notna(r["eur_per_person_year"]) else "–",
                     ctx.s("landtag.col.eur_ci"): f"{ctx.int(round(float(r['eur_per_person_year_low'])))} – "
                     + (ctx.s("landtag.unbounded") if unb else ctx.int(round(float(hi))))
                     if pd.notna(r["eur_per_person_year_low"]) else "–"})
        if unb:
            items.append(ctx.s("landtag.cost_unbounded", outcome=label(o, ctx.lang)))
    if rows:
        s.table(pd.DataFrame(rows), ctx.s("landtag.table.cost"))
    if items:
        s.items(items)


def sec_landtag(ctx: Context) -> Section | None:
    s = Section("landtag", ctx.s("landtag.title"))
    s.p(ctx.s("landtag.intro"))
    _demand(ctx, s)
    _funds(ctx, s)
    _case_management(ctx, s)
    _target_group(ctx, s)
    _indicators(ctx, s)
    _cost(ctx, s)
    return s


def register() -> None:
    """Add the chapter to the report (before the limitations) with its declared inputs."""
    from ifm_eval.outputs.report.content import register_section

    register_section(sec_landtag, before="sec_limitations", tables=TABLES, figures=FIGURES)


register()
