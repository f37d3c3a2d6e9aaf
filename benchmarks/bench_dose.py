"""Benchmark: ifm_eval.dose.estimate_dose_response vs moderndid 0.2.0 ``cont_did`` on the stand-in panel.

Panel: ``data/processed/panel/panel.parquet``, main sample t >= 13, outcome
``rate_employment``, dose ``vza_per_100_refugees``. ``cont_did`` needs a balanced panel with
periods 1..T and a dose of 0 for never-treated units, and uses no clusters; the stand-in's
never-treated municipalities have no outcome (no refugees), so without comparison units
in the last months ``cont_did``'s cells there are NaN. Both tools therefore get the same
preprocessed copy: months 13..49 (the cohorts starting in months 50 and 53 are never
treated within it), units with the outcome observed in every month, t and g recoded to
1..37, unweighted, no clusters, cubic
polynomial (degree 3, no interior knots), not-yet-treated comparison units, varying base
period, the same dose grid, 999 multiplier draws each. Timed in the same run:

* ``dose``: ATT(d), ACRT(d), ATT^o, ACRT^o (``cont_did(aggregation="dose")``; ours returns the
  event study too);
* ``eventstudy``: ``cont_did(aggregation="eventstudy", target_parameter="slope")`` (ours: the
  same call as ``dose``, it returns both).

Ours additionally on the full main-sample panel (unbalanced, 44 Kreis clusters, weights
refugees_2017, min_comparison_units=30) — the production call. Medians over ``--reps``
(ours) and ``--peer-reps`` (moderndid); the first call of each is a warm-up when reps > 1.
The max. abs. differences of the point estimates are printed.

Usage:  python benchmarks/bench_dose.py [--reps 3] [--peer-reps 1]
"""

from __future__ import annotations

import argparse
import os
import time
import types
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
PANEL = ROOT / "data" / "processed" / "panel" / "panel.parquet"


def _patch_moderndid() -> None:
    """moderndid 0.2.0 + polars >= 2: ``is_in`` of a Float64 cohort column against an int64
    ``np.arange`` raises; give ``process_panel`` an ``arange`` that returns floats."""
    import moderndid.didcont.estimation.process_panel as pp

    class _NP(types.ModuleType):
        def __getattr__(self, name):
            return getattr(np, name)

        @staticmethod
        def arange(*a, **k):
            return np.arange(*a, **k).astype(float)

    pp.np = _NP("numpy_float_arange")


def _timed(fn, reps: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(reps):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    if reps > 1:
        times = times[1:]
    return float(np.median(times)), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--peer-reps", type=int, default=1)
    ap.add_argument("--draws", type=int, default=999)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    from ifm_eval.dose import estimate_dose_response

    df = pd.read_parquet(PANEL)
    df = df[df["t"] >= 13].copy()
    df["refugees_2017"] = np.round(df["refugees_per_1000_2017"] * df["population"] / 1000)
    sub = df[df["t"] <= 49].copy()
    complete = sub.groupby("ags")["rate_employment"].transform(lambda s: s.notna().all())
    bal = sub[complete].copy()
    bal.loc[bal["g"] > 49, "g"] = 0
    bal["tt"] = bal["t"] - 12
    bal["gg"] = np.where(bal["g"] > 0, bal["g"] - 12, 0)
    bal["dd"] = np.where(bal["g"] > 0, bal["vza_per_100_refugees"], 0.0)
    bal["id"] = pd.factorize(bal["ags"], sort=True)[0] + 1
    bal = bal[["id", "tt", "gg", "dd", "rate_employment"]].reset_index(drop=True)
    print(f"stand-in main sample: {df['ags'].nunique()} units x {df['t'].nunique()} months ({len(df)} rows), "
          f"{df['kreis'].nunique()} Kreise; balanced copy for the comparison: {bal['id'].nunique()} units x "
          f"{bal['tt'].nunique()} months, {int((bal.groupby('id')['gg'].first() == 0).sum())} never treated")
    print(f"cores usable: {len(os.sched_getaffinity(0))}, load average: {os.getloadavg()[0]:.2f}")

    kw = dict(outcome="rate_employment", dose="dd", unit="id", time="tt", cohort="gg", cluster=None,
              min_comparison_units=1, n_boot=args.draws, event_window=None)
    t_ours, r = _timed(lambda: estimate_dose_response(bal, **kw), args.reps)
    grid = r.curves["dose"].to_numpy()

    _patch_moderndid()
    import moderndid

    mkw = dict(yname="rate_employment", tname="tt", idname="id", gname="gg", dname="dd", biters=args.draws,
               random_state=1)
    t_md, m = _timed(lambda: moderndid.cont_did(bal, aggregation="dose", dvals=grid, **mkw), args.peer_reps)
    t_md_es, e = _timed(lambda: moderndid.cont_did(bal, aggregation="eventstudy", target_parameter="slope", **mkw),
                        args.peer_reps)
    es = r.event_study.set_index("event_time").loc[e.event_study.event_times, "acrt"].to_numpy()
    diffs = {
        "ATT(d)": np.max(np.abs(r.curves["att"].to_numpy() - m.att_d)),
        "ACRT(d)": np.max(np.abs(r.curves["acrt"].to_numpy() - m.acrt_d)),
        "ACRT(d) rel.": np.max(np.abs(r.curves["acrt"].to_numpy() - m.acrt_d)) / np.max(np.abs(m.acrt_d)),
        "ATT^o": abs(r.aggregate("att_overall")["estimate"] - m.overall_att),
        "ACRT^o": abs(r.aggregate("acrt_overall")["estimate"] - m.overall_acrt),
        "ACRT^o(e)": np.max(np.abs(es - e.event_study.att_by_event)),
    }
    t_full, rf = _timed(lambda: estimate_dose_response(df, outcome="rate_employment", dose="vza_per_100_refugees",
                                                       weights="refugees_2017", n_boot=args.draws), args.reps)

    print(f"\n{'call':<52}{'seconds':>10}")
    print(f"{'ours (dose + event study, ' + str(args.draws) + ' draws)':<52}{t_ours:>10.2f}")
    print(f"{'moderndid cont_did aggregation=dose':<52}{t_md:>10.2f}")
    print(f"{'moderndid cont_did eventstudy slope':<52}{t_md_es:>10.2f}")
    print(f"{'ratio ours / moderndid (dose)':<52}{t_ours / t_md:>10.3f}")
    print(f"{'ratio ours / moderndid (dose + eventstudy)':<52}{t_ours / (t_md + t_md_es):>10.3f}")
    print(f"{'ours, full main sample (weights, 44 clusters)':<52}{t_full:>10.2f}")
    print(f"  full sample: {rf.n_units} units, {rf.n_treated} treated, {rf.n_clusters} clusters, "
          f"{rf.n_cells_used} cells used, {rf.n_cells_dropped} dropped (< 30 comparison units), "
          f"{rf.n_cells_unidentified} not identified")
    print("\nmax. abs. differences ours vs moderndid:")
    for k, v in diffs.items():
        print(f"  {k:<14}{v:.2e}")


if __name__ == "__main__":
    main()
