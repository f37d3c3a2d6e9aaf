"""Wild cluster restricted bootstrap (WCR) for coefficients of the two-way FE regressions.

For a linear restriction ``r'b = theta0`` of a weighted two-way FE regression
``y = X b + a_i + l_t + e`` with clusters g = 1..G, the WCR (Cameron, Gelbach & Miller 2008;
MacKinnon, Nielsen & Webb 2023) bootstraps the t-statistic under the null:

* restricted fit ``b~ = b^ - (X~'WX~)^-1 r (r'b^ - theta0) / q`` (``q = r'(X~'WX~)^-1 r``),
  restricted residuals ``u~ = e + c p`` with ``p = X~ (X~'WX~)^-1 r`` and
  ``c = (r'b^ - theta0) / q``;
* bootstrap outcomes ``y* = X b~ + a~ + l~ + v_g u~`` with cluster weights ``v``
  (:mod:`.weights`), re-estimated with the fixed effects and the CRV1 standard error;
* ``p(theta0) = mean(|t*| > |t|)`` (strict, as ``wildboottest``; draws tied with ``|t|`` up
  to rounding, as the weight vectors ``v = +-1`` that reproduce the sample, do not count), the CI the set of
  ``theta0`` with ``p(theta0) > alpha`` (test inversion, bisection at both ends).

Nothing n x k dense is built, and the fixed effects are never densified: everything the
bootstrap needs is G-dimensional (Roodman, MacKinnon, Nielsen & Webb 2019, "fast and wild").
With ``s_g = X~_g' W u~_g`` the cluster scores, the bootstrap numerator is ``a'v`` with
``a_g = r'B s_g`` (``B = (X~'WX~)^-1``), and cluster g's bootstrap score of the restriction
is ``(M v)_g`` with

    M = diag(a) - K - H B S~'

where ``H_g = r'B X~_g'W X~_g`` and ``K_gh = sum_{i in g} w_i p_i [P_FE(u~ 1_h)]_i`` (the
fixed effects' projection of cluster h's restricted residuals; it is why the bootstrap equals
the one of the regression with explicit dummies). ``a`` and ``M`` are linear in ``c``, so
after two (B x G) products per restriction every ``theta0`` costs O(B): test inversion is
cheap. The CRV1 small-sample factor cancels from ``t*/t``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ifm_eval.estimators.fe import FEFit
from ifm_eval.inference.weights import draw_weights

#: relative tolerance below which |t*| and |t| are a tie (not an exceedance)
TIE_RTOL = 1e-9
#: bisection steps of the test inversion (interval bounds to ~1e-9 of their bracket)
BISECT_STEPS = 40


@dataclass
class _Restriction:
    """Per-draw pieces of one restriction's bootstrap t-statistic as functions of ``c``."""

    estimate: float
    q: float
    se_num: float  # sqrt(sum_g a_e,g^2): analytic SE without the small-sample factor
    n_e: np.ndarray
    n_p: np.ndarray
    Qee: np.ndarray
    Qep: np.ndarray
    Qpp: np.ndarray

    def t_obs(self, c: float) -> float:
        return c * self.q / self.se_num

    def t_boot(self, c: float) -> np.ndarray:
        den = np.sqrt(np.clip(self.Qee + 2 * c * self.Qep + c * c * self.Qpp, 0.0, None))
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(den > 0, (self.n_e + c * self.n_p) / den, 0.0)

    def p(self, c: float) -> float:
        # strict exceedance; draws equal to |t| up to rounding (e.g. v = +-1, which
        # reproduces the sample) are ties and do not count
        return float(np.mean(np.abs(self.t_boot(c)) > abs(self.t_obs(c)) * (1 + TIE_RTOL) + 1e-300))

    def c_of(self, theta0: float) -> float:
        return (self.estimate - theta0) / self.q


