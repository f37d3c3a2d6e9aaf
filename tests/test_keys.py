"""Key repair: every method of ``match_keys`` incl. ambiguous and unmatched."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest

from ifm_eval.ingest.keys import OUTPUT_COLUMNS, match_keys, normalise_name, summary
from ifm_eval.reference import municipalities, read_gemeindeverzeichnis

GV = (
    Path(__file__).resolve().parents[1] / "data" / "raw" / "reference" / "destatis_gv_auszug_bw.csv"
)


@pytest.fixture(scope="module")
def frame():
    return municipalities(read_gemeindeverzeichnis(GV))


def one(frame, typed, **kw):
    r = match_keys(pd.Series([typed], dtype=object), frame, **kw)
    return r


@pytest.mark.parametrize(
    "typed, method, ags",
    [
        ("08111000", "exact", "08111000"),
        (" 08115003 ", "exact", "08115003"),
        ("08 115 003", "exact", "08115003"),
        ("8115003", "zero_padded", "08115003"),
        (8115003, "zero_padded", "08115003"),
        (8115003.0, "zero_padded", "08115003"),
        ("8115003.0", "zero_padded", "08115003"),
        ("Stuttgart, Landeshauptstadt", "name", "08111000"),
        ("Stuttgart", "name", "08111000"),
        ("Stadt Böblingen", "name", "08115003"),
        ("BOEBLINGEN", "name", "08115003"),
        ("Gemeinde Altdorf", "ambiguous", None),
        ("Wernau", "name", "08116072"),  # "Wernau (Neckar), Stadt"
        ("Sankt Leon-Rot", "name", "08226103"),
        ("Boeblngen", "fuzzy", "08115003"),
        ("Sindelfngen", "fuzzy", "08115045"),
        # swap in "Herbertingen": closer by ratio to "Herbrechtingen", but one OSA edit
        ("Herbretingen", "fuzzy", "08437044"),
        ("Herbrechtigen", "fuzzy", "08135020"),
        ("k.A.", "unmatched", None),
        ("", "unmatched", None),
        (None, "unmatched", None),
        ("12345678", "unmatched", None),
        ("Atlantis", "unmatched", None),
    ],
)
def test_single_methods(frame, typed, method, ags):
    r = one(frame, typed)
    assert list(r.columns) == OUTPUT_COLUMNS
    assert len(r) == 1
    assert r.loc[0, "method"] == method, r.to_dict("records")
    assert (r.loc[0, "ags"] if r.loc[0, "ags"] is not None else None) == ags
    if method in ("unmatched", "ambiguous"):
        assert r.loc[0, "status"] == method and r.loc[0, "n_members"] == 0


def test_ambiguous_lists_candidates_and_within_breaks_tie(frame):
    r = one(frame, "Altdorf")
    assert r.loc[0, "method"] == "ambiguous"
    cands = set(r.loc[0, "candidates"].split("|"))
    assert cands == set(frame.loc[frame["name"] == "Altdorf", "ags"])
    r = match_keys(pd.Series(["Altdorf"]), frame, within=pd.Series(["08115"]))
    assert r.loc[0, "method"] == "name" and r.loc[0, "ags"] == "08115002"


def test_fuzzy_tie_is_ambiguous(frame):
    # one edit away from both "Altheim" municipalities (same name in two Kreise)
    r = one(frame, "Altheimm")
    assert r.loc[0, "method"] == "ambiguous"


def test_fuzzy_threshold(frame):
    assert one(frame, "Boeblngen", threshold=99).loc[0, "method"] == "unmatched"


def test_kreis_key_expands(frame):
    n = int((frame["kreis"] == "08115").sum())
    for typed in ("08115", "8115", "Landkreis Böblingen", "Landratsamt Böblingen", "LRA Böblingen"):
        r = one(frame, typed)
        assert (r["method"] == "kreis_key").all(), typed
        assert len(r) == n and r["expanded"].all() and (r["n_members"] == n).all()
        assert (r["input_row"] == 0).all() and r["ags"].str.startswith("08115").all()
    # Landkreis vs Stadtkreis of the same name
    assert one(frame, "Landkreis Heilbronn")["ags"].str.startswith("08125").all()
    r = one(frame, "Stadtkreis Heilbronn")
    assert list(r["ags"]) == ["08121000"]
    assert one(frame, "Rems-Murr-Kreis")["ags"].str.startswith("08119").all()


def test_verband_expands(frame):
    verb = pd.DataFrame(
        {
            "verband_id": ["PIK-IM-0007"] * 3,
            "verband_name": ["Landkreis Tübingen Nord"] * 3,
            "ags": ["08416006", "08416009", "08416011"],
        }
    )
    for typed in ("PIK-IM-0007", "pik-im-7", "Landkreis Tübingen Nord"):
        r = match_keys(pd.Series([typed]), frame, verbaende=verb)
        assert (r["method"] == "verband").all(), typed
        assert list(r["ags"]) == ["08416006", "08416009", "08416011"]
        assert r["expanded"].all() and (r["status"] == "expanded").all()
    # Gemeindeverwaltungsverband of the frame
    r = one(frame, "GVV Holzgerlingen")
    assert (r["method"] == "verband").all() and len(r) >= 2
    # unknown Verband id
    assert one(frame, "PIK-IM-9999").loc[0, "method"] == "unmatched"


def test_rows_preserved_and_input_row_index(frame):
    typed = pd.Series(["08111000", "xx", "08115", "Stuttgart", None], index=[10, 11, 12, 13, 14])
    r = match_keys(typed, frame)
    assert set(r["input_row"]) == {0, 1, 2, 3, 4}
    first = r.drop_duplicates("input_row")
    assert list(first["method"]) == ["exact", "unmatched", "kreis_key", "name", "unmatched"]
    s = summary(r)
    assert s["n_inputs"].sum() == 5


def test_normalise_name():
    assert normalise_name("Stuttgart, Landeshauptstadt") == "stuttgart"
    assert normalise_name("Tübingen, Universitätsstadt") == "tuebingen"
    assert normalise_name("Stadt Böblingen") == "boeblingen"
    assert normalise_name("Gemeinde Weißach") == "weissach"
    assert normalise_name("St. Leon-Rot") == "st leon rot"


def test_fast(frame):
    typed = pd.Series(
        ["08111000", "8115003", "Stadt Böblingen", "Boeblngen", "08115", "k.A."] * 5000
    )
    t0 = time.perf_counter()
    r = match_keys(typed, frame)
    assert time.perf_counter() - t0 < 5.0
    assert r["input_row"].nunique() == len(typed)
