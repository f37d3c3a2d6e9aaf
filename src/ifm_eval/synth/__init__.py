"""Stand-in raw data (``ifm-eval synth``): every raw input of ``data/raw/README.md``.

:func:`generate` builds, from the REAL municipality frame and ``cfg['seed']``, the programme
structure (:mod:`.structure`), the person-level paths (:mod:`.persons`) and writes all raw
files in their native formats (:mod:`.writers`), plus ``truth.json`` and
``truth_counts.parquet`` with the planted parameters and the true effects.

Each component draws from its own stream ``np.random.default_rng(SeedSequence([seed,
stream]))`` (see :data:`STREAMS`), so components are independent and reproducible: the same
seed gives byte-identical files; changing e.g. the effect sizes changes neither the
structure nor the persons' random thresholds (common random numbers across configs).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..reference import read_gemeindeverzeichnis
from ..sources import SOURCES
from .persons import (
    N_PANEL,
    N_PERSONS_FULL,
    OUTCOMES,
    PANEL_START,
    PersonsResult,
    capacity_increase_per100,
    dose_per100,
    effect_gradients,
    simulate_persons,
    subgroup_effects,
    subgroup_labels,
    true_effects,
)
from .structure import Structure, build_structure, month_index
from .writers import (
    case_management_table,
    kpi_table,
    write_case_management,
    write_funding_xlsx,
    write_kpi_xlsx,
    write_outcomes,
    write_posts_csv,
)

log = logging.getLogger(__name__)

__all__ = ["STREAMS", "generate", "rng_for", "build_structure", "simulate_persons", "true_effects"]

#: Random stream ids per component (the second entry of the SeedSequence).
STREAMS: dict[str, int] = {
    "structure": 1,
    "persons": 2,
    "funding": 3,
    "kpi": 4,
    "outcomes": 5,
    "case_management": 6,
    "surveys": 7,
    "survey_attributes": 8,
}

TRUTH_FILE = "truth.json"
TRUTH_COUNTS_FILE = "truth_counts.parquet"
TRUTH_SCHEMA_VERSION = 1


def rng_for(seed: int, component: str) -> np.random.Generator:
    """The independent random generator of one component."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), STREAMS[component]]))


def _period_str(idx: int) -> str | None:
    return None if idx < 0 else f"{idx // 12:04d}-{idx % 12 + 1:02d}"


def _none(v: Any) -> Any:
    """Missing values (None, NaN, NA) as None for JSON."""
    return None if v is None or (not isinstance(v, str) and pd.isna(v)) else v


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def survey_milestones(st: Structure, pr: PersonsResult) -> pd.DataFrame:
    """Milestone stocks per municipality at the w2 (2018-11) and w5 (2019-10) reference months,
    taken from the simulated persons so that the surveys agree with the outcome sources."""
    c = pr.counts
    out = pd.DataFrame({"ags": st.muni["ags"].to_numpy()})
    for year, month in (("2018", "2018-11"), ("2019", "2019-10")):
        j = month_index(month) - PANEL_START
        out[f"refugees_on_site_{year}"] = c["refugees"][:, j]
        out[f"b1_certificate_{year}"] = c["b1"][:, j]
        out[f"in_training_{year}"] = c["ausbildung"][:, j] + c["weiterbildung"][:, j]
        out[f"employed_{year}"] = c["svb"][:, j]
    return out


def draw_attributes(st: Structure, seed: int) -> pd.DataFrame:
    """The survey-only attributes (:func:`~.survey_attributes.draw_survey_attributes`, their
    own random stream) and, on ``st.muni``, ``target_obliged``: whether the municipality's
    target group includes persons obliged to leave (the planted target-group breadth)."""
    from . import survey_attributes

    attrs = survey_attributes.draw_survey_attributes(st.muni, rng_for(seed, "survey_attributes"))
    st.muni["target_obliged"] = st.muni["ags"].map(
        attrs.set_index("ags")["ts_ausreisepflichtig"].astype("boolean"))
    return attrs


def _write_surveys(st: Structure, pr: PersonsResult, attrs: pd.DataFrame, cfg: dict[str, Any],
                   out_dir: Path) -> dict[str, Any]:
    """Write the five survey waves (:mod:`ifm_eval.synth.surveys`)."""
    from . import surveys

    seed = int(cfg["seed"])
    return surveys.write_surveys(
        muni=st.muni, posts=st.posts, attrs=attrs, cfg=cfg, rng=rng_for(seed, "surveys"),
        out_dir=out_dir, milestones=survey_milestones(st, pr),
    )


def _counts_frame(st: Structure, pr: PersonsResult) -> pd.DataFrame:
    months = [_period_str(PANEL_START + j) for j in range(N_PANEL)]
    n = len(st.muni)
    df = pd.DataFrame({
        "ags": np.repeat(st.muni["ags"].to_numpy(), N_PANEL),
        "month": np.tile(months, n),
    })
    for k, v in pr.counts.items():
        df[k] = v.reshape(-1)
    offset = PANEL_START - month_index("2013-01")
    for o in OUTCOMES:
        df[f"hazard_ratio_{o}"] = pr.hazard_ratio[o][:, offset:].reshape(-1)
    return df


