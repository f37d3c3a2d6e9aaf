"""Static output paths of the output stage (light module: no heavy imports, so the
Snakefile can import it at parse time and rules know their outputs from the config)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: Charts of the short report (seed 002), in its order.
DESCRIPTIVE_FIGURES = (
    "map_start",
    "start_month",
    "vza_per_municipality",
    "capacity_change",
    "organisation",
    "target_legal_status",
    "target_housing",
    "target_min_age",
    "target_arrival",
    "decision_maker",
    "integration_plan",
    "documentation",
)
DESCRIPTIVE_TABLES = ("descriptives_shares", "descriptives_comparison")

#: Figures per outcome and across outcomes.
FIGURES_PER_OUTCOME = ("event_study", "raw_trends", "group_time_heatmap")
FIGURES_OVERALL = ("robustness", "cohort_map")

#: Result tables (each written as .csv, .tex and .html).
RESULT_TABLES = ("main_results", "all_specifications", "balance", "coverage", "item_nonresponse", "lineage")
TABLE_FORMATS = ("csv", "tex", "html")
FIGURE_FORMATS = ("png", "pdf")

DEFAULT_OUTCOMES = ("employment", "training", "language")


def results_dir(cfg: dict[str, Any]) -> Path:
    return Path(cfg["data"]["results_dir"])


def figures_dir(cfg: dict[str, Any]) -> Path:
    return results_dir(cfg) / "figures"


def tables_dir(cfg: dict[str, Any]) -> Path:
    return results_dir(cfg) / "tables"


def report_dir(cfg: dict[str, Any]) -> Path:
    return results_dir(cfg) / "report"


def outcome_key(outcome: str) -> str:
    """File-name key of an outcome (``rate_employment`` -> ``employment``)."""
    return str(outcome).removeprefix("rate_")


def outcomes(cfg: dict[str, Any], models: dict[str, dict[str, Any]] | None = None) -> list[str]:
    """Outcomes with at least one model spec (file-name keys), else the three defaults."""
    found = sorted({outcome_key(s.get("outcome")) for s in (models or {}).values() if s.get("outcome")})
    return found or list(DEFAULT_OUTCOMES)


def descriptive_figure_paths(cfg: dict[str, Any], fmt: str = "png") -> list[Path]:
    return [figures_dir(cfg) / "descriptives" / f"{k}.{fmt}" for k in DESCRIPTIVE_FIGURES]


def descriptive_table_paths(cfg: dict[str, Any]) -> list[Path]:
    out = [tables_dir(cfg) / "descriptives_shares.csv"]
    out += [tables_dir(cfg) / f"descriptives_comparison.{f}" for f in TABLE_FORMATS]
    return out


def robustness_data_path(cfg: dict[str, Any]) -> Path:
    """The data of the robustness panel: every specification it plots (CSV)."""
    return figures_dir(cfg) / "robustness.csv"


def figure_paths(cfg: dict[str, Any], models=None, fmt: str = "png") -> list[Path]:
    d = figures_dir(cfg)
    out = [d / f"{k}_{o}.{fmt}" for o in outcomes(cfg, models) for k in FIGURES_PER_OUTCOME]
    return out + [d / f"{k}.{fmt}" for k in FIGURES_OVERALL]


#: Written on stand-in data only: each main estimate next to the planted truth.
TRUTH_TABLE = "truth_comparison"


def result_tables(cfg: dict[str, Any]) -> list[str]:
    """Result table keys of this run (the truth comparison on stand-in data only)."""
    synthetic = cfg.get("data", {}).get("source", "synthetic") == "synthetic"
    return list(RESULT_TABLES) + ([TRUTH_TABLE] if synthetic else [])


def table_paths(cfg: dict[str, Any], fmt: str = "csv") -> list[Path]:
    return [tables_dir(cfg) / f"{k}.{fmt}" for k in result_tables(cfg)]


def report_paths(cfg: dict[str, Any]) -> tuple[Path, Path]:
    lang = cfg.get("report", {}).get("language", "de")
    d = report_dir(cfg)
    return d / f"report_{lang}.html", d / f"report_{lang}.pdf"


def disclosure_check_path(cfg: dict[str, Any]) -> Path:
    return results_dir(cfg) / "checks" / "disclosure.json"


# ------------------------------------------------------------------ Monte Carlo and power
def montecarlo_dir(cfg: dict[str, Any]) -> Path:
    return results_dir(cfg) / "montecarlo"


def power_dir(cfg: dict[str, Any]) -> Path:
    return results_dir(cfg) / "power"


def montecarlo_outputs(cfg: dict[str, Any]) -> dict[str, Path]:
    """The outputs of the ``monte_carlo`` rule (tables named ``mc_*``: the report reads them
    by file stem)."""
    d = montecarlo_dir(cfg)
    return {"summary": d / "mc_summary.csv", "event_time": d / "mc_event_time.csv", "targets": d / "mc_targets.csv",
            "evidence": d / "mc_evidence.csv", "figure": d / "coverage.png", "pdf": d / "coverage.pdf"}


def power_outputs(cfg: dict[str, Any]) -> dict[str, Path]:
    """The outputs of the ``power`` rule."""
    d = power_dir(cfg)
    return {"mde": d / "mde.csv", "curve": d / "power_curve.csv", "detectable": d / "detectable_effect.csv",
            "mde_figure": d / "mde.png", "mde_pdf": d / "mde.pdf",
            "power_figure": d / "power_curve.png", "power_pdf": d / "power_curve.pdf"}


def credibility_outputs(cfg: dict[str, Any]) -> dict[str, dict[str, Path]]:
    """The outputs of the credibility rules (``credibility_inference``, ``pretrends``,
    ``twfe_diagnostics``, ``honest_did``), by rule; tables are read by the report by stem."""
    inf, diag, sens = (results_dir(cfg) / d for d in ("inference", "diagnostics", "sensitivity"))
    return {
        "credibility_inference": {"table": inf / "inference.csv", "ri_draws": inf / "randomization_draws.csv",
                                  "figure": inf / "randomization.png", "pdf": inf / "randomization.pdf"},
        "pretrends": {"table": diag / "pretrends.csv", "power": diag / "pretrend_power.csv"},
        "twfe_diagnostics": {"bacon": diag / "bacon.csv", "bacon_summary": diag / "bacon_summary.csv",
                             "weights": diag / "twfe_weights.csv", "figure": diag / "bacon.png",
                             "pdf": diag / "bacon.pdf"},
        "honest_did": {"table": sens / "honest_did.csv", "breakdown": sens / "honest_did_breakdown.csv",
                       "figure": sens / "honest_did.png", "pdf": sens / "honest_did.pdf"},
    }


def credibility_report_inputs(cfg: dict[str, Any]) -> tuple[list[Path], list[Path]]:
    """(tables, figures) of the credibility rules that the report's chapter reads."""
    o = credibility_outputs(cfg)
    tables = [o["credibility_inference"]["table"], o["pretrends"]["table"], o["pretrends"]["power"],
              o["twfe_diagnostics"]["bacon_summary"], o["twfe_diagnostics"]["weights"],
              o["honest_did"]["table"], o["honest_did"]["breakdown"]]
    figures = [o["credibility_inference"]["figure"], o["twfe_diagnostics"]["figure"], o["honest_did"]["figure"]]
    return tables, figures


