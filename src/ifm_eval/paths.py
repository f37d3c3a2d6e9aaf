"""Where every file of the pipeline lives: the layout the Snakemake rules declare.

Only the workflow (``Snakefile``, ``workflow/rules/*.smk`` through
:mod:`ifm_eval.workflow_support`) and the in-process test wiring use this module; stages
never do: they receive their files from the rule (:mod:`ifm_eval.stage_io`).

The raw inputs are read from ``data/raw/`` when ``data.source: raw`` (the confidential real
files, dropped in by a researcher) and from ``data/synthetic/`` when ``data.source:
synthetic`` (the stand-in files written by ``ifm-eval synth``). Both trees have the same
layout (:data:`ifm_eval.sources.SOURCES`, documented in ``data/raw/README.md``); the
reference frame is always read from ``data/raw/reference/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ifm_eval.sources import LINEAGE_STAGES, SOURCES

#: Raw inputs, relative to the raw directory (derived from the source registry).
RAW_FILES: dict[str, str] = {k: s.path for k, s in SOURCES.items()}

REFERENCE_FILES: dict[str, str] = {
    "gv": "destatis_gv_auszug_bw.csv",
    "geo_gemeinden": "vg5000_bw_gemeinden_2021.geojson",
    "geo_kreise": "vg5000_bw_kreise_2021.geojson",
}


def raw_dir(cfg: dict[str, Any]) -> Path:
    """Directory holding the raw inputs for the configured data source."""
    data = cfg["data"]
    return Path(data["synthetic_dir"] if data["source"] == "synthetic" else data["raw_dir"])


def raw_path(cfg: dict[str, Any], key: str) -> Path:
    """Path of one raw input (see :data:`RAW_FILES`)."""
    return raw_dir(cfg) / RAW_FILES[key]


def reference_path(cfg: dict[str, Any], key: str) -> Path:
    """Path of one real reference file (see :data:`REFERENCE_FILES`)."""
    return Path(cfg["data"]["reference_dir"]) / REFERENCE_FILES[key]


def truth_path(cfg: dict[str, Any]) -> Path:
    """``truth.json`` of the stand-in data (planted parameters and true effect paths)."""
    return Path(cfg["data"]["synthetic_dir"]) / "truth.json"


def truth_counts_path(cfg: dict[str, Any]) -> Path:
    """``truth_counts.parquet`` of the stand-in data: observed and counterfactual stocks per
    municipality and month (the true cell effects, see :mod:`ifm_eval.validation`)."""
    return Path(cfg["data"]["synthetic_dir"]) / "truth_counts.parquet"


def processed_dir(cfg: dict[str, Any]) -> Path:
    return Path(cfg["data"]["processed_dir"])


def results_dir(cfg: dict[str, Any]) -> Path:
    return Path(cfg["data"]["results_dir"])


#: Derived files under ``data.processed_dir`` (microdata and municipality-level data: never
#: under results/).
PROCESSED_FILES: dict[str, str] = {
    "municipalities": "reference/municipalities.parquet",
    "funding_verbaende": "ingest/funding_verbaende.parquet",
    "funding_members": "ingest/funding_members.parquet",
    "im_posts": "ingest/im_posts.parquet",
    "kpi_reports": "ingest/kpi_reports.parquet",
    "refugees_au": "ingest/refugees_au.parquet",
    "employment_ba": "ingest/employment_ba.parquet",
    "training": "ingest/training.parquet",
    "language_b1": "ingest/language_b1.parquet",
    "case_management": "ingest/case_management_monthly.parquet",
    **{k: f"ingest/{k}.parquet" for k, s in SOURCES.items() if s.kind == "survey"},
    "survey_harmonised": "harmonise/survey_municipality.parquet",
    "key_report": "harmonise/key_matching_report.csv",
    "item_nonresponse": "harmonise/item_nonresponse.csv",
    "treatment": "harmonise/treatment.parquet",
    "panel": "panel/panel.parquet",
    "data_dictionary": "panel/data_dictionary.csv",
    "lineage": "panel/lineage.csv",
    "data_quality": "panel/data_quality.csv",
}
_missing = {o for s in SOURCES.values() for o in s.outputs} - set(PROCESSED_FILES)
if _missing:  # pragma: no cover - registry and layout out of step
    raise RuntimeError(f"processed files of sources without a path: {sorted(_missing)}")


def processed_path(cfg: dict[str, Any], key: str) -> Path:
    """Path of one derived file (see :data:`PROCESSED_FILES`)."""
    return processed_dir(cfg) / PROCESSED_FILES[key]


def lineage_path(cfg: dict[str, Any], stage: str) -> Path:
    """Lineage table of one stage (:data:`ifm_eval.sources.LINEAGE_STAGES` or ``panel``)."""
    if stage not in (*LINEAGE_STAGES, "panel"):
        raise KeyError(f"no lineage table for stage {stage!r}")
    return processed_dir(cfg) / "lineage" / f"{stage}.csv"


def lineage_paths(cfg: dict[str, Any]) -> list[Path]:
    """The lineage tables of every stage before the panel (inputs of the panel job)."""
    return [lineage_path(cfg, s) for s in LINEAGE_STAGES]


def estimate_paths(cfg: dict[str, Any], model: str) -> tuple[Path, Path]:
    """Tidy estimates (Parquet) and run metadata (JSON) of one model specification."""
    base = results_dir(cfg) / "estimates"
    return base / f"{model}.parquet", base / f"{model}.json"


def boot_path(cfg: dict[str, Any], model: str) -> Path:
    """Bootstrap t-statistics (under the null) of one model's headline, for step-down
    procedures across outcomes (empty when the spec has no ``inference.bootstrap``)."""
    return processed_dir(cfg) / "estimates" / f"{model}_boot.parquet"


def used_path(cfg: dict[str, Any], model: str) -> Path:
    """The treated observations one model's estimates average over (municipality-level:
    under ``data/``, never under ``results/``)."""
    return processed_dir(cfg) / "estimates" / f"{model}_used.parquet"
