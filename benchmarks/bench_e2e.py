"""End-to-end budget: the README's first command on a clean clone, and the time per rule.

Clones the repository (``git clone`` of HEAD, so only committed files) into a temporary
directory, runs the README's first command there (venv, ``pip install -e .``, ``snakemake``
with the default profile on all cores) and prints the wall time of the whole run and, per
rule, the number of jobs, their summed and longest wall time and the highest peak memory
(from the ``benchmark:`` files, mapped to rules by a dry run; see
``benchmarks/resources.py``). The rules are sorted by summed time, the share of the
run's CPU time each takes, and the target (5 minutes on 2 cores) is compared with the
measured wall time. ``--reuse-venv`` skips the install (runs ``snakemake`` of the current
interpreter's environment); ``--config`` passes overrides to ``snakemake --config``;
``--keep`` keeps the clone.

Usage:  python benchmarks/bench_e2e.py [--reuse-venv] [--keep] [--config "monte_carlo={k: 4}"]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 300
sys.path.insert(0, str(Path(__file__).parent))


def readme_first_command() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- commands -->\s*```bash\n(.*?)```", text, re.S)
    if not block:
        raise RuntimeError("README.md: no <!-- commands --> block")
    return block.group(1).strip().splitlines()[0]


def per_rule(work: Path) -> pd.DataFrame:
    from resources import job_benchmarks

    rows = []
    for path, rule in job_benchmarks(work).items():
        f = work / path
        if f.is_file():
            b = pd.read_csv(f, sep="\t")
            rows.append({"rule": rule, "s": float(b["s"].iloc[-1]),
                         "max_rss": float(pd.to_numeric(b["max_rss"], errors="coerce").iloc[-1])})
    d = pd.DataFrame(rows)
    t = d.groupby("rule").agg(jobs=("s", "size"), total_s=("s", "sum"), max_s=("s", "max"), peak_mb=("max_rss", "max"))
    t["cpu_pct"] = 100 * t["total_s"] / t["total_s"].sum()
    return t.sort_values("total_s", ascending=False)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reuse-venv", action="store_true", help="use this environment's snakemake, no install")
    ap.add_argument("--keep", action="store_true", help="keep the clone")
    ap.add_argument("--config", default=None, help="snakemake --config overrides")
    a = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="ifm_e2e_"))
    clone = tmp / "ifm_eval"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    shared = ROOT.parent / "shared"
    if shared.exists() and not (tmp / "shared").exists():
        (tmp / "shared").symlink_to(shared)
    cmd = readme_first_command()
    if a.reuse_venv:
        cmd = f"{Path(sys.executable).parent / 'snakemake'}"
    if a.config:
        cmd += f" --config {a.config}"
    print(f"clone: {clone}\ncommand: {cmd}", flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(["bash", "-c", cmd], cwd=clone, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        print(proc.stderr[-4000:])
        return 1
    table = per_rule(clone)
    with pd.option_context("display.width", 160, "display.max_rows", 100, "display.float_format", "{:.1f}".format):
        print(table.to_string())
    cpu = table["total_s"].sum()
    print(f"\nwall time of the command: {wall:.0f} s ({wall / 60:.1f} min); jobs: {int(table['jobs'].sum())}; "
          f"summed job time {cpu:.0f} s; target {TARGET_SECONDS} s: {'met' if wall <= TARGET_SECONDS else 'NOT met'} "
          f"({wall / TARGET_SECONDS:.2f} x)")
    if not a.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
