"""Callaway & Sant'Anna (2021) group-time ATTs for balanced panels, vectorised.

Public entry point: :func:`callaway_santanna`. Semantics follow R ``did`` 2.5 and its
Python port ``csdid`` 0.4.3 (which is used as the test oracle):

* ATT(g,t) for every treated cohort ``g`` and period ``t``; ``base_period="varying"``
  compares pre-treatment periods with the previous period and post-treatment (and
  anticipation) periods with the last period before ``g - anticipation``;
  ``"universal"`` always uses the latter (that base cell is reported with att 0 and no
  standard error).
* Controls: never-treated units, or (``"not_yet_treated"``) never-treated units plus
  units whose cohort is later than ``max(t, base) + anticipation``.
* Panel 2x2 estimators as in DRDID: outcome regression (``reg``), normalised
  (Hajek) IPW (``ipw``) and the doubly robust estimator (``dr``) that R ``did`` and
  csdid call for panels, i.e. DRDID's *traditional* ``drdid_panel`` (logit propensity
  score by maximum likelihood, weighted least squares outcome model for controls,
  normalised weights, controls with a propensity score >= 0.995 trimmed).
* Influence functions for every cell (rescaled by ``n / n_cell`` as in R), analytic
  standard errors ``sqrt(sum IF^2) / n``, clustered ``sqrt(sum_c S_c^2) / n`` with
  cluster sums ``S_c``; Rademacher multiplier bootstrap (on cluster sums when
  clustered) with interquartile-range standard errors and sup-t critical values.
* Aggregations as ``did::aggte`` (simple / dynamic / group / calendar) including the
  influence-function correction for estimated cohort-share weights.

Preprocessing as R ``did``: cohorts later than the last period (+ anticipation) are
recoded never-treated; units treated in the first period (+ anticipation) are dropped;
without never-treated units, periods from ``last cohort - anticipation`` on are dropped
and the last cohort only serves as control (``"never_treated"``: it is recoded as
never treated); units missing a period are dropped to balance the panel.

Overlap / feasibility (as R ``did``): a ``dr``/``ipw`` cell whose unweighted logit of
treatment on the covariates reaches a fitted score of 0.999 (or separates perfectly)
is dropped; a ``reg``/``dr`` cell whose control-unit design is singular, or a
``dr``/``ipw`` cell whose full design is singular, is dropped; a cell without control
units, or whose controls are all trimmed, is dropped. Dropped cells keep a row in
``att_gt`` with NaN estimates, are listed in ``dropped_cells`` with the reason and
produce one message in ``warnings``; aggregations skip them (``na.rm = TRUE``).

Differences from csdid/R did
----------------------------
Point estimates and analytic SEs agree with csdid 0.4.3 to machine precision
(tests require 1e-8 / 1e-6; observed <= 4e-15 over the full option grid, 384 fits).
Deliberate differences:

* Randomness: the multiplier bootstrap draws Rademacher weights (as R did / csdid)
  from our own ``numpy.random.Generator`` seeded by ``seed`` (csdid uses the global
  NumPy RNG, R its own), so bootstrap SEs and bands agree only in distribution. The
  bootstrap of an aggregation uses one set of draws for the SEs and the sup-t value
  (R draws twice). For fits without covariates the draws are applied to the
  factored influence function (cohort sums), which is exact but assigns draws to
  units in cohort order.
* Missing cells are always skipped in aggregations (R/csdid need ``na.rm = TRUE`` and
  raise otherwise), with a note in the aggregate's ``warnings``.
* ``influence`` columns of dropped cells (and of universal base cells) are 0, not NaN;
  the cells are flagged by ``att_gt["dropped"]`` / ``att_gt["universal_base"]``.
* Without bootstrap draws no simultaneous band is computed: ``cband_low/high`` are
  NaN (R silently runs a bootstrap when ``cband=TRUE, bstrap=FALSE``). With draws,
  ATT(g,t) and aggregated SEs are bootstrap SEs (as R with ``bstrap=TRUE``); a sup-t
  critical value below the pointwise one is replaced by the pointwise one (as R).
* Covariates, sampling weights and the cluster variable are taken from each unit's
  first period. R/csdid take covariates and weights from the earlier period of each
  2x2 comparison; results are identical when they are time-invariant within unit (we
  add a message to ``warnings`` when they are not; a time-varying cluster variable is
  an error, as in R).
* The propensity-score logit is fitted by our own numpy IRLS, which follows the path
  and stopping rule of statsmodels' ``GLM(Binomial).fit()`` used by csdid (start at
  ``(y + 1/2) / 2``, stop when the deviance changes by <= 1e-8). This is deliberate:
  under quasi-separation (tiny late cohorts) whether a cell is dropped depends on
  where the iterations stop, and the exact MLE would drop cells that csdid keeps.
  (R's ``glm`` uses a relative deviance criterion; in such borderline cells R and
  csdid can themselves disagree; we follow csdid.)
* Only balanced panels (units missing a period are dropped with a message); no
  repeated cross sections, ``allow_unbalanced_panel``, ``fix_weights``, Wald pre-test
  or custom estimators.
* Cells R would set to NA because its 2x2 routine fails are detected by the same
  rules implemented directly (overlap 0.999, singular designs via 1-norm rcond < eps,
  all controls trimmed, no controls); the reason strings are our own.

Implementation
--------------
The panel is reshaped once to an (n_units x n_periods) outcome matrix. Without
covariates every 2x2 estimator reduces to treated-minus-control mean changes, computed
for all cells from cohort-by-period sums; the influence functions are kept in factored
form (cohort, period-pair and per-cell coefficients), from which SEs, cluster sums,
aggregations and bootstrap sums are computed without building the dense matrix (built
on first access to ``.influence``). With covariates, cells sharing an estimation
sample (cohort g and the same control cohorts) are estimated together: one logit per
sample, then closed-form WLS moments and influence functions for all its cells. The
logits of small samples are fitted in stacked batches (``logit_irls_batch``: each
sample keeps its own start, IRLS path and stopping rule, so only rounding differs;
no warm starts, which would move the stopping point and hence overlap decisions),
and design-singularity checks are batched. The bootstrap draws for ATT(g,t) are
reused for the aggregations; bootstrap SEs use exact order statistics from row sorts.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.stats import norm

from ._cs_influence import (
    EPS,
    OVERLAP_LEVEL,
    PS_CAP,
    TRIM_LEVEL,
    DenseInfluence,
    NocovInfluence,
    analytic_se,
    att_cov_group,
    boot_stats,
    cluster_sums,
    logit_irls,
    logit_irls_batch,
    multiplier_bootstrap,
    nocov_tables,
    rcond1_batch,
)
from .jackknife import apply_jackknife, jackknife_vcov
from .results import BootstrapSource, EstimateResult, JackknifeDraws

__all__ = ["callaway_santanna", "CSResult", "CSAggregate"]

_CHUNK_ELEMENTS = 1_500_000  # n_units x cells per vectorised chunk
_LOGIT_BATCH_ROWS = 20_000  # stacked sample rows per batched-logit chunk
_LOGIT_BATCH_MAX_SAMPLE = 4_000  # larger samples are fitted one at a time


def _factorize_sorted(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted unique values, code of every element) of a float array; integer-valued
    arrays with a small range are coded by counting instead of sorting."""
    if a.size:
        lo, hi = a.min(), a.max()
        if np.isfinite(lo) and np.isfinite(hi) and hi - lo <= 4 * a.size + 4096:
            off = a - lo
            ai = off.astype(np.intp)
            if np.array_equal(ai, off):
                present = np.bincount(ai) > 0
                vals = np.flatnonzero(present) + lo
                return vals, (np.cumsum(present) - 1)[ai]
    vals, code = np.unique(a, return_inverse=True)
    return vals, code.ravel()


def _rng(seed, key: int) -> np.random.Generator:
    if seed is None:
        return np.random.default_rng()
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(key,)))


