"""Stages ``pretrends`` (joint pre-trend Wald test and the pre-test's power, Roth 2022) and
``twfe-diagnostics`` (Goodman-Bacon decomposition and de Chaisemartin–D'Haultfœuille weights
of the static TWFE) for the diagnosed specifications."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from ifm_eval.credibility.event_studies import diagnostic_event_study
from ifm_eval.credibility.select import diagnosed_specs, read_meta, read_tidy
from ifm_eval.stage_io import StageIO

log = logging.getLogger(__name__)
ALPHA = 0.05
#: Integration accuracy of the pre-test probabilities in this stage (R pretrends: mvtnorm's
#: 1e-3); 1e-4 keeps a 12-pre-period event study at about a second per quantity.
ABSEPS = 1e-4


def _target_vectors(es) -> dict[str, np.ndarray]:
    """Post-period averaging vectors over ``es.t``: the headline (mean over its event
    months), e = 0 and the last headline month."""
    post = es.t >= 0
    out = {}
    head = np.isin(es.t, es.headline_events) & post
    if head.any():
        out["headline"] = head / head.sum()
    for e in (0, max(es.headline_events) if es.headline_events else None):
        if e is not None and (es.t == e).any():
            out[f"e{e:+d}"] = (es.t == e).astype(float)
    return out


def pretrend_rows(es, powers: list[float]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The Wald row and the power rows (one per target power) of one event study."""
    from ifm_eval.diagnostics import pretest_wald, pretrend_power, slope_for_power

    base = {"model": es.model, "estimator": es.estimator, "outcome": es.outcome, "reference": es.reference,
            "n_pre": es.n_pre, "n_post": es.n_post, "source": es.source, "note": "; ".join(es.notes) or None}
    if es.n_pre == 0:
        return {**base, "wald": np.nan, "df": 0, "p_wald": np.nan, "max_abs_t_pre": np.nan}, []
    w = pretest_wald(es.beta, es.sigma, es.t, es.reference)
    pre = es.t < es.reference
    tpre = es.beta[pre] / np.sqrt(np.diag(es.sigma)[pre])
    wald = {**base, "wald": w["statistic"], "df": w["df"], "p_wald": w["p_value"],
            "max_abs_t_pre": float(np.max(np.abs(tpre))),
            "passes_pretest": bool(np.all(np.abs(tpre) <= 1.959963984540054))}
    rows = []
    targets = _target_vectors(es)
    for pw in powers:
        slope = slope_for_power(es.sigma, es.t, es.reference, pw, ALPHA, abseps=ABSEPS, xtol=1e-8)
        delta = slope * (es.t - es.reference)
        res = pretrend_power(es.beta, es.sigma, es.t, delta, es.reference, ALPHA, abseps=ABSEPS)
        plot = res.event_plot.set_index("t")
        m_after = plot.loc[es.t, "mean_after_pretest"].to_numpy(float)
        row = {**base, "target_power": pw, "slope": slope, "power": res.power, "bayes_factor": res.bayes_factor,
               "likelihood_ratio": res.likelihood_ratio}
        for key, v in targets.items():
            row[f"bias_{key}"] = float(v @ delta)  # the violation's bias in the estimate
            row[f"bias_{key}_after_pretest"] = float(v @ m_after)  # expected estimate given a passed pre-test
            row[f"estimate_{key}"] = float(v @ es.beta)
        rows.append(row)
    return wald, rows


def pretrends(cfg: dict[str, Any], io: StageIO, args: Any = None) -> pd.DataFrame:
    """Inputs ``tidy``, ``meta`` (diagnosed specs) and ``panel``; outputs ``table`` (one row
    per event study: Wald statistic, df, p, largest pre-period |t|) and ``power`` (per event
    study and target power: the linear-trend slope the pre-test detects with that power,
    the bias it leaves in the headline / e = 0 / last month, unconditional and given a passed
    pre-test)."""
    from ifm_eval.outputs import style
    from ifm_eval.outputs.tablefmt import write_csv

    io.require(inputs=("tidy", "meta", "panel"), outputs=("table", "power"))
    tidy = read_tidy(io.input_list("tidy"))
    meta = read_meta(io.input_list("meta"))
    panel = pd.read_parquet(io.input("panel"))
    powers = [float(p) for p in cfg["credibility"]["pretrends"]["power"]]
    walds, pows = [], []
    for name, spec in diagnosed_specs(cfg).items():
        es = diagnostic_event_study(name, spec, tidy, meta.get(name, {}), panel)
        if es is None:
            continue
        w, p = pretrend_rows(es, powers)
        walds.append(w)
        pows += p
        log.info("%s: pre-trend Wald %.2f (df %d, p %.3f)", name, w["wald"], w["df"], w["p_wald"])
    synthetic = style.is_synthetic(cfg)
    table = pd.DataFrame(walds)
    write_csv(table, io.output("table"), synthetic=synthetic)
    write_csv(pd.DataFrame(pows), io.output("power"), synthetic=synthetic)
    return table


