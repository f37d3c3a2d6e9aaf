"""``ifm-eval ingest --config C --source <key>``: read, validate and write one raw source.

Administrative sources are handled by :mod:`ifm_eval.ingest.admin`; the survey waves (and
``--source surveys`` for the harmonised survey table) by :mod:`ifm_eval.ingest.surveys`
when it is installed. ``--source all`` runs every administrative source.
"""

from __future__ import annotations

import argparse
import logging

from ifm_eval.config import load_config

log = logging.getLogger(__name__)


def _survey_module():
    try:
        from ifm_eval.ingest import surveys
    except ImportError:
        return None
    return surveys


def run(config: str, source: str) -> None:
    from ifm_eval.ingest import admin

    cfg = load_config(config)
    if source == "all":
        for key in admin.ADMIN_SOURCES:
            log.info("ingest %s", key)
            admin.ingest_source(cfg, key)
        return
    if source in admin.READERS:
        log.info("ingest %s", source)
        admin.ingest_source(cfg, source)
        return
    surveys = _survey_module()
    if surveys is not None and (source.startswith("survey") or source == "surveys"):
        if source in ("surveys", "survey_harmonised") and hasattr(surveys, "harmonise_surveys"):
            surveys.harmonise_surveys(cfg)
            return
        if hasattr(surveys, "ingest_wave"):
            surveys.ingest_wave(cfg, source.removeprefix("survey_"))
            return
    raise SystemExit(f"unknown source {source!r}; admin sources: {', '.join(admin.ADMIN_SOURCES)}, "
                     "all" + (", survey_w1..survey_w5, surveys" if surveys else ""))


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ingest", help="read and validate one raw source into data/processed/ingest")
    p.add_argument("--config", default="config.yaml", help="config file (default config.yaml)")
    p.add_argument("--source", required=True,
                   help="raw-file key (paths.RAW_FILES), 'all' for every administrative source")
    p.set_defaults(func=lambda a: run(a.config, a.source))
