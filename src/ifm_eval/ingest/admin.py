"""Readers for the administrative sources (funding, posts, KPI reports, monthly outcomes).

One reader per raw file (key of :data:`ifm_eval.sources.SOURCES`); each takes the file's
path, validates it against its declared schema (:mod:`ifm_eval.ingest.schemas`), records
every row-changing step in a :class:`~ifm_eval.lineage.Lineage` and returns cleaned frames.
Dispatch by source key and writing live in :mod:`ifm_eval.ingest.run`; the person-level
case-management export has its own module, :mod:`ifm_eval.ingest.case_management`.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import pandas as pd

from ifm_eval.ingest import schemas as S
from ifm_eval.ingest.readers import (
    LINE,
    IngestError,
    IngestOptions,
    _decision,
    match_columns,
    note,
    read_delimited,
    read_excel_sheet,
    repair_ags,
    validate,
)
from ifm_eval.lineage import Lineage
from ifm_eval.months import panel_months, panel_window

log = logging.getLogger(__name__)

#: Tolerance for "shares of one post sum to 1" and "members' VZÄ add up to the Verband's".
SHARE_TOL = 0.01
#: How many keys / months a lineage reason lists by name before it says "... and n more"
#: (the data-quality table of the panel stage lists every one).
NAME_LIMIT = 50

# ----------------------------------------------------------------------------- funding


def read_funding(path: str | Path, frame_ags: set[str], lineage: Lineage,
                 frame: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Funding workbook -> (Verbände, members). Both sheets: title row 1, header row 3."""
    path = Path(path)
    src = "funding_applications"
    ant = read_excel_sheet(path, "Antraege", S.FUNDING_VERBAENDE.names, header_row=3,
                           lineage=lineage, source=src)
    mit = read_excel_sheet(path, "Mitglieder", S.FUNDING_MEMBERS.names, header_row=3,
                           lineage=lineage, source=src)
    lineage.add(src, "read Antraege", len(ant), len(ant), "read", "rows of sheet Antraege")
    lineage.add(src, "read Mitglieder", len(mit), len(mit), "read", "rows of sheet Mitglieder")
    where_a, where_m = f"{path} [sheet Antraege]", f"{path} [sheet Mitglieder]"
    verb = validate(ant, S.FUNDING_VERBAENDE, where_a, lineage=lineage,
                    date_range=("2017-01-01", "2023-12-31"), header_line=3)
    mem = validate(mit, S.FUNDING_MEMBERS, where_m, lineage=lineage, frame_ags=frame_ags,
                   header_line=3, frame=frame)
    unknown = ~mem["antrag_nr"].isin(verb["antrag_nr"])
    if unknown.any():
        r = mem.loc[unknown].iloc[0]
        raise IngestError(where_m, f"Antrags-Nr. {r['antrag_nr']!r} not in sheet Antraege",
                          line=int(r[LINE]), column="Antrags-Nr.")
    n_members = mem.groupby("antrag_nr").size()
    verb["n_members"] = verb["antrag_nr"].map(n_members).fillna(0).astype("int64")
    empty = verb["n_members"] == 0
    verb["no_members"] = empty.astype(bool)
    if empty.any():
        _decision(lineage, src, "Verband without members",
                  f"{int(empty.sum())} Verband/Verbände without member municipalities kept with "
                  f"n_members = 0 and flag no_members (funding not attributable): "
                  f"{verb.loc[empty, 'antrag_nr'].tolist()[:10]} (sheet Antraege lines "
                  f"{verb.loc[empty, LINE].tolist()[:10]})", rows=len(verb), n=int(empty.sum()), action="flag")
    vsum = mem.groupby("antrag_nr")["vza_share"].sum()
    verb["vza_members_sum"] = verb["antrag_nr"].map(vsum).fillna(0.0).astype("float64")
    diff = (verb["vza_members_sum"] - verb["vza_bewilligt"]).abs() > SHARE_TOL * verb["vza_bewilligt"].clip(lower=1)
    verb["vza_mismatch"] = (diff & ~empty).astype(bool)
    if verb["vza_mismatch"].any():
        _decision(lineage, src, "VZÄ shares",
                  f"{int(verb['vza_mismatch'].sum())} Verband/Verbände whose members' 'VZÄ Anteil' "
                  f"do not add up to 'Bewilligte VZÄ' (first: {verb.loc[verb['vza_mismatch'], 'antrag_nr'].iloc[0]}); "
                  "members' values kept, flag vza_mismatch", rows=len(verb),
                  n=int(verb["vza_mismatch"].sum()), action="flag")
    mem = mem.merge(verb[["antrag_nr", "verband", "art_antragsteller", "kreis_name"]],
                    on="antrag_nr", how="left", validate="many_to_one")
    # aliases used by the survey harmonisation (Verband expansion of joint answers)
    mem["verband_id"] = mem["antrag_nr"]
    mem["verband_name"] = mem["verband"]
    verb["verband_id"] = verb["antrag_nr"]
    verb["verband_name"] = verb["verband"]
    verb = verb.sort_values("antrag_nr").reset_index(drop=True)
    mem = mem.sort_values("ags").reset_index(drop=True)
    lineage.add(src, "validate", len(verb) + len(mem), len(verb) + len(mem), "read",
                "Verbände and members validated (schema, keys, cross-sheet references)")
    return verb, mem


