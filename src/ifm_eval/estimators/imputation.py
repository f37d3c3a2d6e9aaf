"""Borusyak, Jaravel & Spiess (2024) imputation estimator.

1. Fit ``y_it = a_i + l_t (+ X_it'b) + e_it`` on the untreated observations only
   (``D_it = 0``: never-treated and not-yet-treated, with anticipation) with the two-way
   FE engine (:mod:`.fe`; absorbed effects, no singleton removal: a unit with a single
   untreated period is fine, its effect is fitted exactly).
2. Impute ``Y_it(0)`` for every treated observation from the fitted effects (recovered
   exactly by solving the sparse normal equations, see :class:`FESolver`) and average
   ``tau_it = Y_it - Y_it(0)`` by event time, cohort, calendar time and overall.
3. Standard errors: the conservative clustered variance of BJS (2024) Theorem 3,
   ``sum_c (sum_{it in c} v_it eps~_it)^2``, with the implied weights ``v_it`` of the
   untreated observations ``v_0 = -Omega_0 Z_0 (Z_0' Omega_0 Z_0)^{-1} Z_1' w_1`` and the
   auxiliary residuals of eq. (8) with a cohort x event-time partition: ``eps~ = tau_it -
   tau~_g`` with ``tau~_g = sum_c a_cg b_cg / sum_c a_cg^2`` (``a_cg = sum v``, ``b_cg = sum v
   tau``, sums within cluster ``c`` and group ``g``); no leave-one-out correction.

Treated observations whose unit or period has no untreated observation (or whose unit and
period are in different connected components of the untreated unit-period graph) cannot be
imputed: they get weight zero and are reported (count, cohorts) in the warnings. So are
treated observations in periods with fewer than ``min_untreated_per_period`` untreated
units or whose period-specific parameters (period effect, covariate x period slopes) are
not identified from the untreated units of that period (see
:func:`.twfe.period_support`); every such (cohort, period) cell is listed in
``info["dropped_cells"]``. Without a never-treated group this trims the last periods (after
the last cohorts start), i.e. the longest horizons of the earliest cohorts.

No dense dummy matrix is built: the normal equations are solved by eliminating the unit
block (diagonal) and a pseudo-inverse of the Schur complement of periods + covariates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ifm_eval.estimators.design import (
    CL,
    COHORT,
    MIN_UNTREATED_PER_PERIOD,
    REL,
    TC,
    TIME,
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
from ifm_eval.estimators.jackknife import apply_jackknife, jackknife_vcov
from ifm_eval.estimators.results import (
    BootstrapSource,
    EstimateResult,
    JackknifeDraws,
    normal_inference,
)
from ifm_eval.estimators.twfe import fit_panel


class FESolver:
    """Solve ``(Z' Om Z) x = B`` for ``Z = [unit dummies | period dummies | X]`` (sparse).

    The unit block is diagonal and eliminated; the (periods + covariates) Schur complement
    is pseudo-inverted (it is singular by construction). ``Z x`` is unique whenever ``B`` is
    in the row space of ``Z``, which is all that is used here.
    """

    def __init__(
        self,
        ucode: np.ndarray,
        n_units: int,
        tcode: np.ndarray,
        n_times: int,
        X: np.ndarray | None,
        w: np.ndarray,
        rtol: float = 1e-11,
    ):
        self.nu, self.nt = n_units, n_times
        self.k = 0 if X is None else X.shape[1]
        n = len(ucode)
        self.Zu = sp.csr_matrix((np.ones(n), (np.arange(n), ucode)), shape=(n, n_units))
        Zt = sp.csr_matrix((np.ones(n), (np.arange(n), tcode)), shape=(n, n_times))
        self.Zr = sp.hstack([Zt, sp.csr_matrix(X)]).tocsr() if self.k else Zt
        self.w = w
        Wd = sp.diags(w)
        du = np.asarray((self.Zu.T @ Wd @ self.Zu).diagonal()).ravel()
        self.du_inv = np.divide(1.0, du, out=np.zeros_like(du), where=du > 0)
        self.Bur = (self.Zu.T @ Wd @ self.Zr).toarray()  # nu x (nt + k)
        C = (self.Zr.T @ Wd @ self.Zr).toarray()
        S = C - self.Bur.T @ (self.du_inv[:, None] * self.Bur)
        S = (S + S.T) / 2
        lam, Q = np.linalg.eigh(S)
        keep = lam > rtol * max(lam.max(), 1.0)
        self.S_pinv = (Q[:, keep] / lam[keep]) @ Q[:, keep].T
        self.rank_deficiency = int((~keep).sum())

    def solve(self, bu: np.ndarray, br: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return (x_units, x_rest) for right-hand sides split into unit / rest rows."""
        xr = self.S_pinv @ (br - self.Bur.T @ (self.du_inv[:, None] * bu))
        xu = self.du_inv[:, None] * (bu - self.Bur @ xr)
        return xu, xr


@dataclass
class FirstStage:
    """Untreated-only two-way FE fit and the imputed untreated outcomes."""

    panel: Panel
    df: pd.DataFrame  # prepared frame (all observations)
    untreated: np.ndarray  # bool mask of Omega_0
    imputable: np.ndarray  # bool mask: Omega_0 or treated with both effects estimable
    y0hat: np.ndarray  # fitted/imputed Y(0) (NaN where not imputable)
    resid: np.ndarray  # y - y0hat
    covariates: list[str]  # kept (non-collinear) internal covariate names
    beta: np.ndarray
    ucode: np.ndarray
    tcode: np.ndarray
    n_u: int
    n_t: int
    solver: FESolver  # on Omega_0 with kept covariates
    warnings: list[str] = field(default_factory=list)
    dropped_cells: list[dict] = field(default_factory=list)
    period_table: pd.DataFrame | None = None

    def z_rows(self, mask: np.ndarray) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        """Sparse unit block and (periods + covariates) block of ``Z`` for rows in mask."""
        idx = np.flatnonzero(mask)
        n = len(idx)
        Zu = sp.csr_matrix((np.ones(n), (np.arange(n), self.ucode[idx])), shape=(n, self.n_u))
        Zt = sp.csr_matrix((np.ones(n), (np.arange(n), self.tcode[idx])), shape=(n, self.n_t))
        if self.covariates:
            X, _ = self.panel.regressors(self.df.iloc[idx], self.covariates)
            Zt = sp.hstack([Zt, X]).tocsr()
        return Zu, Zt


def first_stage(
    panel: Panel, min_untreated_per_period: int = MIN_UNTREATED_PER_PERIOD
) -> FirstStage:
    df = panel.df
    warns = panel.warnings
    untreated = df[D].to_numpy() == 0
    if untreated.sum() == 0:
        raise ValueError("no untreated observations to fit the untreated-outcome model")
    supported, ptab = period_support(panel, untreated, min_untreated_per_period)
    fit = fit_panel(panel, untreated, None, [])
    kept = list(fit.names)
    if len(kept) < len(panel.covariates):
        dropped = [panel.label(c) for c in panel.covariates if c not in kept]
        warns.append(f"covariate(s) {dropped} collinear with the fixed effects; dropped")
    beta = fit.coef
    ucode, tcode = df[UC].to_numpy(), df[TC].to_numpy()
    n_u, n_t = panel.n_unit_codes, len(panel.periods)
    w = df[W].to_numpy(float)
    X = panel.regressors(df, kept)[0].toarray() if kept else None
    y = df[Y].to_numpy(float)
    xb = X @ beta if kept else np.zeros(len(df))
    # recover the unit and period effects exactly (FE-only normal equations on y - Xb)
    fe = FESolver(ucode[untreated], n_u, tcode[untreated], n_t, None, w[untreated])
    r0 = (y - xb)[untreated] * w[untreated]
    bu = np.bincount(ucode[untreated], weights=r0, minlength=n_u)[:, None]
    bt = np.bincount(tcode[untreated], weights=r0, minlength=n_t)[:, None]
    a, lam = fe.solve(bu, bt)
    has_u = np.bincount(ucode[untreated], minlength=n_u) > 0
    has_t = np.bincount(tcode[untreated], minlength=n_t) > 0
    # unit and period effects are comparable only within a connected component of the
    # unit-period graph of untreated observations
    from scipy.sparse.csgraph import connected_components

    graph = sp.coo_matrix(
        (np.ones(int(untreated.sum())), (ucode[untreated], n_u + tcode[untreated])),
        shape=(n_u + n_t, n_u + n_t),
    )
    n_comp, lab = connected_components(graph, directed=False)
    imputable = has_u[ucode] & has_t[tcode] & (lab[ucode] == lab[n_u + tcode])
    thin = (~untreated) & imputable & ~supported
    thin_cells = unsupported_cells(df, thin)
    dropped_cells = thin_cells + unsupported_cells(
        df, (~untreated) & ~imputable, reason="no_untreated_observation"
    )
    imputable &= untreated | supported
    if thin.any():
        bad_t = ptab.loc[~ptab["supported"] & (ptab["n_untreated"] > 0)]
        warns.append(
            f"{int(thin.sum())} treated observation(s) in {len(thin_cells)} (cohort, period) "
            f"cell(s) not imputed: their period has fewer than {min_untreated_per_period} "
            "untreated units or its period effects / covariate x period slopes are not "
            "identified from them (periods "
            + ", ".join(
                f"{int(t)} ({int(n)})"
                for t, n in zip(bad_t["time"], bad_t["n_untreated"], strict=True)
            )
            + " [untreated units]); cells in info['dropped_cells']"
        )
    if n_comp > 1 + int((~has_u).sum() + (~has_t).sum()):
        warns.append(
            "the untreated observations form several disconnected unit-period "
            "groups; treated observations are imputed only within their group"
        )
    y0hat = np.where(imputable, a[ucode, 0] + lam[tcode, 0] + xb, np.nan)
    resid = y - y0hat
    # the two solves of the untreated-outcome model must agree
    gap = float(np.max(np.abs(resid[untreated] - fit.resid))) if untreated.any() else 0.0
    if gap > 1e-6 * max(1.0, float(np.nanstd(y))):
        warns.append(f"first-stage residuals of the two solves differ by {gap:.2e}")
    treated = ~untreated
    lost = treated & ~imputable
    if lost.any():
        cohorts = sorted(int(g) for g in df.loc[lost, COHORT].unique())
        warns.append(
            f"{int(lost.sum())} treated observation(s) cannot be imputed (their unit or period "
            f"has no untreated observation); excluded. Cohorts affected: {cohorts}"
        )
    solver = FESolver(
        ucode[untreated], n_u, tcode[untreated], n_t, X[untreated] if kept else None, w[untreated]
    )
    return FirstStage(
        panel,
        df,
        untreated,
        imputable,
        y0hat,
        resid,
        kept,
        beta,
        ucode,
        tcode,
        n_u,
        n_t,
        solver,
        warns,
        dropped_cells,
        ptab,
    )


def _targets(fs: FirstStage, window: tuple[int, int] | None, anticipation: int):
    """Estimand definitions: list of (kind, key, mask over treated imputable rows)."""
    df = fs.df
    t1 = (~fs.untreated) & fs.imputable
    rel = df[REL].to_numpy()
    out: list[tuple[str, int | None, np.ndarray]] = []
    lo, hi = (-anticipation, int(np.nanmax(rel[t1]))) if window is None else window
    lo = max(lo, -anticipation)
    post = t1 & (rel >= 0) & (rel <= hi)
    out.append(("overall", None, post))
    for e in sorted({int(v) for v in rel[t1]}):
        if lo <= e <= hi:
            out.append(("event_time", e, t1 & (rel == e)))
    g = df[COHORT].to_numpy()
    for c in sorted({int(v) for v in g[post]}):
        out.append(("group", c, post & (g == c)))
    tt = df[TIME].to_numpy()
    for t in sorted({int(v) for v in tt[post]}):
        out.append(("calendar", t, post & (tt == t)))
    return out


def _loo_ratio(num_cg: np.ndarray, den_cg: np.ndarray, ncl: int, ng: int) -> np.ndarray:
    """Leave-one-cluster-out ratios ``(sum_c' num - num_c) / (sum_c' den - den_c)`` per
    (cluster, group); NaN where the other clusters carry no weight."""
    num = num_cg.reshape(ncl, ng)
    den = den_cg.reshape(ncl, ng)
    n_o = num.sum(axis=0)[None, :] - num
    d_o = den.sum(axis=0)[None, :] - den
    scale = np.maximum(den.sum(axis=0), 1e-300)[None, :]
    return np.where(d_o > 1e-12 * scale, n_o / np.where(d_o > 0, d_o, 1.0), np.nan).ravel()


def bjs_variance(fs: FirstStage, W1: np.ndarray, leave_out: bool = False) -> np.ndarray:
    """Cluster-level influence sums ``psi`` (n_clusters x m) for estimand weights ``W1``.

    ``W1`` (n x m, dense or sparse) holds the weights on treated imputable rows (zero
    elsewhere), each column summing to one. ``Var = psi' psi`` (conservative, BJS 2024
    Theorem 3).

    ``leave_out``: the auxiliary effects ``tau~_g`` of a treated observation are computed
    without its own cluster (BJS 2024, Section 4.3, leave-out conservative variance). With
    small cohort x event-time groups the plain ``tau~_g`` is close to the observation's own
    effect, its auxiliary residual close to zero, and the variance too small; leaving the
    cluster out removes that own-observation shrinkage. A group whose other clusters carry
    no weight falls back to the leave-out mean of its event time, then to the plain value.
    """
    df = fs.df
    u0 = fs.untreated
    w = df[W].to_numpy(float)
    t1 = (~u0) & fs.imputable
    # v for untreated rows: -Om0 Z0 (Z0'Om0 Z0)^{-1} Z1' w1
    Zu1, Zr1 = fs.z_rows(t1)
    B = W1[np.flatnonzero(t1)]
    ZuB, ZrB = Zu1.T @ B, Zr1.T @ B
    xu, xr = fs.solver.solve(ZuB.toarray() if sp.issparse(ZuB) else np.asarray(ZuB),
                             ZrB.toarray() if sp.issparse(ZrB) else np.asarray(ZrB))
    B = B.toarray() if sp.issparse(B) else np.asarray(B)
    Zu0, Zr0 = fs.z_rows(u0)
    v0 = -(w[u0][:, None]) * (Zu0 @ xu + Zr0 @ xr)
    ccode, ncl = pd.factorize(df[CL])
    ncl = len(ncl)
    cl0, cl1 = ccode[u0], ccode[t1]
    eps0 = fs.resid[u0]
    tau = fs.resid[t1]
    gcode = pd.factorize(pd.MultiIndex.from_arrays([df.loc[t1, COHORT], df.loc[t1, REL]]))[0]
    ng = gcode.max() + 1 if len(gcode) else 0
    cg = cl1 * max(ng, 1) + gcode
    if leave_out:
        ecode, ne = pd.factorize(df.loc[t1, REL])
        ne = len(ne)
        g_to_e = np.zeros(max(ng, 1), dtype=np.int64)
        g_to_e[gcode] = ecode
    psi = np.empty((ncl, W1.shape[1]))
    for j in range(W1.shape[1]):
        v1 = B[:, j]
        a = np.bincount(cg, weights=v1, minlength=ncl * ng)
        b = np.bincount(cg, weights=v1 * tau, minlength=ncl * ng)
        num = np.bincount(np.arange(ncl * ng) % ng, weights=a * b, minlength=ng)
        den = np.bincount(np.arange(ncl * ng) % ng, weights=a * a, minlength=ng)
        ttilde = np.divide(num, den, out=np.zeros(ng), where=den > 1e-300)
        if leave_out:
            loo = _loo_ratio(a * b, a * a, ncl, ng)  # (cluster, group)
            # fallback: leave-out mean of the event time (groups pooled over cohorts)
            ce = np.repeat(np.arange(ncl), ng) * ne + np.tile(g_to_e, ncl)
            num_e = np.bincount(ce, weights=a * b, minlength=ncl * ne)
            den_e = np.bincount(ce, weights=a * a, minlength=ncl * ne)
            loo_e = _loo_ratio(num_e, den_e, ncl, ne)
            t_cg = np.where(np.isfinite(loo), loo, loo_e[ce])
            t_cg = np.where(np.isfinite(t_cg), t_cg, np.tile(ttilde, ncl))
            e1 = tau - t_cg[cg]
        else:
            e1 = tau - ttilde[gcode]
        psi[:, j] = np.bincount(cl1, weights=v1 * e1, minlength=ncl) + np.bincount(
            cl0, weights=v0[:, j] * eps0, minlength=ncl
        )
    return psi


def imputation_jackknife(fs: FirstStage, W1: sp.csr_matrix, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Leave-one-cluster-out estimates of the targets ``cols`` of ``W1`` (exact for the
    untreated-outcome model; the imputable set and the kept covariates are those of the full
    sample). Returns (G x len(cols) estimates, full-sample estimates from the same solve)."""
    from ifm_eval.estimators.fe import cluster_jackknife

    df = fs.df
    u0 = fs.untreated
    w = df[W].to_numpy(float)
    y = df[Y].to_numpy(float)
    ccode, levels = pd.factorize(df[CL])
    ncl = len(levels)
    _, Zr0 = fs.z_rows(u0)
    jk = cluster_jackknife(fs.ucode[u0], fs.n_u, Zr0, w[u0], y[u0], ccode[u0], ncl)
    # rows of the targets: treated imputable ones, or untreated ones (e.g. Gardner's
    # pre-period dummies); a unit's effect without another cluster uses its own rows only
    t1 = (fs.imputable | u0) & (np.asarray(abs(W1[:, cols]).sum(axis=1)).ravel() > 0)
    idx = np.flatnonzero(t1)
    _, Zr1 = fs.z_rows(t1)
    u1 = fs.ucode[idx]
    inv = np.divide(1.0, jk.w_u, out=np.zeros_like(jk.w_u), where=jk.w_u > 0)
    D = Zr1.toarray() - inv[u1, None] * jk.B_u[u1]
    y1 = y[idx] - inv[u1] * jk.r_u[u1]
    Wt = W1[idx][:, cols].tocsr()
    c1 = ccode[idx]
    q, s_, Gm = Wt.T @ y1, np.asarray(Wt.sum(axis=0)).ravel(), np.asarray(Wt.T @ D)
    full = (q - Gm @ jk.theta) / np.where(s_ > 0, s_, np.nan)
    out = np.full((ncl, len(cols)), np.nan)
    order = np.argsort(c1, kind="stable")
    bounds = np.r_[0, np.cumsum(np.bincount(c1, minlength=ncl))]
    for g in range(ncl):
        rows = order[bounds[g]:bounds[g + 1]]
        if len(rows):
            Wg = Wt[rows]
            qg, sg, Gg = Wg.T @ y1[rows], np.asarray(Wg.sum(axis=0)).ravel(), np.asarray(Wg.T @ D[rows])
        else:
            qg, sg, Gg = 0.0, 0.0, 0.0
        den = s_ - sg
        with np.errstate(invalid="ignore", divide="ignore"):
            out[g] = np.where(den > 1e-12, (q - qg - (Gm - Gg) @ jk.theta_minus[g]) / den, np.nan)
    return out, full


def _pretrend_rows(
    panel: Panel, fs: FirstStage, lo: int, hi: int, alpha: float
) -> tuple[pd.DataFrame, dict[str, Any]] | None:
    """BJS Test 1: lead coefficients on the untreated observations (see ``imputation``), and
    their covariance (``{"event_times", "matrix"}``)."""
    d0 = fs.df.loc[fs.untreated]
    rel = d0[REL].to_numpy()
    names, leads, cols = [], [], []
    for e in range(lo, hi + 1):
        ind = rel == e
        if ind.any():
            names.append(f"_lead_m{-e}")
            leads.append(e)
            cols.append(ind.astype(float))
    if not names:
        return None
    fit = fit_panel(panel, fs.untreated, np.column_stack(cols), names)
    coef, se = fit.series(), pd.Series(fit.se(), index=fit.names)
    got = [(n, e) for n, e in zip(names, leads, strict=True) if n in coef.index]
    rows = pd.DataFrame(
        {
            "kind": "event_time",
            "term": [f"pre{e:+d}" for _, e in got],
            "event_time": [e for _, e in got],
            "estimate": [coef[n] for n, _ in got],
            "se": [se[n] for n, _ in got],
        }
    )
    idx = [fit.names.index(n) for n, _ in got]
    vcov = {"event_times": [int(e) for _, e in got], "matrix": fit.vcov[np.ix_(idx, idx)].tolist()}
    return rows.assign(**normal_inference(rows["estimate"], rows["se"], alpha)), vcov


def imputation(
    data: pd.DataFrame,
    *args: Any,
    alpha: float = 0.05,
    pretrends: bool = True,
    min_untreated_per_period: int = MIN_UNTREATED_PER_PERIOD,
    leave_out: bool = False,
    jackknife: bool = False,
    **kwargs: Any,
) -> EstimateResult:
    """BJS imputation estimator (see module docstring). Call as ``imputation(data, outcome,
    unit, time, cohort, **design)`` or ``imputation(data, design)``. ``leave_out``: the
    leave-one-cluster-out variance (:func:`bjs_variance`). ``jackknife``: standard errors of the
    headline and event-time rows are the cluster jackknife's (CV3, :func:`imputation_jackknife`)
    and their confidence intervals use t(G - 1) critical values; the BJS SEs stay in
    ``info["se_analytic"]``.

    Returns ``overall`` (treated observations with ``0 <= e <= max(window)``),
    ``event_time`` (each horizon ``-anticipation <= e`` in the window), ``group`` and
    ``calendar`` rows; averages weight the treated observations equally (or by
    ``weights``). ``.vcov`` is the covariance of these event-time rows.

    With ``pretrends`` (and an event window reaching below ``-1 - anticipation``), the
    pre-period ``event_time`` rows (term ``pre-k``) are BJS's separate pre-trend test
    (their Test 1, as ``did_imputation, pretrends()``): a pyfixest regression on the
    untreated observations only of the outcome on lead indicators for ``e`` in
    ``[window min, -1 - anticipation]`` with unit and time effects (and covariates),
    clustered; the omitted category is untreated observations further from treatment.
    They are not imputation estimates and are not in ``.vcov``.

    ``min_untreated_per_period``: treated observations are imputed only in periods with at
    least this many untreated units whose period-specific parameters are identified (see
    the module docstring); the dropped (cohort, period) cells are in
    ``info["dropped_cells"]`` and summarised in the warnings.
    """
    design, opts = design_args(data, args, kwargs)
    if opts:
        raise TypeError(f"unexpected option(s) {sorted(opts)}")
    anticipation = design.anticipation
    panel = prepare_panel(data, design)
    fs = first_stage(panel, min_untreated_per_period)
    window = design.window
    targets = _targets(fs, window, anticipation)
    w = fs.df[W].to_numpy(float)
    ri, ci, vi = [], [], []
    for j, (_, _, m) in enumerate(targets):
        if m.any():
            idx = np.flatnonzero(m)
            ri.append(idx)
            ci.append(np.full(len(idx), j))
            vi.append(w[idx] / w[idx].sum())
    W1 = sp.csr_matrix((np.concatenate(vi), (np.concatenate(ri), np.concatenate(ci))),
                       shape=(len(fs.df), len(targets))) if ri else sp.csr_matrix((len(fs.df), len(targets)))
    est = np.asarray(W1.T @ np.nan_to_num(fs.resid)).ravel()
    psi = bjs_variance(fs, W1, leave_out=leave_out)
    V = psi.T @ psi
    se = np.sqrt(np.clip(np.diag(V), 0, None))
    kinds = [k for k, _, _ in targets]
    keys = [key for _, key, _ in targets]
    table = pd.DataFrame(
        {
            "kind": kinds,
            "estimate": est,
            "se": se,
            "n_obs_cell": [int(m.sum()) for *_, m in targets],
        }
    )
    table["event_time"] = [
        k if kd == "event_time" else None for kd, k in zip(kinds, keys, strict=False)
    ]
    table["cohort"] = [k if kd == "group" else None for kd, k in zip(kinds, keys, strict=False)]
    table["time"] = [k if kd == "calendar" else None for kd, k in zip(kinds, keys, strict=False)]
    table["term"] = [
        "att"
        if kd == "overall"
        else f"e{k:+d}"
        if kd == "event_time"
        else f"g{k}"
        if kd == "group"
        else f"t{k}"
        for kd, k in zip(kinds, keys, strict=False)
    ]
    table = table.assign(**normal_inference(table["estimate"], table["se"], alpha))
    terms = list(table["term"])  # the columns of psi (before the pre-trend rows are added)
    jk_info: dict[str, Any] = {}
    jk_draws = None
    if jackknife:
        cols = np.array([j for j, kd in enumerate(kinds) if kd in ("overall", "event_time")])
        jk_est, jk_full = imputation_jackknife(fs, W1, cols)
        # rows of jk_est follow imputation_jackknife's cluster coding (order of appearance)
        jk_draws = JackknifeDraws(pd.factorize(fs.df[CL])[1].to_numpy(), [terms[j] for j in cols], jk_est)
        gap = float(np.nanmax(np.abs(jk_full - est[cols]))) if len(cols) else 0.0
        if gap > 1e-6 * max(1.0, float(np.nanmax(np.abs(est[cols])))):
            fs.warnings.append(f"jackknife's full-sample solve differs from the estimate by {gap:.2e}")
        jk_info = apply_jackknife(table, cols, jk_est, alpha)
        se = table["se"].to_numpy(float)
        V = V.copy()
        V[np.ix_(cols, cols)] = jackknife_vcov(jk_est)
    es = [j for j, kd in enumerate(kinds) if kd == "event_time"]
    ev = [keys[j] for j in es]
    vcov = pd.DataFrame(V[np.ix_(es, es)], index=ev, columns=ev)
    pre_vcov = None
    if pretrends and window is not None and window[0] <= -1 - anticipation:
        pre = _pretrend_rows(panel, fs, window[0], -1 - anticipation, alpha)
        if pre is not None:
            table = pd.concat([pre[0], table], ignore_index=True)
            pre_vcov = pre[1]
    n_used = int((fs.imputable).sum())
    t1 = (~fs.untreated) & fs.imputable
    rel = fs.df[REL].to_numpy()
    lo_w = -anticipation if window is None else max(window[0], -anticipation)
    hi_w = np.inf if window is None else window[1]
    in_rows = t1 & (rel >= lo_w) & (rel <= hi_w)
    used = used_frame(panel, in_rows, headline=in_rows & (rel >= 0))
    return EstimateResult(
        "imputation",
        table.drop(columns="n_obs_cell"),
        panel.n_units,
        n_used,
        panel.n_clusters,
        fs.warnings,
        info={
            "n_untreated": int(fs.untreated.sum()),
            "n_treated_imputed": int(((~fs.untreated) & fs.imputable).sum()),
            "n_treated_not_imputable": int(((~fs.untreated) & ~fs.imputable).sum()),
            "covariates_kept": [
                panel.covariate_names[panel.covariates.index(c)] for c in fs.covariates
            ],
            "beta": fs.beta.tolist(),
            "min_untreated_per_period": int(min_untreated_per_period),
            "dropped_cells": fs.dropped_cells,
            "n_dropped_thin_periods": int(
                sum(c["n_obs"] for c in fs.dropped_cells if c["reason"] == "thin_period")
            ),
            "headline": {"term": "att", "aggregation": "observations"},
            # cluster contributions to the headline's analytic variance (Var = sum psi_c^2)
            "headline_cluster_influence": psi[:, 0].tolist(),
            # covariance of the pre-trend test's lead coefficients (BJS Test 1, CRV1)
            "pretrend_vcov": pre_vcov,
            **jk_info,
        },
        vcov=vcov,
        used=used,
        # the rows of psi follow bjs_variance's cluster coding (order of appearance)
        boot_source=BootstrapSource("multiplier", terms, pd.factorize(fs.df[CL])[1].to_numpy(),
                                    estimates=est, psi=psi),
        jackknife=jk_draws,
    )
