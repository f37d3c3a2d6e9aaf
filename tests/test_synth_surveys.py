"""Stand-in survey waves: calibration of the survey attributes, readable files, determinism.

Uses a small fake ``muni``/``posts`` structure built from the real reference frame (the
structure generator is developed separately); :func:`fake_structure` is also imported by
``test_ingest_surveys.py``.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pyreadstat
import pytest

from ifm_eval import paths
from ifm_eval.reference import municipalities, read_gemeindeverzeichnis
from ifm_eval.sources import SURVEY_SOURCES
from ifm_eval.synth.survey_attributes import TARGETS, draw_survey_attributes, marginals
from ifm_eval.synth.surveys import fix_timestamp, write_surveys

ROOT = Path(__file__).resolve().parents[1]
GV = ROOT / "data" / "raw" / "reference" / "destatis_gv_auszug_bw.csv"

#: tolerance (percentage points) for the published survey marginals on the full frame
TOL_PP = 5.0


def fake_structure(seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A minimal stand-in for ``synth.structure.build_structure`` on the real frame."""
    rng = np.random.default_rng(seed)
    m = municipalities(read_gemeindeverzeichnis(GV))
    m = m[["ags", "name", "kreis", "kreis_name", "kreis_type", "population", "urbanisation"]].copy()
    m["applied"] = True
    m.loc[m.nsmallest(23, "population").index, "applied"] = False
    m["refugees_20170915"] = np.round(m["population"] * rng.uniform(0.006, 0.014, len(m)))
    m.loc[~m["applied"], "refugees_20170915"] = 0
    m["refugees_20171109"] = m["refugees_20170915"]
    alone = (
        m["kreis_type"].eq("Stadtkreis") | (m["population"] > 30000) | (rng.random(len(m)) < 0.3)
    )
    kreis_ids = {k: i + 1 for i, k in enumerate(sorted(m["kreis"].unique()))}
    vid, vname, atype, org = [], [], [], []
    next_id = 100
    for _, r in m.iterrows():
        kname = r["kreis_name"].split(",")[0]
        if not r["applied"]:
            vid.append(None), vname.append(None), atype.append(None), org.append(None)
        elif alone[_]:
            next_id += 1
            vid.append(f"PIK-IM-{next_id:04d}")
            vname.append(r["name"].split(",")[0])
            atype.append("Stadtkreis" if r["kreis_type"] == "Stadtkreis" else "Gemeinde")
            org.append("gemeinde" if rng.random() < 0.5 else "traeger")
        else:
            vid.append(f"PIK-IM-{kreis_ids[r['kreis']]:04d}")
            vname.append(f"Landkreis {kname}")
            atype.append("Landratsamt")
            org.append("landratsamt")
    m["verband_id"], m["verband_name"] = vid, vname
    m["applicant_type"], m["organisation"] = atype, org
    m["traeger_name"] = np.where(m["organisation"].eq("traeger"), "Caritasverband e.V.", None)
    m["funded_vza"] = np.round(m["refugees_20170915"] / 110.0, 2)
    before = np.where(rng.random(len(m)) < 0.35, 0.0, np.round(rng.gamma(1.2, 0.3, len(m)), 2))
    m["capacity_before_vza"] = np.where(m["applied"], before, np.nan)
    m["capacity_after_vza"] = np.round(
        m["capacity_before_vza"] + m["funded_vza"] * rng.uniform(0.3, 1.3, len(m)), 2
    )
    m["n_posts"] = np.where(m["applied"], np.maximum(1, np.ceil(m["funded_vza"])), 0)
    m["start_month"] = pd.PeriodIndex(
        [pd.Period("2018-01", "M") + int(k) for k in rng.integers(-8, 8, len(m))], freq="M"
    )
    m["plan_use_band"] = np.where(
        m["applied"], rng.choice(["lt20", "20to80", "80to100"], len(m), p=[0.23, 0.46, 0.31]), None
    )
    posts = []
    pid = 0
    for _, r in m[m["applied"]].iterrows():
        for _k in range(int(r["n_posts"])):
            pid += 1
            start = r["start_month"].to_timestamp() - pd.Timedelta(days=int(rng.integers(0, 40)))
            posts.append(
                {
                    "post_id": f"S{pid:05d}",
                    "verband_id": r["verband_id"],
                    "ags": r["ags"],
                    "employer": {
                        "landratsamt": "Landratsamt",
                        "gemeinde": "Gemeinde",
                        "traeger": "Freier Träger",
                    }[r["organisation"]],
                    "traeger_name": r["traeger_name"],
                    "start": start,
                    "end": pd.NaT,
                    "vza_post": float(min(1.0, max(0.2, r["funded_vza"] / r["n_posts"]))),
                    "share": 1.0,
                }
            )
    return m.reset_index(drop=True), pd.DataFrame(posts)


