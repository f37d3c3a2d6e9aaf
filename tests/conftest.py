"""Shared fixtures. ``mpdta``: the validation data set of R ``did`` (tests/data/mpdta.csv) with
a time-varying covariate ``xv``. ``small_workflow``: the whole Snakemake workflow run once per session on a
tiny stand-in config (scale 0.05, three employment models) in a temporary directory; used by
the workflow, report (``snakemake --report``), disclosure and notebook tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


def run_snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """``snakemake --snakefile <repo>/Snakefile --directory <workdir> --cores 2 *args``."""
    cmd = [
        str(BIN / "snakemake"),
        "--snakefile",
        str(ROOT / "Snakefile"),
        "--directory",
        str(workdir),
        "--cores",
        "2",
        *args,
    ]
    proc = subprocess.run(cmd, cwd=workdir, env=ENV, capture_output=True, text=True)
    if check and proc.returncode != 0:
        logs = "\n".join(
            p.read_text()[-3000:]
            for p in sorted((workdir / "logs").rglob("*.log"))
            if "Error" in p.read_text()
        )
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stderr[-6000:]}\n{logs}")
    return proc


@pytest.fixture(scope="session")
def small_workflow(tmp_path_factory):
    """(workdir, config dict, CompletedProcess) of a full run on a tiny stand-in config."""
    work = tmp_path_factory.mktemp("workflow")
    cfg = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    cfg["data"]["reference_dir"] = str(ROOT / "data" / "raw" / "reference")
    cfg["synth"]["scale"] = 0.05
    base = {
        "covariates": ["log_population", "urbanisation"],
        "event_window": [-6, 12],
        "cluster": "kreis",
        "outcome": "rate_employment",
        "role": "main",
        "inference": {"type": "analytic", "bootstrap": {"draws": 499}},
    }
    cfg["models"] = {
        "twfe_static_rate_employment": {**base, "estimator": "twfe_static"},
        "callaway_santanna_rate_employment": {
            **base,
            "estimator": "callaway_santanna",
            "method": "reg",
        },
        "imputation_rate_employment": {**base, "estimator": "imputation"},
    }
    # the Monte Carlo and power rules are part of `all`: two replicates per design keep it small
    cfg["monte_carlo"] = {"k": 2, "designs": ["effects", "zero"], "power": {"max_hazard_ratio": [1.5], "k": 2}}
    # the credibility rules are part of `all` too: few permutations, a small HonestDiD grid
    cfg["credibility"] = {"randomization": {"draws": 9}, "pretrends": {"power": [0.5, 0.8]},
                          "honest_did": {"pre_periods": 3, "mbar": [0, 1], "m": [0, 0.05], "targets": ["headline", 0]}}
    (work / "config.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    proc = run_snakemake(work)
    return work, cfg, proc


@pytest.fixture(scope="session")
def standin_panel(tmp_path_factory):
    """The full-scale stand-in data (default seed) and the municipality-month panel, built
    from scratch into a temporary directory through the package API (synth -> admin
    ingestion -> treatment -> panel; no surveys). Independent of ``data/`` in the repo, so
    tests using it run on a clean clone (~10-30 s, once per session).

    Returns a dict: ``cfg`` (configuration pointing at the temporary directories),
    ``panel`` (DataFrame), ``truth`` (parsed truth.json), ``truth_counts`` (observed and
    counterfactual stocks) and ``seconds`` (build time).
    """
    import copy
    import json
    import time

    import pandas as pd
    import wiring

    from ifm_eval import paths
    from ifm_eval.config import load_config, validate_config

    t0 = time.perf_counter()
    base = tmp_path_factory.mktemp("standin")
    cfg = copy.deepcopy(load_config(ROOT / "config.yaml"))
    data = cfg["data"]
    data["source"] = "synthetic"
    for key, sub in (
        ("synthetic_dir", "synthetic"),
        ("processed_dir", "processed"),
        ("results_dir", "results"),
        ("raw_dir", "raw"),
    ):
        data[key] = str(base / sub)
    ref = Path(data["reference_dir"])
    data["reference_dir"] = str(ref if ref.is_absolute() else ROOT / ref)
    cfg = validate_config(cfg)
    wiring.synth(cfg)
    panel = wiring.upto_panel(cfg)
    truth = json.loads(paths.truth_path(cfg).read_text())
    counts = pd.read_parquet(Path(data["synthetic_dir"]) / truth["truth_counts"]["path"])
    return {
        "cfg": cfg,
        "panel": panel,
        "truth": truth,
        "truth_counts": counts,
        "seconds": time.perf_counter() - t0,
    }


@pytest.fixture(scope="session")
def _mpdta_frame():
    import numpy as np
    import pandas as pd

    d = pd.read_csv(Path(__file__).parent / "data" / "mpdta.csv")
    rng = np.random.default_rng(1)
    # a time-varying covariate (lpop is time-invariant and absorbed by the unit effects)
    d["xv"] = d["lpop"] + 0.1 * rng.normal(size=len(d)) + 0.02 * (d["year"] - 2003) * d["lpop"]
    return d


@pytest.fixture
def mpdta(_mpdta_frame):
    """mpdta (500 counties, 2003-2007; first.treat 0 = never treated) plus ``xv``; a fresh copy
    per test."""
    return _mpdta_frame.copy()
