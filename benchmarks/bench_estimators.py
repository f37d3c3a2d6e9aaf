"""Benchmark: every estimator against its peer implementation on the same panel.

The panel is the stand-in municipality x month panel (default config and seed, built in
memory: :func:`ifm_eval.synth.memory.panel_in_memory`), restricted to the municipalities
with an employment rate in every month from 2016-01 on (a balanced panel, which every peer
accepts), unweighted, clustered by Kreis, no covariates, not-yet-treated / all untreated
comparisons -- the configuration both sides implement identically. Peers:

* Callaway & Sant'Anna (outcome regression, dynamic aggregation), Sun & Abraham,
  imputation (Borusyak, Jaravel & Spiess), two-stage DiD (Gardner): diff-diff;
* TWFE static and the dynamic TWFE event study: pyfixest ``feols`` (diff-diff has no
  staggered relative-time TWFE event study; its static TWFE is the two-period design).

Prints per estimator the median wall time of ``--repeat`` runs (after a warm-up), the ratio
ours / peer (target <= 0.2, i.e. at least 5x faster) and the largest absolute difference
between the two implementations' event-time estimates, after (e >= 0) and before the start.
Callaway & Sant'Anna's pre-period estimates differ from diff-diff's in long leads (e <= -4,
up to 0.61 pp on this panel): there diff-diff departs from R ``did`` / csdid, which ours
reproduces (on this panel all 58 event-time estimates equal csdid 0.4.3's to 8e-15;
tests/test_callaway_santanna.py checks it on many designs).

Usage: ``python benchmarks/bench_estimators.py [--repeat 3] [--blas-threads 1]``.
"""

from __future__ import annotations

import argparse
import os
import sys


def _threads(argv: list[str]) -> None:
    n = "1"
    if "--blas-threads" in argv:
        n = argv[argv.index("--blas-threads") + 1]
    for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[v] = n


_threads(sys.argv)

import logging  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

Y, U, T, G, CL = "rate_employment", "ags", "t", "g", "kreis"


def panel() -> pd.DataFrame:
    from ifm_eval import paths
    from ifm_eval.config import load_config
    from ifm_eval.reference import read_gemeindeverzeichnis
    from ifm_eval.synth import simulate
    from ifm_eval.synth.memory import panel_in_memory

    cfg = load_config("config.yaml")
    gv = read_gemeindeverzeichnis(paths.reference_path(cfg, "gv"))
    p = panel_in_memory(simulate(cfg, gv), cfg, gv)
    p = p[p[T] >= 13].copy()
    full = p.groupby(U)[Y].apply(lambda s: s.notna().all())
    p = p[p[U].isin(full.index[full])].copy()
    p[G] = p["g_half_posts"].fillna(0).astype(int)
    p[U] = p[U].astype(str)
    p["uid"] = pd.factorize(p[U], sort=True)[0]
    p["D"] = ((p[G] > 0) & (p[T] >= p[G])).astype(float)
    p["rel"] = np.where(p[G] > 0, p[T] - p[G], -1000).astype(int)
    return p[[U, "uid", T, G, CL, Y, "D", "rel"]].reset_index(drop=True)


def timed(fn, repeat: int) -> tuple[float, object]:
    fn()
    walls, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        walls.append(time.perf_counter() - t0)
    return statistics.median(walls), out


def _es(res) -> dict[int, float]:
    es = res.rows("event_time")
    return {int(e): float(v) for e, v in zip(es["event_time"], es["estimate"], strict=True) if np.isfinite(v)}


