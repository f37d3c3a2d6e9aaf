"""Benchmark: one Monte Carlo replicate and what K = 500 costs.

A replicate (:func:`ifm_eval.montecarlo.replicate.run_replicate`) draws a stand-in world with
its own seed, builds the panel and the matched truth in memory, and estimates every main
specification (6 estimators x 3 outcomes). Prints, over ``--repeat`` seeds (after one warm-up):

* the wall time of one replicate in one process, split into data and estimation, with
  analytic SEs (the issue's reference: target <= 5 s) and with the main specifications' own
  inference (cluster jackknife);
* the throughput of a pool of ``--jobs`` processes (2 cores: two replicates at a time) and
  from it the projected wall time of K = 500 per design, and of the full run (effects and
  null designs).

Usage: ``python benchmarks/bench_mc.py [--repeat 3] [--jobs 2]``.
"""

from __future__ import annotations

import mcpool  # first: one BLAS thread per process, set before numpy is imported

# isort: split
import argparse
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor


def _run(seed: int, analytic: bool) -> dict[str, float]:
    from ifm_eval.montecarlo.replicate import run_replicate

    rows = run_replicate(mcpool.STATE["cfg"], "effects", seed, mcpool.STATE["gv"], analytic=analytic)
    ok = rows["status"].eq("ok") & rows["row"].eq("headline")
    return {**rows.attrs["seconds"], "models": int(rows["model"].nunique()), "ok": int(ok.sum())}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="config.yaml")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=700000)
    args = ap.parse_args(argv)
    mcpool.init(args.config)
    _run(args.seed - 1, True)  # warm-up (imports, caches)
    print(f"one replicate, one process ({args.repeat} seeds):")
    single = {}
    for analytic in (True, False):
        res = [_run(args.seed + i, analytic) for i in range(args.repeat)]
        med = {k: statistics.median(r[k] for r in res) for k in ("data", "estimate", "total")}
        single[analytic] = med["total"]
        what = "analytic SEs      " if analytic else "main inference (CV3)"
        print(f"  {what}: total {med['total']:.2f} s (data {med['data']:.2f} s, estimation {med['estimate']:.2f} s; "
              f"{res[0]['models']} specs, {res[0]['ok']} headlines)  target <= 5 s: "
              f"{'met' if med['total'] <= 5 else 'NOT met'}")
    n = max(2 * args.jobs, args.repeat)
    t0 = time.perf_counter()
    with ProcessPoolExecutor(args.jobs, initializer=mcpool.init, initargs=(args.config,)) as pool:
        list(pool.map(_run, range(args.seed + 100, args.seed + 100 + n), [False] * n))
    per = (time.perf_counter() - t0) / n
    print(f"pool of {args.jobs} processes, main inference: {per:.2f} s per replicate (wall, {n} replicates "
          "incl. process start-up)")
    print(f"K = 500, one design: {500 * per / 60:.1f} min (one process, analytic SEs: "
          f"{500 * single[True] / 60:.1f} min; target < 45 min)")
    print(f"K = 500, designs effects + null: {1000 * per / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
