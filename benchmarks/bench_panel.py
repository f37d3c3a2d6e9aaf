"""Benchmark: the data stages of the DAG (ingest, surveys, treatment, panel) and the
person-level aggregation.

    python benchmarks/bench_panel.py [--config config.yaml] [--stress-rows 1000000]

1. In a temporary working directory (``data/`` of the repository is never touched) the
   workflow first generates the stand-in data (``snakemake <truth.json>``), then builds the
   panel (``snakemake <panel.parquet> --cores 2``): every ingest job, the survey waves and
   their harmonisation, treatment and panel, exactly as the pipeline runs them. Prints the
   wall time of the second call and each job's time and peak RSS from its ``benchmark:``
   file. Target: < 30 s on 2 cores.
2. The case-management export (person level) read, validated and aggregated to
   municipality-month stocks in a fresh subprocess: wall time and peak RSS. Target: < 60 s,
   < 6 GB. With ``--stress-rows N`` the export is also replicated (new pseudonyms) to at
   least N rows and measured again, to show headroom beyond the stand-in's size.
"""

from __future__ import annotations

import argparse
import contextlib
import os
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


def _measure_export(path: Path, cfg: dict, work: Path) -> dict:
    from ifm_eval import paths

    with _chdir(work):
        gv = paths.reference_path(cfg, "gv").resolve()
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), str(gv),
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


ROOT = Path(__file__).resolve().parents[1]


def _snakemake(work: Path, *targets: Path, cores: int = 2) -> float:
    bin_dir = Path(sys.executable).parent
    cmd = [str(bin_dir / "snakemake"), "--snakefile", str(ROOT / "Snakefile"), "--directory", str(work),
           "--cores", str(cores), *map(str, targets), "--quiet", "all"]
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"snakemake failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-4000:]}")
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="config.yaml")
    ap.add_argument("--stress-rows", type=int, default=1_000_000,
                    help="also aggregate an export replicated to at least this many rows (0 = skip)")
    args = ap.parse_args(argv)
    import pandas as pd
    import yaml

    from ifm_eval import paths
    from ifm_eval.config import load_config

    tmp = tempfile.TemporaryDirectory(prefix="bench_panel_")
    work = Path(tmp.name)
    raw_cfg = yaml.safe_load(Path(args.config).read_text(encoding="utf-8"))
    ref = Path(raw_cfg["data"]["reference_dir"])
    raw_cfg["data"]["reference_dir"] = str(ref if ref.is_absolute() else ROOT / ref)
    (work / "config.yaml").write_text(yaml.safe_dump(raw_cfg), encoding="utf-8")
    cfg = load_config(work / "config.yaml")
    # targets as the rules name them (relative to the working directory)
    truth, panel_rel = paths.truth_path(cfg), paths.processed_path(cfg, "panel")
    panel_file, export = work / panel_rel, work / paths.raw_path(cfg, "case_management")
    t_synth = _snakemake(work, truth)
    print(f"[setup] stand-in data (scale {cfg['synth']['scale']}) generated in {t_synth:.1f} s")
    before = set((work / "logs" / "bench").glob("*.tsv"))
    total = _snakemake(work, panel_rel)
    rows = []
    for f in sorted(set((work / "logs" / "bench").rglob("*.tsv")) - before):
        b = pd.read_csv(f, sep="\t")
        rows.append((f.stem, float(b["s"].iloc[0]), float(b["max_rss"].iloc[0])))
    for name, sec, rss in sorted(rows, key=lambda r: -r[1]):
        print(f"  {name:<36s} {sec:7.2f} s  {rss:8.0f} MB")
    p = pd.read_parquet(panel_file)
    print(f"ingest + surveys + treatment + panel (snakemake, 2 cores): {total:.2f} s (target < 30 s); "
          f"{len(rows)} jobs; panel {len(p)} rows x {p.shape[1]} cols")

    m = _measure_export(export, cfg, work)
    print(f"person-level aggregation (stand-in, scale {cfg['synth']['scale']}): {m['rows']} rows, "
          f"{m['persons']} persons -> {m['cells']} cells in {m['seconds']:.2f} s, "
          f"peak RSS {m['peak_rss_mb']:.0f} MB (target < 60 s, < 6 GB)")
    if args.stress_rows:
        big = work / "export_stress.csv"
        n = _replicate(export, big, args.stress_rows)
        m = _measure_export(big, cfg, work)
        print(f"person-level aggregation (stress, {n} rows, {m['persons']} persons): "
              f"{m['seconds']:.2f} s, peak RSS {m['peak_rss_mb']:.0f} MB")
    tmp.cleanup()
    return 0


@contextlib.contextmanager
def _chdir(path: Path):
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


if __name__ == "__main__":
    raise SystemExit(main())