class WCRProblem:
    """The WCR of one fitted regression (:func:`ifm_eval.estimators.fe.feols`) with cluster
    weights ``V`` (B x G, shared by every restriction tested on it)."""

    def __init__(self, fit: FEFit, weights: str = "webb", draws: int = 9999,
                 seed: int | None = None, V: np.ndarray | None = None,
                 enumerated: bool = False) -> None:
        if fit.design is None:
            raise ValueError("wild cluster bootstrap: the fit has no regressors")
        self.fit = fit
        self.d = fit.design
        self.G = self.d.n_clusters
        if V is None:
            V, enumerated = draw_weights(weights, self.G, draws, seed)
        if V.shape[1] != self.G:
            raise ValueError(f"weights for {V.shape[1]} clusters, the fit has {self.G}")
        self.V, self.enumerated = np.asarray(V, dtype=float), bool(enumerated)
        self.weights = weights
        fe = self.d.fe
        self._w = fe.w
        self._uc = fe.u * self.G + self.d.ccode
        self._tc = fe.t * self.G + self.d.ccode

    @classmethod
    def with_weights(cls, fit: FEFit, V: np.ndarray, enumerated: bool, weights: str) -> WCRProblem:
        """The WCR with given cluster weights (B x G, in the fit's cluster-code order)."""
        return cls(fit, weights, V=V, enumerated=enumerated)

    # ------------------------------------------------------------------ pieces
    def _csum(self, z: np.ndarray) -> np.ndarray:
        return np.bincount(self.d.ccode, weights=z, minlength=self.G)

    def _K(self, p: np.ndarray, z: np.ndarray) -> np.ndarray:
        """``K_gh = sum_{i in g} w_i p_i [P_FE(z 1_h)]_i`` (G x G)."""
        fe, G = self.d.fe, self.G
        wz = self._w * z
        su = np.bincount(self._uc, weights=wz, minlength=fe.n_u * G).reshape(fe.n_u, G)
        st = np.bincount(self._tc, weights=wz, minlength=fe.n_t * G).reshape(fe.n_t, G)
        a, lt = fe.solve(su, st)
        wp = self._w * p
        Pu = np.bincount(self._uc, weights=wp, minlength=fe.n_u * G).reshape(fe.n_u, G)
        Pt = np.bincount(self._tc, weights=wp, minlength=fe.n_t * G).reshape(fe.n_t, G)
        return Pu.T @ a + Pt.T @ lt

    def restriction(self, r: np.ndarray) -> _Restriction:
        """Precompute the bootstrap of ``r'b`` (``r`` over ``fit.names``)."""
        fit, d = self.fit, self.d
        r = np.asarray(r, dtype=float)
        if r.shape != (len(fit.coef),):
            raise ValueError(f"restriction has {r.shape} entries, the fit {len(fit.coef)} coefficients")
        B = fit.bread
        A = B @ r
        q = float(r @ A)
        if not q > 0:
            raise ValueError("restriction with zero variance")
        p = d.times(A)[:, 0]
        e = fit.resid
        H = d.scores(p)  # G x k
        S_e = fit.scores
        wp = self._w * p
        a_e, a_p = self._csum(wp * e), self._csum(wp * p)
        HB = H @ B
        M_e = np.diag(a_e) - self._K(p, e) - HB @ S_e.T
        M_p = np.diag(a_p) - self._K(p, p) - HB @ H.T
        V = self.V
        Ye, Yp = V @ M_e.T, V @ M_p.T
        return _Restriction(float(r @ fit.coef), q, float(np.sqrt(a_e @ a_e)), V @ a_e, V @ a_p,
                            np.einsum("bg,bg->b", Ye, Ye), np.einsum("bg,bg->b", Ye, Yp),
                            np.einsum("bg,bg->b", Yp, Yp))

    # ------------------------------------------------------------------ tests
    def test(self, r: np.ndarray, theta0: float = 0.0, alpha: float = 0.05) -> dict[str, float]:
        """WCR p-value of ``r'b = theta0`` and the (1 - alpha) CI by test inversion; also the
        bootstrap t-statistics under ``r'b = 0`` (``t_boot``, for step-down procedures)."""
        R = self.restriction(r)
        c0 = R.c_of(theta0)
        lo, hi = self._invert(R, alpha)
        scale = 1.0 / np.sqrt(self.fit.ssc)  # CRV1 small-sample factor (cancels in p)
        return {"estimate": R.estimate, "p": R.p(c0), "ci_low": lo, "ci_high": hi,
                "t": scale * R.t_obs(R.c_of(0.0)), "t_boot": scale * R.t_boot(R.c_of(0.0))}

    def _invert(self, R: _Restriction, alpha: float) -> tuple[float, float]:
        step = R.se_num / R.q  # one (unscaled) standard error in units of c
        bounds = []
        for sign in (1.0, -1.0):  # c > 0: theta0 below the estimate
            inside, out = 0.0, sign * 2.0 * step
            for _ in range(60):
                if R.p(out) <= alpha:
                    break
                inside, out = out, 2.0 * out
            else:
                bounds.append(np.nan)
                continue
            for _ in range(BISECT_STEPS):
                mid = 0.5 * (inside + out)
                if R.p(mid) > alpha:
                    inside = mid
                else:
                    out = mid
            bounds.append(R.estimate - 0.5 * (inside + out) * R.q)
        return bounds[0], bounds[1]


def wcr_rows(fit: FEFit, restrictions: dict[str, np.ndarray], weights: str, draws: int,
             seed: int | None, alpha: float = 0.05) -> tuple[pd.DataFrame, dict[str, np.ndarray], dict]:
    """WCR p-values and test-inversion CIs of each named restriction (term -> vector over
    ``fit.names``), all with the same cluster weights. Returns the rows (``term``,
    ``boot_p``, ``boot_ci_low``, ``boot_ci_high``, ``boot_t``), the bootstrap t-statistics
    under each null (term -> B) and the method's info."""
    return restriction_rows(WCRProblem(fit, weights, draws, seed), restrictions, alpha)


def restriction_rows(prob: WCRProblem, restrictions: dict[str, np.ndarray], alpha: float = 0.05,
                     ) -> tuple[pd.DataFrame, dict[str, np.ndarray], dict]:
    """:func:`wcr_rows` on a prepared problem (its weights)."""
    rows, tboot = [], {}
    for term, r in restrictions.items():
        res = prob.test(r, 0.0, alpha)
        rows.append({"term": term, "boot_p": res["p"], "boot_ci_low": res["ci_low"],
                     "boot_ci_high": res["ci_high"], "boot_t": res["t"]})
        tboot[term] = res["t_boot"]
    info = {"method": "wild cluster restricted bootstrap (WCR-C, test inversion)", "weights": prob.weights,
            "draws": int(prob.V.shape[0]), "enumerated": bool(prob.enumerated), "clusters": int(prob.G)}
    return pd.DataFrame(rows), tboot, info