def ingest_funding(cfg: dict[str, Any], raw: Path, frame: pd.DataFrame,
                   lineage: Lineage) -> dict[str, pd.DataFrame]:
    verb, mem = read_funding(raw, set(frame["ags"]), lineage, frame=frame)
    return {"funding_verbaende": verb, "funding_members": mem}


# ----------------------------------------------------------------------------- posts


def read_posts(path: str | Path, frame_ags: set[str], lineage: Lineage,
               frame: pd.DataFrame | None = None, options: IngestOptions | None = None) -> pd.DataFrame:
    """IM posts (one row per post and municipality served)."""
    path = Path(path)
    src = "im_posts"
    opts = options or IngestOptions()
    raw = read_delimited(path, sep=";", encoding="cp1252", lineage=lineage, source=src,
                         require_final_newline=opts.require_final_newline)
    lineage.add(src, "read", len(raw), len(raw), "read", "data lines of im_stellen.csv")
    df = validate(raw, S.IM_POSTS, path, lineage=lineage, frame_ags=frame_ags,
                  date_range=("2017-01-01", "2030-12-31"), header_line=1, frame=frame)
    after = df["ende"].notna() & (df["ende"] < df["beginn"])
    if after.any():
        r = df.loc[after].iloc[0]
        raise IngestError(path, f"'Ende' {r['ende']:%d.%m.%Y} before 'Beginn' {r['beginn']:%d.%m.%Y}",
                          line=int(r[LINE]), column="Ende")
    for col, label in (("beginn", "Beginn"), ("ende", "Ende"), ("vza_post", "VZÄ Stelle"),
                       ("employer_type", "Anstellungsträger"), ("antrag_nr", "Antrags-Nr.")):
        n = df.groupby("stellen_id")[col].nunique(dropna=False)
        bad = n[n > 1]
        if len(bad):
            sid = bad.index[0]
            lines = df.loc[df["stellen_id"] == sid, LINE].tolist()
            raise IngestError(path, f"post {sid!r} has different values of {label!r} on lines "
                              f"{lines[:5]} (a post's attributes must agree across the "
                              "municipalities it serves)", line=int(lines[1]), column=label)
    ssum = df.groupby("stellen_id")["share"].transform("sum")
    off = (ssum - 1).abs() > SHARE_TOL
    df["share_raw"] = df["share"]
    if off.any():
        ids = df.loc[off, "stellen_id"].unique()
        df.loc[off, "share"] = df.loc[off, "share"] / ssum[off]
        _decision(lineage, src, "shares",
                  f"'Anteil Gemeinde' of {len(ids)} post(s) do not sum to 1 (first: {ids[0]}, "
                  f"line {int(df.loc[off, LINE].iloc[0])}); renormalised to sum 1, raw value kept "
                  "in share_raw", rows=len(df), n=int(off.sum()), action="recode")
    df["beginn_month"] = df["beginn"].dt.to_period("M").dt.to_timestamp()
    df = df.sort_values(["stellen_id", "ags"]).reset_index(drop=True)
    lineage.add(src, "validate", len(df), len(df), "read", "posts validated")
    return df


def ingest_posts(cfg: dict[str, Any], raw: Path, frame: pd.DataFrame,
                 lineage: Lineage) -> dict[str, pd.DataFrame]:
    return {"im_posts": read_posts(raw, set(frame["ags"]), lineage, frame=frame,
                                   options=IngestOptions.from_config(cfg))}


