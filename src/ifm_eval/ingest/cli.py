"""``ifm-eval ingest --config C --source <key>``: read, validate and write one
administrative source (:mod:`ifm_eval.ingest.admin`); ``--source all`` runs every one.

The survey waves have their own subcommands (``ingest-survey``, ``harmonise-surveys``) in
:mod:`ifm_eval.ingest.surveys`.
"""

from __future__ import annotations

import argparse
import logging

from ifm_eval.config import load_config

log = logging.getLogger(__name__)


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
    raise SystemExit(
        f"unknown source {source!r}; admin sources: {', '.join(admin.ADMIN_SOURCES)}, all "
        "(survey waves: ifm-eval ingest-survey / harmonise-surveys)"
    )


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ingest", help="read and validate one raw source into data/processed/ingest")
    p.add_argument("--config", default="config.yaml", help="config file (default config.yaml)")
    p.add_argument(
        "--source",
        required=True,
        help="raw-file key (paths.RAW_FILES), 'all' for every administrative source",
    )
    p.set_defaults(func=lambda a: run(a.config, a.source))
