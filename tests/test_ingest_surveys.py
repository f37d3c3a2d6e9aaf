"""Survey readers and harmonisation: round trip, missing reasons, malformed files."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyreadstat
import pytest

from ifm_eval import paths
from ifm_eval.ingest.survey_harmonise import harmonise_surveys, item_nonresponse, load_verbaende
from ifm_eval.ingest.survey_read import (
    SurveyError,
    ingest_wave,
    load_codebook,
    read_wave,
    wave_from_frame,
)
from ifm_eval.lineage import Lineage
from ifm_eval.reference import municipalities, read_gemeindeverzeichnis
from ifm_eval.sources import SURVEY_SOURCES, WAVES
from ifm_eval.synth.survey_attributes import draw_survey_attributes
from ifm_eval.synth.surveys import write_surveys

sys.path.insert(0, str(Path(__file__).parent))
from test_synth_surveys import GV, cfg_for, fake_structure  # noqa: E402

FRAME = municipalities(read_gemeindeverzeichnis(GV))


def raw_waves(cfg, codebook=None):
    """Every wave of the config's raw tree, read (what ingest_survey does per wave)."""
    return {w: read_wave(paths.raw_path(cfg, f"survey_{w}"), w, codebook) for w in WAVES}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    muni, posts = fake_structure(seed=21)
    attrs = draw_survey_attributes(muni, np.random.default_rng(22))
    cfg = cfg_for(tmp_path_factory.mktemp("ingest"))
    res = write_surveys(muni, posts, attrs, cfg, np.random.default_rng(23), paths.raw_dir(cfg))
    verb = muni.loc[muni["applied"], ["verband_id", "verband_name", "ags"]]
    harm, report, lin = harmonise_surveys(raw_waves(cfg), FRAME, verbaende=verb)
    return {
        "muni": muni,
        "attrs": attrs,
        "cfg": cfg,
        "res": res,
        "harm": harm,
        "report": report,
        "lineage": lin,
        "verb": verb,
    }


# --------------------------------------------------------------------------- reading
def test_negative_codes_become_missing_with_reason(world):
    res = world["res"]
    raw, _ = pyreadstat.read_sav(str(res["survey_w2"]), user_missing=True)
    wd = read_wave(res["survey_w2"], "w2")
    assert len(wd.frame) == len(raw)
    for var, code, why in (("v22_anz_ausb", -98, "dont_know"), ("v22_anz_ausb", -99, "refused")):
        rows = raw[var] == code
        assert rows.any()
        assert wd.frame.loc[rows, var].isna().all()
        assert (wd.frame.loc[rows, f"{var}__missing"] == why).all()
    w5 = read_wave(res["survey_w5"], "w5")
    assert (w5.frame["zg_alter__missing"] == "not_asked").any()
    w1 = read_wave(res["survey_w1"], "w1")
    assert (w1.frame["F4_sw_1__missing"] == "not_applicable").any()
    valid = raw["v22_anz_ausb"] >= 0
    assert wd.frame.loc[valid, "v22_anz_ausb__missing"].isna().all()


def test_value_labels_as_categoricals_and_mr_booleans(world):
    wd = read_wave(world["res"]["survey_w2"], "w2")
    col = wd.frame["v12_alter"]
    assert isinstance(col.dtype, pd.CategoricalDtype)
    assert "nur Erwachsene (ab 18 Jahren)" in list(col.cat.categories)
    assert str(wd.frame["v10_4"].dtype) == "boolean"
    w3 = read_wave(world["res"]["survey_w3"], "w3")
    assert "durch einen freien Träger" in list(w3.frame["q12_org"].cat.categories)
    assert set(w3.values["q12_org"].dropna()) <= {"landratsamt", "gemeinde", "traeger"}


