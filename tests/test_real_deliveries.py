"""Real deliveries are read right: the ways real files differ from the stand-ins.

A small stand-in world (``synth.scale`` 0.03: every municipality and month, few persons) is
generated and run to the panel once per module. Each case changes one or more stand-in
files the way real deliveries differ and asserts either the exact panel (or harmonised
survey table) of the unmodified files - or the exact expected difference - plus the
lineage record of the repair, or the exact location of the error (file, line, column).
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pyreadstat
import pytest
import wiring

from ifm_eval import paths as P
from ifm_eval.config import load_config, validate_config
from ifm_eval.ingest.readers import IngestError
from ifm_eval.ingest.survey_read import SurveyError, ingest_wave, read_wave
from ifm_eval.lineage import Lineage
from ifm_eval.sources import OUTCOME_SOURCES, SOURCES
from ifm_eval.stage_io import StageIO

ROOT = Path(__file__).resolve().parents[1]
REF = SOURCES["refugees_au"].path
BA = SOURCES["employment_ba"].path
TRAIN = SOURCES["training"].path
B1 = SOURCES["language_b1"].path
POSTS = SOURCES["im_posts"].path
FUND = SOURCES["funding_applications"].path
KPI = SOURCES["kpi_reports"].path
CASE = SOURCES["case_management"].path
W1, W2, W3 = (SOURCES[f"survey_{w}"].path for w in ("w1", "w2", "w3"))
#: which source each raw file is
SOURCE_OF = {s.path: k for k, s in SOURCES.items()}
#: admin sources whose change reaches the panel through the treatment table
VIA_TREATMENT = ("funding_applications", "im_posts")
ENC = {REF: "utf-8-sig", BA: "cp1252", TRAIN: "cp1252", B1: "utf-8", POSTS: "cp1252",
       CASE: "utf-8"}


def _cfg(root: Path) -> dict:
    cfg = copy.deepcopy(load_config(ROOT / "config.yaml"))
    d = cfg["data"]
    d["source"] = "synthetic"
    for key, sub in (("synthetic_dir", "raw"), ("raw_dir", "raw"), ("processed_dir", "processed"),
                     ("results_dir", "results")):
        d[key] = str(root / sub)
    d["reference_dir"] = str(ROOT / "data" / "raw" / "reference")
    cfg["synth"]["scale"] = 0.03
    # cell-by-cell comparisons with the clean world need a local point value for masked
    # counts: the default rule (expected) borrows the month's state-wide rate, so a repaired
    # file in one municipality moves the imputed masked cells of others, by design
    # (tests/test_panel.py::test_rates_and_masking checks that rule)
    cfg["panel"]["masked_count_rule"] = "midpoint"
    return validate_config(cfg)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The unmodified stand-in files and everything made from them, up to the panel."""
    t0 = time.perf_counter()
    root = tmp_path_factory.mktemp("real_deliveries")
    cfg = _cfg(root)
    wiring.synth(cfg)
    panel = wiring.upto_panel(cfg)
    ingested = {k: pd.read_parquet(P.processed_path(cfg, k))
                for s in SOURCES.values() if s.kind == "admin" for k in s.outputs}
    return {"root": root, "cfg": cfg, "panel": panel, "ingested": ingested,
            "harmonised": pd.read_parquet(P.processed_path(cfg, "survey_harmonised")),
            "key_report": pd.read_csv(P.processed_path(cfg, "key_report")),
            "quality": pd.read_csv(P.processed_path(cfg, "data_quality")),
            "seconds": time.perf_counter() - t0}


def _tree(world: dict, tmp: Path, edit: tuple[str, ...], **cfg_over: dict) -> dict:
    """A raw tree of the world's files (links) with real copies of the files in ``edit``,
    and a copy of the processed files; returns the config pointing at it."""
    src = Path(world["cfg"]["data"]["synthetic_dir"])
    for s in SOURCES.values():
        dst = tmp / "raw" / s.path
        dst.parent.mkdir(parents=True, exist_ok=True)
        if s.path in edit:
            shutil.copy(src / s.path, dst)
        else:
            os.symlink(src / s.path, dst)
    shutil.copytree(Path(world["cfg"]["data"]["processed_dir"]), tmp / "processed")
    cfg = _cfg(tmp)
    for sec, vals in cfg_over.items():
        cfg[sec].update(vals)
    return cfg


# --------------------------------------------------------------------------- mutations
def text_edit(rel: str, fn: Callable[[list[str]], list[str]]) -> Callable[[Path], None]:
    """Edit a CSV as lines (line terminators kept as in the file)."""
    enc = ENC[rel]

    def mutate(raw: Path) -> None:
        p = raw / rel
        data = p.read_bytes().decode(enc)
        nl = "\r\n" if "\r\n" in data else "\n"
        lines = data.split(nl)
        assert lines[-1] == ""
        out = nl.join(fn(lines[:-1])) + nl
        p.write_bytes(("\ufeff" + out).encode("utf-8") if enc == "utf-8-sig" else out.encode(enc))

    return mutate


