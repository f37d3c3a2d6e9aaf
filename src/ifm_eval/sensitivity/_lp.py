"""The linear programme of the Andrews-Roth-Pakes (ARP) moment-inequality test, solved in batches.

For moments ``y`` (length ``m``) with standard deviations ``sd`` and a nuisance design ``X``
(``m x k``) the test statistic is

    eta(y) = min_{tau in R^k} max_i (y_i - X_i tau) / sd_i
           = max { lambda'y : lambda >= 0, lambda'sd = 1, lambda'X = 0 }      (dual).

The dual feasible set does not depend on ``y``, and ``eta`` is the maximum of ``lambda_v'y`` over
its finitely many vertices. A simplex *basis* ``B`` (``k + 1`` rows with ``W_B = [sd_B, X_B]``
invertible and dual ``lambda_B = W_B^{-T} e_1 >= 0``) is optimal for every ``y`` at which its
primal point ``(eta, tau) = W_B^{-1} y_B`` is feasible. :class:`MinMaxLP` therefore keeps the
bases it has found and certifies new right-hand sides by that feasibility check (a matrix product
for a whole batch); only right-hand sides no known basis certifies go to HiGHS
(:func:`scipy.optimize.linprog`, dual simplex). This is exact - every returned ``eta`` is
certified optimal within ``tol`` - and needs only as many LPs as distinct optimal bases occur
(a few dozen on a 1000-point theta grid or 1000 simulation draws), instead of one LP per point.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog


@dataclass
class Basis:
    """An optimal basis (or, with ``certify=False``, a one-off LP solution)."""

    rows: np.ndarray  # indices of the k+1 basic rows
    w_inv: np.ndarray | None  # inverse of W_B (None for one-off solutions)
    lam: np.ndarray  # dual vector, length m
    certify: bool


class MinMaxLP:
    """``eta(y) = min_tau max_i (y_i - X_i tau) / sd_i`` with basis caching (see module doc).

    ``x`` may be ``None`` or have zero columns (no nuisance parameter): then ``eta`` is simply
    ``max_i y_i / sd_i`` and the dual is ``e_j / sd_j`` at the (first) maximising row ``j``.
    """

    def __init__(self, x: np.ndarray | None, sd: np.ndarray, tol: float = 1e-9) -> None:
        self.sd = np.asarray(sd, dtype=float)
        m = self.sd.shape[0]
        self.x = np.zeros((m, 0)) if x is None else np.asarray(x, dtype=float).reshape(m, -1)
        self.k = self.x.shape[1]
        self.w = np.column_stack([self.sd, self.x])
        self.tol = tol
        self.bases: list[Basis] = []
        self.n_lp = 0

    # -- public -----------------------------------------------------------------------------
    def solve(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Solve for each row of ``y`` (``n x m``): returns ``eta`` (n,) and basis index (n,).

        ``eta`` is ``-inf`` (basis index -1) where the LP is unbounded and ``nan`` (index -1) where
        HiGHS fails; the dual of a solved row is ``self.bases[idx].lam``.
        """
        y = np.atleast_2d(np.asarray(y, dtype=float))
        n = y.shape[0]
        if self.k == 0:
            return self._solve_no_nuisance(y)
        eta = np.full(n, np.nan)
        idx = np.full(n, -1, dtype=int)
        pending = np.arange(n)
        pending = self._certify(y, pending, range(len(self.bases)), eta, idx)
        while pending.size:
            i = pending[0]
            b = self._lp(y[i])
            if isinstance(b, tuple):  # unbounded, failed or one-off solution: this point only
                eta[i], idx[i] = b
                pending = pending[1:]
                continue
            self.bases.append(b)
            j = len(self.bases) - 1
            rest = self._certify(y, pending, [j], eta, idx)
            if rest.size and rest[0] == i:  # numerical trouble: never loop
                self.bases[j].certify = False
                eta[i] = self.bases[j].lam @ y[i]
                idx[i] = j
                rest = rest[1:]
            pending = rest
        return eta, idx

    def lam(self, idx: np.ndarray) -> np.ndarray:
        """Dual vectors (``n x m``) for basis indices ``idx`` (rows of NaN where idx is -1)."""
        out = np.full((idx.shape[0], self.sd.shape[0]), np.nan)
        for j in np.unique(idx[idx >= 0]):
            out[idx == j] = self.bases[j].lam
        return out

    # -- internals --------------------------------------------------------------------------
    def _solve_no_nuisance(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        z = y / self.sd
        j = np.argmax(z, axis=1)
        eta = z[np.arange(y.shape[0]), j]
        if not self.bases:
            for r in range(self.sd.shape[0]):
                lam = np.zeros(self.sd.shape[0])
                lam[r] = 1.0 / self.sd[r]
                self.bases.append(Basis(np.array([r]), None, lam, False))
        return eta, j

    def _certify(self, y, pending, basis_ids, eta, idx) -> np.ndarray:
        for j in basis_ids:
            if not pending.size:
                break
            b = self.bases[j]
            if not b.certify:
                continue
            yp = y[pending]
            sol = yp[:, b.rows] @ b.w_inv.T  # (n_p, k+1): eta, tau
            z = (yp - sol[:, 1:] @ self.x.T) / self.sd
            scale = 1.0 + np.abs(z).max(axis=1)
            ok = (z - sol[:, [0]]).max(axis=1) <= self.tol * scale
            eta[pending[ok]] = sol[ok, 0]
            idx[pending[ok]] = j
            pending = pending[~ok]
        return pending

    def _lp(self, yi: np.ndarray):
        m, k = self.w.shape[0], self.k
        c = np.zeros(k + 1)
        c[0] = 1.0
        self.n_lp += 1
        res = linprog(
            c, A_ub=-self.w, b_ub=-yi, bounds=[(None, None)] * (k + 1), method="highs-ds"
        )
        if res.status == 3:  # unbounded: eta = -inf
            return -np.inf, -1
        if res.status != 0:
            return np.nan, -1
        lam_lp = -np.asarray(res.ineqlin.marginals, dtype=float)
        slack = np.asarray(res.ineqlin.residual, dtype=float)
        zscale = 1.0 + np.abs(yi / self.sd).max()
        active = np.flatnonzero(slack / self.sd <= 1e-7 * zscale)
        support = np.flatnonzero(lam_lp > 1e-9 * max(1.0, lam_lp.max()))
        order = list(support[np.argsort(-lam_lp[support])]) + [
            r for r in active if r not in set(support)
        ]
        rows: list[int] = []
        q = np.zeros((0, k + 1))  # orthonormal basis of the chosen rows (Gram-Schmidt)
        for r in order:
            w_r = self.w[r]
            res_r = w_r - q.T @ (q @ w_r)
            nrm = np.linalg.norm(res_r)
            if nrm > 1e-9 * max(np.linalg.norm(w_r), 1e-300):
                rows.append(int(r))
                q = np.vstack([q, res_r / nrm])
            if len(rows) == k + 1:
                break
        if len(rows) == k + 1:
            w_b = self.w[rows]
            try:
                w_inv = np.linalg.inv(w_b)
            except np.linalg.LinAlgError:
                w_inv = None
            if w_inv is not None:
                lam_b = np.zeros(m)
                lam_b[rows] = w_inv[0]  # W_B' lam_B = e_1  <=>  lam_B = first row of W_B^{-1}
                lmax = np.abs(lam_b).max()
                if lam_b.min() >= -1e-9 * lmax and abs(lam_b @ yi - res.fun) <= 1e-8 * zscale:
                    lam_b[lam_b < 0] = 0.0
                    return Basis(np.array(rows), w_inv, lam_b, True)
        # fall back: keep HiGHS' own dual for this point only
        self.bases.append(Basis(np.array(rows, dtype=int), None, lam_lp, False))
        return float(res.fun), len(self.bases) - 1
