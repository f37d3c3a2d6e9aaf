"""Where every file of the pipeline lives.

The raw inputs are read from ``data/raw/`` when ``data.source: raw`` (the confidential real
files, dropped in by a researcher) and from ``data/synthetic/`` when ``data.source:
synthetic`` (the stand-in files written by ``ifm-eval synth``). Both trees have the same
layout, documented in ``data/raw/README.md``; the reference frame is always read from
``data/raw/reference/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: Raw inputs, relative to the raw directory. Keys are used by Snakemake rules and readers.
RAW_FILES: dict[str, str] = {
    "funding_applications": "funding/foerderantraege_im.xlsx",
    "im_posts": "funding/im_stellen.csv",
    "kpi_reports": "funding/kennzahlen_quartal.xlsx",
    "survey_w1": "surveys/w1_datenerfassung_2018-08.sav",
    "survey_w2": "surveys/w2_stand_integration_1_2018-12.sav",
    "survey_w3": "surveys/w3_rahmenbedingungen_2019-03.dta",
    "survey_w4": "surveys/w4_integrationsmanager_2019-06.sav",
    "survey_w5": "surveys/w5_stand_integration_2_2019-11.sav",
    "refugees_au": "outcomes/gefluechtete_au_monat.csv",
    "employment_ba": "outcomes/ba_beschaeftigte_asylherkunft.csv",
    "training": "outcomes/ausbildung_weiterbildung.csv",
    "language_b1": "outcomes/sprachzertifikate_b1.csv",
    "case_management": "casemanagement/fallmanagement_export.csv",
}

REFERENCE_FILES: dict[str, str] = {
    "gv": "destatis_gv_auszug_bw.csv",
    "geo_gemeinden": "vg5000_bw_gemeinden_2021.geojson",
    "geo_kreise": "vg5000_bw_kreise_2021.geojson",
}

SURVEY_KEYS = ("survey_w1", "survey_w2", "survey_w3", "survey_w4", "survey_w5")


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
    "survey_w1": "ingest/survey_w1.parquet",
    "survey_w2": "ingest/survey_w2.parquet",
    "survey_w3": "ingest/survey_w3.parquet",
    "survey_w4": "ingest/survey_w4.parquet",
    "survey_w5": "ingest/survey_w5.parquet",
    "survey_harmonised": "harmonise/survey_municipality.parquet",
    "key_report": "harmonise/key_matching_report.csv",
    "treatment": "harmonise/treatment.parquet",
    "panel": "panel/panel.parquet",
    "data_dictionary": "panel/data_dictionary.csv",
    "lineage": "panel/lineage.csv",
    "data_quality": "panel/data_quality.csv",
}


def processed_path(cfg: dict[str, Any], key: str) -> Path:
    """Path of one derived file (see :data:`PROCESSED_FILES`)."""
    return processed_dir(cfg) / PROCESSED_FILES[key]


def lineage_path(cfg: dict[str, Any], stage: str) -> Path:
    """Per-stage lineage table (rows in/out and reasons), concatenated by the panel stage."""
    return processed_dir(cfg) / "lineage" / f"{stage}.csv"


def estimate_paths(cfg: dict[str, Any], model: str) -> tuple[Path, Path]:
    """Tidy estimates (Parquet) and run metadata (JSON) of one model specification."""
    base = results_dir(cfg) / "estimates"
    return base / f"{model}.parquet", base / f"{model}.json"
