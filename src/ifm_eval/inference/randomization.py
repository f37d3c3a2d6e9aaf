"""Randomization inference: the start months permuted across Verbände.

Most municipalities did not choose their own start: the Verband (Gemeindeverwaltungsverband
/ vereinbarte Verwaltungsgemeinschaft) applied for the programme and its municipalities
started together or within a few months of each other. The permutation keeps that
structure: each Verband v has a start ``S_v`` (the earliest start of its municipalities; 0 =
no municipality treated) and each treated municipality its offset ``d_i = s_i - S_v``; a draw
permutes the ``S_v`` across Verbände and gives municipality i the start ``S_pi(v) + d_i``
(never-treated municipalities of a treated Verband stay never treated; a Verband that
receives 0 is never treated, one without any start that receives a start starts all its
municipalities then; starts beyond the panel's last month become 0).
The distribution of the Verbände's starts is kept exactly, the municipalities' up to the
offsets moving with the Verband sizes.

The statistic is the headline's t-statistic with the spec's own standard error (e.g. the
cluster jackknife): the randomization p-value is ``(1 + #{|t_pi| >= |t^|}) / (K + 1)`` over K
draws (two-sided). Studentized, the test is exact under the sharp null of no effect if the
start months were assigned to Verbände at random, and stays close to valid when they were
not (Chung & Romano 2013; MacKinnon & Webb 2020): on the stand-in design, whose start months
follow size, organisation and a Verband effect, the unstudentized version (the estimate
itself, ``p_randomization_estimate``) rejects a true null far too often, because random
reassignments spread the heavily weighted large municipalities over the cohorts and give a
much narrower null distribution than the estimate's own (tests/test_randomization.py).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)


def verband_structure(units: pd.DataFrame, unit: str, verband: str, cohort: str
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(verband_code per unit, S_v per Verband, offset per unit)`` from one row per unit
    (cohort 0 = never treated; a unit without Verband is its own Verband)."""
    u = units.drop_duplicates(unit)
    vb = u[verband].astype("string").fillna("unit_" + u[unit].astype("string"))
    code, levels = pd.factorize(vb, sort=True)
    g = u[cohort].to_numpy(dtype=np.int64)
    treated = g > 0
    S = np.zeros(len(levels), dtype=np.int64)
    big = np.iinfo(np.int64).max
    mins = np.full(len(levels), big)
    np.minimum.at(mins, code[treated], g[treated])
    S = np.where(mins == big, 0, mins)
    # -1: never treated within a treated Verband (stays never treated); units of a Verband
    # without any start have offset 0 (they start with their Verband if it receives one)
    offset = np.where(treated, g - S[code], np.where(S[code] == 0, 0, -1))
    return code, S, offset


def permuted_cohorts(code: np.ndarray, S: np.ndarray, offset: np.ndarray, rng: np.random.Generator,
                     last_period: int) -> np.ndarray:
    """One draw of the municipalities' starts (see module doc)."""
    Sp = S[rng.permutation(len(S))]
    new = Sp[code] + np.maximum(offset, 0)
    # never-treated units stay never treated; a Verband that receives 0 is never treated
    new = np.where((offset < 0) | (Sp[code] == 0), 0, new)
    return np.where(new > last_period, 0, new)


