"""Monte Carlo summaries: how honest the main estimates' uncertainty is, and what the
design can detect.

Per design, estimator and outcome, over the replicates (:func:`summarise`):

* ``bias``: mean of (estimate - matched truth), with its Monte Carlo SE; ``bias_se`` the
  bias in units of the mean SE;
* ``rmse``; ``mean_se`` and ``sd_error`` (SD of estimate - truth) and their ratio
  ``calibration`` (1 = the SEs are right on average);
* ``coverage`` of the 95% CIs with its Monte Carlo SE ``sqrt(c (1 - c) / K)``;
* ``rejection``: share of replicates whose CI excludes zero (under ``zero`` the size of the
  test, under the effect designs its power).

:func:`event_time_summary` gives coverage and calibration by event-time band;
:func:`power_curve` the rejection rate over the ``hr<x>`` designs. Targets of the honest-
uncertainty issue (:data:`TARGETS`): coverage in [0.93, 0.97], rejection under zero in
[0.03, 0.07], |bias| < 0.2 SE; :func:`passes` applies them within the Monte Carlo error
(Wilson intervals of the proportions).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: coverage band, size band, max |bias| / SE
TARGETS = {"coverage": (0.93, 0.97), "rejection_null": (0.03, 0.07), "abs_bias_se": 0.2}


def _agg(g: pd.DataFrame) -> pd.Series:
    ok = g.dropna(subset=["estimate", "se", "truth"])
    ok = ok[np.isfinite(ok["se"]) & (ok["se"] > 0)]
    k = len(ok)
    err = ok["estimate"] - ok["truth"]
    cov = ((ok["ci_low"] <= ok["truth"]) & (ok["truth"] <= ok["ci_high"])).astype(float)
    rej = ((ok["ci_low"] > 0) | (ok["ci_high"] < 0)).astype(float)
    c = float(cov.mean()) if k else np.nan
    r = float(rej.mean()) if k else np.nan
    sd = float(err.std(ddof=1)) if k > 1 else np.nan
    mse = float(ok["se"].mean()) if k else np.nan
    return pd.Series({
        "k": k, "k_failed": int(len(g) - k),
        "bias": float(err.mean()) if k else np.nan,
        "bias_mcse": sd / np.sqrt(k) if k > 1 else np.nan,
        "rmse": float(np.sqrt((err ** 2).mean())) if k else np.nan,
        "mean_se": mse, "sd_error": sd,
        "calibration": mse / sd if k > 1 and sd > 0 else np.nan,
        "bias_se": float(err.mean()) / mse if k and mse > 0 else np.nan,
        "coverage": c, "coverage_mcse": np.sqrt(c * (1 - c) / k) if k else np.nan,
        "rejection": r, "rejection_mcse": np.sqrt(r * (1 - r) / k) if k else np.nan,
        "mean_truth": float(ok["truth"].mean()) if k else np.nan,
        "median_abs_z": float(np.median(np.abs(err / ok["se"]))) if k else np.nan,
    })


def summarise(rows: pd.DataFrame) -> pd.DataFrame:
    """Headline summary per design x estimator x outcome (see module docstring)."""
    h = rows[rows["row"] == "headline"]
    keys = ["design", "estimator", "outcome"]
    out = h.groupby(keys, sort=True).apply(_agg, include_groups=False).reset_index()
    out["k"] = out["k"].astype(int)
    out["k_failed"] = out["k_failed"].astype(int)
    return out


#: event-time bands of the pointwise summary
BANDS = ((-12, -7), (-6, -1), (0, 5), (6, 11), (12, 17), (18, 24))


def event_time_summary(rows: pd.DataFrame, bands: tuple[tuple[int, int], ...] = BANDS) -> pd.DataFrame:
    """Pointwise coverage and calibration of the event-time estimates by band."""
    e = rows[rows["row"] == "event_time"].copy()
    e = e[e["event_time"].notna()]
    lab = np.full(len(e), None, dtype=object)
    for lo, hi in bands:
        lab[(e["event_time"] >= lo).to_numpy() & (e["event_time"] <= hi).to_numpy()] = f"{lo}..{hi}"
    e["band"] = lab
    e = e[e["band"].notna()]
    out = e.groupby(["design", "estimator", "outcome", "band"], sort=False).apply(_agg, include_groups=False)
    out = out.reset_index()
    order = {f"{lo}..{hi}": i for i, (lo, hi) in enumerate(bands)}
    out["band_order"] = out["band"].map(order)
    return out.sort_values(["design", "estimator", "outcome", "band_order"]).drop(columns="band_order").reset_index(drop=True)


def wilson(p: float, k: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson 95% interval of a proportion ``p`` estimated from ``k`` replicates (sensible
    at 0 and 1, where the normal Monte Carlo SE is zero)."""
    if not k or not np.isfinite(p):
        return (np.nan, np.nan)
    den = 1 + z * z / k
    mid = (p + z * z / (2 * k)) / den
    half = z * np.sqrt(p * (1 - p) / k + z * z / (4 * k * k)) / den
    return (float(mid - half), float(mid + half))


