"""Continuous-treatment DiD of Callaway, Goodman-Bacon & Sant'Anna (2024), staggered timing.

Entry point :func:`estimate_dose_response`. Estimands (panel, doses constant within unit,
parallel trends in untreated potential outcomes across doses and comparison units):

* ``ATT(d|g,t) = E[Y_t(d) - Y_t(0) | G = g, D = d]``, identified as
  ``E[Y_t - Y_b | G = g, D = d] - E[Y_t - Y_b | comparison]`` (B-spline regression of the
  outcome change on the dose within cohort ``g``, minus the comparison units' mean change);
  ``ACRT(d|g,t)`` its derivative in ``d`` (a *causal* response only under CGBS's "strong"
  parallel trends);
* dose aggregation (``cont_did``'s ``aggregation="dose"``): ATT(d), ACRT(d), and the overall
  ``ATT^o = E[ATT(D|D) | D > 0]``, ``ACRT^o = E[ACRT(D|D) | D > 0]``, averaged over the
  post-treatment cells with cohort-size weights (cohort share split equally over its cells);
* event study (``aggregation="eventstudy"``): ATT^o(e), ACRT^o(e) by event time ``e = t - g``.

Cells, comparison groups and missing outcomes: :mod:`ifm_eval.dose.cells`; spline and
influence functions: :mod:`ifm_eval.dose.cell_fits`; aggregation: :mod:`ifm_eval.dose.aggregate`;
inference: :mod:`ifm_eval.dose.inference`.

Relation to moderndid 0.2.0 ``cont_did`` (checked in ``tests/test_dose_response.py``;
``dose_est_method="parametric"``, ``treatment_type="continuous"``, no covariates)
---------------------------------------------------------------------------------------
Point estimates agree to rounding error (max. relative difference ~1e-13; the tests
require 1e-8) for ATT(d), ACRT(d), ATT^o, ACRT^o (``aggregation="dose"``) and the ACRT^o
event study (``target_parameter="slope"``) with ``control_group`` never / not-yet treated,
``base_period="varying"``, degree 1-3, with and without interior knots, unweighted, on a
balanced panel with periods 1..T (simulated data and the stand-in panel). Where
``cont_did``'s influence functions are right (ACRT(d) with the grid spanning the cohort's
doses) they are equal to ours; elsewhere the SEs differ for the reasons below. Quirks of
``cont_did`` found on the way:

1. *Level event study*: with ``aggregation="eventstudy", target_parameter="level"`` the 2x2
   subset keeps the continuous dose in the treatment column and passes it to the binary DR
   DiD (``drdid_panel``), which treats it as a treatment indicator/weight. The result is
   not ATT^o(g,t). Ours is the binary ATT(g,t) (= mean treated change minus comparison mean
   change; the spline with an intercept reproduces the treated mean) and equals
   ``ifm_eval.estimators.callaway_santanna(method="reg")`` exactly, estimates and SEs.
2. *Overall ATT SE*: ``cont_did`` computes the SE of ATT^o from the ACRT influence function
   (the same matrix is used for both), i.e. it reports ACRT^o's SE for ATT^o.
3. *ACRT influence function scale*: cell IFs are rescaled by ``n / n_cell`` with ``n_cell``
   the treated *plus comparison* units, but ACRT^o(g,t) is a mean over the treated units
   only; ``cont_did``'s ACRT^o SE is therefore too small by roughly
   ``n_treated / n_cell`` (ours = theirs x ``n_cell / n_treated`` in a one-cohort design).
4. *ATT(d) influence function*: misses the comparison-mean term (the comparison units'
   entries are selected from the ACRT IF, where they are 0), and maps the cell's
   coefficient IF through a basis whose boundary knots are the dose grid's range instead
   of the cell's dose range (identical only if they coincide). ATT(d) SEs are too small.
5. The dose aggregation omits the estimation error of the cohort shares (R ``did``'s
   ``wif``; included here); the event study includes it (as here).
6. Weights: the cell regressions and comparison means ignore ``weightsname``; only the
   cohort shares use them. Ours weights everything (verified by a replication test:
   integer weights == duplicated units).
7. ``base_period="universal"``: the pre-treatment cells (t < g - 1) take ``dy`` from a lag
   sorted by period, so ``dy`` of period ``t`` is missing and these cells are NaN; the dose
   curves combine all cells with weights (0 x NaN), so ATT(d) and ACRT(d) are NaN too;
   ATT^o, ACRT^o (``nansum``) and the post-treatment event study agree with ours. The
   not-yet-treated comparison set is ``G > t`` (R ``did``: ``G > max(t, b) + anticipation``,
   as here), and anticipation does not enter it.
8. Periods must be 1..T: ``cont_did`` recodes the time column to 1..T but not the cohort
   column, so other period labels (e.g. the main sample t >= 13) silently misalign cohorts
   and periods (the tests recode before calling it).
9. Interior knots (``num_knots > 0``) are quantiles of the *row-level* post-treatment doses
   (units weighted by their number of post periods); ours are quantiles of the treated
   units' doses (``knots=`` overrides, which the tests use to match). Cells with too few
   distinct doses are kept with estimate 0 by ``cont_did``; here they are dropped.
10. Default dose grid: 50 equally spaced doses from the smallest to the largest treated
    dose; ours: 50 quantiles (0.1 ... 0.9) of the treated doses.
11. Every SE is a multiplier-bootstrap SE (Mammen weights, unclustered: ``clustervars`` is
    ignored with a warning).

Inference here: unit influence functions summed within ``cluster``; analytic SEs and the
multiplier bootstrap (Rademacher by default, or Mammen, one draw per cluster, seeded) with
sup-t uniform bands over the dose grid for ATT(d) and ACRT(d).
"""

