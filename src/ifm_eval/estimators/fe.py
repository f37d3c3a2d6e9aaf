"""Two-way fixed-effects least squares, solved directly (no demeaning iterations).

Every regression-based estimator of this package (TWFE, Sun & Abraham, the untreated-outcome
model of imputation and two-stage DiD, BJS's pre-trend test) fits

    y_it = a_i + l_t + x_it' b + e_it      (weights w_it, sample fixed)

on a municipality x month panel. :class:`TwoWayFE` holds what depends only on the sample
(unit and period codes, weights): the unit block of the normal equations is diagonal and
eliminated, and the period block's Schur complement ``S = diag(w_t) - B' diag(1/w_u) B``
(``B`` the unit x period weight table) is pseudo-inverted once (it is singular by one per
connected component of the unit-period graph). Any right-hand side is then projected on
the fixed effects exactly with a few group sums. :func:`feols` uses it for regressors that
are dense or sparse (indicator matrices stay sparse: ``X' W X`` of the residualised
regressors is ``X' W X - (U' W X)' A - (T' W X)' B`` with ``A, B`` the fixed-effect
coefficients of ``X``), so nothing ``n x k`` dense is built for event-time or cohort x
period dummies.

Conventions reproduce pyfixest's ``feols(..., vcov={"CRV1": cluster})`` (and hence fixest):
collinear regressors are dropped in column order by fixest's Cholesky rule (pivot below
``collin_tol`` on the residualised Gram matrix); the cluster-robust variance is
``G/(G-1) (N-1)/(N-K)`` times the sandwich, with ``K`` the coefficients plus the absorbed
effects not nested in the clusters (``k_fixef="nonnested"``, fixest's default) or all of
them (``"full"``, as linearmodels' ``PanelOLS``). Tests compare coefficients and standard
errors with pyfixest and linearmodels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

#: Relative eigenvalue cut-off of the period Schur complement's pseudo-inverse.
SCHUR_RTOL = 1e-11
#: fixest / pyfixest collinearity tolerance (Cholesky pivot of the residualised Gram).
COLLIN_TOL = 1e-10


def coded(values: np.ndarray | pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes 0..n-1 of ``values`` and the sorted levels they index."""
    c, lev = pd.factorize(pd.Series(values), sort=True)
    return c.astype(np.int64), np.asarray(lev)


def codes(values: np.ndarray | pd.Series) -> tuple[np.ndarray, int]:
    """Integer codes 0..n-1 of ``values`` (sorted levels) and the number of levels."""
    c, lev = coded(values)
    return c, len(lev)