def cut_inside_last_field(rel: str, keep: float) -> Callable[[Path], None]:
    """A broken download: the file ends inside the last field of a line."""
    def mutate(raw: Path) -> None:
        p = raw / rel
        b = p.read_bytes()
        end = b.index(b"\n", int(len(b) * keep))
        end -= 2 if b[end - 1:end] == b"\r" else 1  # the line's last character: inside the field
        p.write_bytes(b[:end])

    return mutate


def cut_at_line(rel: str, keep: float) -> Callable[[Path], None]:
    """A partial delivery that happens to end at a line break."""
    def mutate(raw: Path) -> None:
        p = raw / rel
        b = p.read_bytes()
        p.write_bytes(b[: b.index(b"\n", int(len(b) * keep)) + 1])

    return mutate


def sheet_edit(rel: str, sheet: str, fn: Callable) -> Callable[[Path], None]:
    def mutate(raw: Path) -> None:
        wb = openpyxl.load_workbook(raw / rel)
        fn(wb[sheet])
        wb.save(raw / rel)

    return mutate


def field_of(line: str, sep: str = ";") -> list[str]:
    return line.split(sep)


def _excel_serials(ws) -> None:
    col = [c.value for c in ws[3]].index("Bewilligt am") + 1
    for r in range(4, ws.max_row + 1):
        c = ws.cell(r, col)
        if c.value is not None:
            c.value = (c.value - pd.Timestamp("1899-12-30").to_pydatetime()).days
            c.number_format = "General"  # the cell lost its date format


def _posts_point(lines: list[str]) -> list[str]:
    return [lines[0]] + [re.sub(r"(?<=;)(\d+),(\d+)(?=;|$)", r"\1.\2", ln) for ln in lines[1:]]


def _rename_header(old: str, new: str) -> Callable[[list[str]], list[str]]:
    return lambda ls: [ls[0].replace(old, new), *ls[1:]]


def _month_forms(lines: list[str]) -> list[str]:
    """Berichtsmonat as Excel writes months it turned into dates: 01.MM.YYYY, month-end
    dates, Excel serial numbers and 'Jan 15' - cycling through the data lines."""
    out = []
    k = 0
    for ln in lines:
        m = re.match(r"^([^#;][^;]*;[^;]*;)(\d{4})-(\d{2})(;.*)$", ln)
        if not m:
            out.append(ln)
            continue
        y, mo = int(m.group(2)), int(m.group(3))
        first = pd.Timestamp(year=y, month=mo, day=1)
        form = k % 4
        k += 1
        if form == 0:
            v = first.strftime("01.%m.%Y")
        elif form == 1:
            v = (first + pd.offsets.MonthEnd(0)).strftime("%d.%m.%Y")
        elif form == 2:
            v = str((first - pd.Timestamp("1899-12-30")).days)
        else:
            v = first.strftime("%b %y")
        out.append(m.group(1) + v + m.group(4))
    return out


def _na_markers(lines: list[str]) -> list[str]:
    """Three cells of the denominator marked 'not reported' as German tables do."""
    marks = {1: "k.A.", 2: "-", 3: "."}
    out = [lines[0]]
    for i, ln in enumerate(lines[1:], start=1):
        f = ln.split(";")
        out.append(";".join([*f[:3], marks[i]]) if i in marks else ln)
    return out


def _drop_rows(rel: str, pred: Callable[[list[str]], bool], sep: str = ";"):
    """Remove the data lines for which ``pred(fields)`` holds (comments and header kept)."""
    def fn(lines: list[str]) -> list[str]:
        out, header_seen = [], False
        for ln in lines:
            if ln.startswith("#") or not header_seen:
                header_seen = header_seen or not ln.startswith("#")
                out.append(ln)
            elif not pred(ln.split(sep)):
                out.append(ln)
        return out
    return text_edit(rel, fn)


@dataclass
class Variant:
    id: str
    edit: dict[str, Callable[[Path], None]]   # raw file -> mutation
    decision: tuple[str, str] | None = None   # (lineage step, text in the reason)
    error: str | None = None                  # regex of the error message
    file: str | None = None                   # file the error names
    line: int | str | None = None             # expected line ("last" = the file's last line)
    column: str | None = None                 # expected column
    diff: Callable[[dict, Path], pd.DataFrame] | None = None  # expected panel (world, raw)
    cfg: dict | None = None


