"""Benchmark: ifm_eval callaway_santanna vs csdid 0.4.3 and diff-diff CallawaySantAnna.

Rows (all with not-yet-treated controls, fit + dynamic/event-study aggregation):
  reg        no covariates, outcome regression, analytic SEs
  dr_2cov    doubly robust with two covariates, analytic SEs
  reg_boot   no covariates, outcome regression, 999 multiplier-bootstrap draws

Panels: (a) the default municipality-month panel ``data/processed/panel/panel.parquet``
if it exists (ags, t, g, rate_employment, log_population, urbanisation), otherwise a
simulated panel of the same shape (1,101 units x 72 months, ~20 cohorts, almost no
never-treated units); (b) a random 20,000-unit x 84-month panel (skipped by ``--quick``).

Each tool/row runs in a fresh subprocess (imports and data loading excluded from the
timing) that repeats the call: wall time of fit + aggregation, and peak memory as the
peak RSS increase over the RSS just before the first call (psutil sampling every 2 ms
during the first call, cross-checked with ``ru_maxrss`` over all calls). With more
than one repeat the first call is a warm-up and the timed repeats run without the
sampler thread (it competes for the GIL); with one repeat that call is timed. ATT(g,t) of each call are saved and compared with
csdid's. Robustness to machine load: medians over repeats (default 5 for ifm_eval; 3
for the peers on panel a, 1 on the expensive panel b), and the environment (cores
usable, BLAS library and thread count, load average at the start and at the end) is
printed with the table.

Usage:  python benchmarks/bench_cs.py [--quick] [--reps 5] [--peer-reps N] [--blas-threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
PANEL = ROOT / "data" / "processed" / "panel" / "panel.parquet"
COLS = dict(
    unit="ags",
    time="t",
    cohort="g",
    outcome="rate_employment",
    covariates=["log_population", "urbanisation"],
)


# --------------------------------------------------------------------------- #
def simulate_panel(
    n_units: int, n_periods: int, n_cohorts: int, never_share: float, seed: int
) -> pd.DataFrame:
    """Random staggered panel in the municipality-panel schema."""
    rng = np.random.default_rng(seed)
    logpop = rng.normal(8.5, 1.2, n_units)
    urb = rng.integers(1, 4, n_units).astype(float)
    first = max(3, n_periods // 6)
    cohorts = np.unique(np.linspace(first, n_periods - 2, n_cohorts).round().astype(int))
    score = 0.4 * (logpop - 8.5) - 0.3 * urb + rng.normal(size=n_units)
    ranks = np.argsort(np.argsort(score)) / n_units
    g = cohorts[np.minimum((ranks * len(cohorts)).astype(int), len(cohorts) - 1)]
    g = np.where(rng.random(n_units) < never_share, 0, g)
    t = np.arange(1, n_periods + 1)
    fe = rng.normal(0, 2, n_units) + 0.3 * logpop
    trend = 0.02 * t[None, :] * (1 + 0.1 * urb[:, None])
    e = t[None, :] - g[:, None]
    eff = np.where((g[:, None] > 0) & (e >= 0), 0.5 + 0.05 * np.minimum(e, 24), 0.0)
    y = 60 + fe[:, None] + trend + eff + rng.normal(0, 1, (n_units, n_periods))
    return pd.DataFrame(
        {
            "ags": np.repeat(np.arange(1, n_units + 1) + 8_000_000, n_periods),
            "t": np.tile(t, n_units),
            "g": np.repeat(g, n_periods),
            "rate_employment": y.ravel(),
            "log_population": np.repeat(logpop, n_periods),
            "urbanisation": np.repeat(urb, n_periods),
        }
    )


def municipality_panel() -> tuple[pd.DataFrame, str]:
    if PANEL.exists():
        df = pd.read_parquet(
            PANEL, columns=["ags", "t", "g", *[COLS["outcome"]], *COLS["covariates"]]
        )
        df["g"] = df["g"].fillna(0)
        # integer codes for unit / period (csdid needs a numeric id)
        df["ags"] = pd.factorize(df["ags"], sort=True)[0] + 1
        if not np.issubdtype(df["t"].dtype, np.integer):
            tcodes = {v: i + 1 for i, v in enumerate(sorted(df["t"].unique()))}
            df["t"] = df["t"].map(tcodes)
            df["g"] = df["g"].map(lambda v: tcodes.get(v, 0) if v else 0)
        return df.dropna().reset_index(drop=True), "panel.parquet"
    return simulate_panel(
        1101, 72, 20, 0.004, seed=2026
    ), "simulated 1101x72 (panel.parquet absent)"


# --------------------------------------------------------------------------- #
CHILD = r"""
import json, sys, time, threading, resource, gc, contextlib, io, warnings
import numpy as np, pandas as pd, psutil
cfg = json.loads(sys.argv[1])
df = pd.read_parquet(cfg["data"])
tool, row, reps = cfg["tool"], cfg["row"], cfg["reps"]
u, tt, g, y, covs = "ags", "t", "g", "rate_employment", ["log_population", "urbanisation"]
cov = covs if row == "dr_2cov" else None
meth = "dr" if row == "dr_2cov" else "reg"
nb = 999 if row == "reg_boot" else 0
warnings.simplefilter("ignore")
if tool == "ours":
    from ifm_eval.estimators.callaway_santanna import callaway_santanna
    def call():
        r = callaway_santanna(df, y, u, tt, g, covariates=cov, control_group="not_yet_treated",
                              method=meth, n_boot=nb, seed=1)
        r.aggregate("dynamic")
        a = r.att_gt
        return a["cohort"].to_numpy(float), a["time"].to_numpy(float), a["att"].to_numpy(float)