def _meets(p: float, k: int, band: tuple[float, float]) -> bool:
    lo, hi = wilson(p, k)
    return bool(np.isfinite(lo) and lo <= band[1] and hi >= band[0])


def passes(summary: pd.DataFrame, null_design: str = "zero") -> pd.DataFrame:
    """Per estimator x outcome: does it meet :data:`TARGETS`? Coverage (effects design)
    and |bias| < 0.2 SE from the effects design, size from the zero design. Within the
    Monte Carlo error: a proportion meets its band if the band intersects the proportion's
    Wilson 95% interval; the bias if |bias| - 2 MCSE < 0.2 mean SE."""
    eff = summary[summary["design"] == "effects"].set_index(["estimator", "outcome"])
    nul = summary[summary["design"] == null_design].set_index(["estimator", "outcome"])
    rows = []
    for key in eff.index.union(nul.index):
        e = eff.loc[key] if key in eff.index else None
        n = nul.loc[key] if key in nul.index else None
        cov_ok = e is not None and _meets(e["coverage"], int(e["k"]), TARGETS["coverage"])
        size_ok = n is not None and _meets(n["rejection"], int(n["k"]), TARGETS["rejection_null"])
        bias_ok = all(x is not None and abs(x["bias"]) - 2 * x["bias_mcse"] < TARGETS["abs_bias_se"] * x["mean_se"]
                      for x in (e, n))
        rows.append({"estimator": key[0], "outcome": key[1], "k": None if e is None else int(e["k"]),
                     "coverage": None if e is None else e["coverage"], "coverage_ok": bool(cov_ok),
                     "rejection_null": None if n is None else n["rejection"], "size_ok": bool(size_ok),
                     "bias_se_effects": None if e is None else e["bias_se"],
                     "bias_se_null": None if n is None else n["bias_se"], "bias_ok": bool(bias_ok),
                     "passes": bool(cov_ok and size_ok and bias_ok)})
    return pd.DataFrame(rows)


def power_curve(rows: pd.DataFrame) -> pd.DataFrame:
    """Rejection rate (power) and mean truth per ``hr<x>`` design, estimator and outcome."""
    h = rows[(rows["row"] == "headline") & rows["design"].astype(str).str.match(r"^(hr[\d.]+|zero)$")].copy()
    h["max_hazard_ratio"] = np.where(h["design"] == "zero", 1.0,
                                     pd.to_numeric(h["design"].astype(str).str[2:], errors="coerce"))
    out = h.groupby(["estimator", "outcome", "max_hazard_ratio"]).apply(_agg, include_groups=False).reset_index()
    return out[["estimator", "outcome", "max_hazard_ratio", "k", "mean_truth", "rejection", "rejection_mcse", "mean_se"]]
