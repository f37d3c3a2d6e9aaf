"""Two-way fixed-effects regressions: the static coefficient and the dynamic event study.

Both are least-squares fits of the two-way FE engine (:mod:`.fe`) on the prepared panel
(:func:`.design.prepare_panel`): unit and period effects absorbed, covariates (constant
ones as covariate x period slopes), weights, cluster-robust CRV1 standard errors with
fixest's small-sample factor (coefficients and SEs agree with pyfixest and linearmodels'
``PanelOLS``, see the tests).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ifm_eval.estimators.design import (
    CL,
    MIN_UNTREATED_PER_PERIOD,
    REL,
    TC,
    UC,
    D,
    Panel,
    W,
    Y,
    design_args,
    period_support,
    prepare_panel,
    unsupported_cells,
    used_frame,
)
from ifm_eval.estimators.fe import FEFit, cluster_jackknife, codes, feols
from ifm_eval.estimators.jackknife import apply_jackknife, jackknife_vcov
from ifm_eval.estimators.results import BootstrapSource, EstimateResult, normal_inference

__all__ = ["default_window", "event_dummies", "fit_panel", "jackknife_panel", "twfe_dynamic", "twfe_static"]


def fit_panel(panel: Panel, rows: np.ndarray | None, extra: sp.csr_matrix | np.ndarray | None,
              extra_names: list[str], k_fixef: str = "nonnested", fe_coef: bool = False) -> FEFit:
    """FE regression of the outcome on ``extra`` regressors plus the covariates, on the rows
    ``rows`` (bool mask over ``panel.df``; None = all)."""
    df = panel.df if rows is None else panel.df[rows]
    Xc, cnames = panel.regressors(df)
    if extra is not None and len(extra_names):
        E = extra if sp.issparse(extra) else sp.csr_matrix(np.asarray(extra, float).reshape(len(df), -1))
        X = sp.hstack([E, Xc]).tocsr()
    else:
        X = Xc
    fit = feols(df[Y].to_numpy(), X, panel.fe(rows), [*extra_names, *cnames],
                cluster=df[CL].to_numpy(), k_fixef=k_fixef, fe_coef=fe_coef)
    lost_cov = [panel.label(c) for c in fit.dropped if c in panel.covariates]
    if lost_cov and not any(":" in c for c in lost_cov):
        panel.warnings.append(f"covariate(s) {lost_cov} collinear with the fixed effects; dropped")
    return fit


def jackknife_panel(panel: Panel, rows: np.ndarray | None, extra: sp.csr_matrix | np.ndarray,
                    extra_null: dict[int, list[np.ndarray]] | None = None,
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Leave-one-cluster-out coefficients of the ``extra`` regressors of :func:`fit_panel`'s
    regression (same rows, covariates, weights; exact, :func:`.fe.cluster_jackknife`).

    Returns the full-sample coefficients (k), the leave-out ones (G x k; NaN where a
    regressor has no weight outside the cluster: not identified without it) and each
    row's cluster code (over ``rows``). ``extra_null``: see :func:`.fe.cluster_jackknife`
    (cluster codes are those of ``codes(df[CL])``, sorted levels); those regressors are NaN
    in the leave-out."""
    df = panel.df if rows is None else panel.df[rows]
    n = len(df)
    E = extra if sp.issparse(extra) else sp.csr_matrix(np.asarray(extra, float).reshape(n, -1))
    Xc, _ = panel.regressors(df)
    P = sp.csr_matrix((np.ones(n), (np.arange(n), df[TC].to_numpy())), shape=(n, len(panel.periods)))
    ccode, G = codes(df[CL].to_numpy())
    w = df[W].to_numpy(float)
    jk = cluster_jackknife(df[UC].to_numpy(), panel.n_unit_codes, sp.hstack([E, Xc, P]).tocsr(), w,
                           df[Y].to_numpy(float), ccode, G, extra_null)
    k = E.shape[1]
    mass = np.zeros((G, k))  # weight of each regressor's nonzero rows by cluster
    Ec = E.tocoo()
    np.add.at(mass, (ccode[Ec.row], Ec.col), w[Ec.row] * np.abs(Ec.data))
    minus = np.where(mass.sum(axis=0)[None, :] - mass > 0, jk.theta_minus[:, :k], np.nan)
    for g, sets in (extra_null or {}).items():
        for cols in sets:
            minus[g, np.asarray(cols)] = np.nan
    return jk.theta[:k], minus, ccode