GAP_AGS = "08115003"   # Böblingen: removed from the B1 file
MERGED_AGS = "08436011"  # Baienfurt: absent from every outcome file


def _expect_na_cells(world: dict, raw: Path) -> pd.DataFrame:
    exp = world["panel"].copy()
    first = exp.sort_values(["ags", "month"]).index[:3]
    exp.loc[first, "refugees"] = np.nan
    for r in ("rate_employment", "rate_training", "rate_language"):
        exp.loc[first, r] = np.nan
    return exp


def _expect_thousands(world: dict, raw: Path) -> pd.DataFrame:
    exp = world["panel"].copy()
    first = exp.sort_values(["ags", "month"]).index[:3]
    exp.loc[first, "refugees"] = [1234.0, 12345.0, 1234567.0]
    den = exp.loc[first, "refugees"]
    for r, num in (("rate_employment", "employed"), ("rate_training", "in_training"),
                   ("rate_language", "b1_holders_filled")):
        exp.loc[first, r] = 100 * exp.loc[first, num] / den
    return exp


def _expect_cut_denominator(world: dict, raw: Path) -> pd.DataFrame:
    """The cells of the (cut) denominator file that remain; every other refugee count and
    rate is missing."""
    lines = (raw / REF).read_bytes().decode("utf-8-sig").splitlines()[1:]
    have = pd.DataFrame([ln.split(";")[::2] for ln in lines], columns=["ags", "month"])
    have["month"] = pd.to_datetime(have["month"] + "-01")
    exp = world["panel"].copy()
    key = pd.MultiIndex.from_frame(exp[["ags", "month"]])
    gone = ~key.isin(pd.MultiIndex.from_frame(have))
    exp.loc[gone, ["refugees", "rate_employment", "rate_training", "rate_language"]] = np.nan
    return exp


def _thousands(lines: list[str]) -> list[str]:
    vals = {1: "1.234", 2: "12.345", 3: "1.234.567"}
    return [lines[0]] + [";".join([*ln.split(";")[:3], vals[i]]) if i in vals else ln
                         for i, ln in enumerate(lines[1:], start=1)]


def _expect_gap_month(world: dict, raw: Path) -> pd.DataFrame:
    exp = world["panel"].copy()
    m = exp["month"] == pd.Timestamp("2018-07-01")
    for c in ("employed", "employed_lo", "employed_hi", "rate_employment"):
        exp.loc[m, c] = np.nan
    exp.loc[m, "employed_masked"] = False
    return exp


def _expect_gap_ags(world: dict, raw: Path) -> pd.DataFrame:
    exp = world["panel"].copy()
    a = exp["ags"] == GAP_AGS
    exp.loc[a, ["b1_holders", "b1_holders_filled", "rate_language"]] = np.nan
    exp.loc[a, "b1_imputed"] = False
    return exp


def _expect_merged(world: dict, raw: Path) -> pd.DataFrame:
    exp = world["panel"].copy()
    a = exp["ags"] == MERGED_AGS
    cols = ["refugees", "employed", "employed_lo", "employed_hi", "in_training", "training_lo",
            "training_hi", "b1_holders", "b1_holders_filled", "rate_employment", "rate_training",
            "rate_language"]
    exp.loc[a, cols] = np.nan
    exp.loc[a, ["employed_masked", "training_masked", "b1_imputed"]] = False
    return exp


def _rekey(old: str, new: str, sep: str = ";"):
    """A merger: the municipality's rows carry a key the frame does not have."""
    return lambda ls: [ln.replace(old + sep, new + sep, 1) if ln.startswith(old + sep) else ln
                       for ln in ls]