def reliability_report_inputs(cfg: dict[str, Any]) -> tuple[list[Path], list[Path]]:
    """(tables, figures) of the Monte Carlo and power rules that the report's reliability
    chapter reads (:mod:`ifm_eval.outputs.report.reliability`)."""
    mc, pw = montecarlo_outputs(cfg), power_outputs(cfg)
    return ([mc["summary"], mc["targets"], mc["evidence"], pw["mde"], pw["curve"], pw["detectable"]],
            [mc["figure"], pw["mde_figure"], pw["power_figure"]])


def landtag_report_inputs(cfg: dict[str, Any]) -> tuple[list[Path], list[Path]]:
    """(tables, figures) of the policy, heterogeneity and dose rules that the report's
    chapter on the Landtag's questions reads (:mod:`ifm_eval.outputs.report.landtag`)."""
    pol, het, dose = policy_outputs(cfg), heterogeneity_summary_outputs(cfg), dose_summary_outputs(cfg)
    tables = [pol[k] for k in ("demand_state", "demand_backtest", "funding_state", "fill_times", "kpi_indicators",
                               "cost")]
    tables += [het["summary"], het["differences_summary"], dose["summary"]]
    return tables, [pol["demand_figure"], pol["funding_figure"], pol["kpi_figure"], dose["figure"]]