def balanced_sample(panel: pd.DataFrame, spec: dict[str, Any], outcome: str) -> tuple[pd.DataFrame, str]:
    """The static TWFE's sample for the decompositions: the spec's sample and cohort
    column, municipalities observed with the outcome in every month of it (Goodman-Bacon's
    formulas need a balanced panel); decomposed unweighted, without covariates. Returns
    (data, cohort column)."""
    from ifm_eval.estimators.runner import prepare_data

    data, gcol, _ = prepare_data(panel, {**spec, "outcome": outcome})
    data = data[data[outcome].notna()]
    months = data["t"].nunique()
    full = data.groupby("ags")["t"].transform("nunique") == months
    return data[full].copy(), gcol


def twfe_diagnostics(cfg: dict[str, Any], io: StageIO, args: Any = None) -> pd.DataFrame:
    """Inputs ``panel``, ``tidy``/``meta`` (diagnosed specs; the static TWFE ones are
    decomposed) and, on stand-in data, ``truth_counts`` (the planted cell effects); outputs
    ``bacon`` (every 2x2 comparison), ``bacon_summary`` (by type, with the share of weight on
    later-vs-earlier comparisons), ``weights`` (dCDH summary per outcome, and on stand-in data
    sum w * tau against beta) and the scatter figure."""
    from ifm_eval.credibility.figures import bacon_figure
    from ifm_eval.diagnostics import (
        bacon_decomposition,
        bacon_summary,
        twfe_weights,
        twfe_weights_summary,
    )
    from ifm_eval.outputs import style
    from ifm_eval.outputs.tablefmt import write_csv
    from ifm_eval.validation import cell_effects

    io.require(inputs=("panel", "tidy", "meta"), outputs=("bacon", "bacon_summary", "weights", "figure", "pdf"),
               optional_inputs=("truth_counts",))
    panel = pd.read_parquet(io.input("panel"))
    specs = {n: s for n, s in diagnosed_specs(cfg).items() if s["estimator"] == "twfe_static"}
    truth = io.optional_input("truth_counts")
    tau = cell_effects(panel, pd.read_parquet(truth)) if truth else None
    decs, sums, wrows = [], [], []
    for name, spec in specs.items():
        out = spec["outcome"]
        data, gcol = balanced_sample(panel, spec, out)
        dec = bacon_decomposition(data, out, "ags", "t", gcol)
        beta = float(dec.attrs["twfe"])
        decs.append(dec.assign(model=name, outcome=out))
        sm = bacon_summary(dec).assign(model=name, outcome=out, twfe=beta, n_units=int(data["ags"].nunique()),
                                       n_periods=int(data["t"].nunique()))
        sums.append(sm)
        D = (data[gcol].gt(0) & (data["t"] >= data[gcol])).astype(int)
        w = twfe_weights(data.assign(_d=D.to_numpy()), "ags", "t", "_d")
        summ = twfe_weights_summary(w, beta)
        row = {"model": name, "outcome": out, "twfe": beta, **{k: v for k, v in summ.items() if np.isscalar(v) or v is None}}
        if tau is not None:  # what the TWFE targets given the planted effects: sum w * tau
            from ifm_eval.validation import tau_column

            col = tau_column(out)
            m = w.merge(tau[["ags", "t", col]].rename(columns={"ags": "unit", "t": "time", col: "tau"}),
                        on=["unit", "time"], how="left")
            ok = m["tau"].notna()
            row["sum_w_tau"] = float((m.loc[ok, "weight"] * m.loc[ok, "tau"]).sum())
            row["att_tau"] = float(m.loc[ok, "tau"].mean())
            row["n_cells_without_tau"] = int((~ok).sum())
        wrows.append(row)
        log.info("%s: TWFE %.3f; later-vs-earlier weight %.3f; %d negative dCDH weights", name, beta,
                 float(sm.loc[sm["type"] == "later_vs_earlier", "weight"].sum()), int(summ.get("n_negative", 0)))
    synthetic = style.is_synthetic(cfg)
    bacon = pd.concat(decs, ignore_index=True) if decs else pd.DataFrame()
    write_csv(bacon, io.output("bacon"), synthetic=synthetic)
    write_csv(pd.concat(sums, ignore_index=True) if sums else pd.DataFrame(), io.output("bacon_summary"),
              synthetic=synthetic)
    write_csv(pd.DataFrame(wrows), io.output("weights"), synthetic=synthetic)
    lang = style.language(cfg)
    style.finish_figure(bacon_figure(bacon, lang), io.output("figure").with_suffix(""), synthetic=synthetic,
                        lang=lang, source="ifm_eval.diagnostics.bacon_decomposition",
                        note=("statische TWFE, ungewichtet, ohne Kovariaten, balanciertes Panel" if lang == "de"
                              else "static TWFE, unweighted, no covariates, balanced panel"))
    return bacon