elif tool == "csdid":
    from csdid.att_gt import ATTgt
    xf = y + " ~ " + ("+".join(cov) if cov else "1")
    def call():
        with contextlib.redirect_stdout(io.StringIO()):
            m = ATTgt(yname=y, tname=tt, idname=u, gname=g, data=df, control_group="notyettreated",
                      xformla=xf, biters=max(nb, 1))
            m.fit(est_method=meth, bstrap=nb > 0)
            m.aggte(typec="dynamic", na_rm=True)
        r = m.results
        return np.asarray(r["group"], float), np.asarray(r["year"], float), np.asarray(r["att"], float)
else:
    from diff_diff import CallawaySantAnna
    def call():
        est = CallawaySantAnna(control_group="not_yet_treated", estimation_method=meth,
                               n_bootstrap=nb, seed=1)
        res = est.fit(df, outcome=y, unit=u, time=tt, first_treat=g, covariates=cov)
        res.aggregate("event_study")
        return None
gc.collect()
proc = psutil.Process()
rss0 = proc.memory_info().rss
maxrss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
peak = [rss0]
stop = [False]
def sampler():
    while not stop[0]:
        r = proc.memory_info().rss
        if r > peak[0]:
            peak[0] = r
        time.sleep(0.002)
th = threading.Thread(target=sampler, daemon=True); th.start()
# call 1 (also the warm-up) runs under the RSS sampler; with reps > 1 the timed
# repeats run without it (a thread waking every 2 ms contends for the GIL and slows
# short calls), and ru_maxrss still covers their peak
t0 = time.perf_counter(); out = call(); first = time.perf_counter() - t0
stop[0] = True; th.join()
gc.collect()
times = [first] if reps == 1 else []
for i in range(reps if reps > 1 else 0):
    t0 = time.perf_counter(); out = call(); times.append(time.perf_counter() - t0)
maxrss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
pk = max(peak[0], maxrss1 if maxrss1 > maxrss0 else 0)
res = {"times": times, "first": first, "peak_mb": (pk - rss0) / 2**20}
if out is not None:
    np.save(cfg["att_out"], np.column_stack(out))
