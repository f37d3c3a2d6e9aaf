"""Figures of the policy chapter (matplotlib, grayscale-readable, German labels by default).

Each function returns a figure; :func:`ifm_eval.outputs.style.finish_figure` adds the
footer and the stand-in mark and writes PNG and PDF with fixed metadata (no timestamps),
so that the files are byte-identical between runs.

* :func:`demand_figure` — state-wide refugees in AU, observed and projected with the
  prediction bands, the latest backtest forecast against what happened, and the backtest
  error by horizon next to the naive no-change forecast.
* :func:`funding_figure` — funded vs filled VZÄ over time and the unfilled share.
* :func:`kpi_figure` — KPI coverage and the within-municipality correlation of each KPI
  with each administrative outcome.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ifm_eval.outputs import style  # noqa: E402

TEXT = {
    "refugees": ("Geflüchtete in Anschlussunterbringung", "Refugees in follow-up housing"),
    "observed": ("beobachtet", "observed"),
    "projected": ("Prognose (Median)", "projection (median)"),
    "band": ("{k} %-Prognoseintervall", "{k}% prediction interval"),
    "backtest": ("Rückschau-Prognose ab {m} ({k} %-Intervall)", "backtest forecast from {m} ({k}% interval)"),
    "mape": ("Mittlerer absoluter Fehler (%)", "Mean absolute percentage error (%)"),
    "horizon": ("Prognosehorizont (Monate)", "Forecast horizon (months)"),
    "model": ("Modell: {m}", "model: {m}"),
    "other": ("Alternative: {m}", "alternative: {m}"),
    "local_trend": ("lokaler Trend", "local trend"),
    "drift": ("Drift", "drift"),
    "naive": ("naiv (unverändert)", "naive (no change)"),
    "funded": ("geförderte VZÄ", "funded FTE"),
    "filled": ("besetzte VZÄ", "filled FTE"),
    "unfilled": ("nicht besetzter Anteil (%)", "unfilled share (%)"),
    "shortfall": ("Fehlbestand je Verband (%)", "shortfall per Verband (%)"),
    "coverage": ("Berichtsquote (%)", "reporting coverage (%)"),
    "corr": ("Korrelation innerhalb der Kommunen", "within-municipality correlation"),
    "a_demand": ("a) Bedarf: Geflüchtete in AU", "a) Demand: refugees in AU"),
    "b_backtest": ("b) Rückschau", "b) Backtest"),
    "a_funding": ("a) Geförderte und besetzte Stellen", "a) Funded and filled posts"),
    "b_funding": ("b) Nicht besetzter Anteil", "b) Unfilled share"),
    "a_kpi": ("a) Berichtsquote", "a) Reporting coverage"),
    "b_kpi": ("b) Kennzahl vs. Verwaltungsdaten", "b) KPI vs administrative data"),
}
KPI_LABELS = {
    "clients": ("Klienten", "clients"), "first_talks": ("Erstgespräche", "first talks"),
    "integration_plans": ("Integrationspläne", "integration plans"),
    "to_language_course": ("Übergänge Sprachkurs", "to language course"),
    "to_training": ("Übergänge Ausbildung", "to training"), "to_work": ("Übergänge Arbeit", "to work"),
}
OUTCOME_LABELS = {
    "b1_holders": ("B1", "B1"), "in_training": ("Ausbildung", "training"),
    "employed": ("Beschäftigung", "employment"), "milestones": ("Meilenstein", "any milestone"),
}
VERDICT_LABELS = {"tracks": ("bildet ab", "tracks"), "weak": ("schwach", "weak"),
                  "does not track": ("bildet nicht ab", "does not track")}


def _t(key: str, lang: str, table: dict = TEXT) -> str:
    de, en = table[key]
    return de if lang == "de" else en


def demand_figure(state: pd.DataFrame, bt: pd.DataFrame, bt_summary: pd.DataFrame,
                  levels: list[float], lang: str = "de", model: str = "local_trend"):
    """``state``: :func:`.demand.state_demand_table`; ``bt`` / ``bt_summary``: the backtest
    and its per-horizon summary; ``model``: the model used (the other one is shown in the
    backtest panel)."""
    other_model = "drift" if model == "local_trend" else "local_trend"
    style.apply_style()
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(9.0, 3.9), gridspec_kw={"width_ratios": [2.2, 1]})
    obs = state[state["kind"] == "observed"]
    proj = state[state["kind"] == "projected"]
    if len(bt):  # show the history from a year before the earliest backtest origin
        obs = obs[obs["month"] >= bt["origin"].min() - pd.DateOffset(months=12)]
    ax.plot(obs["month"], obs["refugees"], color="black", lw=1.4, label=_t("observed", lang))
    shades = ["0.85", "0.7", "0.6"]
    for i, lv in enumerate(sorted(levels, reverse=True)):
        k = f"{round(lv * 100):d}"
        ax.fill_between(proj["month"], proj[f"refugees_lo{k}"], proj[f"refugees_hi{k}"], color=shades[i % 3],
                        lw=0, label=_t("band", lang).format(k=k))
    ax.plot(proj["month"], proj["refugees"], color="black", ls="--", lw=1.4, label=_t("projected", lang))
    if len(bt):
        last = bt[bt["origin"] == bt["origin"].max()]
        k = f"{round(min(levels) * 100):d}"
        ax.plot(last["month"], last["forecast"], color="0.35", ls=":", lw=1.6,
                label=_t("backtest", lang).format(m=f"{last['origin'].iloc[0]:%m/%Y}", k=k))
        ax.fill_between(last["month"], last[f"lo{k}"], last[f"hi{k}"], color="0.35", alpha=0.15, lw=0)
    ax.set_ylabel(_t("refugees", lang))
    ax.set_title(_t("a_demand", lang), loc="left")
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _p: style.format_int(v, lang)))
    ax.legend(loc="lower left", fontsize=7)
    bx.plot(bt_summary["h"], bt_summary["mape"], **{**style.series_style(0), "ms": 3},
            label=_t("model", lang).format(m=_t(model, lang)))
    if "other_mape" in bt_summary:
        bx.plot(bt_summary["h"], bt_summary["other_mape"], **{**style.series_style(2), "ms": 3},
                label=_t("other", lang).format(m=_t(other_model, lang)))
    bx.plot(bt_summary["h"], bt_summary["naive_mape"], **{**style.series_style(1), "ms": 3}, label=_t("naive", lang))
    bx.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    bx.set_xlabel(_t("horizon", lang))
    bx.set_ylabel(_t("mape", lang))
    bx.set_ylim(bottom=0)
    bx.set_title(_t("b_backtest", lang), loc="left")
    bx.legend(fontsize=7)
    fig.tight_layout()
    return fig


def funding_figure(state: pd.DataFrame, lang: str = "de"):
    """``state``: :func:`.funding.state_monthly`."""
    style.apply_style()
    fig, (ax, bx) = plt.subplots(2, 1, figsize=(7.0, 5.0), sharex=True, gridspec_kw={"height_ratios": [2, 1]})
    s = state.sort_values("month")
    s = s[(s["funded_vza"] > 0) | (s["filled_vza"] > 0)]
    ax.step(s["month"], s["funded_vza"], where="post", color="black", lw=1.4, label=_t("funded", lang))
    ax.plot(s["month"], s["filled_vza"], color="0.45", ls="--", lw=1.4, label=_t("filled", lang))
    ax.fill_between(s["month"], s["filled_vza"], s["funded_vza"], where=s["funded_vza"] > s["filled_vza"],
                    color="0.85", lw=0, step=None)
    ax.set_ylabel(style.label("vza", lang))
    ax.set_title(_t("a_funding", lang), loc="left")
    ax.legend(loc="lower right")
    bx.plot(s["month"], 100 * s["unfilled_share"], color="black", lw=1.2, label=_t("unfilled", lang))
    bx.plot(s["month"], 100 * s["shortfall_verband_share"], color="0.5", ls=":", lw=1.4, label=_t("shortfall", lang))
    bx.axhline(0, color="0.6", lw=0.6)
    bx.set_ylabel("%")
    bx.set_title(_t("b_funding", lang), loc="left")
    bx.legend(fontsize=7)
    fig.tight_layout()
    return fig


def kpi_figure(coverage: pd.DataFrame, corr: pd.DataFrame, lang: str = "de", verdicts: pd.DataFrame | None = None):
    """``coverage``: :func:`.indicators.coverage_table`; ``corr``: :func:`.indicators.correlations`;
    ``verdicts`` (optional): :func:`.indicators.verdict_table`, shown beside the KPI names."""
    from ifm_eval.policy.indicators import KPIS, OUTCOMES, TARGET

    style.apply_style()
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(9.0, 3.8), gridspec_kw={"width_ratios": [1, 1.5]})
    cov = coverage.set_index("kpi").reindex(["clients", *KPIS])
    y = np.arange(len(cov))
    ax.barh(y, 100 * cov["coverage"], color="0.55", edgecolor="black", lw=0.5)
    for yi, v in zip(y, cov["coverage"], strict=True):
        ax.text(100 * v + 1, yi, style.format_pct(100 * v, 0, lang), va="center", fontsize=7)
    ax.set_yticks(y, [_t(k, lang, KPI_LABELS) for k in cov.index])
    ax.invert_yaxis()
    ax.set_xlim(0, 115)
    ax.set_xlabel(_t("coverage", lang))
    ax.set_title(_t("a_kpi", lang), loc="left")
    w = corr[corr["kind"] == "within"].pivot(index="kpi", columns="outcome", values="r").reindex(index=list(KPIS),
                                                                                               columns=list(OUTCOMES))
    im = bx.imshow(w.to_numpy(dtype=float), cmap=style.DIVERGING_CMAP, vmin=-1, vmax=1, aspect="auto")
    for i, k in enumerate(w.index):
        for j, o in enumerate(w.columns):
            v = w.iat[i, j]
            bx.text(j, i, "–" if not np.isfinite(v) else style.format_number(v, 2, lang), ha="center", va="center",
                    fontsize=7, color="white" if np.isfinite(v) and v < -0.4 else "black",
                    fontweight="bold" if TARGET[k] == o else "normal")
            if TARGET[k] == o:
                bx.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, lw=1.6, edgecolor="black"))
    bx.set_xticks(range(len(w.columns)), [_t(o, lang, OUTCOME_LABELS) for o in w.columns], fontsize=7)
    ylab = [_t(k, lang, KPI_LABELS) for k in w.index]
    if verdicts is not None:
        v = verdicts.set_index("kpi")["verdict"]
        ylab = [f"{lab}\n({_t(v[k], lang, VERDICT_LABELS)})" if k in v else lab for lab, k in zip(ylab, w.index, strict=True)]
    bx.set_yticks(range(len(w.index)), ylab, fontsize=7)
    bx.grid(False)
    bx.set_title(_t("b_kpi", lang), loc="left")
    cb = fig.colorbar(im, ax=bx, fraction=0.046, pad=0.03)
    cb.set_label(_t("corr", lang), fontsize=7)
    fig.tight_layout()
    return fig
