"""Readers for the administrative sources (funding, posts, KPI reports, monthly outcomes).

One function per raw file (``paths.RAW_FILES`` key); each validates against its declared
schema (:mod:`ifm_eval.ingest.schemas`), records every row-changing step in a
:class:`~ifm_eval.lineage.Lineage` and writes a cleaned Parquet to
``paths.processed_path(cfg, key)``. :func:`ingest_source` dispatches by key (the person-level
case-management export lives in :mod:`ifm_eval.ingest.case_management`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from ifm_eval import paths
from ifm_eval.ingest import schemas as S
from ifm_eval.ingest.readers import (
    LINE,
    IngestError,
    _decision,
    read_delimited,
    read_excel_sheet,
    repair_ags,
    validate,
    write_parquet,
)
from ifm_eval.lineage import Lineage

log = logging.getLogger(__name__)

#: Tolerance for "shares of one post sum to 1" and "members' VZÄ add up to the Verband's".
SHARE_TOL = 0.01

ADMIN_SOURCES = ("funding_applications", "im_posts", "kpi_reports", "refugees_au",
                 "employment_ba", "training", "language_b1", "case_management")


# ----------------------------------------------------------------------------- frame


def load_frame(cfg: dict[str, Any]) -> pd.DataFrame:
    """The 1,101 municipalities (processed reference table if present, else parsed)."""
    from ifm_eval import reference

    p = paths.processed_path(cfg, "municipalities")
    full = pd.read_parquet(p) if p.is_file() else reference.read_gemeindeverzeichnis(
        paths.reference_path(cfg, "gv"))
    return reference.municipalities(full)


def panel_window(cfg: dict[str, Any]) -> tuple[pd.Timestamp, pd.Timestamp]:
    return pd.Timestamp(cfg["panel"]["start"] + "-01"), pd.Timestamp(cfg["panel"]["end"] + "-01")


def _finish(cfg: dict[str, Any], lineage: Lineage, outputs: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    for key, df in outputs.items():
        df = df.drop(columns=[LINE], errors="ignore")
        outputs[key] = df
        write_parquet(df, paths.processed_path(cfg, key))
        log.info("wrote %s (%d rows)", paths.processed_path(cfg, key), len(df))
    lineage.write(paths.lineage_path(cfg, lineage.stage))
    return outputs


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


def ingest_funding(cfg: dict[str, Any]) -> dict[str, pd.DataFrame]:
    lineage = Lineage("ingest_funding_applications")
    frame = load_frame(cfg)
    verb, mem = read_funding(paths.raw_path(cfg, "funding_applications"), set(frame["ags"]), lineage,
                             frame=frame)
    return _finish(cfg, lineage, {"funding_verbaende": verb, "funding_members": mem})


# ----------------------------------------------------------------------------- posts


def read_posts(path: str | Path, frame_ags: set[str], lineage: Lineage,
               frame: pd.DataFrame | None = None) -> pd.DataFrame:
    """IM posts (one row per post and municipality served)."""
    path = Path(path)
    src = "im_posts"
    raw = read_delimited(path, sep=";", encoding="cp1252", lineage=lineage, source=src)
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


def ingest_posts(cfg: dict[str, Any]) -> dict[str, pd.DataFrame]:
    lineage = Lineage("ingest_im_posts")
    frame = load_frame(cfg)
    df = read_posts(paths.raw_path(cfg, "im_posts"), set(frame["ags"]), lineage, frame=frame)
    return _finish(cfg, lineage, {"im_posts": df})


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


def ingest_kpi(cfg: dict[str, Any]) -> dict[str, pd.DataFrame]:
    lineage = Lineage("ingest_kpi_reports")
    frame = load_frame(cfg)
    df = read_kpi(paths.raw_path(cfg, "kpi_reports"), set(frame["ags"]), lineage, frame=frame)
    return _finish(cfg, lineage, {"kpi_reports": df})


# ----------------------------------------------------------------------------- outcomes


def _drop_aggregate_regions(raw: pd.DataFrame, column: str, lineage: Lineage, source: str) -> pd.DataFrame:
    """BA files list Land/Kreis totals among the municipalities: drop them (logged)."""
    key = raw[column].astype(str).str.strip()
    fixed, _ = repair_ags(key)
    agg = key.str.fullmatch(r"\d{2}|\d{3}|\d{5}", na=False) & ~fixed.str.fullmatch(r"\d{8}", na=False)
    if agg.any():
        lineage.add(source, "aggregate regions", len(raw), len(raw) - int(agg.sum()), "drop",
                    f"{int(agg.sum())} rows for Land/Regierungsbezirk/Kreis totals (2/3/5-digit "
                    f"Region) dropped; municipalities only")
        raw = raw.loc[~agg].reset_index(drop=True)
    return raw


def _unknown_and_window(df: pd.DataFrame, cfg: dict[str, Any], frame_ags: set[str],
                        lineage: Lineage, source: str, path: Path) -> pd.DataFrame:
    unknown = ~df["ags"].isin(frame_ags)
    if unknown.any():
        bad = df.loc[unknown]
        lineage.add(source, "unknown AGS", len(df), len(df) - int(unknown.sum()), "drop",
                    f"{int(unknown.sum())} rows with AGS not in the reference frame dropped: "
                    f"{sorted(bad['ags'].unique().tolist())[:10]} (first at {path} line "
                    f"{int(bad[LINE].iloc[0])})")
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


def read_monthly(cfg: dict[str, Any], key: str, frame_ags: set[str], lineage: Lineage,
                 path: str | Path | None = None, frame: pd.DataFrame | None = None) -> pd.DataFrame:
    """One of the monthly outcome files (refugees_au, employment_ba, training, language_b1)."""
    path = Path(path) if path is not None else paths.raw_path(cfg, key)
    schema = {"refugees_au": S.REFUGEES_AU, "employment_ba": S.EMPLOYMENT_BA,
              "training": S.TRAINING, "language_b1": S.LANGUAGE_B1}[key]
    if key == "refugees_au":
        raw = read_delimited(path, sep=";", encoding="utf-8-sig", lineage=lineage, source=key)
    elif key == "language_b1":
        raw = read_delimited(path, sep=",", encoding="utf-8", lineage=lineage, source=key)
    else:
        raw = read_delimited(path, sep=";", encoding="cp1252", lineage=lineage, source=key,
                             comment="#")
    lineage.add(key, "read", len(raw), len(raw), "read", f"data lines of {path.name}")
    if key in ("employment_ba", "training") and "Region" in raw.columns:
        raw = _drop_aggregate_regions(raw, "Region", lineage, key)
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
    return _unknown_and_window(df, cfg, frame_ags, lineage, key, path)


def ingest_monthly(cfg: dict[str, Any], key: str) -> dict[str, pd.DataFrame]:
    lineage = Lineage(f"ingest_{key}")
    frame = load_frame(cfg)
    df = read_monthly(cfg, key, set(frame["ags"]), lineage, frame=frame)
    return _finish(cfg, lineage, {key: df})


# ----------------------------------------------------------------------------- dispatch


def _case_management(cfg: dict[str, Any]) -> dict[str, pd.DataFrame]:
    from ifm_eval.ingest.case_management import ingest_case_management

    return ingest_case_management(cfg)


READERS: dict[str, Callable[[dict[str, Any]], dict[str, pd.DataFrame]]] = {
    "funding_applications": ingest_funding,
    "im_posts": ingest_posts,
    "kpi_reports": ingest_kpi,
    "refugees_au": lambda cfg: ingest_monthly(cfg, "refugees_au"),
    "employment_ba": lambda cfg: ingest_monthly(cfg, "employment_ba"),
    "training": lambda cfg: ingest_monthly(cfg, "training"),
    "language_b1": lambda cfg: ingest_monthly(cfg, "language_b1"),
    "case_management": _case_management,
}


def ingest_source(cfg: dict[str, Any], key: str) -> dict[str, pd.DataFrame]:
    """Read, validate and write one administrative source; returns the written frames."""
    if key not in READERS:
        raise ValueError(f"unknown admin source {key!r} (one of {sorted(READERS)})")
    t0 = time.perf_counter()
    out = READERS[key](cfg)
    log.info("ingest %s: %.1f s", key, time.perf_counter() - t0)
    return out


def ingest_all(cfg: dict[str, Any], sources: tuple[str, ...] = ADMIN_SOURCES) -> None:
    for key in sources:
        ingest_source(cfg, key)


__all__ = ["ADMIN_SOURCES", "IngestError", "ingest_source", "ingest_all", "load_frame",
           "read_funding", "read_posts", "read_kpi", "read_monthly"]