class TwoWayFE:
    """Weighted projection on unit + period effects for one fixed sample (see module doc)."""

    def __init__(self, ucode: np.ndarray, tcode: np.ndarray, w: np.ndarray | None = None,
                 n_u: int | None = None, n_t: int | None = None) -> None:
        self.u = np.asarray(ucode, dtype=np.int64)
        self.t = np.asarray(tcode, dtype=np.int64)
        n = len(self.u)
        self.n = n
        self.w = np.ones(n) if w is None else np.asarray(w, dtype=float)
        self.n_u = int(self.u.max()) + 1 if n_u is None else int(n_u)
        self.n_t = int(self.t.max()) + 1 if n_t is None else int(n_t)
        rows = np.arange(n)
        self.U = sp.csr_matrix((self.w, (self.u, rows)), shape=(self.n_u, n))  # U' W
        self.T = sp.csr_matrix((self.w, (self.t, rows)), shape=(self.n_t, n))  # T' W
        self.wu = np.bincount(self.u, weights=self.w, minlength=self.n_u)
        self.wt = np.bincount(self.t, weights=self.w, minlength=self.n_t)
        self.B = np.bincount(self.u * self.n_t + self.t, weights=self.w,
                             minlength=self.n_u * self.n_t).reshape(self.n_u, self.n_t)
        self.wu_inv = np.divide(1.0, self.wu, out=np.zeros_like(self.wu), where=self.wu > 0)
        S = np.diag(self.wt) - self.B.T @ (self.wu_inv[:, None] * self.B)
        S = (S + S.T) / 2
        lam, Q = np.linalg.eigh(S)
        keep = lam > SCHUR_RTOL * max(float(lam.max()) if len(lam) else 0.0, 1.0)
        self.S_pinv = (Q[:, keep] / lam[keep]) @ Q[:, keep].T
        self.rank_deficiency = int((~keep).sum())

    # ------------------------------------------------------------------ projection
    def sums(self, M) -> tuple[np.ndarray, np.ndarray]:
        """Weighted unit and period sums ``U' W M`` (n_u x m), ``T' W M`` (n_t x m)."""
        su, st = self.U @ M, self.T @ M
        if sp.issparse(su):
            su, st = su.toarray(), st.toarray()
        return np.asarray(su), np.asarray(st)

    def solve(self, su: np.ndarray, st: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fixed-effect coefficients ``(a, l)`` of the weighted projection with right-hand
        sides ``su = U' W M``, ``st = T' W M`` (unique fitted values ``a[u] + l[t]``)."""
        lt = self.S_pinv @ (st - self.B.T @ (self.wu_inv[:, None] * su))
        a = self.wu_inv[:, None] * (su - self.B @ lt)
        return a, lt

    def coef(self, M) -> tuple[np.ndarray, np.ndarray]:
        M = M if sp.issparse(M) else np.asarray(M, dtype=float).reshape(self.n, -1)
        return self.solve(*self.sums(M))

    def fitted(self, a: np.ndarray, lt: np.ndarray) -> np.ndarray:
        return a[self.u] + lt[self.t]

    def residualize(self, M) -> np.ndarray:
        """``M`` minus its weighted projection on the unit and period effects (dense)."""
        dense = M.toarray() if sp.issparse(M) else np.asarray(M, dtype=float).reshape(self.n, -1)
        a, lt = self.coef(dense)
        return dense - self.fitted(a, lt)

    def components(self) -> tuple[int, np.ndarray]:
        """Connected components of the unit-period graph: (number, label per unit then
        per period)."""
        from scipy.sparse.csgraph import connected_components

        g = sp.coo_matrix((np.ones(self.n), (self.u, self.n_u + self.t)),
                          shape=(self.n_u + self.n_t, self.n_u + self.n_t))
        return connected_components(g, directed=False)


def collinear_columns(G: np.ndarray, tol: float = COLLIN_TOL) -> np.ndarray:
    """Columns of the Gram matrix ``G`` dropped as collinear, in column order: fixest's
    rule (a column whose Cholesky pivot, after the kept earlier columns, is below ``tol``).
    Returns a boolean mask."""
    K = G.shape[0]
    R = np.zeros((K, K))
    excl = np.zeros(K, dtype=bool)
    for j in range(K):
        kept = np.flatnonzero(~excl[:j])
        r = R[kept, j]
        rjj = G[j, j] - r @ r
        if rjj < tol:
            excl[j] = True
            continue
        rjj = np.sqrt(rjj)
        R[j, j] = rjj
        if j + 1 < K:
            R[j, j + 1:] = (G[j, j + 1:] - r @ R[kept, j + 1:]) / rjj
    return excl


@dataclass
class FEDesign:
    """The kept regressors of a fit in factored form: ``X~ = X - a_X[u] - l_X[t]`` (the
    residualised regressors, never built densely), the projection, weights and cluster
    codes. :meth:`scores` gives cluster sums ``sum_{i in g} w_i x~_i z_i`` for any vector
    ``z`` without forming ``X~``."""

    X: sp.csr_matrix | np.ndarray  # kept regressors (n x k)
    Ax: np.ndarray  # unit effects of X (n_u x k)
    Lx: np.ndarray  # period effects of X (n_t x k)
    fe: TwoWayFE
    ccode: np.ndarray  # cluster code per row
    n_clusters: int
    labels: np.ndarray | None = None  # cluster label of each code

    def scores(self, Z: np.ndarray) -> np.ndarray:
        """Cluster score sums of the columns of ``Z`` (n x m): (m x G x k), or (G x k) for a
        vector."""
        Z = np.asarray(Z, dtype=float)
        vec = Z.ndim == 1
        Z = Z[:, None] if vec else Z
        fe, n = self.fe, self.fe.n
        out = np.empty((Z.shape[1], self.n_clusters, self.X.shape[1]))
        for j in range(Z.shape[1]):
            we = fe.w * Z[:, j]
            C = sp.csr_matrix((we, (self.ccode, np.arange(n))), shape=(self.n_clusters, n))
            S = C @ self.X
            S = S.toarray() if sp.issparse(S) else np.asarray(S)
            Ru = sp.csr_matrix((we, (self.ccode, fe.u)), shape=(self.n_clusters, fe.n_u)).toarray()
            Rt = sp.csr_matrix((we, (self.ccode, fe.t)), shape=(self.n_clusters, fe.n_t)).toarray()
            out[j] = S - Ru @ self.Ax - Rt @ self.Lx
        return out[0] if vec else out

    def times(self, A: np.ndarray) -> np.ndarray:
        """``X~ A`` (n x m) for a (k x m) matrix ``A``."""
        A = np.asarray(A, dtype=float).reshape(self.X.shape[1], -1)
        xa = np.asarray(self.X @ A)
        return xa - (self.Ax @ A)[self.fe.u] - (self.Lx @ A)[self.fe.t]


@dataclass
class FEFit:
    """A two-way FE regression: coefficients of the kept regressors, their covariance and
    what the inference needs (residuals, residualised Gram, cluster scores)."""

    names: list[str]
    coef: np.ndarray
    vcov: np.ndarray
    dropped: list[str]
    resid: np.ndarray  # e = y - X b - a_i - l_t on the sample
    n: int
    df_k: int
    n_clusters: int
    bread: np.ndarray  # (X~' W X~)^-1 of the kept columns
    scores: np.ndarray | None = None  # cluster score sums (G x k_kept)
    ssc: float = 1.0
    fe_coef: tuple[np.ndarray, np.ndarray] | None = None  # (a, l) of y - X b
    info: dict = field(default_factory=dict)
    #: what the wild cluster bootstrap needs (:class:`FEDesign`); None without regressors
    design: FEDesign | None = None

    def se(self) -> np.ndarray:
        return np.sqrt(np.clip(np.diag(self.vcov), 0, None))

    def series(self) -> pd.Series:
        return pd.Series(self.coef, index=self.names)


def nested_in(inner: np.ndarray, outer: np.ndarray) -> bool:
    """True if every level of ``inner`` lies within one level of ``outer``."""
    d = pd.DataFrame({"i": inner, "o": outer}).drop_duplicates()
    return not d["i"].duplicated().any()


def feols(y: np.ndarray, X, fe: TwoWayFE, names: list[str], cluster: np.ndarray | None = None,
          k_fixef: str = "nonnested", collin_tol: float = COLLIN_TOL, fe_coef: bool = False,
          all_collinear_ok: bool = False) -> FEFit:
    """Weighted two-way FE regression of ``y`` on ``X`` (n x k, dense or sparse) with
    cluster-robust CRV1 standard errors (clusters ``cluster``; None = the units).

    ``k_fixef``: ``"nonnested"`` (default) or ``"full"`` (see module doc). With
    ``fe_coef`` the unit and period effects of ``y - X b`` are returned too.
    """
    if k_fixef not in ("nonnested", "full"):
        raise ValueError("k_fixef must be 'nonnested' or 'full'")
    y = np.asarray(y, dtype=float)
    n = fe.n
    Xs = X if sp.issparse(X) else np.asarray(X, dtype=float).reshape(n, -1)
    Xs = sp.csr_matrix(Xs) if sp.issparse(Xs) else Xs
    k = Xs.shape[1]
    w = fe.w
    su_y, st_y = fe.sums(y[:, None])
    a_y, l_y = fe.solve(su_y, st_y)
    y_t = y - fe.fitted(a_y, l_y)[:, 0]
    if k:
        su_x, st_x = fe.sums(Xs)
        Ax, Lx = fe.solve(su_x, st_x)
        XWX = Xs.T @ (Xs.multiply(w[:, None]) if sp.issparse(Xs) else Xs * w[:, None])
        XWX = XWX.toarray() if sp.issparse(XWX) else np.asarray(XWX)
        G = XWX - su_x.T @ Ax - st_x.T @ Lx
        G = (G + G.T) / 2
        XWy = np.asarray(Xs.T @ (w * y)).ravel()
        g = XWy - su_x.T @ a_y[:, 0] - st_x.T @ l_y[:, 0]
        excl = collinear_columns(G, collin_tol)
    else:
        excl = np.zeros(0, dtype=bool)
    keep = np.flatnonzero(~excl)
    if k and len(keep) == 0 and not all_collinear_ok:
        raise ValueError("All variables are collinear with the fixed effects")
    kept_names = [names[j] for j in keep]
    dropped = [names[j] for j in np.flatnonzero(excl)]
    if len(keep):
        Gk = G[np.ix_(keep, keep)]
        bread = np.linalg.inv(Gk)
        bread = (bread + bread.T) / 2
        beta = bread @ g[keep]
        Xk = Xs[:, keep]
        xb = np.asarray(Xk @ beta).ravel()
        Axb, Lxb = Ax[:, keep] @ beta, Lx[:, keep] @ beta
        e = y_t - (xb - Axb[fe.u] - Lxb[fe.t])
    else:
        bread = np.zeros((0, 0))
        beta = np.zeros(0)
        e = y_t
    # clusters and the small-sample factor
    if cluster is None:
        ccode, ncl = fe.u, fe.n_u
        labels = np.arange(fe.n_u)
        unit_nested = True
    else:
        ccode, labels = coded(cluster)
        ncl = len(labels)
        unit_nested = nested_in(fe.u, ccode)
    time_nested = nested_in(fe.t, ccode)
    n_u = int((np.bincount(fe.u, minlength=fe.n_u) > 0).sum())  # levels in the sample
    n_t = int((np.bincount(fe.t, minlength=fe.n_t) > 0).sum())
    k_fe_adj = n_u + n_t - 1
    if k_fixef == "full":
        df_k = len(keep) + k_fe_adj
    else:
        nested = [lev for lev, ok in ((n_u, unit_nested), (n_t, time_nested)) if ok]
        df_k = len(keep) + k_fe_adj - sum(nested) + len(nested) if nested else len(keep) + k_fe_adj
    ssc = (ncl / (ncl - 1) if ncl > 1 else 1.0) * (n - 1) / max(n - df_k, 1)
    scores = None
    design = None
    if len(keep):
        design = FEDesign(Xk, Ax[:, keep], Lx[:, keep], fe, ccode, int(ncl), labels)
        S = design.scores(e)
        scores = S
        V = ssc * bread @ (S.T @ S) @ bread
    else:
        V = np.zeros((0, 0))
    out_fe = None
    if fe_coef:
        r = y - (np.asarray(Xk @ beta).ravel() if len(keep) else 0.0)
        out_fe = fe.coef(r[:, None])
    return FEFit(kept_names, beta, V, dropped, e, n, int(df_k), int(ncl), bread, scores, float(ssc), out_fe,
                 design=design)


# ---------------------------------------------------------------------------- jackknife
@dataclass
class ClusterJackknife:
    """Leave-one-cluster-out solutions of a weighted two-way FE least-squares problem.

    ``y = a_i + Zr theta + e`` with unit effects ``a`` eliminated, ``Zr = [period dummies |
    X]``: ``theta`` solves ``S theta = b`` with the unit-eliminated normal equations
    ``S = sum_u (Zr_u' W Zr_u - B_u' B_u / w_u)``, ``B_u = 1' W Zr_u``. Units are nested in
    clusters, so ``S`` and ``b`` are sums of per-cluster parts and leaving cluster ``c`` out is
    ``theta_(-c) = (S - S_c)^+ (b - b_c)`` (exact; the pseudo-inverse resolves the period
    effects' normalisation). ``unit_effects(theta)`` gives ``a_u`` of the kept units.
    """

    theta: np.ndarray  # full-sample solution (p)
    theta_minus: np.ndarray  # (G x p): without cluster c
    cluster_of_unit: np.ndarray  # (n_units): cluster code of each unit (-1: no rows)
    r_u: np.ndarray  # 1' W y per unit
    B_u: np.ndarray  # (n_units x p): 1' W Zr per unit
    w_u: np.ndarray  # unit weight sums
    n_clusters: int

    def unit_effects(self, theta: np.ndarray) -> np.ndarray:
        inv = np.divide(1.0, self.w_u, out=np.zeros_like(self.w_u), where=self.w_u > 0)
        return inv[:, None] * (self.r_u[:, None] - self.B_u @ np.atleast_2d(theta).T) if np.ndim(theta) == 2 \
            else inv * (self.r_u - self.B_u @ theta)


def cluster_jackknife(ucode: np.ndarray, n_u: int, Zr, w: np.ndarray, y: np.ndarray,
                      ccode: np.ndarray, n_clusters: int,
                      extra_null: dict[int, list[np.ndarray]] | None = None,
                      block: int | None = None) -> ClusterJackknife:
    """Leave-one-cluster-out solutions (see :class:`ClusterJackknife`) for rows with unit
    codes ``ucode``, regressors ``Zr`` (n x p, sparse or dense, period dummies included),
    weights ``w``, outcome ``y`` and cluster codes ``ccode`` (units must be nested in
    clusters).

    ``S`` is singular (the period effects' level, covariate x period slopes of covariates
    constant within units): its null space ``N`` is also null for every ``S_c`` (``S`` is a
    sum of positive semi-definite parts) and orthogonal to every ``b_c``, so all the
    systems ``(S - S_c + s N N') theta = b - b_c`` are solved at once (one batched LU
    instead of G eigen-decompositions) and give the minimum-norm solutions. Regressors
    without weight outside cluster ``c`` are set to zero in its solution. ``extra_null``:
    per cluster, index sets of regressors whose sum is known to become collinear with the
    unit effects without it (e.g. the cohort x period cells of a cohort observed at the
    reference period only in that cluster); each adds its direction to that system's null
    space (so those rows fit perfectly and do not inform the rest, as if dropped).
    ``block``: leave-out systems solved at a time (default: as many as fit in ~512 MB; with
    many clusters, e.g. municipalities, the per-cluster parts are then computed twice)."""
    Zr = sp.csr_matrix(Zr)
    n, p = Zr.shape
    u = np.asarray(ucode, dtype=np.int64)
    c = np.asarray(ccode, dtype=np.int64)
    cl_u = np.full(n_u, -1, dtype=np.int64)
    cl_u[u] = c
    if np.any(cl_u[u] != c):
        raise ValueError("cluster jackknife: units must be nested in clusters")
    U = sp.csr_matrix((w, (u, np.arange(n))), shape=(n_u, n))  # U' W
    B_u = np.asarray((U @ Zr).toarray())
    r_u = np.asarray(U @ y).ravel()
    w_u = np.bincount(u, weights=w, minlength=n_u)
    inv = np.divide(1.0, w_u, out=np.zeros_like(w_u), where=w_u > 0)
    order = np.argsort(c, kind="stable")
    bounds = np.r_[0, np.cumsum(np.bincount(c, minlength=n_clusters))]
    Zs, ws, ys = Zr[order], w[order], y[order]
    units_of = [np.flatnonzero(cl_u == g) for g in range(n_clusters)]

    def part(g: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """S_c, b_c and the regressors' weight sum(w Z^2) of cluster g."""
        lo, hi = bounds[g], bounds[g + 1]
        if hi == lo:
            return np.zeros((p, p)), np.zeros(p), np.zeros(p)
        Zg = Zs[lo:hi]
        C = (Zg.T @ Zg.multiply(ws[lo:hi, None]).tocsr()).toarray()
        un = units_of[g]
        Bg = B_u[un]
        return (C - Bg.T @ (inv[un, None] * Bg),
                np.asarray(Zg.T @ (ws[lo:hi] * ys[lo:hi])).ravel() - Bg.T @ (inv[un] * r_u[un]), np.diag(C).copy())

    # clusters per block of leave-out systems (at most ~512 MB of p x p matrices at a time)
    block = int(block) if block else max(1, min(n_clusters, int(512e6 // (8 * p * p + 1))))
    cache = [part(g) for g in range(n_clusters)] if block >= n_clusters else None
    S, b, tot = np.zeros((p, p)), np.zeros(p), np.zeros(p)
    for g in range(n_clusters):
        Sg, bg, mg = cache[g] if cache is not None else part(g)
        S += Sg
        b += bg
        tot += mg
    S = (S + S.T) / 2
    lam, Q = np.linalg.eigh(S)
    top = max(float(lam.max()) if len(lam) else 0.0, 1.0)
    keep = lam > SCHUR_RTOL * top
    theta = Q[:, keep] @ ((Q[:, keep].T @ b) / lam[keep])
    base = S + top * (Q[:, ~keep] @ Q[:, ~keep].T)
    theta_minus = np.zeros((n_clusters, p))
    for g0 in range(0, n_clusters, block):
        gs = range(g0, min(g0 + block, n_clusters))
        S_m = np.empty((len(gs), p, p))
        b_m = np.empty((len(gs), p))
        for i, g in enumerate(gs):
            Sg, bg, mg = cache[g] if cache is not None else part(g)
            np.subtract(base, Sg, out=S_m[i])  # S - S_c + s N N'
            b_m[i] = b - bg
            empty = (tot - mg) <= 1e-12 * np.maximum(tot, 1e-300)
            if empty.any():
                S_m[i][empty, :] = 0.0
                S_m[i][:, empty] = 0.0
                S_m[i][empty, empty] = 1.0
                b_m[i][empty] = 0.0
            for cols in (extra_null or {}).get(g, []):
                v = np.zeros(p)
                v[np.asarray(cols)] = 1.0 / np.sqrt(len(cols))
                S_m[i] += top * np.outer(v, v)
        try:
            theta_minus[g0:g0 + len(gs)] = np.linalg.solve(S_m, b_m[..., None])[..., 0]
        except np.linalg.LinAlgError:  # a leave-out with a singularity of its own: one by one
            theta_minus[g0:g0 + len(gs)] = np.vstack([np.linalg.lstsq(S_m[i], b_m[i], rcond=None)[0]
                                                      for i in range(len(gs))])
    return ClusterJackknife(theta, theta_minus, cl_u, r_u, B_u, w_u, n_clusters)

