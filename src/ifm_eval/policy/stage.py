"""The policy job: answers the Landtag's requests from the data (``run_policy``).

Inputs (``StageIO`` names): ``refugees`` (ingest/refugees_au), ``funding_verbaende``,
``funding_members``, ``posts`` (ingest/im_posts), ``kpi`` (ingest/kpi_reports), ``panel``,
``tidy`` (list of estimate parquets) and ``meta`` (their JSON metadata).

Outputs: see :data:`RESULT_FILES` (aggregates under ``results/policy/``: they pass the
disclosure check — person counts in ``(0, min_cell)`` and aggregates over fewer than
``min_cell`` municipalities are blanked — and carry the stand-in mark on stand-in data)
and :data:`PROCESSED_FILES` (per-municipality tables under ``data/processed/policy/``,
never published; the lineage table ``data/processed/lineage/policy.csv``). :func:`ifm_eval.outputs.targets.policy_outputs` gives the paths for a configuration.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ifm_eval.lineage import Lineage
from ifm_eval.stage_io import StageIO

log = logging.getLogger(__name__)

INPUTS = ("refugees", "funding_verbaende", "funding_members", "posts", "kpi", "panel")
#: the main estimates (lists; empty, and then not passed, without main specs)
ESTIMATE_INPUTS = ("tidy", "meta")

#: output name -> file under ``<results_dir>/policy/``
RESULT_FILES: dict[str, str] = {
    "summary": "summary.csv",
    "demand_state": "demand_state.csv",
    "demand_backtest": "demand_backtest.csv",
    "funding_state": "funding_state.csv",
    "fill_times": "fill_times.csv",
    "kpi_indicators": "kpi_indicators.csv",
    "kpi_correlations": "kpi_correlations.csv",
    "cost": "cost_per_person.csv",
    "demand_figure": "demand.png",
    "demand_pdf": "demand.pdf",
    "funding_figure": "funding.png",
    "funding_pdf": "funding.pdf",
    "kpi_figure": "kpi.png",
    "kpi_pdf": "kpi.pdf",
}
#: output name -> file under ``<processed_dir>/`` (municipal tables, never published)
PROCESSED_FILES: dict[str, str] = {
    "demand_municipality": "policy/demand_municipality.parquet",
    "funding_municipality": "policy/funding_municipality.parquet",
    "fill_times_municipality": "policy/fill_times_municipality.parquet",
    "kpi_quarterly": "policy/kpi_quarterly.parquet",
    "lineage": "lineage/policy.csv",  # like every stage's lineage table
}
OUTPUTS = (*RESULT_FILES, *PROCESSED_FILES)


# --------------------------------------------------------------------------- disclosure
def _is_person_col(name: str) -> bool:
    from ifm_eval.outputs.disclosure import PANEL_COUNT_NAMES, is_person_count_column

    return is_person_count_column(name) or str(name).startswith(PANEL_COUNT_NAMES)


def protect(df: pd.DataFrame, min_cell: int, unit_cols: dict[str, list[str]] | None = None) -> pd.DataFrame:
    """Blank person-count cells in ``(0, min_cell)`` and, for each ``{n_col: [cols]}`` in
    ``unit_cols``, the ``cols`` of rows whose municipality count ``n_col`` is below
    ``min_cell`` (an aggregate over fewer municipalities)."""
    out = df.copy()
    for c in out.columns:
        if _is_person_col(c) and pd.api.types.is_numeric_dtype(out[c]):
            v = out[c].astype(float)
            out[c] = v.where(~((v > 0) & (v < min_cell)))
    for n_col, cols in (unit_cols or {}).items():
        small = (out[n_col] > 0) & (out[n_col] < min_cell)
        for c in cols:
            out[c] = out[c].where(~small) if pd.api.types.is_numeric_dtype(out[c]) else out[c].mask(small)
    return out


# --------------------------------------------------------------------------- inputs
def _month(s: pd.Series) -> pd.Series:
    return pd.to_datetime(s).dt.to_period("M").dt.to_timestamp()


def _headlines(tidy_files: list[Path], meta_files: list[Path], lineage: Lineage) -> list[dict]:
    from ifm_eval.credibility.select import headline_row, read_meta, read_tidy

    meta = read_meta(meta_files)
    tidy = read_tidy(tidy_files)
    out = []
    for model in sorted(meta):
        m = meta[model]
        row = headline_row(tidy, m) if len(tidy) and m.get("status") == "ok" else None
        if row is None or not np.isfinite(row["estimate"]) or not np.isfinite(row["se"]):
            lineage.add("estimates", f"{model}: no headline", 1, 0, "drop",
                        f"status {m.get('status')!r}: no finite headline estimate, no cost computed")
            continue
        head = (m.get("info") or {}).get("headline") or {}
        window = (m.get("spec") or {}).get("event_window")
        if head.get("aggregation") == "event_time_mean" and head.get("event_times"):
            event_times = [int(e) for e in head["event_times"]]
        elif window:  # an ATT over the treated observations inside the event window
            event_times = [0, int(window[1])]
        else:
            event_times = None
        out.append({"model": model, "estimator": m.get("estimator"), "outcome": row["outcome"],
                    "term": row["term"], "estimate": float(row["estimate"]), "se": float(row["se"]),
                    "ci_low": float(row["ci_low"]), "ci_high": float(row["ci_high"]),
                    "alpha": float(m.get("alpha", 0.05)),
                    "event_times": event_times})
    return out


# --------------------------------------------------------------------------- job
def run_policy(cfg: dict[str, Any], io: StageIO) -> dict[str, pd.DataFrame]:
    """Compute and write every table and figure of the policy chapter; returns the
    published tables (before the stand-in mark) by output name."""
    from ifm_eval.outputs import style
    from ifm_eval.outputs.disclosure import check_files, min_cell
    from ifm_eval.outputs.tablefmt import write_csv
    from ifm_eval.policy import cost as C
    from ifm_eval.policy import demand as D
    from ifm_eval.policy import figures as FIG
    from ifm_eval.policy import funding as FU
    from ifm_eval.policy import indicators as K
    from ifm_eval.policy import params

    io.require(inputs=INPUTS, optional_inputs=ESTIMATE_INPUTS, outputs=OUTPUTS)
    par = params(cfg)
    mc = min_cell(cfg)
    synthetic, lang = style.is_synthetic(cfg), style.language(cfg)
    levels = [float(x) for x in par["levels"]]
    seed = int(cfg.get("seed", 0))
    lin = Lineage("policy")

    refugees = D.check_refugees(pd.read_parquet(io.input("refugees")), str(io.input("refugees")))
    verb = pd.read_parquet(io.input("funding_verbaende"))
    members = pd.read_parquet(io.input("funding_members"))
    posts = pd.read_parquet(io.input("posts"))
    kpi = K.check_kpi(pd.read_parquet(io.input("kpi")), str(io.input("kpi")))
    panel = pd.read_parquet(io.input("panel"))
    panel["month"] = _month(panel["month"])
    for name, df in (("refugees", refugees), ("funding_verbaende", verb), ("funding_members", members),
                     ("posts", posts), ("kpi", kpi), ("panel", panel)):
        lin.add(name, "read", len(df), len(df), "read", f"{io.input(name)}")

    # ---------------------------------------------------------------- funding
    months = pd.date_range(refugees["month"].min(), refugees["month"].max(), freq="MS")
    rates = FU.verband_rates(verb, par["funding_period_months"], str(io.input("funding_verbaende")))
    fp = FU.funding_panel(members, verb, posts, months, par["funding_period_months"],
                          sources={k: str(io.input(k)) for k in ("funding_verbaende", "funding_members", "posts")})
    no_appr = fp[fp["verband_id"].isna()]["ags"].nunique()
    if no_appr:
        lin.add("posts", "posts without approval", int(no_appr), int(no_appr), "flag",
                "municipalities with IM posts but no funding approval: funded VZÄ 0")
    retro = fp[(fp["filled_vza"] > 0) & (fp["funded_vza"] == 0)]
    lin.add("posts", "filled before approval", len(fp), len(fp), "flag",
            f"{len(retro)} municipality-months ({retro['ags'].nunique()} municipalities) with filled posts before "
            "the approval month (retroactive funding): counted as filled, not as funded",
            n_affected=len(retro))
    late = pd.to_datetime(posts["beginn"]) > months.max() + pd.offsets.MonthEnd(0)
    if late.any():
        lin.add("posts", "posts after panel end", len(posts), len(posts), "flag",
                f"{int(late.sum())} post rows start after {months.max():%Y-%m}: outside the window", n_affected=int(late.sum()))
    fs = FU.state_monthly(fp)
    ft = FU.fill_times(fp, members, rates, posts, par["fill_thresholds"])
    ft_sum = FU.fill_time_summary(ft, par["fill_thresholds"], mc)
    funded_m = fs.set_index("month")["funded_vza"]
    filled_m = fs.set_index("month")["filled_vza"]
    last = months.max()
    funded_now = fp[fp["month"] == last].groupby("ags")["funded_vza"].sum()
    filled_now = fp[fp["month"] == last].groupby("ags")["filled_vza"].sum()

    # ---------------------------------------------------------------- demand
    series = D.state_series(refugees)
    model = par["model"]
    if model == "auto":
        model, mape = D.select_model(series, par["fit_months"], par["backtest_months"], par["backtest_origins"])
        lin.add("refugees", "demand model", len(series), len(series), "flag",
                f"model chosen by backtest MAPE: {model} ("
                + ", ".join(f"{k} {v:.2f}%" for k, v in mape.items()) + ")", n_affected=0)
    fit, fc, muni_proj = D.project(refugees, par["horizon_months"], par["fit_months"], par["share_months"], levels,
                                   model, par["backtest_months"], par["backtest_origins"])
    zero = int((muni_proj.groupby("ags")["share"].first() == 0).sum())
    lin.add("refugees", "municipal shares", refugees["ags"].nunique(), refugees["ags"].nunique(), "flag",
            f"{zero} municipalities without refugees in AU in the last {par['share_months']} months: projected 0",
            n_affected=zero)
    state = D.state_demand_table(series, fc, funded_m, filled_m, levels)
    bt = D.backtest(series, par["fit_months"], par["backtest_months"], par["backtest_origins"], levels, model)
    bts = D.backtest_summary(bt, levels)
    mbt = D.municipality_backtest(refugees, par["fit_months"], par["share_months"], par["backtest_months"],
                                  par["backtest_origins"], levels, model)
    bt_table = bts.merge(mbt.drop(columns=["origin", "month"]).add_prefix("muni_").rename(columns={"muni_h": "h"}),
                         on="h", how="left")
    muni_demand = D.municipality_demand_table(refugees, muni_proj, funded_now, filled_now)

    # ---------------------------------------------------------------- indicators
    expected = K.expected_quarters(kpi, posts)
    admin = K.admin_quarterly(panel)
    table = K.analysis_table(kpi, expected, admin)
    coverage = K.coverage_table(kpi, expected)
    no_row = int(coverage["n_quarters_without_report_row"].iloc[0])
    lin.add("kpi", "expected quarters", len(kpi), len(expected), "expand",
            f"{no_row} expected municipality-quarters (first post or report to the last quarter) without a report row",
            n_affected=abs(len(expected) - len(kpi)))
    for k in K.KPIS:
        o = K.TARGET[k]
        not_rep = int(table[k].isna().sum())
        no_cl = int((table[k].notna() & ~(table["clients"] > 0)).sum())
        used = table[f"x_{k}"].notna() & table[f"d_{o}"].notna() & (table["refugees_mean"] > 0)
        no_admin = int((table[f"x_{k}"].notna() & ~used).sum())
        lin.add("kpi", f"{k} vs {o}", len(table), int(used.sum()), "drop",
                f"municipality-quarters left out of the correlation (not imputed): KPI not reported {not_rep}, "
                f"clients not reported or 0 {no_cl}, administrative change missing (e.g. B1 not reported) or no refugees {no_admin}")
    corr = K.correlations(table, int(par["kpi_bootstrap"]), seed)
    verdicts = K.verdict_table(corr, coverage, par["kpi_tracks_r"], par["kpi_weak_r"])

    # ---------------------------------------------------------------- cost
    heads = _headlines(io.input_list("tidy"), io.input_list("meta"), lin)
    costs = C.cost_table(heads, panel, fp, level=par["cost_level"], draws=int(par["cost_draws"]), seed=seed) \
        if heads else pd.DataFrame(columns=["model"])

    # ---------------------------------------------------------------- publish
    fund_cols = ["funded_vza", "eur_funded"]
    fill_cols = ["filled_vza"]
    share_cols = ["unfilled_share", "shortfall_share", "shortfall_verband_share", "shortfall_vza", "excess_vza",
                  "shortfall_verband_vza", "eur_shortfall_verband"]
    fs_pub = protect(fs, mc, {"n_municipalities_funded": fund_cols + share_cols,
                              "n_municipalities_filled": fill_cols + share_cols})
    n_f = fs.set_index("month")["n_municipalities_funded"]
    state["n_municipalities_funded"] = state["month"].map(n_f).fillna(n_f.iloc[-1]).astype(int)
    state_pub = protect(state, mc, {"n_municipalities_funded": ["funded_vza", "filled_vza", "caseload_funded",
                                                                "caseload_filled"]})
    summary = _summary(fit, state, bts, mbt, fs, fp, rates, ft_sum, verdicts, costs, par, last)
    tables = {"summary": summary, "demand_state": state_pub, "demand_backtest": bt_table, "funding_state": fs_pub,
              "fill_times": ft_sum, "kpi_indicators": protect(verdicts, mc),
              "kpi_correlations": protect(corr, mc, {"n_municipalities": ["r", "ci_low", "ci_high"]}),
              "cost": protect(costs, mc)}
    written = []
    for name, df in tables.items():
        written.append(write_csv(df, io.output(name), synthetic=synthetic))
    bad = check_files(written, mc)
    if bad:
        raise RuntimeError("policy: published tables fail the disclosure check: " + "; ".join(map(str, bad[:5])))

    src = "Ministerium für Soziales und Integration (Förderdaten, Kennzahlen); Statistik AU" if lang == "de" else \
        "Ministry of Social Affairs (funding data, KPIs); AU statistics"
    for key, fig, note in (
        ("demand", FIG.demand_figure(state, bt, bts, levels, lang, fit.model),
         _demand_note(fit, par, lang)),
        ("funding", FIG.funding_figure(fs, lang), _funding_note(par, lang)),
        ("kpi", FIG.kpi_figure(coverage, corr, lang, verdicts), _kpi_note(par, lang)),
    ):
        files = style.finish_figure(fig, io.output(f"{key}_figure").with_suffix(""), synthetic=synthetic,
                                    source=src, note=note, lang=lang)
        assert {p.resolve() for p in files} == {io.output(f"{key}_figure").resolve(), io.output(f"{key}_pdf").resolve()}

    # ---------------------------------------------------------------- processed (municipal)
    muni_demand.to_parquet(io.output("demand_municipality"), index=False)
    fp.to_parquet(io.output("funding_municipality"), index=False)
    ft.to_parquet(io.output("fill_times_municipality"), index=False)
    table.to_parquet(io.output("kpi_quarterly"), index=False)
    lin.write(io.output("lineage"))
    log.info("policy: %d municipalities, %d months; %d estimates costed", refugees["ags"].nunique(), len(months), len(costs))
    return tables


# --------------------------------------------------------------------------- key figures
def _summary(fit, state, bts, mbt, fs, fp, rates, ft_sum, verdicts, costs, par, last) -> pd.DataFrame:
    rows: list[tuple[str, str, Any, str]] = []

    def add(section: str, indicator: str, value: Any, unit: str = "") -> None:
        rows.append((section, indicator, value, unit))

    obs = state[state["kind"] == "observed"].iloc[-1]
    end = state[state["kind"] == "projected"].iloc[-1]
    add("demand", "last observed month", f"{last:%Y-%m}")
    add("demand", "refugees in AU, last observed month", float(obs["refugees"]), "persons")
    add("demand", "model", fit.model)
    add("demand", "monthly growth carried forward", fit.monthly_growth_pct, "% per month")
    add("demand", "fit window", f"{par['fit_months']} growth rates up to {fit.origin:%Y-%m}")
    add("demand", f"projected refugees in AU, {end['month']:%Y-%m}", float(end["refugees"]), "persons")
    for lv in par["levels"]:
        k = f"{round(lv * 100):d}"
        add("demand", f"projected {end['month']:%Y-%m}, {k}% interval low", float(end[f"refugees_lo{k}"]), "persons")
        add("demand", f"projected {end['month']:%Y-%m}, {k}% interval high", float(end[f"refugees_hi{k}"]), "persons")
    h = int(bts["h"].max())
    b = bts.set_index("h").loc[h]
    add("backtest", f"state MAPE at h={h} (model)", float(b["mape"]), "%")
    add("backtest", f"state MAPE at h={h} (other model)", float(b["other_mape"]), "%")
    add("backtest", f"state MAPE at h={h} (naive no-change)", float(b["naive_mape"]), "%")
    add("backtest", f"state bias at h={h}", float(b["bias_pct"]), "%")
    add("backtest", "origins", int(b["n_origins"]))
    for lv in par["levels"]:
        k = f"{round(lv * 100):d}"
        add("backtest", f"state coverage of the {k}% interval (all h)", float(bts[f"coverage{k}"].mean()), "share")
        add("backtest", f"municipal coverage of the {k}% interval at h={h}",
            float(mbt.set_index("h").loc[h, f"coverage{k}"]), "share")
    add("backtest", f"municipal WAPE at h={h}", float(mbt.set_index("h").loc[h, "wape"]), "%")
    add("backtest", f"municipal WAPE at h={h}, true state total", float(mbt.set_index("h").loc[h, "wape_share_only"]), "%")
    add("caseload", "refugees per funded VZÄ, last observed month", float(obs["caseload_funded"]), "persons/VZÄ")
    add("caseload", "refugees per filled VZÄ, last observed month", float(obs["caseload_filled"]), "persons/VZÄ")
    add("caseload", f"refugees per funded VZÄ, {end['month']:%Y-%m} (VZÄ unchanged)", float(end["caseload_funded"]),
        "persons/VZÄ")
    add("caseload", f"funded VZÄ keeping today's caseload, {end['month']:%Y-%m}", float(end["vza_needed"]), "VZÄ")
    for lv in par["levels"]:
        k = f"{round(lv * 100):d}"
        add("caseload", f"... {k}% interval", f"{end[f'vza_needed_lo{k}']:.1f} - {end[f'vza_needed_hi{k}']:.1f}", "VZÄ")
    s = fs.set_index("month")
    add("funding", "funded VZÄ, last observed month", float(s.loc[last, "funded_vza"]), "VZÄ")
    add("funding", "filled VZÄ, last observed month", float(s.loc[last, "filled_vza"]), "VZÄ")
    add("funding", "unfilled share (net), last observed month", float(s.loc[last, "unfilled_share"]), "share")
    on = s[s["funded_vza"] > 0]
    add("funding", "unfilled share (net), all funded VZÄ-months", 1 - float(on["filled_vza"].sum() / on["funded_vza"].sum()),
        "share")
    add("funding", "shortfall share (pooled per Verband), all funded VZÄ-months",
        float(on["shortfall_verband_vza"].sum() / on["funded_vza"].sum()), "share")
    add("funding", "funded VZÄ-months", float(on["funded_vza"].sum()), "VZÄ-months")
    add("funding", "filled VZÄ-months (from the approval month on)", float(fp.loc[fp["funded_vza"] > 0, "filled_vza"].sum()), "VZÄ-months")
    add("funding", f"funding to {last:%Y-%m} at the approved rate", float(on["eur_funded"].sum()), "EUR")
    add("funding", "funding not used for filled posts (Verband shortfall x rate)", float(on["eur_shortfall_verband"].sum()), "EUR")
    add("funding", "funding per VZÄ-year, median over Verbände", float(rates["eur_per_vza_year"].median()), "EUR")
    add("funding", "funding per VZÄ-year, min", float(rates["eur_per_vza_year"].min()), "EUR")
    add("funding", "funding per VZÄ-year, max", float(rates["eur_per_vza_year"].max()), "EUR")
    add("funding", "funding period assumed for the Fördersumme", int(par["funding_period_months"]), "months")
    a = ft_sum.set_index("group").loc["all"]
    add("funding", "months from approval to first post, median", float(a["months_to_first_post_median"]), "months")
    for p in par["fill_thresholds"]:
        k = f"{round(float(p) * 100):d}"
        add("funding", f"months from approval to {k}% filled, median", float(a[f"months_to_fill{k}_median"]), "months")
        add("funding", f"share of municipalities reaching {k}% filled", float(a[f"share_reached{k}"]), "share")
    for r in verdicts.itertuples(index=False):
        add("indicators", f"{r.kpi}: verdict (vs {r.outcome})", r.verdict)
        add("indicators", f"{r.kpi}: within-municipality r", float(r.r_within))
        add("indicators", f"{r.kpi}: coverage", float(r.coverage), "share")
    for r in costs.itertuples(index=False):
        add("cost", f"{r.model}: effect ({r.term})", f"{r.effect_pp:.3f} [{r.effect_low:.3f}, {r.effect_high:.3f}]", "pp")
        add("cost", f"{r.model}: EUR per additional person-year ({r.count})",
            f"{r.eur_per_person_year:.0f} [{r.eur_per_person_year_low:.0f}, "
            f"{'unbounded' if not np.isfinite(r.eur_per_person_year_high) else f'{r.eur_per_person_year_high:.0f}'}]",
            r.cost_status)
        add("cost", f"{r.model}: additional person-months per million EUR",
            f"{r.extra_per_million_eur:.1f} [{r.extra_per_million_eur_low:.1f}, {r.extra_per_million_eur_high:.1f}]")
    return pd.DataFrame(rows, columns=["section", "indicator", "value", "unit"])


def _demand_note(fit, par, lang: str) -> str:
    from ifm_eval.outputs import style

    if lang == "de":
        what = {"local_trend": "Lokaler Trend (Wachstumsrate als Random Walk)",
                "drift": "Log-Random-Walk mit Drift"}[fit.model]
        return (f"{what}, geschätzt auf {par['fit_months']} Monatsraten bis {fit.origin:%m/%Y} "
                f"({style.format_number(fit.monthly_growth_pct, 2, lang, signed=True)} % je Monat fortgeschrieben); "
                f"Rückschau: {par['backtest_origins']} Prognoseursprünge, {par['backtest_months']} Monate Horizont.")
    what = {"local_trend": "Local trend (growth rate a random walk)", "drift": "Log random walk with drift"}[fit.model]
    return (f"{what} fitted on {par['fit_months']} monthly growth rates to {fit.origin:%m/%Y} "
            f"({fit.monthly_growth_pct:+.2f}% per month carried forward); backtest: {par['backtest_origins']} origins, "
            f"{par['backtest_months']}-month horizon.")


def _funding_note(par, lang: str) -> str:
    if lang == "de":
        return ("Gefördert: bewilligte VZÄ ab dem Bewilligungsmonat; besetzt: Summe VZÄ der laufenden Stellen x Anteil "
                "der Kommune, tagesgenau. Fehlbestand je Verband: max(gefördert - besetzt, 0), im Verband verrechnet.")
    return ("Funded: approved FTE from the approval month; filled: sum of running posts' FTE x municipal share, "
            "day-weighted. Shortfall per Verband: max(funded - filled, 0), pooled within the Verband.")


def _kpi_note(par, lang: str) -> str:
    from ifm_eval.outputs import style

    if lang == "de":
        return (f"Korrelation (gewichtet, innerhalb der Kommunen) der Kennzahl je 100 Klienten mit der Veränderung des "
                f"Bestands je 100 Geflüchtete im Quartal; Ziel-Paar umrandet. Urteil: r ≥ "
                f"{style.format_number(par['kpi_tracks_r'], 1, lang)} bildet ab, r ≥ "
                f"{style.format_number(par['kpi_weak_r'], 1, lang)} schwach (jeweils KI > 0).")
    return (f"Weighted within-municipality correlation of the KPI per 100 clients with the quarterly change of the "
            f"stock per 100 refugees; target pair boxed. Verdict: r >= {par['kpi_tracks_r']:g} tracks, "
            f"r >= {par['kpi_weak_r']:g} weak (CI > 0).")