VARIANTS = [
    # ---- silently wrong before: cut files, collapsed coverage
    Variant("denominator_cut_inside_last_field", {REF: cut_inside_last_field(REF, 0.5)},
            error=r"without a line break: the file was cut inside line", file=REF, line="last"),
    Variant("denominator_cut_at_a_line_break", {REF: cut_at_line(REF, 0.5)},
            error=r"only 55\d of 1101 municipalities of the frame .* below "
                  r"ingest.min_municipality_coverage = 90%: 55\d missing \(.*\); the file's data end",
            file=REF, column="AGS"),
    Variant("ba_months_collapse", {BA: _drop_rows(BA, lambda f: f[2] >= "2017-01")},
            error=r"only 24 of 72 months of the panel window .* below ingest.min_month_coverage",
            file=BA, column="Berichtsmonat"),
    Variant("case_export_cut_inside_last_field", {CASE: cut_inside_last_field(CASE, 0.7)},
            error="without a line break", file=CASE, line="last"),
    Variant("coverage_threshold_configurable", {REF: cut_at_line(REF, 0.5)},
            cfg={"ingest": {"min_municipality_coverage": 0.4}},
            decision=("gap: municipalities", "municipalities of the frame without any row"),
            diff=_expect_cut_denominator),
    # ---- misleading errors before: trailing separator, decimal point
    Variant("denominator_trailing_separator",
            {REF: text_edit(REF, lambda ls: [ls[0], *[ln + ";" for ln in ls[1:]]])},
            decision=("trailing separator", "data line(s) end with an extra ';' that the header")),
    Variant("posts_trailing_separator",
            {POSTS: text_edit(POSTS, lambda ls: [ls[0], *[ln + ";" for ln in ls[1:]]])},
            decision=("trailing separator", "extra ';'")),
    Variant("posts_decimal_point", {POSTS: text_edit(POSTS, _posts_point)},
            decision=("decimal mark", "numbers written with a decimal point, not the declared "
                                      "decimal comma")),
    Variant("posts_mixed_decimal_marks",
            {POSTS: text_edit(POSTS, lambda ls: [*ls[:5], _posts_point([ls[0], ls[5]])[1], *ls[6:]])},
            error="mixed decimal conventions", file=POSTS, line=6, column="VZÄ Stelle"),
    # ---- too strict before
    Variant("denominator_thousands_separators", {REF: text_edit(REF, _thousands)},
            decision=("thousands separators", "'1.234' on line 2"), diff=_expect_thousands),
    Variant("denominator_land_kreis_totals",
            {REF: text_edit(REF, lambda ls: [ls[0], "08;Baden-Württemberg;2015-01;1.234",
                                             "081;Reg.-Bez. Stuttgart;2015-01;999",
                                             "08115;Böblingen, Landkreis;2015-01;345",
                                             "08115000;Landkreis Böblingen;2015-02;350",
                                             ";Landkreis Böblingen;2015-03;351", *ls[1:]])},
            decision=("aggregate regions", "5 rows for Land/Regierungsbezirk/Kreis totals dropped")),
    Variant("kpi_totals_row_under_table",
            {KPI: sheet_edit(KPI, "Kennzahlen", lambda ws: ws.append(
                ["Summe", None, None, 9999, 999, 99, 9, 9, 9]))},
            decision=("totals rows", "'Summe'")),
    Variant("members_gesamt_row",
            {FUND: sheet_edit(FUND, "Mitglieder", lambda ws: ws.append(
                [None, "Gesamt", None, 12345, 432.1]))},
            decision=("totals rows", "'Gesamt'")),
    Variant("funding_excel_serial_dates", {FUND: sheet_edit(FUND, "Antraege", _excel_serials)},
            decision=("Excel serial dates", "Excel serial day numbers")),
    Variant("ba_months_turned_into_dates", {BA: text_edit(BA, _month_forms)},
            decision=("months as dates", "Excel turns months into dates")),
    Variant("month_date_not_first_or_last_day",
            {TRAIN: text_edit(TRAIN, lambda ls: [*ls[:8], re.sub(r";2015-0(\d);", r";15.0\1.2015;", ls[8]),
                                                 *ls[9:]])},
            error="a date that is not the first or last day", file=TRAIN, line=9,
            column="Berichtsmonat"),
    Variant("denominator_not_reported_markers", {REF: text_edit(REF, _na_markers)},
            decision=("not reported", "marked ['-', '.', 'k.A.']"), diff=_expect_na_cells),
    Variant("not_reported_in_required_column",
            {REF: text_edit(REF, lambda ls: [*ls[:4], re.sub(r";2015-0\d;", ";k.A.;", ls[4]), *ls[5:]])},
            error="'not reported' marker in a required column: 'k.A.'", file=REF, line=5,
            column="Monat"),
    Variant("header_ue_for_umlaut",
            {REF: text_edit(REF, _rename_header("Geflüchtete AU", "Gefluechtete AU")),
             POSTS: text_edit(POSTS, lambda ls: [ls[0].replace("ä", "ae").replace("Ä", "AE"), *ls[1:]])},
            decision=("column names", "umlauts/ß written as ae/oe/ue/ss")),
    # ---- gaps named
    Variant("month_missing_for_all", {BA: _drop_rows(BA, lambda f: f[2] == "2018-07")},
            decision=("gap: months", "2018-07"), diff=_expect_gap_month),
    Variant("municipality_missing_from_a_source",
            {B1: _drop_rows(B1, lambda f: f[0] == GAP_AGS, sep=",")},
            decision=("gap: municipalities", f"{GAP_AGS} Böblingen"), diff=_expect_gap_ags),
    Variant("merger_absent_from_every_file",
            {REF: text_edit(REF, _rekey(MERGED_AGS, "08436099")),
             BA: text_edit(BA, _rekey(MERGED_AGS, "08436099")),
             TRAIN: text_edit(TRAIN, _rekey(MERGED_AGS, "08436099")),
             B1: text_edit(B1, _rekey(MERGED_AGS, "08436099", ","))},
            decision=("unknown AGS", "08436099"), diff=_expect_merged),
]