def wcr_source(fit: FEFit, combos: dict[str, dict[int, float]]) -> BootstrapSource | None:
    """The WCR source of ``fit``: per term, a linear combination {coefficient index:
    weight} of its coefficients."""
    if fit.design is None or not combos:
        return None
    R = np.zeros((len(combos), len(fit.coef)))
    for i, combo in enumerate(combos.values()):
        for j, v in combo.items():
            R[i, j] = v
    return BootstrapSource("wcr", list(combos), fit.design.labels, fit=fit, restrictions=R)


def _check_full(panel: Panel, full: np.ndarray, estimate: np.ndarray) -> None:
    """Warn if the jackknife's full-sample solve does not reproduce the estimates."""
    gap = float(np.nanmax(np.abs(full - estimate))) if len(full) else 0.0
    if gap > 1e-6 * max(1.0, float(np.nanmax(np.abs(estimate)))):
        panel.warnings.append(f"jackknife's full-sample solve differs from the estimate by {gap:.2e}")


def _coef_rows(fit: FEFit, panel: Panel, rename: dict[str, str]) -> pd.DataFrame:
    se = fit.se()
    return pd.DataFrame({"kind": "coefficient",
                         "term": [rename.get(c, panel.label(c)) for c in fit.names],
                         "estimate": fit.coef, "se": se})


def twfe_static(data: pd.DataFrame, *args: Any, alpha: float = 0.05, k_fixef: str = "nonnested",
                jackknife: bool = False, **kwargs: Any) -> EstimateResult:
    """Static TWFE: ``y_it = a_i + l_t + b * D_it (+ X_it'c) + e_it``, D = post(g - anticipation).

    Call as ``twfe_static(data, outcome, unit, time, cohort, covariates=..., ...)`` or
    ``twfe_static(data, design)``. The ``overall`` row is ``b``; every regression coefficient
    (not the covariate x period slopes) is also returned as a ``coefficient`` row.
    ``jackknife``: the treatment coefficient's SE is the cluster jackknife's (CV3) with a
    t(G - 1) interval (:mod:`.jackknife`).
    """
    design, opts = design_args(data, args, kwargs)
    if opts:
        raise TypeError(f"unexpected option(s) {sorted(opts)}")
    panel = prepare_panel(data, design)
    df = panel.df
    fit = fit_panel(panel, None, df[[D]].to_numpy(), ["treated"], k_fixef)
    coefs = _coef_rows(fit, panel, {})
    coefs = coefs[~coefs["term"].str.contains(":t", regex=False)]
    if "treated" not in fit.names:
        raise ValueError("twfe_static: the treatment indicator is collinear with the fixed effects")
    overall = coefs[coefs["term"] == "treated"].assign(kind="overall", term="att")
    table = pd.concat([overall, coefs], ignore_index=True)
    table = table.assign(**normal_inference(table["estimate"], table["se"], alpha))
    info: dict[str, Any] = {}
    if jackknife:
        full, minus, _ = jackknife_panel(panel, None, df[[D]].to_numpy())
        rows = np.flatnonzero(table["term"].isin(["att", "treated"]).to_numpy())
        _check_full(panel, full[[0] * len(rows)], table.loc[rows, "estimate"].to_numpy(float))
        info = apply_jackknife(table, rows, minus[:, [0] * len(rows)], alpha)
    post = df[D].to_numpy() == 1
    jt = fit.names.index("treated")
    return EstimateResult(
        "twfe_static", table, panel.n_units, fit.n, fit.n_clusters, panel.warnings,
        info={"coefficients": dict(zip(coefs["term"], coefs["estimate"], strict=True)),
              "headline": {"term": "att", "aggregation": "observations"}, **info},
        used=used_frame(panel, post),
        boot_source=wcr_source(fit, {"att": {jt: 1.0}, "treated": {jt: 1.0}}),
    )