# ----------------------------------------------------------------------------- KPI


def read_kpi(path: str | Path, frame_ags: set[str], lineage: Lineage,
             frame: pd.DataFrame | None = None) -> pd.DataFrame:
    path = Path(path)
    src = "kpi_reports"
    raw = read_excel_sheet(path, "Kennzahlen", S.KPI_REPORTS.names, header_row=1,
                           lineage=lineage, source=src)
    lineage.add(src, "read", len(raw), len(raw), "read", "rows of sheet Kennzahlen")
    df = validate(raw, S.KPI_REPORTS, f"{path} [sheet Kennzahlen]", lineage=lineage,
                  frame_ags=frame_ags, date_range=("2015-01-01", "2030-12-31"), header_line=1,
                  frame=frame)
    q = df["quarter"].astype(str)
    df["quarter_start"] = pd.to_datetime(q.str[:4] + "-" + ((q.str[-1].astype(int) - 1) * 3 + 1)
                                         .astype(str).str.zfill(2) + "-01")
    df = df.sort_values(["ags", "quarter"]).reset_index(drop=True)
    return df


def ingest_kpi(cfg: dict[str, Any], raw: Path, frame: pd.DataFrame,
               lineage: Lineage) -> dict[str, pd.DataFrame]:
    return {"kpi_reports": read_kpi(raw, set(frame["ags"]), lineage, frame=frame)}


# ----------------------------------------------------------------------------- outcomes

_AGGREGATE_NAME = re.compile(r"^(?:land\s+)?baden-w(?:ü|ue)rttemberg\b|^(?:land|stadt)?kreis\b|"
                             r"^regierungsbezirk\b|^reg\.-bez\.|\b(?:land|stadt)?kreis$", re.IGNORECASE)


def _drop_aggregate_regions(raw: pd.DataFrame, column: str, lineage: Lineage, source: str,
                            frame: pd.DataFrame | None = None, name_column: str | None = None) -> pd.DataFrame:
    """Statistical tables list Land/Regierungsbezirk/Kreis totals among the municipalities:
    2/3/5-digit keys, 8-digit Kreis keys ``kkkkk000`` / ``08000000`` that are not a
    municipality of the frame, or an empty key with a Land/Kreis name. Dropped (logged with
    the keys)."""
    key = raw[column].astype("string").fillna("").str.strip()
    fixed, _ = repair_ags(key)
    agg = key.str.fullmatch(r"\d{2}|\d{3}|\d{5}", na=False) & ~fixed.str.fullmatch(r"\d{8}", na=False)
    if frame is not None:
        in_frame = fixed.isin(set(frame["ags"]))
        kreise = set(frame["kreis"].astype(str))
        kreis8 = fixed.str.fullmatch(r"\d{5}000", na=False) & fixed.str[:5].isin(kreise)
        land8 = fixed.str.fullmatch(r"\d{2}0{6}", na=False)
        agg |= (kreis8 | land8) & ~in_frame
    if name_column is not None and name_column in raw.columns:
        nm = raw[name_column].astype("string").fillna("").str.strip()
        agg |= (key == "") & nm.str.contains(_AGGREGATE_NAME, na=False)
    if agg.any():
        keys = sorted(set(key[agg]))
        lineage.add(source, "aggregate regions", len(raw), len(raw) - int(agg.sum()), "drop",
                    f"{int(agg.sum())} rows for Land/Regierungsbezirk/Kreis totals dropped "
                    f"(keys {keys[:20]}{' ...' if len(keys) > 20 else ''}; first at line "
                    f"{int(raw.loc[agg, LINE].iloc[0])}); municipalities only")
        log.warning("%s: %d Land/Kreis total rows dropped", source, int(agg.sum()))
        raw = raw.loc[~agg].reset_index(drop=True)
    return raw


def _names(ags: list[str], frame: pd.DataFrame | None, limit: int = NAME_LIMIT) -> str:
    """``08115001 Aidlingen, 08115002 Altdorf, ...`` for a reason text."""
    nm = frame.set_index("ags")["name"] if frame is not None and "name" in frame else pd.Series(dtype=str)
    parts = [f"{a} {nm.get(a, '')}".strip() for a in ags[:limit]]
    more = f" ... and {len(ags) - limit} more" if len(ags) > limit else ""
    return ", ".join(parts) + more