def heterogeneity_models(cfg: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    """The specs of one analysis kind (``heterogeneity`` | ``dose``), by name."""
    from ifm_eval.estimators.specs import expand_models

    return expand_models(cfg, kinds=(kind,))


def heterogeneity_spec_paths(cfg: dict[str, Any], name: str) -> dict[str, Path]:
    """The outputs of the ``heterogeneity`` job of spec ``name``."""
    d = results_dir(cfg) / "heterogeneity"
    return {"table": d / f"{name}.csv", "differences": d / f"{name}_differences.csv", "meta": d / f"{name}.json",
            "used": Path(cfg["data"]["processed_dir"]) / "heterogeneity" / f"{name}_used.parquet"}


def heterogeneity_summary_outputs(cfg: dict[str, Any]) -> dict[str, Any]:
    """The outputs of ``heterogeneity_summary``: the summary tables and one figure (PNG, PDF)
    per moderator of the heterogeneity specs."""
    d = results_dir(cfg) / "heterogeneity"
    mods = list(dict.fromkeys(s["heterogeneity"] for s in heterogeneity_models(cfg, "heterogeneity").values()))
    return {"summary": d / "summary.csv", "differences_summary": d / "differences.csv",
            "figures": [d / "figures" / f"{m}.png" for m in mods],
            "pdfs": [d / "figures" / f"{m}.pdf" for m in mods]}


def dose_spec_paths(cfg: dict[str, Any], name: str) -> dict[str, Path]:
    """The outputs of the ``dose_response`` job of spec ``name`` (:mod:`ifm_eval.dose.stage`)."""
    d = results_dir(cfg) / "heterogeneity"
    return {"table": d / f"{name}.csv", "curve": d / f"{name}_curve.csv", "meta": d / f"{name}.json",
            "figure": d / "figures" / f"{name}.png", "pdf": d / "figures" / f"{name}.pdf",
            "lineage": Path(cfg["data"]["processed_dir"]) / "lineage" / f"dose_{name}.csv"}


def dose_summary_outputs(cfg: dict[str, Any]) -> dict[str, Path]:
    """The outputs of ``dose_summary`` (:mod:`ifm_eval.dose.summary`)."""
    d = results_dir(cfg) / "heterogeneity"
    return {"summary": d / "dose_summary.csv", "figure": d / "figures" / "dose_response.png",
            "pdf": d / "figures" / "dose_response.pdf"}


def policy_published_keys() -> tuple[str, ...]:
    """The policy outputs under ``results/`` (the others stay under ``data/``)."""
    from ifm_eval.policy.stage import RESULT_FILES

    return tuple(RESULT_FILES)


def policy_outputs(cfg: dict[str, Any]) -> dict[str, Path]:
    """Every output path of the policy job (:func:`ifm_eval.policy.stage.run_policy`): the
    published tables and figures under ``<results>/policy/``, the municipal tables and the
    lineage under ``data.processed_dir``."""
    from ifm_eval.policy.stage import PROCESSED_FILES, RESULT_FILES

    res = results_dir(cfg) / "policy"
    proc = Path(cfg["data"]["processed_dir"])
    return {**{k: res / v for k, v in RESULT_FILES.items()}, **{k: proc / v for k, v in PROCESSED_FILES.items()}}
