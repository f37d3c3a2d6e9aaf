"""Binned cross-check of the dose response: the binary ATT of each dose bin.

Treated units are split into dose bins (terciles of the treated units' doses by default;
edges reported). For bin ``k`` and every estimated (g,t) cell of the dose-response fit the
binned ATT is ``mean_{i in g, bin k} dY_i - m(g,t)`` — the same cells, base periods and
comparison units (including other bins' not-yet-treated units) as the spline estimator, a
constant in place of the spline. Cells are aggregated as the dose aggregation (cohort
shares of the bin's units, split equally over the cohort's post-treatment cells with at
least one bin unit observed).

Next to it, ``spline_att`` is the spline counterpart with the same cells and weights: the
fitted ``ATT(D_i|g,t)`` averaged over the bin's treated units, and ``diff = att - spline_att``
is the bin's mean spline residual (its SE accounts for the common comparison means, which
cancel). Under a correctly specified spline ``diff`` is centred at 0.
"""

from __future__ import annotations

import time as _time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

from .aggregate import dose_weights
from .estimate import DEFAULT_SEED, _check_settings, fit_dose_cells
from .inference import analytic_se, bootstrap, cluster_sums


@dataclass
class BinnedDoseResult:
    """``table``: one row per bin: ``bin``, ``dose_lo`` / ``dose_hi`` (bin edges),
    ``dose_min`` / ``dose_max`` / ``dose_mean`` (the bin's treated doses), ``n_units``,
    ``att``, ``se``, ``ci_low``, ``ci_high``, ``p``, ``spline_att``, ``spline_se``, ``diff``,
    ``diff_se``, ``diff_p`` and analytic SEs; ``edges``; ``info``."""

    table: pd.DataFrame
    edges: np.ndarray
    n_units: int
    n_clusters: int
    info: dict[str, Any] = field(default_factory=dict)


def _bin_edges(doses: np.ndarray, bins: int | Sequence[float]) -> np.ndarray:
    if np.isscalar(bins):
        k = int(bins)
        if k < 1:
            raise ValueError("bins must be >= 1")
        edges = np.quantile(doses, np.linspace(0.0, 1.0, k + 1))
    else:
        edges = np.sort(np.asarray(bins, float))
        if len(edges) < 2:
            raise ValueError("bins: at least two edges needed")
    if (np.diff(edges) <= 0).any():
        raise ValueError(f"dose bin edges are not distinct ({edges}); ties in the dose: use fewer bins or give edges")
    return edges