def test_decimal_evidence_and_month_forms() -> None:
    from ifm_eval.ingest.readers import decimal_evidence, parse_months

    t = pd.Series(["0,5", "12,25", "1.234,5", "1.234.567", "0.725", "0.8", "1,234.5", "1,234,567",
                   "1.250", "1,250", "7", None], dtype="string")
    comma, point = decimal_evidence(t)
    assert comma.tolist() == [True] * 4 + [False] * 8
    assert point.tolist() == [False] * 4 + [True] * 4 + [False] * 4
    m, form = parse_months(pd.Series(["2015-01", "201502", "01.03.2015", "30.04.2015",
                                      "2015-05-01", "42156", "07.2015", "Aug 15", "Sept. 2015",
                                      "Okt 2015", "15.11.2015", "2015-13", None], dtype="string"))
    assert [f"{x:%Y-%m}" if pd.notna(x) else None for x in m] == [
        "2015-01", "2015-02", "2015-03", "2015-04", "2015-05", "2015-06", "2015-07", "2015-08",
        "2015-09", "2015-10", None, None, None]
    assert form.tolist()[:3] == ["", "YYYYMM", "date DD.MM.YYYY"] and form.iloc[10] == "day"


def test_variants_are_distinct() -> None:
    assert len({v.id for v in VARIANTS}) == len(VARIANTS) >= 20


def _run_admin(cfg: dict, sources: list[str]) -> None:
    for key in sources:
        wiring.ingest(cfg, key)
    if set(sources) & set(VIA_TREATMENT):
        wiring.treatment(cfg)


@pytest.mark.parametrize("v", VARIANTS, ids=[v.id for v in VARIANTS])
def test_variant(v: Variant, world: dict, tmp_path: Path) -> None:
    cfg = _tree(world, tmp_path, tuple(v.edit), **(v.cfg or {}))
    raw = Path(cfg["data"]["synthetic_dir"])
    for mutate in v.edit.values():
        mutate(raw)
    sources = sorted({SOURCE_OF[rel] for rel in v.edit})
    if v.error is not None:
        with pytest.raises(IngestError, match=v.error) as exc:
            _run_admin(cfg, sources)
        err = exc.value
        assert err.path.endswith(v.file), str(err)
        if v.line == "last":
            n = (raw / v.file).read_bytes().count(b"\n") + 1
            assert err.line == n, str(err)
        elif v.line is not None:
            assert err.line == v.line, str(err)
        if v.column is not None:
            assert err.column == v.column, str(err)
        return
    _run_admin(cfg, sources)
    step, text = v.decision
    lin = pd.concat([pd.read_csv(P.lineage_path(cfg, f"ingest_{s}")) for s in sources])
    rec = lin.loc[lin["step"] == step]
    assert len(rec), lin[["step", "reason"]].to_string()
    assert any(text in r for r in rec["reason"]), rec["reason"].tolist()
    assert (rec["action"] != "read").all()
    panel = wiring.panel(cfg)
    expected = world["panel"] if v.diff is None else v.diff(world, raw)
    pd.testing.assert_frame_equal(panel, expected)
    if v.diff is None:  # every ingested frame of the changed sources as from the clean files
        for s in sources:
            for k in SOURCES[s].outputs:
                got = pd.read_parquet(P.processed_path(cfg, k))
                pd.testing.assert_frame_equal(got, world["ingested"][k], obj=k)


