"""Two-way fixed-effects regressions (static and dynamic event study) via pyfixest.

Also hosts the panel preparation shared by the regression-based estimators of this
package (:func:`prepare_panel`): cohort coding (0 or missing = never treated), treatment
indicator with anticipation, relative period, cluster and weight columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ifm_eval.estimators.results import EstimateResult, normal_inference

#: Convergence tolerance of pyfixest's alternating-projections demeaner (its default,
#: 1e-6, leaves visible error in designs where few units identify late period effects).
FIXEF_TOL = 1e-10

#: Internal column names used in the regression frames.
Y, UNIT, TIME, COHORT, CL, W, D, REL = "_y", "_unit", "_time", "_g", "_cl", "_w", "_d", "_e"


@dataclass
class Panel:
    """A prepared estimation frame plus what was dropped on the way."""

    df: pd.DataFrame
    covariates: list[str]  # internal regressor names (_x0, _x1_t3, ...)
    covariate_names: list[str]  # readable names, parallel to ``covariates``
    weighted: bool
    anticipation: int
    warnings: list[str] = field(default_factory=list)
    trend_covariates: list[str] = field(default_factory=list)  # time-invariant, x period
    trend_columns: list[str] = field(default_factory=list)  # their internal value columns

    @property
    def n_units(self) -> int:
        return int(self.df[UNIT].nunique())

    @property
    def n_clusters(self) -> int:
        return int(self.df[CL].nunique())


def prepare_panel(
    data: pd.DataFrame,
    outcome: str,
    unit: str,
    time: str,
    cohort: str,
    covariates: Sequence[str] | None = None,
    weights: str | None = None,
    cluster: str | None = None,
    anticipation: int = 0,
    covariate_trends: bool = True,
) -> Panel:
    """Copy the needed columns into internal names and code the treatment.

    Rows with a missing outcome, covariate, weight or cluster are dropped (and counted in
    ``warnings``); cohort 0, missing or infinite means never treated. ``_d`` is 1 from
    ``cohort - anticipation`` on; ``_e`` is ``time - cohort`` (missing for never-treated).

    A covariate that is constant within every unit would be absorbed by the unit effects;
    with ``covariate_trends`` (default) it enters instead as covariate x period
    interactions (the first period omitted), i.e. covariate-specific time effects, the
    usual way to condition parallel trends on baseline characteristics in a TWFE-type
    regression.
    """
    covariates = list(covariates or [])
    need = [outcome, unit, time, cohort, *covariates]
    if weights:
        need.append(weights)
    if cluster:
        need.append(cluster)
    missing = [c for c in dict.fromkeys(need) if c not in data.columns]
    if missing:
        raise KeyError(f"column(s) not in the data: {missing}")
    if anticipation < 0:
        raise ValueError("anticipation must be >= 0")
    df = pd.DataFrame(
        {
            Y: pd.to_numeric(data[outcome], errors="coerce").astype(float),
            UNIT: data[unit].to_numpy(),
            TIME: pd.to_numeric(data[time]).to_numpy(),
            COHORT: pd.to_numeric(data[cohort], errors="coerce").to_numpy(dtype=float),
        },
        index=data.index,
    )
    names = [f"_x{i}" for i in range(len(covariates))]
    for name, col in zip(names, covariates, strict=False):
        df[name] = pd.to_numeric(data[col], errors="coerce").astype(float)
    df[W] = pd.to_numeric(data[weights], errors="coerce").astype(float) if weights else 1.0
    df[CL] = data[cluster].to_numpy() if cluster else df[UNIT].to_numpy()
    warnings: list[str] = []
    g = df[COHORT].to_numpy()
    late = np.isfinite(g) & (g > df[TIME].max() + anticipation)
    if late.any():
        warnings.append(
            f"{int(late.sum())} row(s) of cohorts starting after the last period "
            "treated as never treated"
        )
    df[COHORT] = np.where(~np.isfinite(g) | (g <= 0) | late, 0, g).astype(np.int64)
    bad = df[[Y, *names, W]].isna().any(axis=1) | df[CL].isna()
    if weights:
        bad |= df[W] <= 0
    if bad.any():
        warnings.append(
            f"dropped {int(bad.sum())} row(s) with a missing outcome, covariate, weight or cluster"
        )
        df = df.loc[~bad]
    if df.duplicated([UNIT, TIME]).any():
        raise ValueError("the panel has duplicated (unit, time) rows")
    if (df.groupby(UNIT)[COHORT].nunique() > 1).any():
        raise ValueError("cohort varies within unit")
    treated_cohort = df[COHORT] > 0
    df[D] = (treated_cohort & (df[TIME] >= df[COHORT] - anticipation)).astype(float)
    df[REL] = np.where(treated_cohort, df[TIME] - df[COHORT], np.nan)
    df = df.reset_index(drop=True)
    regs, labels, trend, trend_cols = [], [], [], []
    periods = np.sort(df[TIME].unique())
    extra: dict[str, np.ndarray] = {}
    for name, label in zip(names, covariates, strict=False):
        if covariate_trends and (df.groupby(UNIT)[name].nunique() <= 1).all():
            trend.append(label)
            trend_cols.append(name)
            x = df[name].to_numpy()
            tt = df[TIME].to_numpy()
            for t in periods[1:]:
                col = f"{name}_t{int(t)}"
                extra[col] = np.where(tt == t, x, 0.0)
                regs.append(col)
                labels.append(f"{label}:t{int(t)}")
        else:
            regs.append(name)
            labels.append(label)
    if extra:
        df = pd.concat([df, pd.DataFrame(extra, index=df.index)], axis=1)
    return Panel(df, regs, labels, bool(weights), anticipation, warnings, trend, trend_cols)


#: Default minimum number of untreated units a period needs before treated observations
#: in it are used (see :func:`period_support`).
MIN_UNTREATED_PER_PERIOD = 30


def period_support(
    panel: Panel, untreated: np.ndarray, min_untreated: int = MIN_UNTREATED_PER_PERIOD
) -> tuple[np.ndarray, pd.DataFrame]:
    """Which periods have enough untreated data to identify their period effects.

    A period is supported when it has at least ``max(min_untreated, 1)`` untreated units
    AND the period-specific parameters (the period effect and, with covariate trends, the
    covariate x period slopes) are identified from them: ``[1, x_trend]`` over the
    period's untreated rows has full column rank. Returns (bool mask over rows: row's period
    is supported, per-period table with ``time``, ``n_untreated``, ``supported``).

    Why a minimum above 1 (default :data:`MIN_UNTREATED_PER_PERIOD`): with ``n`` untreated
    units and ``p`` period-specific parameters the period's untreated rows are fitted with
    only ``n - p`` residual degrees of freedom, so (i) every treated observation of the
    period inherits the same imputation error of variance ~sigma^2/n (plus the
    extrapolation of the covariate slopes), which does not average out over treated units,
    and (ii) residual-based variances (BJS Theorem 3, Gardner's GMM correction, cluster-
    robust OLS) see residuals shrunk towards zero, i.e. understate exactly that error
    (zero residuals when ``n = p``). On the stand-in data the last periods with 6 untreated
    (small, similar) municipalities gave log-population x period slopes of -14 and
    imputed effects of ~50 pp for large cities.
    """
    df = panel.df
    tt = df[TIME].to_numpy()
    periods, tcode = np.unique(tt, return_inverse=True)
    n0 = np.bincount(tcode[untreated], minlength=len(periods))
    ok = n0 >= max(int(min_untreated), 1)
    if panel.trend_columns:
        X = df[panel.trend_columns].to_numpy(float)
        p = 1 + X.shape[1]
        for j in np.flatnonzero(ok):
            rows = untreated & (tcode == j)
            Z = np.column_stack([np.ones(int(rows.sum())), X[rows]])
            if np.linalg.matrix_rank(Z) < p:
                ok[j] = False
    table = pd.DataFrame({"time": periods, "n_untreated": n0, "supported": ok})
    return ok[tcode], table


def unsupported_cells(
    df: pd.DataFrame, rows: np.ndarray, reason: str = "thin_period"
) -> list[dict]:
    """(cohort, period) cells of ``rows`` with their observation counts, for reporting."""
    if not rows.any():
        return []
    cnt = df.loc[rows].groupby([COHORT, TIME]).size()
    return [
        {"cohort": int(g), "time": int(t), "n_obs": int(n), "reason": reason}
        for (g, t), n in cnt.items()
    ]


def _fml(lhs: str, rhs: Sequence[str], fe: str = f"{UNIT} + {TIME}") -> str:
    return f"{lhs} ~ {' + '.join(rhs) if rhs else '1'} | {fe}"


def fit_feols(
    panel: Panel,
    df: pd.DataFrame,
    rhs: Sequence[str],
    fe: str | None = None,
    k_fixef: str = "nonnested",
    lean: bool = False,
):
    """pyfixest ``feols`` of ``_y`` on ``rhs`` with absorbed unit and time effects.

    Cluster-robust CRV1 with ``G/(G-1) (N-1)/(N-K)``; ``k_fixef`` says which absorbed
    effects count in K ("nonnested" = fixest's default, "full" = all, as linearmodels).
    """
    import pyfixest as pf
    from pyfixest.demeaners import MapDemeaner

    def _fit(terms):
        return pf.feols(
            _fml(Y, terms, fe or f"{UNIT} + {TIME}"),
            data=df,
            vcov={"CRV1": CL},
            weights=W if panel.weighted else None,
            fixef_rm="none",
            ssc=pf.ssc(k_fixef=k_fixef),
            demeaner=MapDemeaner(fixef_tol=FIXEF_TOL, fixef_maxiter=100_000),
            copy_data=False,
            store_data=not lean,
            lean=lean,
        )

    try:
        return _fit(rhs)
    except ValueError as exc:  # pyfixest: "All variables are collinear"
        if "collinear" not in str(exc) or not panel.covariates:
            raise
        rest = [r for r in rhs if r not in panel.covariates]
        panel.warnings.append("covariates all collinear with the fixed effects; dropped")
        return _fit(rest)


def _coef_frame(fit, names: dict[str, str]) -> pd.DataFrame:
    coef = fit.coef()
    se = fit.se()
    return pd.DataFrame(
        {
            "kind": "coefficient",
            "term": [names.get(c, c) for c in coef.index],
            "estimate": coef.to_numpy(),
            "se": se.to_numpy(),
        }
    )


def twfe_static(
    data: pd.DataFrame,
    outcome: str,
    unit: str,
    time: str,
    cohort: str,
    covariates: Sequence[str] | None = None,
    anticipation: int = 0,
    weights: str | None = None,
    cluster: str | None = None,
    alpha: float = 0.05,
    covariate_trends: bool = True,
    k_fixef: str = "nonnested",
) -> EstimateResult:
    """Static TWFE: ``y_it = a_i + l_t + b * D_it (+ X_it'c) + e_it``, D = post(g - anticipation).

    The ``overall`` row is ``b``; every regression coefficient is also returned as a
    ``coefficient`` row. Standard errors are cluster-robust (CRV1, pyfixest's default small
    sample correction) at ``cluster`` (default: unit).
    """
    panel = prepare_panel(
        data,
        outcome,
        unit,
        time,
        cohort,
        covariates,
        weights,
        cluster,
        anticipation,
        covariate_trends,
    )
    fit = fit_feols(panel, panel.df, [D, *panel.covariates], k_fixef=k_fixef)
    names = {D: "treated", **dict(zip(panel.covariates, panel.covariate_names, strict=False))}
    coefs = _coef_frame(fit, names)
    coefs = coefs[~coefs["term"].str.contains(":t", regex=False)]  # covariate x period
    overall = coefs[coefs["term"] == "treated"].assign(kind="overall", term="att")
    table = pd.concat([overall, coefs], ignore_index=True)
    table = table.assign(**normal_inference(table["estimate"], table["se"], alpha))
    return EstimateResult(
        "twfe_static",
        table,
        panel.n_units,
        int(fit._N),
        panel.n_clusters,
        panel.warnings,
        info={"coefficients": dict(zip(coefs["term"], coefs["estimate"], strict=False))},
    )


def event_dummies(
    rel: pd.Series, window: tuple[int, int], reference: int, bin_endpoints: bool = True
) -> tuple[pd.DataFrame, list[int]]:
    """Relative-period dummies over ``window`` (excluding ``reference``).

    With ``bin_endpoints`` the first and last dummies also switch on for every relative
    period below / above the window (binned endpoints). Never-treated rows (``rel`` NaN)
    are all zeros.
    """
    lo, hi = window
    r = rel.to_numpy(dtype=float)
    if bin_endpoints:
        r = np.where(np.isfinite(r), np.clip(r, lo, hi), np.nan)
    periods = [e for e in range(lo, hi + 1) if e != reference]
    cols = {_et_name(e): (r == e).astype(float) for e in periods}
    return pd.DataFrame(cols, index=rel.index), periods


def _et_name(e: int) -> str:
    return f"_et_m{-e}" if e < 0 else f"_et_p{e}"


def default_window(panel: Panel) -> tuple[int, int]:
    rel = panel.df[REL].dropna()
    return int(rel.min()), int(rel.max())


def twfe_dynamic(
    data: pd.DataFrame,
    outcome: str,
    unit: str,
    time: str,
    cohort: str,
    covariates: Sequence[str] | None = None,
    anticipation: int = 0,
    event_window: tuple[int, int] | None = None,
    weights: str | None = None,
    cluster: str | None = None,
    alpha: float = 0.05,
    covariate_trends: bool = True,
    k_fixef: str = "nonnested",
    min_untreated_per_period: int = MIN_UNTREATED_PER_PERIOD,
) -> EstimateResult:
    """Dynamic TWFE event study with binned endpoints.

    Regresses the outcome on relative-period dummies e in ``event_window`` (default: all
    observed relative periods) except the reference ``e = -1 - anticipation``; the two
    endpoint dummies also cover every period outside the window. Unit and time effects
    are absorbed; SEs cluster-robust. Returns ``event_time`` rows (the reference with
    estimate 0 and no SE) and the full covariance matrix of the event-time coefficients.

    Periods with fewer than ``min_untreated_per_period`` untreated units (or whose
    covariate x period slopes are not identified from them, see :func:`period_support`)
    are dropped: there, the time effects would be pinned only by the restriction that
    effects depend on event time alone (e.g. every period after the last cohort starts when
    there is no never-treated group). Dropped (cohort, period) cells are reported in
    ``info["dropped_cells"]``. ``min_untreated_per_period=0`` keeps every period.
    """
    panel = prepare_panel(
        data,
        outcome,
        unit,
        time,
        cohort,
        covariates,
        weights,
        cluster,
        anticipation,
        covariate_trends,
    )
    ref = -1 - anticipation
    window = tuple(event_window) if event_window is not None else default_window(panel)
    if not window[0] <= ref <= window[1]:
        raise ValueError(f"event window {window} must contain the reference period {ref}")
    untreated = panel.df[D].to_numpy() == 0
    if min_untreated_per_period > 0:
        ok, ptab = period_support(panel, untreated, min_untreated_per_period)
    else:  # 0 = textbook TWFE on every period (no trimming)
        ok, ptab = np.ones(len(untreated), dtype=bool), None
    dropped_cells = unsupported_cells(panel.df, ~ok & ~untreated)
    if not ok.all():
        bad = ptab.loc[~ptab["supported"]]
        panel.warnings.append(
            f"dropped {int((~ok).sum())} observation(s) in {len(bad)} period(s) with fewer "
            f"than {min_untreated_per_period} untreated units or unidentified covariate x "
            "period slopes (periods "
            + ", ".join(
                f"{int(t)} ({int(n)})" for t, n in zip(bad["time"], bad["n_untreated"], strict=True)
            )
            + f" [untreated units]); {len(dropped_cells)} treated (cohort, period) cell(s) "
            "in info['dropped_cells']"
        )
        panel.df = panel.df.loc[ok].reset_index(drop=True)
        if panel.df.empty:
            raise ValueError("twfe_dynamic: no period has enough untreated units")
    dummies, periods = event_dummies(panel.df[REL], window, ref)
    keep = [c for c in dummies if dummies[c].any()]
    empty = sorted(set(dummies) - set(keep))
    warns = panel.warnings
    if empty:
        warns.append(f"no observations for relative period dummies {empty}")
    df = pd.concat([panel.df, dummies[keep]], axis=1)
    fit = fit_feols(panel, df, [*keep, *panel.covariates], k_fixef=k_fixef)
    coef, se = fit.coef(), fit.se()
    et_of = {_et_name(e): e for e in periods}
    got = [c for c in coef.index if c in et_of]
    rows = pd.DataFrame(
        {
            "kind": "event_time",
            "term": [f"e{et_of[c]:+d}" for c in got],
            "event_time": [et_of[c] for c in got],
            "estimate": coef[got].to_numpy(),
            "se": se[got].to_numpy(),
        }
    )
    rows = rows.assign(**normal_inference(rows["estimate"], rows["se"], alpha))
    ref_row = pd.DataFrame(
        {"kind": ["event_time"], "term": ["reference"], "event_time": [ref], "estimate": [0.0]}
    )
    names = dict(zip(panel.covariates, panel.covariate_names, strict=False))
    cov_rows = _coef_frame(fit, names)
    cov_rows = cov_rows[
        cov_rows["term"].isin(panel.covariate_names)
        & ~cov_rows["term"].str.contains(":t", regex=False)
    ]
    idx = [list(coef.index).index(c) for c in got]
    events = [et_of[c] for c in got]
    V = np.asarray(fit._vcov)[np.ix_(idx, idx)]
    vcov = pd.DataFrame(V, index=events, columns=events)
    # overall "dynamic": equally weighted mean of the post-period coefficients (e >= 0)
    wv = np.array([1.0 if e >= 0 else 0.0 for e in events])
    dyn = pd.DataFrame({"kind": ["overall"], "term": ["dynamic"]})
    if wv.sum() > 0:
        wv /= wv.sum()
        dyn["estimate"] = float(wv @ coef[got].to_numpy())
        dyn["se"] = float(np.sqrt(max(wv @ V @ wv, 0.0)))
        dyn = dyn.assign(**normal_inference(dyn["estimate"], dyn["se"], alpha))
    table = pd.concat([dyn, rows, ref_row, cov_rows], ignore_index=True)
    table = table.sort_values(["kind", "event_time"], kind="stable", ignore_index=True)
    return EstimateResult(
        "twfe_dynamic",
        table,
        panel.n_units,
        int(fit._N),
        panel.n_clusters,
        warns,
        info={
            "window": list(window),
            "reference": ref,
            "binned_endpoints": True,
            "min_untreated_per_period": int(min_untreated_per_period),
            "dropped_cells": dropped_cells,
        },
        vcov=vcov,
    )
