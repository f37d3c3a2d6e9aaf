"""``ifm-eval synth``: write the stand-in raw data (see :func:`ifm_eval.synth.generate`)."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def run(args: argparse.Namespace) -> dict:
    from ..config import load_config, validate_config
    from . import generate

    cfg = load_config(args.config)
    if args.seed is not None:
        cfg["seed"] = int(args.seed)
    if args.scale is not None:
        cfg["synth"]["scale"] = float(args.scale)
    cfg = validate_config(cfg)  # overrides must satisfy the schema too
    out_dir = Path(args.out_dir) if args.out_dir else None
    log.info("synth: seed %s, scale %s", cfg["seed"], cfg["synth"]["scale"])
    summary = generate(cfg, out_dir=out_dir)
    cal = summary["calibration"]
    log.info(
        "started by 2018-01: %.1f%%, by 2018-05: %.1f%%; funded <= 1 VZÄ: %.1f%%, > 2 VZÄ: %.1f%%",
        100 * cal["share_started_by_2018_01"], 100 * cal["share_started_by_2018_05"],
        100 * cal["share_funded_le_1_vza"], 100 * cal["share_funded_gt_2_vza"],
    )
    log.info("true overall ATT (pp): %s", json.dumps({k: round(v, 3) for k, v in summary["att_overall"].items()}))
    return summary


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("synth", help="generate the stand-in raw data (all files of data/raw/README.md + truth.json)")
    p.add_argument("--config", default="config.yaml", help="configuration file (default: config.yaml)")
    p.add_argument("--seed", type=int, default=None, help="override the seed of the config")
    p.add_argument("--scale", type=float, default=None, help="override synth.scale (1.0 = full state)")
    p.add_argument("--out-dir", default=None, help="output directory (default: data.synthetic_dir)")
    p.set_defaults(func=run)