def cfg_for(tmp: Path) -> dict:
    return {
        "seed": 1,
        "data": {
            "source": "synthetic",
            "raw_dir": str(tmp / "raw"),
            "synthetic_dir": str(tmp / "synthetic"),
            "reference_dir": str(GV.parent),
            "processed_dir": str(tmp / "processed"),
            "results_dir": str(tmp / "results"),
        },
        "panel": {"fuzzy_match_threshold": 90},
        "synth": {"unit_nonresponse": 0.15, "item_nonresponse_education": 0.85},
    }


@pytest.fixture(scope="module")
def structure():
    return fake_structure()


@pytest.fixture(scope="module")
def attrs(structure):
    muni, _ = structure
    return draw_survey_attributes(muni, np.random.default_rng(11))


@pytest.fixture(scope="module")
def written(structure, attrs, tmp_path_factory):
    muni, posts = structure
    tmp = tmp_path_factory.mktemp("surveys")
    cfg = cfg_for(tmp)
    res = write_surveys(muni, posts, attrs, cfg, np.random.default_rng(5), paths.raw_dir(cfg))
    return cfg, res


# --------------------------------------------------------------------------- calibration
PUBLISHED = {
    "decision_im": 31,
    "decision_im_district": 13,
    "ts_ausreisepflichtig": 44,
    "ts_drittstaat": 12,
    "ts_eu": 6,
    "hs_privat": 95,
    "hs_oeffentlich": 93,
    "hs_gu_au": 77,
    "hs_vorlaeufig": 22,
    "hs_andere": 13,
    "min_age_ab18": 49,
    "min_age_unter14": 18,
    "arrival_keine": 68,
    "arrival_ab2015": 24,
    "arrival_ab2014": 6,
    "doc_mode_digital": 47,
    "doc_mode_papier": 16,
    "doc_mode_gemischt": 37,
}


def test_marginals_near_published(structure, attrs):
    muni, _ = structure
    got = marginals(attrs, muni)
    for k, target in PUBLISHED.items():
        assert abs(got[k] - target) <= TOL_PP, (k, got[k], target)
    assert got["decision_municipal_staff"] < 10
    for k in ("ts_gestattung", "ts_erlaubnis", "ts_duldung"):
        assert got[k] >= 90
    sw = {k: v for k, v in got.items() if k.startswith("software_")}
    assert max(sw, key=sw.get) == "software_jobkraftwerk"
    assert sw["software_jobkraftwerk"] > sw["software_enaio"] > sw["software_tau"]


def test_marginals_stable_across_seeds(structure):
    muni, _ = structure
    for seed in (1, 2, 3):
        got = marginals(draw_survey_attributes(muni, np.random.default_rng(seed)), muni)
        for k, target in PUBLISHED.items():
            assert abs(got[k] - target) <= TOL_PP, (seed, k, got[k], target)