def randomization_draws(panel: pd.DataFrame, specs: dict[str, dict[str, Any]], draws: int, seed: int,
                        verband: str = "verband_id", progress: Callable[[int, int], None] | None = None,
                        ) -> pd.DataFrame:
    """The headline estimate and standard error of every spec on the observed data (``draw``
    0) and on ``draws`` permutations (the same permutations for every spec), each spec with
    its own inference (without its bootstrap). Returns columns ``model``, ``draw``,
    ``estimate``, ``se``."""
    from ifm_eval.estimators import registry
    from ifm_eval.estimators.design import Design
    from ifm_eval.estimators.runner import TIME, UNIT, prepare_data

    rows = []
    prepared = {}
    for name, spec in specs.items():
        s = copy.deepcopy(spec)
        s["inference"].pop("bootstrap", None)
        if s["inference"]["type"] == "bootstrap":  # the multiplier SEs would be redrawn: analytic
            s["inference"]["type"] = "analytic"
        data, gcol, _ = prepare_data(panel, s)
        if verband not in data:
            raise KeyError(f"randomization inference needs the panel column {verband!r}")
        # only the columns the estimator reads (each draw replaces the cohort column)
        keep = [UNIT, TIME, gcol, s["outcome"], *s["covariates"], s["cluster"], *([s["weights"]] if s["weights"] else [])]
        data = data[list(dict.fromkeys(keep))]
        design = Design.from_spec(s, unit=UNIT, time=TIME).with_(cohort=gcol)
        prepared[name] = (s, data, gcol, design)
    first = next(iter(prepared.values()))
    units = panel.drop_duplicates(UNIT)[[UNIT, verband, first[2]]].copy()
    units[first[2]] = pd.to_numeric(units[first[2]], errors="coerce").fillna(0).astype(np.int64)
    code, S, offset = verband_structure(units, UNIT, verband, first[2])
    unit_ids = units[UNIT].to_numpy()
    last = int(pd.to_numeric(panel[TIME]).max())
    rng = np.random.default_rng(seed)
    perms = [units[first[2]].to_numpy()] + [permuted_cohorts(code, S, offset, rng, last) for _ in range(draws)]
    from ifm_eval.progress import Progress

    bar = Progress(len(perms) - 1, f"randomization draws ({len(prepared)} specs)", log) if progress is None else None
    for d, cohorts in enumerate(perms):
        mapping = pd.Series(cohorts, index=unit_ids)
        for name, (s, data, gcol, design) in prepared.items():
            dd = data if d == 0 else data.assign(**{gcol: mapping.reindex(data[UNIT].to_numpy()).to_numpy()})
            try:
                res = registry.fit(dd, design, s, headline_only=True)
                term = res.info["headline"]["term"]
                tab = res.table
                row = tab.loc[(tab["kind"] == "overall") & (tab["term"] == term)]
                value = float(row["estimate"].iloc[0]) if len(row) else np.nan
                se = float(row["se"].iloc[0]) if len(row) else np.nan
            except ValueError as exc:  # a permutation the estimator cannot support
                log.info("randomization draw %d, %s: %s", d, name, exc)
                value = se = np.nan
            rows.append((name, d, value, se))
        if progress is not None:
            progress(d, len(perms) - 1)
        elif d:
            bar.update()
    if bar is not None:
        bar.close()
    return pd.DataFrame(rows, columns=["model", "draw", "estimate", "se"])


def randomization_p(draws: pd.DataFrame) -> pd.DataFrame:
    """Per model: the observed estimate and t-statistic, the two-sided randomization p-value
    of the t-statistic (``p_randomization``) and of the estimate itself
    (``p_randomization_estimate``), and the number of permutation draws used (non-finite
    draws are left out and counted as ``n_failed``)."""
    out = []
    for name, g in draws.groupby("model", sort=False):
        g = g.assign(t=g["estimate"] / g["se"]) if "se" in g else g.assign(t=np.nan)
        obs = g[g["draw"] == 0]
        perm = g[g["draw"] > 0]
        rec = {"model": name, "estimate": float(obs["estimate"].iloc[0]) if len(obs) else np.nan,
               "t": float(obs["t"].iloc[0]) if len(obs) else np.nan}
        for col, key in (("t", "p_randomization"), ("estimate", "p_randomization_estimate")):
            theta = rec[col]
            vals = perm[col].to_numpy(float)
            ok = vals[np.isfinite(vals)]
            rec[key] = (1 + int((np.abs(ok) >= abs(theta)).sum())) / (len(ok) + 1) \
                if np.isfinite(theta) and len(ok) else np.nan
            if col == "t":
                rec["n_draws"] = len(ok)
                rec["n_failed"] = int(len(vals) - len(ok))
        out.append(rec)
    return pd.DataFrame(out)
