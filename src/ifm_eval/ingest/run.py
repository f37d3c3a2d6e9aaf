"""Ingestion of one administrative source: dispatch by source key, write what the rule declares.

:data:`READERS` maps every administrative source of :data:`ifm_eval.sources.SOURCES` to its
reader (a test keeps the two in step). :func:`ingest_source` reads and validates one file
into cleaned frames (no writing: for in-process use); :func:`run_source` is the job of the
rule ``ingest_<key>``: inputs ``raw`` (the file) and ``frame`` (the municipality frame),
outputs the source's processed files (:attr:`~ifm_eval.sources.Source.outputs`) and
``lineage``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from ifm_eval.frame import load_frame
from ifm_eval.ingest import admin
from ifm_eval.ingest.case_management import ingest_case_management
from ifm_eval.ingest.readers import LINE, write_parquet
from ifm_eval.lineage import Lineage
from ifm_eval.sources import ADMIN_SOURCES, SOURCES
from ifm_eval.stage_io import StageIO

log = logging.getLogger(__name__)

Reader = Callable[[dict[str, Any], Path, pd.DataFrame, Lineage], dict[str, pd.DataFrame]]

READERS: dict[str, Reader] = {
    "funding_applications": admin.ingest_funding,
    "im_posts": admin.ingest_posts,
    "kpi_reports": admin.ingest_kpi,
    "refugees_au": partial(admin.ingest_monthly, key="refugees_au"),
    "employment_ba": partial(admin.ingest_monthly, key="employment_ba"),
    "training": partial(admin.ingest_monthly, key="training"),
    "language_b1": partial(admin.ingest_monthly, key="language_b1"),
    "case_management": ingest_case_management,
}


def stage_name(key: str) -> str:
    """Lineage stage (and rule) name of the ingest job of source ``key``."""
    return f"ingest_{key}"


def ingest_source(cfg: dict[str, Any], key: str, raw: str | Path, frame: pd.DataFrame,
                  lineage: Lineage | None = None) -> dict[str, pd.DataFrame]:
    """Read and validate the administrative source ``key`` from ``raw``; returns its
    cleaned frames by processed key (see :attr:`ifm_eval.sources.Source.outputs`)."""
    if key not in READERS:
        raise ValueError(f"unknown administrative source {key!r} (one of {', '.join(ADMIN_SOURCES)})")
    lineage = lineage if lineage is not None else Lineage(stage_name(key))
    t0 = time.perf_counter()
    out = READERS[key](cfg, Path(raw), frame, lineage)
    out = {k: df.drop(columns=[LINE], errors="ignore") for k, df in out.items()}
    if set(out) != set(SOURCES[key].outputs):
        raise AssertionError(f"reader of {key} returned {sorted(out)}, registry says {SOURCES[key].outputs}")
    log.info("ingest %s: %.1f s", key, time.perf_counter() - t0)
    return out


def run_source(cfg: dict[str, Any], key: str, io: StageIO) -> dict[str, pd.DataFrame]:
    """The ``ingest_<key>`` job: read ``raw`` against ``frame``, write every declared output."""
    io.require(inputs=("raw", "frame"), outputs=(*SOURCES[key].outputs, "lineage"))
    lineage = Lineage(stage_name(key))
    out = ingest_source(cfg, key, io.input("raw"), load_frame(io.input("frame")), lineage)
    for name, df in out.items():
        write_parquet(df, io.output(name))
        log.info("wrote %s (%d rows)", io.output(name), len(df))
    lineage.write(io.output("lineage"))
    return out