def test_cleaned_wave_file_rebuilds_the_wave_exactly(world, tmp_path):
    """What harmonise_surveys reads (the ingest_survey Parquet) equals what read_wave gave:
    harmonised values and missing reasons, for every variable of every wave."""
    cfg = world["cfg"]
    for w in WAVES:
        lin = Lineage(f"ingest_survey_{w}")
        direct = ingest_wave(w, paths.raw_path(cfg, f"survey_{w}"), tmp_path / f"survey_{w}.parquet", lin)
        rebuilt = wave_from_frame(pd.read_parquet(tmp_path / f"survey_{w}.parquet"), w)
        pd.testing.assert_frame_equal(rebuilt.values, direct.values, check_dtype=False)
        pd.testing.assert_frame_equal(rebuilt.reasons, direct.reasons)
        assert str(rebuilt.path) == str(paths.raw_path(cfg, f"survey_{w}"))
        assert lin.frame()["action"].tolist()[0] == "read"
    assert sorted(SURVEY_SOURCES) == [f"survey_{w}" for w in WAVES]


def test_harmonised_lineage_records_every_step(world):
    lin = world["lineage"].frame()
    assert {"match", "expand", "aggregate"} <= set(lin["action"])


# --------------------------------------------------------------------------- round trip
def test_round_trip_equals_what_was_answered(world):
    """synth → files → ingest → harmonised values equal each unit's answers."""
    harm = world["harm"].set_index("ags")
    ans = world["res"]["answers"]
    hs = load_codebook()["harmonised"]
    n = 0
    n_bad = 0
    for (wave, var), g in ans.groupby(["wave", "variable"]):
        if var not in harm.columns:
            continue
        g = g.drop_duplicates("ags").set_index("ags")
        src = harm[f"{var}__wave"] if f"{var}__wave" in harm else pd.Series(wave, harm.index)
        sel = harm.index[(src == wave) & harm[var].notna()].intersection(g.index)
        got, want = harm.loc[sel, var], g.loc[sel, "value"]
        if hs[var]["type"] == "numeric":
            same = np.isclose(got.astype(float), want.astype(float))
        else:
            same = (
                got.astype(object).map(str).to_numpy()
                == want.map(
                    lambda z: str(bool(z)) if isinstance(z, (bool, np.bool_)) else str(z)
                ).to_numpy()
            )
        # a typo can be closer to another municipality's name: only fuzzy matches may differ
        fuzzy = (harm.loc[sel, f"match_{wave}"] == "fuzzy").to_numpy()
        assert same[~fuzzy].all(), (wave, var, list(sel[~fuzzy & ~same][:5]))
        n += len(sel)
        n_bad += int((~same).sum())
    assert n > 10000
    assert n_bad <= 0.01 * n


def test_round_trip_equals_drawn_attributes(world):
    harm = world["harm"].set_index("ags")
    attrs = world["attrs"].set_index("ags")
    wave_of = {"decision_maker": "w3", "doc_mode": "w1", "software": "w1"}
    for col in (
        "decision_maker",
        "min_age",
        "arrival",
        "doc_mode",
        "software",
        "ts_eu",
        "ts_ausreisepflichtig",
        "hs_vorlaeufig",
        "hs_andere",
    ):
        got = harm[col].dropna()
        got = got[got.astype(str) != "mehrere"]
        assert len(got) > 500, col
        w = harm.loc[got.index, f"{col}__wave"] if f"{col}__wave" in harm else wave_of[col]
        method = pd.Series(
            [
                harm.at[a, f"match_{ww}"]
                for a, ww in zip(
                    got.index, w if not isinstance(w, str) else [w] * len(got), strict=True
                )
            ],
            index=got.index,
        )
        same = got.astype(str) == attrs.loc[got.index, col].astype(str)
        assert same[method != "fuzzy"].all(), (col, list(got.index[~same][:5]))
        assert same.mean() >= 0.99, col


def test_district_answers_flagged_and_totals_not_copied(world):
    harm = world["harm"]
    j = harm[harm["joint_w2"]]
    assert len(j) > 50
    assert j["refugees_on_site_2018"].isna().all()
    assert (j["refugees_on_site_2018__missing"] == "verband_total").all()
    assert j["min_age"].notna().mean() > 0.9  # policies apply to every member
    assert harm["district_answer"].any()
    assert len(harm) == 1101 and harm["ags"].is_unique


