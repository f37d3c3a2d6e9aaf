"""Sun & Abraham (2021) interaction-weighted event study.

A pyfixest regression of the outcome on cohort x relative-period interactions (every
cell of every treated cohort except the reference period ``e = -1 - anticipation``) with
absorbed unit and time effects and optional covariates, estimated on treated cohorts
plus a control cohort: the never-treated units when there are any, otherwise the
last-treated cohort, in which case every period from the last cohort's treatment
(minus anticipation) onwards is dropped. The cohort-specific effects ``delta_{g,e}`` are
aggregated to event-time effects with cohort-share weights ``w_{g,e}`` (the share of
cohort ``g`` among the treated observations at relative period ``e``, treated as fixed);
the covariance of the aggregated coefficients is ``W V W'`` with ``V`` the full
cluster-robust covariance of the interactions (as in fixest's ``sunab`` aggregation).

With an ``event_window`` the treated cohorts' observations outside the window are
dropped from the regression (not binned: binning cohort-specific tails into one dummy
would contaminate the other coefficients when effects vary inside the bin).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ifm_eval.estimators.design import (
    CL,
    COHORT,
    MIN_UNTREATED_PER_PERIOD,
    REL,
    TIME,
    UNIT,
    Design,
    W,
    design_args,
    prepare_panel,
    unsupported_cells,
    used_frame,
)
from ifm_eval.estimators.jackknife import apply_jackknife, jackknife_vcov
from ifm_eval.estimators.results import EstimateResult, normal_inference
from ifm_eval.estimators.twfe import fit_panel, jackknife_panel, wcr_source


def _control_cohort(
    df: pd.DataFrame,
    cohorts: list[int],
    anticipation: int,
    min_coverage: float,
    min_units: int = 1,
) -> tuple[int, list[int]]:
    """Latest cohort ``g`` such that the units of cohorts ``>= g`` (the control group)
    number at least ``min_units`` and cover ``min_coverage`` of the unit-periods before
    ``g``; returns it and the later cohorts passed over (they join the control group)."""
    periods = np.sort(df[TIME].unique())
    for i in range(len(cohorts) - 1, 0, -1):
        g = cohorts[i]
        cut = g - anticipation
        units = df.loc[df[COHORT] >= g, UNIT].nunique()
        n_pre = int((periods < cut).sum())
        obs = int(((df[COHORT] >= g) & (df[TIME] < cut)).sum())
        if units >= max(min_units, 1) and n_pre and obs / (units * n_pre) >= min_coverage:
            return g, cohorts[i + 1 :]
    return cohorts[-1], []


def _jackknife_aggregates(panel, E, names, kept, kcells, df, treated, e_of, events, ref) -> np.ndarray:
    """Leave-one-cluster-out event-time effects and overall ATT (G x (E + 1)): the
    interactions without the cluster (:func:`.twfe.jackknife_panel`), aggregated with the
    cohort shares of the remaining clusters."""
    from ifm_eval.estimators.fe import codes

    # a cohort observed at the reference period in one cluster only is not identified
    # without it (the full estimator drops such cohorts)
    ccode_all, _ = codes(df[CL].to_numpy())
    at_ref = (df[COHORT] > 0).to_numpy() & (df[REL] == ref).to_numpy()
    ref_cl = pd.Series(ccode_all[at_ref]).groupby(df.loc[at_ref, COHORT].astype(int).to_numpy()).unique()
    extra_null: dict[int, list[np.ndarray]] = {}
    for g, cls in ref_cl.items():
        if len(cls) == 1:
            cols = np.array([names.index(n) for n, (gg, _) in zip(kept, kcells, strict=True) if gg == g])
            if len(cols):
                extra_null.setdefault(int(cls[0]), []).append(cols)
    _, minus, ccode = jackknife_panel(panel, None, E, extra_null)
    col = [names.index(n) for n in kept]
    delta_m = minus[:, col]  # (G, cells)
    G = delta_m.shape[0]
    tr = treated.to_numpy()
    cell_ix = pd.Index(kcells).get_indexer(pd.MultiIndex.from_arrays(
        [df.loc[tr, COHORT].astype(int), df.loc[tr, REL].astype(int)]))
    wt = df.loc[tr, W].to_numpy(float) if panel.weighted else np.ones(int(tr.sum()))
    mass = np.zeros((G, len(kcells)))
    ok = cell_ix >= 0
    np.add.at(mass, (ccode[tr][ok], cell_ix[ok]), wt[ok])
    m_minus = np.where(np.isfinite(delta_m), mass.sum(axis=0)[None, :] - mass, 0.0)  # (G, cells)
    out = np.full((G, len(events) + 1), np.nan)
    d = np.where(m_minus > 0, delta_m, 0.0)
    for i, e in enumerate(events):
        sel = e_of == e
        out[:, i] = (m_minus[:, sel] * d[:, sel]).sum(axis=1) / m_minus[:, sel].sum(axis=1)
    post = e_of >= 0
    out[:, -1] = (m_minus[:, post] * d[:, post]).sum(axis=1) / m_minus[:, post].sum(axis=1)
    return out


def _identified_sample(df: pd.DataFrame, ref: int) -> tuple[pd.DataFrame, str | None]:
    """Keep the part of the sample in which every time effect and cell is identified.

    Time effects are pinned only by "anchor" observations (control units and treated
    units at the reference period); every other observation sits in its own cohort x
    period cell. Periods and units are identified relative to each other only within a
    connected component of the unit-period graph of anchor observations. Observations in
    periods or of units outside the largest component are dropped (otherwise the solver
    would drop an arbitrary collinear interaction and re-normalise a whole cohort).
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n0 = len(df)
    for _ in range(20):
        anchor = ((df[COHORT] == 0) | (df[REL] == ref)).to_numpy()
        ucodes, uniq_u = pd.factorize(df[UNIT])
        tcodes, uniq_t = pd.factorize(df[TIME])
        nu, nt = len(uniq_u), len(uniq_t)
        a_u, a_t = ucodes[anchor], tcodes[anchor]
        graph = coo_matrix((np.ones(len(a_u)), (a_u, nu + a_t)), shape=(nu + nt, nu + nt))
        _, lab = connected_components(graph, directed=False)
        comp_t = lab[nu:]
        anchored_t = np.zeros(nt, dtype=bool)
        anchored_t[np.unique(a_t)] = True
        sizes = np.bincount(comp_t[anchored_t], minlength=lab.max() + 1)
        main = int(np.argmax(sizes))
        ok_t = (comp_t == main) & anchored_t
        has_anchor_u = np.zeros(nu, dtype=bool)
        has_anchor_u[np.unique(a_u)] = True
        ok_u = ~has_anchor_u | (lab[:nu] == main)  # units without anchors are harmless
        keep = ok_t[tcodes] & ok_u[ucodes]
        if keep.all():
            break
        df = df[keep]
    n_drop = n0 - len(df)
    msg = None
    if n_drop:
        msg = (
            f"dropped {n_drop} observation(s) whose period or unit is not linked to the "
            "rest by control / reference-period observations (effects not identified)"
        )
    return df, msg


