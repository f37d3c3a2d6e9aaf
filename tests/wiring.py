"""In-process wiring of the data stages for tests: the same files the Snakemake rules
declare (:mod:`ifm_eval.paths`), passed to the same stage functions as the CLI does. The
real DAG is checked against the stages by the workflow tests (tests/test_workflow.py)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ifm_eval import paths as P
from ifm_eval.sources import ADMIN_SOURCES, OUTCOME_SOURCES, SOURCES, WAVES
from ifm_eval.stage_io import StageIO


def reference(cfg: dict[str, Any]) -> None:
    from ifm_eval import reference as ref

    ref.run(P.reference_path(cfg, "gv"), P.processed_path(cfg, "municipalities"))


def synth(cfg: dict[str, Any]) -> dict[str, Any]:
    from ifm_eval.synth import generate

    return generate(cfg, P.reference_path(cfg, "gv"), P.raw_dir(cfg))


def ingest(cfg: dict[str, Any], key: str) -> dict[str, pd.DataFrame]:
    from ifm_eval.ingest.run import run_source

    if not P.processed_path(cfg, "municipalities").is_file():
        reference(cfg)
    io = StageIO.of(f"ingest_{key}", {"raw": P.raw_path(cfg, key), "frame": P.processed_path(cfg, "municipalities")},
                    {**{k: P.processed_path(cfg, k) for k in SOURCES[key].outputs},
                     "lineage": P.lineage_path(cfg, f"ingest_{key}")})
    return run_source(cfg, key, io)


def ingest_admin(cfg: dict[str, Any]) -> dict[str, pd.DataFrame]:
    out: dict[str, pd.DataFrame] = {}
    for key in ADMIN_SOURCES:
        out.update(ingest(cfg, key))
    return out


def ingest_surveys(cfg: dict[str, Any]) -> None:
    from ifm_eval.ingest.survey_read import ingest_wave
    from ifm_eval.lineage import Lineage

    for w in WAVES:
        lin = Lineage(f"ingest_survey_{w}")
        ingest_wave(w, P.raw_path(cfg, f"survey_{w}"), P.processed_path(cfg, f"survey_{w}"), lin)
        lin.write(P.lineage_path(cfg, f"ingest_survey_{w}"))


def harmonise(cfg: dict[str, Any]) -> pd.DataFrame:
    from ifm_eval.ingest.survey_harmonise import run

    io = StageIO.of("harmonise_surveys",
                    {"wave": [P.processed_path(cfg, f"survey_{w}") for w in WAVES],
                     "frame": P.processed_path(cfg, "municipalities"),
                     "members": P.processed_path(cfg, "funding_members")},
                    {"harmonised": P.processed_path(cfg, "survey_harmonised"),
                     "key_report": P.processed_path(cfg, "key_report"),
                     "item_nonresponse": P.processed_path(cfg, "item_nonresponse"),
                     "lineage": P.lineage_path(cfg, "harmonise_surveys")})
    return run(cfg, io)


def no_surveys(cfg: dict[str, Any]) -> None:
    """Stand in for the survey stages where a test has no survey waves: an all-missing
    harmonised table (every moderator NA), no item non-response, empty lineages."""
    from ifm_eval.frame import load_frame
    from ifm_eval.lineage import Lineage
    from ifm_eval.panel import SURVEY_MODERATORS

    frame = load_frame(P.processed_path(cfg, "municipalities"))
    tab = pd.DataFrame({"ags": frame["ags"]})
    for name in SURVEY_MODERATORS:
        tab[name] = (pd.Series(float("nan"), index=tab.index) if name.endswith("_vza")
                     else pd.Series(pd.NA, index=tab.index, dtype="str"))
    p = P.processed_path(cfg, "survey_harmonised")
    p.parent.mkdir(parents=True, exist_ok=True)
    tab.to_parquet(p, index=False)
    pd.DataFrame(columns=["wave", "variable", "harmonised", "n", "n_missing", "share_missing"]).to_csv(
        P.processed_path(cfg, "item_nonresponse"), index=False)
    for stage in (*(f"ingest_survey_{w}" for w in WAVES), "harmonise_surveys"):
        Lineage(stage).write(P.lineage_path(cfg, stage))


def treatment(cfg: dict[str, Any]) -> pd.DataFrame:
    from ifm_eval import treatment as tr

    io = StageIO.of("treatment", {"frame": P.processed_path(cfg, "municipalities"),
                                  "members": P.processed_path(cfg, "funding_members"),
                                  "posts": P.processed_path(cfg, "im_posts")},
                    {"treatment": P.processed_path(cfg, "treatment"), "lineage": P.lineage_path(cfg, "treatment")})
    return tr.run(cfg, io)


def panel(cfg: dict[str, Any]) -> pd.DataFrame:
    from ifm_eval import panel as pn

    io = StageIO.of("panel",
                    {"frame": P.processed_path(cfg, "municipalities"), "treatment": P.processed_path(cfg, "treatment"),
                     "survey": P.processed_path(cfg, "survey_harmonised"),
                     "item_nonresponse": P.processed_path(cfg, "item_nonresponse"),
                     "kpi_reports": P.processed_path(cfg, "kpi_reports"),
                     "case_management": P.processed_path(cfg, "case_management"),
                     **{k: P.processed_path(cfg, k) for k in OUTCOME_SOURCES},
                     "lineage": P.lineage_paths(cfg)},
                    {"panel": P.processed_path(cfg, "panel"), "dictionary": P.processed_path(cfg, "data_dictionary"),
                     "lineage": P.processed_path(cfg, "lineage"), "quality": P.processed_path(cfg, "data_quality"),
                     "panel_lineage": P.lineage_path(cfg, "panel")})
    return pn.run(cfg, io)


def upto_panel(cfg: dict[str, Any], surveys: bool = True) -> pd.DataFrame:
    """reference -> admin ingestion -> surveys (or :func:`no_surveys`) -> treatment -> panel."""
    reference(cfg)
    ingest_admin(cfg)
    if surveys:
        ingest_surveys(cfg)
        harmonise(cfg)
    else:
        no_surveys(cfg)
    treatment(cfg)
    return panel(cfg)
