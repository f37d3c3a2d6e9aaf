"""Small fake inputs for the output-stage tests (no test functions here).

``make_fake_project(root)`` writes a miniature processed-data and results tree (80 real
municipalities, 72 months, 3 outcomes x 4 estimators + variants; the files the data and
estimate stages declare, at their paths in :mod:`ifm_eval.paths`) and returns its config,
whose ``models`` are the fake estimates' specifications (``role: main`` for one spec per
estimator and outcome, ``robustness`` for the variants).

``stage_io(cfg, stage)`` gives the declared files of one output job exactly as the rules of
``workflow/rules/outputs.smk`` declare them; ``run_output_stages(cfg)`` runs the four output
jobs in DAG order through :mod:`ifm_eval.outputs.stages` (each checks that it wrote exactly
its declared outputs). The real DAG is exercised by tests/test_outputs_contract.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ifm_eval import paths as P
from ifm_eval.config import validate_config
from ifm_eval.estimators.specs import expand_models
from ifm_eval.outputs import targets as OT
from ifm_eval.stage_io import StageIO
from ifm_eval.workflow_support import estimate_meta, estimate_tidy, estimate_used, model_names

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO / "data" / "raw" / "reference"
OUTCOMES = {"employment": "employed", "training": "in_training", "language": "b1_holders"}
ESTIMATORS = ["callaway_santanna", "sun_abraham", "imputation", "twfe_dynamic"]


def fake_config(root: Path, lang: str = "de", source: str = "synthetic") -> dict:
    return {
        "seed": 1,
        "data": {
            "source": source,
            "raw_dir": str(root / "raw"),
            "synthetic_dir": str(root / "synthetic"),
            "reference_dir": str(REFERENCE),
            "processed_dir": str(root / "processed"),
            "results_dir": str(root / "results"),
        },
        "panel": {"start": "2015-01", "end": "2020-12", "treatment_rule": "half_posts"},
        "synth": {},
        "disclosure": {"min_cell": 5},
        "report": {"language": lang},
    }


def _ags(n: int) -> list[str]:
    import json as _json

    gj = _json.loads((REFERENCE / "vg5000_bw_gemeinden_2021.geojson").read_text(encoding="utf-8"))
    codes = sorted({f["properties"]["AGS"] for f in gj["features"]})
    return codes[:n]


def make_fake_project(root: Path, n: int = 80, lang: str = "de", att_scale: float = 1.0) -> dict:
    rng = np.random.default_rng(7)
    cfg = fake_config(root, lang)
    proc = Path(cfg["data"]["processed_dir"])
    res = Path(cfg["data"]["results_dir"])
    ags = _ags(n)
    months = pd.period_range("2017-01", "2018-10", freq="M")
    start = pd.Series(rng.choice(months, size=n, p=None), index=ags)
    start.iloc[:3] = pd.NaT  # never treated / not applied
    applied = start.notna()
    # survey (harmonised) ------------------------------------------------------
    survey = pd.DataFrame({"ags": ags})
    survey["organisation"] = rng.choice(
        ["landratsamt", "gemeinde", "traeger"], n, p=[0.65, 0.18, 0.17]
    )
    survey["decision_maker"] = rng.choice(
        ["im", "district_office", "municipal_staff"], n, p=[0.31, 0.6, 0.09]
    )
    for c, p in [
        ("ts_gestattung", 0.98),
        ("ts_erlaubnis", 0.99),
        ("ts_duldung", 0.96),
        ("ts_ausreisepflichtig", 0.44),
        ("ts_drittstaat", 0.12),
        ("ts_eu", 0.06),
        ("hs_privat", 0.95),
        ("hs_oeffentlich", 0.93),
        ("hs_gu_au", 0.77),
        ("hs_vorlaeufig", 0.22),
        ("hs_andere", 0.13),
    ]:
        survey[c] = (rng.random(n) < p).astype(float)
    survey["min_age"] = rng.choice(
        ["ab18", "ab16", "ab14", "unter14"], n, p=[0.49, 0.2, 0.13, 0.18]
    )
    survey["arrival"] = rng.choice(
        ["keine", "ab2015", "ab2014", "andere"], n, p=[0.68, 0.24, 0.06, 0.02]
    )
    survey["plan_use_band"] = rng.choice(["80to100", "20to80", "lt20"], n, p=[0.31, 0.46, 0.23])
    survey["doc_mode"] = rng.choice(["digital", "gemischt", "papier"], n, p=[0.47, 0.37, 0.16])
    survey["software"] = np.where(
        survey["doc_mode"] == "papier",
        None,
        rng.choice(["jobkraftwerk", "enaio", "tau", "andere"], n, p=[0.4, 0.3, 0.2, 0.1]),
    )
    survey["capacity_before_vza"] = np.round(rng.gamma(1.0, 0.4, n), 2)
    survey["capacity_after_vza"] = np.round(
        survey["capacity_before_vza"] + rng.normal(0.4, 0.5, n), 2
    )
    survey.loc[rng.random(n) < 0.1, "min_age"] = None  # item non-response
    survey.loc[~applied.to_numpy(), survey.columns[1:]] = None
    (proc / "harmonise").mkdir(parents=True, exist_ok=True)
    survey.to_parquet(proc / "harmonise" / "survey_municipality.parquet")
    treat = pd.DataFrame({"ags": ags, "cohort_month": start.dt.to_timestamp().to_numpy()})
    treat.to_parquet(proc / "harmonise" / "treatment.parquet")
    (proc / "ingest").mkdir(parents=True, exist_ok=True)
    members = pd.DataFrame(
        {
            "ags": ags,
            "verband_id": [f"V{i // 10:03d}" for i in range(n)],
            "funded_vza": np.round(rng.gamma(1.2, 0.6, n), 2),
            "refugees_20170915": rng.integers(5, 400, n),
        }
    )
    members[applied.to_numpy()].to_parquet(proc / "ingest" / "funding_members.parquet")
    posts = pd.DataFrame(
        {"ags": np.repeat(ags, 2), "post_id": [f"S{i:05d}" for i in range(2 * n)]}
    ).iloc[: int(1.3 * n)]
    posts.to_parquet(proc / "ingest" / "im_posts.parquet")
    (proc / "reference").mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"ags": ags, "name": [f"Gemeinde {a}" for a in ags], "kreis": [a[:5] for a in ags],
                  "population": np.random.default_rng(8).integers(800, 60000, n), "urbanisation": [int(a[-1]) % 3 + 1 for a in ags]}
                 ).to_parquet(proc / "reference" / "municipalities.parquet")
    # panel ---------------------------------------------------------------------
    pm = pd.period_range("2015-01", "2020-12", freq="M")
    panel = pd.DataFrame([(a, p) for a in ags for p in pm], columns=["ags", "period"])
    panel["month"] = panel["period"].dt.to_timestamp()
    panel["t"] = (panel["period"] - pm[0]).map(lambda x: x.n) + 1
    panel["cohort_month"] = panel["ags"].map(start).dt.to_timestamp()
    g_of = {a: ((p - pm[0]).n + 1 if pd.notna(p) else 0) for a, p in start.items()}
    panel["g"] = panel["ags"].map(g_of).astype("int64")
    panel["kreis"] = panel["ags"].str[:5]
    base = panel["ags"].map(dict(zip(ags, rng.integers(2, 300, n), strict=True)))
    panel["refugees"] = base + rng.integers(0, 5, len(panel))
    for o, c in OUTCOMES.items():
        panel[c] = rng.binomial(
            panel["refugees"], 0.1 + 0.02 * (panel["month"] > panel["cohort_month"])
        )
        panel[f"rate_{o}"] = 100 * panel[c] / panel["refugees"]
    panel["population"] = panel["refugees"] * 50.0
    panel["log_population"] = np.log(panel["population"])
    panel["urbanisation"] = panel["ags"].map(lambda a: int(a[-1]) % 3 + 1)
    panel["refugees_per_1000_2017"] = rng.normal(12, 3, len(panel))
    panel["density"] = rng.gamma(2, 200, len(panel))
    panel["funded_vza"] = panel["ags"].map(members.set_index("ags")["funded_vza"])
    panel["organisation"] = panel["ags"].map(survey.set_index("ags")["organisation"])
    panel["plan_use_band"] = panel["ags"].map(survey.set_index("ags")["plan_use_band"])
    panel = panel.drop(columns="period")
    (proc / "panel").mkdir(parents=True, exist_ok=True)
    panel.to_parquet(proc / "panel" / "panel.parquet")
    pd.DataFrame(
        {
            "stage": ["ingest", "ingest", "panel"],
            "source": ["employment_ba", "refugees_au", "panel"],
            "rows_in": [5760, 5760, 5760],
            "rows_out": [5700, 5760, 5760],
            "reason": ["masked", "", ""],
        }
    ).to_csv(proc / "panel" / "lineage.csv", index=False)
    # data quality in the layout of the panel stage: coverage per source, variable and month
    # (share = reported / units) and item non-response per wave and raw variable
    cov = []
    for src, var, reported, masked in [("refugees_au", "refugees", 1.0, 0), ("employment_ba", "employed", 0.979, 4),
                                       ("training", "in_training", 0.948, 6), ("language_b1", "b1_holders", 0.31, 0)]:
        for m in pm[:12]:
            cov.append({"table": "coverage", "source": src, "variable": var, "month": m.to_timestamp().strftime("%Y-%m-%d"),
                        "n_units": float(n), "n_reported": float(round(reported * n)), "share": round(reported * n) / n,
                        "n_masked": float(masked)})
    inr = [{"table": "item_nonresponse", "variable": v, "wave": w, "harmonised": h, "n": 37.0, "n_refused": r, "n_dont_know": 1.0,
            "n_not_applicable": 0.0, "n_not_asked": 0.0, "n_system": 0.0, "n_unknown_code": 0.0, "n_missing": r + 1.0,
            "share_missing": (r + 1.0) / 37} for v, w, h, r in [("F2_personen", "w1", "im_persons_w1", 2.0),
                                                                 ("F3_doku", "w1", "doc_mode", 0.0),
                                                                 ("Q7_alter", "w3", "min_age", 3.0)]]
    pd.DataFrame(cov + inr).to_csv(proc / "panel" / "data_quality.csv", index=False)
    # estimates -------------------------------------------------------------------
    (res / "estimates").mkdir(parents=True, exist_ok=True)
    ev = np.arange(-12, 25)
    truth = {}
    cfg["models"] = {}
    for o in OUTCOMES:
        for e in ESTIMATORS:
            cfg["models"][f"{e}_{o}"] = {"estimator": e, "outcome": f"rate_{o}", "cluster": "kreis", "role": "main",
                                         "event_window": [-12, 24]}
        for variant, extra in (("nevertreated", {"control_group": "never_treated"}), ("ant3", {"anticipation": 3})):
            cfg["models"][f"callaway_santanna_{o}_{variant}"] = {"estimator": "callaway_santanna", "outcome": f"rate_{o}",
                                                                  "cluster": "kreis", **extra}
    specs = expand_models(cfg)
    for o in OUTCOMES:
        path = np.where(ev >= 0, att_scale * 2.0 * np.minimum(1, (ev + 1) / 12), 0.0)
        truth[o] = {str(int(e)): float(v) for e, v in zip(ev, path, strict=True)}
        variants = [(e, f"{e}_{o}") for e in ESTIMATORS] + [
            ("callaway_santanna", f"callaway_santanna_{o}_nevertreated"),
            ("callaway_santanna", f"callaway_santanna_{o}_ant3"),
        ]
        for k, (estimator, name) in enumerate(variants):
            est = path + rng.normal(0, 0.3, len(ev)) + (0.8 if estimator == "twfe_dynamic" else 0)
            se = np.full(len(ev), 0.35)
            rows = pd.DataFrame(
                {
                    "kind": "event_time",
                    "term": [f"e{e}" for e in ev],
                    "event_time": ev,
                    "estimate": est,
                    "se": se,
                }
            )
            rows["cband_low"] = est - 2.9 * se
            rows["cband_high"] = est + 2.9 * se
            overall = float(est[ev >= 0].mean())
            term = (
                "dynamic" if estimator == "callaway_santanna" else "att"
            )  # as the real runner: CS reports several
            rows = pd.concat(
                [
                    rows,
                    pd.DataFrame(
                        {
                            "kind": ["overall"],
                            "term": [term],
                            "estimate": [overall + 0.05 * k],
                            "se": [0.25],
                        }
                    ),
                ]
            )
            if (
                estimator == "callaway_santanna"
            ):  # the "simple" aggregate must not be picked as the headline
                rows = pd.concat(
                    [
                        rows,
                        pd.DataFrame(
                            {
                                "kind": ["overall"],
                                "term": ["att"],
                                "estimate": [-50.0],
                                "se": [0.25],
                            }
                        ),
                    ]
                )
            if estimator == "callaway_santanna":
                gt = [(g, t) for g in range(25, 46, 3) for t in range(13, 73, 2)]
                rows = pd.concat(
                    [
                        rows,
                        pd.DataFrame(
                            {
                                "kind": "att_gt",
                                "term": [f"{g},{t}" for g, t in gt],
                                "cohort": [g for g, _ in gt],
                                "time": [t for _, t in gt],
                                "estimate": [
                                    (1.5 if t >= g else 0.0) + rng.normal(0, 0.4) for g, t in gt
                                ],
                                "se": 0.5,
                            }
                        ),
                    ]
                )
            rows["ci_low"] = rows["estimate"] - 1.96 * rows["se"]
            rows["ci_high"] = rows["estimate"] + 1.96 * rows["se"]
            rows["p"] = 0.01
            for c, v in {
                "spec": name,
                "estimator": estimator,
                "outcome": f"rate_{o}",
                "n_units": n,
                "n_obs": n * 72,
                "n_clusters": 8,
            }.items():
                rows[c] = v
            for c in ["cohort", "time"]:
                if c not in rows:
                    rows[c] = pd.NA
            rows["cohort"] = rows["cohort"].astype("Int64")
            rows["time"] = rows["time"].astype("Int64")
            rows["event_time"] = rows["event_time"].astype("Int64")
            rows.to_parquet(res / "estimates" / f"{name}.parquet")
            # the treated observations behind the estimates (the runner writes them under data/)
            tr = panel[(panel["g"] > 0) & (panel["t"] >= panel["g"]) & (panel["t"] - panel["g"] <= 24)]
            if estimator == "callaway_santanna":
                tr = tr[pd.MultiIndex.from_arrays([tr["g"], tr["t"]]).isin(gt)]
            used_rows = pd.DataFrame({"unit": tr["ags"].astype(str), "time": tr["t"].astype("int64"),
                                      "cohort": tr["g"].astype("int64"), "event_time": (tr["t"] - tr["g"]).astype(float),
                                      "weight": 1.0, "headline": True})
            up = P.used_path(cfg, name)
            up.parent.mkdir(parents=True, exist_ok=True)
            used_rows.to_parquet(up, index=False)
            headline = ({"term": "dynamic", "aggregation": "event_time_mean", "event_times": list(range(25))}
                        if estimator == "callaway_santanna" else {"term": "att", "aggregation": "observations"})
            meta = {
                "info": {"headline": headline},
                "model": name,
                "estimator": estimator,
                "status": "ok",
                "spec": specs[name],
                "input": {"path": "panel.parquet", "sha256": "ab" * 32},
                "packages": {"numpy": "2"},
                "runtime_seconds": 1.5 + k,
                "n_clusters": 8,
                "warnings": [],
            }
            (res / "estimates" / f"{name}.json").write_text(json.dumps(meta), encoding="utf-8")
    (root / "synthetic").mkdir(parents=True, exist_ok=True)
    # truth_counts.parquet (observed and counterfactual stocks): true cell effect = the
    # planted path at the cell's event time, in every treated municipality
    e_cell = np.where(panel["g"] > 0, panel["t"] - panel["g"], -1)
    eff = np.where(e_cell >= 0, att_scale * 2.0 * np.minimum(1, (e_cell + 1) / 12), 0.0)
    shift = eff * panel["refugees"].to_numpy() / 100.0
    tc = pd.DataFrame({"ags": panel["ags"], "month": panel["month"].dt.strftime("%Y-%m"),
                       "refugees": panel["refugees"]})
    for stock, col in (("svb", "employed"), ("ausbildung", "in_training"), ("b1", "b1_holders")):
        tc[stock] = panel[col].astype(float)
        tc[f"{stock}_cf"] = panel[col] - shift
    tc["weiterbildung"] = tc["weiterbildung_cf"] = 0.0
    tc.to_parquet(root / "synthetic" / "truth_counts.parquet", index=False)
    # the real truth.json layout of ifm_eval.synth (effects.<outcome>.att_by_event_time etc.)
    cohorts = sorted({str(p) for p in start.dropna()})
    effects = {}
    for o, path in truth.items():
        effects[o] = {
            "att_by_event_time": path,
            "att_by_event_time_weighted": path,
            "n_units_by_event_time": {k: n - 3 for k in path},
            "att_by_cohort_event_time": {c: path for c in cohorts},
            "att_overall": 99.0,  # all-horizon scalar: must NOT be what the report compares with
            "att_overall_weighted": 99.0,
            "att_overall_pre": 0.0,
        }
    municipalities = [
        {"ags": a, "start_month": {"half_posts": (str(start[a]) if pd.notna(start[a]) else None)}}
        for a in ags
    ]
    (root / "synthetic" / "truth.json").write_text(
        json.dumps(
            {
                "schema_version": 1,
                "panel": {"start": "2015-01", "end": "2020-12"},
                "treatment_rule_planted": "half_posts",
                "municipalities": municipalities,
                "effects": effects,
            }
        ),
        encoding="utf-8",
    )
    _fake_replicates(cfg, specs, rng)
    _fake_credibility(cfg, specs, rng)
    _fake_landtag(cfg, specs)
    return validate_config(cfg)


def _fake_credibility(cfg: dict, specs: dict, rng: np.random.Generator) -> None:
    """The credibility rules' tables and figures (workflow/rules/credibility.smk) for the
    main specs, with the columns the report chapter reads."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = OT.credibility_outputs(cfg)
    main = {n: s for n, s in specs.items() if s.get("role") == "main"}
    inf, wald, power, hon, brk = [], [], [], [], []
    for n, s in main.items():
        est = float(rng.normal(1, 0.3))
        inf.append({"model": n, "estimator": s["estimator"], "outcome": s["outcome"], "term": "att", "estimate": est,
                    "inference": "cluster_jackknife", "se": 0.4, "p": 0.02, "ci_low": est - 0.8, "ci_high": est + 0.8,
                    "boot_method": "wcr", "boot_weights": "webb", "boot_draws": 999, "boot_p": 0.2,
                    "boot_ci_low": est - 0.9, "boot_ci_high": est + 0.9, "ri_draws": 19, "p_randomization": 0.05,
                    "p_romano_wolf": 0.06, "rw_note": "joint over 3 outcomes"})
        base = {"model": n, "estimator": s["estimator"], "outcome": s["outcome"], "reference": -1, "n_pre": 11,
                "n_post": 13, "source": "as estimated", "note": None}
        wald.append({**base, "wald": 12.0, "df": 11, "p_wald": 0.36, "max_abs_t_pre": 1.5, "passes_pretest": True})
        for pw, slope in ((0.5, 0.05), (0.8, 0.08)):
            power.append({**base, "target_power": pw, "slope": slope, "power": pw, "bayes_factor": 0.5,
                          "likelihood_ratio": 0.1, "bias_headline": slope * 7, "bias_headline_after_pretest": slope * 6,
                          "estimate_headline": est})
        for restr, ms in (("relative_magnitude", (0, 1, 2)), ("smoothness", (0, 0.05))):
            hon.append({**base, "target": "headline", "estimate": est, "restriction": "none", "method": "Original",
                        "m": np.nan, "lb": est - 0.8, "ub": est + 0.8})
            for m in ms:
                hon.append({**base, "target": "headline", "estimate": est, "restriction": restr, "method": "C-LF",
                            "m": m, "lb": est - 0.8 - m, "ub": est + 0.8 + m})
            brk.append({**base, "target": "headline", "estimate": est, "restriction": restr, "original_lb": est - 0.8,
                        "original_ub": est + 0.8, "breakdown": 0.4, "seconds": 1.0})
    frames = {
        (out["credibility_inference"]["table"]): pd.DataFrame(inf),
        (out["pretrends"]["table"]): pd.DataFrame(wald),
        (out["pretrends"]["power"]): pd.DataFrame(power),
        (out["honest_did"]["table"]): pd.DataFrame(hon),
        (out["honest_did"]["breakdown"]): pd.DataFrame(brk),
        (out["twfe_diagnostics"]["bacon_summary"]): pd.DataFrame(
            {"type": ["earlier_vs_later", "later_vs_earlier"], "weight": [0.4, 0.6], "avg_est": [0.9, -1.3],
             "model": "twfe_static_employment", "outcome": "rate_employment", "twfe": -0.42, "n_units": 70, "n_periods": 60}),
        (out["twfe_diagnostics"]["weights"]): pd.DataFrame(
            [{"model": "twfe_static_employment", "outcome": "rate_employment", "twfe": -0.42, "n_treated_cells": 900,
              "n_positive": 600, "n_negative": 300, "n_zero": 0, "sum_positive": 1.4, "sum_negative": -0.4,
              "sum_weights": 1.0, "sum_w_tau": -1.0, "att_tau": 3.9}]),
    }
    for path, df in frames.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        df.insert(0, "data_source", "SYNTHETISCHE DATEN / SYNTHETIC DATA")
        df.to_csv(path, index=False)
    for rule in ("credibility_inference", "twfe_diagnostics", "honest_did"):
        fig, ax = plt.subplots(figsize=(3, 2))
        ax.plot([0, 1], [0, 1])
        fig.savefig(out[rule]["figure"])
        plt.close(fig)


