"""Administrative readers on small files in the exact contract formats (tests/admin_fixtures.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import admin_fixtures as F
import numpy as np
import pandas as pd
import pytest
import wiring

from ifm_eval import paths
from ifm_eval.frame import load_frame
from ifm_eval.ingest.case_management import aggregate_stocks, read_export
from ifm_eval.ingest.readers import IngestError, decode, read_delimited
from ifm_eval.ingest.schemas import describe_all
from ifm_eval.lineage import Lineage
from ifm_eval.sources import ADMIN_SOURCES


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("admin")
    expected = F.write_admin_fixture(root)
    return root, expected


@pytest.fixture()
def tree(base: tuple[Path, dict], tmp_path: Path) -> tuple[Path, dict, dict]:
    root, expected = base
    shutil.copytree(root / "raw", tmp_path / "raw")
    return tmp_path, F.config(tmp_path), expected


@pytest.fixture(scope="module")
def ingested(base: tuple[Path, dict]) -> dict:
    root, expected = base
    cfg = F.config(root)
    out = {}
    out.update(wiring.ingest_admin(cfg))
    return {"cfg": cfg, "out": out, "expected": expected}


def test_every_source_writes_parquet_and_lineage(ingested: dict) -> None:
    cfg = ingested["cfg"]
    for key in (
        "funding_verbaende",
        "funding_members",
        "im_posts",
        "kpi_reports",
        "refugees_au",
        "employment_ba",
        "training",
        "language_b1",
        "case_management",
    ):
        assert paths.processed_path(cfg, key).is_file(), key
    for key in ADMIN_SOURCES:
        lin = pd.read_csv(paths.lineage_path(cfg, f"ingest_{key}"))
        assert (lin["rows_in"] >= 0).all() and len(lin), key


def test_funding(ingested: dict) -> None:
    mem = ingested["out"]["funding_members"]
    verb = ingested["out"]["funding_verbaende"]
    assert list(mem["ags"]) == sorted([F.A, F.B, F.C, F.STG])  # 8115001 repaired
    assert mem["ags"].str.len().eq(8).all()
    assert verb.set_index("antrag_nr")["n_members"].to_dict() == {
        "PIK-IM-0001": 3,
        "PIK-IM-0002": 1,
    }
    assert not verb["vza_mismatch"].any()
    assert verb["bewilligt_am"].iloc[0] == pd.Timestamp("2018-01-15")
    lin = pd.read_csv(paths.lineage_path(ingested["cfg"], "ingest_funding_applications"))
    assert (lin["step"] == "AGS repair").any()


def test_posts_decimal_comma_and_dates(ingested: dict) -> None:
    p = ingested["out"]["im_posts"]
    assert len(p) == 7
    assert p["vza_post"].tolist()[:3] == [1.0, 1.0, 0.5]
    assert p.loc[p["stellen_id"] == "S00002", "ende"].iloc[0] == pd.Timestamp("2019-12-31")
    assert p["ende"].isna().sum() == 6
    assert set(p["employer_type"]) == {"Landratsamt", "Gemeinde", "Freier Träger"}  # cp1252 decoded


def test_kpi_nullable_counts(ingested: dict) -> None:
    k = ingested["out"]["kpi_reports"]
    assert str(k["integration_plans"].dtype) == "Int64"
    assert k["integration_plans"].isna().sum() == 1
    assert k["quarter_start"].min() == pd.Timestamp("2017-10-01")


def test_outcomes_masking_and_window(ingested: dict) -> None:
    st = ingested["expected"]["stocks"]
    cfg = ingested["cfg"]
    emp = ingested["out"]["employment_ba"]
    assert emp["month"].min() == pd.Timestamp(cfg["panel"]["start"] + "-01")
    assert emp["month"].max() == pd.Timestamp(cfg["panel"]["end"] + "-01")
    j = emp.merge(st, on=["ags", "month"], suffixes=("", "_true"))
    assert len(j) == len(emp)
    # bounds always contain the truth; unmasked cells are exact; '-' = 0
    assert (
        (j["employed_lo"] <= j["employed_true"]) & (j["employed_true"] <= j["employed_hi"])
    ).all()
    un = ~j["employed_masked"]
    assert (j.loc[un, "employed"] == j.loc[un, "employed_true"]).all()
    assert (j.loc[j["employed_masked"], "employed"] == 1.5).all()
    assert j["employed_true"].between(1, 2).eq(j["employed_masked"]).all()
    tr = ingested["out"]["training"].merge(st, on=["ags", "month"], suffixes=("", "_true"))
    assert (
        (tr["in_training_lo"] <= tr["in_training_true"])
        & (tr["in_training_true"] <= tr["in_training_hi"])
    ).all()
    ref = ingested["out"]["refugees_au"].merge(st, on=["ags", "month"], suffixes=("", "_true"))
    assert (ref["refugees"] == ref["refugees_true"]).all()
    b1 = ingested["out"]["language_b1"].merge(st, on=["ags", "month"], suffixes=("", "_true"))
    assert (b1["b1_holders"] == b1["b1_holders_true"]).all()
    lin = pd.read_csv(paths.lineage_path(cfg, "ingest_employment_ba"))
    assert "aggregate regions" in set(lin["step"])  # the Kreis total row, logged


@pytest.mark.parametrize("rule,point", [("lower", 1.0), ("upper", 2.0)])
def test_masked_count_rule(tree: tuple, rule: str, point: float) -> None:
    root, _, _ = tree
    cfg = F.config(root, masked_count_rule=rule)
    emp = wiring.ingest(cfg, "employment_ba")["employment_ba"]
    assert (emp.loc[emp["employed_masked"], "employed"] == point).all()


def test_case_management_reproduces_stocks(ingested: dict) -> None:
    st = ingested["expected"]["stocks"]
    cm = ingested["out"]["case_management"]
    j = st.merge(cm, on=["ags", "month"], suffixes=("_true", ""))
    assert len(j) == 30 * 4
    for c in (
        "refugees",
        "b1_holders",
        "in_ausbildung",
        "in_weiterbildung",
        "in_training",
        "employed",
    ):
        assert (j[c] == j[c + "_true"]).all(), c
    others = cm.loc[~cm["ags"].isin(st["ags"])]
    assert (others[["refugees", "employed"]] == 0).all().all()
    assert cm.groupby(["ags", "month"]).size().max() == 1
    assert len(cm) == 1101 * 30


def test_case_management_full_history_window(base: tuple[Path, dict]) -> None:
    """Aggregation over a window starting after the first events keeps earlier arrivals."""
    root, expected = base
    lin = Lineage("x")
    wiring.reference(F.config(root))
    frame = load_frame(paths.processed_path(F.config(root), "municipalities"))
    ev = read_export(root / "raw/casemanagement/fallmanagement_export.csv", set(frame["ags"]), lin)
    res = aggregate_stocks(
        ev, pd.Timestamp("2016-01-01"), pd.Timestamp("2019-12-01"), [F.STG, F.A, F.B, F.C], lin
    )
    j = expected["stocks"].merge(res, on=["ags", "month"], suffixes=("_true", ""))
    assert len(j) == 48 * 4
    assert (j["refugees"] == j["refugees_true"]).all()
    assert (j["employed"] == j["employed_true"]).all()


def test_encoding_detection(tmp_path: Path) -> None:
    lin = Lineage("t")
    p = tmp_path / "x.csv"
    text = "a;b\r\nÄrger;1\r\n"
    assert decode(p, text.encode("cp1252"), "cp1252", lin, "s") == text
    assert not lin.records
    assert decode(p, text.encode("utf-8"), "cp1252", lin, "s") == text
    assert "read as UTF-8" in lin.records[-1].reason
    assert decode(p, b"\xef\xbb\xbf" + text.encode("utf-8"), "utf-8-sig", lin, "s") == text
    assert decode(p, text.encode("cp1252"), "utf-8-sig", lin, "s") == text
    assert "read as cp1252" in lin.records[-1].reason
    with pytest.raises(IngestError, match="line 2"):
        decode(p, b"a;b\r\n\x81\x8d;1\r\n", "cp1252", lin, "s")


def test_line_numbers_skip_comments(tmp_path: Path) -> None:
    p = tmp_path / "ba.csv"
    p.write_text("# c1\n# c2\nRegion;X\n08111000;1\n08111000\n", encoding="cp1252")
    with pytest.raises(IngestError) as exc:
        read_delimited(p, sep=";", encoding="cp1252", lineage=Lineage("t"), source="s", comment="#")
    assert exc.value.line == 5


def test_schema_table_documents_every_file() -> None:
    d = describe_all()
    assert {"im_posts", "employment_ba", "funding_applications/Mitglieder"} <= set(d["source"])
    assert not d["column"].duplicated().all()
    assert np.all(
        d["kind"].isin(["text", "int", "number", "date", "month", "quarter", "ags", "masked"])
    )


def test_excel_numbers_typed_as_text(tree: tuple) -> None:
    """German Excel: '0,75' typed as text next to numeric cells (1.125 must stay 1.125)."""
    import openpyxl

    root, cfg, _ = tree
    p = root / "raw/funding/foerderantraege_im.xlsx"
    wb = openpyxl.load_workbook(p)
    ws = wb["Mitglieder"]
    ws.cell(4, 5).value = "0,75"
    ws.cell(5, 5).value = 0.125
    ws.cell(6, 5).value = 1.125
    wb["Antraege"].cell(4, 6).value = 2.0
    wb.save(p)
    out = wiring.ingest(cfg, "funding_applications")
    mem = out["funding_members"].set_index("ags")["vza_share"]
    assert mem[F.A] == 0.75 and mem[F.B] == 0.125 and mem[F.C] == 1.125