def binned_dose_att(
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
    bins: int | Sequence[float] = 3,
    min_comparison_units: int = 30,
    n_boot: int = 999,
    boot_weights: str = "rademacher",
    seed: int | np.random.Generator | None = DEFAULT_SEED,
    alpha: float = 0.05,
) -> BinnedDoseResult:
    """Binary ATT per dose bin vs the same comparison units, and the spline's bin average.

    Arguments as :func:`ifm_eval.dose.estimate_dose_response`; ``bins``: number of
    equal-frequency bins of the treated units' doses, or the bin edges (bins are
    ``[e_k, e_{k+1})``, the last one closed; treated units outside the edges are left out).
    """
    t0 = _time.perf_counter()
    _check_settings(degree, num_knots, alpha, n_boot, boot_weights, min_comparison_units)
    fit = fit_dose_cells(data, outcome=outcome, dose=dose, unit=unit, time=time, cohort=cohort, cluster=cluster,
                         weights=weights, control_group=control_group, base_period=base_period,
                         anticipation=anticipation, degree=degree, num_knots=num_knots, knots=knots,
                         min_comparison_units=min_comparison_units)
    panel, design, fits = fit.panel, fit.design, fit.fits
    n, C = panel.n, design.n_cells
    tr = panel.treated
    edges = _bin_edges(panel.dose[tr], bins)
    K = len(edges) - 1
    bin_of = np.full(n, -1)
    d = panel.dose
    inside = tr & (d >= edges[0]) & (d <= edges[-1])
    bin_of[inside] = np.minimum(np.searchsorted(edges, d[inside], side="right") - 1, K - 1)
    est = ~design.dropped & ~design.universal_base
    m_c = np.where(est, design.m, 0.0)

    psi = np.zeros((n, 3 * K))
    est_att, est_spl = np.full(K, np.nan), np.full(K, np.nan)
    rows = []
    for k in range(K):  # loop over bins
        member = bin_of == k
        if not member.any():
            raise ValueError(f"dose bin {k} ({edges[k]:g}, {edges[k + 1]:g}) has no treated unit")
        # per cell: the bin's observed treated units
        att_c, spl_c = np.zeros(C), np.zeros(C)
        n_in = np.zeros(C, dtype=np.int64)
        tr_att = np.zeros((n, C))
        tr_spl = np.zeros((n, C))
        for cf in fits.cohorts.values():  # loop over cohorts
            mb = member[cf.units]
            if not mb.any():
                continue
            WVb = cf.WV * mb[:, None]
            sb = WVb.sum(axis=0)
            n_in[cf.cells] = ((cf.WV > 0) & mb[:, None]).sum(axis=0)
            ok = sb > 0
            if not ok.any():
                continue
            sbs = np.where(ok, sb, 1.0)
            D0 = design.dY[np.ix_(cf.units, cf.cells)]
            mean_y = (WVb * D0).sum(axis=0) / sbs
            mean_f = (WVb * cf.fitted).sum(axis=0) / sbs
            pTb = sbs / n
            xbar = (WVb.T @ cf.X) / sbs[:, None]
            v = np.einsum("kpq,kq->kp", cf.Ainv, xbar)
            cols = cf.cells[ok]
            att_c[cols] = (mean_y - m_c[cf.cells])[ok]
            spl_c[cols] = (mean_f - m_c[cf.cells])[ok]
            tr_att[np.ix_(cf.units, cols)] = (WVb * (D0 - mean_y) / pTb)[:, ok]
            tr_spl[np.ix_(cf.units, cols)] = (WVb * (cf.fitted - mean_f) / pTb + (cf.X @ v.T) * cf.WVe)[:, ok]
        use = design.post & est & (n_in > 0)
        omega, cohorts, pi, psi_pi = dose_weights(panel, design, use=use, member=member)
        bar = np.array([[att_c[design.g == g] @ omega[design.g == g], spl_c[design.g == g] @ omega[design.g == g]]
                        for g in cohorts]) / pi[:, None]
        comp_part = fits.if_comp @ omega
        psi[:, k] = tr_att @ omega - comp_part + psi_pi @ bar[:, 0]
        psi[:, K + k] = tr_spl @ omega - comp_part + psi_pi @ bar[:, 1]
        psi[:, 2 * K + k] = psi[:, k] - psi[:, K + k]
        est_att[k], est_spl[k] = att_c @ omega, spl_c @ omega
        w_b = panel.w[member]
        rows.append({"bin": k, "dose_lo": edges[k], "dose_hi": edges[k + 1], "dose_min": float(d[member].min()),
                     "dose_max": float(d[member].max()), "dose_mean": float(np.average(d[member], weights=w_b)),
                     "n_units": int(member.sum()), "n_post_cells": int(use.sum())})
    S = cluster_sums(psi, panel.cluster_codes, panel.n_clusters)
    se_an = analytic_se(S, n)
    if n_boot > 0:
        se, _ = bootstrap(S, n, n_boot=int(n_boot), kind=boot_weights, seed=seed, alpha=alpha, bands={})
    else:
        se = se_an.copy()
    z = float(norm.ppf(1 - alpha / 2))
    table = pd.DataFrame(rows)
    diff = est_att - est_spl
    se_att, se_spl, se_diff = se[:K], se[K:2 * K], se[2 * K:]
    with np.errstate(invalid="ignore", divide="ignore"):
        table["att"] = est_att
        table["se"] = se_att
        table["ci_low"] = est_att - z * se_att
        table["ci_high"] = est_att + z * se_att
        table["p"] = 2 * norm.sf(np.abs(est_att / se_att))
        table["spline_att"] = est_spl
        table["spline_se"] = se_spl
        table["diff"] = diff
        table["diff_se"] = se_diff
        table["diff_p"] = 2 * norm.sf(np.abs(diff / se_diff))
    table["se_analytic"] = se_an[:K]
    table["spline_se_analytic"] = se_an[K:2 * K]
    table["diff_se_analytic"] = se_an[2 * K:]
    info = dict(fit.settings)
    info.update({"bins": K, "edges": [float(e) for e in edges], "n_boot": int(n_boot), "boot_weights": boot_weights,
                 "alpha": alpha, "notes": list(panel.notes), "seconds": _time.perf_counter() - t0})
    n_out = int((tr & ~inside).sum())
    if n_out:
        info["notes"].append(f"{n_out} treated unit(s) outside the bin edges left out")
    return BinnedDoseResult(table=table, edges=edges, n_units=int(n), n_clusters=int(panel.n_clusters), info=info)