def test_no_silent_row_loss_in_key_report(world):
    rep = world["report"]
    for w, n in world["res"]["rows"].items():
        assert rep.loc[rep["wave"] == w, "input_row"].nunique() == n
    bad = rep.drop_duplicates(["wave", "input_row"])
    bad = bad[bad["status"].isin(["unmatched", "ambiguous"])]
    assert len(bad) > 0
    lin = world["lineage"].frame()
    unmatched_lin = lin[lin["step"] == "key matching"].groupby("source")["n_affected"].sum()
    assert unmatched_lin.sum() == len(bad)


def test_item_nonresponse_table(world):
    t = item_nonresponse(raw_waves(world["cfg"]))
    assert {
        "wave",
        "variable",
        "n",
        "n_refused",
        "n_dont_know",
        "n_not_applicable",
        "n_not_asked",
        "n_missing",
        "share_missing",
    } <= set(t.columns)
    edu = t[t["harmonised"].isin(["in_training_2018", "b1_certificate_2019"])]
    assert (edu["share_missing"] > 0.75).all()
    assert (t["n_missing"] <= t["n"]).all()


def test_load_verbaende_from_funding_members(world):
    m = world["muni"][world["muni"]["applied"]]
    members = pd.DataFrame({"antrag_nr": m["verband_id"], "verband_id": m["verband_id"],
                            "verband_name": m["verband_name"], "ags": m["ags"]})
    v = load_verbaende(members)
    assert list(v.columns) == ["verband_id", "verband_name", "ags"] and len(v) == len(m)
    with pytest.raises(SurveyError, match="verband_name"):
        load_verbaende(members.drop(columns="verband_name"))


# --------------------------------------------------------------------------- malformed
def _rewrite(src: Path, dst: Path, modify) -> Path:
    df, meta = pyreadstat.read_sav(str(src), user_missing=True)
    df = modify(df)
    labels = {c: meta.column_names_to_labels.get(c, c) for c in df.columns}
    vl = {k: v for k, v in meta.variable_value_labels.items() if k in df.columns}
    pyreadstat.write_sav(df, str(dst), column_labels=labels, variable_value_labels=vl)
    return dst


def test_bad_truncated_sav(world, tmp_path):
    src = world["res"]["survey_w2"]
    p = tmp_path / "w2.sav"
    data = src.read_bytes()
    p.write_bytes(data[: int(len(data) * 0.6)])
    with pytest.raises(SurveyError, match=r"w2\.sav.*(truncated|cannot read)"):
        read_wave(p, "w2")


def test_bad_truncated_header(world, tmp_path):
    p = tmp_path / "w1.sav"
    p.write_bytes(world["res"]["survey_w1"].read_bytes()[:100])
    with pytest.raises(SurveyError, match=r"w1\.sav"):
        read_wave(p, "w1")


def test_bad_empty_file(tmp_path):
    p = tmp_path / "w1.sav"
    p.write_bytes(b"")
    with pytest.raises(SurveyError, match=r"w1\.sav: empty file"):
        read_wave(p, "w1")


def test_bad_missing_file(tmp_path):
    with pytest.raises(SurveyError, match="not found"):
        read_wave(tmp_path / "nope.sav", "w1")


def test_bad_wrong_file_type(world, tmp_path):
    csv = tmp_path / "w1.sav"
    csv.write_text("AGS;Gemeinde\n08111000;Stuttgart\n", encoding="utf-8")
    with pytest.raises(SurveyError, match="wrong file type.*text/CSV"):
        read_wave(csv, "w1")
    # a .sav where the codebook expects Stata (wave 3)
    with pytest.raises(SurveyError, match="wrong file type.*expected Stata.*SPSS"):
        read_wave(world["res"]["survey_w2"], "w3")


def test_bad_corrupt_body(world, tmp_path):
    data = bytearray(world["res"]["survey_w3"].read_bytes())
    data[200:600] = b"\xff" * 400
    p = tmp_path / "w3.dta"
    p.write_bytes(bytes(data))
    with pytest.raises(SurveyError, match=r"w3\.dta"):
        read_wave(p, "w3")


