"""Malformed inputs: each gives a clear error naming file/line/column, or a logged lineage
decision with every row accounted for (never a silent loss of rows).

The corpus is generated from the contract-format fixture (tests/admin_fixtures.py) by one
mutation per case; a few static files live in tests/fixtures/bad_input/.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import admin_fixtures as F
import openpyxl
import pandas as pd
import pytest
import wiring

from ifm_eval import paths
from ifm_eval.ingest.readers import IngestError

STATIC = Path(__file__).parent / "fixtures" / "bad_input"

POSTS = "funding/im_stellen.csv"
FUND = "funding/foerderantraege_im.xlsx"
KPI = "funding/kennzahlen_quartal.xlsx"
REF = "outcomes/gefluechtete_au_monat.csv"
BA = "outcomes/ba_beschaeftigte_asylherkunft.csv"
TRAIN = "outcomes/ausbildung_weiterbildung.csv"
B1 = "outcomes/sprachzertifikate_b1.csv"
CASE = "casemanagement/fallmanagement_export.csv"


def _edit_text(
    rel: str, enc: str, fn: Callable[[list[str]], list[str]], out_enc: str | None = None
):
    def mutate(raw: Path) -> None:
        p = raw / rel
        lines = p.read_bytes().decode(enc).split("\n")
        p.write_bytes("\n".join(fn(lines)).encode(out_enc or enc))

    return mutate


def _set_field(rel: str, enc: str, line: int, col: int, value: str, sep: str = ";"):
    def fn(lines: list[str]) -> list[str]:
        parts = lines[line - 1].rstrip("\r").split(sep)
        parts[col] = value
        lines[line - 1] = sep.join(parts) + ("\r" if lines[line - 1].endswith("\r") else "")
        return lines

    return _edit_text(rel, enc, fn)


def _edit_sheet(
    sheet: str, fn: Callable[[openpyxl.worksheet.worksheet.Worksheet], None], rel: str = FUND
):
    def mutate(raw: Path) -> None:
        wb = openpyxl.load_workbook(raw / rel)
        fn(wb[sheet])
        wb.save(raw / rel)

    return mutate


def _replace_bytes(rel: str, data: bytes):
    def mutate(raw: Path) -> None:
        (raw / rel).write_bytes(data)

    return mutate


def _copy_static(name: str, rel: str):
    def mutate(raw: Path) -> None:
        shutil.copy(STATIC / name, raw / rel)

    return mutate


def _truncate(rel: str, keep: float):
    def mutate(raw: Path) -> None:
        b = (raw / rel).read_bytes()
        cut = int(len(b) * keep)
        while b[cut - 1 : cut] in (b"\n", b"\r", b";"):  # cut inside a field
            cut -= 1
        (raw / rel).write_bytes(b[:cut])

    return mutate


@dataclass
class Case:
    id: str
    source: str
    mutate: Callable[[Path], None]
    error: str | None = None  # regex the error message must match
    line: int | None = None  # expected line/row in the error (None = not checked)
    column: str | None = None  # expected column in the error
    decision: str | None = None  # lineage step that must record the decision


def _members_row(r: int, values: list) -> Callable[[Path], None]:
    def fn(ws) -> None:
        for j, v in enumerate(values):
            ws.cell(r, j + 1).value = v

    return _edit_sheet("Mitglieder", fn)


CASES = [
    # --- encoding, file-level damage
    Case(
        "wrong_encoding_utf8_posts",
        "im_posts",
        _edit_text(POSTS, "cp1252", lambda ls: ls, out_enc="utf-8"),
        decision="encoding",
    ),
    Case(
        "wrong_encoding_cp1252_b1",
        "language_b1",
        _edit_text(
            B1,
            "utf-8",
            lambda ls: [ls[0], ls[1].replace("Stuttgart", "Stüttgart"), *ls[2:]],
            out_enc="cp1252",
        ),
        decision="encoding",
    ),
    Case(
        "undecodable_bytes",
        "im_posts",
        _copy_static("undecodable.csv", POSTS),
        error="neither UTF-8 nor cp1252",
        line=3,
    ),
    Case(
        "utf16_file",
        "refugees_au",
        _edit_text(REF, "utf-8-sig", lambda ls: ls, out_enc="utf-16"),
        error="NUL bytes",
    ),
    Case("truncated_csv", "im_posts", _truncate(POSTS, 0.6), error="fields .*truncated"),
    Case(
        "truncated_xlsx", "funding_applications", _truncate(FUND, 0.5), error="not a readable .xlsx"
    ),
    Case("empty_file", "refugees_au", _replace_bytes(REF, b""), error="file is empty"),
    Case(
        "header_only_case_export",
        "case_management",
        _replace_bytes(
            CASE, b"Pseudonym;AGS;Geburtsjahr;Geschlecht;Herkunftsland;Datum;Bereich;Status\n"
        ),
        error="no data rows",
    ),
    Case(
        "wrong_separator",
        "im_posts",
        _edit_text(POSTS, "cp1252", lambda ls: [ln.replace(";", ",") for ln in ls]),
        error="wrong separator",
        line=1,
    ),
    Case(
        "blank_lines_inside",
        "refugees_au",
        _edit_text(REF, "utf-8-sig", lambda ls: [*ls[:5], "\r", *ls[5:]]),
        decision="blank lines",
    ),
    # --- columns
    Case(
        "missing_column",
        "im_posts",
        _edit_text(
            POSTS,
            "cp1252",
            lambda ls: [";".join(p for i, p in enumerate(ln.split(";")) if i != 6) for ln in ls],
        ),
        error="missing column.*'Beginn'",
    ),
    Case(
        "renamed_column",
        "employment_ba",
        _edit_text(
            BA,
            "cp1252",
            lambda ls: [ln.replace("SvB Asylherkunftsländer", "SvB Asylherkunft") for ln in ls],
        ),
        error="renamed to 'SvB Asylherkunft'",
    ),
    Case(
        "column_case_whitespace",
        "language_b1",
        _edit_text(B1, "utf-8", lambda ls: [" AGS,Gemeinde,Monat,B1_Bestand", *ls[1:]]),
        decision="column names",
    ),
    Case(
        "missing_column_case_export",
        "case_management",
        _edit_text(CASE, "utf-8", lambda ls: [ln.rsplit(";", 1)[0] if ln else ln for ln in ls]),
        error="missing column.*'Status'",
        line=1,
    ),
    Case(
        "header_row_moved",
        "funding_applications",
        _edit_sheet("Antraege", lambda ws: ws.insert_rows(2)),
        decision="header row",
    ),
    # --- keys
    Case(
        "duplicate_ags_members",
        "funding_applications",
        _members_row(7, ["PIK-IM-0002", "08115001", "Aidlingen", 40, 0.75]),
        error="duplicate key",
        column="AGS",
    ),
    Case(
        "unknown_ags_members",
        "funding_applications",
        _members_row(5, ["PIK-IM-0001", "09162000", "München", 40, 0.75]),
        error="not in the reference frame",
        line=5,
        column="AGS",
    ),
    Case(
        "unknown_ags_outcome",
        "refugees_au",
        _set_field(REF, "utf-8-sig", 3, 0, "08999999"),
        decision="unknown AGS",
    ),
    Case(
        "name_instead_of_ags",
        "funding_applications",
        _members_row(5, ["PIK-IM-0001", "Altdorf (Kreis Böblingen)", "Altdorf", 20, 0.25]),
        error="not an 8-digit AGS",
        line=5,
        column="AGS",
    ),  # 'Altdorf' exists twice in BW
    Case(
        "unique_name_instead_of_ags",
        "funding_applications",
        _members_row(4, ["PIK-IM-0001", "Aidlingen", "Aidlingen", 40, 0.75]),
        decision="AGS key matching",
    ),
    Case(
        "malformed_ags",
        "im_posts",
        _set_field(POSTS, "cp1252", 2, 2, "81150"),
        error="not an 8-digit AGS",
        line=2,
        column="AGS",
    ),
    Case(
        "member_unknown_verband",
        "funding_applications",
        _members_row(5, ["PIK-IM-0099", "08115002", "Altdorf", 20, 0.25]),
        error="not in sheet Antraege",
        line=5,
        column="Antrags-Nr.",
    ),
    Case(
        "duplicate_post_id",
        "im_posts",
        _edit_text(POSTS, "cp1252", lambda ls: [*ls[:3], ls[2], *ls[3:]]),
        error="duplicate key",
        column="Stellen-ID, AGS",
    ),
    Case(
        "duplicate_month_outcome",
        "language_b1",
        _edit_text(B1, "utf-8", lambda ls: [*ls[:3], ls[2], *ls[3:]]),
        error="duplicate key",
        line=3,
    ),
    Case(
        "verband_without_members",
        "funding_applications",
        _edit_sheet(
            "Antraege",
            lambda ws: ws.append(
                [
                    "PIK-IM-0003",
                    "Weil im Schönbuch",
                    "Gemeinde Weil",
                    "Gemeinde",
                    "Böblingen",
                    0.5,
                    30000,
                    "01.02.2018",
                ]
            ),
        ),
        decision="Verband without members",
    ),
    Case(
        "vza_members_do_not_add_up",
        "funding_applications",
        _edit_sheet("Antraege", lambda ws: setattr(ws.cell(4, 6), "value", 3.0)),
        decision="VZÄ shares",
    ),
    # --- values
    Case(
        "dates_out_of_range",
        "im_posts",
        _set_field(POSTS, "cp1252", 4, 6, "15.03.1918"),
        error="out of range",
        line=4,
        column="Beginn",
    ),
    Case(
        "not_a_date",
        "im_posts",
        _set_field(POSTS, "cp1252", 4, 6, "2018-15-03"),
        error="not a date",
        line=4,
        column="Beginn",
    ),
    Case(
        "negative_vza",
        "funding_applications",
        _edit_sheet("Antraege", lambda ws: setattr(ws.cell(5, 6), "value", -1.5)),
        error="must be >= 0",
        line=5,
        column="Bewilligte VZÄ",
    ),
    Case(
        "post_vza_zero",
        "im_posts",
        _set_field(POSTS, "cp1252", 6, 8, "0"),
        error="must be > 0",
        line=6,
        column="VZÄ Stelle",
    ),
    Case(
        "start_after_end",
        "im_posts",
        _set_field(POSTS, "cp1252", 4, 7, "01.01.2018"),
        error="before 'Beginn'",
        line=4,
        column="Ende",
    ),
    Case(
        "text_in_numeric",
        "refugees_au",
        _set_field(REF, "utf-8-sig", 10, 3, "zwölf"),
        error="not a number",
        line=10,
        column="Geflüchtete AU",
    ),
    Case(
        "fraction_in_count",
        "refugees_au",
        _set_field(REF, "utf-8-sig", 10, 3, "12,5"),
        error="not a number|not a whole number",
        line=10,
        column="Geflüchtete AU",
    ),
    Case(
        "unknown_mask_code",
        "employment_ba",
        _set_field(BA, "cp1252", 9, 3, "x"),
        error="not a count, '\\*'",
        line=9,
        column="SvB Asylherkunftsländer",
    ),
    Case(
        "unknown_code_employer",
        "im_posts",
        _set_field(POSTS, "cp1252", 3, 4, "Kirche"),
        error="not an allowed code",
        line=3,
        column="Anstellungsträger",
    ),
    Case(
        "share_sum_not_one", "im_posts", _set_field(POSTS, "cp1252", 2, 9, "0,3"), decision="shares"
    ),
    Case(
        "post_attributes_disagree",
        "im_posts",
        _set_field(POSTS, "cp1252", 3, 6, "01.10.2017"),
        error="different values of 'Beginn'",
        column="Beginn",
    ),
    Case(
        "month_out_of_panel",
        "refugees_au",
        _set_field(REF, "utf-8-sig", 2, 2, "2016-01"),
        decision="panel window",
    ),
    Case(
        "month_out_of_range",
        "language_b1",
        _set_field(B1, "utf-8", 2, 2, "1899-01", sep=","),
        error="out of range",
        line=2,
        column="monat",
    ),
    Case(
        "bad_month",
        "training",
        _set_field(TRAIN, "cp1252", 8, 2, "2018-13"),
        error="not a month",
        line=8,
        column="Berichtsmonat",
    ),
    Case(
        "bad_quarter",
        "kpi_reports",
        _edit_sheet("Kennzahlen", lambda ws: setattr(ws.cell(3, 3), "value", "2018/1"), KPI),
        error="not a quarter",
        line=3,
        column="Quartal",
    ),
    Case(
        "missing_required_value",
        "kpi_reports",
        _edit_sheet("Kennzahlen", lambda ws: setattr(ws.cell(2, 1), "value", None), KPI),
        error="empty value",
        line=2,
        column="AGS",
    ),
    Case(
        "case_unknown_status",
        "case_management",
        _edit_text(CASE, "utf-8", lambda ls: [ls[0], ls[1].rsplit(";", 1)[0] + ";Umzug", *ls[2:]]),
        error="Status not allowed",
        line=2,
        column="Status",
    ),
    Case(
        "case_bad_date",
        "case_management",
        _edit_text(
            CASE,
            "utf-8",
            lambda ls: [
                ls[0],
                *ls[1:4],
                ";".join(p if i != 5 else "31.02.2018" for i, p in enumerate(ls[4].split(";"))),
                *ls[5:],
            ],
        ),
        error="not a date",
        line=5,
        column="Datum",
    ),
    Case(
        "case_bad_birth_year",
        "case_management",
        _edit_text(
            CASE,
            "utf-8",
            lambda ls: [
                ls[0],
                *ls[1:6],
                ";".join(p if i != 2 else "19x5" for i, p in enumerate(ls[6].split(";"))),
                *ls[7:],
            ],
        ),
        error="not a birth year",
        line=7,
        column="Geburtsjahr",
    ),
    Case(
        "case_unknown_ags",
        "case_management",
        _edit_text(
            CASE,
            "utf-8",
            lambda ls: [
                ls[0],
                ";".join(p if i != 1 else "08999999" for i, p in enumerate(ls[1].split(";"))),
                *ls[2:],
            ],
        ),
        decision="unknown AGS",
    ),
    Case(
        "not_an_xlsx",
        "kpi_reports",
        _replace_bytes(KPI, b"AGS;Gemeinde\n08111000;Stuttgart\n"),
        error="not a readable .xlsx",
    ),
    Case(
        "missing_sheet",
        "funding_applications",
        lambda raw: (
            lambda wb: (setattr(wb["Mitglieder"], "title", "Members"), wb.save(raw / FUND))
        )(openpyxl.load_workbook(raw / FUND)),
        error="sheet 'Mitglieder' not found",
    ),
    Case("missing_file", "training", lambda raw: (raw / TRAIN).unlink(), error="file not found"),
    # --- real-delivery conventions (tests/test_real_deliveries.py runs them to the panel)
    Case(
        "cut_inside_last_field",
        "refugees_au",
        lambda raw: (raw / REF).write_bytes((raw / REF).read_bytes().rstrip(b"\r\n")[:-1]),
        error="without a line break: the file was cut inside line 193",
        line=193,
    ),
    Case(
        "trailing_separator_on_data_lines",
        "refugees_au",
        _edit_text(REF, "utf-8-sig", lambda ls: [ls[0], *[ln.replace("\r", ";\r") for ln in ls[1:]]]),
        decision="trailing separator",
    ),
    Case(
        "decimal_point_not_comma",
        "im_posts",
        _edit_text(POSTS, "cp1252", lambda ls: [ln.replace(",", ".") for ln in ls]),
        decision="decimal mark",
    ),
    Case(
        "mixed_decimal_marks",
        "im_posts",
        _set_field(POSTS, "cp1252", 4, 8, "0.5"),
        error="mixed decimal conventions",
        line=4,
        column="VZÄ Stelle",
    ),
    Case(
        "kreis_total_in_denominator",
        "refugees_au",
        _edit_text(REF, "utf-8-sig", lambda ls: [ls[0], "08115;Böblingen, Landkreis;2018-01;1.234\r", *ls[1:]]),
        decision="aggregate regions",
    ),
    Case(
        "not_reported_marker",
        "language_b1",
        _set_field(B1, "utf-8", 3, 3, "k.A.", sep=","),
        decision="not reported",
    ),
    Case(
        "umlaut_as_ue_in_header",
        "refugees_au",
        _edit_text(REF, "utf-8-sig", lambda ls: [ls[0].replace("ü", "ue"), *ls[1:]]),
        decision="column names",
    ),
    Case(
        "month_as_date",
        "training",
        _set_field(TRAIN, "cp1252", 8, 2, "29.02.2016"),  # line 8 is 2016-02: month end
        decision="months as dates",
    ),
    Case(
        "month_as_mid_month_date",
        "training",
        _set_field(TRAIN, "cp1252", 8, 2, "15.02.2016"),
        error="not the first or last day",
        line=8,
        column="Berichtsmonat",
    ),
    Case(
        "totals_row_under_sheet",
        "kpi_reports",
        _edit_sheet("Kennzahlen", lambda ws: ws.append(["Summe", None, None, 313, 127]), KPI),
        decision="totals rows",
    ),
]


def test_corpus_size() -> None:
    assert len(CASES) >= 15
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bad_base")
    F.write_admin_fixture(root)
    return root


def _data_rows(cfg: dict, source: str) -> int:
    """Data rows of the (mutated) file as a person would count them."""
    p = paths.raw_path(cfg, source)
    if p.suffix == ".xlsx":
        return 0
    lines = p.read_bytes().decode("utf-8", errors="replace").split("\n")
    while lines and not lines[-1].strip():
        lines.pop()  # final newline
    lines = [ln for ln in lines if not ln.lstrip().startswith("#")]
    return len(lines) - 1  # header; blank lines inside count (the reader logs them)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, pristine: Path, tmp_path: Path) -> None:
    shutil.copytree(pristine / "raw", tmp_path / "raw")
    case.mutate(tmp_path / "raw")
    cfg = F.config(tmp_path)
    if case.error is not None:
        with pytest.raises(IngestError, match=case.error) as exc:
            wiring.ingest(cfg, case.source)
        err = exc.value
        assert Path(paths.RAW_FILES[case.source]).name in str(err)  # names the file
        if case.line is not None:
            assert err.line == case.line, str(err)
        if case.column is not None:
            assert err.column == case.column, str(err)
        return
    out = wiring.ingest(cfg, case.source)
    lin = pd.read_csv(paths.lineage_path(cfg, f"ingest_{case.source}"))
    assert case.decision in set(lin["step"]), lin
    rec = lin.loc[lin["step"] == case.decision].iloc[0]
    assert rec["reason"] and rec["n_affected"] >= 0
    # every row accounted for: rows read - rows dropped (logged) = rows written
    if case.source in ("refugees_au", "employment_ba", "training", "language_b1", "im_posts"):
        n_in = _data_rows(cfg, case.source)
        dropped = lin.loc[lin["action"] == "drop", ["rows_in", "rows_out"]]
        n_drop = int((dropped["rows_in"] - dropped["rows_out"]).sum())
        n_out = len(next(iter(out.values())))
        assert n_in - n_drop == n_out, (n_in, n_drop, n_out)
