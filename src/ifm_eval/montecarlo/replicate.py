"""One Monte Carlo replicate: a stand-in world drawn with its own seed, the panel built in
memory (:mod:`ifm_eval.synth.memory`, equal to the file-based panel), every configured
specification estimated on it and compared with the planted truth matched to that very
estimate (:func:`ifm_eval.validation.truth_of_used`).

Designs (the ``design`` of a replicate):

* ``effects``: the configured planted effects;
* ``zero``: every ``max_hazard_ratio`` 1.0 (the true effect is exactly zero);
* ``hr<x>``: every outcome's ``max_hazard_ratio`` set to ``x`` (the power curve);
* ``violated``: the configured effects on the deliberately violated stand-in design
  (``synth.design: violated``, see :mod:`ifm_eval.synth.persons`).
"""

from __future__ import annotations

import copy
import logging
import re
import time
from typing import Any

import numpy as np
import pandas as pd

from ifm_eval.config import validate_config

log = logging.getLogger(__name__)

#: Columns of a replicate's rows.
ROW_COLUMNS = ("design", "seed", "model", "estimator", "outcome", "row", "event_time", "estimate", "se",
               "ci_low", "ci_high", "p", "truth", "n_units", "status")
_HR = re.compile(r"^hr(\d+(?:\.\d+)?)$")


def design_config(cfg: dict[str, Any], design: str, seed: int) -> dict[str, Any]:
    """The configuration of a replicate: ``cfg`` with the replicate's seed and design."""
    c = copy.deepcopy(cfg)
    c["seed"] = int(seed)
    effects = c["synth"].setdefault("effects", {})
    if design == "zero":
        for o in ("language", "training", "employment"):
            effects.setdefault(o, {})["max_hazard_ratio"] = 1.0
    elif m := _HR.match(design):
        for o in ("language", "training", "employment"):
            effects.setdefault(o, {})["max_hazard_ratio"] = float(m.group(1))
    elif design == "violated":
        c["synth"]["design"] = "violated"
    elif design != "effects":
        raise ValueError(f"unknown Monte Carlo design {design!r} (effects, zero, violated, hr<x>)")
    return validate_config(c)


def replicate_specs(cfg: dict[str, Any], models: list[str] | None = None,
                    analytic: bool = False) -> dict[str, dict[str, Any]]:
    """The specifications a replicate estimates: the named ones, default every ``role:
    main`` spec, each with its own inference, except that bootstrap inference is replaced by
    analytic inference and the few-cluster bootstrap (``inference.bootstrap``) is left out
    unless the Monte Carlo config asks to keep them (``monte_carlo.bootstrap``). ``analytic``: every spec with analytic inference (the
    speed benchmark's reference)."""
    from ifm_eval.estimators.specs import expand_models

    specs = expand_models(cfg)
    names = models or [n for n, s in specs.items() if s["role"] == "main"]
    unknown = [n for n in names if n not in specs]
    if unknown:
        raise ValueError(f"Monte Carlo: unknown model(s) {unknown}")
    keep_boot = bool(cfg.get("monte_carlo", {}).get("bootstrap", False))
    out = {}
    for n in names:
        s = copy.deepcopy(specs[n])
        if analytic or (not keep_boot and s["inference"]["type"] == "bootstrap"):
            s["inference"] = {**s["inference"], "type": "analytic"}
        if not keep_boot:  # the few-cluster bootstrap columns are not what a replicate measures
            s["inference"].pop("bootstrap", None)
        out[n] = s
    return out


def run_replicate(cfg: dict[str, Any], design: str, seed: int, frame: pd.DataFrame,
                  models: list[str] | None = None, analytic: bool = False) -> pd.DataFrame:
    """Draw, build, estimate and compare one replicate; returns one row per model and
    headline / event-time estimate (:data:`ROW_COLUMNS`). ``analytic``: see
    :func:`replicate_specs`. ``attrs["seconds"]`` of the result: wall time of the data
    (world, panel, true effects) and the estimation part."""
    from ifm_eval.estimators.results import tidy_frame
    from ifm_eval.estimators.runner import estimate, prepare_data
    from ifm_eval.synth import simulate, truth_counts_frame
    from ifm_eval.synth.memory import panel_in_memory
    from ifm_eval.validation import cell_effects, headline_term, truth_of_used

    t0 = time.perf_counter()
    rcfg = design_config(cfg, design, seed)
    world = simulate(rcfg, frame)
    panel = panel_in_memory(world, rcfg, frame)
    cells = cell_effects(panel, truth_counts_frame(world))
    t_data = time.perf_counter() - t0
    rows = []
    from ifm_eval.progress import track

    specs = replicate_specs(rcfg, models, analytic)
    for name, spec in track(list(specs.items()), f"replicate {design}/{seed}: specs estimated"):
        base = {"design": design, "seed": int(seed), "model": name, "estimator": spec["estimator"],
                "outcome": spec["outcome"]}
        try:
            data, gcol, _ = prepare_data(panel, spec)
            res = estimate(data, spec, gcol)
        except ValueError as exc:
            rows.append({**base, "row": "headline", "status": f"not_estimable: {exc}"[:200]})
            continue
        tab = tidy_frame(res.table, spec=name, estimator=spec["estimator"], outcome=spec["outcome"])
        mt = truth_of_used(cells, spec["outcome"], res.used, res.info.get("headline"))
        term = res.info.get("headline", {}).get("term") or headline_term(tab)
        ov = tab[(tab["kind"] == "overall") & (tab["term"] == term)]
        if len(ov):
            r = ov.iloc[0]
            rows.append({**base, "row": "headline", "estimate": r["estimate"], "se": r["se"],
                         "ci_low": r["ci_low"], "ci_high": r["ci_high"], "p": r["p"],
                         "truth": mt.overall, "status": "ok"})
        es = tab[(tab["kind"] == "event_time") & (tab["term"].astype(str).str.match(r"^e[+-]\d+$"))]
        for r in es.itertuples(index=False):
            e = int(r.event_time)
            tr = mt.path["truth"].get(e, 0.0 if e < 0 else np.nan)
            rows.append({**base, "row": "event_time", "event_time": e, "estimate": r.estimate, "se": r.se,
                         "ci_low": r.ci_low, "ci_high": r.ci_high, "p": r.p, "truth": tr,
                         "n_units": mt.path["n_units"].get(e, np.nan), "status": "ok"})
    out = pd.DataFrame(rows)
    for c in ROW_COLUMNS:
        if c not in out:
            out[c] = np.nan
    out = out[list(ROW_COLUMNS)]
    total = time.perf_counter() - t0
    out.attrs["seconds"] = {"data": t_data, "estimate": total - t_data, "total": total}
    log.info("replicate %s/%s: data %.1f s, %d models, total %.1f s", design, seed, t_data,
             out["model"].nunique(), total)
    return out