def test_bad_renamed_variable(world, tmp_path):
    p = _rewrite(
        world["res"]["survey_w1"],
        tmp_path / "w1.sav",
        lambda d: d.rename(columns={"F3_doku": "F3_dokumentation"}),
    )
    with pytest.raises(SurveyError, match=r"'F3_doku' \(renamed to 'F3_dokumentation'\?\)"):
        read_wave(p, "w1")


def test_renamed_variable_is_a_codebook_edit(world, tmp_path):
    p = _rewrite(
        world["res"]["survey_w1"],
        tmp_path / "w1.sav",
        lambda d: d.rename(columns={"F3_doku": "F3_dokumentation"}),
    )
    cb = load_codebook()
    v = cb["waves"]["w1"]["variables"]
    cb["waves"]["w1"]["variables"] = {
        ("F3_dokumentation" if k == "F3_doku" else k): s for k, s in v.items()
    }
    wd = read_wave(p, "w1", codebook=cb)
    assert wd.values["F3_dokumentation"].dropna().isin(["digital", "papier", "gemischt"]).all()


def test_bad_unknown_code_error_and_logged_decision(world, tmp_path, caplog):
    def plant(d):
        d.loc[4, "v12_alter"] = 7
        return d

    p = _rewrite(world["res"]["survey_w2"], tmp_path / "w2.sav", plant)
    with pytest.raises(SurveyError, match=r"w2\.sav: row 5, column 'v12_alter': unknown code 7"):
        read_wave(p, "w2")
    with caplog.at_level(logging.WARNING):
        wd = read_wave(p, "w2", on_unknown_code="missing")
    n = len(pyreadstat.read_sav(str(p))[0])
    assert len(wd.frame) == n  # no row lost
    assert wd.frame.loc[4, "v12_alter__missing"] == "unknown_code"
    assert any("unknown code 7" in d for d in wd.decisions)
    assert "unknown code 7" in caplog.text


def test_bad_unknown_negative_code(world, tmp_path):
    def plant(d):
        d.loc[2, "v20_anz_gefl"] = -5
        return d

    p = _rewrite(world["res"]["survey_w2"], tmp_path / "w2.sav", plant)
    with pytest.raises(SurveyError, match=r"row 3, column 'v20_anz_gefl': unknown code -5"):
        read_wave(p, "w2")


def test_bad_text_in_numeric_column(world, tmp_path):
    def plant(d):
        d["v20_anz_gefl"] = d["v20_anz_gefl"].astype(object)
        d.loc[6, "v20_anz_gefl"] = "ca. 40"
        d["v20_anz_gefl"] = d["v20_anz_gefl"].astype(str)
        return d

    p = _rewrite(world["res"]["survey_w2"], tmp_path / "w2.sav", plant)
    with pytest.raises(SurveyError, match=r"row 7, column 'v20_anz_gefl': text 'ca. 40'"):
        read_wave(p, "w2")


def test_bad_out_of_range_and_fractional_count(world, tmp_path):
    p = _rewrite(
        world["res"]["survey_w3"].with_suffix(".sav") if False else world["res"]["survey_w1"],
        tmp_path / "w1.sav",
        lambda d: d.assign(F2a_vza=d["F2a_vza"].where(d.index != 3, 999.0)),
    )
    with pytest.raises(SurveyError, match=r"row 4, column 'F2a_vza': value 999 outside"):
        read_wave(p, "w1")
    p = _rewrite(
        world["res"]["survey_w1"],
        tmp_path / "w1b.sav",
        lambda d: d.assign(F2_personen=d["F2_personen"].where(d.index != 1, 2.5)),
    )
    with pytest.raises(SurveyError, match=r"row 2, column 'F2_personen': count 2.5"):
        read_wave(p, "w1")


def test_bad_duplicate_id(world, tmp_path):
    p = _rewrite(
        world["res"]["survey_w1"],
        tmp_path / "w1.sav",
        lambda d: d.assign(lfdn=d["lfdn"].where(d.index != 5, 1.0)),
    )
    with pytest.raises(SurveyError, match=r"row 6, column 'lfdn': duplicate id 1"):
        read_wave(p, "w1")


