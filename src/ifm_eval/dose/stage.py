"""The ``dose_response`` job: one ``dose:`` spec on the panel (``run_spec``).

Inputs (``StageIO`` names): ``panel`` and, on stand-in data, ``truth_counts``.
Outputs (paths: :func:`ifm_eval.outputs.targets.dose_spec_paths`):

* ``table`` (``results/heterogeneity/<spec>.csv``): ``kind`` = ``aggregate`` (ATT^o, ACRT^o),
  ``event_time`` (ATT^o(e), ACRT^o(e)) and ``bin`` (the binned-dose Callaway & Sant'Anna
  cross-check next to the spline's bin average), with counts; on stand-in data the planted
  truth (``truth``) and whether the interval covers it;
* ``curve`` (``<spec>_curve.csv``): ATT(d), ACRT(d) with uniform and pointwise bands on the
  dose grid;
* ``meta`` (``<spec>.json``): spec, settings, counts, notes, the planted gradient;
* ``figure`` / ``pdf``: the dose-response curves with bands and the treated doses;
* ``lineage`` (``data/processed/lineage/dose_<spec>.csv``): the treated municipalities left
  out because their dose is missing or not positive (which, how many), the sample filter.

Sample, cohort column, weights and clusters are those of the spec (as for every
estimator, :func:`ifm_eval.estimators.runner.prepare_data`). The continuous-treatment
estimator has no covariates (unconditional parallel trends in every dose), so a dose spec
must set ``covariates: []`` (:mod:`ifm_eval.estimators.specs` says so by key). Its
multiplier bootstrap draws Rademacher weights per cluster (Webb weights are not
implemented for it; the spec's ``inference.bootstrap.weights`` does not apply).

**Planted truth** (stand-in data, :func:`planted_dose_truth`): the true effects of the
treated municipality-months in the cells ATT^o aggregates, with ATT^o's cell weights;
``acrt_overall``'s truth is their slope on the dose within cohort × month cells — the planted
dose gradient in the estimator's units (pp per dose unit). With a true effect linear in the
dose within each cell this is ACRT^o; otherwise it is its best linear approximation.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ifm_eval.lineage import Lineage
from ifm_eval.stage_io import StageIO

log = logging.getLogger(__name__)

OUTPUTS = ("table", "curve", "meta", "figure", "pdf", "lineage")
#: bins of the binned-dose cross-check (equal-frequency terciles of the treated doses)
N_BINS = 3

_DOSE_LABEL = {
    "vza_per_100_refugees": ("Geförderte VZÄ je 100 Geflüchtete", "Funded FTE per 100 refugees"),
    "capacity_per_100_refugees": ("Zusätzliche Beratungskapazität je 100 Geflüchtete",
                                  "Added counselling capacity per 100 refugees"),
}


def dose_label(dose: str, lang: str) -> str:
    de, en = _DOSE_LABEL.get(dose, (dose, dose))
    return de if lang == "de" else en


def dose_sample(panel: pd.DataFrame, spec: dict[str, Any], lineage: Lineage) -> tuple[pd.DataFrame, str, list[str]]:
    """The spec's estimation data with the treated municipalities whose dose is missing or
    not positive left out (recorded in ``lineage`` with their number and examples).
    Returns (data, cohort column, warnings)."""
    from ifm_eval.estimators.runner import UNIT, prepare_data

    dose = spec["dose"]
    if dose not in panel.columns:
        raise KeyError(f"panel lacks the dose column {dose!r} (spec key 'dose')")
    data, gcol, warns = prepare_data(panel, spec)
    lineage.add("panel", "sample", len(panel), len(data), "drop",
                f"spec sample {spec['sample']!r}" if spec["sample"] else "no sample filter")
    units = data.groupby(UNIT, sort=True).agg(g=(gcol, "first"), d=(dose, "first"))
    treated = units["g"] > 0
    missing = treated & units["d"].isna()
    nonpos = treated & units["d"].notna() & ~(units["d"] > 0)
    for mask, why in ((missing, "dose missing (survey item non-response or no funding record)"),
                      (nonpos, "dose not positive (no funded VZÄ / no capacity increase reported)")):
        if mask.any():
            ags = units.index[mask]
            n_rows = int(data[UNIT].isin(ags).sum())
            n0 = len(data)
            data = data[~data[UNIT].isin(ags)]
            eg = ", ".join(map(str, ags[:5])) + (" ..." if len(ags) > 5 else "")
            lineage.add("panel", f"treated without dose ({dose})", n0, len(data), "drop",
                        f"{len(ags)} treated municipalities ({n_rows} rows) left out: {why}; e.g. {eg}",
                        n_affected=n_rows)
            warns.append(f"{len(ags)} treated municipalities without a positive {dose} left out ({why})")
    n_t = int((units["g"] > 0).sum())
    kept = int(data.loc[data[gcol] > 0, UNIT].nunique())
    log.info("dose %s: %d of %d treated municipalities have a dose", dose, kept, n_t)
    return data, gcol, warns


def planted_dose_truth(cells: pd.DataFrame, data: pd.DataFrame, spec: dict[str, Any], gcol: str,
                       dose_cells: pd.DataFrame) -> dict[str, float]:
    """The planted ``att_overall`` and ``acrt_overall`` of a dose estimate.

    ``cells``: true effects per municipality-month (:func:`ifm_eval.validation.cell_effects`);
    ``dose_cells``: the estimate's (g, t) cells (``DoseResponseResult.cells``: ``cohort``,
    ``time``, aggregation ``weight``). Within each post-treatment cell with weight > 0 the
    true effects of its treated municipalities (spec weights) give the cell's true ATT and,
    regressed on the dose, its slope; ``att_overall`` is the weight-average of the cell ATTs
    (ATT^o's own aggregation), ``acrt_overall`` the pooled within-cell slope with each cell
    weighted by its aggregation weight (a stable version of the weight-average of the cell
    slopes)."""
    from ifm_eval.validation import TIME, UNIT, tau_column

    tcol = tau_column(spec["outcome"])
    om = dose_cells.loc[dose_cells["weight"] > 0, ["cohort", "time", "weight"]]
    om = om.rename(columns={"cohort": gcol, "time": TIME, "weight": "omega"})
    cols = [UNIT, TIME, gcol, spec["dose"]] + ([spec["weights"]] if spec["weights"] else [])
    d = data.loc[data[spec["outcome"]].notna(), cols].merge(om, on=[gcol, TIME], how="inner")
    d = d.merge(cells[[UNIT, TIME, tcol]], on=[UNIT, TIME], how="left")
    d = d[np.isfinite(d[tcol])]
    if not len(d):
        return {}
    w = d[spec["weights"]].to_numpy(float) if spec["weights"] else np.ones(len(d))
    cell = (d[gcol].astype(str) + "_" + d[TIME].astype(str)).to_numpy()
    frame = pd.DataFrame({"c": cell, "w": w, "wt": w * d[tcol].to_numpy(float), "wx": w * d[spec["dose"]].to_numpy(float)})
    sums = frame.groupby("c")[["w", "wt", "wx"]].transform("sum")
    # each observation's share of its cell x the cell's aggregation weight
    v = d["omega"].to_numpy(float) * w / sums["w"].to_numpy()
    tau, x = d[tcol].to_numpy(float), d[spec["dose"]].to_numpy(float)
    td, xd = tau - sums["wt"].to_numpy() / sums["w"].to_numpy(), x - sums["wx"].to_numpy() / sums["w"].to_numpy()
    sxx = float(np.sum(v * xd * xd))
    return {"att_overall": float(np.sum(v * tau) / np.sum(v)),
            "acrt_overall": float(np.sum(v * xd * td) / sxx) if sxx > 0 else float("nan")}


def run_spec(cfg: dict[str, Any], name: str, io: StageIO) -> pd.DataFrame:
    """The ``dose_response`` job of spec ``name``; returns the written table."""
    from ifm_eval.credibility.figures import outcome_label
    from ifm_eval.dose import binned_dose_att, estimate_dose_response
    from ifm_eval.dose.figures import plot_dose_response, save_dose_figure
    from ifm_eval.estimators.results import package_versions
    from ifm_eval.estimators.runner import UNIT, _jsonable
    from ifm_eval.estimators.specs import get_spec, spec_kind
    from ifm_eval.outputs import style
    from ifm_eval.outputs.tablefmt import write_csv

    synthetic = style.is_synthetic(cfg)
    io.require(inputs=("panel",) + (("truth_counts",) if synthetic else ()), outputs=OUTPUTS)
    spec = get_spec(cfg, name)
    if spec_kind(spec) != "dose":
        raise ValueError(f"model {name!r} has no 'dose' key")
    lang = style.language(cfg)
    panel = pd.read_parquet(io.input("panel"))
    lin = Lineage(f"dose_{name}")
    data, gcol, warns = dose_sample(panel, spec, lin)
    sp = spec["dose_spline"]
    alpha = 0.05
    common = dict(outcome=spec["outcome"], dose=spec["dose"], unit=UNIT, time="t", cohort=gcol,
                  cluster=spec["cluster"], weights=spec["weights"] or None, control_group=spec["control_group"],
                  base_period=spec["base_period"], anticipation=int(spec["anticipation"]),
                  degree=int(sp["degree"]), num_knots=int(sp["knots"]),
                  min_comparison_units=int(spec["min_comparison_units"]), n_boot=int(sp["draws"]),
                  seed=int(sp["seed"]), alpha=alpha)
    r = estimate_dose_response(data, event_window=tuple(spec["event_window"]), **common)
    b = binned_dose_att(data, bins=N_BINS, **common)

    agg = r.aggregates.assign(kind="aggregate")
    es = r.event_study.rename(columns={"att": "estimate"}).assign(kind="event_time", term="att_event")
    es_acrt = r.event_study[["event_time", "acrt", "acrt_se", "acrt_ci_low", "acrt_ci_high", "n_cohorts",
                             "n_treated"]].rename(columns={"acrt": "estimate", "acrt_se": "se", "acrt_ci_low": "ci_low",
                                                           "acrt_ci_high": "ci_high"}).assign(kind="event_time",
                                                                                              term="acrt_event")
    keep_es = ["kind", "term", "event_time", "estimate", "se", "ci_low", "ci_high", "n_cohorts", "n_treated"]
    bins = b.table.rename(columns={"att": "estimate"}).assign(kind="bin", term="att_bin")
    table = pd.concat([agg, es[keep_es], es_acrt[keep_es], bins], ignore_index=True, sort=False)
    lead = ["kind", "term", "event_time", "bin", "estimate", "se", "ci_low", "ci_high", "p"]
    table = table[[c for c in lead if c in table] + [c for c in table if c not in lead]]
    truth: dict[str, float] = {}
    if synthetic:
        from ifm_eval.validation import load_cell_effects

        truth = planted_dose_truth(load_cell_effects(panel, io.input("truth_counts")), data, spec, gcol, r.cells)
        table["truth"] = [truth.get(t) if k == "aggregate" else np.nan
                          for k, t in zip(table["kind"], table["term"], strict=True)]
        table["truth"] = table["truth"].astype("float64")
        table["covered"] = np.where(table["truth"].notna(),
                                    (table["ci_low"] <= table["truth"]) & (table["truth"] <= table["ci_high"]), pd.NA)
    table.insert(0, "spec", name)
    table.insert(1, "dose", spec["dose"])
    table.insert(2, "outcome", spec["outcome"])
    write_csv(table, io.output("table"), synthetic=synthetic)
    write_csv(r.curves.assign(spec=name, dose_variable=spec["dose"]), io.output("curve"), synthetic=synthetic)

    label = dose_label(spec["dose"], lang)
    fig = plot_dose_response(r, lang=lang, outcome_label=outcome_label(spec["outcome"], lang))
    for ax in fig.axes[:2]:
        ax.set_xlabel(label)
    note = (f"B-Spline Grad {sp['degree']}, {sp['knots']} innere Knoten; Vergleich: noch nicht behandelte Kommunen; "
            f"{sp['draws']} Multiplikator-Ziehungen je Kreis (gleichmäßiges Band)." if lang == "de" else
            f"B-spline degree {sp['degree']}, {sp['knots']} interior knots; comparison: not-yet-treated "
            f"municipalities; {sp['draws']} multiplier draws by Kreis (uniform band).")
    files = save_dose_figure(fig, Path(io.output("figure")).with_suffix(""), synthetic=synthetic, n=r.n_treated,
                             note=note, lang=lang)
    assert {p.resolve() for p in files} == {Path(io.output("figure")).resolve(), Path(io.output("pdf")).resolve()}

    meta = {
        "model": name, "kind": "dose", "spec": spec, "dose": spec["dose"], "outcome": spec["outcome"],
        "data_source": "synthetic stand-in data (SYNTHETISCHE DATEN)" if synthetic else "raw",
        "n_units": r.n_units, "n_treated": r.n_treated, "n_clusters": r.n_clusters,
        "n_cells_used": r.n_cells_used, "n_cells_dropped": r.n_cells_dropped,
        "n_cells_unidentified": r.n_cells_unidentified,
        "dose_range": [float(np.min(r.treated_doses)), float(np.max(r.treated_doses))],
        "dose_quantiles": {q: float(np.quantile(r.treated_doses, float(q))) for q in ("0.05", "0.5", "0.95")},
        "boot_weights": "rademacher", "warnings": warns,
        # without the timings: the metadata are byte-identical between runs
        "info": {k: v for k, v in r.info.items() if k != "seconds"},
        "binned_info": {k: v for k, v in b.info.items() if k != "seconds"},
        "truth": truth, "packages": package_versions(),
    }
    Path(io.output("meta")).write_text(json.dumps(_jsonable(meta), indent=1, sort_keys=True) + "\n", encoding="utf-8")
    lin.check_balanced()
    lin.write(io.output("lineage"))
    log.info("dose %s: %d treated, ACRT^o %.3f (SE %.3f)", name, r.n_treated,
             r.aggregate("acrt_overall")["estimate"], r.aggregate("acrt_overall")["se"])
    return table