def test_correlations_as_reported(structure, attrs):
    muni, _ = structure
    d = attrs.merge(muni, on="ags")
    d = d[d["applied"]]
    small = d["population"] < d["population"].median()
    kids = d["min_age"].eq("unter14")
    assert kids[small].mean() > kids[~small].mean()
    none_before = d["capacity_before_vza"].eq(0)
    assert kids[none_before].mean() > kids[~none_before].mean()
    a14 = d["arrival"].eq("ab2014")
    assert a14[none_before].mean() > a14[~none_before].mean()
    # district-run: IM decide in the larger members
    dr = d[d["organisation"].eq("landratsamt")]
    assert dr.loc[dr["decision_maker"].eq("im"), "population"].median() > dr["population"].median()


def test_joint_verbaende_share_all_answers(structure, attrs):
    muni, _ = structure
    d = attrs.merge(muni[["ags", "applied"]], on="ags")
    j = d[d["district_joint"]]
    assert j["verband_id"].nunique() >= 5
    cols = ["decision_maker", "min_age", "arrival", "doc_mode", "software", "ts_eu", "hs_andere"]
    nun = j.groupby("verband_id")[cols].nunique(dropna=False)
    assert (nun <= 1).all().all()
    # non-joint district Verbände mostly share (the majority value covers most members)
    dr = d[
        ~d["district_joint"]
        & d["verband_id"].isin(muni.loc[muni["organisation"].eq("landratsamt"), "verband_id"])
    ]
    share = dr.groupby("verband_id")["doc_mode"].agg(
        lambda s: s.value_counts(normalize=True).iloc[0]
    )
    assert share.mean() > 0.8
    assert d.loc[~d["applied"], "doc_mode"].isna().all()


# --------------------------------------------------------------------------- files
def test_files_readable_with_labels(written):
    cfg, res = written
    for key in SURVEY_SOURCES:
        p = res[key]
        assert p.exists() and p.stat().st_size > 0
        reader = pyreadstat.read_dta if p.suffix == ".dta" else pyreadstat.read_sav
        df, meta = reader(str(p), apply_value_formats=True)
        assert len(df) > 0
        assert meta.column_names_to_labels and all(meta.column_names_to_labels.values())
        assert meta.variable_value_labels
    df, meta = pyreadstat.read_sav(str(res["survey_w1"]), user_missing=True)
    assert meta.variable_value_labels["F3_doku"][1] == "ausschließlich digital"
    assert meta.variable_value_labels["F3_doku"][-99] == "keine Angabe"
    assert "F3_doku" in meta.missing_ranges
    # negative codes are user-missing: read without user_missing they become NaN
    df_sys, _ = pyreadstat.read_sav(str(res["survey_w1"]))
    assert ((df["F3_doku"] < 0).sum() > 0) and (df_sys["F3_doku"] < 0).sum() == 0
    w3, m3 = pyreadstat.read_dta(str(res["survey_w3"]))
    assert (
        "q12_org" in w3.columns
        and m3.variable_value_labels["q12_org"][3] == "durch einen freien Träger"
    )


def test_wave_specific_names_and_mr_sets(written):
    _, res = written
    w2, _ = pyreadstat.read_sav(str(res["survey_w2"]), user_missing=True)
    w5, _ = pyreadstat.read_sav(str(res["survey_w5"]), user_missing=True)
    assert "v12_alter" in w2 and "zg_alter" in w5 and "v12_alter" not in w5
    for c in ("v10_1", "v10_6", "v11_5"):
        assert set(w2[c].dropna().unique()) <= {0.0, 1.0, -99.0}
    assert (w5["zg_alter"] == -96).sum() > 0  # older questionnaire version
    w1, _ = pyreadstat.read_sav(str(res["survey_w1"]), user_missing=True)
    assert (w1["F4_sw_1"] == -97).sum() > 0  # paper: software not applicable