def test_extra_variable_is_a_logged_decision(world, tmp_path):
    p = _rewrite(world["res"]["survey_w1"], tmp_path / "w1.sav", lambda d: d.assign(bemerkung="x"))
    wd = read_wave(p, "w1")
    assert any("bemerkung" in d for d in wd.decisions)
    assert len(wd.frame) == len(pyreadstat.read_sav(str(p))[0])


def test_key_matching_nothing_is_reported_not_dropped(world, tmp_path):
    cfg = cfg_for(tmp_path)
    src_cfg = world["cfg"]
    for key in SURVEY_SOURCES:
        dst = paths.raw_path(cfg, key)
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(paths.raw_path(src_cfg, key).read_bytes())

    def plant(d):
        d["v_01_ags"] = d["v_01_ags"].astype(object)
        d.loc[0, "v_01_ags"] = "Gemeindeverwaltung Atlantis"
        d.loc[1, "v_01_ags"] = "99999999"
        d.loc[0, "v_02_kreis"] = 0
        d.loc[1, "v_02_kreis"] = 0
        return d

    _rewrite(paths.raw_path(src_cfg, "survey_w2"), paths.raw_path(cfg, "survey_w2"), plant)
    harm, rep, lin = harmonise_surveys(raw_waves(cfg), FRAME, verbaende=world["verb"])
    r = rep[(rep["wave"] == "w2") & rep["input_row"].isin([0, 1])]
    assert set(r["status"]) == {"unmatched"}
    assert set(r["input"]) == {"Gemeindeverwaltung Atlantis", "99999999"}


def test_unknown_wave_and_bad_codebook(tmp_path):
    with pytest.raises(SurveyError, match="unknown wave"):
        read_wave(tmp_path / "x.sav", "w9")
    bad = tmp_path / "cb.yaml"
    bad.write_text(
        "missing_codes: {}\nharmonised: {}\nwaves:\n  w1:\n    raw: nope\n"
        "    format: sav\n    unit: municipality\n    key: k\n    variables: {}\n"
    )
    with pytest.raises(SurveyError, match="is not a survey source"):
        load_codebook(bad)


def test_survey_measured_marginals_near_published(world):
    """What an analyst computes from the harmonised survey data (answering municipalities,
    after unit/item non-response and district answers) lands near the short report."""
    h = world["harm"]
    published = {
        ("ts_ausreisepflichtig", True): 44,
        ("ts_drittstaat", True): 12,
        ("ts_eu", True): 6,
        ("hs_privat", True): 95,
        ("hs_oeffentlich", True): 93,
        ("hs_gu_au", True): 77,
        ("hs_vorlaeufig", True): 22,
        ("hs_andere", True): 13,
        ("min_age", "ab18"): 49,
        ("min_age", "unter14"): 18,
        ("arrival", "keine"): 68,
        ("arrival", "ab2015"): 24,
        ("arrival", "ab2014"): 6,
        ("doc_mode", "digital"): 47,
        ("doc_mode", "papier"): 16,
        ("doc_mode", "gemischt"): 37,
        ("decision_maker", "im"): 31,
        ("plan_use_band", "80to100"): 31,
        ("plan_use_band", "20to80"): 46,
        ("plan_use_band", "lt20"): 23,
    }
    for (col, val), target in published.items():
        s = h[col].dropna()
        got = 100 * (s.astype(object) == val).mean()
        assert abs(got - target) <= 6.0, (col, val, round(got, 1), target)
    assert 100 * (h["decision_maker"].dropna() == "municipal_staff").mean() < 10


def test_without_funding_data_kreis_keys_expand_to_whole_kreis(world, tmp_path):
    cfg = cfg_for(tmp_path)
    for key in SURVEY_SOURCES:
        dst = paths.raw_path(cfg, key)
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(paths.raw_path(world["cfg"], key).read_bytes())
    harm, rep, lin = harmonise_surveys(raw_waves(cfg), FRAME, verbaende=None)
    assert lin.frame()["reason"].str.contains("no funding data found").any()
    assert rep["method"].isin(["kreis_key"]).any()
    assert len(harm) == 1101
