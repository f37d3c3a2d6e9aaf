"""Gardner (2022) two-stage difference-in-differences (``did2s``).

First stage: the untreated-only two-way FE model of :mod:`.imputation` (pyfixest, absorbed
effects, covariates only here). Second stage: the residualised outcome
``y_it - a_i - l_t - X_it'b`` (all observations whose effects are estimable) regressed,
without intercept, on

* the treatment indicator (``overall`` row), and separately on
* relative-period dummies for ``e`` in the event window except the reference
  ``-1 - anticipation`` (``event_time`` rows; never-treated units and the reference period
  form the omitted category; treated observations outside the window are left out of the
  second stage rather than binned).

Standard errors: the GMM (stacked-moment) correction of Gardner (2022) as in R ``did2s``,
``V = (X2'X2)^-1 [sum_c psi_c psi_c'] (X2'X2)^-1`` with
``psi_c = X2_c' e2_c - (X2'X1)(X10'X10)^-1 X10_c' e1_c`` (``X1`` the first-stage design on
the second-stage sample, ``X10`` its untreated rows), clustered, no small-sample factor.
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
    UNIT,
    D,
    W,
    design_args,
    prepare_panel,
    used_frame,
)
from ifm_eval.estimators.imputation import FirstStage, first_stage, imputation_jackknife
from ifm_eval.estimators.jackknife import apply_jackknife, jackknife_vcov
from ifm_eval.estimators.results import BootstrapSource, EstimateResult, align_psi, normal_inference
from ifm_eval.estimators.twfe import default_window


def _second_stage(fs: FirstStage, sample: np.ndarray, codes: np.ndarray, k: int):
    """Second stage on disjoint dummies: coefficients and GMM-corrected covariance.

    ``codes`` (over all rows) gives each row's regressor (0..k-1) or -1 (omitted).
    """
    df = fs.df
    w = df[W].to_numpy(float)
    ytil = fs.resid
    rows = np.flatnonzero(sample)
    c = codes[rows]
    inreg = c >= 0
    ws = w[rows]
    # X2'W X2 is diagonal (disjoint dummies)
    diag = np.bincount(c[inreg], weights=ws[inreg], minlength=k)
    num = np.bincount(c[inreg], weights=(ws * ytil[rows])[inreg], minlength=k)
    gamma = np.divide(num, diag, out=np.full(k, np.nan), where=diag > 0)
    fitted = np.where(inreg, gamma[np.where(inreg, c, 0)], 0.0)
    e2 = ytil[rows] - fitted
    n = len(rows)
    X2 = sp.csr_matrix((np.ones(inreg.sum()), (np.flatnonzero(inreg), c[inreg])), shape=(n, k))
    # Gamma = (X10' W X10)^-1 (X1' W X2): p x k, via the first-stage solver
    Zu, Zr = fs.z_rows(sample)
    WX2 = sp.diags(ws) @ X2
    gu, gr = fs.solver.solve((Zu.T @ WX2).toarray(), (Zr.T @ WX2).toarray())
    u0 = fs.untreated[rows]
    Zu0, Zr0 = Zu[u0], Zr[u0]
    proj = np.asarray(Zu0 @ gu + Zr0 @ gr)  # n0 x k
    e1 = fs.resid[rows][u0]
    ccode, labels = pd.factorize(df[CL].to_numpy()[rows])
    ncl = len(labels)
    psi = np.zeros((ncl, k))
    s2 = ws * e2
    for j in range(k):
        m = c == j
        psi[:, j] = np.bincount(ccode[m], weights=s2[m], minlength=ncl)
    psi -= (
        np.stack(
            [
                np.bincount(ccode[u0], weights=ws[u0] * e1 * proj[:, j], minlength=ncl)
                for j in range(k)
            ],
            axis=1,
        )
        if k
        else 0.0
    )
    binv = np.divide(1.0, diag, out=np.zeros(k), where=diag > 0)
    meat = psi.T @ psi
    V = binv[:, None] * meat * binv[None, :]
    n_units = int(pd.unique(df[UNIT].to_numpy()[rows]).size)
    # cluster influence sums of the coefficients (Var = infl' infl), labelled
    infl = (np.asarray(labels), psi * binv[None, :])
    return gamma, V, n, n_units, ncl, infl


def gardner(
    data: pd.DataFrame,
    *args: Any,
    alpha: float = 0.05,
    min_untreated_per_period: int = MIN_UNTREATED_PER_PERIOD,
    jackknife: bool = False,
    **kwargs: Any,
) -> EstimateResult:
    """Two-stage DiD (see module docstring): ``overall`` and ``event_time`` rows. Call as
    ``gardner(data, outcome, unit, time, cohort, **design)`` or ``gardner(data, design)``.

    Treated observations in periods without enough untreated units to identify the period
    effects (``min_untreated_per_period``, see :func:`.imputation.first_stage`) are left
    out of the second stage and reported (``info["dropped_cells"]``).

    ``jackknife``: overall and event-time SEs from the cluster jackknife (CV3, t(G - 1)
    intervals, :mod:`.jackknife`): the second-stage coefficients are weighted means of the
    first-stage residuals (disjoint dummies), so both stages without a cluster are exact
    downdates (:func:`.imputation.imputation_jackknife`).
    """
    design, opts = design_args(data, args, kwargs)
    if opts:
        raise TypeError(f"unexpected option(s) {sorted(opts)}")
    anticipation, event_window = design.anticipation, design.window
    panel = prepare_panel(data, design)
    fs = first_stage(panel, min_untreated_per_period)
    df = fs.df
    ok = fs.imputable
    # static second stage
    dcode = np.where(df[D].to_numpy() == 1, 0, -1)
    g_s, V_s, n_s, nu_s, ncl_s, infl_s = _second_stage(fs, ok, dcode, 1)
    # event-study second stage
    ref = -1 - anticipation
    window = (
        tuple(int(v) for v in event_window) if event_window is not None else default_window(panel)
    )
    if not window[0] <= ref <= window[1]:
        raise ValueError(f"event window {window} must contain the reference period {ref}")
    rel = df[REL].to_numpy()
    periods = [e for e in range(window[0], window[1] + 1) if e != ref]
    inwin = np.isfinite(rel) & (rel >= window[0]) & (rel <= window[1])
    sample = ok & (~np.isfinite(rel) | inwin)
    pos = {e: i for i, e in enumerate(periods)}
    lut = np.full(window[1] - window[0] + 1, -1)
    for e, i in pos.items():
        lut[e - window[0]] = i
    ecode = np.where(inwin, lut[np.clip(np.nan_to_num(rel, nan=window[0]).astype(int), *window) - window[0]], -1)
    g_e, V_e, n_e, nu_e, ncl_e, infl_e = _second_stage(fs, sample, ecode, len(periods))
    se_e = np.sqrt(np.clip(np.diag(V_e), 0, None))
    have = np.isfinite(g_e)
    es = pd.DataFrame(
        {
            "kind": "event_time",
            "term": [f"e{e:+d}" for e in periods],
            "event_time": periods,
            "estimate": g_e,
            "se": se_e,
        }
    )[have]
    ov = pd.DataFrame(
        {
            "kind": ["overall"],
            "term": ["att"],
            "estimate": [g_s[0]],
            "se": [float(np.sqrt(max(V_s[0, 0], 0)))],
        }
    )
    ref_row = pd.DataFrame(
        {"kind": ["event_time"], "term": ["reference"], "event_time": [ref], "estimate": [0.0]}
    )
    table = pd.concat([ov, es, ref_row], ignore_index=True)
    table = table.sort_values(["kind", "event_time"], kind="stable", ignore_index=True)
    table = table.assign(**normal_inference(table["estimate"], table["se"], alpha))
    table.loc[table["term"] == "reference", ["ci_low", "ci_high"]] = np.nan
    hv = [e for e, h in zip(periods, have, strict=False) if h]
    idx = np.flatnonzero(have)
    vcov = pd.DataFrame(V_e[np.ix_(idx, idx)], index=hv, columns=hv)
    jk_info: dict[str, Any] = {}
    if jackknife:
        w = df[W].to_numpy(float)
        r_s = np.flatnonzero(ok & (dcode == 0))
        r_e = np.flatnonzero(sample & (ecode >= 0))
        W2 = sp.csr_matrix((np.r_[w[r_s], w[r_e]], (np.r_[r_s, r_e], np.r_[np.zeros(len(r_s), int), 1 + ecode[r_e]])),
                           shape=(len(df), 1 + len(periods)))
        cols = np.r_[0, 1 + idx].astype(int)
        jk_est, _ = imputation_jackknife(fs, W2, cols)
        pos = {t: i for i, t in enumerate(table["term"])}
        rows = np.array([pos["att"], *[pos[f"e{e:+d}"] for e in hv]])
        jk_info = apply_jackknife(table, rows, jk_est, alpha)
        vcov = pd.DataFrame(jackknife_vcov(jk_est[:, 1:]), index=hv, columns=hv)
    warns = fs.warnings
    n_out = int((ok & ~sample).sum())
    if n_out:
        warns.append(
            f"event study: {n_out} treated observation(s) outside the window "
            f"{list(window)} left out of the second stage"
        )
    labels, psi = align_psi([infl_s, (infl_e[0], infl_e[1][:, idx])])
    boot_source = BootstrapSource("multiplier", ["att", *[f"e{e:+d}" for e in hv]], labels,
                                  estimates=np.r_[g_s[0], g_e[idx]], psi=psi)
    return EstimateResult(
        "gardner",
        table,
        nu_s,
        n_s,
        ncl_s,
        warns,
        info={
            "window": list(window),
            "reference": ref,
            "n_obs_event_study": n_e,
            "min_untreated_per_period": int(min_untreated_per_period),
            "dropped_cells": fs.dropped_cells,
            "headline": {"term": "att", "aggregation": "observations"},
            **jk_info,
        },
        vcov=vcov,
        # event-time rows: the treated observations in the window; headline (static second
        # stage): every imputable treated observation
        used=used_frame(panel, ok & (df[D].to_numpy() == 1),
                        event_time=np.where(inwin, rel, np.nan)),
        boot_source=boot_source,
    )