def cases(p: pd.DataFrame):
    import diff_diff as dd
    import pyfixest as pf

    from ifm_eval.estimators.callaway_santanna import callaway_santanna
    from ifm_eval.estimators.gardner import gardner
    from ifm_eval.estimators.imputation import imputation
    from ifm_eval.estimators.sun_abraham import sun_abraham
    from ifm_eval.estimators.twfe import twfe_dynamic, twfe_static

    lo, hi = int(p.loc[p[G] > 0, "rel"].min()), int(p.loc[p[G] > 0, "rel"].max())

    def dd_es(res) -> dict[int, float]:
        e = res.event_study_effects
        return {int(k): float(v["effect"]) for k, v in e.items() if np.isfinite(v["effect"])}

    def cs_ours():
        r = callaway_santanna(p, Y, "uid", T, G, control_group="not_yet_treated", method="reg", cluster=CL)
        return r.to_result()

    def cs_peer():
        return dd.CallawaySantAnna(control_group="not_yet_treated", estimation_method="reg", cluster=CL).fit(
            p, Y, "uid", T, G, aggregate="event_study")

    yield ("callaway_santanna", "diff-diff", cs_ours, cs_peer,
           lambda r: _es(r), lambda r: {int(k): float(v["effect"]) for k, v in r.event_study_effects.items()})

    def sa_ours():
        return sun_abraham(p, Y, "uid", T, G, control_group="last_treated", cluster=CL, min_untreated_per_period=1)

    def sa_peer():
        # diff-diff: never-treated controls; ours: the last-treated cohort as never-treated
        q = p.copy()
        last = int(q[G].max())
        q = q[q[T] < last]
        q.loc[q[G] == last, G] = 0
        return dd.SunAbraham(cluster=CL).fit(q, Y, "uid", T, G)

    yield "sun_abraham", "diff-diff", sa_ours, sa_peer, _es, dd_es

    def imp_ours():
        return imputation(p, Y, "uid", T, G, cluster=CL, min_untreated_per_period=0, pretrends=False)

    def imp_peer():
        return dd.ImputationDiD(cluster=CL).fit(p, Y, "uid", T, G, aggregate="event_study")

    yield ("imputation", "diff-diff", imp_ours, imp_peer,
           lambda r: {e: v for e, v in _es(r).items() if e >= 0}, dd_es)

    def gd_ours():
        return gardner(p, Y, "uid", T, G, cluster=CL, min_untreated_per_period=0, event_window=(lo, hi))

    def gd_peer():
        return dd.TwoStageDiD(cluster=CL).fit(p, Y, "uid", T, G, aggregate="event_study")

    yield ("gardner", "diff-diff", gd_ours, gd_peer,
           lambda r: {e: v for e, v in _es(r).items() if e >= 0}, lambda r: {e: v for e, v in dd_es(r).items() if e >= 0})

    def tw_ours():
        return twfe_static(p, Y, "uid", T, G, cluster=CL)

    def tw_peer():
        return pf.feols(f"{Y} ~ D | uid + {T}", data=p, vcov={"CRV1": CL})

    yield ("twfe_static", "pyfixest", tw_ours, tw_peer,
           lambda r: {0: float(r.rows("overall")["estimate"].iloc[0])}, lambda r: {0: float(r.coef()["D"])})

    def td_ours():
        return twfe_dynamic(p, Y, "uid", T, G, cluster=CL, event_window=(lo, hi), min_untreated_per_period=0)

    def td_peer():
        q = p.assign(rel=p["rel"].where(p[G] > 0, -1))
        return pf.feols(f"{Y} ~ i(rel, ref=-1) | uid + {T}", data=q, vcov={"CRV1": CL})

    def td_peer_es(r) -> dict[int, float]:
        c = r.coef()
        out = {}
        for name, v in c.items():
            tail = name.split("::")[-1].rstrip("]")
            try:
                out[int(float(tail))] = float(v)
            except ValueError:
                continue
        return out

    yield "twfe_dynamic", "pyfixest", td_ours, td_peer, lambda r: {e: v for e, v in _es(r).items() if e != -1}, td_peer_es


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--blas-threads", default="1")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    p = panel()
    print(f"panel: {p[U].nunique()} municipalities x {p[T].nunique()} months ({len(p)} rows), "
          f"{p.loc[p[G] > 0, G].nunique()} cohorts, {p[CL].nunique()} Kreise; BLAS threads {args.blas_threads}")
    print("| estimator | peer | ours (s) | peer (s) | ours / peer | max abs diff, e >= 0 | max abs diff, e < 0 |\n"
          "|---|---|---|---|---|---|---|")
    for name, peer, ours, theirs, es_ours, es_peer in cases(p):
        t_o, r_o = timed(ours, args.repeat)
        t_p, r_p = timed(theirs, args.repeat)
        a, b = es_ours(r_o), es_peer(r_p)
        common = sorted(set(a) & set(b))
        post = [e for e in common if e >= 0]
        pre = [e for e in common if e < 0]
        d_post = max((abs(a[e] - b[e]) for e in post), default=float("nan"))
        d_pre = max((abs(a[e] - b[e]) for e in pre), default=float("nan"))
        print(f"| {name} | {peer} | {t_o:.3f} | {t_p:.3f} | {t_o / t_p:.3f} | {d_post:.1e} ({len(post)} terms) | "
              f"{d_pre:.1e} ({len(pre)} terms) |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
