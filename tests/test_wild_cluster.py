"""Wild cluster restricted bootstrap (ifm_eval.inference.wild_cluster) against wildboottest
(pyfixest's backend, test-only) and against a brute-force bootstrap with explicit dummies."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from ifm_eval.estimators.fe import TwoWayFE, feols
from ifm_eval.inference.weights import draw_weights
from ifm_eval.inference.wild_cluster import WCRProblem, wcr_rows


def _panel(G: int, n_units: int = 48, n_t: int = 10, seed: int = 3, weighted: bool = False):
    rng = np.random.default_rng(seed)
    u = np.repeat(np.arange(n_units), n_t)
    t = np.tile(np.arange(n_t), n_units)
    cl = u % G
    x1 = rng.normal(size=len(u)) + 0.3 * t
    x2 = (rng.random(len(u)) < 0.4).astype(float)
    y = (0.1 * x1 + rng.normal(size=n_units)[u] + rng.normal(size=n_t)[t]
         + rng.normal(size=len(u)) * (1 + cl / 3) + rng.normal(size=G)[cl])
    w = rng.uniform(0.5, 3.0, n_units)[u] if weighted else np.ones(len(u))
    return pd.DataFrame({"y": y, "x1": x1, "x2": x2, "u": u, "t": t, "cl": cl, "w": w})


def _fit(df: pd.DataFrame):
    fe = TwoWayFE(df["u"].to_numpy(), df["t"].to_numpy(), df["w"].to_numpy())
    return feols(df["y"].to_numpy(), df[["x1", "x2"]].to_numpy(), fe, ["x1", "x2"], cluster=df["cl"].to_numpy())


@pytest.mark.parametrize("G", [8, 12])
def test_wcr_equals_wildboottest_full_enumeration(G, monkeypatch):
    """With G <= 12 both enumerate all 2^G Rademacher vectors (same order): the bootstrap
    t-statistics agree draw by draw, and so does the p-value. The two vectors v = +-1
    reproduce the sample (|t*| = |t| exactly in exact arithmetic): wildboottest's strict
    ``|t| < |t*|`` counts them or not by rounding, ours treats them as ties (not counted)."""
    pf = pytest.importorskip("pyfixest")
    wb = pytest.importorskip("wildboottest.wildboottest")
    import numba

    # ifm_eval.cli pins NUMBA_NUM_THREADS=1 in the environment when imported (by earlier tests);
    # numba refuses a value that differs from its pool's once threads run: keep its own
    monkeypatch.setenv("NUMBA_NUM_THREADS", str(numba.config.NUMBA_NUM_THREADS))
    df = _panel(G)
    fit = _fit(df)
    m = pf.feols("y ~ x1 + x2 | u + t", df, vcov={"CRV1": "cl"})
    np.testing.assert_allclose(fit.coef, m.coef().to_numpy(), rtol=1e-10)
    B = 2 ** G + 1  # more draws than vectors: enumeration in both
    prob = WCRProblem(fit, "rademacher", B, 1)
    assert prob.enumerated and prob.V.shape == (2 ** G, G)
    _Y, X, names = m._model_matrix_one_hot()
    for j, name in enumerate(["x1", "x2"]):
        r = np.zeros(2)
        r[j] = 1.0
        ours = prob.test(r)
        R = np.zeros(len(names))
        R[names.index(name)] = 1.0
        boot = wb.WildboottestCL(X=X, Y=_Y, cluster=df["cl"].to_numpy(), R=R, B=B, seed=1, parallel=False)
        boot.get_scores(bootstrap_type="11", impose_null=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            boot.get_weights(weights_type="rademacher")
        boot.get_numer()
        boot.get_denom()
        boot.get_tboot()
        boot.get_vcov()
        boot.get_tstat()
        boot.get_pvalue(pval_type="two-tailed")
        # t-statistics up to the small-sample factor (wildboottest counts every dummy in K,
        # fixest only the FE not nested in clusters); it scales t and t* alike
        scale = float(np.ravel(boot.t_stat)[0]) / ours["t"]
        assert abs(scale - np.sqrt(fit.ssc / float(boot.ssc))) < 1e-8
        t_ref = np.ravel(boot.t_boot) / scale
        np.testing.assert_allclose(ours["t_boot"], t_ref, rtol=1e-7, atol=1e-9)
        ties = np.isclose(np.abs(t_ref), abs(ours["t"]), rtol=1e-9, atol=0)
        assert ties.sum() == 2  # v = +1 and v = -1
        p_ref_untied = np.mean((np.abs(t_ref) > abs(ours["t"])) & ~ties)
        assert ours["p"] == p_ref_untied
        # and wildboottest's own p differs from it only by its rounding of those two ties
        assert float(boot.pvalue) * 2 ** G - ours["p"] * 2 ** G in (0.0, 1.0, 2.0)


def _brute_force_wcr(df: pd.DataFrame, j: int, V: np.ndarray, theta0: float = 0.0):
    """The WCR written out: dummies explicit, restricted fit, one regression per draw."""
    D = np.column_stack([pd.get_dummies(df["u"]).to_numpy(float), pd.get_dummies(df["t"]).to_numpy(float)[:, 1:]])
    X = df[["x1", "x2"]].to_numpy()
    Z = np.column_stack([X, D])
    w = df["w"].to_numpy()
    y = df["y"].to_numpy()
    cl = df["cl"].to_numpy()
    G = cl.max() + 1
    sw = np.sqrt(w)

    def ols(yy):
        coef, *_ = np.linalg.lstsq(Z * sw[:, None], yy * sw, rcond=None)
        return coef, yy - Z @ coef

    ZWZinv = np.linalg.pinv(Z.T @ (Z * w[:, None]))

    def tstat(coef, e, target):
        S = np.vstack([Z[cl == g].T @ (w[cl == g] * e[cl == g]) for g in range(G)])
        Vc = ZWZinv @ (S.T @ S) @ ZWZinv
        return (coef[j] - target) / np.sqrt(Vc[j, j])

    coef, e = ols(y)
    t0 = tstat(coef, e, theta0)
    # restricted: y - theta0 x_j on the other regressors
    others = [k for k in range(Z.shape[1]) if k != j]
    Zr = Z[:, others]
    cr, *_ = np.linalg.lstsq(Zr * sw[:, None], (y - theta0 * X[:, j]) * sw, rcond=None)
    fitted = Zr @ cr + theta0 * X[:, j]
    ur = y - fitted
    tb = np.array([tstat(*ols(fitted + v[cl] * ur), theta0) for v in V])
    return t0, tb


@pytest.mark.parametrize("weights", ["rademacher", "webb"])
def test_wcr_weighted_matches_brute_force(weights):
    """Observation weights (WLS; wildboottest has none): the bootstrap t-statistics equal a
    brute-force WCR with explicit dummies draw by draw, at theta0 = 0 and off the null; the
    test-inversion bounds have p = alpha."""
    df = _panel(6, n_units=30, n_t=8, seed=5, weighted=True)
    fit = _fit(df)
    V, _ = draw_weights(weights, 6, 300, 7)
    prob = WCRProblem(fit, weights, 300, 7)
    np.testing.assert_array_equal(prob.V, V)
    for j in (0, 1):
        r = np.eye(2)[j]
        R = prob.restriction(r)
        for theta0 in (0.0, float(fit.coef[j]) + 0.7 * float(fit.se()[j])):
            t0, tb = _brute_force_wcr(df, j, V, theta0)
            c = R.c_of(theta0)
            assert abs(R.t_obs(c) - t0) < 1e-7 * max(1, abs(t0))  # both without the factor
            np.testing.assert_allclose(R.t_boot(c), tb, rtol=1e-7, atol=1e-9)
        res = prob.test(r)
        assert res["ci_low"] < fit.coef[j] < res["ci_high"]
        for bound, inward in ((res["ci_low"], 1), (res["ci_high"], -1)):
            eps = 1e-6 * float(fit.se()[j])
            assert R.p(R.c_of(bound - inward * eps)) <= 0.05 < R.p(R.c_of(bound + inward * eps))


def test_wcr_agrees_with_analytic_with_many_clusters():
    """200 clusters: WCR and analytic CRV1 (normal) p-values and intervals agree within
    Monte Carlo error of 9,999 draws."""
    from scipy import stats

    df = _panel(200, n_units=400, n_t=6, seed=11)
    fit = _fit(df)
    rows, _, info = wcr_rows(fit, {"x1": np.array([1.0, 0.0]), "x2": np.array([0.0, 1.0])}, "webb", 9999, 3)
    assert info["draws"] == 9999 and not info["enumerated"] and info["clusters"] == 200
    se = fit.se()
    p_an = 2 * stats.norm.sf(np.abs(fit.coef / se))
    mc_se = np.sqrt(p_an * (1 - p_an) / 9999)
    assert np.all(np.abs(rows["boot_p"].to_numpy() - p_an) < 4 * mc_se + 0.01)
    np.testing.assert_allclose(rows["boot_ci_low"], fit.coef - 1.96 * se, atol=0.06 * se.max())
    np.testing.assert_allclose(rows["boot_ci_high"], fit.coef + 1.96 * se, atol=0.06 * se.max())


def test_webb_weights_and_enumeration():
    V, enum = draw_weights("webb", 3, 216, 0)
    assert enum and V.shape == (216, 3) and np.allclose(V.mean(axis=0), 0) and np.allclose((V ** 2).mean(axis=0), 1)
    V, enum = draw_weights("webb", 44, 9999, 0)
    assert not enum and np.allclose((V ** 2).mean(), 1, atol=0.02)
    with pytest.raises(ValueError, match="mammen"):
        draw_weights("mammen", 3, 10, 0)
