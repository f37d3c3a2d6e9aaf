"""Per-rule resources from the measured peaks: what each rule used (``benchmark:`` files)
against what it declares (``workflow/resources.yaml``), and the update of that file.

The benchmark files of a run (``logs/bench/**.tsv``, written by Snakemake for every job:
wall time ``s``, peak resident memory ``max_rss`` in MB) are mapped to their rules through
``snakemake -n --forceall`` (which prints each job's rule and benchmark path). Per rule the
script prints the number of jobs measured, the longest wall time, the highest peak memory,
the declared ``mem_mb`` and ``runtime`` and the ratios measured / declared. ``--write`` sets
``mem_mb`` to 1.5 x the peak (rounded up to 250 MB, at least 500) and ``runtime`` (minutes)
to 3 x the longest wall time (rounded up, at least 5) for every measured rule, never below
the value already declared (runs differ by load; ``--reset`` replaces), keeping the
declared values of rules without measurements.

Usage:  python benchmarks/resources.py [--dir .] [--write [--reset]]
"""

from __future__ import annotations

import argparse
import math
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
RESOURCES = ROOT / "workflow" / "resources.yaml"
MEM_FACTOR, MEM_STEP, MEM_MIN = 1.5, 250, 500
TIME_FACTOR, TIME_MIN = 3.0, 5


def job_benchmarks(workdir: Path) -> dict[str, str]:
    """benchmark path (relative to ``workdir``) -> rule, from a forced dry run."""
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--forceall", "--snakefile", str(ROOT / "Snakefile"),
                           "--directory", str(workdir), "--cores", "1"], capture_output=True, text=True, cwd=workdir)
    if proc.returncode != 0:
        raise RuntimeError(f"snakemake dry run failed:\n{proc.stderr[-3000:]}")
    out, rule = {}, None
    for line in (proc.stdout + proc.stderr).splitlines():
        m = re.match(r"\s*(?:local)?rule (\w+):", line)
        if m:
            rule = m.group(1)
            continue
        m = re.match(r"\s*benchmark: (\S+)", line)
        if m and rule:
            out[m.group(1)] = rule
    return out


def measured(workdir: Path) -> pd.DataFrame:
    """Per rule: jobs measured, max wall seconds, max peak RSS (MB)."""
    rows = []
    for path, rule in job_benchmarks(workdir).items():
        f = workdir / path
        if not f.is_file():
            continue
        b = pd.read_csv(f, sep="\t")
        rss = pd.to_numeric(b["max_rss"], errors="coerce")
        rows.append({"rule": rule, "s": float(b["s"].max()), "max_rss": float(rss.max())})
    if not rows:
        return pd.DataFrame(columns=["jobs", "max_s", "peak_mb"])
    d = pd.DataFrame(rows)
    return d.groupby("rule").agg(jobs=("s", "size"), max_s=("s", "max"), peak_mb=("max_rss", "max"))


def proposal(peak_mb: float, max_s: float) -> dict[str, int]:
    mem = max(MEM_MIN, int(math.ceil(MEM_FACTOR * peak_mb / MEM_STEP) * MEM_STEP))
    runtime = max(TIME_MIN, int(math.ceil(TIME_FACTOR * max_s / 60.0)))
    return {"mem_mb": mem, "runtime": runtime}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", default=str(ROOT), help="workflow directory with logs/bench (default: the repository)")
    ap.add_argument("--write", action="store_true", help="update workflow/resources.yaml from the measurements")
    ap.add_argument("--reset", action="store_true", help="with --write: replace, do not keep larger declared values")
    a = ap.parse_args(argv)
    doc = yaml.safe_load(RESOURCES.read_text(encoding="utf-8"))
    declared = doc["rules"]
    m = measured(Path(a.dir).resolve())
    rows = []
    for rule in sorted(set(declared) | set(m.index)):
        d = declared.get(rule, {})
        r = {"rule": rule, "declared_mem_mb": d.get("mem_mb"), "declared_runtime_min": d.get("runtime")}
        if rule in m.index:
            x = m.loc[rule]
            r.update(jobs=int(x["jobs"]), max_s=round(float(x["max_s"]), 1), peak_mb=round(float(x["peak_mb"]), 0))
            if d.get("mem_mb"):
                r["peak/declared_mem"] = round(float(x["peak_mb"]) / d["mem_mb"], 2)
            if d.get("runtime"):
                r["max_s/declared_runtime"] = round(float(x["max_s"]) / (60 * d["runtime"]), 3)
        rows.append(r)
    table = pd.DataFrame(rows).set_index("rule")
    with pd.option_context("display.width", 200, "display.max_rows", 200):
        print(table.to_string())
    over = table[(table.get("peak/declared_mem", pd.Series(dtype=float)) > 1)
                 | (table.get("max_s/declared_runtime", pd.Series(dtype=float)) > 1)]
    if len(over):
        print(f"\nrules over their declared resources: {', '.join(over.index)}")
    if a.write:
        for rule in m.index:
            new = proposal(m.loc[rule, "peak_mb"], m.loc[rule, "max_s"])
            old = declared.get(rule, {})
            # never below what an earlier measurement needed (unless --reset): runs differ by load
            declared[rule] = {**old, **(new if a.reset else
                                        {k: max(v, int(old.get(k, 0))) for k, v in new.items()})}
        doc["rules"] = dict(sorted(declared.items()))
        text = RESOURCES.read_text(encoding="utf-8").split("\nrules:")[0]
        RESOURCES.write_text(text + "\n" + yaml.safe_dump({"rules": doc["rules"]}, sort_keys=True), encoding="utf-8")
        print(f"\nwrote {RESOURCES}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
