"""Benchmark: the credibility stage (issue "credibility diagnostics").

1. The wild cluster restricted bootstrap of the main static TWFE spec (employment):
   9,999 Webb draws, p-value and test-inversion CI, in-process (target < 5 s on 2 cores),
   and -- as the peer, on the unweighted variant since it has no WLS bootstrap -- pyfixest's
   ``wildboottest`` (which densifies the fixed effects) with the same number of draws, if
   installed; its peak RSS increase is printed too.
2. One headline fit per estimator as randomization inference runs it (``headline_only``),
   i.e. the cost of one permutation draw per spec.
3. With ``--dag``: the credibility rules of the DAG on the default data, forced to rerun
   (``snakemake -j2 --forcerun randomization credibility_inference pretrends twfe_diagnostics
   honest_did``), wall time and the time of every job from its ``benchmark:`` file (target:
   the whole stage under 2 minutes on 2 cores).

Usage: ``python benchmarks/bench_credibility.py [--dag] [--no-peer]`` from the repository root
after a default run (``snakemake -j2``).
"""

from __future__ import annotations

import argparse
import copy
import logging
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

CRED_RULES = ("randomization", "credibility_inference", "pretrends", "twfe_diagnostics", "honest_did_model",
              "honest_did")


def _spec(cfg, name, **over):
    from ifm_eval.estimators.specs import get_spec

    s = copy.deepcopy(get_spec(cfg, name))
    s.update(over)
    return s


def bench_wcr(cfg, panel, peer: bool) -> None:
    from ifm_eval.estimators import registry
    from ifm_eval.estimators.design import Design
    from ifm_eval.estimators.runner import prepare_data

    spec = _spec(cfg, "twfe_static_rate_employment")
    spec["inference"] = {"type": "analytic", "draws": 1, "seed": None,
                         "bootstrap": {"weights": "webb", "draws": 9999, "seed": 1}}
    data, g, _ = prepare_data(panel, spec)
    design = Design.from_spec(spec, unit="ags", time="t").with_(cohort=g)
    t0 = time.perf_counter()
    res = registry.fit(data, design, spec)
    total = time.perf_counter() - t0
    nob = copy.deepcopy(spec)
    nob["inference"].pop("bootstrap")
    t0 = time.perf_counter()
    registry.fit(data, design, nob)
    fit_only = time.perf_counter() - t0
    row = res.table[res.table["term"] == "att"].iloc[0]
    print(f"WCR, main static TWFE (employment), 9,999 Webb draws: {total:.2f} s with the fit "
          f"({total - fit_only:.2f} s bootstrap + test inversion; target < 5 s); "
          f"p = {row['boot_p']:.4f}, CI [{row['boot_ci_low']:.3f}, {row['boot_ci_high']:.3f}]")
    if not peer:
        return
    try:
        import pyfixest as pf
    except ImportError:
        print("pyfixest not installed: no peer")
        return
    unw = _spec(cfg, "twfe_static_rate_employment", weights=None, covariates=[])
    unw["inference"] = dict(spec["inference"])
    d, g, _ = prepare_data(panel, unw)
    d = d[d["rate_employment"].notna()].copy()
    d["D"] = ((d[g] > 0) & (d["t"] >= d[g])).astype(float)
    design = Design.from_spec(unw, unit="ags", time="t").with_(cohort=g)
    t0 = time.perf_counter()
    ours = registry.fit(d, design, unw)
    t_ours = time.perf_counter() - t0
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    m = pf.feols("rate_employment ~ D | ags + t", d, vcov={"CRV1": "kreis"})
    t0 = time.perf_counter()
    wb = m.wildboottest(param="D", reps=9999, seed=1, weights_type="webb")
    t_peer = time.perf_counter() - t0
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    p_ours = float(ours.table.loc[ours.table["term"] == "att", "boot_p"].iloc[0])
    print(f"unweighted, no covariates: ours {t_ours:.2f} s (p {p_ours:.4f}); pyfixest wildboottest "
          f"{t_peer:.2f} s (p {float(wb['Pr(>|t|)']):.4f}); ratio ours/peer {t_ours / t_peer:.3f}; "
          f"peer peak RSS +{(rss1 - rss0) / 1024:.0f} MB")


def bench_headline(cfg, panel) -> None:
    from ifm_eval.estimators import registry
    from ifm_eval.estimators.design import Design
    from ifm_eval.estimators.runner import prepare_data

    print("one randomization draw (headline only, analytic), per spec:")
    for est in ("twfe_static", "twfe_dynamic", "sun_abraham", "imputation", "gardner", "callaway_santanna"):
        spec = _spec(cfg, f"{est}_rate_employment")
        spec["inference"] = {"type": "analytic", "draws": 1, "seed": None}
        data, g, _ = prepare_data(panel, spec)
        design = Design.from_spec(spec, unit="ags", time="t").with_(cohort=g)
        registry.fit(data, design, spec, headline_only=True)
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            registry.fit(data, design, spec, headline_only=True)
            times.append(time.perf_counter() - t0)
        print(f"  {est:18s} {np.median(times):.3f} s -> 199 draws x 3 outcomes ~ {199 * 3 * np.median(times):.0f} s")


def bench_dag() -> None:
    t0 = time.perf_counter()
    targets = ("credibility_inference", "pretrends", "twfe_diagnostics", "honest_did")
    proc = subprocess.run(["snakemake", "-j2", "--forcerun", *CRED_RULES, "--", *targets],
                          capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        print(proc.stderr[-3000:])
        raise SystemExit("snakemake failed")
    rows = []
    for f in sorted(Path("logs/bench/credibility").glob("*.tsv")):
        b = pd.read_csv(f, sep="\t")
        rows.append((f.stem, float(b["s"].iloc[-1]), float(b["max_rss"].iloc[-1])))
    print(f"credibility stage (forced rerun, -j2): {wall:.0f} s wall (target < 120 s)")
    for name, s, rss in rows:
        print(f"  {name:34s} {s:7.1f} s  {rss:7.0f} MB")
    print(f"  sum of job times {sum(r[1] for r in rows):.0f} s")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dag", action="store_true", help="also rerun the credibility rules of the DAG")
    ap.add_argument("--no-peer", action="store_true", help="skip pyfixest's wildboottest")
    a = ap.parse_args(argv)
    logging.disable(logging.WARNING)
    from ifm_eval.config import load_config, validate_config

    cfg = validate_config(load_config("config.yaml"))
    panel = pd.read_parquet(Path(cfg["data"]["processed_dir"]) / "panel" / "panel.parquet")
    bench_wcr(cfg, panel, not a.no_peer)
    bench_headline(cfg, panel)
    if a.dag:
        bench_dag()


if __name__ == "__main__":
    sys.exit(main())
