"""The ``synth`` job: write the stand-in raw tree that the rule declares.

Outputs: one per raw source (named by its key in :data:`ifm_eval.sources.SOURCES`), plus
``truth`` and ``truth_counts``; all must lie at their registry paths under one directory
(the stand-in raw tree), which this job checks before generating anything.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from ifm_eval.sources import SOURCES
from ifm_eval.stage_io import StageIO, StageIOError

log = logging.getLogger(__name__)


def out_dir_of(io: StageIO) -> Path:
    """The raw-tree root implied by the declared outputs (checked for every source)."""
    from ifm_eval.synth import TRUTH_COUNTS_FILE, TRUTH_FILE

    root = io.output("truth").parent
    expected = {k: root / s.path for k, s in SOURCES.items()}
    expected["truth_counts"] = root / TRUTH_COUNTS_FILE
    if io.output("truth").name != TRUTH_FILE:
        raise StageIOError(f"stage synth: output truth must be named {TRUTH_FILE}")
    wrong = {k: str(io.output(k)) for k, p in expected.items() if io.output(k).resolve() != p.resolve()}
    if wrong:
        raise StageIOError(f"stage synth: outputs {wrong} are not at their registry paths under {root}")
    return root


def run(cfg: dict[str, Any], io: StageIO) -> dict[str, Any]:
    from ifm_eval.synth import generate

    io.require(inputs=("gv",), outputs=(*SOURCES, "truth", "truth_counts"))
    out_dir = out_dir_of(io)
    log.info("synth: seed %s, scale %s -> %s", cfg["seed"], cfg["synth"]["scale"], out_dir)
    summary = generate(cfg, io.input("gv"), out_dir)
    cal = summary["calibration"]
    log.info(
        "started by 2018-01: %.1f%%, by 2018-05: %.1f%%; funded <= 1 VZÄ: %.1f%%, > 2 VZÄ: %.1f%%",
        100 * cal["share_started_by_2018_01"], 100 * cal["share_started_by_2018_05"],
        100 * cal["share_funded_le_1_vza"], 100 * cal["share_funded_gt_2_vza"],
    )
    log.info("true overall ATT (pp): %s",
             json.dumps({k: round(v, 3) for k, v in summary["att_overall"].items()}))
    return summary