def event_dummies(rel: pd.Series, window: tuple[int, int], reference: int,
                  bin_endpoints: bool = True) -> tuple[pd.DataFrame, list[int]]:
    """Relative-period dummies over ``window`` (excluding ``reference``).

    With ``bin_endpoints`` the first and last dummies also switch on for every relative
    period below / above the window (binned endpoints). Never-treated rows (``rel`` NaN)
    are all zeros.
    """
    lo, hi = window
    r = binned(rel.to_numpy(dtype=float), window) if bin_endpoints else rel.to_numpy(dtype=float)
    periods = [e for e in range(lo, hi + 1) if e != reference]
    cols = {_et_name(e): (r == e).astype(float) for e in periods}
    return pd.DataFrame(cols, index=rel.index), periods


def binned(rel: np.ndarray, window: tuple[int, int]) -> np.ndarray:
    """Event times with the ones outside the window moved to its endpoints."""
    return np.where(np.isfinite(rel), np.clip(rel, window[0], window[1]), np.nan)


def _et_name(e: int) -> str:
    return f"_et_m{-e}" if e < 0 else f"_et_p{e}"


def default_window(panel: Panel) -> tuple[int, int]:
    rel = panel.df[REL].dropna()
    return int(rel.min()), int(rel.max())


def twfe_dynamic(data: pd.DataFrame, *args: Any, alpha: float = 0.05, k_fixef: str = "nonnested",
                 min_untreated_per_period: int = MIN_UNTREATED_PER_PERIOD,
                 jackknife: bool = False, **kwargs: Any) -> EstimateResult:
    """Dynamic TWFE event study with binned endpoints.

    Regresses the outcome on relative-period dummies e in the event window (default: all
    observed relative periods) except the reference ``e = -1 - anticipation``; the two
    endpoint dummies also cover every period outside the window. Unit and time effects
    are absorbed; SEs cluster-robust. Returns ``event_time`` rows (the reference with
    estimate 0 and no SE), the ``dynamic`` overall row (mean of the post coefficients) and
    the covariance matrix of the event-time coefficients.

    Periods with fewer than ``min_untreated_per_period`` untreated units (or whose
    covariate x period slopes are not identified from them, see :func:`period_support`)
    are dropped: there, the time effects would be pinned only by the restriction that
    effects depend on event time alone (e.g. every period after the last cohort starts when
    there is no never-treated group). Dropped (cohort, period) cells are reported in
    ``info["dropped_cells"]``. ``min_untreated_per_period=0`` keeps every period.
    ``jackknife``: event-time and ``dynamic`` SEs from the cluster jackknife (CV3, t(G - 1)
    intervals; :mod:`.jackknife`).
    """
    design, opts = design_args(data, args, kwargs)
    if opts:
        raise TypeError(f"unexpected option(s) {sorted(opts)}")
    panel = prepare_panel(data, design)
    ref = design.reference
    window = design.window if design.window is not None else default_window(panel)
    if not window[0] <= ref <= window[1]:
        raise ValueError(f"event window {window} must contain the reference period {ref}")
    df = panel.df
    untreated = df[D].to_numpy() == 0
    if min_untreated_per_period > 0:
        ok, ptab = period_support(panel, untreated, min_untreated_per_period)
    else:  # 0 = textbook TWFE on every period (no trimming)
        ok, ptab = np.ones(len(untreated), dtype=bool), None
    dropped_cells = unsupported_cells(df, ~ok & ~untreated)
    if not ok.all():
        bad = ptab.loc[~ptab["supported"]]
        panel.warnings.append(
            f"dropped {int((~ok).sum())} observation(s) in {len(bad)} period(s) with fewer "
            f"than {min_untreated_per_period} untreated units or unidentified covariate x "
            "period slopes (periods "
            + ", ".join(f"{int(t)} ({int(n)})" for t, n in zip(bad["time"], bad["n_untreated"], strict=True))
            + f" [untreated units]); {len(dropped_cells)} treated (cohort, period) cell(s) "
            "in info['dropped_cells']"
        )
        if not ok.any():
            raise ValueError("twfe_dynamic: no period has enough untreated units")
    sub = df[ok]
    rb = binned(sub[REL].to_numpy(float), window)
    periods = [e for e in range(window[0], window[1] + 1) if e != ref]
    pos = {e: j for j, e in enumerate(periods)}
    lut = np.full(window[1] - window[0] + 1, -1)
    for e, j in pos.items():
        lut[e - window[0]] = j
    col = np.where(np.isfinite(rb), lut[np.nan_to_num(rb, nan=window[0]).astype(int) - window[0]], -1)
    present = sorted(set(col[col >= 0].tolist()))
    empty = [_et_name(periods[j]) for j in range(len(periods)) if j not in set(present)]
    if empty:
        panel.warnings.append(f"no observations for relative period dummies {empty}")
    remap = {j: i for i, j in enumerate(present)}
    rows = np.flatnonzero(col >= 0)
    E = sp.csr_matrix((np.ones(len(rows)), (rows, [remap[c] for c in col[rows]])), shape=(len(sub), len(present)))
    names = [_et_name(periods[j]) for j in present]
    fit = fit_panel(panel, ok, E, names, k_fixef)
    et_of = {_et_name(e): e for e in periods}
    got = [c for c in fit.names if c in et_of]
    idx = [fit.names.index(c) for c in got]
    events = [et_of[c] for c in got]
    se = fit.se()
    rows_df = pd.DataFrame({"kind": "event_time", "term": [f"e{e:+d}" for e in events], "event_time": events,
                            "estimate": fit.coef[idx], "se": se[idx]})
    rows_df = rows_df.assign(**normal_inference(rows_df["estimate"], rows_df["se"], alpha))
    ref_row = pd.DataFrame({"kind": ["event_time"], "term": ["reference"], "event_time": [ref], "estimate": [0.0]})
    cov_rows = _coef_rows(fit, panel, {})
    cov_rows = cov_rows[cov_rows["term"].isin(panel.covariate_names) & ~cov_rows["term"].str.contains(":t", regex=False)]
    V = fit.vcov[np.ix_(idx, idx)]
    vcov = pd.DataFrame(V, index=events, columns=events)
    wv = np.array([1.0 if e >= 0 else 0.0 for e in events])
    dyn = pd.DataFrame({"kind": ["overall"], "term": ["dynamic"]})
    if wv.sum() > 0:
        wv /= wv.sum()
        dyn["estimate"] = float(wv @ fit.coef[idx])
        dyn["se"] = float(np.sqrt(max(wv @ V @ wv, 0.0)))
        dyn = dyn.assign(**normal_inference(dyn["estimate"], dyn["se"], alpha))
    table = pd.concat([dyn, rows_df, ref_row, cov_rows], ignore_index=True)
    table = table.sort_values(["kind", "event_time"], kind="stable", ignore_index=True)
    jk_info: dict[str, Any] = {}
    if jackknife:
        full, minus, _ = jackknife_panel(panel, ok, E)
        col = [names.index(c) for c in got]
        est_m = np.column_stack([minus[:, col], minus[:, col] @ wv]) if wv.sum() > 0 else minus[:, col]
        est_f = np.r_[full[col], full[col] @ wv] if wv.sum() > 0 else full[col]
        terms = [f"e{e:+d}" for e in events] + (["dynamic"] if wv.sum() > 0 else [])
        pos = {t: i for i, t in enumerate(table["term"])}
        rows = np.array([pos[t] for t in terms])
        _check_full(panel, est_f, table.loc[rows, "estimate"].to_numpy(float))
        jk_info = apply_jackknife(table, rows, est_m, alpha)
        V = jackknife_vcov(est_m[:, :len(events)])
        vcov = pd.DataFrame(V, index=events, columns=events)
    # the treated observations each event-time coefficient speaks for (binned endpoints)
    treated = ok & (df[D].to_numpy() == 1)
    e_bin = binned(df[REL].to_numpy(float), window)
    post_events = [e for e in events if e >= 0]
    combos = {f"e{e:+d}": {j: 1.0} for e, j in zip(events, idx, strict=True)}
    if wv.sum() > 0:
        combos["dynamic"] = {j: float(v) for j, v in zip(idx, wv, strict=True) if v}
    return EstimateResult(
        "twfe_dynamic", table, panel.n_units, fit.n, fit.n_clusters, panel.warnings,
        info={"window": list(window), "reference": ref, "binned_endpoints": True,
              "min_untreated_per_period": int(min_untreated_per_period), "dropped_cells": dropped_cells,
              "headline": {"term": "dynamic", "aggregation": "event_time_mean", "event_times": post_events},
              **jk_info},
        vcov=vcov,
        used=used_frame(panel, treated, event_time=e_bin),
        boot_source=wcr_source(fit, combos),
    )