print(json.dumps(res))
"""


def run_child(tool: str, row: str, data: str, reps: int, att_out: str, timeout: float) -> dict:
    cfg = json.dumps({"tool": tool, "row": row, "data": data, "reps": reps, "att_out": att_out})
    env = dict(
        os.environ, PYTHONPATH=str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")
    )
    try:
        p = subprocess.run(
            [sys.executable, "-c", CHILD, cfg],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timeout > {timeout:.0f}s"}
    if p.returncode != 0:
        return {"error": (p.stderr.strip().splitlines() or ["?"])[-1][:120]}
    return json.loads(p.stdout.strip().splitlines()[-1])


def max_att_diff(a_file: str, b_file: str) -> float:
    if not (os.path.exists(a_file) and os.path.exists(b_file)):
        return float("nan")
    a, b = np.load(a_file), np.load(b_file)
    fa = pd.DataFrame(a, columns=["g", "t", "att"]).set_index(["g", "t"])
    fb = pd.DataFrame(b, columns=["g", "t", "att"]).set_index(["g", "t"])
    j = fa.rename(columns={"att": "att_a"}).join(fb.rename(columns={"att": "att_b"}), how="outer")
    both = j.dropna()
    if len(j) != len(both) and (j["att_a"].isna() != j["att_b"].isna()).any():
        return float("inf")  # different set of estimated cells
    return float(np.max(np.abs(both["att_a"] - both["att_b"]))) if len(both) else float("nan")


def environment(blas_env: dict) -> str:
    """One line: Python, cores (usable / total), BLAS library and threads, load."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count()
    try:
        from threadpoolctl import threadpool_info

        libs = [
            f"{i.get('internal_api')} {i.get('version')} threads={i.get('num_threads')}"
            for i in threadpool_info()
            if i.get("user_api") == "blas"
        ]
    except Exception:  # threadpoolctl missing: library from numpy's build info
        libs = []
        try:
            b = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
            libs = [
                f"{b.get('name')} {b.get('version')} threads="
                + (os.environ.get("OPENBLAS_NUM_THREADS") or "default (one per core)")
            ]
        except Exception:
            pass
    l1, l5, l15 = os.getloadavg()
    return (
        f"python {sys.version.split()[0]}, numpy {np.__version__}, cores usable "
        f"{usable}/{os.cpu_count()}, BLAS {'; '.join(libs) or '?'} "
        f"(env {blas_env or 'default'}), load average {l1:.2f} {l5:.2f} {l15:.2f} "
        f"at start {time.strftime('%H:%M:%S')}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="skip the 20,000-unit panel")
    ap.add_argument("--reps", type=int, default=5, help="repetitions for ifm_eval (>=5)")
    ap.add_argument(
        "--peer-reps",
        type=int,
        default=None,
        help="repetitions for csdid/diff-diff (default 3 on panel a, 1 on panel b)",
    )
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument(
        "--blas-threads",
        type=int,
        default=None,
        help="set OPENBLAS/OMP/MKL thread counts for every call (all tools alike)",
    )
    ap.add_argument("--smoke", action="store_true", help="tiny panels, to check the harness")
    args = ap.parse_args()
    if args.blas_threads:
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(args.blas_threads)

    tmp = Path(tempfile.mkdtemp(prefix="bench_cs_"))
    panels = []
    if args.smoke:
        dfa, label = simulate_panel(150, 10, 4, 0.1, seed=1), "smoke 150x10"
    else:
        dfa, label = municipality_panel()
    panels.append(("a", label, dfa))
    if not args.quick and not args.smoke:
        panels.append(("b", "simulated 20000x84", simulate_panel(20_000, 84, 20, 0.1, seed=7)))

    rows = ["reg", "dr_2cov", "reg_boot"]
    results = []
    blas = {
        v: os.environ.get(v)
        for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")
        if os.environ.get(v)
    }
    print(environment(blas))
    for key, label, df in panels:
        path = tmp / f"panel_{key}.parquet"
        df.to_parquet(path)
        nu, nt = df["ags"].nunique(), df["t"].nunique()
        ng = df.loc[df.g > 0, "g"].nunique()
        nnever = df.loc[df.g == 0, "ags"].nunique()
        print(
            f"\npanel {key}: {label}: {nu} units x {nt} periods, {ng} cohorts, {nnever} never-treated"
        )
        for row in rows:
            rec = {"panel": key, "row": row}
            for tool in ("ours", "csdid", "diffdiff"):
                reps = args.reps if tool == "ours" else (args.peer_reps or (3 if key == "a" else 1))
                att_out = str(tmp / f"{key}_{row}_{tool}.npy")
                r = run_child(tool, row, str(path), reps, att_out, args.timeout)
                rec[tool] = r
                t = r.get("times")
                msg = (
                    f"median {np.median(t):8.3f}s (n={len(t)}), peak +{r['peak_mb']:7.1f} MB"
                    if t
                    else r.get("error")
                )
                print(f"  {row:9s} {tool:9s} {msg}", flush=True)
            rec["max_att_diff_vs_csdid"] = max_att_diff(
                str(tmp / f"{key}_{row}_ours.npy"), str(tmp / f"{key}_{row}_csdid.npy")
            )
            results.append(rec)

    print(
        "\n| panel | row | ours s (n) | csdid s (n) | diff-diff s (n) | speed-up vs faster peer "
        "| peak MB ours / csdid / diff-diff | max abs ATT(g,t) diff vs csdid |"
    )
    print("|---|---|---|---|---|---|---|---|")

    def fmt(r):
        return (
            f"{np.median(r['times']):.3f} ({len(r['times'])})"
            if "times" in r
            else r.get("error", "?")
        )

    def pk(r):
        return f"{r['peak_mb']:.0f}" if "peak_mb" in r else "-"

    for rec in results:
        peers = [np.median(rec[t]["times"]) for t in ("csdid", "diffdiff") if "times" in rec[t]]
        ours = np.median(rec["ours"]["times"]) if "times" in rec["ours"] else np.nan
        speed = f"{min(peers) / ours:.1f}x" if peers and np.isfinite(ours) else "-"
        print(
            f"| {rec['panel']} | {rec['row']} | {fmt(rec['ours'])} | {fmt(rec['csdid'])} | "
            f"{fmt(rec['diffdiff'])} | {speed} | {pk(rec['ours'])} / {pk(rec['csdid'])} / "
            f"{pk(rec['diffdiff'])} | {rec['max_att_diff_vs_csdid']:.1e} |"
        )
    l1, l5, l15 = os.getloadavg()
    print(
        f"\nload average {l1:.2f} {l5:.2f} {l15:.2f} at end {time.strftime('%H:%M:%S')}; "
        "times are medians over the repeats shown in parentheses"
    )
    (tmp / "results.json").write_text(json.dumps(results, indent=1, default=float))
    print(f"\nraw results: {tmp / 'results.json'}")


if __name__ == "__main__":
    main()
