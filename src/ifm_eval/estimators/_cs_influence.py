"""Private numerical kernels for the Callaway & Sant'Anna estimator.

Everything here works on plain numpy arrays: the wide outcome matrix
(``n_units x n_periods``), unit-level cohort codes, weights and covariates.
No pandas, statsmodels or per-unit Python loops in the hot path.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.stats import norm

EPS = np.finfo(float).eps
PS_CAP = 1.0 - 1e-6  # DRDID caps fitted propensity scores here
TRIM_LEVEL = 0.995  # DRDID trims controls with ps >= 0.995
OVERLAP_LEVEL = 0.999  # R did drops cells whose (unweighted) PS reaches 0.999


# --------------------------------------------------------------------------- #
# small linear-algebra helpers
# --------------------------------------------------------------------------- #
def rcond1(mat: np.ndarray) -> float:
    """Reciprocal 1-norm condition number (R ``rcond`` semantics, exact inverse)."""
    if not np.all(np.isfinite(mat)):
        return 0.0
    try:
        inv = np.linalg.inv(mat)
    except np.linalg.LinAlgError:
        return 0.0
    a = np.abs(mat).sum(axis=0).max()
    b = np.abs(inv).sum(axis=0).max()
    if not np.isfinite(b) or a == 0 or b == 0:
        return 0.0
    return 1.0 / (a * b)


def gram_singular(x: np.ndarray, w: np.ndarray | None = None) -> bool:
    """True if the (weighted, positive-weight rows only) Gram matrix is singular."""
    if x.shape[0] == 0:
        return True
    if w is not None:
        pos = w > 0
        if not pos.any():
            return True
        x = x[pos]
        g = (x * w[pos, None]).T @ x
    else:
        g = x.T @ x
    return rcond1(g) < EPS


def logit_irls(
    x: np.ndarray,
    y: np.ndarray,
    w: np.ndarray | None = None,
    tol: float = 1e-8,
    max_iter: int = 100,
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Logistic regression by IRLS with the path and stopping rule of statsmodels'
    ``GLM(Binomial).fit()`` (start at mu = (y + 1/2) / 2, stop when the deviance
    changes by at most ``tol``), which csdid / DRDID use.

    Matching the stopping rule matters under quasi-separation, where the exact MLE
    runs off to infinity and whether a cell is dropped (overlap, singular
    information) depends on where the iterations stop. ``w``: frequency weights.
    Returns (beta, fitted probabilities, converged).
    """
    fw = 1.0 if w is None else w
    xt = np.ascontiguousarray(x.T)
    mu = (y + 0.5) / 2.0
    eta = np.log(mu / (1.0 - mu))

    binary = bool(np.all((y == 0) | (y == 1)))
    yb = y > 0

    def deviance(mu):
        if binary:  # same value: one of the two log terms is exactly zero
            q = np.where(yb, mu, 1.0 - mu)
            q += 1e-20
            np.divide(1.0, q, out=q)
            np.log(q, out=q)
            return 2.0 * np.sum(q if w is None else fw * q)
        a = np.maximum(y / (mu + 1e-20), _FEPS)
        b = np.maximum((1.0 - y) / (1.0 - mu + 1e-20), _FEPS)
        return 2.0 * np.sum(fw * (y * np.log(a) + (1.0 - y) * np.log(b)))

    dev_old = deviance(mu)
    beta = np.zeros(x.shape[1])
    converged = False
    for _ in range(max_iter):
        pc = np.clip(mu, _FEPS, 1.0 - _FEPS)
        v = pc * (1.0 - pc)
        z = eta + (y - mu) / v
        if w is not None:
            v = v * w
        xv = xt * v
        try:
            beta = np.linalg.solve(xv @ x, xv @ z)
        except np.linalg.LinAlgError:
            beta = np.linalg.lstsq(xv @ x, xv @ z, rcond=None)[0]
        eta = x @ beta
        with np.errstate(over="ignore"):
            mu = 1.0 / (1.0 + np.exp(-eta))
        dev = deviance(mu)
        if abs(dev - dev_old) <= tol:
            converged = True
            break
        dev_old = dev
    return beta, mu, converged


_FEPS = np.finfo(float).eps


