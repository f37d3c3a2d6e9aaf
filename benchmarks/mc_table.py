"""Before/after table of two Monte Carlo summaries (``benchmarks/mc_compare.py`` output).

    python benchmarks/mc_table.py src/ifm_eval/montecarlo/evidence/k500_before.csv \\
        src/ifm_eval/montecarlo/evidence/k500_after.csv

Prints one Markdown row per estimator x outcome: K, coverage of the 95% CIs (effects
design), rejection rate under zero, bias / mean SE (both designs), calibration (mean SE /
SD of the error, effects design) — before → after — and whether the after-run meets the
targets (:func:`ifm_eval.montecarlo.summary.passes`).
"""

from __future__ import annotations

import argparse
import sys

import pandas as pd


def table(before: pd.DataFrame, after: pd.DataFrame) -> str:
    from ifm_eval.montecarlo.summary import passes

    ok = passes(after).set_index(["estimator", "outcome"])
    idx = ["estimator", "outcome"]

    def part(s: pd.DataFrame, design: str) -> pd.DataFrame:
        return s[s["design"] == design].set_index(idx)

    be, bz, ae, az = part(before, "effects"), part(before, "zero"), part(after, "effects"), part(after, "zero")
    lines = ["| outcome | estimator | K (after) | coverage | rejection at zero | bias/SE (effects) | bias/SE (zero) "
             "| calibration SE/SD | targets met (after) |", "|---|---|---|---|---|---|---|---|---|"]
    keys = sorted(ae.index.union(be.index), key=lambda k: (k[1], k[0]))

    def pair(b: pd.DataFrame, a: pd.DataFrame, key: tuple, col: str, fmt: str) -> str:
        x = fmt.format(b.loc[key, col]) if key in b.index else "–"
        y = fmt.format(a.loc[key, col]) if key in a.index else "–"
        return f"{x} → {y}"

    for key in keys:
        met = ok.loc[key] if key in ok.index else None
        why = "–" if met is None else ("yes" if met["passes"] else "no (" + ", ".join(
            w for w, f in (("coverage", "coverage_ok"), ("size", "size_ok"), ("bias", "bias_ok")) if not met[f]) + ")")
        lines.append(" | ".join([
            f"| {key[1].removeprefix('rate_')}", key[0],
            str(int(ae.loc[key, "k"])) if key in ae.index else "–",
            pair(be, ae, key, "coverage", "{:.3f}"), pair(bz, az, key, "rejection", "{:.3f}"),
            pair(be, ae, key, "bias_se", "{:+.2f}"), pair(bz, az, key, "bias_se", "{:+.2f}"),
            pair(be, ae, key, "calibration", "{:.2f}"), why]) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("before")
    ap.add_argument("after")
    args = ap.parse_args(argv)
    print(table(pd.read_csv(args.before), pd.read_csv(args.after)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