def test_gaps_named_in_panel_lineage_and_data_quality(world: dict, tmp_path: Path) -> None:
    """A month missing for all, a municipality missing from a source and a merged
    municipality appear by name in the panel lineage and the data-quality table."""
    edit = {BA: _drop_rows(BA, lambda f: f[2] == "2018-07"),
            B1: _drop_rows(B1, lambda f: f[0] == GAP_AGS, sep=","),
            REF: text_edit(REF, _rekey(MERGED_AGS, "08436099")),
            TRAIN: text_edit(TRAIN, _rekey(MERGED_AGS, "08436099"))}
    cfg = _tree(world, tmp_path, tuple(edit))
    raw = Path(cfg["data"]["synthetic_dir"])
    for mutate in edit.values():
        mutate(raw)
    # the merged municipality also disappears from the BA and B1 files
    _drop_rows(BA, lambda f: f[0] == MERGED_AGS)(raw)
    _drop_rows(B1, lambda f: f[0] == MERGED_AGS, sep=",")(raw)
    _run_admin(cfg, sorted(OUTCOME_SOURCES))
    wiring.panel(cfg)
    lin = pd.read_csv(P.lineage_path(cfg, "panel"))
    gaps = lin.loc[lin["step"].str.startswith("gap:")].set_index("step")["reason"]
    assert "2018-07" in gaps["gap: employment_ba months without any value"]
    assert f"{GAP_AGS} Böblingen" in gaps["gap: language_b1 municipalities without any value"]
    assert f"{MERGED_AGS} Baienfurt" in gaps["gap: municipalities in no outcome source"]
    assert MERGED_AGS not in gaps["gap: language_b1 municipalities without any value"]
    dq = pd.read_csv(P.processed_path(cfg, "data_quality"), dtype={"ags": str})
    g = dq.loc[dq["table"] == "gap"]
    assert set(g["detail"].str.split(":").str[0]) == {"month", "municipality", "all_sources"}
    assert g.loc[g["source"] == "employment_ba", "month"].tolist() == ["2018-07-01"]
    assert g.loc[g["source"] == "language_b1", "ags"].tolist() == [GAP_AGS]
    allsrc = g.loc[g["detail"].str.startswith("all_sources")]
    assert allsrc["ags"].tolist() == [MERGED_AGS]
    assert allsrc["name"].tolist() == ["Baienfurt"]
    # the whole concatenated lineage names them too, and the unmodified world has no gaps
    assert (world["quality"]["table"] != "gap").all()
    ing = pd.read_csv(P.lineage_path(cfg, "ingest_refugees_au"))
    assert "08436099" in ing.loc[ing["step"] == "unknown AGS", "reason"].iloc[0]


# --------------------------------------------------------------------------- surveys
def _rewrite_sav(path: Path, fn: Callable[[pd.DataFrame], pd.DataFrame], rename: dict | None = None) -> None:
    df, meta = pyreadstat.read_sav(str(path), user_missing=True)
    df = fn(df)
    rename = rename or {}
    vvl = {rename.get(k, k): v for k, v in meta.variable_value_labels.items()}
    miss = {rename.get(k, k): v for k, v in meta.missing_ranges.items()}
    pyreadstat.write_sav(df.rename(columns=rename), str(path), variable_value_labels=vvl,
                         missing_ranges=miss,
                         column_labels=dict(zip([rename.get(c, c) for c in meta.column_names],
                                                meta.column_labels, strict=True)))


def _old_dta(how: str, version: int) -> Callable[[Path], None]:
    """Wave 3 saved in an older Stata format: by pandas (Stata 10-13 format, strings in
    latin-1 as Stata 8-13 write them) or by ReadStat (dta 113/115/117 with UTF-8 strings, as
    Unicode-aware programs save old formats)."""
    def mutate(raw: Path) -> None:
        p = raw / W3
        df, meta = pyreadstat.read_dta(str(p))
        labels = meta.variable_value_labels
        if how == "pandas":
            df = df.copy()
            for c in ("q01_key", "q02_vname", "q13_traeger"):
                df[c] = df[c].fillna("").astype(object)
            df.to_stata(p, version=version, write_index=False,
                        value_labels={k: {int(a): b for a, b in v.items()} for k, v in labels.items()},
                        variable_labels=dict(zip(meta.column_names, meta.column_labels, strict=True)))
        else:
            pyreadstat.write_dta(df, str(p), version=version, variable_value_labels=labels,
                                 column_labels=meta.column_labels)
    return mutate


def _harmonise_variant(world: dict, tmp_path: Path, wave: str, mutate: Callable[[Path], None]):
    """Mutate one wave, ingest it and harmonise all waves as the stages do (files in, files
    out); returns (harmonised, key report, the wave's lineage, the harmonisation lineage)."""
    rel = SOURCES[f"survey_{wave}"].path
    cfg = _tree(world, tmp_path, (rel,))
    raw = Path(cfg["data"]["synthetic_dir"])
    mutate(raw)
    lin = Lineage(f"ingest_survey_{wave}")
    ingest_wave(wave, raw / rel, P.processed_path(cfg, f"survey_{wave}"), lin)
    wiring.harmonise(cfg)
    return (pd.read_parquet(P.processed_path(cfg, "survey_harmonised")),
            pd.read_csv(P.processed_path(cfg, "key_report")), lin.frame(),
            pd.read_csv(P.lineage_path(cfg, "harmonise_surveys")))


@pytest.mark.parametrize("how,version,release,encoding", [
    ("readstat", 8, 113, "UTF-8"), ("pandas", 114, 114, "cp1252"), ("readstat", 12, 115, "UTF-8"),
    ("pandas", 117, 117, "cp1252"), ("readstat", 13, 117, "UTF-8")],
    ids=["dta113_readstat", "dta114_latin1", "dta115_readstat", "dta117_latin1", "dta117_readstat"])