def _unknown_and_window(df: pd.DataFrame, cfg: dict[str, Any], frame_ags: set[str],
                        lineage: Lineage, source: str, path: Path) -> pd.DataFrame:
    unknown = ~df["ags"].isin(frame_ags)
    if unknown.any():
        bad = df.loc[unknown]
        first_name = bad.drop_duplicates("ags").set_index("ags")["gemeinde"] if "gemeinde" in bad else {}
        keys = sorted(bad["ags"].unique().tolist())
        listed = ", ".join(f"{k} {first_name.get(k, '')}".strip() for k in keys[:NAME_LIMIT])
        lineage.add(source, "unknown AGS", len(df), len(df) - int(unknown.sum()), "drop",
                    f"{int(unknown.sum())} rows of {len(keys)} AGS not in the reference frame "
                    f"dropped (a dissolved/merged municipality, or a key of another territorial "
                    f"status?): {listed}{' ...' if len(keys) > NAME_LIMIT else ''} (first at "
                    f"{path} line {int(bad[LINE].iloc[0])})")
        log.warning("%s: %d rows with unknown AGS dropped", source, int(unknown.sum()))
        df = df.loc[~unknown]
    start, end = panel_window(cfg)
    outside = (df["month"] < start) | (df["month"] > end)
    if outside.any():
        lineage.add(source, "panel window", len(df), len(df) - int(outside.sum()), "drop",
                    f"{int(outside.sum())} rows outside the panel window "
                    f"{cfg['panel']['start']}..{cfg['panel']['end']} dropped")
        df = df.loc[~outside]
    return df.sort_values(["ags", "month"]).reset_index(drop=True)


def check_coverage(df: pd.DataFrame, cfg: dict[str, Any], frame: pd.DataFrame, lineage: Lineage,
                   source: str, path: Path, schema: S.Schema, last: str,
                   options: IngestOptions) -> None:
    """Coverage of the frame's municipalities and of the panel months by a monthly file.

    Below ``ingest.min_municipality_coverage`` / ``ingest.min_month_coverage`` the reader
    stops naming the file and what is missing (a cut or partial delivery); above, every
    municipality and every month without a row is named in the lineage (step ``gap:
    municipalities`` / ``gap: months``)."""
    months = panel_months(cfg)
    present_m = set(pd.DatetimeIndex(df["month"].unique()))
    missing_m = [m for m in months if m not in present_m]
    frame_ags = sorted(frame["ags"].astype(str))
    present_a = set(df["ags"])
    missing_a = [a for a in frame_ags if a not in present_a]
    share_a = 1 - len(missing_a) / max(len(frame_ags), 1)
    share_m = 1 - len(missing_m) / max(len(months), 1)
    ags_col = next(c.name for c in schema.columns if c.out == "ags")
    month_col = next(c.name for c in schema.columns if c.out == "month")
    window = f"{cfg['panel']['start']}..{cfg['panel']['end']}"
    tail = f"; {last}" if last else ""
    if share_a < options.min_municipality_coverage:
        raise IngestError(path, f"{source}: only {len(frame_ags) - len(missing_a)} of "
                          f"{len(frame_ags)} municipalities of the frame ({share_a:.1%}) have rows "
                          f"in the panel window {window}, below ingest.min_municipality_coverage "
                          f"= {options.min_municipality_coverage:.0%}: {len(missing_a)} missing "
                          f"({_names(missing_a, frame, 10)}){tail} - a cut or partial delivery?",
                          column=ags_col)
    if share_m < options.min_month_coverage:
        raise IngestError(path, f"{source}: only {len(months) - len(missing_m)} of {len(months)} "
                          f"months of the panel window {window} ({share_m:.1%}) have rows, below "
                          f"ingest.min_month_coverage = {options.min_month_coverage:.0%}: missing "
                          f"{[f'{m:%Y-%m}' for m in missing_m][:24]}"
                          f"{' ...' if len(missing_m) > 24 else ''}{tail} - a cut or partial delivery?",
                          column=month_col)
    note(lineage, source, f"coverage: {len(frame_ags) - len(missing_a)} of {len(frame_ags)} "
         f"municipalities, {len(months) - len(missing_m)} of {len(months)} months of {window}",
         rows=len(df), step="coverage")
    if missing_m:
        _decision(lineage, source, "gap: months",
                  f"{len(missing_m)} month(s) of the panel window without any row in {path.name}: "
                  f"{', '.join(f'{m:%Y-%m}' for m in missing_m)} (not reported for every "
                  "municipality: NaN in the panel)", rows=len(df), n=len(missing_m), action="flag")
    if missing_a:
        _decision(lineage, source, "gap: municipalities",
                  f"{len(missing_a)} municipalit{'y' if len(missing_a) == 1 else 'ies'} of the frame "
                  f"without any row in {path.name}: {_names(missing_a, frame)} (NaN in the panel)",
                  rows=len(df), n=len(missing_a), action="flag")


