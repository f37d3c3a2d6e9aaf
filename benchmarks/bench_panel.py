"""Benchmark: ingest (admin sources) + treatment + panel, and the person-level aggregation.

    python benchmarks/bench_panel.py [--config config.yaml] [--stress-rows 1000000]

1. Wall time of ``ingest`` (every administrative source), survey harmonisation (if
   :mod:`ifm_eval.ingest.surveys` is installed), ``treatment`` and ``panel`` on the
   configured data (``data.source``; the stand-in files are generated into a temporary
   directory at full scale if ``data/synthetic`` does not exist). Target: < 30 s on 2 cores.
2. The case-management export (person level) read, validated and aggregated to
   municipality-month stocks in a fresh subprocess: wall time and peak RSS. Target: < 60 s,
   < 6 GB. With ``--stress-rows N`` the export is also replicated (new pseudonyms) to at
   least N rows and measured again, to show headroom beyond the stand-in's size.
"""

from __future__ import annotations

import argparse
import copy
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import sys, time
import pandas as pd
from ifm_eval.ingest.case_management import read_export, aggregate_stocks
from ifm_eval.lineage import Lineage
from ifm_eval.reference import read_gemeindeverzeichnis, municipalities
frame = municipalities(read_gemeindeverzeichnis(sys.argv[2]))
ags = sorted(frame["ags"])
t0 = time.perf_counter()
lin = Lineage("bench")
ev = read_export(sys.argv[1], set(ags), lin)
res = aggregate_stocks(ev, pd.Timestamp(sys.argv[3] + "-01"), pd.Timestamp(sys.argv[4] + "-01"), ags, lin)
dt = time.perf_counter() - t0
# VmHWM: peak RSS of this process image (ru_maxrss would include the forking parent's)
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(f"{len(ev)} {ev.attrs['n_persons']} {len(res)} {dt:.3f} {hwm / 1024:.1f}")
"""


def _measure_export(path: Path, cfg: dict) -> dict:
    from ifm_eval import paths

    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), str(paths.reference_path(cfg, "gv")),
         cfg["panel"]["start"], cfg["panel"]["end"]],
        check=True, capture_output=True, text=True)
    rows, persons, cells, secs, rss = out.stdout.split()
    return {"rows": int(rows), "persons": int(persons), "cells": int(cells),
            "seconds": float(secs), "peak_rss_mb": float(rss)}


def _replicate(src: Path, dst: Path, min_rows: int) -> int:
    """Copy the export k times with suffixed pseudonyms until it has >= min_rows rows."""
    lines = src.read_text(encoding="utf-8").splitlines()
    header, body = lines[0], lines[1:]
    k = max(1, -(-min_rows // max(len(body), 1)))
    with dst.open("w", encoding="utf-8", newline="\n") as fh:
        fh.write(header + "\n")
        for r in range(k):
            suffix = f"R{r}"
            fh.write("\n".join(ln.replace(";", suffix + ";", 1) for ln in body))
            fh.write("\n")
    return k * len(body)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="config.yaml")
    ap.add_argument("--stress-rows", type=int, default=1_000_000,
                    help="also aggregate an export replicated to at least this many rows (0 = skip)")
    args = ap.parse_args(argv)

    import logging

    logging.basicConfig(level=logging.WARNING)
    from ifm_eval import panel, paths, treatment
    from ifm_eval.config import load_config
    from ifm_eval.ingest import admin

    cfg = load_config(args.config)
    tmp = tempfile.TemporaryDirectory(prefix="bench_panel_")
    if not paths.raw_path(cfg, "im_posts").is_file():
        from ifm_eval.synth import generate

        cfg = copy.deepcopy(cfg)
        cfg["data"]["synthetic_dir"] = str(Path(tmp.name) / "synthetic")
        t0 = time.perf_counter()
        generate(cfg)
        print(f"[setup] generated stand-in data (scale {cfg['synth']['scale']}) in "
              f"{time.perf_counter() - t0:.1f} s -> {cfg['data']['synthetic_dir']}")
    cfg = copy.deepcopy(cfg)
    cfg["data"]["processed_dir"] = str(Path(tmp.name) / "processed")  # never touch data/processed

    print(f"data: {paths.raw_dir(cfg)}  panel {cfg['panel']['start']}..{cfg['panel']['end']}")
    timings: dict[str, float] = {}
    t_all = time.perf_counter()
    for key in admin.ADMIN_SOURCES:
        t0 = time.perf_counter()
        admin.ingest_source(cfg, key)
        timings[f"ingest {key}"] = time.perf_counter() - t0
    try:
        from ifm_eval.ingest.surveys import harmonise_surveys
    except ImportError:
        harmonise_surveys = None
    if harmonise_surveys is not None and paths.raw_path(cfg, "survey_w1").is_file():
        t0 = time.perf_counter()
        harmonise_surveys(cfg)
        timings["harmonise surveys"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    treatment.run(cfg)
    timings["treatment"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    p = panel.run(cfg)
    timings["panel"] = time.perf_counter() - t0
    total = time.perf_counter() - t_all
    for k, v in timings.items():
        print(f"  {k:<32s} {v:7.2f} s")
    print(f"ingest + harmonise + treatment + panel: {total:.2f} s (target < 30 s); "
          f"panel {len(p)} rows x {p.shape[1]} cols")
    print(f"process peak RSS so far: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")

    export = paths.raw_path(cfg, "case_management")
    m = _measure_export(export, cfg)
    print(f"person-level aggregation (stand-in, scale {cfg['synth']['scale']}): {m['rows']} rows, "
          f"{m['persons']} persons -> {m['cells']} cells in {m['seconds']:.2f} s, "
          f"peak RSS {m['peak_rss_mb']:.0f} MB (target < 60 s, < 6 GB)")
    if args.stress_rows:
        big = Path(tmp.name) / "export_stress.csv"
        n = _replicate(export, big, args.stress_rows)
        m = _measure_export(big, cfg)
        print(f"person-level aggregation (stress, {n} rows, {m['persons']} persons): "
              f"{m['seconds']:.2f} s, peak RSS {m['peak_rss_mb']:.0f} MB")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