def test_stata_wave_in_older_format(world, tmp_path, how, version, release, encoding) -> None:
    harm, report, lin, _ = _harmonise_variant(world, tmp_path, "w3", _old_dta(how, version))
    dec = lin.loc[lin["step"] == "decision", "reason"]
    assert dec.str.contains(f"dta release {release}").any(), dec.tolist()
    assert dec.str.contains(f"read as {encoding}").any(), dec.tolist()
    conv = lin.loc[lin["step"] == "conventions", "reason"].iloc[0]
    assert f"release {release}" in conv and encoding in conv
    wd = read_wave(Path(tmp_path / "raw" / W3), "w3")
    assert "durch einen freien Träger" in list(wd.frame["q12_org"].cat.categories)
    pd.testing.assert_frame_equal(harm, world["harmonised"])
    pd.testing.assert_frame_equal(report.drop(columns="file"), world["key_report"].drop(columns="file"),
                                  check_dtype=False)


def test_district_answer_with_unmatched_verband_name(world, tmp_path) -> None:
    """(a) a district answer whose Verband name (and key) match nothing goes to the key
    report as unmatched; (b) a district answer with a Kreis key and an unknown Verband name
    is matched by its Kreis key. Neither crashes (InvalidIndexError before)."""
    def add_rows(df: pd.DataFrame) -> pd.DataFrame:
        joint = df.index[df["v_02_kreis"] == 1]
        kreis_row = df.loc[[j for j in joint if str(df.at[j, "v_01_ags"]).isdigit()][0]].copy()
        junk = df.loc[joint[0]].copy()
        junk["lfd_nr"] = df["lfd_nr"].max() + 1
        junk["v_01_ags"] = "Verwaltungsverband Nirgendwo"
        junk["v_02b_verband"] = "Verwaltungsverband Nirgendwo"
        kreis_row["lfd_nr"] = df["lfd_nr"].max() + 2
        kreis_row["v_02b_verband"] = "Zweckverband Unbekannt"
        return pd.concat([df, junk.to_frame().T, kreis_row.to_frame().T], ignore_index=True).astype(df.dtypes.to_dict())

    harm, report, _, hlin = _harmonise_variant(
        world, tmp_path, "w2", lambda raw: _rewrite_sav(raw / W2, add_rows))
    w2 = report.loc[report["wave"] == "w2"]
    n = int(world["key_report"].loc[world["key_report"]["wave"] == "w2", "input_row"].max()) + 1
    junk = w2.loc[w2["input_row"] == n]
    assert junk["status"].tolist() == ["unmatched"] and junk["ags"].isna().all()
    assert junk["joint_name_match"].tolist() == ["unmatched"]
    kreis = w2.loc[w2["input_row"] == n + 1]
    assert set(kreis["method"]) == {"kreis_key"} and kreis["expanded"].all()
    assert set(kreis["joint_name_match"]) == {"unmatched"}
    rec = hlin.loc[hlin["step"] == "district answer: Verband name not matched", "reason"]
    assert rec.str.contains("Verwaltungsverband Nirgendwo").any()
    assert rec.str.contains("Zweckverband Unbekannt").any()
    # the unmatched row changes nothing; the Kreis-key row is a duplicate district answer
    old = world["key_report"].loc[world["key_report"]["wave"] == "w2"]
    assert (w2.loc[w2["input_row"] < n, "status"].to_numpy() == old["status"].to_numpy()).all()
    pd.testing.assert_frame_equal(harm.drop(columns=[c for c in harm if c.endswith("_w2")]),
                                  world["harmonised"].drop(columns=[c for c in harm if c.endswith("_w2")]))


def test_spss_variable_names_in_another_case(world, tmp_path) -> None:
    rename = {"F1_kommune": "f1_kommune", "F2_personen": "F2_PERSONEN", "F4_sw_3": "f4_SW_3"}
    harm, report, lin, _ = _harmonise_variant(
        world, tmp_path, "w1", lambda raw: _rewrite_sav(raw / W1, lambda d: d, rename))
    dec = lin.loc[lin["step"] == "decision", "reason"]
    assert dec.str.contains("differ from the codebook in case only").any()
    assert dec.str.contains("'F2_PERSONEN' -> 'F2_personen'").any()
    pd.testing.assert_frame_equal(harm, world["harmonised"])


def test_ambiguous_case_match_is_still_an_error(world, tmp_path) -> None:
    cfg = _tree(world, tmp_path, (W1,))
    raw = Path(cfg["data"]["synthetic_dir"])
    _rewrite_sav(raw / W1, lambda d: d.assign(f2_PERSONEN=d["F2_personen"]),
                 {"F2_personen": "F2_PERSONEN"})
    with pytest.raises(SurveyError, match="declared variable.*missing.*F2_personen"):
        read_wave(raw / W1, "w1")