def read_monthly(cfg: dict[str, Any], key: str, frame_ags: set[str], lineage: Lineage,
                 path: str | Path, frame: pd.DataFrame | None = None) -> pd.DataFrame:
    """One of the monthly outcome files (refugees_au, employment_ba, training, language_b1)
    at ``path``; ``cfg`` gives the panel window, the masked-count rule and the ``ingest``
    checks (coverage thresholds, final line break)."""
    path = Path(path)
    opts = IngestOptions.from_config(cfg)
    schema = {"refugees_au": S.REFUGEES_AU, "employment_ba": S.EMPLOYMENT_BA,
              "training": S.TRAINING, "language_b1": S.LANGUAGE_B1}[key]
    if key == "refugees_au":
        raw = read_delimited(path, sep=";", encoding="utf-8-sig", lineage=lineage, source=key,
                             require_final_newline=opts.require_final_newline)
    elif key == "language_b1":
        raw = read_delimited(path, sep=",", encoding="utf-8", lineage=lineage, source=key,
                             require_final_newline=opts.require_final_newline)
    else:
        raw = read_delimited(path, sep=";", encoding="cp1252", lineage=lineage, source=key,
                             comment="#", require_final_newline=opts.require_final_newline)
    last_line = int(raw[LINE].max()) if len(raw) else 0
    lineage.add(key, "read", len(raw), len(raw), "read", f"data lines of {path.name}")
    raw = match_columns(raw, schema, path, lineage)
    ags_col = next(c.name for c in schema.columns if c.out == "ags")
    name_col = next(c.name for c in schema.columns if c.out == "gemeinde")
    raw = _drop_aggregate_regions(raw, ags_col, lineage, key, frame, name_col)
    df = validate(raw, schema, path, lineage=lineage, frame_ags=None,
                  masked_rule=cfg["panel"].get("masked_count_rule", "midpoint"),
                  date_range=("2000-01-01", "2030-12-31"), frame=frame,
                  fuzzy_threshold=cfg["panel"].get("fuzzy_match_threshold", 90))
    if key == "training":
        parts = ("in_ausbildung", "in_weiterbildung")
        df["in_training"] = df[parts[0]] + df[parts[1]]
        df["in_training_lo"] = df[parts[0] + "_lo"] + df[parts[1] + "_lo"]
        df["in_training_hi"] = df[parts[0] + "_hi"] + df[parts[1] + "_hi"]
        df["in_training_masked"] = df[parts[0] + "_masked"] | df[parts[1] + "_masked"]
    for c in df.columns:
        if c in ("refugees", "b1_holders"):
            df[c] = df[c].astype("float64")
    last = ""
    if len(df):
        r = df.loc[df[LINE].idxmax()]
        last = (f"the file's data end at line {last_line} ({r['ags']}, "
                f"{r['month']:%Y-%m})" if pd.notna(r["month"]) else f"the file's data end at line {last_line}")
    df = _unknown_and_window(df, cfg, frame_ags, lineage, key, path)
    if frame is None:
        frame = pd.DataFrame({"ags": sorted(frame_ags)})
    check_coverage(df, cfg, frame, lineage, key, path, schema, last, opts)
    return df


def ingest_monthly(cfg: dict[str, Any], raw: Path, frame: pd.DataFrame, lineage: Lineage,
                   *, key: str) -> dict[str, pd.DataFrame]:
    return {key: read_monthly(cfg, key, set(frame["ags"]), lineage, raw, frame=frame)}


__all__ = ["IngestError", "ingest_funding", "ingest_kpi", "ingest_monthly", "ingest_posts",
           "read_funding", "read_kpi", "read_monthly", "read_posts"]
