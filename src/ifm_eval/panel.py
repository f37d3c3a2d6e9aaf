"""The municipality x month panel.

One row per (AGS, month) for all 1,101 municipalities of the reference frame and every
month ``panel.start .. panel.end``. Built from the processed ingest files, the treatment
table and (if present) the harmonised survey moderators; writes the panel Parquet, a data
dictionary, the concatenated lineage table and a data-quality table.

Masked counts (BA style, ``*`` = 1 or 2 persons): the point value follows
``panel.masked_count_rule`` (midpoint 1.5, lower 1, upper 2); the bounds are always kept
in ``*_lo`` / ``*_hi`` (``-`` = 0 gives lo = hi = 0) and ``*_masked`` flags masked cells,
so an analysis can bound the effect of the rule.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ifm_eval import paths
from ifm_eval.lineage import COLUMNS as LINEAGE_COLUMNS
from ifm_eval.lineage import Lineage

log = logging.getLogger(__name__)

#: name -> (unit, source, definition). dtype is taken from the written frame.
DICTIONARY: dict[str, tuple[str, str, str]] = {
    "ags": ("", "reference", "8-digit Amtlicher Gemeindeschlüssel (text)"),
    "month": ("month", "panel", "calendar month (datetime64, first day of the month)"),
    "t": ("period", "panel", "period index, 1 = first panel month (panel.start)"),
    "kreis": ("", "reference", "5-digit Kreis key"),
    "verband_id": ("", "funding_applications", "Antrags-Nr. of the applicant Verband; "
                   "'none_<ags>' for municipalities that did not apply (singleton cluster)"),
    "cohort_month": ("month", "im_posts", "IM start month by panel.treatment_rule (NaT = never treated)"),
    "g": ("period", "im_posts", "period index t of cohort_month; 0 = never treated"),
    "g_first_post": ("period", "im_posts", "g under the first_post rule (0 = never)"),
    "g_all_posts": ("period", "im_posts", "g under the all_posts rule (0 = never)"),
    "g_half_posts": ("period", "im_posts", "g under the official half_posts rule (0 = never)"),
    "event_time": ("months", "panel", "t - g (NA for never treated)"),
    "treated_post": ("0/1", "panel", "1 if treated and t >= g"),
    "applied": ("bool", "funding_applications", "municipality is a funding member"),
    "refugees": ("persons", "refugees_au", "month-end stock of refugees in AU (target group); "
                 "the denominator of the rates; NaN = not reported"),
    "employed": ("persons", "employment_ba", "employed subject to social insurance (SvB), "
                 "point value of masked cells by panel.masked_count_rule"),
    "employed_lo": ("persons", "employment_ba", "lower bound (masked '*' = 1)"),
    "employed_hi": ("persons", "employment_ba", "upper bound (masked '*' = 2)"),
    "employed_masked": ("bool", "employment_ba", "cell masked ('*') in the BA file"),
    "in_training": ("persons", "training", "in vocational training + further training "
                    "(sum of the two BA columns; point value by masked_count_rule)"),
    "training_lo": ("persons", "training", "lower bound (each '*' = 1)"),
    "training_hi": ("persons", "training", "upper bound (each '*' = 2)"),
    "training_masked": ("bool", "training", "at least one of the two cells masked"),
    "b1_holders": ("persons", "language_b1", "persons holding a B1 certificate (DTZ) as reported; "
                   "NaN = not reported"),
    "b1_holders_filled": ("persons", "panel", "b1_holders with short reporting gaps filled by "
                          "panel.b1_gap_fill (interpolate: linear between the adjacent reported "
                          "months of the municipality, nearest reported month at the panel edges; "
                          "gaps of at most B1_MAX_GAP = 2 months; longer gaps stay NaN)"),
    "b1_imputed": ("bool", "panel", "b1_holders not reported and b1_holders_filled interpolated"),
    "rate_employment": ("percent", "panel", "100 * employed / refugees (NaN if refugees is 0 or missing)"),
    "rate_training": ("percent", "panel", "100 * in_training / refugees"),
    "rate_language": ("percent", "panel", "100 * b1_holders_filled / refugees (= b1_holders where "
                      "reported; see b1_imputed)"),
    "population": ("persons", "reference", "population 31.12.2019 (Destatis)"),
    "log_population": ("log persons", "reference", "natural log of population 31.12.2019"),
    "urbanisation": ("code", "reference", "degree of urbanisation 1 dense, 2 intermediate, 3 thin"),
    "refugees_per_1000_2017": ("per 1000 inhabitants", "funding_applications",
                               "refugees in AU on 15.09.2017 (funding sheet; 0 for non-applicants) "
                               "per 1000 inhabitants (population 2019)"),
    "density": ("inhabitants/km2", "reference", "population density"),
    "kreis_type": ("", "reference", "Stadtkreis | Landkreis"),
    "funded_vza": ("VZÄ", "funding_applications", "funded full-time equivalents attributed to the municipality"),
    "vza_per_100_refugees": ("VZÄ per 100 persons", "funding_applications",
                             "100 * funded_vza / refugees on 15.09.2017 (NaN if none)"),
    "posts_vza": ("VZÄ", "im_posts", "sum over posts of VZÄ Stelle x Anteil Gemeinde"),
    "n_posts": ("posts", "im_posts", "distinct IM posts serving the municipality"),
    "organisation": ("code", "funding_applications+im_posts",
                     "who organises IM: landratsamt (district office applied for its members) | "
                     "gemeinde (municipality itself) | traeger (municipality through a private "
                     "provider employing the posts); NA = no posts"),
    "organisation_survey": ("code", "survey", "organisation as answered in survey wave 3 "
                            "(landratsamt | gemeinde | traeger); NA = not answered"),
    "capacity_before_vza": ("VZÄ", "survey", "counselling capacity before IM (survey wave 3)"),
    "capacity_after_vza": ("VZÄ", "survey", "counselling capacity after IM (survey wave 3)"),
    "capacity_change_vza": ("VZÄ", "survey", "capacity after - before"),
    "plan_use_band": ("code", "survey", "share of clients with an integration plan: lt20 | 20to80 | 80to100"),
    "doc_mode": ("code", "survey", "documentation mode (digital | paper | mixed), wave 1"),
    "decision_maker": ("code", "survey", "who decides on working methods, wave 3"),
}

PANEL_ORDER = list(DICTIONARY)

#: survey moderator -> candidate column names in the harmonised survey file
SURVEY_MODERATORS: dict[str, tuple[str, ...]] = {
    "capacity_before_vza": ("capacity_before_vza", "capacity_before"),
    "capacity_after_vza": ("capacity_after_vza", "capacity_after"),
    "capacity_change_vza": ("capacity_change_vza", "capacity_change"),
    "plan_use_band": ("plan_use_band", "integration_plan_band", "plan_band"),
    "doc_mode": ("doc_mode", "documentation_mode", "documentation"),
    "decision_maker": ("decision_maker", "decides_methods", "who_decides"),
}

OUTCOME_SOURCES = ("refugees_au", "employment_ba", "training", "language_b1")

#: Longest run of unreported months of the B1 stock that ``panel.b1_gap_fill`` fills.
B1_MAX_GAP = 2


def fill_stock_gaps(wide: np.ndarray, max_gap: int = B1_MAX_GAP) -> np.ndarray:
    """Fill runs of at most ``max_gap`` missing months in each row (unit) of a stock
    series ``[units, months]``: linearly between the adjacent reported months inside the
    series, with the nearest reported month at its start or end. Longer runs and rows
    without any reported month stay NaN."""
    out = wide.astype("float64").copy()
    months = np.arange(out.shape[1])
    for i in np.flatnonzero(np.isnan(out).any(axis=1)):
        row = out[i]
        ok = ~np.isnan(row)
        if not ok.any():
            continue
        filled = np.interp(months, months[ok], row[ok])  # nearest value beyond the ends
        miss = np.flatnonzero(~ok)
        starts = miss[np.r_[True, np.diff(miss) > 1]]
        ends = miss[np.r_[np.diff(miss) > 1, True]]
        for a, b in zip(starts, ends, strict=True):
            if b - a + 1 <= max_gap:
                row[a:b + 1] = filled[a:b + 1]
    return out


def month_index(ts: pd.Series | pd.Timestamp) -> Any:
    if isinstance(ts, pd.Timestamp):
        return ts.year * 12 + ts.month - 1
    return ts.dt.year * 12 + ts.dt.month - 1


def _g(cohort: pd.Series, start: pd.Timestamp, lineage: Lineage, label: str, n_months: int) -> pd.Series:
    """Period index of a cohort month (0 = never treated)."""
    g = (month_index(cohort) - month_index(start) + 1).astype("Float64")
    early = (g < 1).fillna(False)
    if early.any():
        lineage.add("panel", f"always treated ({label})", len(g), len(g), "recode",
                    f"{int(early.sum())} municipalities started before the panel window: g set to 1 "
                    "(treated throughout; no pre-periods)", n_affected=int(early.sum()))
        g = g.where(~early, 1)
    return g.fillna(0).astype("int64")


def _load_optional(cfg: dict[str, Any], key: str, lineage: Lineage) -> pd.DataFrame | None:
    p = paths.processed_path(cfg, key)
    if p.is_file():
        return pd.read_parquet(p)
    lineage.add("panel", f"missing {key}", 0, 0, "impute",
                f"{p} not found: its panel columns are missing (NaN)", n_affected=0)
    log.warning("panel: %s missing; columns left empty", p)
    return None


def survey_moderators(cfg: dict[str, Any], lineage: Lineage) -> pd.DataFrame | None:
    p = paths.processed_path(cfg, "survey_harmonised")
    if not p.is_file():
        lineage.add("panel", "survey moderators", 0, 0, "impute",
                    f"{p} not found: survey moderators ({', '.join(SURVEY_MODERATORS)}) left missing",
                    n_affected=0)
        log.warning("panel: harmonised survey file missing; moderators left empty")
        return None
    s = pd.read_parquet(p)
    if "ags" not in s.columns:
        raise ValueError(f"{p}: no 'ags' column")
    s["ags"] = s["ags"].astype("str")
    if s["ags"].duplicated().any():
        raise ValueError(f"{p}: more than one row per AGS ({s.loc[s['ags'].duplicated(), 'ags'].iloc[0]})")
    out = pd.DataFrame({"ags": s["ags"]})
    found = []
    for name, cands in SURVEY_MODERATORS.items():
        col = next((c for c in cands if c in s.columns), None)
        if col is None:
            lineage.add("panel", f"survey {name}", len(s), len(s), "impute",
                        f"no column for {name} ({cands}) in {p.name}: left missing", n_affected=0)
            continue
        found.append(name)
        v = s[col]
        if isinstance(v.dtype, pd.CategoricalDtype):
            v = v.astype("str")
        out[name] = v
    if "organisation" in s.columns:
        v = s["organisation"]
        out["organisation_survey"] = v.astype("str") if isinstance(v.dtype, pd.CategoricalDtype) else v
    lineage.add("panel", "survey moderators", len(s), len(s), "read",
                f"moderators {found} merged from {p.name} ({len(s)} municipalities)")
    return out


def build_panel(cfg: dict[str, Any], lineage: Lineage | None = None) -> pd.DataFrame:
    """Assemble the panel from the processed files (see module docstring)."""
    from ifm_eval.ingest.admin import load_frame

    lineage = lineage or Lineage("panel")
    start = pd.Timestamp(cfg["panel"]["start"] + "-01")
    end = pd.Timestamp(cfg["panel"]["end"] + "-01")
    if end < start:
        raise ValueError(f"panel.end {cfg['panel']['end']} before panel.start {cfg['panel']['start']}")
    months = pd.date_range(start, end, freq="MS")
    frame = load_frame(cfg).sort_values("ags").reset_index(drop=True)
    tp = paths.processed_path(cfg, "treatment")
    if not tp.is_file():
        raise FileNotFoundError(f"{tp} missing: run `ifm-eval treatment` first")
    treat = pd.read_parquet(tp)
    treat["ags"] = treat["ags"].astype("str")
    na, nm = len(frame), len(months)

    panel = pd.DataFrame({
        "ags": pd.array(np.repeat(frame["ags"].astype(str).to_numpy(), nm), dtype="str"),
        "month": np.tile(months.to_numpy(dtype="datetime64[ns]"), na),
    })
    panel["t"] = np.tile(np.arange(1, nm + 1, dtype="int64"), na)
    lineage.add("panel", "grid", na, len(panel), "expand",
                f"{na} municipalities x {nm} months ({cfg['panel']['start']}..{cfg['panel']['end']})")

    # municipality-level attributes
    m = frame[["ags", "kreis", "kreis_type", "population", "density", "urbanisation"]].copy()
    m["ags"] = m["ags"].astype("str")
    missing_t = ~m["ags"].isin(treat["ags"])
    if missing_t.any():
        raise ValueError(f"treatment table lacks {int(missing_t.sum())} municipalities of the frame "
                         f"(first {m.loc[missing_t, 'ags'].iloc[0]}): rerun `ifm-eval treatment`")
    rule = cfg["panel"].get("treatment_rule", "half_posts")
    tcols = ["ags", "applied", "verband_id", "cohort_half_posts", "cohort_first_post",
             "cohort_all_posts", "refugees_2017_09_15", "funded_vza", "vza_per_100_refugees",
             "posts_vza", "n_posts", "organisation"]
    m = m.merge(treat[tcols], on="ags", how="left", validate="one_to_one")
    m["cohort_month"] = m[f"cohort_{rule}"]
    for r in ("half_posts", "first_post", "all_posts"):
        m[f"g_{r}"] = _g(m[f"cohort_{r}"], start, lineage, r, nm)
    m["g"] = m[f"g_{rule}"]
    m["verband_id"] = m["verband_id"].astype("str").fillna("none_" + m["ags"])
    m["log_population"] = np.log(m["population"].astype("float64"))
    m["refugees_per_1000_2017"] = 1000 * m["refugees_2017_09_15"].astype("float64") / m["population"]
    urb = pd.to_numeric(m["urbanisation"]).astype("float64")
    m["urbanisation"] = urb.astype("int64") if urb.notna().all() else urb  # int codes 1-3
    m["kreis"] = m["kreis"].astype("str")
    m["kreis_type"] = m["kreis_type"].astype("str")
    sv = survey_moderators(cfg, lineage)
    if sv is not None:
        unknown = ~sv["ags"].isin(m["ags"])
        if unknown.any():
            lineage.add("panel", "survey AGS not in frame", len(sv), len(sv) - int(unknown.sum()), "drop",
                        f"{int(unknown.sum())} survey rows with AGS outside the frame not merged")
        m = m.merge(sv.loc[~unknown], on="ags", how="left", validate="one_to_one")
    for name in SURVEY_MODERATORS:
        if name not in m.columns:
            m[name] = np.nan if name.endswith("_vza") else pd.array([pd.NA] * len(m), dtype="str")
    panel = panel.merge(m.drop(columns=[c for c in m.columns if c.startswith("cohort_")
                                        and c != "cohort_month"] + ["refugees_2017_09_15"]),
                        on="ags", how="left", validate="many_to_one")

    # outcomes
    def merge(key: str, cols: dict[str, str]) -> None:
        nonlocal panel
        df = _load_optional(cfg, key, lineage)
        if df is None:
            for out in cols.values():
                panel[out] = False if out.endswith("_masked") else np.nan
            return
        df = df.copy()
        df["ags"] = df["ags"].astype("str")
        df["month"] = pd.to_datetime(df["month"]).astype("datetime64[ns]")
        inside = df["month"].between(start, end) & df["ags"].isin(frame["ags"])
        if (~inside).any():
            lineage.add("panel", f"{key} outside panel", len(df), int(inside.sum()), "drop",
                        f"{int((~inside).sum())} rows of {key} outside the panel window or frame")
        df = df.loc[inside, ["ags", "month", *cols]].rename(columns=cols)
        before = len(panel)
        panel = panel.merge(df, on=["ags", "month"], how="left", validate="one_to_one")
        assert len(panel) == before
        n_missing = int(panel[list(cols.values())[0]].isna().sum())
        lineage.add("panel", f"merge {key}", len(df), len(df), "read",
                    f"{key} merged; {n_missing} of {len(panel)} municipality-months not reported (NaN)",
                    n_affected=n_missing)
        for out in cols.values():
            if out.endswith("_masked"):
                panel[out] = panel[out].fillna(False).astype(bool)
            else:
                panel[out] = panel[out].astype("float64")

    merge("refugees_au", {"refugees": "refugees"})
    merge("employment_ba", {"employed": "employed", "employed_lo": "employed_lo",
                            "employed_hi": "employed_hi", "employed_masked": "employed_masked"})
    merge("training", {"in_training": "in_training", "in_training_lo": "training_lo",
                       "in_training_hi": "training_hi", "in_training_masked": "training_masked"})
    merge("language_b1", {"b1_holders": "b1_holders"})

    # derived
    panel["event_time"] = pd.array(np.where(panel["g"] > 0, panel["t"] - panel["g"], 0), dtype="Int64")
    panel.loc[panel["g"] == 0, "event_time"] = pd.NA
    panel["treated_post"] = ((panel["g"] > 0) & (panel["t"] >= panel["g"])).astype("int64")
    # B1 stock: the language file misses single months at random (stand-in: 1 % of cells).
    # Filling short gaps keeps those municipalities in estimators that need a balanced
    # panel (Callaway & Sant'Anna drops every unit with one missing month: ~45 % of the
    # municipalities for the language rate, against ~2 % for the BA rates).
    gap_rule = cfg["panel"].get("b1_gap_fill", "interpolate")
    panel["b1_holders_filled"] = panel["b1_holders"]
    if gap_rule == "interpolate":
        wide = panel.pivot(index="ags", columns="t", values="b1_holders")
        filled = pd.DataFrame(fill_stock_gaps(wide.to_numpy()), index=wide.index, columns=wide.columns)
        long = filled.stack(future_stack=True).rename("_b1f")
        panel = panel.merge(long.reset_index(), on=["ags", "t"], how="left", validate="one_to_one")
        panel["b1_holders_filled"] = panel.pop("_b1f").astype("float64")
    panel["b1_imputed"] = (panel["b1_holders"].isna() & panel["b1_holders_filled"].notna()).astype(bool)
    n_imp, n_gap = int(panel["b1_imputed"].sum()), int(panel["b1_holders"].isna().sum())
    lineage.add("panel", "B1 reporting gaps", len(panel), len(panel), "impute",
                f"b1_gap_fill={gap_rule}: {n_imp} of {n_gap} unreported B1 months filled "
                f"(gaps of at most {B1_MAX_GAP} months; linear between adjacent reported months)",
                n_affected=n_imp)
    den = panel["refugees"].where(panel["refugees"] > 0)
    for rate, num in (("rate_employment", "employed"), ("rate_training", "in_training"),
                      ("rate_language", "b1_holders_filled")):
        panel[rate] = (100 * panel[num] / den).astype("float64")
    panel["cohort_month"] = pd.to_datetime(panel["cohort_month"]).astype("datetime64[ns]")
    for c in ("funded_vza", "vza_per_100_refugees", "posts_vza", "density", "log_population",
              "refugees_per_1000_2017", "capacity_before_vza", "capacity_after_vza", "capacity_change_vza"):
        panel[c] = pd.to_numeric(panel[c]).astype("float64")
    for c in ("organisation", "plan_use_band", "doc_mode", "decision_maker", "verband_id"):
        panel[c] = panel[c].astype("str")
    panel["n_posts"] = panel["n_posts"].astype("int64")
    panel["population"] = panel["population"].astype("int64")
    panel["applied"] = panel["applied"].astype(bool)
    extra = [c for c in panel.columns if c not in PANEL_ORDER]
    panel = panel[[c for c in PANEL_ORDER if c in panel.columns] + sorted(extra)]
    panel = panel.sort_values(["ags", "month"], kind="stable").reset_index(drop=True)
    if panel.duplicated(["ags", "month"]).any() or len(panel) != na * nm:
        raise AssertionError("panel is not one row per (ags, month)")
    lineage.add("panel", "panel", na * nm, len(panel), "read",
                f"panel {na} x {nm} = {len(panel)} rows, {panel.shape[1]} columns")
    return panel


def data_dictionary(panel: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for c in panel.columns:
        unit, source, definition = DICTIONARY.get(
            c, ("", "survey" if c.endswith("_survey") else "panel", "see source"))
        rows.append({"name": c, "dtype": str(panel[c].dtype), "unit": unit, "source": source,
                     "definition": definition})
    return pd.DataFrame(rows)


STAGE_ORDER = ("ingest_funding_applications", "ingest_im_posts", "ingest_kpi_reports",
               "ingest_refugees_au", "ingest_employment_ba", "ingest_training",
               "ingest_language_b1", "ingest_case_management")


def concat_lineage(cfg: dict[str, Any]) -> pd.DataFrame:
    """All per-stage lineage tables (ingest, survey, harmonise, treatment, panel) in one."""
    d = paths.lineage_path(cfg, "x").parent
    files = sorted(d.glob("*.csv")) if d.is_dir() else []
    order = {s: i for i, s in enumerate(STAGE_ORDER)}
    files.sort(key=lambda f: (order.get(f.stem, 50 if f.stem not in ("treatment", "panel")
                                         else (80 if f.stem == "treatment" else 90)), f.stem))
    frames = [pd.read_csv(f) for f in files if f.stat().st_size > 0]
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame(columns=LINEAGE_COLUMNS)
    out = pd.concat(frames, ignore_index=True)
    return out[[c for c in LINEAGE_COLUMNS if c in out.columns]
               + [c for c in out.columns if c not in LINEAGE_COLUMNS]]


def data_quality(cfg: dict[str, Any], panel: pd.DataFrame) -> pd.DataFrame:
    """Coverage by source and month, masked cells, agreement of the case-management export
    with the outcome files, and item non-response of the surveys (if available)."""
    rows = []
    n_units = panel["ags"].nunique()
    cover = {"refugees_au": "refugees", "employment_ba": "employed", "training": "in_training",
             "language_b1": "b1_holders"}
    masked = {"employment_ba": "employed_masked", "training": "training_masked"}
    g = panel.groupby("month", sort=True)
    for src, col in cover.items():
        rep = g[col].count()
        msk = g[masked[src]].sum() if src in masked else pd.Series(0, index=rep.index)
        for month, n in rep.items():
            rows.append({"table": "coverage", "source": src, "variable": col, "wave": pd.NA,
                         "month": month, "n_units": n_units, "n_reported": int(n),
                         "share": n / n_units, "n_masked": int(msk.loc[month])})
    kp = paths.processed_path(cfg, "kpi_reports")
    if kp.is_file():
        k = pd.read_parquet(kp)
        treated = panel.drop_duplicates("ags")
        for q, sub in k.groupby("quarter_start"):
            n_started = int(((treated["cohort_month"].notna()) & (treated["cohort_month"] <= q + pd.offsets.QuarterEnd(0))).sum())
            rows.append({"table": "coverage", "source": "kpi_reports", "variable": "clients",
                         "wave": pd.NA, "month": q, "n_units": n_started,
                         "n_reported": int(sub["clients"].notna().sum()),
                         "share": sub["clients"].notna().sum() / max(n_started, 1), "n_masked": 0})
    cp = paths.processed_path(cfg, "case_management")
    if cp.is_file():
        c = pd.read_parquet(cp)
        c["ags"] = c["ags"].astype("str")
        j = panel[["ags", "month", "refugees", "employed", "employed_masked", "in_training",
                   "training_masked", "b1_holders"]].merge(
            c[["ags", "month", "refugees", "employed", "in_training", "b1_holders"]],
            on=["ags", "month"], how="left", suffixes=("", "_cm"))
        for col, mcol in (("refugees", None), ("employed", "employed_masked"),
                          ("in_training", "training_masked"), ("b1_holders", None)):
            ok = j[col].notna() & j[col + "_cm"].notna()
            if mcol:
                ok &= ~j[mcol]
            eq = (j.loc[ok, col] == j.loc[ok, col + "_cm"]).sum()
            rows.append({"table": "agreement", "source": "case_management", "variable": col,
                         "wave": pd.NA, "month": pd.NaT, "n_units": int(ok.sum()),
                         "n_reported": int(eq), "share": eq / max(int(ok.sum()), 1), "n_masked": 0})
    dq = pd.DataFrame(rows)
    try:
        from ifm_eval.ingest.surveys import item_nonresponse
    except ImportError:
        item_nonresponse = None
    if item_nonresponse is not None:
        try:
            inr = item_nonresponse(cfg)
        except Exception as exc:  # survey stage not run: keep the admin part
            log.warning("item non-response not available: %s", exc)
            inr = None
        if inr is not None and len(inr):
            inr = inr.copy()
            inr.insert(0, "table", "item_nonresponse")
            dq = pd.concat([dq, inr], ignore_index=True)
    return dq


def run(cfg: dict[str, Any]) -> pd.DataFrame:
    t0 = time.perf_counter()
    lineage = Lineage("panel")
    panel = build_panel(cfg, lineage)
    out = paths.processed_path(cfg, "panel")
    out.parent.mkdir(parents=True, exist_ok=True)
    panel.to_parquet(out, index=False)
    data_dictionary(panel).to_csv(paths.processed_path(cfg, "data_dictionary"), index=False)
    lineage.write(paths.lineage_path(cfg, "panel"))
    concat_lineage(cfg).to_csv(paths.processed_path(cfg, "lineage"), index=False)
    data_quality(cfg, panel).to_csv(paths.processed_path(cfg, "data_quality"), index=False)
    log.info("panel: %d rows x %d columns -> %s (%.1f s)", len(panel), panel.shape[1], out,
             time.perf_counter() - t0)
    return panel


def read_panel(cfg: dict[str, Any]) -> pd.DataFrame:
    return pd.read_parquet(Path(paths.processed_path(cfg, "panel")))
