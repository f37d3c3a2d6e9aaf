"""Stand-in data generator (``ifm_eval.synth``): formats, consistency, determinism, truth.

One small-scale data set (scale 0.02) is generated once per module; the official-rule,
aggregation and masking checks re-derive everything from the WRITTEN files with code that is
independent of the generator.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pytest

from ifm_eval import paths
from ifm_eval.config import load_config
from ifm_eval.reference import read_gemeindeverzeichnis
from ifm_eval.sources import SURVEY_SOURCES
from ifm_eval.synth import generate, rng_for
from ifm_eval.synth.persons import simulate_persons, true_effects
from ifm_eval.synth.structure import build_structure

ROOT = Path(__file__).resolve().parents[1]
SCALE = 0.02
SURVEY_FILES = {paths.RAW_FILES[k] for k in SURVEY_SOURCES}


def _cfg(seed: int | None = None, scale: float = SCALE) -> dict:
    cfg = load_config(ROOT / "config.yaml")
    cfg["data"]["reference_dir"] = str(ROOT / cfg["data"]["reference_dir"])
    cfg["synth"]["scale"] = scale
    if seed is not None:
        cfg["seed"] = seed
    return cfg


@pytest.fixture(scope="module")
def gen(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    cfg = _cfg()
    summary = generate(cfg, paths.reference_path(cfg, "gv"), out)
    truth = json.loads((out / "truth.json").read_text(encoding="utf-8"))
    counts = pd.read_parquet(out / "truth_counts.parquet")
    return {"dir": out, "cfg": cfg, "summary": summary, "truth": truth, "counts": counts}


def _read_posts(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep=";", encoding="cp1252", dtype=str, keep_default_na=False)


# ----------------------------------------------------------------------------- files
def test_all_contract_files_written(gen):
    for key, rel in paths.RAW_FILES.items():
        if rel in SURVEY_FILES:
            continue  # written by synth.surveys (tested there)
        assert (gen["dir"] / rel).is_file(), key
    assert (gen["dir"] / "truth.json").is_file()


def test_funding_xlsx_layout_and_counts(gen):
    f = gen["dir"] / paths.RAW_FILES["funding_applications"]
    antr = pd.read_excel(f, sheet_name="Antraege", header=2, engine="openpyxl")
    mem = pd.read_excel(f, sheet_name="Mitglieder", header=2, engine="openpyxl", dtype=object)
    title = pd.read_excel(f, sheet_name="Antraege", header=None, nrows=2, engine="openpyxl")
    assert isinstance(title.iloc[0, 0], str) and title.iloc[1].isna().all()
    assert list(antr.columns) == [
        "Antrags-Nr.",
        "Verband",
        "Antragsteller",
        "Art Antragsteller",
        "Kreis",
        "Bewilligte VZÄ",
        "Fördersumme EUR",
        "Bewilligt am",
    ]
    assert list(mem.columns) == [
        "Antrags-Nr.",
        "AGS",
        "Gemeinde",
        "Geflüchtete AU 15.09.2017",
        "VZÄ Anteil",
    ]
    assert len(antr) == 192 and antr["Antrags-Nr."].is_unique
    assert antr["Antrags-Nr."].str.fullmatch(r"PIK-IM-\d{4}").all()
    assert set(antr["Art Antragsteller"]) == {
        "Landratsamt",
        "Stadtkreis",
        "Gemeinde",
        "Verwaltungsgemeinschaft",
    }
    assert len(mem) == 1078
    is_num = mem["AGS"].map(lambda v: isinstance(v, int))
    assert 0.1 < is_num.mean() < 0.5  # some AGS typed as numbers ...
    assert (
        mem.loc[is_num, "AGS"].map(lambda v: len(str(v)) == 7).all()
    )  # ... with the leading zero lost
    ags = mem["AGS"].map(lambda v: f"{int(v):08d}")
    assert ags.is_unique
    assert set(mem["Antrags-Nr."]) == set(antr["Antrags-Nr."])
    # the 23 non-applicants are absent and had no refugees on 15.09.2017
    non = [m for m in gen["truth"]["municipalities"] if not m["applied"]]
    assert len(non) == 23 and all(m["refugees_20170915"] == 0 for m in non)
    assert not set(ags) & {m["ags"] for m in non}
    assert (mem["Geflüchtete AU 15.09.2017"].astype(int) > 0).all()
    # Verband VZÄ = sum of members
    s = mem.assign(v=mem["VZÄ Anteil"].astype(float)).groupby("Antrags-Nr.")["v"].sum()
    np.testing.assert_allclose(
        antr.set_index("Antrags-Nr.")["Bewilligte VZÄ"].loc[s.index], s, atol=0.011
    )


def test_posts_csv_format(gen):
    raw = (gen["dir"] / paths.RAW_FILES["im_posts"]).read_bytes()
    raw.decode("cp1252")
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")  # umlauts are single cp1252 bytes
    p = _read_posts(gen["dir"] / paths.RAW_FILES["im_posts"])
    assert list(p.columns) == [
        "Stellen-ID",
        "Antrags-Nr.",
        "AGS",
        "Gemeinde",
        "Anstellungsträger",
        "Trägername",
        "Beginn",
        "Ende",
        "VZÄ Stelle",
        "Anteil Gemeinde",
    ]
    assert p["Stellen-ID"].str.fullmatch(r"S\d{5}").all()
    assert p["Beginn"].str.fullmatch(r"\d{2}\.\d{2}\.\d{4}").all()
    assert p["Ende"].str.fullmatch(r"(\d{2}\.\d{2}\.\d{4})?").all()
    assert (p["Ende"] != "").any()
    assert set(p["Anstellungsträger"]) == {"Landratsamt", "Gemeinde", "Freier Träger"}
    vza = p["VZÄ Stelle"].str.replace(",", ".").astype(float)
    share = p["Anteil Gemeinde"].str.replace(",", ".").astype(float)
    assert ((vza > 0) & (vza <= 1)).all() and ((share > 0) & (share <= 1)).all()
    np.testing.assert_allclose(share.groupby(p["Stellen-ID"]).sum(), 1.0, atol=1e-9)
    assert (p.groupby("Stellen-ID").size() > 1).any()  # shared posts exist
    beg = pd.to_datetime(p["Beginn"], format="%d.%m.%Y")
    end = pd.to_datetime(p["Ende"].replace("", None), format="%d.%m.%Y")
    assert (end.isna() | (end > beg)).all()
    # funded VZÄ of a municipality = sum of its original posts' VZÄ x share
    truth = {m["ags"]: m for m in gen["truth"]["municipalities"]}
    assert set(p["AGS"]) == {a for a, m in truth.items() if m["applied"]}


def test_official_rule_reproduces_planted_start(gen):
    """Apply the three rules to the written posts CSV, month by month (independent code)."""
    p = _read_posts(gen["dir"] / paths.RAW_FILES["im_posts"])
    p["start"] = pd.to_datetime(p["Beginn"], format="%d.%m.%Y").dt.to_period("M")
    months = pd.period_range("2016-01", "2020-12", freq="M")
    truth = {m["ags"]: m["start_month"] for m in gen["truth"]["municipalities"]}
    checked = 0
    for ags, d in p.groupby("AGS"):
        starts = d.drop_duplicates("Stellen-ID")["start"].to_numpy()
        n = len(starts)
        started = np.array([(starts <= mo).sum() for mo in months])
        half = months[np.argmax(started >= n / 2)]
        first = months[np.argmax(started >= 1)]
        every = months[np.argmax(started >= n)]
        assert truth[ags] == {
            "half_posts": str(half),
            "first_post": str(first),
            "all_posts": str(every),
        }, ags
        checked += 1
    assert checked == 1078
    assert all(v["half_posts"] is None for a, v in truth.items() if a not in set(p["AGS"]))


def _stocks_from_export(path: Path) -> pd.DataFrame:
    """Monthly stocks per AGS re-derived from the person-level export (difference arrays)."""
    cm = pd.read_csv(path, sep=";", encoding="utf-8", dtype=str, keep_default_na=False)
    cm["m"] = pd.to_datetime(cm["Datum"], format="%d.%m.%Y").dt.to_period("M")
    cm["mi"] = cm["m"].map(lambda q: q.year * 12 + q.month - 1)
    big = 10**9
    per = cm.groupby("Pseudonym")
    assert (per["AGS"].nunique() == 1).all()
    zuzug = cm[cm["Status"] == "Zuzug AU"].set_index("Pseudonym")["mi"]
    auszug = (
        cm[cm["Status"] == "Auszug"].set_index("Pseudonym")["mi"].reindex(zuzug.index).fillna(big)
    )
    ags = per["AGS"].first()
    rows = []  # (ags, from, to_exclusive, measure)
    rows.append(
        pd.DataFrame(
            {
                "ags": ags[zuzug.index].to_numpy(),
                "lo": zuzug.to_numpy(),
                "hi": auszug.to_numpy(),
                "k": "refugees",
            }
        )
    )
    b1 = cm[cm["Status"] == "B1 erreicht"].set_index("Pseudonym")["mi"]
    rows.append(
        pd.DataFrame(
            {
                "ags": ags[b1.index].to_numpy(),
                "lo": b1.to_numpy(),
                "hi": auszug[b1.index].to_numpy(),
                "k": "b1",
            }
        )
    )
    for bereich, kinds in (
        (
            "Ausbildung",
            {"Beginn Ausbildung": "ausbildung", "Beginn Weiterbildung": "weiterbildung"},
        ),
        ("Arbeit", {"Beginn SvB": "svb"}),
    ):
        d = cm[cm["Bereich"] == bereich].copy()
        beg = d[d["Status"] != "Ende"].copy()
        end = d[d["Status"] == "Ende"].copy()
        beg["k"] = beg["Status"].map(kinds)
        beg["n"] = beg.groupby("Pseudonym").cumcount()
        end["n"] = end.groupby("Pseudonym").cumcount()
        sp = beg.merge(
            end[["Pseudonym", "n", "mi"]], on=["Pseudonym", "n"], how="left", suffixes=("", "_end")
        )
        hi = np.minimum(sp["mi_end"].fillna(big).to_numpy(), auszug[sp["Pseudonym"]].to_numpy())
        rows.append(
            pd.DataFrame(
                {
                    "ags": sp["AGS"].to_numpy(),
                    "lo": sp["mi"].to_numpy(),
                    "hi": hi,
                    "k": sp["k"].to_numpy(),
                }
            )
        )
    iv = pd.concat(rows, ignore_index=True)
    months = np.arange(2015 * 12, 2021 * 12)
    out = []
    for k, d in iv.groupby("k"):
        inside = (d["lo"].to_numpy()[:, None] <= months[None, :]) & (
            months[None, :] < d["hi"].to_numpy()[:, None]
        )
        agg = pd.DataFrame(inside, columns=months).groupby(d["ags"].to_numpy()).sum()
        out.append(agg.stack().rename(k))
    res = pd.concat(out, axis=1).fillna(0).astype(int)
    res.index.names = ["ags", "mi"]
    return res


def test_case_management_reproduces_unmasked_stocks(gen):
    path = gen["dir"] / paths.RAW_FILES["case_management"]
    head = path.read_text(encoding="utf-8").splitlines()[0]
    assert head == "Pseudonym;AGS;Geburtsjahr;Geschlecht;Herkunftsland;Datum;Bereich;Status"
    derived = _stocks_from_export(path)
    c = gen["counts"].copy()
    per = pd.PeriodIndex(c["month"], freq="M")
    c["mi"] = per.year * 12 + per.month - 1
    c = c.set_index(["ags", "mi"])
    cols = ["refugees", "b1", "ausbildung", "weiterbildung", "svb"]
    got = derived.reindex(c.index).fillna(0).astype(int)
    for k in cols:
        assert (got[k].to_numpy() == c[k].to_numpy()).all(), k
    assert c["refugees"].sum() > 0 and c["svb"].sum() > 0 and c["ausbildung"].sum() > 0


def test_outcome_files_match_truth_and_masking(gen):
    d = gen["dir"]
    c = gen["counts"].set_index(["ags", "month"])
    den_bytes = (d / paths.RAW_FILES["refugees_au"]).read_bytes()
    assert den_bytes.startswith(b"\xef\xbb\xbf")
    den = pd.read_csv(
        d / paths.RAW_FILES["refugees_au"], sep=";", encoding="utf-8-sig", dtype={"AGS": str}
    )
    assert list(den.columns) == ["AGS", "Gemeinde", "Monat", "Geflüchtete AU"]
    assert len(den) == 1101 * 72
    assert (
        den.set_index(["AGS", "Monat"])["Geflüchtete AU"].to_numpy() == c["refugees"].to_numpy()
    ).all()

    ba_path = d / paths.RAW_FILES["employment_ba"]
    lines = ba_path.read_text(encoding="cp1252").splitlines()
    assert all(line.startswith("#") for line in lines[:5]) and not lines[5].startswith("#")
    ba = pd.read_csv(ba_path, sep=";", encoding="cp1252", skiprows=5, dtype=str)
    assert list(ba.columns) == ["Region", "Regionsname", "Berichtsmonat", "SvB Asylherkunftsländer"]
    tr = pd.read_csv(
        d / paths.RAW_FILES["training"], sep=";", encoding="cp1252", comment="#", dtype=str
    )
    assert list(tr.columns) == [
        "Region",
        "Regionsname",
        "Berichtsmonat",
        "In Ausbildung",
        "In Weiterbildung",
    ]
    for col, truth in (
        (ba["SvB Asylherkunftsländer"], c["svb"]),
        (tr["In Ausbildung"], c["ausbildung"]),
        (tr["In Weiterbildung"], c["weiterbildung"]),
    ):
        v = col.to_numpy()
        t = truth.to_numpy()
        assert ((v == "-") == (t == 0)).all()
        assert ((v == "*") == ((t == 1) | (t == 2))).all()
        big = t >= 3
        assert (v[big].astype(int) == t[big]).all()
        assert (v == "*").any() and (v == "-").any() and big.any()

    lang = pd.read_csv(
        d / paths.RAW_FILES["language_b1"], sep=",", encoding="utf-8", dtype={"ags": str}
    )
    assert list(lang.columns) == ["ags", "gemeinde", "monat", "b1_bestand"]
    miss = lang["b1_bestand"].isna()
    assert 0 < miss.mean() < 0.03
    assert (
        lang.loc[~miss, "b1_bestand"].astype(int).to_numpy() == c["b1"].to_numpy()[~miss.to_numpy()]
    ).all()


def test_kpi_reports(gen):
    k = pd.read_excel(
        gen["dir"] / paths.RAW_FILES["kpi_reports"],
        sheet_name="Kennzahlen",
        engine="openpyxl",
        dtype={"AGS": str},
    )
    assert list(k.columns) == [
        "AGS",
        "Gemeinde",
        "Quartal",
        "Klienten",
        "Erstgespräche",
        "Integrationspläne",
        "Übergänge Sprachkurs",
        "Übergänge Ausbildung",
        "Übergänge Arbeit",
    ]
    assert k["Quartal"].str.fullmatch(r"\d{4}-Q[1-4]").all()
    vals = k.iloc[:, 3:]
    assert vals.isna().any().all()  # some empty cells in every KPI
    assert (vals.fillna(0) >= 0).all().all()
    start = {m["ags"]: m["start_month"]["half_posts"] for m in gen["truth"]["municipalities"]}
    first_q = k.groupby("AGS")["Quartal"].min()
    expect = {
        a: str(pd.Period(start[a], freq="M").asfreq("Q")).replace("Q", "-Q") for a in first_q.index
    }
    assert all(first_q[a] == expect[a] for a in first_q.index)
    assert k["AGS"].nunique() == 1078


# ----------------------------------------------------------------------------- determinism
def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_same_seed_byte_identical_other_seed_differs(gen, tmp_path):
    again = tmp_path / "again"
    generate(copy.deepcopy(gen["cfg"]), paths.reference_path(gen["cfg"], "gv"), again)
    own = [v for v in paths.RAW_FILES.values() if v not in SURVEY_FILES] + ["truth_counts.parquet"]
    for rel in own:
        assert _digest(gen["dir"] / rel) == _digest(again / rel), rel
    t1 = json.loads((again / "truth.json").read_text(encoding="utf-8"))
    t0 = copy.deepcopy(gen["truth"])
    for t in (t0, t1):
        t["files"] = {k: v for k, v in t["files"].items() if v["path"] not in SURVEY_FILES}
    assert t0 == t1

    other = tmp_path / "other"
    generate(_cfg(seed=gen["cfg"]["seed"] + 1), paths.reference_path(gen["cfg"], "gv"), other)
    for rel in own:
        assert _digest(gen["dir"] / rel) != _digest(other / rel), rel


# ----------------------------------------------------------------------------- truth
def test_truth_schema(gen):
    schema = json.loads(
        (ROOT / "src/ifm_eval/schemas/truth.schema.json").read_text(encoding="utf-8")
    )
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(gen["truth"])
    bad = copy.deepcopy(gen["truth"])
    bad["municipalities"][0]["start_month"]["half_posts"] = "2018-13"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate(bad)


def test_truth_effects_consistent_with_counts(gen):
    t = gen["truth"]
    c = gen["counts"]
    start = {m["ags"]: m["start_month"]["half_posts"] for m in t["municipalities"]}
    c = c[c["ags"].map(start).notna() & (c["refugees"] > 0)].copy()
    c["e"] = (
        pd.PeriodIndex(c["month"], freq="M") - pd.PeriodIndex(c["ags"].map(start), freq="M")
    ).map(lambda x: x.n)
    c["d"] = (c["svb"] - c["svb_cf"]) / c["refugees"] * 100
    att = c.groupby("e")["d"].mean()
    got = pd.Series({int(k): v for k, v in t["effects"]["employment"]["att_by_event_time"].items()})
    np.testing.assert_allclose(
        got.sort_index().to_numpy(), att.sort_index().to_numpy(), rtol=0, atol=1e-9
    )
    assert t["effects"]["employment"]["att_overall_pre"] == 0.0  # no anticipation configured
    for o in ("language", "training", "employment"):
        assert t["effects"][o]["att_overall"] > 0  # default config plants positive effects
        assert t["effects"][o]["att_by_event_time"]["-1"] == 0.0


def _zero_effect_cfg(cfg: dict) -> dict:
    cfg = copy.deepcopy(cfg)
    for o in ("language", "training", "employment"):
        cfg["synth"]["effects"][o]["max_hazard_ratio"] = 1.0
    return cfg


def test_zero_effect_gives_exactly_zero(gen):
    cfg = _zero_effect_cfg(gen["cfg"])
    frame = read_gemeindeverzeichnis(paths.reference_path(cfg, "gv"))
    st = build_structure(frame, cfg, rng_for(cfg["seed"], "structure"))
    pr = simulate_persons(st.muni, cfg, rng_for(cfg["seed"], "persons"))
    for a, b in (
        ("b1", "b1_cf"),
        ("ausbildung", "ausbildung_cf"),
        ("weiterbildung", "weiterbildung_cf"),
        ("svb", "svb_cf"),
    ):
        assert (pr.counts[a] == pr.counts[b]).all()
    eff = true_effects(st.muni, pr.counts)
    for o in eff.values():
        assert o["att_overall"] == 0.0 and o["att_overall_weighted"] == 0.0
        assert all(v == 0.0 for v in o["att_by_event_time"].values())
    # common random numbers: the counterfactual is the same path as with effects switched on
    base = gen["counts"]
    assert (pr.counts["svb_cf"].reshape(-1) == base["svb_cf"].to_numpy()).all()
    assert (pr.counts["svb"].reshape(-1) != base["svb"].to_numpy()).any()


def test_cli_registers_synth():
    from ifm_eval.cli import build_parser

    args = build_parser().parse_args(["synth", "--in", "gv=g.csv", "--out", "truth=x/truth.json"])
    assert args.command.name == "synth" and args.config == "config.yaml"
    assert args.inputs == ["gv=g.csv"] and args.outputs == ["truth=x/truth.json"]


def test_hazard_ratio_ramp_cohort_capacity_anticipation(gen):
    from ifm_eval.synth.persons import SIM_START, effect_gradients, treatment_hazard_ratios

    cfg = copy.deepcopy(gen["cfg"])
    frame = read_gemeindeverzeichnis(paths.reference_path(cfg, "gv"))
    st = build_structure(frame, cfg, rng_for(cfg["seed"], "structure"))
    m = st.muni
    scfg = cfg["synth"]
    eff = scfg["effects"]["employment"]
    hr = treatment_hazard_ratios(m, scfg)["employment"]
    g = effect_gradients(m, scfg)["employment"]
    start = m["start_idx"].to_numpy()
    i = int(np.flatnonzero(start >= 0)[0])
    j0 = start[i] - SIM_START
    ramp = eff["ramp_months"]
    assert hr[i, j0 - 1] == 1.0  # no anticipation by default
    np.testing.assert_allclose(hr[i, j0], eff["max_hazard_ratio"] ** (g[i] / ramp))
    np.testing.assert_allclose(hr[i, j0 + ramp - 1], eff["max_hazard_ratio"] ** g[i])
    np.testing.assert_allclose(hr[i, -1], eff["max_hazard_ratio"] ** g[i])
    assert (hr[~(start >= 0)] == 1.0).all()
    # cohort gradient: among municipalities with the same capacity increase, earlier = larger g
    no_cap = copy.deepcopy(scfg)
    no_cap["effects"]["employment"]["capacity_gradient"] = 0.0
    g0 = effect_gradients(m, no_cap)["employment"]
    tr = start >= 0
    assert np.corrcoef(start[tr], g0[tr])[0, 1] < -0.99
    # capacity gradient: without cohort gradient, g increases with capacity increase per 100
    no_coh = copy.deepcopy(scfg)
    no_coh["effects"]["employment"]["cohort_gradient"] = 0.0
    g1 = effect_gradients(m, no_coh)["employment"]
    from ifm_eval.synth.persons import capacity_increase_per100

    cap = capacity_increase_per100(m)
    assert np.corrcoef(cap[tr], g1[tr])[0, 1] > 0.9
    # anticipation: the effect starts `anticipation_months` before the start month
    ant = copy.deepcopy(scfg)
    ant["anticipation_months"] = 3
    hr3 = treatment_hazard_ratios(m, ant)["employment"]
    assert hr3[i, j0 - 4] == 1.0 and hr3[i, j0 - 3] > 1.0
