"""Benchmark: full default stand-in data generation (``ifm-eval synth``, scale from config).

Usage: ``python benchmarks/bench_synth.py [--config config.yaml] [--scale 1.0] [--repeat 1]``.
Prints wall time per run and per step, and the peak resident set size of this process
(``resource.getrusage``; psutil RSS after the run as a cross-check). Writes into a temporary
directory so that ``data/synthetic`` is not touched.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import sys
import tempfile
import time
from pathlib import Path

import psutil

from ifm_eval import paths
from ifm_eval.config import load_config
from ifm_eval.synth import generate


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--config", default="config.yaml")
    ap.add_argument("--scale", type=float, default=None)
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    cfg = load_config(args.config)
    if args.scale is not None:
        cfg["synth"]["scale"] = args.scale
    walls = []
    for i in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            summary = generate(cfg, paths.reference_path(cfg, "gv"), Path(tmp))
            walls.append(time.perf_counter() - t0)
            size = sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file())
        print(f"run {i + 1}: wall {walls[-1]:.2f} s, output {size / 1e6:.1f} MB, "
              f"{summary['n_persons']} persons, {summary['n_case_management_rows']} export rows")
        print("  steps: " + ", ".join(f"{k} {v:.2f} s" for k, v in summary["timings"].items()))
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    rss = psutil.Process().memory_info().rss
    result = {
        "scale": cfg["synth"]["scale"],
        "seed": cfg["seed"],
        "wall_s_min": round(min(walls), 2),
        "wall_s_max": round(max(walls), 2),
        "peak_rss_mb": round(peak_kb / 1024, 1),
        "rss_after_mb": round(rss / 2**20, 1),
        "cpu_count": psutil.cpu_count(),
        "python": sys.version.split()[0],
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