#: the fake policy numbers the Landtag chapter must print (tests/test_outputs_pipeline.py)
FAKE_POLICY = {"n_last": 68741, "n_end": 53035, "lo": 46372, "hi": 60655, "case_now": 99.46, "funded": 691.13,
               "eur_shortfall": 6.27e6, "eur_funded": 73.57e6, "cost_employment": 28629.0}


def _fake_landtag(cfg: dict, specs: dict) -> None:
    """The policy, heterogeneity and dose tables and figures the Landtag chapter reads
    (``OT.landtag_report_inputs``): fixed numbers (:data:`FAKE_POLICY`), one subgroup spec
    by integration-plan use, no dose spec (the chapter says so)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    f = FAKE_POLICY
    pol, het, dose = OT.policy_outputs(cfg), OT.heterogeneity_summary_outputs(cfg), OT.dose_summary_outputs(cfg)
    months = pd.date_range("2019-01-01", "2020-12-01", freq="MS")
    demand = pd.DataFrame({"month": list(months) + [pd.Timestamp("2022-12-01")],
                           "kind": ["observed"] * len(months) + ["projected"], "h": [0] * len(months) + [24],
                           "refugees": [70000.0] * (len(months) - 1) + [f["n_last"], f["n_end"]],
                           "refugees_lo95": [np.nan] * len(months) + [f["lo"]],
                           "refugees_hi95": [np.nan] * len(months) + [f["hi"]],
                           "funded_vza": f["funded"], "filled_vza": 663.13,
                           "caseload_funded": [f["case_now"]] * len(months) + [76.74], "caseload_filled": 103.7,
                           "vza_needed": [np.nan] * len(months) + [533.2], "vza_needed_lo95": [np.nan] * len(months) + [466.2],
                           "vza_needed_hi95": [np.nan] * len(months) + [609.8], "n_municipalities_funded": 80})
    main = [n for n, s in specs.items() if s.get("role") == "main"]
    cost = pd.DataFrame([{"model": n, "estimator": specs[n]["estimator"], "outcome": specs[n]["outcome"],
                          "effect_pp": 0.87, "effect_low": -0.15, "effect_high": 1.87,
                          "eur_per_person_year": f["cost_employment"], "eur_per_person_year_low": 13341.0,
                          "eur_per_person_year_high": np.nan} for n in main])
    frames = {
        pol["demand_state"]: demand,
        pol["demand_backtest"]: pd.DataFrame({"h": [1, 12], "mape": [0.07, 1.65], "naive_mape": [0.56, 8.43],
                                              "coverage95": [1.0, 0.99], "muni_wape": [2.2, 4.1]}),
        pol["funding_state"]: pd.DataFrame({"month": months, "funded_vza": f["funded"], "filled_vza": 663.13,
                                            "unfilled_share": 0.0405,
                                            "eur_shortfall_verband": f["eur_shortfall"] / len(months),
                                            "eur_funded": f["eur_funded"] / len(months)}),
        pol["fill_times"]: pd.DataFrame({"group": ["all"], "n_municipalities": [80], "months_to_first_post_median": [4],
                                         "months_to_fill90_median": [5]}),
        pol["kpi_indicators"]: pd.DataFrame({"kpi": ["first_talks", "to_work"], "outcome": ["milestones", "employed"],
                                             "coverage": [0.91, 0.85], "max_gap_quarters": [3, 12],
                                             "r_within": [0.07, 0.55], "r_within_ci_low": [0.05, 0.52],
                                             "r_within_ci_high": [0.08, 0.57],
                                             "verdict": ["does not track", "tracks"]}),
        pol["cost"]: cost,
        het["summary"]: pd.DataFrame([
            {"spec": "het_cs_plan_use_band_rate_employment", "moderator": "plan_use_band",
             "estimator": "callaway_santanna", "outcome": "rate_employment", "group": g, "n_units": n, "n_treated": n,
             "status": st, "headline_term": "dynamic", "estimate": e, "se": 0.5, "ci_low": e - 1, "ci_high": e + 1,
             "p": 0.1, "truth": 0.8, "covered": True}
            for g, n, st, e in (("lt20", 20, "ok", 1.97), ("80to100", 30, "ok", 0.78), ("missing", 3, "too_few_treated",
                                                                                       np.nan))]),
        het["differences_summary"]: pd.DataFrame([
            {"group_a": "80to100", "group_b": "lt20", "term": "dynamic", "headline": True, "estimate": -1.19,
             "se": 0.91, "ci_low": -3.03, "ci_high": 0.66, "p": 0.2, "boot_p": 0.08, "spec": "het_cs_plan_use_band_rate_employment",
             "moderator": "plan_use_band", "estimator": "callaway_santanna", "outcome": "rate_employment",
             "truth": -0.13, "covered": True}]),
        dose["summary"]: pd.DataFrame(columns=["spec", "dose", "outcome", "term", "estimate", "se", "ci_low", "ci_high",
                                               "p", "truth", "covered", "n_units", "n_treated", "n_clusters", "degree",
                                               "knots", "dose_p05", "dose_p50", "dose_p95"]),
    }
    for path, df in frames.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        df.insert(0, "data_source", "SYNTHETISCHE DATEN / SYNTHETIC DATA")
        df.to_csv(path, index=False)
    for path in (pol["demand_figure"], pol["funding_figure"], pol["kpi_figure"], dose["figure"]):
        path.parent.mkdir(parents=True, exist_ok=True)
        fig, ax = plt.subplots(figsize=(3, 2))
        ax.plot([0, 1], [0, 1])
        fig.savefig(path)
        plt.close(fig)


#: the fake Monte Carlo: designs and seeds of the replicate rows (monte_carlo.k = 4)
FAKE_MC = {"designs": ["effects", "zero"], "hr": [1.5, 2.0], "k": 4}


def _fake_replicates(cfg: dict, specs: dict, rng: np.random.Generator) -> None:
    """Replicate rows (:data:`ifm_eval.montecarlo.replicate.ROW_COLUMNS`) of the main specs
    at the paths of the ``mc_replicate`` rule: a headline estimate per model and seed, truth
    0 under ``zero``, 1 under ``effects``, the hazard ratio minus one under ``hr<x>``."""
    from ifm_eval.montecarlo.replicate import ROW_COLUMNS

    cfg["monte_carlo"] = {"k": FAKE_MC["k"], "designs": FAKE_MC["designs"],
                          "power": {"max_hazard_ratio": FAKE_MC["hr"], "k": FAKE_MC["k"]}}
    main = {n: s for n, s in specs.items() if s.get("role") == "main"}
    for design in [*FAKE_MC["designs"], *(f"hr{x:g}" for x in FAKE_MC["hr"])]:
        truth = {"effects": 1.0, "zero": 0.0}[design] if design in ("effects", "zero") else float(design[2:]) - 1.0
        for i in range(FAKE_MC["k"]):
            seed = 900000 + i
            rows = []
            for name, spec in sorted(main.items()):
                est = truth + rng.normal(0, 0.5)
                rows.append({"design": design, "seed": seed, "model": name, "estimator": spec["estimator"],
                             "outcome": spec["outcome"], "row": "headline", "event_time": np.nan, "estimate": est,
                             "se": 0.5, "ci_low": est - 0.98, "ci_high": est + 0.98, "p": np.nan, "truth": truth,
                             "n_units": 30.0, "status": "ok"})
            path = mc_row_path(cfg, design, seed)
            path.parent.mkdir(parents=True, exist_ok=True)
            pd.DataFrame(rows, columns=list(ROW_COLUMNS)).to_parquet(path, index=False)


def mc_row_path(cfg: dict, design: str, seed: int) -> Path:
    """As ``MC_DIR / design / seed.parquet`` in workflow/rules/montecarlo.smk."""
    return P.processed_dir(cfg) / "montecarlo" / design / f"{seed}.parquet"


def check_results(root: Path, threshold: int) -> list:
    """:func:`ifm_eval.outputs.disclosure.check_files` over every CSV and Parquet under
    ``root`` -- declared or not (the stage itself only checks its declared files)."""
    from ifm_eval.outputs.disclosure import check_files

    return check_files(sorted(p for p in Path(root).rglob("*") if p.suffix in {".csv", ".parquet"}), threshold)


# ---------------------------------------------------------------- the output jobs
def stage_io(cfg: dict, stage: str) -> StageIO:
    """The declared files of one output job, as its rule in workflow/rules/outputs.smk."""
    models = model_names(cfg)
    fig, tab = OT.figures_dir(cfg), OT.tables_dir(cfg)
    outs = OT.outcomes(cfg, models)
    synthetic = cfg["data"]["source"] == "synthetic"
    truth_counts = {"truth_counts": P.truth_counts_path(cfg)} if synthetic else {}
    used = {"used": estimate_used(cfg)} if synthetic else {}
    geo = {"geo_gemeinden": P.reference_path(cfg, "geo_gemeinden"), "geo_kreise": P.reference_path(cfg, "geo_kreise")}
    estimates = {"tidy": estimate_tidy(cfg), "meta": estimate_meta(cfg)}
    if stage == "descriptives":
        return StageIO.of(stage, {"survey": P.processed_path(cfg, "survey_harmonised"), "treatment": P.processed_path(cfg, "treatment"),
                                  "members": P.processed_path(cfg, "funding_members"), "posts": P.processed_path(cfg, "im_posts"),
                                  "frame": P.processed_path(cfg, "municipalities"), **geo},
                          {"figures": OT.descriptive_figure_paths(cfg), "pdfs": OT.descriptive_figure_paths(cfg, "pdf"),
                           "shares": tab / "descriptives_shares.csv", "comparison": tab / "descriptives_comparison.html",
                           "comparison_other": [tab / f"descriptives_comparison.{f}" for f in ("csv", "tex")]})
    if stage == "figures":
        return StageIO.of(stage, {**estimates, "panel": P.processed_path(cfg, "panel"), **truth_counts, **used, **geo},
                          {"event_study": [fig / f"event_study_{o}.png" for o in outs],
                           "raw_trends": [fig / f"raw_trends_{o}.png" for o in outs],
                           "heatmap": [fig / f"group_time_heatmap_{o}.png" for o in outs],
                           "robustness": fig / "robustness.png", "robustness_data": OT.robustness_data_path(cfg),
                           "cohort_map": fig / "cohort_map.png", "pdfs": OT.figure_paths(cfg, models, fmt="pdf"),
                           "trend_data": [fig / f"raw_trends_{o}.csv" for o in outs]})
    if stage == "tables":
        return StageIO.of(stage, {**estimates, "panel": P.processed_path(cfg, "panel"), "lineage": P.processed_path(cfg, "lineage"),
                                  "quality": P.processed_path(cfg, "data_quality"), **truth_counts, **used},
                          {"html": OT.table_paths(cfg, "html"), "csv": OT.table_paths(cfg, "csv"), "tex": OT.table_paths(cfg, "tex")})
    mc = cfg["monte_carlo"]
    seeds = [int(mc["seed_base"]) + i for i in range(int(mc["k"]))]
    if stage == "monte_carlo":
        from ifm_eval.montecarlo.evidence import RECORDED, RECORDED_BEFORE

        out = OT.montecarlo_outputs(cfg)
        return StageIO.of(stage, {"rows": [mc_row_path(cfg, d, s) for d in mc["designs"] for s in seeds],
                                  **{k: [p] for k, p in (("recorded", RECORDED), ("recorded_before", RECORDED_BEFORE))
                                     if p.is_file()}},
                          {k: out[k] for k in ("summary", "event_time", "targets", "evidence", "figure", "pdf")})
    if stage == "power":
        main = [m for m, s in models.items() if s["role"] == "main"]
        designs = ["zero", *(f"hr{x:g}" for x in mc["power"]["max_hazard_ratio"])]
        return StageIO.of(stage, {"rows": [mc_row_path(cfg, d, s) for d in designs for s in seeds],
                                  "tidy": [t for t in estimate_tidy(cfg) if Path(t).stem in main],
                                  "meta": [t for t in estimate_meta(cfg) if Path(t).stem in main],
                                  "panel": P.processed_path(cfg, "panel")}, OT.power_outputs(cfg))
    if stage == "report":
        html, pdf = OT.report_paths(cfg)
        truth = {"truth": P.truth_path(cfg), **truth_counts} if synthetic else {}
        rel_tables, rel_figures = OT.reliability_report_inputs(cfg)
        cred_tables, cred_figures = OT.credibility_report_inputs(cfg)
        lt_tables, lt_figures = OT.landtag_report_inputs(cfg)
        return StageIO.of(stage, {"figures": OT.figure_paths(cfg, models) + OT.descriptive_figure_paths(cfg) + rel_figures
                                  + cred_figures + lt_figures,
                                  "tables": OT.table_paths(cfg, "csv") + [tab / "descriptives_comparison.csv", tab / "descriptives_shares.csv"]
                                  + rel_tables + cred_tables + lt_tables,
                                  **estimates, "panel": P.processed_path(cfg, "panel"), **truth},
                          {"html": html, "pdf": pdf})
    raise KeyError(stage)


def run_output_stages(cfg: dict, stages: tuple[str, ...] = ("descriptives", "figures", "tables", "monte_carlo",
                                                              "power", "report")) -> None:
    """Run the output jobs in DAG order, each with exactly its declared files."""
    from ifm_eval.montecarlo import stages as MC
    from ifm_eval.outputs import stages as S

    for stage in stages:
        getattr(MC if stage in ("monte_carlo", "power") else S, stage)(cfg, stage_io(cfg, stage))