def _persons_calibration(pr: PersonsResult) -> dict[str, Any]:
    c = pr.counts
    ref = c["refugees"].sum(axis=0)
    last = -1
    return {
        "n_persons": int(len(pr.persons)),
        "refugees_au_2015_01": int(ref[0]),
        "refugees_au_peak": int(ref.max()),
        "refugees_au_peak_month": _period_str(PANEL_START + int(ref.argmax())),
        "refugees_au_2020_12": int(ref[last]),
        "rate_b1_2020_12": float(c["b1"].sum(axis=0)[last] / ref[last] * 100),
        "rate_training_2020_12": float((c["ausbildung"] + c["weiterbildung"]).sum(axis=0)[last] / ref[last] * 100),
        "rate_employment_2020_12": float(c["svb"].sum(axis=0)[last] / ref[last] * 100),
        "n_events": int(len(pr.events)),
    }


@dataclass
class World:
    """One draw of the stand-in world: the structure (municipalities, Verbände, posts, start
    months) and the persons (paths, stocks, events), before anything is written."""

    seed: int
    structure: Structure
    persons: PersonsResult
    timings: dict[str, float]
    #: survey-only attributes (:func:`draw_attributes`)
    attributes: pd.DataFrame


def simulate(cfg: dict[str, Any], frame: pd.DataFrame) -> World:
    """Draw the stand-in world of ``cfg`` (seed, ``synth``) on the municipality ``frame`` (the
    parsed Destatis extract, :func:`ifm_eval.reference.read_gemeindeverzeichnis`)."""
    seed = int(cfg["seed"])
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    st = build_structure(frame, cfg, rng_for(seed, "structure"))
    attrs = draw_attributes(st, seed)
    timings["structure"] = time.perf_counter() - t0
    log.info("structure: %d Verbände, %d applicants, %d posts (%.1f s)", len(st.verbaende),
             int(st.muni["applied"].sum()), st.posts["post_id"].nunique(), timings["structure"])
    t0 = time.perf_counter()
    pr = simulate_persons(st.muni, cfg, rng_for(seed, "persons"))
    timings["persons"] = time.perf_counter() - t0
    log.info("persons: %d persons, %d status changes (%.1f s)", len(pr.persons), len(pr.events), timings["persons"])
    return World(seed, st, pr, timings, attrs)


def truth_counts_frame(world: World) -> pd.DataFrame:
    """The observed and counterfactual stocks per municipality and month
    (``truth_counts.parquet``)."""
    return _counts_frame(world.structure, world.persons)


