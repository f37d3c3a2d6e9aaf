"""Meaningful indicators (Landtag request 5, *aussagekräftige Kennzahlen*): which quarterly
KPIs of the IM reports track the administrative outcomes they stand for.

Coverage and gaps
-----------------
A municipality is expected to report every quarter from the quarter its first IM post
started (or its first report, if earlier) to the last quarter of the delivery. Per KPI:
*coverage* = reported municipality-quarters / expected ones (a quarter without a report
row counts as not reported); *gaps* = runs of consecutive quarters not reported (number,
mean and longest run, share of municipalities with a gap of two quarters or more).

Tracking
--------
For the KPI count ``K`` of a municipality-quarter (a flow: transitions in the quarter)
per 100 clients, ``x = 100 K / clients``, and the change of the corresponding
administrative stock over the quarter per 100 refugees in AU,
``y = 100 (stock at the end of the quarter - stock at the end of the previous quarter) /
mean refugees in the quarter`` (panel: ``b1_holders`` for language, ``in_training`` for
training, ``employed`` for work; their sum, *any milestone*, for integration plans and
first talks, which have no outcome of their own), the weighted Pearson correlation
(weights: mean refugees in the quarter, so that the noise of very small municipalities
counts less) is computed

* *pooled* across municipality-quarters,
* *within* municipalities (both variables demeaned per municipality: does the KPI move
  when the municipality's outcome moves?),
* *two-way* (demeaned per municipality and per quarter: beyond common seasonal and
  state-wide movements).

Intervals: percentile intervals of a municipality (cluster) bootstrap, with the
demeaned values held fixed (exact for pooled and within; for two-way the quarter means
are not re-estimated per draw).

*Verdict* (on the within correlation ``r`` of the KPI with its own outcome): **tracks** if
``r >= kpi_tracks_r`` (default 0.3) and the interval excludes 0; **weak** if
``r >= kpi_weak_r`` (default 0.1) and the interval excludes 0; otherwise **does not
track**. Assumptions and caveats: the KPI counts gross transitions, the stock change is
net of exits, so even a perfect KPI does not correlate perfectly; B1 holders are counted
where the exam results are reported (quarters with a missing end-of-quarter value are
dropped, not imputed); clients counted in the KPI are not necessarily the refugees in AU.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

KPIS = ("first_talks", "integration_plans", "to_language_course", "to_training", "to_work")
KPI_COLUMNS = ("ags", "quarter_start", "clients", *KPIS)
#: administrative stocks (panel columns); ``milestones`` = their sum
OUTCOMES = ("b1_holders", "in_training", "employed", "milestones")
TARGET = {"to_language_course": "b1_holders", "to_training": "in_training", "to_work": "employed",
          "integration_plans": "milestones", "first_talks": "milestones"}
KINDS = ("pooled", "within", "twoway")
VERDICTS = ("tracks", "weak", "does not track")


def _quarter(s: pd.Series) -> pd.Series:
    return pd.to_datetime(s).dt.to_period("Q").dt.start_time


def _qindex(s: pd.Series) -> np.ndarray:
    q = pd.to_datetime(s)
    return (q.dt.year * 4 + (q.dt.month - 1) // 3).to_numpy()


def check_kpi(kpi: pd.DataFrame, source: str = "kpi") -> pd.DataFrame:
    missing = [c for c in KPI_COLUMNS if c not in kpi.columns]
    if missing:
        raise ValueError(f"{source}: missing column(s) {missing} (has {list(kpi.columns)})")
    k = kpi[list(KPI_COLUMNS)].copy()
    k["ags"] = k["ags"].astype(str)
    k["quarter_start"] = _quarter(k["quarter_start"])
    for c in ("clients", *KPIS):
        v = pd.to_numeric(k[c], errors="coerce")
        bad = (v < 0) | (v.isna() & kpi[c].notna())
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise ValueError(f"{source}: row {i}, column {c!r}: {kpi[c].iloc[i]!r} is not a count")
        k[c] = v.astype(float)
    dup = k.duplicated(["ags", "quarter_start"])
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        raise ValueError(f"{source}: row {i}: municipality {k['ags'].iloc[i]} reports quarter "
                         f"{k['quarter_start'].iloc[i]:%Y-%m} twice")
    return k


def expected_quarters(kpi: pd.DataFrame, posts: pd.DataFrame | None = None) -> pd.DataFrame:
    """Municipality-quarters a report is expected for (``ags, quarter_start``)."""
    start = kpi.groupby("ags")["quarter_start"].min()
    if posts is not None and len(posts):
        fp = _quarter(pd.to_datetime(posts["beginn"])).groupby(posts["ags"].astype(str)).min()
        start = pd.concat([start, fp], axis=1).min(axis=1)
    last = kpi["quarter_start"].max()
    rows = [(a, q) for a, s in start.items() for q in pd.date_range(s, last, freq="QS")]
    return pd.DataFrame(rows, columns=["ags", "quarter_start"]).sort_values(["ags", "quarter_start"], ignore_index=True)


def gap_runs(missing: np.ndarray) -> list[int]:
    """Lengths of the runs of consecutive ``True`` (missing) values."""
    runs, n = [], 0
    for m in np.asarray(missing, dtype=bool):
        if m:
            n += 1
        elif n:
            runs.append(n)
            n = 0
    if n:
        runs.append(n)
    return runs


def coverage_table(kpi: pd.DataFrame, expected: pd.DataFrame) -> pd.DataFrame:
    """Per KPI (and ``clients``): coverage and gaps of the reports."""
    full = expected.merge(kpi, on=["ags", "quarter_start"], how="left", indicator=True)
    no_row = int((full["_merge"] == "left_only").sum())
    rows = []
    for c in ("clients", *KPIS):
        miss = full[c].isna()
        runs_all, with_gap, with_gap2, never = [], 0, 0, 0
        for _a, d in full.assign(_m=miss).groupby("ags", sort=False):
            r = gap_runs(d["_m"].to_numpy())
            runs_all += r
            with_gap += bool(r)
            with_gap2 += any(x >= 2 for x in r)
            never += bool(d["_m"].all())
        n_muni = int(full["ags"].nunique())
        rows.append({
            "kpi": c, "n_expected": int(len(full)), "n_reported": int((~miss).sum()),
            "coverage": float((~miss).mean()) if len(full) else np.nan,
            "n_quarters_without_report_row": no_row, "n_municipalities": n_muni,
            "n_municipalities_never_reported": int(never), "n_gap_runs": len(runs_all),
            "mean_gap_quarters": float(np.mean(runs_all)) if runs_all else 0.0,
            "max_gap_quarters": int(max(runs_all)) if runs_all else 0,
            "share_municipalities_with_gap": with_gap / n_muni if n_muni else np.nan,
            "share_municipalities_with_gap2": with_gap2 / n_muni if n_muni else np.nan,
        })
    return pd.DataFrame(rows)


def admin_quarterly(panel: pd.DataFrame) -> pd.DataFrame:
    """Per municipality-quarter: mean refugees and the change of each stock over the quarter
    per 100 refugees (``d_<outcome>``; NaN where an end-of-quarter value is missing)."""
    need = ["ags", "month", "refugees", "employed", "in_training", "b1_holders"]
    missing = [c for c in need if c not in panel.columns]
    if missing:
        raise ValueError(f"panel: missing column(s) {missing}")
    p = panel[need].copy()
    p["ags"] = p["ags"].astype(str)
    p["month"] = pd.to_datetime(p["month"]).dt.to_period("M").dt.to_timestamp()
    p["milestones"] = p["employed"] + p["in_training"] + p["b1_holders"]
    p["quarter_start"] = _quarter(p["month"])
    p = p.sort_values(["ags", "month"])
    is_end = p["month"].dt.month % 3 == 0
    ends = p[is_end].set_index(["ags", "quarter_start"])[list(OUTCOMES)]
    mean_ref = p.groupby(["ags", "quarter_start"])["refugees"].mean().rename("refugees_mean")
    # the previous quarter's end value, looked up by date (robust to missing panel months)
    prev = ends.copy()
    prev.index = pd.MultiIndex.from_arrays(
        [prev.index.get_level_values("ags"), prev.index.get_level_values("quarter_start") + pd.DateOffset(months=3)],
        names=["ags", "quarter_start"])
    prev = prev.reindex(ends.index)
    out = pd.concat([mean_ref, ends - prev], axis=1)
    for c in OUTCOMES:
        out[f"d_{c}"] = np.where(out["refugees_mean"] > 0, 100.0 * out[c] / out["refugees_mean"].where(out["refugees_mean"] > 0), np.nan)
    return out[["refugees_mean", *[f"d_{c}" for c in OUTCOMES]]].reset_index()


def analysis_table(kpi: pd.DataFrame, expected: pd.DataFrame, admin: pd.DataFrame) -> pd.DataFrame:
    """Expected municipality-quarters with ``x_<kpi> = 100 kpi / clients`` (NaN where not
    reported or no clients) and the admin changes ``d_<outcome>``."""
    t = expected.merge(kpi, on=["ags", "quarter_start"], how="left").merge(admin, on=["ags", "quarter_start"], how="left")
    cl = t["clients"].where(t["clients"] > 0)
    for k in KPIS:
        t[f"x_{k}"] = 100.0 * t[k] / cl
    return t


# --------------------------------------------------------------------------- correlation
def weighted_corr(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    w = np.asarray(w, dtype=float)
    sw = w.sum()
    if sw <= 0 or len(x) < 3:
        return np.nan
    mx, my = (w * x).sum() / sw, (w * y).sum() / sw
    cxy = (w * (x - mx) * (y - my)).sum()
    cxx, cyy = (w * (x - mx) ** 2).sum(), (w * (y - my) ** 2).sum()
    return float(cxy / np.sqrt(cxx * cyy)) if cxx > 0 and cyy > 0 else np.nan


def _demean(v: np.ndarray, codes: np.ndarray, w: np.ndarray) -> np.ndarray:
    sw = np.bincount(codes, w)
    m = np.bincount(codes, w * v) / np.where(sw > 0, sw, 1.0)
    return v - m[codes]


def demean(v: np.ndarray, w: np.ndarray, *groups: np.ndarray, tol: float = 1e-10, max_iter: int = 200) -> np.ndarray:
    """Weighted demeaning by one or more groupings (alternating projections)."""
    out = np.asarray(v, dtype=float).copy()
    codes = [pd.factorize(g)[0] for g in groups]
    for _ in range(max_iter if len(codes) > 1 else 1):
        before = out.copy()
        for c in codes:
            out = _demean(out, c, w)
        if np.max(np.abs(out - before)) < tol:
            break
    return out


def _boot_corr(x: np.ndarray, y: np.ndarray, w: np.ndarray, cluster: np.ndarray, n_boot: int,
               rng: np.random.Generator) -> np.ndarray:
    codes, uniq = pd.factorize(cluster)
    g = len(uniq)
    counts = rng.multinomial(g, np.full(g, 1.0 / g), size=int(n_boot)).astype(float)
    ww = counts[:, codes] * w[None, :]
    sw = ww.sum(axis=1, keepdims=True)
    mx = (ww * x).sum(axis=1, keepdims=True) / sw
    my = (ww * y).sum(axis=1, keepdims=True) / sw
    cxy = (ww * (x - mx) * (y - my)).sum(axis=1)
    cxx = (ww * (x - mx) ** 2).sum(axis=1)
    cyy = (ww * (y - my) ** 2).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return cxy / np.sqrt(cxx * cyy)


def correlations(table: pd.DataFrame, n_boot: int = 199, seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """Every KPI x outcome x kind (pooled / within / two-way): ``r``, bootstrap interval,
    number of municipality-quarters and municipalities used."""
    rows = []
    a = (1.0 - level) / 2.0
    for i, k in enumerate(KPIS):
        for j, o in enumerate(OUTCOMES):
            d = table[["ags", "quarter_start", f"x_{k}", f"d_{o}", "refugees_mean"]].dropna()
            d = d[d["refugees_mean"] > 0]
            x, y, w = d[f"x_{k}"].to_numpy(float), d[f"d_{o}"].to_numpy(float), d["refugees_mean"].to_numpy(float)
            ags, q = d["ags"].to_numpy(), d["quarter_start"].to_numpy()
            variants = {"pooled": (x, y), "within": (demean(x, w, ags), demean(y, w, ags)),
                        "twoway": (demean(x, w, ags, q), demean(y, w, ags, q))}
            for kind, (xv, yv) in variants.items():
                r = weighted_corr(xv, yv, w)
                lo = hi = np.nan
                if n_boot and len(d) >= 3:
                    rng = np.random.default_rng([int(seed), i, j, KINDS.index(kind)])
                    b = _boot_corr(xv, yv, w, ags, n_boot, rng)
                    b = b[np.isfinite(b)]
                    if len(b):
                        lo, hi = float(np.quantile(b, a)), float(np.quantile(b, 1 - a))
                rows.append({"kpi": k, "outcome": o, "target": TARGET[k] == o, "kind": kind, "r": r,
                             "ci_low": lo, "ci_high": hi, "n_obs": int(len(d)),
                             "n_municipalities": int(pd.Series(ags).nunique())})
    return pd.DataFrame(rows)


def verdict(r: float, ci_low: float, tracks_r: float = 0.3, weak_r: float = 0.1) -> str:
    if np.isfinite(r) and r >= tracks_r and ci_low > 0:
        return "tracks"
    if np.isfinite(r) and r >= weak_r and ci_low > 0:
        return "weak"
    return "does not track"


def verdict_table(corr: pd.DataFrame, coverage: pd.DataFrame, tracks_r: float = 0.3, weak_r: float = 0.1) -> pd.DataFrame:
    """One row per KPI: its target outcome, coverage and gaps, the three correlations with
    the target and the verdict (rule in the column ``rule``)."""
    rows = []
    cov = coverage.set_index("kpi")
    for k in KPIS:
        t = corr[(corr["kpi"] == k) & (corr["outcome"] == TARGET[k])].set_index("kind")
        w = t.loc["within"]
        row = {"kpi": k, "outcome": TARGET[k], "coverage": cov.at[k, "coverage"],
               "max_gap_quarters": cov.at[k, "max_gap_quarters"],
               "share_municipalities_with_gap2": cov.at[k, "share_municipalities_with_gap2"],
               "n_obs": int(w["n_obs"]), "n_municipalities": int(w["n_municipalities"])}
        for kind in KINDS:
            row[f"r_{kind}"] = t.at[kind, "r"]
            row[f"r_{kind}_ci_low"] = t.at[kind, "ci_low"]
            row[f"r_{kind}_ci_high"] = t.at[kind, "ci_high"]
        row["verdict"] = verdict(float(w["r"]), float(w["ci_low"]), tracks_r, weak_r)
        row["rule"] = (f"within-municipality r >= {tracks_r:g} and CI > 0: tracks; r >= {weak_r:g} "
                       "and CI > 0: weak; otherwise: does not track")
        rows.append(row)
    return pd.DataFrame(rows)
