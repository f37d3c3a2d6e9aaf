"""The real Destatis municipality frame parses to the published totals."""

from pathlib import Path

import pandas as pd
import pytest

from ifm_eval.reference import municipalities, read_gemeindeverzeichnis, summary

GV = Path(__file__).resolve().parents[1] / "data/raw/reference/destatis_gv_auszug_bw.csv"


@pytest.fixture(scope="module")
def frame():
    return read_gemeindeverzeichnis(GV)


def test_totals(frame):
    assert summary(frame) == {
        "municipalities": 1101,
        "unincorporated_areas": 2,
        "kreise": 44,
        "regierungsbezirke": 4,
        "population": 11_100_394,
    }


def test_keys_and_values(frame):
    assert frame["ags"].str.fullmatch(r"08\d{6}").all()
    assert frame["ags"].is_unique
    stuttgart = frame.set_index("ags").loc["08111000"]
    assert stuttgart["population"] == 635_911  # " 635 911" in the file
    assert stuttgart["kreis"] == "08111"
    assert stuttgart["kreis_type"] == "Stadtkreis"
    assert stuttgart["lon"] == pytest.approx(9.177734)  # decimal comma
    assert stuttgart["urbanisation"] == 1
    m = municipalities(frame)
    assert (m["population"] > 0).all()
    assert m["lat"].between(47.5, 49.8).all() and m["lon"].between(7.5, 10.5).all()
    assert frame.loc[frame["unincorporated"], "population"].eq(0).all()
    # every Kreis has a name, every municipality a Gemeindeverband
    assert m["kreis_name"].notna().all() and m["gemeindeverband_name"].notna().all()


def test_geojson_matches_frame(frame):
    import json

    geo = json.loads((GV.parent / "vg5000_bw_gemeinden_2021.geojson").read_text(encoding="utf-8"))
    ags = {f["properties"]["AGS"] for f in geo["features"]}
    assert set(frame["ags"]) <= ags


def test_bad_number_names_line_and_column(tmp_path):
    text = GV.read_text(encoding="utf-8").splitlines()
    idx = next(i for i, line in enumerate(text) if line.startswith("60,62,08,1,11"))
    text[idx] = text[idx].replace(" 635 911", " 63x 911")
    bad = tmp_path / "gv.csv"
    bad.write_text("\n".join(text), encoding="utf-8")
    with pytest.raises(ValueError, match=rf"line {idx + 1}, column 'bevoelkerung'"):
        read_gemeindeverzeichnis(bad)


def test_missing_column(tmp_path):
    df = pd.read_csv(GV, dtype=str).drop(columns=["bevoelkerung"])
    bad = tmp_path / "gv.csv"
    df.to_csv(bad, index=False)
    with pytest.raises(ValueError, match="missing column"):
        read_gemeindeverzeichnis(bad)
