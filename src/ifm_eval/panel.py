"""The municipality x month panel.

One row per (AGS, month) for all 1,101 municipalities of the reference frame and every
month ``panel.start .. panel.end``. Built from the processed ingest files, the treatment
table and the harmonised survey moderators (:func:`build_panel`, on frames); the ``panel``
job (:func:`run`) reads exactly the files its rule declares and writes the panel Parquet, a
data dictionary, the concatenated lineage table and a data-quality table.

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

from ifm_eval.frame import load_frame
from ifm_eval.lineage import COLUMNS as LINEAGE_COLUMNS
from ifm_eval.lineage import Lineage
from ifm_eval.months import month_index, panel_months, panel_window
from ifm_eval.sources import LINEAGE_STAGES, OUTCOME_SOURCES
from ifm_eval.stage_io import StageIO

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
                 "point value of masked cells by panel.masked_count_rule (expected: Poisson "
                 "conditional expectation, see ifm_eval.masking)"),
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
    "urban_dense": ("0/1", "reference", "urbanisation == 1 (densely populated; the categorical covariate's dummy)"),
    "urban_thin": ("0/1", "reference", "urbanisation == 3 (thinly populated; the categorical covariate's dummy)"),
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
    "ts_ausreisepflichtig": ("bool", "survey", "target group includes persons obliged to leave "
                             "(waves 2/5); NA = not answered"),
    "target_group": ("code", "survey", "target-group breadth from ts_ausreisepflichtig: obliged "
                     "(includes persons obliged to leave) | not_obliged; NA = not answered"),
    "size_class": ("code", "reference", "population class (ifm_eval.size_class): lt5k | 5k_20k | 20k_plus"),
    "capacity_per_100_refugees": ("VZÄ per 100 persons", "survey+funding_applications",
                                  "100 * capacity_change_vza / refugees on 15.09.2017 (NaN if either is missing)"),
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
    "ts_ausreisepflichtig": ("ts_ausreisepflichtig", "target_obliged"),
}

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


#: outcome source -> the panel column whose reporting defines the source's gaps
GAP_COLUMNS: dict[str, str] = {"refugees_au": "refugees", "employment_ba": "employed",
                               "training": "in_training", "language_b1": "b1_holders"}
#: months / municipalities a gap record of the lineage names before "... and n more" (the
#: data-quality table lists every one)
GAP_NAME_LIMIT = 50
GAP_DETAIL = {
    "month": "no municipality has a value in this month",
    "municipality": "no value in any month of the panel window",
    "all_sources": "in no outcome source in any month (merged, dissolved or re-keyed "
                   "municipality? see the ingest lineage for unknown AGS)",
}


def outcome_gaps(panel: pd.DataFrame, frame: pd.DataFrame | None = None) -> pd.DataFrame:
    """Gaps of the outcome sources in the panel, by name: months in which a source has no
    value for any municipality (``kind = month``), municipalities without a value in any
    month (``municipality``), and municipalities without a value in any source
    (``all_sources``: a merger or a key the files do not use). Columns ``kind, source,
    variable, month, ags, name, detail``; one row per month / municipality."""
    cols = {k: v for k, v in GAP_COLUMNS.items() if v in panel.columns}
    names = (frame.assign(ags=frame["ags"].astype(str)).set_index("ags")["name"]
             if frame is not None and "name" in frame.columns else pd.Series(dtype=object))
    rows: list[dict[str, Any]] = []
    if not cols or panel.empty:
        return pd.DataFrame(columns=["kind", "source", "variable", "month", "ags", "name", "detail"])
    by_month = panel.groupby("month", sort=True)[list(cols.values())].count()
    by_ags = panel.groupby("ags", sort=True)[list(cols.values())].count()
    none_at_all = by_ags.index[(by_ags == 0).all(axis=1)]
    for src, col in cols.items():
        for m in by_month.index[by_month[col] == 0]:
            rows.append({"kind": "month", "source": src, "variable": col, "month": m, "ags": pd.NA,
                         "name": pd.NA, "detail": GAP_DETAIL["month"]})
        for a in by_ags.index[(by_ags[col] == 0) & ~by_ags.index.isin(none_at_all)]:
            rows.append({"kind": "municipality", "source": src, "variable": col, "month": pd.NaT,
                         "ags": a, "name": names.get(a, pd.NA), "detail": GAP_DETAIL["municipality"]})
    for a in none_at_all:
        rows.append({"kind": "all_sources", "source": "+".join(cols), "variable": "+".join(cols.values()),
                     "month": pd.NaT, "ags": a, "name": names.get(a, pd.NA),
                     "detail": GAP_DETAIL["all_sources"]})
    out = pd.DataFrame(rows, columns=["kind", "source", "variable", "month", "ags", "name", "detail"])
    out["month"] = pd.to_datetime(out["month"])
    return out


def _log_gaps(gaps: pd.DataFrame, n_rows: int, lineage: Lineage) -> None:
    """One lineage record per source and kind of gap, naming every month / municipality."""
    for (kind, src), g in gaps.groupby(["kind", "source"], sort=False):
        more = f" ... and {len(g) - GAP_NAME_LIMIT} more" if len(g) > GAP_NAME_LIMIT else ""
        shown = g.head(GAP_NAME_LIMIT)
        if kind == "month":
            what = ", ".join(f"{m:%Y-%m}" for m in shown["month"]) + more
            step = f"gap: {src} months without any value"
        else:
            what = ", ".join(f"{a} {n}" if isinstance(n, str) else str(a)
                             for a, n in zip(shown["ags"], shown["name"], strict=True)) + more
            step = ("gap: municipalities in no outcome source" if kind == "all_sources"
                    else f"gap: {src} municipalities without any value")
        lineage.add("panel", step, n_rows, n_rows, "flag",
                    f"{len(g)} {'month(s)' if kind == 'month' else 'municipality(ies)'}: {what} "
                    f"({GAP_DETAIL[kind]}; NaN in the panel; listed in data_quality, table gap)",
                    n_affected=len(g))
        log.warning("panel: %s: %d", step, len(g))


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


def survey_moderators(survey: pd.DataFrame, lineage: Lineage) -> pd.DataFrame:
    """The moderators of :data:`SURVEY_MODERATORS` from the harmonised survey table."""
    s = survey.copy()
    if "ags" not in s.columns:
        raise ValueError("harmonised survey table has no 'ags' column")
    s["ags"] = s["ags"].astype("str")
    if s["ags"].duplicated().any():
        raise ValueError(f"harmonised survey table has more than one row per AGS "
                         f"({s.loc[s['ags'].duplicated(), 'ags'].iloc[0]})")
    out = pd.DataFrame({"ags": s["ags"]})
    found = []
    for name, cands in SURVEY_MODERATORS.items():
        col = next((c for c in cands if c in s.columns), None)
        if col is None:
            raise ValueError(f"harmonised survey table has no column for moderator {name} "
                             f"(looked for {list(cands)})")
        found.append(name)
        v = s[col]
        out[name] = v.astype("str") if isinstance(v.dtype, pd.CategoricalDtype) else v
    if "organisation" in s.columns:
        v = s["organisation"]
        out["organisation_survey"] = v.astype("str") if isinstance(v.dtype, pd.CategoricalDtype) else v
    lineage.add("panel", "survey moderators", len(s), len(s), "read",
                f"moderators {found} merged from the harmonised survey table ({len(s)} municipalities)")
    return out


def _derived_moderators(m: pd.DataFrame) -> pd.DataFrame:
    """Municipality moderators derived from others: ``size_class`` (population),
    ``target_group`` (``ts_ausreisepflichtig``) and ``capacity_per_100_refugees``
    (capacity change per 100 refugees of 15.09.2017)."""
    from ifm_eval.size_class import size_class_label

    m = m.copy()
    m["size_class"] = pd.array(size_class_label(m["population"].to_numpy(float)), dtype="str")
    ob = m["ts_ausreisepflichtig"].astype("str").str.lower()
    m["target_group"] = pd.array(np.where(ob.isin(["true", "1", "1.0"]), "obliged",
                                          np.where(ob.isin(["false", "0", "0.0"]), "not_obliged", None)),
                                 dtype="str")
    m["ts_ausreisepflichtig"] = m["target_group"].map({"obliged": True, "not_obliged": False}).astype("boolean")
    ref = pd.to_numeric(m["refugees_2017_09_15"], errors="coerce").astype("float64")
    cap = pd.to_numeric(m["capacity_change_vza"], errors="coerce").astype("float64")
    m["capacity_per_100_refugees"] = (100 * cap / ref.where(ref > 0)).astype("float64")
    return m


def _expected_masked_counts(panel: pd.DataFrame, training: pd.DataFrame, lineage: Lineage) -> pd.DataFrame:
    """``panel.masked_count_rule: expected``: every masked BA cell (``*`` = 1 or 2) becomes
    its conditional expectation under a Poisson count with mean refugees x the month's
    state-wide rate (:mod:`ifm_eval.masking`); training per component (Ausbildung,
    Weiterbildung), then summed. The bounds (``*_lo``/``*_hi``) are unchanged."""
    from ifm_eval.masking import expected_masked

    month = panel["month"].to_numpy()
    emp = expected_masked(panel["employed"].to_numpy(), panel["employed_masked"].to_numpy(),
                          panel["refugees"].to_numpy(), month)
    n_emp = int(panel["employed_masked"].sum())
    parts = ["in_ausbildung", "in_weiterbildung"]
    need = [f"{c}{suf}" for c in parts for suf in ("", "_masked")]
    missing = [c for c in need if c not in training.columns]
    if missing:
        raise ValueError(f"masked_count_rule expected: the training source lacks {missing}")
    t = training[["ags", "month", *need]].copy()
    t["ags"] = t["ags"].astype("str")
    t["month"] = pd.to_datetime(t["month"]).astype("datetime64[ns]")
    j = panel[["ags", "month", "refugees"]].merge(t, on=["ags", "month"], how="left", validate="one_to_one")
    tr = np.zeros(len(j))
    n_tr = 0
    for c in parts:
        msk = j[f"{c}_masked"].fillna(False).to_numpy(dtype=bool)
        n_tr += int(msk.sum())
        tr = tr + expected_masked(j[c].to_numpy(dtype=float), msk, j["refugees"].to_numpy(), month)
    panel = panel.copy()
    panel["employed"] = emp
    panel["in_training"] = np.where(panel["in_training"].notna(), tr, np.nan)
    lineage.add("panel", "masked counts: expected", len(panel), len(panel), "impute",
                f"masked_count_rule=expected: {n_emp} masked employment cells and {n_tr} masked training "
                "component cells ('*' = 1 or 2) set to E[count | 1 <= count <= 2] under Poisson(refugees x "
                "state rate of the month) instead of the midpoint", n_affected=n_emp + n_tr)
    return panel


def build_panel(cfg: dict[str, Any], frame: pd.DataFrame, treatment: pd.DataFrame,
                survey: pd.DataFrame, outcomes: dict[str, pd.DataFrame],
                lineage: Lineage | None = None) -> pd.DataFrame:
    """Assemble the panel (see module docstring) from the municipality ``frame``, the
    ``treatment`` table, the harmonised ``survey`` table and the processed ``outcomes``
    (every key of :data:`ifm_eval.sources.OUTCOME_SOURCES`)."""
    lineage = lineage or Lineage("panel")
    start, end = panel_window(cfg)
    months = panel_months(cfg)
    missing_src = [k for k in OUTCOME_SOURCES if k not in outcomes]
    if missing_src:
        raise ValueError(f"build_panel: outcome source(s) {missing_src} not given")
    frame = frame.sort_values("ags").reset_index(drop=True)
    treat = treatment.copy()
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
    m["urban_dense"] = (urb == 1).astype("float64").where(urb.notna())
    m["urban_thin"] = (urb == 3).astype("float64").where(urb.notna())
    m["kreis"] = m["kreis"].astype("str")
    m["kreis_type"] = m["kreis_type"].astype("str")
    sv = survey_moderators(survey, lineage)
    unknown = ~sv["ags"].isin(m["ags"])
    if unknown.any():
        lineage.add("panel", "survey AGS not in frame", len(sv), len(sv) - int(unknown.sum()), "drop",
                    f"{int(unknown.sum())} survey rows with AGS outside the frame not merged: "
                    f"{sorted(sv.loc[unknown, 'ags'])[:10]}")
    m = m.merge(sv.loc[~unknown], on="ags", how="left", validate="one_to_one")
    m = _derived_moderators(m)
    panel = panel.merge(m.drop(columns=[c for c in m.columns if c.startswith("cohort_")
                                        and c != "cohort_month"] + ["refugees_2017_09_15"]),
                        on="ags", how="left", validate="many_to_one")

    # outcomes
    def merge(key: str, cols: dict[str, str]) -> None:
        nonlocal panel
        df = outcomes[key].copy()
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
    _log_gaps(outcome_gaps(panel, frame), len(panel), lineage)
    if cfg["panel"]["masked_count_rule"] == "expected":
        panel = _expected_masked_counts(panel, outcomes["training"], lineage)

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
              "refugees_per_1000_2017", "capacity_before_vza", "capacity_after_vza", "capacity_change_vza",
              "capacity_per_100_refugees"):
        panel[c] = pd.to_numeric(panel[c]).astype("float64")
    for c in ("organisation", "plan_use_band", "doc_mode", "decision_maker", "verband_id", "target_group",
              "size_class"):
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


def concat_lineage(files: list[Path]) -> pd.DataFrame:
    """The per-stage lineage tables in pipeline order (:data:`ifm_eval.sources.
    LINEAGE_STAGES`, then the panel's own), one table."""
    order = {s: i for i, s in enumerate((*LINEAGE_STAGES, "panel"))}
    unknown = [f for f in files if Path(f).stem not in order]
    if unknown:
        raise ValueError(f"lineage file(s) of unknown stage(s): {[str(f) for f in unknown]} "
                         f"(stages: {', '.join(order)})")
    files = sorted(files, key=lambda f: order[Path(f).stem])
    frames = [pd.read_csv(f) for f in files if Path(f).stat().st_size > 0]
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame(columns=LINEAGE_COLUMNS)
    out = pd.concat(frames, ignore_index=True)
    return out[[c for c in LINEAGE_COLUMNS if c in out.columns]
               + [c for c in out.columns if c not in LINEAGE_COLUMNS]]


def data_quality(panel: pd.DataFrame, kpi: pd.DataFrame, case_management: pd.DataFrame,
                 item_nonresponse: pd.DataFrame, frame: pd.DataFrame | None = None) -> pd.DataFrame:
    """Coverage by source and month, masked cells, agreement of the case-management export
    with the outcome files, and item non-response of the surveys. Gaps of the outcome
    sources are listed by name (``table = gap``, one row per month or municipality, with
    ``ags``, ``name`` (from ``frame``) and ``detail``; see :func:`outcome_gaps`)."""
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
    if kpi is not None:
        k = kpi
        treated = panel.drop_duplicates("ags")
        for q, sub in k.groupby("quarter_start"):
            n_started = int(((treated["cohort_month"].notna()) & (treated["cohort_month"] <= q + pd.offsets.QuarterEnd(0))).sum())
            rows.append({"table": "coverage", "source": "kpi_reports", "variable": "clients",
                         "wave": pd.NA, "month": q, "n_units": n_started,
                         "n_reported": int(sub["clients"].notna().sum()),
                         "share": sub["clients"].notna().sum() / max(n_started, 1), "n_masked": 0})
    if case_management is not None:
        c = case_management.copy()
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
    gaps = outcome_gaps(panel, frame)
    for r in gaps.itertuples(index=False):
        rows.append({"table": "gap", "source": r.source, "variable": r.variable, "wave": pd.NA,
                     "month": r.month, "n_units": n_units if r.kind == "month" else 1,
                     "n_reported": 0, "share": 0.0, "n_masked": 0, "ags": r.ags, "name": r.name,
                     "detail": f"{r.kind}: {r.detail}"})
    dq = pd.DataFrame(rows)
    if len(item_nonresponse):
        inr = item_nonresponse.copy()
        inr.insert(0, "table", "item_nonresponse")
        dq = pd.concat([dq, inr], ignore_index=True)
    return dq


def run(cfg: dict[str, Any], io: StageIO) -> pd.DataFrame:
    """The ``panel`` job. Inputs: ``frame``, ``treatment``, ``survey`` (harmonised),
    ``item_nonresponse``, ``kpi_reports``, ``case_management``, one per outcome source
    (:data:`~ifm_eval.sources.OUTCOME_SOURCES`) and ``lineage`` (every upstream stage's
    lineage table). Outputs: ``panel``, ``dictionary``, ``lineage``, ``quality``, and
    ``panel_lineage`` (this stage's own records)."""
    io.require(inputs=("frame", "treatment", "survey", "item_nonresponse", "kpi_reports",
                       "case_management", *OUTCOME_SOURCES, "lineage"),
               outputs=("panel", "dictionary", "lineage", "quality", "panel_lineage"))
    t0 = time.perf_counter()
    lineage = Lineage("panel")
    outcomes = {k: pd.read_parquet(io.input(k)) for k in OUTCOME_SOURCES}
    frame = load_frame(io.input("frame"))
    panel = build_panel(cfg, frame, pd.read_parquet(io.input("treatment")),
                        pd.read_parquet(io.input("survey")), outcomes, lineage)
    out = io.output("panel")
    panel.to_parquet(out, index=False)
    data_dictionary(panel).to_csv(io.output("dictionary"), index=False)
    lineage.write(io.output("panel_lineage"))
    concat_lineage([*io.input_list("lineage"), io.output("panel_lineage")]).to_csv(
        io.output("lineage"), index=False)
    data_quality(panel, pd.read_parquet(io.input("kpi_reports")),
                 pd.read_parquet(io.input("case_management")),
                 pd.read_csv(io.input("item_nonresponse")), frame).to_csv(io.output("quality"), index=False)
    log.info("panel: %d rows x %d columns -> %s (%.1f s)", len(panel), panel.shape[1], out,
             time.perf_counter() - t0)
    return panel
