"""Monte Carlo of the main specifications of a configuration, outside Snakemake.

The pipeline's own Monte Carlo is ``snakemake monte_carlo --config monte_carlo='{k: 500}'``
(one job per replicate). This script runs the same replicates
(:func:`ifm_eval.montecarlo.replicate.run_replicate`) in a process pool for *any* config
file, so that the specification before a change can be measured against the one after it
on the same seeds:

    python benchmarks/mc_compare.py --config benchmarks/configs/before_issue9.yaml --k 500 \\
        --out data/processed/mc_compare/before
    python benchmarks/mc_compare.py --config config.yaml --k 500 --out data/processed/mc_compare/after

Every replicate is cached as ``<out>/<design>/<seed>.parquet`` (an interrupted run resumes);
the summary (:func:`ifm_eval.montecarlo.summary.summarise`) is printed as a Markdown table
and written to ``<out>/summary.csv`` with the configuration's fingerprint
(:func:`ifm_eval.montecarlo.evidence.fingerprint`), with the time per replicate. A summary
of the shipped configuration at K = 500 is what ``src/ifm_eval/montecarlo/evidence/``
records (copy ``summary.csv`` there as ``k500_after.csv``; the one before a change as
``k500_before.csv``) — the pipeline's default run then applies it.
"""

from __future__ import annotations

import mcpool  # first: one BLAS thread per process, set before numpy is imported

# isort: split
import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import pandas as pd


def _one(design: str, seed: int, out: str) -> tuple[str, int, float]:
    from ifm_eval.montecarlo.replicate import run_replicate

    t0 = time.perf_counter()
    rows = run_replicate(mcpool.STATE["cfg"], design, seed, mcpool.STATE["gv"], mcpool.STATE["cfg"]["monte_carlo"]["models"])
    dt = time.perf_counter() - t0
    rows["seconds"] = dt
    path = Path(out) / design / f"{seed}.parquet"
    tmp = path.with_suffix(".tmp")
    rows.to_parquet(tmp, index=False)
    tmp.replace(path)
    return design, seed, dt


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="config.yaml")
    ap.add_argument("--k", type=int, default=40)
    ap.add_argument("--designs", default="effects,zero")
    ap.add_argument("--seed-base", type=int, default=None, help="default: the config's monte_carlo.seed_base")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", required=True)
    ap.add_argument("--reverse", action="store_true", help="run the missing replicates from the last seed down")
    ap.add_argument("--summarise-only", action="store_true",
                    help="run nothing; summarise the replicates cached under --out (the first K seeds found)")
    args = ap.parse_args(argv)
    from ifm_eval.config import load_config
    from ifm_eval.montecarlo.evidence import fingerprint
    from ifm_eval.montecarlo.summary import summarise

    cfg = load_config(args.config)
    base = cfg["monte_carlo"]["seed_base"] if args.seed_base is None else args.seed_base
    out = Path(args.out)
    designs = [d for d in args.designs.split(",") if d]
    for d in designs:
        (out / d).mkdir(parents=True, exist_ok=True)
    # seed-major order: an interrupted run leaves every design at (about) the same K
    todo = [(d, base + i) for i in range(args.k) for d in designs
            if not (out / d / f"{base + i}.parquet").exists()]
    if args.reverse:  # a second process on the same --out works from the other end
        todo = todo[::-1]
    if args.summarise_only:
        todo = []
    t0 = time.perf_counter()
    print(f"{len(todo)} replicate(s) to run ({args.k} per design {designs}), {args.jobs} process(es)", flush=True)
    done = 0
    with ProcessPoolExecutor(args.jobs, initializer=mcpool.init, initargs=(args.config,)) as pool:
        futs = [pool.submit(_one, d, s, str(out)) for d, s in todo]
        for f in as_completed(futs):
            d, s, dt = f.result()
            done += 1
            if done % 10 == 0 or done == len(todo):
                el = time.perf_counter() - t0
                print(f"  {done}/{len(todo)} ({el:.0f} s elapsed, last {d}/{s} {dt:.1f} s)", flush=True)
    files = [out / d / f"{base + i}.parquet" for d in designs for i in range(args.k)]
    missing = [f for f in files if not f.exists()]
    if missing:
        print(f"{len(missing)} replicate(s) not cached; summarising the {len(files) - len(missing)} that are")
        files = [f for f in files if f.exists()]
    rows = pd.concat([pd.read_parquet(f).assign(design=f.parent.name) for f in files], ignore_index=True)
    summ = summarise(rows)
    # the fingerprint ties the summary to the configuration (ifm_eval.montecarlo.evidence)
    summ.insert(0, "fingerprint", fingerprint(cfg))
    summ.to_csv(out / "summary.csv", index=False)
    sec = rows.groupby(["design", "seed"])["seconds"].first()
    print(f"\nreplicate wall time (one process): mean {sec.mean():.2f} s, median {sec.median():.2f} s")
    cols = ["design", "estimator", "outcome", "k", "bias", "bias_se", "rmse", "mean_se", "sd_error",
            "calibration", "coverage", "coverage_mcse", "rejection"]
    print(summ[cols].to_markdown(index=False, floatfmt=".3f"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