@dataclass
class CSAggregate:
    """Aggregated effects (``did::aggte``): ``overall`` / ``overall_se``, ``table`` (one
    row per event time / cohort / period; None for ``simple``), ``influence`` (n_units x
    table rows), ``influence_overall`` (n_units), ``crit_val`` (sup-t value, NaN without
    bootstrap draws) and ``warnings``."""

    kind: str
    overall: float
    overall_se: float
    table: pd.DataFrame | None
    influence: np.ndarray  # n_units x n_rows of table (overall IF in influence_overall)
    influence_overall: np.ndarray
    crit_val: float
    warnings: list[str] = field(default_factory=list)


@dataclass
class CSResult:
    """Result of :func:`callaway_santanna`."""

    att_gt: pd.DataFrame
    _op: object = field(repr=False)
    dropped_cells: pd.DataFrame
    warnings: list[str]
    units: np.ndarray
    n_units: int
    n_clusters: int | None
    crit_val: float
    # internals for aggregation
    _unit_cohort: np.ndarray = field(repr=False, default=None)
    _unit_weight: np.ndarray = field(repr=False, default=None)
    _cluster_codes: np.ndarray | None = field(repr=False, default=None)
    _n_boot: int = 0
    _seed: object = None
    _alpha: float = 0.05
    _coh_vals: np.ndarray = field(repr=False, default=None)
    _ucode: np.ndarray = field(repr=False, default=None)
    _boot_store: dict | None = field(repr=False, default=None)
    _data: CSData | None = field(repr=False, default=None)
    _cells: CSCells | None = field(repr=False, default=None)

    # ------------------------------------------------------------------ #
    @property
    def influence(self) -> np.ndarray:
        """(n_units x n_cells) influence functions, rows in ``units`` order, columns in
        ``att_gt`` order (R did scaling: SE = sqrt(sum IF^2) / n). Columns of dropped
        cells and universal base cells are zero. Built on first access for fits
        without covariates (held in factored form until then)."""
        return self._op.full()

    def to_result(self, window: tuple[int, int] | None = None, balance_e: int | None = None,
                  jackknife: bool = False) -> EstimateResult:
        """The result in the tidy schema of :mod:`.results`: every ATT(g,t) cell (``att_gt``),
        the aggregations of ``did::aggte`` (``overall`` rows ``att``/``dynamic``/``group``/
        ``calendar`` and their ``event_time``/``group``/``calendar`` tables; the dynamic one
        restricted to ``window``), the dropped cells in ``info`` and the treated
        observations behind the estimated post-treatment cells (``used``). With
        ``jackknife`` (outcome regression only) the dynamic rows' standard errors are the
        exact cluster jackknife's (CV3, :meth:`jackknife`) with t(G - 1) intervals; the
        analytic ones stay in ``info["se_analytic"]``."""
        lo, hi = window if window is not None else (None, None)
        a = self.att_gt
        rows = [pd.DataFrame({
            "kind": "att_gt", "term": [f"g{int(g)}_t{int(t)}" for g, t in zip(a["cohort"], a["time"], strict=True)],
            "cohort": a["cohort"], "time": a["time"], "event_time": a["event_time"], "estimate": a["att"],
            "se": a["se"], "ci_low": a["ci_low"], "ci_high": a["ci_high"],
            "cband_low": a["cband_low"], "cband_high": a["cband_high"]})]
        warns = list(self.warnings)
        label = {"dynamic": "event_time", "group": "cohort", "calendar": "time"}
        boot_source = None
        kind_of = {"dynamic": "event_time", "group": "group", "calendar": "calendar"}
        headline_events: list[int] = []
        for agg_kind in ("simple", "dynamic", "group", "calendar"):
            try:
                if agg_kind == "dynamic":
                    agg = self.aggregate("dynamic", min_e=lo, max_e=hi, balance_e=balance_e)
                else:
                    agg = self.aggregate(agg_kind)
            except ValueError as exc:  # e.g. no event time in the window: report, keep the rest
                if agg_kind == "simple":
                    raise
                warns.append(f"aggregate {agg_kind} failed: {exc}")
                continue
            warns.extend(f"aggregate {agg_kind}: {w}" for w in agg.warnings)
            rows.append(pd.DataFrame({"kind": ["overall"], "term": ["att" if agg_kind == "simple" else agg_kind],
                                      "estimate": [agg.overall], "se": [agg.overall_se]}))
            if agg_kind != "simple" and agg.table is not None:
                t = agg.table
                key = label[agg_kind]
                prefix = {"event_time": "e", "cohort": "g", "time": "t"}[key]
                frame = pd.DataFrame({
                    "kind": kind_of[agg_kind],
                    "term": [f"{prefix}{int(v):+d}" if key == "event_time" else f"{prefix}{int(v)}" for v in t[key]],
                    "estimate": t["estimate"], "se": t["se"], "ci_low": t["ci_low"], "ci_high": t["ci_high"],
                    "cband_low": t["cband_low"], "cband_high": t["cband_high"]})
                frame["event_time" if key == "event_time" else key] = t[key].to_numpy()
                rows.append(frame)
                if agg_kind == "dynamic":
                    headline_events = [int(e) for e, v in zip(t["event_time"], t["estimate"], strict=True)
                                       if e >= 0 and np.isfinite(v)]
                    boot_source = self._boot_source(agg)
        table = pd.concat(rows, ignore_index=True)
        info: dict[str, Any] = {"headline": {"term": "dynamic", "aggregation": "event_time_mean",
                                             "event_times": headline_events}}
        vcov = None
        if boot_source is not None:  # analytic covariance of the event-time rows: psi' psi
            ev = [int(t[1:]) for t in boot_source.terms[:-1]]
            P = boot_source.psi[:, :-1]
            vcov = pd.DataFrame(P.T @ P, index=ev, columns=ev)
        if jackknife:
            if balance_e is not None:
                raise ValueError("the cluster jackknife does not support balance_e")
            jk = self.jackknife(window)
            sel = (table["kind"] == "event_time") & table["event_time"].isin(jk["event_times"])
            ov = (table["kind"] == "overall") & (table["term"] == "dynamic")
            pos = {int(e): j for j, e in enumerate(jk["event_times"])}
            idx = np.r_[[pos[int(e)] for e in table.loc[sel, "event_time"]], len(jk["event_times"])].astype(int)
            rows_ix = np.r_[np.flatnonzero(sel), np.flatnonzero(ov)]
            gap = float(np.nanmax(np.abs(jk["full"][idx] - table.loc[rows_ix, "estimate"].to_numpy(float))))
            if gap > 1e-8 * max(1.0, float(np.nanmax(np.abs(jk["full"])))):
                warns.append(f"jackknife's full-sample aggregation differs from the estimate by {gap:.2e}")
            jk_terms = list(table.loc[rows_ix, "term"])
            info.update(apply_jackknife(table, rows_ix, jk["estimates"][:, idx], self._alpha))
            jk_labels = (np.asarray(self.units) if self._data.codes is None
                         else np.asarray(self._data.cluster_labels))
            jk_draws = JackknifeDraws(jk_labels, jk_terms, jk["estimates"][:, idx])
            table.loc[rows_ix, ["cband_low", "cband_high"]] = np.nan
            ev = [int(e) for e in table.loc[sel, "event_time"]]
            vcov = pd.DataFrame(jackknife_vcov(jk["estimates"][:, idx[:-1]]), index=ev, columns=ev)
        dropped = self.dropped_cells
        if len(dropped):
            warns.append(f"{len(dropped)} ATT(g,t) cell(s) dropped (no overlap / no data / few comparison units)")
            info["dropped_cells"] = dropped.astype(object).where(dropped.notna(), None).to_dict(orient="records")
        return EstimateResult("callaway_santanna", table, int(self.n_units), None, self.n_clusters, warns, info,
                              vcov=vcov, used=self.used(), boot_source=boot_source,
                              jackknife=jk_draws if jackknife else None)

    def _boot_source(self, agg: CSAggregate) -> BootstrapSource:
        """Cluster influence sums of the dynamic aggregation (event times and overall):
        ``psi_c = sum_{i in c} IF_i / n`` (R did scaling, ``Var = psi' psi``)."""
        F = np.column_stack([agg.influence, agg.influence_overall])
        if self._cluster_codes is None:
            codes, G, labels = np.arange(self.n_units), int(self.n_units), np.asarray(self.units)
        else:
            codes, G = self._cluster_codes, int(self.n_clusters)
            labels = self._data.cluster_labels
        psi = cluster_sums(np.nan_to_num(F), codes, G) / self.n_units
        t = agg.table
        terms = [f"e{int(e):+d}" for e in t["event_time"]] + ["dynamic"]
        return BootstrapSource("multiplier", terms, labels, estimates=np.r_[t["estimate"].to_numpy(float), agg.overall],
                               psi=psi)

    def jackknife(self, window: tuple[int, int] | None = None) -> dict[str, Any]:
        """Exact leave-one-cluster-out estimates of the dynamic aggregation (each event time
        in ``window`` and their post-period mean, did::aggte ``dynamic``) for the
        outcome-regression estimator (``method="reg"``): per cell the control units' WLS and
        the treated means are recomputed without the cluster from cohort x cluster x period
        sums, the cohort shares too. The cells estimated (and dropped) are those of the full
        sample. Returns ``{"event_times", "estimates" (G x (E + 1): event times, then the
        mean over the post ones), "full", "n_clusters"}``."""
        d, c = self._data, self._cells
        if d is None or c is None:
            raise ValueError("jackknife needs the fitted data (fit with callaway_santanna)")
        if d.method != "reg":
            raise ValueError(f"the exact cluster jackknife is implemented for method='reg' (fit: {d.method!r})")
        n = d.n
        ncoh = len(d.coh_vals)
        if d.codes is None:
            cl, G = np.arange(n), n
        else:
            cl, G = d.codes, int(d.n_clusters)
        w = d.wun / d.wun.mean()
        X, Y, uc = d.X, d.Y, d.ucode
        key = uc * G + cl  # cohort x cluster cell of every unit
        nk = ncoh * G
        def csum(vals):  # sums over units per (cohort, cluster): (ncoh, G, ...)
            vals = np.asarray(vals)
            out = np.zeros((nk,) + vals.shape[1:])
            np.add.at(out, key, vals)
            return out.reshape((ncoh, G) + vals.shape[1:])
        Gx = csum(w[:, None, None] * X[:, :, None] * X[:, None, :])  # (ncoh, G, k, k)
        Sx = csum(w[:, None] * X)  # (ncoh, G, k)
        Sw = csum(w)  # (ncoh, G)
        RY = csum(w[:, None, None] * X[:, :, None] * Y[:, None, :])  # (ncoh, G, k, nT)
        SY = csum(w[:, None] * Y)  # (ncoh, G, nT)
        a = self.att_gt
        lo, hi = (-np.inf, np.inf) if window is None else window
        e_all = a["event_time"].to_numpy(float)
        ok = a["att"].notna().to_numpy() & ~a["universal_base"].to_numpy() & (e_all >= lo) & (e_all <= hi)
        cells = np.flatnonzero(ok)
        ctrl = c.ctrl_coh[cells].astype(float)  # (m, ncoh)
        g = c.gcode[cells]
        tt, bb = c.tcol[cells], c.bcol[cells]
        A_q = np.einsum("mh,hqab->mqab", ctrl, Gx)  # control Gram by cluster
        A_full = A_q.sum(axis=1)
        dR = RY[:, :, :, tt] - RY[:, :, :, bb]  # (ncoh, G, k, m)
        r_q = np.einsum("mh,hqam->mqa", ctrl, dR)
        r_full = r_q.sum(axis=1)
        A_minus = A_full[:, None] - A_q  # (m, G, k, k)
        r_minus = r_full[:, None] - r_q
        # without the cluster a cell is dropped as the full fit would drop it: too few
        # comparison units left, a singular control design, or no treated unit left
        cnt = csum(np.ones(n))  # units per (cohort, cluster)
        n_ctrl_minus = (ctrl @ cnt.sum(axis=1))[:, None] - ctrl @ cnt  # (m, G)
        gone = (n_ctrl_minus < max(int(c.min_controls), 1)) | ((cnt.sum(axis=1)[g][:, None] - cnt[g]) <= 0)
        km = A_minus.shape[-1]
        gone |= (rcond1_batch(A_minus.reshape(-1, km, km)) < EPS).reshape(gone.shape)
        A_minus[gone] = np.eye(km)
        beta_minus = np.linalg.solve(A_minus, r_minus[..., None])[..., 0]  # (m, G, k)
        beta_full = np.linalg.solve(A_full, r_full[..., None])[..., 0]
        m_idx = np.arange(len(cells))
        Tdy = SY[g][m_idx, :, tt] - SY[g][m_idx, :, bb]  # treated outcome changes by cluster (m, G)
        TX, TW = Sx[g], Sw[g]  # (m, G, k), (m, G)
        Tdy_f, TX_f, TW_f = Tdy.sum(axis=1), TX.sum(axis=1), TW.sum(axis=1)
        att_full = (Tdy_f - np.einsum("ma,ma->m", TX_f, beta_full)) / TW_f
        with np.errstate(invalid="ignore", divide="ignore"):
            att_minus = ((Tdy_f[:, None] - Tdy) - np.einsum("mqa,mqa->mq", TX_f[:, None] - TX, beta_minus)) \
                / (TW_f[:, None] - TW)  # (m, G)
        att_minus[gone] = 0.0
        # cohort shares (did::aggte: weighted cohort sizes) without each cluster
        pw = np.zeros((ncoh, G))
        np.add.at(pw, (uc, cl), d.wun)
        pw_full = pw.sum(axis=1)
        e = e_all[cells]
        evs = np.unique(e)
        est_minus = np.full((G, len(evs) + 1), np.nan)
        est_full = np.full(len(evs) + 1, np.nan)
        for j, ev in enumerate(evs):
            sel = e == ev
            gs = g[sel]
            wq = np.where(gone[sel], 0.0, pw_full[gs][:, None] - pw[gs])  # (cells at e, G)
            with np.errstate(invalid="ignore", divide="ignore"):
                est_minus[:, j] = (wq * att_minus[sel]).sum(axis=0) / wq.sum(axis=0)
            est_full[j] = (pw_full[gs] * att_full[sel]).sum() / pw_full[gs].sum()
        post = evs >= 0
        if post.any():
            with np.errstate(invalid="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                est_minus[:, -1] = np.nanmean(est_minus[:, :-1][:, post], axis=1)
            est_full[-1] = est_full[:-1][post].mean()
        return {"event_times": evs.astype(int), "estimates": est_minus, "full": est_full, "n_clusters": G}

    def used(self) -> pd.DataFrame:
        """The treated observations behind the estimated post-treatment ATT(g,t): every
        unit of cohort ``g`` (balanced panel) at period ``t``, with its weight."""
        a = self.att_gt
        post = a[(a["event_time"] >= 0) & a["att"].notna() & ~a["universal_base"]]
        coh = self._unit_cohort
        order = np.argsort(coh, kind="stable")
        vals, start, counts = np.unique(coh[order], return_index=True, return_counts=True)
        g = post["cohort"].to_numpy(dtype=float)
        t = post["time"].to_numpy()
        pos = np.searchsorted(vals, g)
        size = counts[pos]
        members = np.concatenate([order[start[p]:start[p] + counts[p]] for p in pos]) if len(pos) else np.zeros(0, int)
        return pd.DataFrame({"unit": self.units[members], "time": np.repeat(t, size).astype(np.int64),
                             "cohort": np.repeat(g, size).astype(np.int64),
                             "event_time": np.repeat(t - g, size).astype(float),
                             "weight": self._unit_weight[members], "headline": True})

    def _se(self, inf: np.ndarray) -> np.ndarray:
        return analytic_se(inf, self._cluster_codes, self.n_clusters or 0)

    def aggregate(
        self,
        kind: str = "dynamic",
        min_e=None,
        max_e=None,
        balance_e=None,
        n_boot: int | None = None,
    ) -> CSAggregate:
        """Aggregate ATT(g,t) as ``did::aggte(type=kind)`` (with ``na.rm=TRUE``).

        Every aggregated parameter is a linear combination ``A`` of the ATT(g,t) plus
        the influence of the estimated cohort shares, which is ``w_i * H[c_i]`` for a
        unit in cohort ``c_i``. Its influence function is ``IF @ A + w * H[cohort]``;
        with bootstrap draws stored by the fit (same ``n_boot``) the aggregated draws
        are ``A' D + H' V`` (``D`` the ATT(g,t) draws, ``V`` per-cohort weighted
        multiplier sums), i.e. the same draws as the ATT(g,t) bands.
        """
        if kind not in ("simple", "dynamic", "group", "calendar"):
            raise ValueError(
                f"unknown aggregation kind {kind!r}; use simple/dynamic/group/calendar"
            )
        n_boot = self._n_boot if n_boot is None else int(n_boot)
        min_e = -np.inf if min_e is None else min_e
        max_e = np.inf if max_e is None else max_e
        alpha = self._alpha
        z = norm.ppf(1 - alpha / 2)
        notes: list[str] = []

        tab = self.att_gt
        full_group = tab["cohort"].to_numpy(float)
        full_t = tab["time"].to_numpy(float)
        att_all = tab["att"].to_numpy(float)
        ok = np.isfinite(att_all)
        if not ok.all():
            notes.append(
                f"{int((~ok).sum())} ATT(g,t) cell(s) without estimate skipped in aggregation"
            )
        group, t, att = full_group[ok], full_t[ok], att_all[ok]
        okidx = np.flatnonzero(ok)
        n = self.n_units
        wun = self._unit_weight
        coh_vals, ucode = self._coh_vals, self._ucode
        ncoh = len(coh_vals)
        pg_coh = np.bincount(ucode, weights=wun, minlength=ncoh) / n  # P(G = g), weighted
        gcode = np.searchsorted(coh_vals, group)
        pg = pg_coh[gcode]
        e_all = t - group
        post = group <= t
        in_window = post & (e_all >= min_e) & (e_all <= max_e)

        cols_A: list[np.ndarray] = []  # (ncell,) weights on ATT(g,t)
        cols_H: list[np.ndarray] = []  # (ncoh,) weight-estimation influence per cohort
        ests: list[float] = []

        def add(keep: np.ndarray, wts: np.ndarray, with_wif: bool) -> None:
            a = np.zeros(len(tab))
            a[okidx[keep]] = wts
            h = np.zeros(ncoh)
            if with_wif:  # did::aggte wif(keepers) @ att[keepers]
                pk, ak = pg[keep], att[keep]
                S, dot = pk.sum(), float(pk @ ak)
                kc = gcode[keep]
                h = (
                    np.bincount(kc, weights=ak, minlength=ncoh) / S
                    - np.bincount(kc, minlength=ncoh) * dot / S**2
                )
            cols_A.append(a)
            cols_H.append(h)
            ests.append(float(np.sum(att[keep] * wts)))

        if kind == "simple":
            keep = np.flatnonzero(in_window)
            if keep.size == 0:
                raise ValueError("no post-treatment ATT(g,t) in the requested window")
            add(keep, pg[keep] / pg[keep].sum(), True)
            A, H = np.column_stack(cols_A), np.column_stack(cols_H)
            F, se, crit = self._agg_stats(A, H, n_boot, 1, alpha, band=np.zeros(1, bool))
            return CSAggregate(kind, ests[0], float(se[0]), None, F, F[:, 0], np.nan, notes)

        if kind == "group":
            labels = []
            for g in np.unique(group):
                keep = np.flatnonzero((group == g) & in_window)
                if keep.size == 0:
                    continue
                labels.append(g)
                add(keep, np.full(keep.size, 1.0 / keep.size), False)
            if not labels:
                raise ValueError("no group has post-treatment ATT(g,t) in the requested window")
            lab = np.array(labels)
            est_g = np.array(ests)
            pgl = pg_coh[np.searchsorted(coh_vals, lab)]
            wg = pgl / pgl.sum()
            overall = float(np.sum(est_g * wg))
            kc = np.searchsorted(coh_vals, lab)
            dot = float(pgl @ est_g)
            h_over = (
                np.bincount(kc, weights=est_g, minlength=ncoh) / pgl.sum()
                - np.bincount(kc, minlength=ncoh) * dot / pgl.sum() ** 2
            )
            A_t, H_t = np.column_stack(cols_A), np.column_stack(cols_H)
            A = np.column_stack([A_t, A_t @ wg])
            H = np.column_stack([H_t, H_t @ wg + h_over])
            table_label = ("cohort", lab)
        elif kind == "dynamic":
            include = np.ones(len(group), dtype=bool)
            eseq = np.unique(e_all)
            if balance_e is not None:
                balance_max_t = np.max(full_t)
                full_e = full_t - full_group
                elig_full = balance_max_t - full_group >= balance_e
                elig_g = np.unique(full_group[elig_full])
                req_e = np.unique(full_e[elig_full & (full_e >= 0) & (full_e <= balance_e)])
                complete = np.array(
                    [
                        np.all(np.isin(req_e, e_all[group == g])) if len(req_e) else False
                        for g in elig_g
                    ],
                    dtype=bool,
                )
                if not complete.any():
                    raise ValueError(
                        "no cohort has estimates at every event time through balance_e"
                    )
                include = np.isin(group, elig_g[complete])
                eseq = np.unique(e_all[include])
                first_t = min(np.min(full_t), np.min(full_group))
                eseq = eseq[(eseq <= balance_e) & (eseq >= balance_e - balance_max_t + first_t)]
            eseq = eseq[(eseq >= min_e) & (eseq <= max_e)]
            if eseq.size == 0:
                raise ValueError("no event times in the requested window")
            for e in eseq:
                keep = np.flatnonzero((e_all == e) & include)
                add(keep, pg[keep] / pg[keep].sum(), True)
            A_t, H_t = np.column_stack(cols_A), np.column_stack(cols_H)
            epos = eseq >= 0
            if epos.any():
                overall = float(np.mean(np.array(ests)[epos]))
                A = np.column_stack([A_t, A_t[:, epos].mean(axis=1)])
                H = np.column_stack([H_t, H_t[:, epos].mean(axis=1)])
            else:
                overall = np.nan
                A = np.column_stack([A_t, np.zeros(len(tab))])
                H = np.column_stack([H_t, np.zeros(ncoh)])
            table_label = ("event_time", eseq)
        else:  # calendar
            if np.isfinite(min_e) or np.isfinite(max_e) or balance_e is not None:
                notes.append("min_e/max_e/balance_e are ignored for calendar aggregation")
            tl = np.unique(t)
            tl = tl[tl >= np.min(group)]
            tl = np.array([s for s in tl if np.any((t == s) & post)])
            for s in tl:
                keep = np.flatnonzero((t == s) & post)
                add(keep, pg[keep] / pg[keep].sum(), True)
            overall = float(np.mean(ests))
            A_t, H_t = np.column_stack(cols_A), np.column_stack(cols_H)
            A = np.column_stack([A_t, A_t.mean(axis=1)])
            H = np.column_stack([H_t, H_t.mean(axis=1)])
            table_label = ("time", tl)

        p = A.shape[1] - 1
        band = np.r_[np.ones(p, bool), False]
        key = 2 + ["group", "dynamic", "calendar"].index(kind)
        F, se_all, crit = self._agg_stats(A, H, n_boot, key, alpha, band)
        if kind == "dynamic" and not np.isfinite(overall):
            se_all[-1] = np.nan
        if np.isfinite(crit) and crit < z:
            notes.append("simultaneous critical value below pointwise one; pointwise band reported")
            crit = z
        name, lab = table_label
        est = np.array(ests)
        se = se_all[:-1]
        table = pd.DataFrame(
            {
                name: lab.astype(int) if np.all(np.mod(lab, 1) == 0) else lab,
                "estimate": est,
                "se": se,
                "ci_low": est - z * se,
                "ci_high": est + z * se,
                "cband_low": est - crit * se,
                "cband_high": est + crit * se,
            }
        )
        return CSAggregate(
            kind, overall, float(se_all[-1]), table, F[:, :-1], F[:, -1], crit, notes
        )

    def _agg_stats(self, A, H, n_boot, key, alpha, band):
        """Influence functions (n x p) of the aggregated parameters, their SEs and the
        sup-t critical value over the ``band`` columns (NaN without bootstrap)."""
        F = np.asarray(self._op.matmul(A), dtype=float)
        F += self._unit_weight[:, None] * H[self._ucode]
        codes, ncl = self._cluster_codes, self.n_clusters or 0
        if n_boot <= 0:
            return F, self._se(F), np.nan
        st = self._boot_store
        if st is not None and st["n_boot"] == n_boot:
            # A is very sparse (each cell enters one or two columns)
            draws = np.asarray(sparse.csr_matrix(A.T) @ st["draws"])
            draws += H.T @ st["V"]
            se, crit = boot_stats(draws, st["N"], self.n_units, alpha, band)
        else:
            se, crit, _, _ = multiplier_bootstrap(
                F, codes, ncl, n_boot, _rng(self._seed, key), alpha, band_cols=band
            )
        return F, se, crit


# --------------------------------------------------------------------------- #

@dataclass
class CSData:
    """The preprocessed balanced panel in wide form (units x periods)."""

    Y: np.ndarray
    X: np.ndarray
    wun: np.ndarray
    units: np.ndarray
    ucoh: np.ndarray
    tlist: np.ndarray
    coh_vals: np.ndarray
    ucode: np.ndarray
    glist: np.ndarray
    codes: np.ndarray | None
    n_clusters: int | None
    n: int
    k: int
    msgs: list[str]
    weighted: bool
    control_group: str
    method: str
    anticipation: int
    base_period: str
    n_boot: int
    seed: object
    alpha: float
    cluster_labels: np.ndarray | None = None  # label of each cluster code


@dataclass
class CSCells:
    """The ATT(g,t) cells: plan, estimates, feasibility and influence functions."""

    cell_g: np.ndarray
    cell_t: np.ndarray
    tcol: np.ndarray
    bcol: np.ndarray
    base_zero: np.ndarray
    att: np.ndarray
    reason: np.ndarray
    dropped: np.ndarray
    n_treat: np.ndarray
    n_ctrl: np.ndarray
    op: object
    ncell: int
    ctrl_coh: np.ndarray | None = None  # (cells x cohort values): control cohorts of each cell
    gcode: np.ndarray | None = None  # cohort-value index of each cell's treated cohort
    min_controls: int = 1

def cs_preprocess(
    data: pd.DataFrame,
    outcome: str,
    unit: str,
    time: str,
    cohort: str,
    covariates: list[str] | None = None,
    control_group: str = "not_yet_treated",
    method: str = "dr",
    anticipation: int = 0,
    base_period: str = "varying",
    weights: str | None = None,
    cluster: str | None = None,
    n_boot: int = 0,
    seed=None,
    alpha: float = 0.05,
) -> CSData:
    """Preprocess as R ``did``: validate the options, drop rows with missing values, recode
    late cohorts, handle the no-never-treated case and first-period starters, balance the
    panel and reshape it to the wide (unit x period) layout (see the module docstring)."""
    if control_group not in ("not_yet_treated", "never_treated"):
        raise ValueError(
            f"control_group must be 'not_yet_treated' or 'never_treated', got {control_group!r}"
        )
    if method not in ("dr", "ipw", "reg"):
        raise ValueError(f"method must be 'dr', 'ipw' or 'reg', got {method!r}")
    if base_period not in ("varying", "universal"):
        raise ValueError(f"base_period must be 'varying' or 'universal', got {base_period!r}")
    if int(anticipation) != anticipation or anticipation < 0:
        raise ValueError("anticipation must be a non-negative integer")
    if not (0 < alpha < 1):
        raise ValueError("alpha must be in (0, 1)")
    anticipation = int(anticipation)
    n_boot = int(n_boot)
    covariates = list(covariates) if covariates else []
    if cluster == unit:
        cluster = None
    msgs: list[str] = []

    cols = [unit, time, cohort, outcome, *covariates]
    for extra in (weights, cluster):
        if extra is not None and extra not in cols:
            cols.append(extra)
    missing = [c for c in cols if c not in data.columns]
    if missing:
        raise KeyError(f"columns not in data: {missing}")
    N = len(data)
    try:
        uid, uid_uniques = pd.factorize(data[unit], sort=True)
    except TypeError:  # unorderable mixed unit labels
        uid, uid_uniques = pd.factorize(data[unit], sort=False)
    tt = data[time].to_numpy(dtype=float, na_value=np.nan)
    coh = data[cohort].to_numpy(dtype=float, na_value=np.nan)
    coh = np.where(np.isnan(coh), 0.0, coh)
    y = data[outcome].to_numpy(dtype=float, na_value=np.nan)
    xc = data[covariates].to_numpy(dtype=float, na_value=np.nan) if covariates else np.empty((N, 0))
    wr = data[weights].to_numpy(dtype=float, na_value=np.nan) if weights else np.ones(N)
    cl = data[cluster].to_numpy() if cluster is not None else None
    good = (uid >= 0) & np.isfinite(tt) & np.isfinite(y) & np.isfinite(wr)
    if covariates:
        good &= np.isfinite(xc).all(axis=1)
    if cl is not None:
        good &= ~pd.isna(cl)

    def keep_rows(mask):
        nonlocal uid, tt, coh, y, xc, wr, cl
        uid, tt, coh, y, xc, wr = uid[mask], tt[mask], coh[mask], y[mask], xc[mask], wr[mask]
        if cl is not None:
            cl = cl[mask]

    if not good.all():
        msgs.append(f"dropped {int((~good).sum())} rows with missing or non-finite values")
        keep_rows(good)
    if weights is not None and ((wr < 0).any() or wr.mean() <= 0):
        raise ValueError("weights must be non-negative with a positive mean")

    # Period and cohort values are coded once (sorted unique values + row codes); the
    # filters below then work on codes and a row selection, and every column is
    # gathered into the wide (unit x period) layout in a single pass at the end.
    tvals, tc = _factorize_sorted(tt)
    tlist = tvals
    coh = np.where(coh > tlist.max() + anticipation, 0.0, coh)
    cvals, cc = _factorize_sorted(coh)  # cohort values (after recoding) are cvals[cc]
    glist = cvals
    sel = None  # kept rows (None = all)
    latest_g = None
    if not (glist == 0).any():
        latest_g = glist.max()
        cut = latest_g - anticipation
        ncut = int(np.searchsorted(tvals, cut, side="left"))  # codes < ncut <=> tt < cut
        sel = np.flatnonzero(tc < ncut)
        msgs.append(
            f"no never-treated units: periods from {cut:g} on dropped; cohort {latest_g:g} "
            + (
                "recoded as never treated"
                if control_group == "never_treated"
                else "used only as control"
            )
        )
        if control_group == "never_treated":
            cvals = np.where(cvals == latest_g, 0.0, cvals)
        if len(sel) == 0:
            raise ValueError("no periods before the last cohort's treatment remain")
        tlist = tvals[:ncut]
    fp = tlist[0]
    early_c = (cvals > 0) & (cvals <= fp + anticipation)
    if early_c.any():
        early = early_c[cc] if sel is None else early_c[cc[sel]]
        if early.any():
            ue = uid[early] if sel is None else uid[sel[early]]
            msgs.append(f"dropped {len(pd.unique(ue))} units already treated in the first period")
            sel = np.flatnonzero(~early) if sel is None else sel[~early]
            present = np.bincount(tc[sel], minlength=len(tvals)) > 0
            tlist = tvals[present]
    nT = len(tlist)
    if nT < 2:
        raise ValueError("need at least two periods")
    if len(tlist) == len(tvals):
        tmap = None  # codes are already indices into tlist
    else:
        tmap = np.full(len(tvals), -1, dtype=np.intp)
        tmap[np.searchsorted(tvals, tlist)] = np.arange(nT)
    uid_s = uid if sel is None else uid[sel]
    tc_s = tc if sel is None else tc[sel]
    tidx = tc_s if tmap is None else tmap[tc_s]
    n_all = len(uid_uniques)
    key = uid_s.astype(np.int64) * nT + tidx
    if len(key) > 1 and np.all(key[1:] > key[:-1]):
        order = None  # already sorted by (unit, time), no duplicates
    else:
        order = np.argsort(key, kind="stable")
        ks = key[order]
        if np.any(ks[1:] == ks[:-1]):
            raise ValueError("duplicate (unit, time) rows")
    cnt = np.bincount(uid_s, minlength=n_all)
    partial = (cnt > 0) & (cnt < nT)
    if partial.any():
        msgs.append(
            f"dropped {int(partial.sum())} units not observed in every period "
            "(balanced panel required)"
        )
        full = np.flatnonzero((cnt == nT)[uid_s])
        sel = full if sel is None else sel[full]
        key = key[full]
        order = None if np.all(key[1:] > key[:-1]) else np.argsort(key, kind="stable")
    n = (len(uid) if sel is None else len(sel)) // nT
    if n == 0:
        raise ValueError("no units left")
    if order is not None:
        sel = order if sel is None else sel[order]

    def wide(a):
        return (a if sel is None else a[sel]).reshape((n, nT) + a.shape[1:])

    coh = cvals[cc]
    units = np.asarray(uid_uniques)[wide(uid)[:, 0]]
    C = wide(coh)
    if (C[:, :1] != C).any():
        raise ValueError("cohort must be constant within unit")
    ucoh = C[:, 0].copy()
    Y = wide(y)
    tv = []
    if covariates:
        Xw = wide(xc)
        tv += [
            c
            for c, bad in zip(covariates, (Xw != Xw[:, :1, :]).any(axis=(0, 1)), strict=True)
            if bad
        ]
        X = np.column_stack([np.ones(n), Xw[:, 0, :]])
    else:
        X = np.ones((n, 1))
    Ww = wide(wr)
    if weights and (Ww != Ww[:, :1]).any():
        tv.append(weights)
    wun = Ww[:, 0].copy()
    if tv:
        msgs.append(f"time-varying {tv} within unit: first-period values used")
    k = X.shape[1]
    codes = None
    n_clusters = None
    cluster_labels = None
    if cluster is not None:
        CLw = wide(cl)
        if (CLw != CLw[:, :1]).any():
            raise ValueError("cluster variable must be time-invariant within unit")
        try:
            codes, cluster_labels = pd.factorize(CLw[:, 0], sort=True)
        except TypeError:  # unorderable mixed labels
            codes, cluster_labels = pd.factorize(CLw[:, 0], sort=False)
        cluster_labels = np.asarray(cluster_labels)
        codes = codes.astype(np.intp)
        n_clusters = int(codes.max()) + 1

    glist = np.unique(ucoh)
    glist = glist[glist > 0]
    if latest_g is not None and control_group == "not_yet_treated":
        glist = glist[glist < latest_g]
    glist = glist[glist > fp + anticipation]
    if len(glist) == 0:
        raise ValueError("no treated cohort left to estimate")
    coh_vals = np.unique(ucoh)  # includes 0 if present
    ucode = np.searchsorted(coh_vals, ucoh)

    return CSData(Y=Y, X=X, wun=wun, units=units, ucoh=ucoh, tlist=tlist, coh_vals=coh_vals,
                  ucode=ucode, glist=glist, codes=codes, n_clusters=n_clusters,
                  cluster_labels=cluster_labels, n=n, k=k,
                  msgs=msgs, weighted=weights is not None, control_group=control_group,
                  method=method, anticipation=anticipation, base_period=base_period,
                  n_boot=n_boot, seed=seed, alpha=alpha)


def cs_cells(d: CSData, min_controls: int = 1) -> CSCells:
    """The ATT(g,t) cells (as ``did::compute.att_gt``): cell plan, control cohorts per cell,
    feasibility rules and the 2x2 estimates with their influence functions. Cells with fewer
    than ``min_controls`` comparison units are dropped (reason ``few comparison units``)."""
    Y, X, wun, ucode, coh_vals, glist, tlist = d.Y, d.X, d.wun, d.ucode, d.coh_vals, d.glist, d.tlist
    n, k, nT, msgs = d.n, d.k, len(d.tlist), d.msgs
    method, anticipation, base_period, control_group = d.method, d.anticipation, d.base_period, d.control_group
    weights = True if d.weighted else None
    # ---------------- cell plan (as did::compute.att_gt) ---------------- #
    universal = base_period == "universal"
    tfac = 0 if universal else 1
    rows = []  # (g, t_value, tidx, bidx, base_zero, thresh)
    for g in glist:
        pre_idx = np.flatnonzero(tlist + anticipation < g)
        last_pre = int(pre_idx[-1]) if len(pre_idx) else None
        if last_pre is None:
            msgs.append(f"cohort {g:g} has no pre-treatment period and is dropped")
            continue
        for t_i in range(nT - tfac):
            tidx = t_i + tfac
            tn = tlist[tidx]
            pret = last_pre if (universal or g - anticipation <= tn) else t_i
            base_zero = universal and pret == tidx
            thresh = tlist[max(t_i, pret) + tfac] + anticipation
            rows.append((g, tn, tidx, pret, base_zero, thresh))
    ncell = len(rows)
    cell_g = np.array([r[0] for r in rows])
    cell_t = np.array([r[1] for r in rows], dtype=float)
    tcol = np.array([r[2] for r in rows])
    bcol = np.array([r[3] for r in rows])
    base_zero = np.array([r[4] for r in rows], dtype=bool)
    thresh = np.array([r[5] for r in rows], dtype=float)
    gcode = np.searchsorted(coh_vals, cell_g)
    # control cohorts per cell (cells x n_cohort_values)
    if control_group == "never_treated":
        ctrl_coh = np.broadcast_to(coh_vals == 0, (ncell, len(coh_vals))).copy()
    else:
        ctrl_coh = (coh_vals[None, :] == 0) | (
            (coh_vals[None, :] > thresh[:, None]) & (coh_vals[None, :] != cell_g[:, None])
        )
    coh_count = np.bincount(ucode, minlength=len(coh_vals))
    n_treat = coh_count[gcode]
    n_ctrl = ctrl_coh.astype(int) @ coh_count

    att = np.full(ncell, np.nan)
    reason = np.array([None] * ncell, dtype=object)
    att[base_zero] = 0.0

    est = ~base_zero
    no_ctrl = est & (n_ctrl == 0)
    reason[no_ctrl] = "no control units"
    est &= ~no_ctrl
    few = est & (n_ctrl < max(int(min_controls), 1))
    reason[few] = f"few comparison units (< {int(min_controls)})"
    est &= ~few

    if k == 1:
        if method in ("dr", "ipw"):
            # intercept-only propensity score: treated share (unweighted on positive
            # weights for the overlap rule, weighted for trimming)
            pos = wun > 0
            pcount = np.bincount(ucode[pos], minlength=len(coh_vals))
            wsum = np.bincount(ucode, weights=wun, minlength=len(coh_vals))
            share_u = pcount[gcode] / np.maximum(pcount[gcode] + ctrl_coh.astype(int) @ pcount, 1)
            ov = est & (share_u >= OVERLAP_LEVEL)
            reason[ov] = "overlap violation (propensity score >= 0.999)"
            est &= ~ov
            wd = wsum[gcode]
            wc = ctrl_coh.astype(float) @ wsum
            share_w = np.minimum(wd / (wd + wc), PS_CAP)
            tr = est & ((share_w >= TRIM_LEVEL) | (wc <= 0))
            reason[tr] = "no control weight left after propensity-score trimming"
            est &= ~tr
        idx = np.flatnonzero(est)
        a, mu_tab, coef_tab = nocov_tables(
            Y, wun, ucode, len(coh_vals), gcode, ctrl_coh, tcol, bcol, n
        )
        att[idx] = a[idx]
        op = NocovInfluence(
            Y,
            wun,
            ucode,
            mu_tab,
            coef_tab,
            tcol,
            bcol,
            idx,
            ncell,
            has_never=bool(coh_vals[0] == 0),
        )
    else:
        inf, perm = _estimate_cov_cells(
            Y,
            X,
            wun,
            ucode,
            gcode,
            ctrl_coh,
            tcol,
            bcol,
            est,
            method,
            weights is not None,
            n,
            att,
            reason,
        )
        op = DenseInfluence(inf, perm)

    dropped = np.array([r is not None for r in reason])
    att[dropped] = np.nan
    if k > 1 and dropped.any():
        inf[:, dropped] = 0.0

    return CSCells(cell_g=cell_g, cell_t=cell_t, tcol=tcol, bcol=bcol, base_zero=base_zero,
                   att=att, reason=reason, dropped=dropped, n_treat=n_treat, n_ctrl=n_ctrl,
                   op=op, ncell=ncell, ctrl_coh=ctrl_coh, gcode=gcode,
                   min_controls=int(min_controls))


def cs_inference(d: CSData, c: CSCells) -> tuple[np.ndarray, float, dict | None]:
    """Standard errors of the cells (analytic influence-function SEs, clustered by cluster
    sums; or the multiplier bootstrap with IQR SEs and a sup-t critical value). Returns
    (se, critical value, stored draws for the aggregations)."""
    n, k, wun, ucode, coh_vals = d.n, d.k, d.wun, d.ucode, d.coh_vals
    codes, n_clusters, n_boot, seed, alpha = d.codes, d.n_clusters, d.n_boot, d.seed, d.alpha
    ncell, dropped, base_zero, op = c.ncell, c.dropped, c.base_zero, c.op
    # ---------------- inference ---------------- #
    se = np.full(ncell, np.nan)
    crit = np.nan
    boot_store = None
    valid = ~dropped & ~base_zero
    if valid.any():
        vidx = np.flatnonzero(valid)
        if n_boot > 0:
            # per-cohort weighted multiplier sums (for aggregations reusing the draws)
            if codes is None:
                rows = op.perm if getattr(op, "perm", None) is not None else np.arange(n)
                wgrp = sparse.csr_matrix(
                    (wun[rows], (ucode[rows], np.arange(n))), shape=(len(coh_vals), n)
                )
            else:
                wgrp = sparse.csr_matrix((wun, (ucode, codes)), shape=(len(coh_vals), n_clusters))
            if k == 1:
                draws = np.zeros((ncell, n_boot)) if len(vidx) < ncell else None
                prod, perm = op.boot_product(vidx)
                se_v, crit, dv, V = multiplier_bootstrap(
                    None,
                    codes,
                    n_clusters or 0,
                    n_boot,
                    _rng(seed, 0),
                    alpha,
                    product=prod,
                    n_units=n,
                    m=len(vidx),
                    perm=perm,
                    wgrp=wgrp,
                )
                se[vidx] = se_v
                if len(vidx) == ncell:
                    draws = dv
                else:
                    draws[vidx] = dv
            else:
                # all columns (dropped / base cells are zero and hence skipped)
                base = op.M if codes is None else op.cluster_sums(codes, n_clusters)
                se_all, crit, draws, V = multiplier_bootstrap(
                    base, None, 0, n_boot, _rng(seed, 0), alpha, n_units=n, wgrp=wgrp
                )
                se[vidx] = se_all[vidx]
            boot_store = {
                "n_boot": n_boot,
                "draws": draws,
                "V": V,
                "N": n if codes is None else n_clusters,
            }
        else:
            ss = (
                op.col_sumsq()
                if codes is None
                else np.einsum("ij,ij->j", *(2 * [op.cluster_sums(codes, n_clusters)]))
            )
            sv = np.sqrt(ss[vidx]) / n
            se[vidx] = np.where(np.isfinite(sv) & (sv > 0), sv, np.nan)
    return se, crit, boot_store


def callaway_santanna(
    data: pd.DataFrame,
    outcome: str,
    unit: str,
    time: str,
    cohort: str,
    covariates: list[str] | None = None,
    control_group: str = "not_yet_treated",
    method: str = "dr",
    anticipation: int = 0,
    base_period: str = "varying",
    weights: str | None = None,
    cluster: str | None = None,
    n_boot: int = 0,
    seed=None,
    alpha: float = 0.05,
    min_controls: int = 1,
) -> CSResult:
    """Callaway & Sant'Anna (2021) ATT(g,t) on a balanced long panel.

    Parameters mirror R ``did::att_gt``: ``cohort`` is the first treated period (0 or
    missing = never treated), ``time`` and ``cohort`` are integer-valued periods.
    ``n_boot > 0`` switches SEs and bands to the multiplier bootstrap (seeded by
    ``seed``). ``min_controls``: cells with fewer comparison units are dropped (R ``did``:
    1). See the module docstring for semantics and differences from csdid. Three steps:
    :func:`cs_preprocess`, :func:`cs_cells`, :func:`cs_inference`.
    """
    d = cs_preprocess(data, outcome, unit, time, cohort, covariates, control_group, method,
                      anticipation, base_period, weights, cluster, n_boot, seed, alpha)
    c = cs_cells(d, min_controls)
    se, crit, boot_store = cs_inference(d, c)
    z = norm.ppf(1 - alpha / 2)
    msgs, tlist = d.msgs, d.tlist
    cell_g, cell_t, att, dropped, reason = c.cell_g, c.cell_t, c.att, c.dropped, c.reason
    n_treat, n_ctrl, bcol, base_zero = c.n_treat, c.n_ctrl, c.bcol, c.base_zero
    op, units, n, n_clusters, ucoh, wun = c.op, d.units, d.n, d.n_clusters, d.ucoh, d.wun
    codes, coh_vals, ucode = d.codes, d.coh_vals, d.ucode
    band = crit if np.isfinite(crit) else np.nan
    # one DataFrame construction (column-by-column assignment costs ~2 ms)
    cohort_col = cell_g.astype(int) if np.all(np.mod(cell_g, 1) == 0) else cell_g
    time_col = cell_t.astype(int) if np.all(np.mod(cell_t, 1) == 0) else cell_t
    att_gt = pd.DataFrame(
        {
            "cohort": cohort_col,
            "time": time_col,
            "event_time": time_col - cohort_col,
            "att": att,
            "se": se,
            "ci_low": att - z * se,
            "ci_high": att + z * se,
            "cband_low": att - band * se,
            "cband_high": att + band * se,
            "n_treated": n_treat,
            "n_control": n_ctrl,
            "base_period": tlist[bcol],
            "dropped": dropped,
            "universal_base": base_zero,
        },
        copy=False,
    )
    dropped_cells = pd.DataFrame(
        {
            "cohort": cohort_col[dropped],
            "time": time_col[dropped],
            "n_treated": n_treat[dropped],
            "n_control": n_ctrl[dropped],
            "reason": reason[dropped],
        }
    )
    if len(dropped_cells):
        shown = "; ".join(
            f"(g={r.cohort}, t={r.time}): {r.reason}" for r in dropped_cells.head(10).itertuples()
        )
        more = "" if len(dropped_cells) <= 10 else f"; ... {len(dropped_cells) - 10} more"
        msgs.append(f"{len(dropped_cells)} ATT(g,t) cell(s) dropped: {shown}{more}")


    return CSResult(
        att_gt=att_gt,
        _op=op,
        dropped_cells=dropped_cells,
        warnings=msgs,
        units=units,
        n_units=n,
        n_clusters=n_clusters,
        crit_val=crit,
        _unit_cohort=ucoh,
        _unit_weight=wun,
        _cluster_codes=codes,
        _n_boot=d.n_boot,
        _seed=d.seed,
        _alpha=alpha,
        _coh_vals=coh_vals,
        _ucode=ucode,
        _boot_store=boot_store,
        _data=d,
        _cells=c,
    )


def _estimate_cov_cells(
    Y, X, wun, ucode, gcode, ctrl_coh, tcol, bcol, est, method, weighted, n, att, reason
):
    """Cells with covariates: group cells sharing an estimation sample (cohort g and the
    same control cohorts), fit one logit per sample, then all its cells at once.

    Units are processed in cohort-sorted order (``perm``) so that every estimation
    sample is a union of contiguous row blocks; returns (IF matrix with rows in
    ``perm`` order, perm). Design-singularity checks use cohort-level Gram matrices.
    """
    ncoh = ctrl_coh.shape[1]
    k = X.shape[1]
    perm = np.argsort(ucode, kind="stable")
    bounds = np.r_[0, np.cumsum(np.bincount(ucode, minlength=ncoh))]
    inf = np.empty((n, len(tcol)), order="F")
    inf.fill(0.0)  # touch pages sequentially (scattered first touch is much slower)
    idx = np.flatnonzero(est)
    if idx.size == 0:
        return inf, perm
    Xp, wp, ucp = X[perm], wun[perm], ucode[perm]
    YTp = np.ascontiguousarray(Y[perm].T)
    XX = (Xp[:, :, None] * Xp[:, None, :]).reshape(n, k * k)
    G_unw = np.add.reduceat(XX * (wp > 0)[:, None], bounds[:-1], axis=0) if n else None
    G_w = np.add.reduceat(XX * wp[:, None], bounds[:-1], axis=0)
    empty = bounds[1:] == bounds[:-1]
    G_unw[empty] = 0.0
    G_w[empty] = 0.0

    key_rows = np.column_stack([gcode[idx], ctrl_coh[idx].astype(np.int8)])
    _, first, grp = np.unique(key_rows, axis=0, return_index=True, return_inverse=True)
    grp = grp.ravel()
    order = np.argsort(first, kind="stable")  # samples in order of first cell
    ng = len(order)
    rank = np.empty(ng, dtype=np.intp)
    rank[order] = np.arange(ng)
    gr = rank[grp]  # sample rank of every estimated cell
    cell_sort = np.argsort(gr, kind="stable")
    cell_bounds = np.r_[0, np.cumsum(np.bincount(gr, minlength=ng))]
    c0s = idx[first[order]]
    s_g = gcode[c0s]  # treated cohort code per sample
    s_ctrl = ctrl_coh[c0s]  # (ng x ncoh) control cohorts per sample
    s_sample = s_ctrl.copy()
    s_sample[np.arange(ng), s_g] = True

    def singular(G_rows, masks):
        # cohort-level Gram sums accumulated in cohort order (as G_rows[sel].sum(0))
        S = np.zeros((len(masks), k * k))
        for c in range(ncoh):
            if masks[:, c].any():
                S += masks[:, c, None] * G_rows[c]
        return rcond1_batch(S.reshape(-1, k, k)) < EPS

    def set_reason(samples, why):
        for si in samples:
            reason[idx[cell_sort[cell_bounds[si] : cell_bounds[si + 1]]]] = why

    def fail(todo, bad, why):
        set_reason(todo[bad], why)
        return todo[~bad]

    todo = np.arange(ng)  # samples still being estimated
    ps_method = method in ("dr", "ipw")
    if ps_method:
        todo = fail(
            todo, singular(G_unw, s_sample[todo]), "singular design for the propensity score"
        )
        pos = wp > 0
        if weighted:
            wsum = np.bincount(ucode, weights=wun, minlength=ncoh)
    # propensity scores are fitted for chunks of samples at once (batched IRLS on the
    # stacked sample rows), and each chunk's cells are estimated before the next chunk
    coh_n = np.bincount(ucode, minlength=ncoh)
    size = s_sample[todo].astype(np.int64) @ coh_n
    if ps_method:
        # small samples are stacked (Python overhead dominates their fits); large ones
        # are fitted one at a time (arithmetic dominates, BLAS Gram products)
        cuts = [0]
        rows_in = 0
        for q, sz in enumerate(size.tolist()):
            big = sz > _LOGIT_BATCH_MAX_SAMPLE
            if q > cuts[-1] and (big or rows_in + sz > _LOGIT_BATCH_ROWS):
                cuts.append(q)
                rows_in = 0
            rows_in += sz
            if big:
                cuts.append(q + 1)
                rows_in = 0
        if cuts[-1] != len(todo):
            cuts.append(len(todo))
    else:
        cuts = [0, len(todo)]

    def stacked(tb, row_mask=None):
        mm = s_sample[tb][:, ucp]
        if row_mask is not None:
            mm &= row_mask[None, :]
        si_, r_ = np.nonzero(mm)
        seg = np.r_[0, np.cumsum(mm.sum(axis=1))]
        return r_, seg, (ucp[r_] == s_g[tb][si_]).astype(float)

    def fit(r_, seg, yy, fw=None):
        if len(seg) == 2:
            return logit_irls(Xp[r_], yy, fw)[1]
        return logit_irls_batch(Xp[r_], XX[r_], seg, yy, fw)[1]

    for c0_, c1_ in zip(cuts[:-1], cuts[1:], strict=True):
        tb = todo[c0_:c1_]
        ps_seg = None
        if ps_method:
            r_, seg, yy = stacked(tb, pos if weighted else None)
            if (np.diff(seg) == 0).any():  # no positive-weight unit: as the unbatched fit
                logit_irls(Xp[:0], np.zeros(0))
            mu = fit(r_, seg, yy)
            po_max = np.maximum.reduceat(mu, seg[:-1])
            ok = po_max < OVERLAP_LEVEL
            set_reason(tb[~ok], "overlap violation (propensity score >= 0.999)")
            tb = tb[ok]
            if weighted and len(tb):
                ok = ~singular(G_w, s_sample[tb])
                set_reason(tb[~ok], "singular design for the propensity score")
                tb = tb[ok]
            if len(tb):
                if weighted:
                    r_, seg, yy = stacked(tb)
                    wmean = (s_sample[tb] @ wsum) / (s_sample[tb] @ coh_n)
                    fw = wp[r_] / np.repeat(wmean, np.diff(seg))
                    mu = fit(r_, seg, yy, fw)
                else:
                    keep_seg = np.repeat(ok, np.diff(seg))
                    mu = mu[keep_seg]
                    seg = np.r_[0, np.cumsum(np.diff(seg)[ok])]
                ps_seg = {si: (seg[j], seg[j + 1]) for j, si in enumerate(tb.tolist())}
        if method in ("reg", "dr") and len(tb):
            tb = fail(tb, singular(G_w, s_ctrl[tb]), "singular covariate matrix for control units")
        for si in tb:
            cells = np.sort(idx[cell_sort[cell_bounds[si] : cell_bounds[si + 1]]])
            g = s_g[si]
            rows = np.flatnonzero(s_sample[si][ucp])  # cohort blocks, ascending
            Xs = Xp[rows]
            D = (ucp[rows] == g).astype(float)
            ws = wp[rows]
            ps = None if ps_seg is None else mu[ps_seg[si][0] : ps_seg[si][1]]
            dYt = YTp[tcol[cells]][:, rows]
            dYt -= YTp[bcol[cells]][:, rows]
            a, ft, why = att_cov_group(dYt, Xs, D, ws, method, ps, n)
            if why is not None:
                reason[cells] = why
                continue
            att[cells] = a
            for jj, cell in enumerate(cells):
                inf[rows, cell] = ft[jj]
    return inf, perm