def generate(cfg: dict[str, Any], gv: str | Path, out_dir: str | Path) -> dict[str, Any]:
    """Generate all stand-in raw files (every source of :data:`ifm_eval.sources.SOURCES` at
    its path under ``out_dir``, plus ``truth.json`` and ``truth_counts.parquet``) from the
    municipality frame of the Destatis extract ``gv``.

    ``cfg`` is a validated configuration (:func:`ifm_eval.config.load_config`). Returns a
    summary (timings, calibration figures, file list).
    """
    t_all = time.perf_counter()
    seed = int(cfg["seed"])
    synth_cfg = cfg.get("synth", {})
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    world = simulate(cfg, read_gemeindeverzeichnis(gv))
    st, pr, timings = world.structure, world.persons, dict(world.timings)

    files = {k: src.path for k, src in SOURCES.items()}
    t0 = time.perf_counter()
    write_funding_xlsx(st, out_dir / files["funding_applications"], rng_for(seed, "funding"))
    write_posts_csv(st, out_dir / files["im_posts"])
    write_kpi_xlsx(kpi_table(st, pr, rng_for(seed, "kpi")), out_dir / files["kpi_reports"])
    timings["write_funding"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    masking = write_outcomes(st, pr, out_dir, rng_for(seed, "outcomes"), files)
    timings["write_outcomes"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    cm = case_management_table(st, pr, rng_for(seed, "case_management"))
    write_case_management(cm, out_dir / files["case_management"])
    timings["write_case_management"] = time.perf_counter() - t0
    log.info("wrote funding, outcome and case-management files (%.1f s)",
             timings["write_funding"] + timings["write_outcomes"] + timings["write_case_management"])
    t0 = time.perf_counter()
    _write_surveys(st, pr, world.attributes, cfg, out_dir)
    timings["surveys"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    effects = true_effects(st.muni, pr.counts)
    counts = truth_counts_frame(world)
    counts.to_parquet(out_dir / TRUTH_COUNTS_FILE, index=False)
    grads = effect_gradients(st.muni, synth_cfg)
    cap100 = capacity_increase_per100(st.muni)
    dose100 = dose_per100(st.muni)
    labels = subgroup_labels(st.muni)
    m = st.muni
    munis = []
    for i, r in enumerate(m.itertuples(index=False)):
        munis.append({
            "ags": r.ags,
            "applied": bool(r.applied),
            "verband_id": _none(r.verband_id),
            "organisation": _none(r.organisation),
            "urbanisation": None if pd.isna(r.urbanisation) else int(r.urbanisation),
            "refugees_20170915": int(r.refugees_20170915),
            "funded_vza": float(r.funded_vza),
            "n_posts": int(r.n_posts),
            "capacity_change_vza": None if pd.isna(r.capacity_change_vza) else float(r.capacity_change_vza),
            "capacity_increase_per100": float(cap100[i]),
            "plan_use_band": _none(r.plan_use_band),
            "size_class": _none(labels["size_class"][i]),
            "target_group": _none(labels["target_group"][i]),
            "funded_vza_per100": float(dose100[i]),
            "start_month": {
                "half_posts": None if pd.isna(r.start_month) else str(r.start_month),
                "first_post": None if pd.isna(r.start_month_first_post) else str(r.start_month_first_post),
                "all_posts": None if pd.isna(r.start_month_all_posts) else str(r.start_month_all_posts),
            },
            "effect_multiplier": {o: float(grads[o][i]) for o in OUTCOMES},
        })
    calibration = {**st.calibration, **_persons_calibration(pr), **masking}
    present = {k: v for k, v in files.items() if (out_dir / v).is_file()}
    truth = {
        "schema_version": TRUTH_SCHEMA_VERSION,
        "generator": "ifm_eval.synth",
        "seed": seed,
        "scale": float(synth_cfg.get("scale", 1.0)),
        "n_persons_full_scale": N_PERSONS_FULL,
        "streams": STREAMS,
        "panel": {"start": cfg.get("panel", {}).get("start", "2015-01"),
                  "end": cfg.get("panel", {}).get("end", "2020-12"),
                  "simulated_from": "2013-01", "simulated_to": "2020-12"},
        "treatment_rule_planted": "half_posts",
        "synth_config": json.loads(json.dumps(synth_cfg)),
        "effect_model": {
            "hazards_multiplied": {"language": "B1 hazard", "training": "training entry hazard",
                                   "employment": "SvB entry hazard"},
            "hazard_ratio": "max_hazard_ratio ** (ramp(e) * g_m)",
            "ramp": "clip((e + anticipation + 1) / (ramp_months + anticipation), 0, 1) for e >= -anticipation, else 0",
            "g_m": ("max(0, 1 + cohort_gradient * (month_index(2018-01) - start)/12 + capacity_gradient * (capacity_increase_per100 - mean)"
                    " + plan_gradient * (plan band score lt20 0, 20to80 1, 80to100 2 - mean) + sum_o organisation_effects[o] * (1[organisation = o] - share)"
                    " + size_class_gradient * (size class 0, 1, 2 - mean) + target_group_gradient * (1[target group obliged] - share)"
                    " + dose_gradient * (funded_vza_per100 - mean)); means and shares over the treated municipalities"),
            "effects_by_subgroup": "true_effects restricted to the treated municipalities of each TRUE subgroup (municipalities.*)",
            "rate": "count / refugees * 100 (percentage points); cells with refugees > 0",
            "att_by_event_time": "unweighted mean over treated municipalities of rate(observed) - rate(counterfactual)",
            "att_overall": "unweighted mean over treated municipality-months with event time >= 0 inside the panel",
            "weighted": "refugee-weighted: sum(count - count_cf) / sum(refugees) * 100",
        },
        "calibration": calibration,
        "municipalities": munis,
        "effects": effects,
        "effects_by_subgroup": subgroup_effects(st.muni, pr.counts),
        "files": {k: {"path": v, "sha256": _sha256(out_dir / v)} for k, v in sorted(present.items())},
        "truth_counts": {"path": TRUTH_COUNTS_FILE, "sha256": _sha256(out_dir / TRUTH_COUNTS_FILE)},
    }
    (out_dir / TRUTH_FILE).write_text(json.dumps(truth, ensure_ascii=False, indent=1, allow_nan=False) + "\n",
                                      encoding="utf-8")
    timings["truth"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - t_all
    log.info("synth finished in %.1f s -> %s", timings["total"], out_dir)
    return {
        "out_dir": str(out_dir),
        "seed": seed,
        "scale": truth["scale"],
        "n_persons": int(len(pr.persons)),
        "n_case_management_rows": int(len(cm)),
        "timings": timings,
        "calibration": calibration,
        "att_overall": {o: effects[o]["att_overall"] for o in OUTCOMES},
        "files": sorted(present.values()) + [TRUTH_FILE, TRUTH_COUNTS_FILE],
    }