# --------------------------------------------------------------------------- check-raw
def _check(world: dict, tmp_path: Path, edit: dict, drop: tuple[str, ...] = ()) -> tuple[str, list]:
    from ifm_eval.check_raw import run

    cfg = _tree(world, tmp_path, tuple(edit))
    raw = Path(cfg["data"]["synthetic_dir"])
    for mutate in edit.values():
        mutate(raw)
    ins = {f"raw_{k}": raw / s.path for k, s in SOURCES.items() if s.path not in drop}
    out = tmp_path / "processed" / "checks" / "raw_delivery.md"
    io = StageIO.of("check-raw", {**ins, "frame": P.processed_path(cfg, "municipalities")},
                    {"report": out})
    reports = run(cfg, io)
    return out.read_text(encoding="utf-8"), reports


def test_check_raw_on_the_stand_ins(world, tmp_path, capsys) -> None:
    text, reports = _check(world, tmp_path, {})
    assert [r.status for r in reports].count("ok") >= 12
    assert all(r.status.startswith("ok") for r in reports), [(r.key, r.status) for r in reports]
    assert "**13 of 13 files pass**" in text
    for expect in ("encoding UTF-8 with BOM; separator ';'; header line 1",
                   "encoding cp1252; separator ';'; header line 6; 5 comment line(s)",
                   "encoding UTF-8; separator ','", "decimal mark: decimal comma as declared",
                   "sheet 'Antraege': header row 3", "Stata .dta release 118",
                   "SPSS .sav; encoding UTF-8", "refugees_au: 1101 of 1101 municipalities",
                   "72 of 72 months of 2015-01..2020-12"):
        assert expect in text, expect
    assert capsys.readouterr().out.startswith("# Raw delivery check")


def test_check_raw_reports_problems_per_file(world, tmp_path) -> None:
    edit = {REF: cut_inside_last_field(REF, 0.5), POSTS: text_edit(POSTS, _posts_point),
            BA: text_edit(BA, _month_forms), B1: cut_at_line(B1, 0.3)}
    text, reports = _check(world, tmp_path, edit, drop=(TRAIN,))
    st = {r.key: r for r in reports}
    assert st["training"].status == "missing" and not st["training"].found
    assert st["refugees_au"].status == "unreadable"
    assert "cut inside line" in st["refugees_au"].error
    assert st["language_b1"].status == "coverage error" and st["language_b1"].schema_ok
    assert "below ingest.min_municipality_coverage" in st["language_b1"].error
    assert st["im_posts"].status == "ok, with repairs"
    assert any("decimal point" in r for r in st["im_posts"].repairs)
    assert any(r.startswith("months as dates") for r in st["employment_ba"].repairs)
    assert "**10 of 13 files pass**; 3 need attention" in text
    assert f"expected at `{tmp_path / 'raw' / TRAIN}`" in text


def test_check_raw_cli_and_rule(world, tmp_path) -> None:
    """The CLI subcommand writes the report; the Snakemake rule is outside `all` and thin."""
    from ifm_eval.cli import COMMANDS, main

    assert "check-raw" in {c.name for c in COMMANDS}
    cfg = _tree(world, tmp_path, ())
    import yaml

    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    out = tmp_path / "report.md"
    args = ["check-raw", "--config", str(tmp_path / "config.yaml"),
            "--in", f"frame={P.processed_path(cfg, 'municipalities')}",
            "--in", f"raw_refugees_au={P.raw_path(cfg, 'refugees_au')}", "--out", f"report={out}"]
    assert main(args) == 0
    assert "12 need attention" in out.read_text(encoding="utf-8")
    assert main([*args, "--strict"]) == 1
    smk = (ROOT / "workflow" / "rules" / "data.smk").read_text(encoding="utf-8")
    rule = smk[smk.index("rule check_raw:"):]
    assert "params.io" in rule and "ifm-eval check-raw --config {params.config} {params.io}" in rule
    assert "check_raw" not in (ROOT / "Snakefile").read_text(encoding="utf-8").split("rule all:")[1]


def test_check_raw_rule_dry_run(tmp_path) -> None:
    """``snakemake -n check_raw`` resolves the rule (stand-in data: through synth)."""
    import yaml

    cfg = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    cfg["data"]["reference_dir"] = str(ROOT / "data" / "raw" / "reference")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    bin_dir = Path(sys.executable).parent
    proc = subprocess.run([str(bin_dir / "snakemake"), "--snakefile", str(ROOT / "Snakefile"),
                           "--directory", str(tmp_path), "-n", "check_raw"], cwd=tmp_path,
                          capture_output=True, text=True,
                          env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "check_raw" in proc.stdout and "synth" in proc.stdout
