"""The estimators a model spec can name, and how a spec's options reach each of them.

:data:`ESTIMATORS` maps the spec's ``estimator`` to an :class:`Estimator`: a function
``fit(data, design, spec) -> EstimateResult`` that turns the estimator-specific spec keys
into options. The runner (:mod:`.runner`) builds the :class:`~.design.Design` once and
dispatches here; adding an estimator is one entry (and its schema enum value).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ifm_eval.estimators.design import MIN_UNTREATED_PER_PERIOD, Design
from ifm_eval.estimators.results import EstimateResult

ALPHA = 0.05


@dataclass(frozen=True)
class Estimator:
    name: str
    #: ``fit(data, design, spec, headline_only=False)``; ``headline_only``: skip what the
    #: headline estimate and its standard error do not need (e.g. imputation's separate
    #: pre-trend regression)
    fit: Callable[..., EstimateResult]
    label: str


def min_comparison_units(spec: dict[str, Any]) -> int:
    """The minimum number of comparison (untreated) units a period / cell needs (spec key
    ``min_comparison_units``, default :data:`~.design.MIN_UNTREATED_PER_PERIOD`)."""
    v = spec.get("min_comparison_units")
    return MIN_UNTREATED_PER_PERIOD if v is None else int(v)


def jackknife(spec: dict[str, Any]) -> bool:
    """Does the spec ask for cluster-jackknife inference (:mod:`.jackknife`)?"""
    return spec["inference"]["type"] == "jackknife"


def _twfe_static(data: pd.DataFrame, design: Design, spec: dict[str, Any],
        headline_only: bool = False) -> EstimateResult:
    from ifm_eval.estimators.twfe import twfe_static

    return twfe_static(data, design, alpha=ALPHA, jackknife=jackknife(spec))


def _twfe_dynamic(data: pd.DataFrame, design: Design, spec: dict[str, Any],
        headline_only: bool = False) -> EstimateResult:
    from ifm_eval.estimators.twfe import twfe_dynamic

    return twfe_dynamic(data, design, alpha=ALPHA, min_untreated_per_period=min_comparison_units(spec),
                        jackknife=jackknife(spec))


def _sun_abraham(data: pd.DataFrame, design: Design, spec: dict[str, Any],
        headline_only: bool = False) -> EstimateResult:
    from ifm_eval.estimators.sun_abraham import sun_abraham

    cg = {"not_yet_treated": "last_treated"}.get(design.control_group, design.control_group)
    # an explicit never_treated spec must not silently become a last-treated one
    return sun_abraham(data, design.with_(control_group=cg), alpha=ALPHA,
                       fallback_last_treated=cg != "never_treated",
                       min_untreated_per_period=min_comparison_units(spec), jackknife=jackknife(spec))


def _imputation(data: pd.DataFrame, design: Design, spec: dict[str, Any],
        headline_only: bool = False) -> EstimateResult:
    from ifm_eval.estimators.imputation import imputation

    return imputation(data, design, alpha=ALPHA, min_untreated_per_period=min_comparison_units(spec),
                      leave_out=jackknife(spec), jackknife=jackknife(spec), pretrends=not headline_only)


def _gardner(data: pd.DataFrame, design: Design, spec: dict[str, Any],
        headline_only: bool = False) -> EstimateResult:
    from ifm_eval.estimators.gardner import gardner

    return gardner(data, design, alpha=ALPHA, min_untreated_per_period=min_comparison_units(spec),
                   jackknife=jackknife(spec))


def _callaway_santanna(data: pd.DataFrame, design: Design, spec: dict[str, Any],
        headline_only: bool = False) -> EstimateResult:
    from ifm_eval.estimators.callaway_santanna import callaway_santanna

    inf = spec["inference"]
    boot = inf["type"] == "bootstrap"
    res = callaway_santanna(
        data, design.outcome, design.unit, design.time, design.cohort,
        covariates=list(design.covariates) or None, control_group=design.control_group,
        method=spec["method"], anticipation=design.anticipation, base_period=spec["base_period"],
        weights=design.weights, cluster=design.cluster, n_boot=inf["draws"] if boot else 0,
        seed=inf["seed"], alpha=ALPHA,
        min_controls=spec.get("min_comparison_units") or 1,
    )
    return res.to_result(design.window, spec["balance_e"], jackknife=jackknife(spec))


ESTIMATORS: dict[str, Estimator] = {
    e.name: e
    for e in (
        Estimator("twfe_static", _twfe_static, "TWFE (static)"),
        Estimator("twfe_dynamic", _twfe_dynamic, "TWFE (event study)"),
        Estimator("sun_abraham", _sun_abraham, "Sun & Abraham"),
        Estimator("imputation", _imputation, "Imputation (Borusyak, Jaravel & Spiess)"),
        Estimator("gardner", _gardner, "Two-stage DiD (Gardner)"),
        Estimator("callaway_santanna", _callaway_santanna, "Callaway & Sant'Anna"),
    )
}


def fit(data: pd.DataFrame, design: Design, spec: dict[str, Any], headline_only: bool = False) -> EstimateResult:
    """Estimate ``spec`` (normalised) with its design on ``data`` (already sampled); with
    ``inference.bootstrap`` also the few-cluster bootstrap columns (:mod:`ifm_eval.inference`;
    weights drawn for the sorted cluster labels of ``data``). ``headline_only``: the fast path
    for repeated estimation (randomization inference): rows the headline and its standard
    error (the spec's own inference) do not need may be missing."""
    est = spec["estimator"]
    if est not in ESTIMATORS:
        raise ValueError(f"unknown estimator {est!r} (one of {', '.join(ESTIMATORS)})")
    res = ESTIMATORS[est].fit(data, design, spec, headline_only=headline_only)
    boot = spec["inference"].get("bootstrap")
    if boot:
        from ifm_eval.inference.bootstrap import apply_bootstrap

        universe = data[design.cluster].dropna().to_numpy() if design.cluster else data[design.unit].to_numpy()
        apply_bootstrap(res, boot, universe, ALPHA)
    return res