def sun_abraham(
    data: pd.DataFrame,
    *args: Any,
    alpha: float = 0.05,
    fallback_last_treated: bool = True,
    min_control_coverage: float = 0.5,
    min_untreated_per_period: int = MIN_UNTREATED_PER_PERIOD,
    jackknife: bool = False,
    **kwargs: Any,
) -> EstimateResult:
    """Interaction-weighted event study (see module docstring). Call as
    ``sun_abraham(data, outcome, unit, time, cohort, **design)`` or ``(data, design)``.

    ``control_group``: ``"auto"`` (never-treated if present, else last-treated),
    ``"never_treated"`` or ``"last_treated"`` (the last cohort, plus any never-treated).
    With ``"never_treated"`` but no never-treated unit with data, the last-treated cohort is
    used instead (warning), unless ``fallback_last_treated=False`` (then an error).
    The last-treated control cohort is the latest cohort whose units are observed in at
    least ``min_control_coverage`` of the unit-periods before its start (later cohorts,
    observed too sparsely to anchor the time effects, join it as controls).
    Returns ``att_gt`` rows (cohort-specific ``delta_{g,e}``), ``event_time`` rows
    (interaction-weighted, plus the reference row with estimate 0), one ``overall`` row
    (post-period cells weighted by their numbers of treated observations) and the
    event-time covariance matrix in ``.vcov``.

    ``min_untreated_per_period``: the last-treated control group must have at least this
    many units, and periods in which fewer control units are observed are dropped (the
    dropped (cohort, period) cells are listed in ``info["dropped_cells"]`` and counted in
    the warnings): their time effects would rest on a handful of municipalities (see
    :func:`.twfe.period_support`).

    ``jackknife``: event-time and overall SEs from the cluster jackknife (CV3, t(G - 1)
    intervals, :mod:`.jackknife`): the interactions re-estimated without each cluster and
    re-aggregated with the cohort shares of the remaining clusters.
    """
    if not (args and isinstance(args[0], Design)):
        kwargs.setdefault("control_group", "auto")
    design, opts = design_args(data, args, kwargs)
    if opts:
        raise TypeError(f"unexpected option(s) {sorted(opts)}")
    control_group, anticipation, event_window = design.control_group, design.anticipation, design.window
    if control_group not in ("auto", "never_treated", "last_treated", "not_yet_treated"):
        raise ValueError(f"unknown control_group {control_group!r} for sun_abraham")
    panel = prepare_panel(data, design)
    df = panel.df
    warns = panel.warnings
    ref = -1 - anticipation
    has_never = bool((df[COHORT] == 0).any())
    cohorts = sorted(int(g) for g in df[COHORT].unique() if g > 0)
    use_last = control_group == "last_treated" or (
        control_group in ("auto", "not_yet_treated") and not has_never
    )
    info: dict = {"reference": ref}
    if control_group == "never_treated" and not has_never:
        if not fallback_last_treated:
            raise ValueError(
                "sun_abraham: control_group='never_treated' but no never-treated units with data"
            )
        use_last = True
        warns.append(
            "control_group never_treated: no never-treated unit with data; the "
            "last-treated cohort serves as never-treated (as R did/csdid do)"
        )
    if use_last:
        if len(cohorts) < 2:
            raise ValueError("sun_abraham: the last-treated control needs >= 2 cohorts")
        g_last, skipped = _control_cohort(
            df, cohorts, anticipation, min_control_coverage, min_untreated_per_period
        )
        cutoff = g_last - anticipation
        n_before = len(df)
        df = df[df[TIME] < cutoff].copy()
        df.loc[df[COHORT] >= g_last, [COHORT, REL]] = [0, np.nan]
        cohorts = [g for g in cohorts if g < g_last]
        info.update(control="last_treated", control_cohort=g_last)
        if skipped:
            warns.append(
                f"later cohort(s) {skipped} have (with all later cohorts) fewer than "
                f"{min_untreated_per_period} units or pre-treatment data in fewer than "
                f"{min_control_coverage:.0%} of the unit-periods before their start: cohort "
                f"{g_last} is the control cohort (later cohorts are controls too)"
            )
        warns.append(
            f"control = last-treated cohort {g_last}; dropped {n_before - len(df)} "
            f"observation(s) in periods >= {cutoff}"
        )
    else:
        info.update(control="never_treated")
    # periods with too few control units: their time effects are not credibly identified
    n_ctrl = df.loc[df[COHORT] == 0].groupby(TIME)[UNIT].nunique()
    n_ctrl = n_ctrl.reindex(np.sort(df[TIME].unique()), fill_value=0)
    thin_t = n_ctrl.index[n_ctrl < max(int(min_untreated_per_period), 1)]
    info["dropped_cells"] = []
    if len(thin_t):
        thin = df[TIME].isin(thin_t).to_numpy()
        info["dropped_cells"] = unsupported_cells(df, thin & (df[COHORT] > 0).to_numpy())
        warns.append(
            f"dropped {int(thin.sum())} observation(s) in {len(thin_t)} period(s) with fewer "
            f"than {min_untreated_per_period} control units (periods "
            + ", ".join(f"{int(t)} ({int(n_ctrl[t])})" for t in thin_t)
            + f"); {len(info['dropped_cells'])} treated (cohort, period) cell(s) in "
            "info['dropped_cells']"
        )
        df = df[~thin]
    rel = df[REL]
    if event_window is not None:
        lo, hi = (int(v) for v in event_window)
        if not lo <= ref <= hi:
            raise ValueError(f"event window {(lo, hi)} must contain the reference period {ref}")
        outside = rel.notna() & ((rel < lo) | (rel > hi))
        if outside.any():
            warns.append(
                f"dropped {int(outside.sum())} treated observation(s) outside the "
                f"event window [{lo}, {hi}]"
            )
            df = df[~outside]
    # cohorts without an observation at the reference period are not identified
    has_ref = set(df.loc[df[REL] == ref, COHORT].astype(int))
    lost = [g for g in cohorts if g not in has_ref]
    if lost:
        warns.append(
            f"cohort(s) {lost} have no observation at the reference period {ref}; "
            "dropped (not identified)"
        )
        df = df[~df[COHORT].isin(lost)]
        cohorts = [g for g in cohorts if g not in lost]
    if not cohorts:
        raise ValueError("sun_abraham: no identified treated cohort")
    df, dropped = _identified_sample(df, ref)
    if dropped:
        warns.append(dropped)
    df = df.reset_index(drop=True)
    treated = (df[COHORT] > 0) & (df[REL] != ref)
    cell = pd.MultiIndex.from_arrays(
        [df.loc[treated, COHORT].astype(int), df.loc[treated, REL].astype(int)]
    )
    cells = sorted(set(cell))
    code = np.full(len(df), -1)
    code[treated.to_numpy()] = pd.Index(cells).get_indexer(cell)
    names = [f"_c{k}" for k in range(len(cells))]
    rows_t = np.flatnonzero(treated.to_numpy())
    E = sp.csr_matrix((np.ones(len(rows_t)), (rows_t, code[rows_t])), shape=(len(df), len(cells)))
    panel.df = df  # the estimation sample
    fit = fit_panel(panel, None, E, names)
    coef = fit.series()
    vfull = np.atleast_2d(fit.vcov)
    kept = [n for n in names if n in coef.index]
    if len(kept) < len(names):
        warns.append(f"{len(names) - len(kept)} interaction(s) dropped as collinear")
    pos = {n: i for i, n in enumerate(coef.index)}
    cell_of = dict(zip(names, cells, strict=False))
    kcells = [cell_of[n] for n in kept]
    idx = [pos[n] for n in kept]
    delta = coef[kept].to_numpy()
    V = vfull[np.ix_(idx, idx)]
    se_delta = np.sqrt(np.clip(np.diag(V), 0, None))
    # cohort shares among treated observations at each relative period
    mass = (
        df.loc[treated].groupby([COHORT, REL])[W].sum()
        if panel.weighted
        else df.loc[treated].groupby([COHORT, REL]).size()
    )
    n_ge = np.array([float(mass.get((g, e), 0.0)) for g, e in kcells])
    e_of = np.array([e for _, e in kcells])
    events = sorted(set(e_of.tolist()))
    Wm = np.zeros((len(events), len(kcells)))
    for i, e in enumerate(events):
        sel = e_of == e
        Wm[i, sel] = n_ge[sel] / n_ge[sel].sum()
    beta = Wm @ delta
    Vb = Wm @ V @ Wm.T
    se_b = np.sqrt(np.clip(np.diag(Vb), 0, None))
    post = e_of >= 0
    wo = np.where(post, n_ge, 0.0)
    overall = overall_se = np.nan
    if wo.sum() > 0:
        wo = wo / wo.sum()
        overall = float(wo @ delta)
        overall_se = float(np.sqrt(max(wo @ V @ wo, 0.0)))
    att = pd.DataFrame(
        {
            "kind": "att_gt",
            "term": [f"g{g}_e{e:+d}" for g, e in kcells],
            "cohort": [g for g, _ in kcells],
            "time": [g + e for g, e in kcells],
            "event_time": e_of,
            "estimate": delta,
            "se": se_delta,
        }
    )
    es = pd.DataFrame(
        {
            "kind": "event_time",
            "term": [f"e{e:+d}" for e in events],
            "event_time": events,
            "estimate": beta,
            "se": se_b,
        }
    )
    ref_row = pd.DataFrame(
        {"kind": ["event_time"], "term": ["reference"], "event_time": [ref], "estimate": [0.0]}
    )
    ov = pd.DataFrame(
        {"kind": ["overall"], "term": ["att"], "estimate": [overall], "se": [overall_se]}
    )
    table = pd.concat([ov, es, ref_row, att], ignore_index=True)
    table = table.sort_values(["kind", "event_time", "cohort"], kind="stable", ignore_index=True)
    table = table.assign(**normal_inference(table["estimate"], table["se"], alpha))
    table.loc[table["term"] == "reference", ["ci_low", "ci_high"]] = np.nan
    if jackknife:
        est_m = _jackknife_aggregates(panel, E, names, kept, kcells, df, treated, e_of, events, ref)
        terms = [f"e{e:+d}" for e in events] + ["att"]
        pos = {t: i for i, t in enumerate(table["term"])}
        rows = np.array([pos[t] for t in terms])
        info.update(apply_jackknife(table, rows, est_m, alpha))
        Vb = jackknife_vcov(est_m[:, :len(events)])
    info.update(
        n_interactions=len(kept),
        cohorts=cohorts,
        weights={
            int(e): dict(
                zip(
                    [int(g) for g, ee in kcells if ee == e], Wm[i, e_of == e].tolist(), strict=False
                )
            )
            for i, e in enumerate(events)
        },
    )
    info["headline"] = {"term": "att", "aggregation": "observations"}
    # the treated observations behind the estimated cells (the reference period excluded)
    in_cell = code >= 0
    kept_codes = {names.index(n) for n in kept}
    in_kept = np.isin(code, list(kept_codes)) & in_cell & (df[REL].to_numpy() >= -anticipation)
    used = used_frame(panel, in_kept, headline=in_kept & (df[REL].to_numpy() >= 0))
    combos = {f"e{e:+d}": {j: float(v) for j, v in zip(idx, Wm[i], strict=True) if v}
              for i, e in enumerate(events)}
    if np.isfinite(overall):
        combos["att"] = {j: float(v) for j, v in zip(idx, wo, strict=True) if v}
    return EstimateResult(
        "sun_abraham",
        table,
        int(df[UNIT].nunique()),
        int(fit.n),
        int(df[CL].nunique()),
        warns,
        info,
        vcov=pd.DataFrame(Vb, index=events, columns=events),
        used=used,
        boot_source=wcr_source(fit, combos),
    )