def rcond1_batch(mats: np.ndarray) -> np.ndarray:
    """:func:`rcond1` of a stack of square matrices (G x k x k), elementwise identical
    (batched LAPACK inverse; falls back to one matrix at a time if any is singular)."""
    out = np.zeros(len(mats))
    fin = np.isfinite(mats).all(axis=(1, 2))
    if not fin.any():
        return out
    mf = mats[fin]
    try:
        inv = np.linalg.inv(mf)
    except np.linalg.LinAlgError:
        out[fin] = [rcond1(m) for m in mf]
        return out
    a = np.abs(mf).sum(axis=1).max(axis=1)
    b = np.abs(inv).sum(axis=1).max(axis=1)
    ok = np.isfinite(b) & (a != 0) & (b != 0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        out[fin] = np.where(ok, 1.0 / (a * b), 0.0)
    return out


def logit_irls_batch(
    x: np.ndarray,
    xx: np.ndarray,
    seg: np.ndarray,
    y: np.ndarray,
    fw: np.ndarray | None = None,
    tol: float = 1e-8,
    max_iter: int = 100,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`logit_irls` for G samples at once, stacked row-wise (same start,
    iteration path and per-sample stopping rule; sums are segment sums, so results
    agree to rounding).

    x: (R x k) stacked designs, xx: (R x k*k) row-wise outer products of x, seg:
    (G + 1) segment boundaries (sample j is rows seg[j]:seg[j+1], each non-empty), y:
    (R,) 0/1 outcomes, fw: (R,) frequency weights or None. Converged samples leave
    the batch (their rows are dropped once they make up a quarter of the rows).
    Returns (beta (G x k), fitted probabilities (R,), converged (G))."""
    R, k = x.shape
    G = len(seg) - 1
    beta_out = np.zeros((G, k))
    mu_out = np.empty(R)
    conv = np.zeros(G, bool)
    sid = np.repeat(np.arange(G), np.diff(seg))  # sample of each row
    iu = np.triu_indices(k)  # the Gram matrix is symmetric: sum k(k+1)/2 products
    sym = np.empty((k, k), dtype=np.intp)
    sym[iu] = sym[iu[1], iu[0]] = np.arange(len(iu[0]))
    xx = xx[:, iu[0] * k + iu[1]]
    sym = sym.ravel()
    rid = np.arange(R)  # original row of each current row
    starts = np.asarray(seg[:-1])
    yb = y > 0
    mu = (y + 0.5) / 2.0
    eta = np.log(mu / (1.0 - mu))

    def deviance(mu, yb, fw, starts):
        # binary y: y*log(y/mu) + (1-y)*log((1-y)/(1-mu)) is the log of one ratio
        q = np.where(yb, mu, 1.0 - mu)
        q += 1e-20
        np.divide(1.0, q, out=q)
        np.log(q, out=q)
        if fw is not None:
            q *= fw
        return 2.0 * np.add.reduceat(q, starts)

    def maps(sid, starts):
        # segment-sum operator S(d) (G x R, values d) and the block-diagonal design
        # (R x G*k) with x_r in the columns of its sample, so that eta = XB @ vec(beta)
        nr = len(sid)
        indptr = np.r_[starts, nr]
        cols = (sid[:, None] * k + np.arange(k)[None, :]).ravel()
        XB = sparse.csr_matrix(
            (x.ravel(), cols, np.arange(0, nr * k + 1, k)), shape=(nr, len(starts) * k)
        )
        ar = np.arange(nr)

        def S(d):
            return sparse.csr_matrix((d, ar, indptr), shape=(len(starts), nr))

        return XB, S

    dev_old = deviance(mu, yb, fw, starts)
    XB, S = maps(sid, starts)
    act = np.arange(G)  # samples in the current arrays
    live = np.ones(G, bool)  # ... of which not yet converged
    beta = np.zeros((G, k))
    for _ in range(max_iter):
        pc = np.clip(mu, _FEPS, 1.0 - _FEPS)
        v = 1.0 - pc
        v *= pc
        z = y - mu
        z /= v
        z += eta
        if fw is not None:
            v *= fw
        z *= v
        gram = (S(v) @ xx)[:, sym].reshape(-1, k, k)
        rhs = (S(z) @ x)[:, :, None]
        old_beta = beta
        try:
            beta = np.linalg.solve(gram, rhs)[:, :, 0]
        except np.linalg.LinAlgError:
            beta = np.empty((len(act), k))
            for j in range(len(act)):
                try:
                    beta[j] = np.linalg.solve(gram[j], rhs[j, :, 0])
                except np.linalg.LinAlgError:
                    beta[j] = np.linalg.lstsq(gram[j], rhs[j, :, 0], rcond=None)[0]
        if not live.all():  # converged samples kept in the arrays stay frozen
            beta[~live] = old_beta[~live]
        eta = XB @ beta.ravel()
        with np.errstate(over="ignore"):
            mu = np.exp(-eta)
            mu += 1.0
            np.divide(1.0, mu, out=mu)
        dev = deviance(mu, yb, fw, starts)
        done = live & (np.abs(dev - dev_old) <= tol)
        if done.any():
            ad = act[done]
            beta_out[ad] = beta[done]
            rows = done[sid]
            mu_out[rid[rows]] = mu[rows]
            conv[ad] = True
            live &= ~done
            if not live.any():
                return beta_out, mu_out, conv
            dead = ~live
            n_dead = np.diff(np.r_[starts, len(sid)])[dead].sum()
            if n_dead * 4 >= len(sid):  # drop converged samples' rows
                keep_rows = live[sid]
                sizes = np.diff(np.r_[starts, len(sid)])[live]
                x, xx, y, yb, mu, eta, rid = (a[keep_rows] for a in (x, xx, y, yb, mu, eta, rid))
                if fw is not None:
                    fw = fw[keep_rows]
                act, beta, dev = act[live], beta[live], dev[live]
                live = np.ones(len(act), bool)
                starts = np.r_[0, np.cumsum(sizes)[:-1]]
                sid = np.repeat(np.arange(len(act)), sizes)
                XB, S = maps(sid, starts)
        dev_old = dev
    beta_out[act[live]] = beta[live]
    rows = live[sid]
    mu_out[rid[rows]] = mu[rows]
    return beta_out, mu_out, conv


# --------------------------------------------------------------------------- #
# 2x2 kernels
# --------------------------------------------------------------------------- #
def nocov_tables(
    Y: np.ndarray,
    w: np.ndarray,
    ucode: np.ndarray,
    ncoh: int,
    gcode: np.ndarray,
    ctrl_coh: np.ndarray,
    tcol: np.ndarray,
    bcol: np.ndarray,
    n: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Intercept-only panel DiD (reg = dr = ipw here) for many cells at once, from
    cohort-level sufficient statistics.

    The influence function of cell j for unit i in cohort c is
    ``w_i * coef[c, j] * (Y[i, t_j] - Y[i, b_j] - mu[c, j])`` with
    ``coef = n / W_treated`` (treated cohort), ``-n / W_control`` (control cohorts), 0
    otherwise, and ``mu`` the treated / control weighted mean change (R did's n/n_cell
    rescaling included). Returns (att (m), mu (ncoh x m), coef (ncoh x m)).
    """
    onehot = np.zeros((ncoh, len(ucode)))
    onehot[ucode, np.arange(len(ucode))] = 1.0
    S = onehot @ (w[:, None] * Y)  # ncoh x T weighted cohort sums
    Wc = onehot @ w  # ncoh
    Sd = S[:, tcol] - S[:, bcol]  # ncoh x m
    m = len(tcol)
    cols = np.arange(m)
    ctrl = ctrl_coh.T.astype(float)  # ncoh x m
    WD = Wc[gcode]
    WC = Wc @ ctrl
    with np.errstate(invalid="ignore", divide="ignore"):
        mu_t = Sd[gcode, cols] / WD
        mu_c = np.einsum("cj,cj->j", ctrl, Sd) / WC
        mu = ctrl * mu_c[None, :]
        mu[gcode, cols] = mu_t
        coef = ctrl * (-n / WC)[None, :]
        coef[gcode, cols] = n / WD
    return mu_t - mu_c, mu, coef


def att_cov_group(
    dYt: np.ndarray,
    X: np.ndarray,
    D: np.ndarray,
    wraw: np.ndarray,
    method: str,
    ps: np.ndarray | None,
    n: int,
) -> tuple[np.ndarray, np.ndarray, str | None]:
    """Panel 2x2 estimators (reg / ipw / traditional DR of DRDID) for m cells that
    share the same estimation sample (and hence the same propensity score).

    dYt: (m x n1) outcome changes (one row per cell); X: (n1 x k) design with
    intercept; D: (n1,) 0/1; wraw: sampling weights; ps: fitted propensity scores
    (dr/ipw) before capping. Returns (att (m), IF transposed (m x n1) rescaled by
    n/n1, failure reason or None).

    The DRDID influence functions are affine in the outcome changes given the
    nuisance fits, so IF = g * dY + L @ V with a unit vector g, an (n1 x q) matrix L
    and a (q x m) matrix V of per-cell moments; all moments come from one product
    dY' [w_treat, w_cont, w_ols X, w_cont X].
    """
    n1, k = X.shape
    w = wraw / wraw.mean()
    Dc = 1.0 - D
    wols = w * Dc
    if method == "reg":
        wt = w * D
        wc = np.zeros(n1)
    else:
        psc = np.minimum(ps, PS_CAP)
        trim = np.where(D == 1, True, psc < TRIM_LEVEL)
        wt = trim * w * D
        wc = trim * w * psc * Dc / (1.0 - psc)
    mwt = wt.mean()
    mwc = wc.mean()
    if mwt <= 0:
        return None, None, "no treated weight"
    if method != "reg" and (mwc <= 0 or not np.isfinite(mwc)):
        return None, None, "no control weight left after propensity-score trimming"

    Wm = np.empty((n1, 2 + 2 * k))
    Wm[:, 0] = wt
    Wm[:, 1] = wc
    Wm[:, 2 : 2 + k] = wols[:, None] * X
    Wm[:, 2 + k :] = wc[:, None] * X
    S = dYt @ Wm  # m x (2 + 2k)
    sT_dY, sC_dY = S[:, 0], S[:, 1]
    XwolsdY = S[:, 2 : 2 + k].T  # k x m
    XwcdY = S[:, 2 + k :].T  # k x m
    sT_X = wt @ X
    sC_X = wc @ X
    m = dYt.shape[0]
    if method in ("reg", "dr"):
        A = Wm[:, 2 : 2 + k].T @ X / n1
        if rcond1(A) < EPS:
            return None, None, "singular covariate matrix for control units"
        Ainv = np.linalg.inv(A)
        beta = Ainv @ XwolsdY / n1  # k x m
    else:
        Ainv = None
        beta = np.zeros((k, m))
    eta_t = (sT_dY - sT_X @ beta) / n1 / mwt

    if method == "reg":
        a1 = X @ (Ainv @ (sT_X / n1))
        g = (wt - wols * a1) / mwt
        L = np.column_stack([-g[:, None] * X, -wt / mwt])
        V = np.vstack([beta, eta_t[None, :]])
        IFt = dYt * g[None, :]
        IFt += V.T @ L.T
        IFt *= n / n1
        return eta_t, IFt, None

    eta_c = (sC_dY - sC_X @ beta) / n1 / mwc
    att = eta_t - eta_c
    info = (X * (w * psc * (1.0 - psc))[:, None]).T @ X
    if rcond1(info) < EPS:
        return None, None, "singular propensity-score information matrix"
    H = np.linalg.inv(info) * n1
    score = (w * (D - psc))[:, None] * X
    XwcX = Wm[:, 2 + k :].T @ X
    M2 = (XwcdY - XwcX @ beta - np.outer(sC_X, eta_c)) / n1  # k x m
    g = wt / mwt - wc / mwc
    if method == "dr":
        a1 = X @ (Ainv @ (sT_X / n1))
        a3 = X @ (Ainv @ (sC_X / n1))
        g = g - wols * a1 / mwt + wols * a3 / mwc
    L = np.column_stack([-g[:, None] * X, -wt / mwt, wc / mwc, -(score @ H) / mwc])
    V = np.vstack([beta, eta_t[None, :], eta_c[None, :], M2])
    IFt = dYt * g[None, :]
    IFt += V.T @ L.T
    IFt *= n / n1
    return att, IFt, None


# --------------------------------------------------------------------------- #
# inference
# --------------------------------------------------------------------------- #
def cluster_sums(inf: np.ndarray, codes: np.ndarray, n_clusters: int) -> np.ndarray:
    """Sum rows of ``inf`` (n x m) within clusters -> (n_clusters x m)."""
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
    out = np.zeros((n_clusters, inf.shape[1]))
    out[sorted_codes[starts]] = np.add.reduceat(inf[order], starts, axis=0)
    return out


def analytic_se(inf: np.ndarray, codes: np.ndarray | None, n_clusters: int) -> np.ndarray:
    """R did analytic SE: sqrt(sum IF^2)/n, or sqrt(sum_c S_c^2)/n with clusters."""
    n = inf.shape[0]
    if inf.ndim == 1:
        inf = inf[:, None]
    if codes is None:
        se = np.sqrt(np.einsum("ij,ij->j", inf, inf)) / n
    else:
        s = cluster_sums(inf, codes, n_clusters)
        se = np.sqrt(np.einsum("ij,ij->j", s, s)) / n
    se = np.where(np.isfinite(se) & (se > 0), se, np.nan)
    return se


def _rademacher(rng: np.random.Generator, N: int, b: int) -> np.ndarray:
    """(N x b) matrix of independent +-1 draws with probability 1/2 (from random bits)."""
    size = N * b
    bits = np.unpackbits(np.frombuffer(rng.bytes((size + 7) // 8), dtype=np.uint8), count=size)
    u = bits.reshape(N, b).astype(np.float64)
    u *= 2.0
    u -= 1.0
    return u


def boot_stats(
    draws: np.ndarray,
    N: int,
    n: int,
    alpha: float,
    band_cols: np.ndarray | None = None,
    row_chunk: int = 256,
) -> tuple[np.ndarray, float]:
    """SEs and sup-t critical value from raw multiplier sums ``draws`` (m x B), as R did
    ``mboot``: statistics ``draws / sqrt(N)``, SE = IQR / (z_.75 - z_.25) * sqrt(N) / n,
    critical value = (1 - alpha) quantile of max_j |stat_j / SE_j| over ``band_cols``.
    Works on row chunks to keep temporaries small."""
    m, B = draws.shape
    se = np.full(m, np.nan)
    if B < 2 or m == 0:
        return se, np.nan
    k25 = max(int(np.ceil(0.25 * B)) - 1, 0)
    k75 = max(int(np.ceil(0.75 * B)) - 1, 0)
    iqr = np.full(m, np.nan)
    ndg = np.zeros(m, bool)
    for r0 in range(0, m, row_chunk):
        d = draws[r0 : r0 + row_chunk]
        ok = np.isfinite(d).all(axis=1) & (d != 0).any(axis=1)
        ndg[r0 : r0 + row_chunk] = ok
        if ok.any():
            # exact order statistics; a full row sort (SIMD) is several times faster
            # than np.partition with two kth values (generic introselect)
            srt = np.sort(d[ok] if not ok.all() else d, axis=1)
            iqr[r0 + np.flatnonzero(ok)] = srt[:, k75] - srt[:, k25]
    c = norm.ppf(0.75) - norm.ppf(0.25)
    sig = iqr / c  # IQR-based scale of the raw sums (= bSigma * sqrt(N))
    sig[~ndg | ~np.isfinite(sig) | (sig <= 0)] = np.nan
    se = sig / n
    use = np.isfinite(sig)
    if band_cols is not None:
        use &= np.asarray(band_cols, bool)
    if not use.any():
        return se, np.nan
    rows = np.flatnonzero(use)
    bT = np.zeros(B)
    inv = 1.0 / sig
    contiguous = len(rows) == m
    for r0 in range(0, len(rows), row_chunk):
        rr = rows[r0 : r0 + row_chunk]
        t = np.abs(draws[r0 : r0 + row_chunk] if contiguous else draws[rr])
        t *= inv[rr][:, None]
        np.maximum(bT, t.max(axis=0), out=bT)
    bT = bT[np.isfinite(bT)]
    if bT.size == 0:
        return se, np.nan
    return se, float(np.quantile(bT, 1 - alpha, method="inverted_cdf"))


def multiplier_bootstrap(
    inf: np.ndarray | None,
    codes: np.ndarray | None,
    n_clusters: int,
    n_boot: int,
    rng: np.random.Generator,
    alpha: float,
    product=None,
    n_units: int | None = None,
    m: int | None = None,
    band_cols: np.ndarray | None = None,
    perm: np.ndarray | None = None,
    wgrp=None,
    max_chunk_bytes: int = 2 * 2**20,
):
    """Rademacher multiplier bootstrap (R did ``mboot``).

    Either a dense influence matrix ``inf`` (n x m; or pre-summed cluster rows with
    ``codes=None`` and ``n_units`` given) or ``product`` (a function returning
    ``IF' U`` (m x b) for a (n x b) unit-level multiplier matrix U whose rows follow
    ``perm``) is used. With clusters one multiplier is drawn per cluster (applied to
    cluster sums). Draws are generated in chunks so that the draw matrix stays below
    ``max_chunk_bytes``. ``wgrp`` (sparse, r x N) additionally returns ``wgrp @ U``.
    Returns (SEs (m), sup-t critical value over ``band_cols``, raw sums (m x B),
    ``wgrp @ U`` or None).
    """
    if inf is not None:
        m = inf.shape[1]
        n = n_units or inf.shape[0]
    else:
        n = n_units
    if codes is not None:
        N = n_clusters
        base = cluster_sums(inf, codes, n_clusters) if inf is not None else None
    else:
        base = inf
        N = n if inf is None else inf.shape[0]  # rows may be pre-summed clusters
    baseT = None if base is None else np.ascontiguousarray(base.T)  # m x N
    draws = np.empty((m, n_boot))
    extra = None if wgrp is None else np.empty((wgrp.shape[0], n_boot))
    per_draw = N if product is None else N + n
    chunk = max(1, min(n_boot, max_chunk_bytes // (8 * max(per_draw, 1))))
    pos = 0
    while pos < n_boot:
        b = min(chunk, n_boot - pos)
        u = _rademacher(rng, N, b)
        if product is None:
            draws[:, pos : pos + b] = baseT @ u
        else:
            uu = u if codes is None else u[codes if perm is None else codes[perm]]
            draws[:, pos : pos + b] = product(uu)
        if wgrp is not None:
            extra[:, pos : pos + b] = wgrp @ u
        pos += b
    se, crit = boot_stats(draws, N, n, alpha, band_cols)
    return se, crit, draws, extra


# --------------------------------------------------------------------------- #
# influence-function operators
# --------------------------------------------------------------------------- #
class DenseInfluence:
    """Influence functions held as a dense (n x cells) Fortran-ordered matrix whose
    rows follow the unit order ``perm`` (None = natural unit order)."""

    def __init__(self, M: np.ndarray, perm: np.ndarray | None = None):
        self.M = M
        self.perm = perm
        self.inv = None if perm is None else np.argsort(perm)

    def full(self) -> np.ndarray:
        if self.perm is not None:  # reorder rows to unit order once, in place of M
            out = np.empty_like(self.M, order="F")
            np.take(self.M, self.inv, axis=0, out=out)
            self.M, self.perm, self.inv = out, None, None
        return self.M

    def _unit_rows(self, a: np.ndarray) -> np.ndarray:
        return a if self.inv is None else a[self.inv]

    def matmul(self, A: np.ndarray) -> np.ndarray:
        """IF @ A for a (cells x p) weight matrix (sparse product, no copy of IF)."""
        At = sparse.csr_matrix(A.T)
        return self._unit_rows(np.asarray(At @ self.M.T).T)

    def col_sumsq(self) -> np.ndarray:
        return np.einsum("ij,ij->j", self.M, self.M)

    def cluster_sums(self, codes: np.ndarray, n_clusters: int, chunk: int = 64) -> np.ndarray:
        n, m = self.M.shape
        cd = codes if self.perm is None else codes[self.perm]
        oh = sparse.csr_matrix((np.ones(n), (cd, np.arange(n))), shape=(n_clusters, n))
        out = np.empty((n_clusters, m))
        for s in range(0, m, chunk):
            out[:, s : s + chunk] = oh @ np.ascontiguousarray(self.M[:, s : s + chunk])
        return out


class NocovInfluence:
    """Intercept-only influence functions in factored form.

    IF[i, j] = w_i * coef[c_i, j] * (Y[i, t_j] - Y[i, b_j] - mu[c_i, j]) for the
    estimated cells j (zero elsewhere). Products, column sums of squares, cluster
    sums and bootstrap sums are computed from cohort-level statistics; the dense
    (n x cells) matrix is only built when ``full()`` is called.
    """

    def __init__(self, Y, w, ucode, mu, coef, tcol, bcol, cells, n_cells, has_never=True):
        self.Y = Y - Y.mean(axis=1, keepdims=True)  # only differences matter
        self.w, self.ucode = w, ucode
        self.tcol, self.bcol = tcol, bcol
        self.cells = np.asarray(cells)
        self.n_cells = n_cells
        ncoh = mu.shape[0]
        self.mu = np.zeros_like(mu)
        self.coef = np.zeros_like(coef)
        self.mu[:, self.cells] = mu[:, self.cells]
        self.coef[:, self.cells] = coef[:, self.cells]
        self.ncoh, self.T = ncoh, Y.shape[1]
        self.has_never = has_never
        self.perm = np.argsort(ucode, kind="stable")
        self.bounds = np.r_[0, np.cumsum(np.bincount(ucode, minlength=ncoh))]
        self._full = None

    # sparse (ncoh*T x cells) map: +coef at (c, t_j), -coef at (c, b_j)
    def _P(self, cells=None):
        coef = self.coef if cells is None else self.coef[:, cells]
        tc = self.tcol if cells is None else self.tcol[cells]
        bc = self.bcol if cells is None else self.bcol[cells]
        # built directly in CSC form (entries grouped by cell; no COO sort/sum pass)
        jj, cc = np.nonzero(coef.T)
        v = coef[cc, jj]
        T = self.T
        m = coef.shape[1]
        indptr = np.r_[0, np.cumsum(2 * np.bincount(jj, minlength=m))]
        indices = np.column_stack([cc * T + tc[jj], cc * T + bc[jj]]).ravel()
        data = np.column_stack([v, -v]).ravel()
        return sparse.csc_matrix((data, indices, indptr), shape=(self.ncoh * T, m))

    def full(self) -> np.ndarray:
        if self._full is None:
            n = len(self.w)
            M = np.zeros((n, self.n_cells), order="F")
            ws = self.w[:, None]
            step = max(1, 1_000_000 // max(n, 1))
            for s in range(0, len(self.cells), step):
                cc = self.cells[s : s + step]
                blk = self.Y[:, self.tcol[cc]] - self.Y[:, self.bcol[cc]]
                blk -= self.mu[:, cc][self.ucode]
                blk *= self.coef[:, cc][self.ucode]
                blk *= ws
                M[:, cc] = blk
            self._full = M
        return self._full

    def matmul(self, A: np.ndarray) -> np.ndarray:
        A = np.asarray(A, float)
        B = self._P() @ A  # ncoh*T x p
        d = (self.mu * self.coef) @ A  # ncoh x p
        out = np.empty((len(self.w), A.shape[1]))
        T = self.T
        for c in range(self.ncoh):
            rows = self.perm[self.bounds[c] : self.bounds[c + 1]]
            if rows.size == 0:
                continue
            blk = self.Y[rows] @ B[c * T : (c + 1) * T]
            blk -= d[c]
            blk *= self.w[rows, None]
            out[rows] = blk
        return out

    def col_sumsq(self) -> np.ndarray:
        """sum_i IF[i, j]^2 from per-cohort second moments of the centred outcomes."""
        out = np.zeros(self.n_cells)
        cells, tc, bc = self.cells, self.tcol[self.cells], self.bcol[self.cells]
        for c in range(self.ncoh):
            rows = self.perm[self.bounds[c] : self.bounds[c + 1]]
            k = self.coef[c, cells]
            nz = k != 0
            if rows.size == 0 or not nz.any():
                continue
            w2 = self.w[rows] ** 2
            Yc = self.Y[rows]
            QQ = (Yc * w2[:, None]).T @ Yc
            L = w2 @ Yc
            W2 = w2.sum()
            t, b, mu = tc[nz], bc[nz], self.mu[c, cells[nz]]
            q = QQ[t, t] - 2.0 * QQ[t, b] + QQ[b, b]
            ell = L[t] - L[b]
            out[cells[nz]] += k[nz] ** 2 * (q - 2.0 * mu * ell + mu**2 * W2)
        return np.maximum(out, 0.0)

    def _compressed_maps(self, cells):
        """Sparse maps (cells x 2*ncoh*T) and (cells x 2*ncoh) onto [per-cohort sums;
        suffix sums over cohorts]. A cell's control cohorts share one coefficient and
        one mean, and not-yet-treated control sets are suffixes of the sorted cohorts
        (plus never-treated, minus the treated cohort), so each cell needs a handful
        of entries instead of one per control cohort (exact for any control set:
        cohorts inside the suffix that are not controls are subtracted)."""
        ncoh, T = self.ncoh, self.T
        coef = self.coef[:, cells]
        mu = self.mu[:, cells]
        tc, bc = self.tcol[cells], self.bcol[cells]
        m = len(cells)
        start = 1 if self.has_never else 0
        R, C, Vv, Rv, Cv, Vm = [], [], [], [], [], []

        def put(j, blk, kappa, m_):
            R.extend((j, j))
            C.extend((blk * T + tc[j], blk * T + bc[j]))
            Vv.extend((kappa, -kappa))
            Rv.append(j)
            Cv.append(blk)
            Vm.append(-kappa * m_)

        # treated cohort (positive coefficient)
        gi, gj = np.nonzero(coef > 0)
        put(gj, gi, coef[gi, gj], mu[gi, gj])
        neg = coef < 0
        has_ctrl = neg.any(axis=0)
        cj = np.flatnonzero(has_ctrl)
        ci = np.argmax(neg[:, cj], axis=0)
        kappa = np.zeros(m)
        mc = np.zeros(m)
        kappa[cj] = coef[ci, cj]
        mc[cj] = mu[ci, cj]
        if self.has_never:
            j0 = np.flatnonzero(neg[0])
            put(j0, np.zeros(len(j0), int), kappa[j0], mc[j0])
        negr = neg[start:]
        has_suf = negr.any(axis=0)
        sj = np.flatnonzero(has_suf)
        k = np.argmax(negr[:, sj], axis=0) + start
        put(sj, ncoh + k, kappa[sj], mc[sj])
        kk = np.full(m, ncoh)
        kk[sj] = k
        idx = np.arange(ncoh)[:, None]
        excl = (idx >= kk[None, :]) & ~neg
        ei, ej = np.nonzero(excl)
        put(ej, ei, -kappa[ej], mc[ej])
        cat = np.concatenate
        PT = sparse.csr_matrix(
            (
                cat([np.ravel(v) for v in Vv]),
                (cat([np.ravel(v) for v in R]), cat([np.ravel(v) for v in C])),
            ),
            shape=(m, 2 * ncoh * T),
        )
        MV = sparse.csr_matrix(
            (
                cat([np.ravel(v) for v in Vm]),
                (cat([np.ravel(v) for v in Rv]), cat([np.ravel(v) for v in Cv])),
            ),
            shape=(m, 2 * ncoh),
        )
        return PT, MV

    def boot_product(self, cells):
        """(f, perm) for ``multiplier_bootstrap``: f(Ut) = IF[perm][:, cells]' Ut."""
        ncoh, T = self.ncoh, self.T
        perm, bounds = self.perm, self.bounds
        wYt = np.ascontiguousarray((self.w[:, None] * self.Y)[perm].T)  # T x n
        ws = self.w[perm]
        PT, MV = self._compressed_maps(np.asarray(cells))

        def product(Ut: np.ndarray) -> np.ndarray:
            b = Ut.shape[1]
            Z = np.empty((2 * ncoh, T, b))
            V = np.empty((2 * ncoh, b))
            for c in range(ncoh):  # every cohort index has at least one unit
                s, e = bounds[c], bounds[c + 1]
                np.matmul(wYt[:, s:e], Ut[s:e], out=Z[c])
                np.matmul(ws[s:e], Ut[s:e], out=V[c])
            Z[2 * ncoh - 1] = Z[ncoh - 1]
            V[2 * ncoh - 1] = V[ncoh - 1]
            for c in range(ncoh - 2, -1, -1):  # suffix sums over cohorts
                np.add(Z[ncoh + c + 1], Z[c], out=Z[ncoh + c])
                np.add(V[ncoh + c + 1], V[c], out=V[ncoh + c])
            out = PT @ Z.reshape(2 * ncoh * T, b)
            out += MV @ V
            return out

        return product, perm

    def cluster_sums(self, codes: np.ndarray, n_clusters: int, chunk: int = 256) -> np.ndarray:
        prod, perm = self.boot_product(np.arange(self.n_cells))
        cp = codes[perm]
        out = np.empty((n_clusters, self.n_cells))
        for s in range(0, n_clusters, chunk):
            e = min(n_clusters, s + chunk)
            oh = (cp[:, None] == np.arange(s, e)[None, :]).astype(float)
            out[s:e] = prod(oh).T
        return out