from __future__ import annotations

import time as _time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import norm

from .aggregate import aggregate_dose, aggregate_event
from .cell_fits import CellFits, fit_cells
from .cells import CellDesign, build_cells
from .inference import BOOT_WEIGHTS, analytic_se, bootstrap, cluster_sums
from .panel import DosePanel, prepare_dose_panel
from .result import DoseResponseResult
from .splines import interior_knots

DEFAULT_SEED = 20170427
N_GRID = 50


@dataclass
class DoseFit:
    """Cell-level state shared by the dose-response and the binned estimators."""

    panel: DosePanel
    design: CellDesign
    fits: CellFits
    knots: np.ndarray
    settings: dict


def _check_settings(degree: int, num_knots: int, alpha: float, n_boot: int, boot_weights: str,
                    min_comparison_units: int) -> None:
    if int(degree) != degree or degree < 1:
        raise ValueError(f"degree must be an integer >= 1, got {degree!r}")
    if int(num_knots) != num_knots or num_knots < 0:
        raise ValueError(f"num_knots must be an integer >= 0, got {num_knots!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    if int(n_boot) != n_boot or n_boot < 0:
        raise ValueError(f"n_boot must be an integer >= 0, got {n_boot!r}")
    if boot_weights not in BOOT_WEIGHTS:
        raise ValueError(f"boot_weights must be one of {BOOT_WEIGHTS}, got {boot_weights!r}")
    if int(min_comparison_units) != min_comparison_units or min_comparison_units < 1:
        raise ValueError("min_comparison_units must be an integer >= 1")


def fit_dose_cells(
    data: pd.DataFrame,
    *,
    outcome: str,
    dose: str,
    unit: str = "ags",
    time: str = "t",
    cohort: str = "g",
    cluster: str | None = "kreis",
    weights: str | None = None,
    control_group: str = "not_yet_treated",
    base_period: str = "varying",
    anticipation: int = 0,
    degree: int = 3,
    num_knots: int = 0,
    knots: Sequence[float] | None = None,
    min_comparison_units: int = 30,
) -> DoseFit:
    """Prepare the panel, build the cells and fit the dose spline in each (no aggregation)."""
    panel = prepare_dose_panel(data, outcome=outcome, dose=dose, unit=unit, time=time, cohort=cohort,
                               cluster=cluster, weights=weights, anticipation=anticipation)
    design = build_cells(panel, control_group=control_group, base_period=base_period,
                         anticipation=anticipation, min_comparison_units=min_comparison_units)
    tdose = panel.dose[panel.treated]
    kn = np.sort(np.asarray(knots, float)) if knots is not None else interior_knots(tdose, num_knots)
    fits = fit_cells(panel, design, degree=int(degree), knots=kn)
    settings = {
        "outcome": outcome, "dose": dose, "unit": unit, "time": time, "cohort": cohort, "cluster": cluster,
        "weights": weights, "control_group": control_group, "base_period": base_period,
        "anticipation": int(anticipation), "degree": int(degree), "num_knots": int(len(kn)),
        "knots": [float(k) for k in kn], "min_comparison_units": int(min_comparison_units),
    }
    return DoseFit(panel=panel, design=design, fits=fits, knots=kn, settings=settings)


def default_dose_grid(doses: np.ndarray, n_points: int = N_GRID) -> np.ndarray:
    """``n_points`` quantiles (probabilities 0.1 ... 0.9) of the treated units' doses (unique)."""
    return np.unique(np.quantile(np.asarray(doses, float), np.linspace(0.1, 0.9, n_points)))


def _ci(est: np.ndarray, se: np.ndarray, crit: float) -> tuple[np.ndarray, np.ndarray]:
    return est - crit * se, est + crit * se


def estimate_dose_response(
    data: pd.DataFrame,
    *,
    outcome: str,
    dose: str,
    unit: str = "ags",
    time: str = "t",
    cohort: str = "g",
    cluster: str | None = "kreis",
    weights: str | None = None,
    control_group: str = "not_yet_treated",
    base_period: str = "varying",
    anticipation: int = 0,
    degree: int = 3,
    num_knots: int = 0,
    knots: Sequence[float] | None = None,
    dose_grid: Sequence[float] | None = None,
    event_window: tuple[int, int] | None = (-12, 12),
    min_comparison_units: int = 30,
    n_boot: int = 999,
    boot_weights: str = "rademacher",
    seed: int | np.random.Generator | None = DEFAULT_SEED,
    alpha: float = 0.05,
) -> DoseResponseResult:
    """Dose-response ATT(d) / ACRT(d), ATT^o / ACRT^o and their event study (CGBS 2024).

    ``data``: long panel, one row per ``unit`` and integer period ``time``; ``cohort`` = first
    treated period (0 / missing = never treated), constant within unit; ``dose`` constant
    within unit and > 0 for treated units (ignored for never-treated units). ``weights``:
    time-invariant unit weights (normalised to mean 1). ``cluster``: cluster variable of
    the influence-function sums (``None``: units). ``degree`` / ``num_knots``: B-spline of the
    dose (``knots`` gives the interior knots explicitly). ``dose_grid``: doses at which
    ATT(d), ACRT(d) are reported (default :func:`default_dose_grid`). ``event_window``:
    event times reported in ``event_study`` (the dose aggregation uses every post-treatment
    cell). ``min_comparison_units``: cells with fewer comparison units are dropped.
    ``n_boot`` multiplier-bootstrap draws (``boot_weights`` "rademacher" / "mammen", per
    cluster, ``seed``); ``n_boot=0``: analytic SEs and no uniform bands.
    See the module docstring for estimands and the comparison with moderndid's ``cont_did``.
    """
    t0 = _time.perf_counter()
    _check_settings(degree, num_knots, alpha, n_boot, boot_weights, min_comparison_units)
    if event_window is not None and event_window[0] > event_window[1]:
        raise ValueError("event_window must be (low, high) with low <= high")
    fit = fit_dose_cells(data, outcome=outcome, dose=dose, unit=unit, time=time, cohort=cohort, cluster=cluster,
                         weights=weights, control_group=control_group, base_period=base_period,
                         anticipation=anticipation, degree=degree, num_knots=num_knots, knots=knots,
                         min_comparison_units=min_comparison_units)
    panel, design, fits = fit.panel, fit.design, fit.fits
    tdose = panel.dose[panel.treated]
    grid = default_dose_grid(tdose) if dose_grid is None else np.asarray(dose_grid, float).ravel()
    if len(grid) == 0 or not np.isfinite(grid).all():
        raise ValueError("dose_grid must hold finite doses")
    try:
        dagg = aggregate_dose(panel, design, fits, grid)
    except ValueError as exc:
        why = pd.Series(design.reason[design.post]).value_counts().to_dict()
        raise ValueError(f"{exc}; post-treatment cells by reason: {why}") from exc
    eagg = aggregate_event(panel, design, fits, event_window)

    m, E, n = len(grid), len(eagg.event_time), panel.n
    psi = np.hstack([dagg.if_att_d, dagg.if_acrt_d, dagg.if_att_o[:, None], dagg.if_acrt_o[:, None],
                     eagg.if_att, eagg.if_acrt])
    S = cluster_sums(psi, panel.cluster_codes, panel.n_clusters)
    se_an = analytic_se(S, n)
    i_att = np.arange(m)
    i_acrt = np.arange(m, 2 * m)
    if n_boot > 0:
        se, crit = bootstrap(S, n, n_boot=int(n_boot), kind=boot_weights, seed=seed, alpha=alpha,
                             bands={"att": i_att, "acrt": i_acrt})
    else:
        se, crit = se_an.copy(), {"att": np.nan, "acrt": np.nan}
    z = float(norm.ppf(1 - alpha / 2))

    att_se, acrt_se = se[i_att], se[i_acrt]
    att_lo, att_hi = _ci(dagg.att_d, att_se, crit["att"])
    acrt_lo, acrt_hi = _ci(dagg.acrt_d, acrt_se, crit["acrt"])
    att_lp, att_hp = _ci(dagg.att_d, att_se, z)
    acrt_lp, acrt_hp = _ci(dagg.acrt_d, acrt_se, z)
    curves = pd.DataFrame({
        "dose": grid, "att": dagg.att_d, "att_se": att_se, "att_lo": att_lo, "att_hi": att_hi,
        "att_lo_pointwise": att_lp, "att_hi_pointwise": att_hp,
        "acrt": dagg.acrt_d, "acrt_se": acrt_se, "acrt_lo": acrt_lo, "acrt_hi": acrt_hi,
        "acrt_lo_pointwise": acrt_lp, "acrt_hi_pointwise": acrt_hp,
        "att_se_analytic": se_an[i_att], "acrt_se_analytic": se_an[i_acrt],
    })

    est_o = np.array([dagg.att_o, dagg.acrt_o])
    se_o, se_o_an = se[2 * m: 2 * m + 2], se_an[2 * m: 2 * m + 2]
    lo_o, hi_o = _ci(est_o, se_o, z)
    with np.errstate(invalid="ignore", divide="ignore"):
        p_o = 2 * norm.sf(np.abs(est_o / se_o))
    aggregates = pd.DataFrame({"term": ["att_overall", "acrt_overall"], "estimate": est_o, "se": se_o,
                               "ci_low": lo_o, "ci_high": hi_o, "p": p_o, "se_analytic": se_o_an})

    j0 = 2 * m + 2
    es_se, es_acrt_se = se[j0: j0 + E].copy(), se[j0 + E: j0 + 2 * E].copy()
    es_se[eagg.base] = np.nan
    es_acrt_se[eagg.base] = np.nan
    es_lo, es_hi = _ci(eagg.att, es_se, z)
    esa_lo, esa_hi = _ci(eagg.acrt, es_acrt_se, z)
    event_study = pd.DataFrame({
        "event_time": eagg.event_time.astype(np.int64), "att": eagg.att, "se": es_se, "ci_low": es_lo,
        "ci_high": es_hi, "acrt": eagg.acrt, "acrt_se": es_acrt_se, "acrt_ci_low": esa_lo, "acrt_ci_high": esa_hi,
        "se_analytic": se_an[j0: j0 + E], "acrt_se_analytic": se_an[j0 + E: j0 + 2 * E],
        "n_cohorts": eagg.n_cohorts, "n_treated": eagg.n_treated, "reference": eagg.base,
    })

    Sc = cluster_sums(np.hstack([fits.if_att_o, fits.if_acrt_o]), panel.cluster_codes, panel.n_clusters)
    se_cells = analytic_se(Sc, n)
    C = design.n_cells
    cells = pd.DataFrame({
        "cohort": design.g, "time": design.t, "base_period": design.b, "event_time": design.event_time,
        "post": design.post, "att": fits.att_o, "att_se": se_cells[:C], "acrt": fits.acrt_o,
        "acrt_se": se_cells[C:], "n_treated": fits.n_treated, "n_comparison": design.n_comp,
        "weight": dagg.omega, "dropped": design.dropped, "universal_base": design.universal_base,
        "reason": design.reason.astype(str),
    })
    reason = design.reason.astype(str)
    info = dict(fit.settings)
    info.update({
        "event_window": None if event_window is None else (int(event_window[0]), int(event_window[1])),
        "n_boot": int(n_boot), "boot_weights": boot_weights,
        "seed": seed if not isinstance(seed, np.random.Generator) else "Generator", "alpha": alpha,
        "crit_att": crit["att"], "crit_acrt": crit["acrt"], "z": z,
        "dose_grid": "default (quantiles 0.1-0.9 of treated doses)" if dose_grid is None else "user",
        "treated_dose_range": (float(tdose.min()), float(tdose.max())),
        "periods": (int(panel.periods[0]), int(panel.periods[-1])),
        "cohorts_in_dose_aggregation": [int(g) for g in dagg.cohorts],
        "cohort_shares": [float(p) for p in dagg.pi],
        "notes": list(panel.notes),
        "n_dropped_early": panel.n_dropped_early, "n_dropped_zero_weight": panel.n_dropped_zero_weight,
        "n_post_cells_used": int((dagg.omega > 0).sum()),
        "seconds": _time.perf_counter() - t0,
    })
    outside = (grid < tdose.min()) | (grid > tdose.max())
    if outside.any():
        info["notes"].append(f"{int(outside.sum())} grid dose(s) outside the treated doses' range (extrapolated)")
    extrap = [(int(g), float(p)) for g, p in zip(dagg.cohorts, dagg.pi, strict=True)
              if grid.min() < fits.cohorts[int(g)].lo or grid.max() > fits.cohorts[int(g)].hi]
    info["extrapolating_cohorts"] = [g for g, _ in extrap]
    if extrap:
        info["notes"].append(
            f"{len(extrap)} cohort(s) with {sum(p for _, p in extrap):.0%} of the weight do not span the dose grid: "
            "their ATT(d|g,t) / ACRT(d|g,t) are extrapolated (polynomial continuation of the spline) there")
    return DoseResponseResult(
        curves=curves, aggregates=aggregates, event_study=event_study, cells=cells,
        n_units=int(n), n_treated=int(panel.treated.sum()), n_clusters=int(panel.n_clusters),
        n_cells_used=int((~design.dropped & ~design.universal_base).sum()),
        n_cells_dropped=int((reason == "few_comparison_units").sum()),
        n_cells_unidentified=int(np.isin(reason, ["spline_not_identified", "no_treated_observed"]).sum()),
        treated_doses=np.sort(tdose), info=info,
        influence={"att_d": dagg.if_att_d, "acrt_d": dagg.if_acrt_d, "att_overall": dagg.if_att_o,
                   "acrt_overall": dagg.if_acrt_o, "event_att": eagg.if_att, "event_acrt": eagg.if_acrt,
                   "cluster_codes": panel.cluster_codes, "units": panel.units},
    )