def test_nonresponse_and_joint_rows(written, structure):
    cfg, res = written
    muni, posts = structure
    w2, _ = pyreadstat.read_sav(str(res["survey_w2"]), user_missing=True)
    edu = w2["v22_anz_ausb"]
    share = (edu < 0).mean()
    assert 0.75 <= share <= 0.95, share
    assert (w2["v20_anz_gefl"] < 0).mean() < 0.15
    assert w2["v_02_kreis"].sum() >= 3
    assert (w2.loc[w2["v_02_kreis"] == 1, "v_02b_verband"].str.len() > 0).all()
    applied = int(muni["applied"].sum())
    assert len(w2) < applied * 0.95  # unit non-response + joint rows
    keys = w2["v_01_ags"].astype(str)
    assert keys.str.fullmatch(r"8\d{6}").any()  # lost leading zero
    assert keys.str.fullmatch(r"08\d{3}").any()  # Kreis key
    assert (~keys.str.contains(r"\d")).mean() > 0.1  # names
    w4, _ = pyreadstat.read_sav(str(res["survey_w4"]), user_missing=True)
    assert 0.7 * len(posts) <= len(w4) <= 1.2 * len(posts)
    assert w4["A3_umfang"].between(1, 100).mean() > 0.9


def test_byte_identical_for_same_seed(structure, attrs, tmp_path):
    muni, posts = structure
    sub = muni[muni["kreis"].isin(["08115", "08111", "08416", "08435"])]
    sposts = posts[posts["ags"].isin(sub["ags"])]
    sattrs = attrs[attrs["ags"].isin(sub["ags"])]
    digests = []
    for run in ("a", "b"):
        cfg = cfg_for(tmp_path / run)
        res = write_surveys(sub, sposts, sattrs, cfg, np.random.default_rng(3), paths.raw_dir(cfg))
        digests.append({k: res[k].read_bytes() for k in SURVEY_SOURCES})
        if run == "a":
            import time

            time.sleep(1.1)  # a different wall-clock second must not change the bytes
    for k in SURVEY_SOURCES:
        assert digests[0][k] == digests[1][k], k
        reader = pyreadstat.read_dta if k == "survey_w3" else pyreadstat.read_sav
        _, meta = reader(str(res[k]), metadataonly=True)
        assert meta.creation_time == pd.Timestamp("2020-01-01 00:00:00").to_pydatetime()
    raw = res["survey_w1"].read_bytes()
    assert struct.unpack("<d", raw[84:92])[0] == 100.0  # compression bias untouched
    cfg = cfg_for(tmp_path / "c")
    res = write_surveys(sub, sposts, sattrs, cfg, np.random.default_rng(4), paths.raw_dir(cfg))
    assert res["survey_w2"].read_bytes() != digests[0]["survey_w2"]


def test_fix_timestamp_rejects_other_files(tmp_path):
    p = tmp_path / "x.sav"
    p.write_bytes(b"not a survey file at all, just text" * 5)
    with pytest.raises(ValueError, match="neither SPSS nor Stata"):
        fix_timestamp(p)


def test_targets_sum_to_one():
    for k in ("min_age", "doc_mode", "software", "decision_maker_municipal"):
        assert abs(sum(TARGETS[k].values()) - 1) < 1e-9, k
    assert abs(sum(TARGETS["arrival"].values()) - 1) < 1e-9


def test_marginals_with_structure_generator():
    """Same targets on the project's own structure generator (skipped until it exists)."""
    structure = pytest.importorskip("ifm_eval.synth.structure")
    from ifm_eval.config import load_config

    cfg = load_config(ROOT / "config.yaml")
    frame = municipalities(read_gemeindeverzeichnis(GV))
    st = structure.build_structure(frame, cfg, np.random.default_rng(1))
    got = marginals(draw_survey_attributes(st.muni, np.random.default_rng(2)), st.muni)
    for k, target in PUBLISHED.items():
        assert abs(got[k] - target) <= TOL_PP, (k, got[k], target)
    assert got["decision_municipal_staff"] < 10
