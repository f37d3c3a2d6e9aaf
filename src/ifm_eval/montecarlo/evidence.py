"""Recorded Monte Carlo evidence: the full-size runs (K = 500 per design) that justify the
shipped main specification, kept with the package so that every default run can use them.

The default pipeline runs a small Monte Carlo (``monte_carlo.k``, 12 replicates per design):
enough to catch gross failures, too few to certify 95% coverage. The full run takes about
two hours on 2 cores, so its summary is recorded under ``evidence/`` (with the command and
commit in ``evidence/PROVENANCE.md``) together with the *fingerprint* of everything that
determines a replicate (:func:`fingerprint`: the specifications as the Monte Carlo
estimates them, the generator's configuration, the panel window and the replicate seeds).
The ``monte-carlo`` stage applies the targets to the recorded summary whose fingerprint
equals the current configuration's (it contains this run's replicates: the same seeds),
and to this run's replicates where nothing is recorded; a changed main
specification or generator has no recorded evidence until the full run is repeated, and the
report says so.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pandas as pd

#: the recorded summaries shipped with the package
EVIDENCE_DIR = Path(__file__).parent / "evidence"
#: the summary of the shipped main specification (K = 500 per design)
RECORDED = EVIDENCE_DIR / "k500_after.csv"
#: the summary of the main specification before the honest-uncertainty changes (issue 9)
RECORDED_BEFORE = EVIDENCE_DIR / "k500_before.csv"


def fingerprint(cfg: dict[str, Any]) -> str:
    """SHA-256 (16 hex digits) of what determines a Monte Carlo replicate apart from its design
    and seed: the specifications as replicated (:func:`~.replicate.replicate_specs`), the
    ``synth`` and ``panel`` sections and ``monte_carlo.seed_base``/``bootstrap``. Not the
    pipeline's own ``seed`` nor ``monte_carlo.k`` (a K = 12 run and a K = 500 run of one
    configuration share the fingerprint)."""
    from ifm_eval.montecarlo.replicate import replicate_specs

    mc = cfg.get("monte_carlo", {})
    payload = {
        "specs": replicate_specs(cfg, mc.get("models")),
        "synth": cfg.get("synth", {}),
        "panel": cfg.get("panel", {}),
        "seed_base": mc.get("seed_base"),
        "bootstrap": mc.get("bootstrap", False),
    }
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def read_recorded(path: str | Path) -> pd.DataFrame:
    """A recorded summary (:func:`~.summary.summarise` columns plus ``fingerprint``)."""
    df = pd.read_csv(path)
    missing = {"fingerprint", "design", "estimator", "outcome", "k", "coverage"} - set(df.columns)
    if missing:
        raise ValueError(f"{path}: recorded Monte Carlo summary lacks column(s) {sorted(missing)}")
    return df


def matching(recorded: pd.DataFrame, cfg: dict[str, Any]) -> pd.DataFrame | None:
    """The rows of ``recorded`` made with the current configuration, or None."""
    fp = fingerprint(cfg)
    rows = recorded[recorded["fingerprint"].astype(str) == fp]
    return rows.drop(columns="fingerprint") if len(rows) else None


def with_recorded(targets: pd.DataFrame, recorded_targets: pd.DataFrame | None) -> pd.DataFrame:
    """This run's targets (:func:`~.summary.passes`) joined with the recorded run's: columns
    ``recorded_k``, ``recorded_coverage``, ``recorded_rejection_null``,
    ``recorded_bias_se``, ``recorded_passes`` (NaN where nothing is recorded), ``passes``
    and ``evidence`` (what decided). A recorded run of the same fingerprint contains this
    run's replicates (the same seeds from ``seed_base`` on) and many more, so where it
    exists it decides; elsewhere this run's check does."""
    out = targets.copy()
    cols = {"k": "recorded_k", "coverage": "recorded_coverage", "rejection_null": "recorded_rejection_null",
            "bias_se_effects": "recorded_bias_se", "passes": "recorded_passes"}
    if recorded_targets is None or recorded_targets.empty:
        for c in cols.values():
            out[c] = pd.NA
        out["this_run_passes"] = out["passes"].astype(bool)
        out["evidence"] = "this_run"
        return out
    rec = recorded_targets[["estimator", "outcome", *cols]].rename(columns=cols)
    out = out.merge(rec, on=["estimator", "outcome"], how="left", validate="one_to_one")
    has = out["recorded_passes"].notna()
    out["this_run_passes"] = out["passes"].astype(bool)
    out["passes"] = out["recorded_passes"].where(has, out["this_run_passes"]).astype(bool)
    out["evidence"] = has.map({True: "recorded", False: "this_run"})
    return out


#: columns of :func:`evidence_table` per recorded run
EVIDENCE_COLUMNS = ("k", "bias_se", "calibration", "coverage", "rejection")


def evidence_table(after: pd.DataFrame | None, before: pd.DataFrame | None) -> pd.DataFrame:
    """Per estimator x outcome, the recorded runs side by side: ``before_*`` (the main
    specification before the honest-uncertainty changes) and ``after_*`` (the current one,
    only if its fingerprint matches); coverage, bias/SE and calibration from the effects
    design, rejection from the zero design. Empty if ``after`` is None."""
    if after is None:
        return pd.DataFrame(columns=["estimator", "outcome",
                                     *[f"{w}_{c}" for w in ("before", "after") for c in EVIDENCE_COLUMNS]])

    def wide(s: pd.DataFrame, tag: str) -> pd.DataFrame:
        eff = s[s["design"] == "effects"].set_index(["estimator", "outcome"])
        nul = s[s["design"] == "zero"].set_index(["estimator", "outcome"])
        out = eff[["k", "bias_se", "calibration", "coverage"]].join(nul[["rejection"]], how="outer")
        return out.add_prefix(f"{tag}_")

    out = wide(after, "after")
    if before is not None:
        out = wide(before, "before").join(out, how="right")
    else:
        for c in EVIDENCE_COLUMNS:
            out[f"before_{c}"] = pd.NA
    cols = [f"{w}_{c}" for w in ("before", "after") for c in EVIDENCE_COLUMNS]
    return out.reset_index()[["estimator", "outcome", *cols]]
