"""Stand-in survey waves in the formats of the real ones (SPSS ``.sav``, Stata ``.dta``).

:func:`write_surveys` writes the five waves named in the short report. Variable names, labels
and codes come from the codebook ``codebook/surveys.yaml`` (the same file the readers use),
so the stand-ins and the readers cannot drift apart. The realistic mess:

- wave-specific variable names (``F3_doku`` in w1, ``v12_alter`` in w2 vs ``zg_alter`` in w5);
- German variable and value labels; negative missing codes ``-99`` keine Angabe, ``-98``
  weiß nicht, ``-97`` trifft nicht zu, ``-96`` nicht gefragt (declared user-missing in
  ``.sav``; value-labelled in ``.dta``);
- multiple-response sets as 0/1 variables;
- district offices answering once for all members of their Verband (flag, Verband name,
  Kreis key / Verband name / "Landratsamt X" as key, totals instead of member values);
- keys as people type them: lost leading zeros, names (with "Stadt"/"Gemeinde", upper case,
  folded umlauts), typos, spaces, and a little junk that matches nothing;
- unit non-response (``synth.unit_nonresponse``), item non-response up to
  ``synth.item_nonresponse_education`` on the education items, a questionnaire version in
  w5 without the target-group block (``-96``), ``-97`` for software when documenting on
  paper, and a few duplicate submissions;
- wave 4 is one row per IM person, derived from the posts (job sharing splits a post).

Files are byte-identical for the same seed: the creation timestamps ReadStat writes into the
headers are overwritten with a fixed value (see :func:`fix_timestamp`).
"""

from __future__ import annotations

import logging
import re
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyreadstat

from ifm_eval.ingest.survey_read import load_codebook
from ifm_eval.sources import SOURCES
from ifm_eval.synth.survey_attributes import HOUSING, TARGET_STATUS

log = logging.getLogger(__name__)

FIXED_SAV_DATE = b"01 Jan 20"
FIXED_SAV_TIME = b"00:00:00"
FIXED_DTA_TIMESTAMP = "01 Jan 2020 00:00"
SOFTWARE_ITEMS = ["jobkraftwerk", "enaio", "tau", "excel", "eigenentwicklung", "andere"]
OTHER_SOFTWARE = ["OPEN/PROSOZ", "Lämmkom", "Sozial-Office", "CuraSoft", "Access-Datenbank"]
JUNK_KEYS = ["k.A.", "-", "siehe Anlage", "0", "xxx", "Integrationsmanagement", "?"]
WAVE_DATES = {"w1": "2018-08", "w2": "2018-12", "w3": "2019-03", "w4": "2019-06", "w5": "2019-11"}


# --------------------------------------------------------------------------- timestamps
def fix_timestamp(path: str | Path) -> None:
    """Overwrite the creation timestamp ReadStat writes, so equal content → equal bytes.

    SAV: 9-byte date ``dd mmm yy`` at offset 92 and 8-byte time ``hh:mm:ss`` at offset 101
    (the file header is rec_type[4], prod_name[60], layout_code, nominal_case_size,
    compression, weight_index, ncases (int32 each, offsets 64-83), bias (float64 at 84-91),
    creation_date[9], creation_time[8], file_label[64]). Offsets 84/93 would overwrite the
    compression bias (100.0); the bias is checked before patching.
    DTA 117-119: the ``<timestamp>`` field (length byte, then ``dd Mon yyyy hh:mm``).
    """
    path = Path(path)
    data = bytearray(path.read_bytes())
    if data[:4] in (b"$FL2", b"$FL3"):
        if len(data) < 176 or struct.unpack("<d", bytes(data[84:92]))[0] != 100.0:
            raise ValueError(f"{path}: unexpected SPSS header layout (bias != 100)")
        date, time_ = bytes(data[92:101]), bytes(data[101:109])
        if not (re.fullmatch(rb"[ 0-9]\d [A-Z][a-z]{2} \d\d", date)
                and re.fullmatch(rb"\d\d:\d\d:\d\d", time_)):
            raise ValueError(f"{path}: no creation timestamp at offset 92 ({date!r} {time_!r})")
        data[92:101] = FIXED_SAV_DATE
        data[101:109] = FIXED_SAV_TIME
    elif data[:11] == b"<stata_dta>":
        pos = data.find(b"<timestamp>")
        if pos < 0:
            raise ValueError(f"{path}: no <timestamp> in Stata header")
        n = data[pos + 11]
        stamp = FIXED_DTA_TIMESTAMP.encode("ascii")[:n].ljust(n, b" ")
        data[pos + 12: pos + 12 + n] = stamp
    else:
        raise ValueError(f"{path}: neither SPSS nor Stata 117+ file")
    path.write_bytes(bytes(data))


# --------------------------------------------------------------------------- keys
def _fold_umlauts(s: str) -> str:
    return (s.replace("ä", "ae").replace("ö", "oe").replace("ü", "ue").replace("ß", "ss")
            .replace("Ä", "Ae").replace("Ö", "Oe").replace("Ü", "Ue"))


def _typo(s: str, rng: np.random.Generator) -> str:
    if len(s) < 8:
        return s
    i = int(rng.integers(2, len(s) - 2))
    if rng.random() < 0.5:
        return s[:i] + s[i + 1:]                       # deletion
    return s[:i] + s[i + 1] + s[i] + s[i + 2:]         # transposition


def type_key(ags: str, name: str, rng: np.random.Generator) -> str:
    """A municipality key as a person would type it."""
    clean = name.split(",")[0].strip()
    u = rng.random()
    if u < 0.52:
        return ags
    if u < 0.68:
        return ags.lstrip("0")                         # lost leading zero (number column)
    if u < 0.84:
        suffix = name.split(",")[1].strip() if "," in name else ""
        variants = [clean, clean.upper(), _fold_umlauts(clean),
                    f"{'Stadt' if suffix else 'Gemeinde'} {clean}", name]
        return variants[int(rng.integers(len(variants)))]
    if u < 0.93:
        return _typo(clean, rng)
    if u < 0.985:
        return f"{ags[:2]} {ags[2:5]} {ags[5:]}"
    return JUNK_KEYS[int(rng.integers(len(JUNK_KEYS)))]


def type_joint_key(kreis: str, kreis_name: str, verband_name: str,
                   rng: np.random.Generator) -> str:
    u = rng.random()
    kname = kreis_name.split(",")[0].strip()
    if u < 0.45:
        return kreis
    if u < 0.6:
        return kreis.lstrip("0")
    if u < 0.85:
        return f"Landratsamt {kname}"
    return verband_name


# --------------------------------------------------------------------------- helpers
def _get(df: pd.DataFrame, col: str, default: Any) -> pd.Series:
    return df[col] if col in df else pd.Series(default, index=df.index)


def _milestones(m: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Integration-milestone counts per municipality at the w2 and w5 reference dates."""
    base = _get(m, "refugees_20171109", np.nan).astype(float)
    base = base.fillna(m["population"].astype(float) * 0.012).clip(lower=0)
    n = len(m)
    out = pd.DataFrame({"ags": m["ags"].to_numpy()})
    on18 = np.round(base.to_numpy() * rng.uniform(0.9, 1.3, n)).astype(int)
    on19 = np.round(on18 * rng.uniform(0.85, 1.1, n)).astype(int)
    out["refugees_on_site_2018"] = on18
    out["b1_certificate_2018"] = rng.binomial(on18, 0.18)
    out["in_training_2018"] = rng.binomial(on18, 0.07)
    out["employed_2018"] = rng.binomial(on18, 0.20)
    out["refugees_on_site_2019"] = on19
    out["b1_certificate_2019"] = rng.binomial(on19, 0.27)
    out["in_training_2019"] = rng.binomial(on19, 0.10)
    out["employed_2019"] = rng.binomial(on19, 0.30)
    return out


TOTAL_VARS = ["im_persons_w1", "funded_vza_w1", "capacity_before_vza", "capacity_after_vza",
              "refugees_on_site_2018", "b1_certificate_2018", "in_training_2018",
              "employed_2018", "refugees_on_site_2019", "b1_certificate_2019",
              "in_training_2019", "employed_2019"]


def _units(m: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Answering units: one per municipality, one per Verband whose district office answers
    jointly. Policies are taken from the members (shared), totals summed. Plan use differs
    between members; a district office reports the band of a member drawn with probability
    proportional to its refugees (keeps the municipality-level marginals in expectation; for
    the other members the joint answer is measurement error, as in the real surveys)."""
    m = m.copy()
    m["unit_id"] = np.where(m["district_joint"], m["verband_id"].astype(str), m["ags"])
    first = m.groupby("unit_id", sort=True).first()
    sums = m.groupby("unit_id", sort=True)[TOTAL_VARS].sum(min_count=1)
    draw_cols = ["plan_use_band_w2", "plan_use_band_w5"]
    w = _get(m, "refugees_20171109", 0.0).astype(float).fillna(0.0).to_numpy() + 1.0
    m["_key"] = np.log(w) + rng.gumbel(size=len(m))      # weighted draw of one member
    pick = m.sort_values(["unit_id", "_key"], ascending=[True, False]).drop_duplicates("unit_id")
    drawn = pick.set_index("unit_id")[draw_cols]
    units = first.drop(columns=TOTAL_VARS + draw_cols).join(sums).join(drawn)
    units["members"] = m.groupby("unit_id", sort=True)["ags"].agg(list)
    return units.reset_index()


def _missing_matrix(n: int, rate: float, rng: np.random.Generator,
                    reasons: dict[int, float]) -> np.ndarray:
    """Array of 0 (answered) or a negative missing code."""
    out = np.zeros(n, dtype=int)
    hit = rng.random(n) < rate
    codes = list(reasons)
    p = np.array([reasons[c] for c in codes], dtype=float)
    out[hit] = rng.choice(codes, size=int(hit.sum()), p=p / p.sum())
    return out


# --------------------------------------------------------------------------- encoding
def _encode_wave(wave: str, spec: dict, concept: pd.DataFrame, missing: dict[str, np.ndarray],
                 codebook: dict) -> tuple[pd.DataFrame, dict, dict, dict]:
    """Turn a frame of harmonised concept values into the wave's raw variables.

    Returns (frame, column labels, value labels, missing ranges)."""
    out: dict[str, Any] = {}
    labels: dict[str, str] = {}
    vlabels: dict[str, dict] = {}
    mranges: dict[str, list] = {}
    miss_labels = {int(k): v["label"] for k, v in codebook["missing_codes"].items()}
    n = len(concept)
    for var, vs in spec["variables"].items():
        t = vs["type"]
        labels[var] = vs.get("label", var)
        h = vs.get("harmonised", var)
        if t == "id":
            out[var] = np.arange(1, n + 1, dtype=float)
            continue
        if t in ("key", "text"):
            col = concept[h] if h in concept else pd.Series("", index=concept.index)
            out[var] = col.fillna("").astype(str).to_numpy(dtype=object)
            continue
        if t == "flag":
            vals = concept[h].astype(bool).astype(float).to_numpy()
            vlabels[var] = {float(k): v["label"] for k, v in vs["codes"].items()}
        elif t == "mr":
            src = concept[h] if h in concept else pd.Series(np.nan, index=concept.index)
            vals = src.map(lambda x: np.nan if x is None or pd.isna(x) else float(bool(x)))
            vals = vals.to_numpy(dtype=float)
            vlabels[var] = {0.0: "nicht genannt", 1.0: "genannt", **miss_labels}
        elif t == "categorical":
            inv = {v["value"]: float(k) for k, v in vs["codes"].items()}
            src = concept[h] if h in concept else pd.Series(None, index=concept.index)
            vals = src.map(lambda x, inv=inv: inv.get(x, np.nan) if x is not None else np.nan)
            vals = vals.to_numpy(dtype=float)
            vlabels[var] = {float(k): v["label"] for k, v in vs["codes"].items()}
            vlabels[var].update(miss_labels)
        else:  # numeric / integer
            src = concept[h] if h in concept else pd.Series(np.nan, index=concept.index)
            vals = pd.to_numeric(src, errors="coerce").to_numpy(dtype=float)
            if vs.get("scale"):
                vals = vals / float(vs["scale"])
            vals = np.round(vals) if t == "integer" else np.round(vals, 2)
            vlabels[var] = dict(miss_labels)
        miss = missing.get(var)
        if miss is not None:
            vals = np.where(miss < 0, miss.astype(float), vals)
        out[var] = vals
        if t != "flag":
            mranges[var] = [{"lo": -99.0, "hi": -96.0}]
    frame = pd.DataFrame(out, index=range(n))
    return frame, labels, vlabels, mranges


def _write(frame: pd.DataFrame, path: Path, fmt: str, title: str, labels: dict,
           vlabels: dict, mranges: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = frame.copy()
    for c in frame.columns:
        if frame[c].dtype == object or str(frame[c].dtype).startswith("str"):
            frame[c] = frame[c].astype(object)
    if fmt == "sav":
        pyreadstat.write_sav(frame, str(path), file_label=title[:64],
                             column_labels=[labels[c] for c in frame.columns],
                             variable_value_labels=vlabels, missing_ranges=mranges)
    elif fmt == "dta":
        pyreadstat.write_dta(frame, str(path), file_label=title[:80],
                             column_labels=[labels[c][:80] for c in frame.columns],
                             version=14, variable_value_labels=vlabels)
    else:
        raise ValueError(f"unknown survey format {fmt!r}")
    fix_timestamp(path)


# --------------------------------------------------------------------------- main
def write_surveys(
    muni: pd.DataFrame,
    posts: pd.DataFrame,
    attrs: pd.DataFrame,
    cfg: dict,
    rng: np.random.Generator,
    out_dir: str | Path,
    milestones: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """Write the five survey waves under ``out_dir`` (paths from :data:`ifm_eval.sources.SOURCES`).

    ``muni``: one row per municipality (structure columns, see module doc of
    ``synth.structure``); ``posts``: IM posts (post_id, ags, employer, start, end, vza_post,
    share); ``attrs``: :func:`~ifm_eval.synth.survey_attributes.draw_survey_attributes`;
    ``milestones``: optional counts per ``ags`` (columns named as the harmonised
    ``refugees_on_site_2018`` … ``employed_2019``) to make the survey counts consistent with
    the outcome sources; drawn from ``refugees_20171109`` when absent.

    Returns ``{"survey_w1": Path, …, "rows": {wave: n_rows}, "answers": DataFrame}`` where
    ``answers`` is the long table (wave, ags, unit_id, joint, variable, value) of what each
    municipality's answering unit reported before item non-response — the ground truth for
    the round-trip test of the readers.
    """
    codebook = load_codebook()
    out_dir = Path(out_dir)
    scfg = cfg.get("synth", {})
    unit_nr = float(scfg.get("unit_nonresponse", 0.15))
    edu_nr = float(scfg.get("item_nonresponse_education", 0.85))

    m = muni.merge(attrs.drop(columns=["verband_id"], errors="ignore"), on="ags", how="left")
    m = m[m["applied"].fillna(False).astype(bool)].copy()
    m["ags"] = m["ags"].astype(str)
    m["district_joint"] = m["district_joint"].fillna(False).astype(bool)
    ms = milestones if milestones is not None else _milestones(m, rng)
    m = m.merge(ms, on="ags", how="left")
    m["im_persons_w1"] = _get(m, "n_posts", np.nan).astype(float)
    m["funded_vza_w1"] = _get(m, "funded_vza", np.nan).astype(float)
    m["plan_use_band_w2"] = _get(m, "plan_use_band", None)
    # plan use drifts a little between Dec 2018 and Nov 2019
    drift = rng.random(len(m)) < 0.15
    bands = np.array(["lt20", "20to80", "80to100"])
    m["plan_use_band_w5"] = np.where(drift, bands[rng.integers(0, 3, len(m))],
                                     m["plan_use_band_w2"].astype(object))
    for item in SOFTWARE_ITEMS:
        m[f"software_{item}"] = np.where(m["software"].isna(), None,
                                         m["software"].eq(item).astype(object))
    units = _units(m, rng)
    units["kreis_name"] = units["kreis_name"].astype(str)

    # typed keys (own answers vs joint district answers)
    def keys_for(frame: pd.DataFrame) -> pd.Series:
        vals = []
        for _, u in frame.iterrows():
            if u["district_joint"]:
                vals.append(type_joint_key(u["kreis"], u["kreis_name"],
                                           str(u.get("verband_name") or ""), rng))
            else:
                vals.append(type_key(u["ags"], u["name"], rng))
        return pd.Series(vals, index=frame.index, dtype=object)

    result: dict[str, Any] = {"rows": {}}
    answers = []
    for wave, spec in codebook["waves"].items():
        if spec["unit"] == "person":
            continue
        respond = rng.random(len(units)) >= unit_nr
        u = units.loc[respond].copy()
        # duplicate submissions (same answers, key typed again)
        dup = u.loc[~u["district_joint"] & (rng.random(len(u)) < 0.01)]
        u = pd.concat([u, dup]).reset_index(drop=True)
        u = u.iloc[rng.permutation(len(u))].reset_index(drop=True)
        concept = pd.DataFrame(index=u.index)
        concept["__key"] = keys_for(u)
        concept["__joint"] = u["district_joint"].astype(bool)
        concept["__vname"] = np.where(u["district_joint"], u["verband_name"].astype(str), "")
        concept["plan_use_band"] = u["plan_use_band_w2" if wave == "w2" else "plan_use_band_w5"]
        for col in (TARGET_STATUS + HOUSING + ["min_age", "arrival", "doc_mode", "organisation",
                                               "decision_maker"] + TOTAL_VARS
                    + [f"software_{i}" for i in SOFTWARE_ITEMS]):
            if col in u:
                concept[col] = u[col].to_numpy()
        concept["q13_traeger"] = np.where(u["organisation"].eq("traeger"),
                                          _get(u, "traeger_name", "").fillna("").astype(str), "")
        concept["F4_sw_txt"] = [OTHER_SOFTWARE[int(rng.integers(len(OTHER_SOFTWARE)))]
                                if s == "andere" else "" for s in u["software"]]
        # map key/flag/name columns onto the wave's raw names
        concept[spec["key"]] = concept["__key"]
        concept[spec["joint_flag"]] = concept["__joint"]
        concept[spec["joint_name"]] = concept["__vname"]
        # item non-response
        n = len(u)
        missing: dict[str, np.ndarray] = {}
        edu = set(codebook.get("education_items", []))
        sets: dict[str, list[str]] = {}
        for var, vs in spec["variables"].items():
            if vs["type"] in ("id", "key", "text", "flag"):
                continue
            h = vs.get("harmonised")
            if vs["type"] == "mr":
                sets.setdefault(vs["set"], []).append(var)
                continue
            if h in edu:
                missing[var] = _missing_matrix(n, edu_nr, rng, {-98: 0.55, -99: 0.45})
            elif h and h.startswith("employed_"):
                missing[var] = _missing_matrix(n, 0.6 * edu_nr, rng, {-98: 0.55, -99: 0.45})
            else:
                missing[var] = _missing_matrix(n, 0.04, rng, {-99: 0.5, -98: 0.5})
        for _set, members in sets.items():
            block = _missing_matrix(n, 0.03, rng, {-99: 1.0})
            for var in members:
                missing[var] = block.copy()
        if wave == "w1":  # software not applicable on paper
            paper = (u["doc_mode"] == "papier").to_numpy()
            for var in sets.get("software", []):
                missing[var] = np.where(paper & (missing[var] == 0), -97, missing[var])
            missing["F3_doku"] = np.where(missing["F3_doku"] < 0, missing["F3_doku"], 0)
        # a district office answering for all members cannot give one municipality's share
        # of clients with an integration plan: "weiß nicht"
        joint_rows = u["district_joint"].to_numpy(dtype=bool)
        for var, vs in spec["variables"].items():
            if vs.get("harmonised") == "plan_use_band":
                missing[var] = np.where(joint_rows, -98, missing[var])
        if wave == "w5":  # questionnaire version without the target-group block
            old = rng.random(n) < 0.10
            for var, vs in spec["variables"].items():
                if vs.get("set") in ("status", "housing") or var in ("zg_alter", "zg_ankunft"):
                    missing[var] = np.where(old, -96, missing[var])
        frame, labels, vlabels, mranges = _encode_wave(wave, spec, concept, missing, codebook)
        path = out_dir / SOURCES[spec["raw"]].path
        _write(frame, path, spec["format"], spec["title"], labels, vlabels, mranges)
        result[spec["raw"]] = path
        result["rows"][wave] = len(frame)
        # ground truth of what each municipality's unit answered (before item non-response)
        harm = [vs["harmonised"] for vs in spec["variables"].values() if vs.get("harmonised")]
        truth = concept[[h for h in harm if h in concept]].copy()
        truth["unit_id"] = u["unit_id"].to_numpy()
        truth["joint"] = u["district_joint"].to_numpy()
        truth["members"] = u["members"].to_numpy()
        truth = truth.drop_duplicates("unit_id").explode("members").rename(
            columns={"members": "ags"})
        long = truth.melt(id_vars=["unit_id", "joint", "ags"], var_name="variable",
                          value_name="value")
        long.insert(0, "wave", wave)
        answers.append(long)
        log.info("survey %s: %d rows (%d units did not answer)", wave, len(frame),
                 int((~respond).sum()))

    # wave 4: one row per IM person ------------------------------------------------------
    spec = codebook["waves"]["w4"]
    frame4, persons = _persons(m, posts, rng, unit_nr)
    missing = {}
    for var, vs in spec["variables"].items():
        if vs["type"] in ("numeric", "integer", "categorical"):
            missing[var] = _missing_matrix(len(frame4), 0.05, rng, {-99: 0.5, -98: 0.5})
    frame, labels, vlabels, mranges = _encode_wave("w4", spec, frame4, missing, codebook)
    path = out_dir / SOURCES[spec["raw"]].path
    _write(frame, path, spec["format"], spec["title"], labels, vlabels, mranges)
    result[spec["raw"]] = path
    result["rows"]["w4"] = len(frame)
    result["persons"] = persons
    result["answers"] = pd.concat(answers, ignore_index=True)
    return result


def _persons(m: pd.DataFrame, posts: pd.DataFrame, rng: np.random.Generator,
             unit_nr: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """IM persons active in June 2019, from the posts (job sharing splits a full post)."""
    p = posts.copy()
    start = pd.to_datetime(p["start"])
    end = pd.to_datetime(p["end"]) if "end" in p else pd.Series(pd.NaT, index=p.index)
    active = (start <= pd.Timestamp("2019-06-30")) & (end.isna() | (end >= pd.Timestamp("2019-06-01")))
    p = p.loc[active].copy()
    p["start"] = start[active]
    p = p.sort_values(["post_id", "share", "ags"], ascending=[True, False, True])
    main = p.drop_duplicates("post_id").reset_index(drop=True)
    rows = []
    info = m.set_index("ags")
    for _, r in main.iterrows():
        vza = float(r["vza_post"])
        n_pers = 2 if (vza >= 0.99 and rng.random() < 0.12) else 1
        for _k in range(n_pers):
            rows.append({**r.to_dict(), "person_vza": vza / n_pers})
    pers = pd.DataFrame(rows)
    if pers.empty:
        pers = pd.DataFrame(columns=list(main.columns) + ["person_vza"])
    pers = pers.loc[rng.random(len(pers)) >= unit_nr].reset_index(drop=True)
    emp = pers["employer"].astype(str).str.lower()
    pers["organisation"] = np.where(emp.str.contains("land"), "landratsamt",
                                    np.where(emp.str.contains("gemeinde|stadt"), "gemeinde",
                                             "traeger"))
    keys = []
    for _, r in pers.iterrows():
        ags = str(r["ags"])
        name = str(info.at[ags, "name"]) if ags in info.index else ags
        if r["organisation"] == "landratsamt" and rng.random() < 0.4 and ags in info.index:
            keys.append(type_joint_key(str(info.at[ags, "kreis"]), str(info.at[ags, "kreis_name"]),
                                       str(info.at[ags, "verband_name"] or ""), rng))
        else:
            keys.append(type_key(ags, name, rng))
    n = len(pers)
    q = np.array(["soziale_arbeit", "anderes_studium", "ausbildung", "sonstiges"])
    band = pers["ags"].astype(str).map(info["plan_use_band"]) if "plan_use_band" in info \
        else pd.Series(None, index=pers.index)
    frame = pd.DataFrame({
        "A1_einsatzort": keys,
        "A2_arbeitgeber": pers["organisation"].to_numpy(),
        "im_vza_w4": np.round(pers["person_vza"].astype(float).to_numpy(), 2),
        "A4_beginn": [f"{d.month:02d}.{d.year}" if rng.random() > 0.1 else f"{d.year}"
                      for d in pers["start"]],
        "A5_quali": q[rng.choice(4, size=n, p=[0.6, 0.2, 0.15, 0.05])],
        "im_caseload_w4": rng.poisson(60 * pers["person_vza"].astype(float).clip(lower=0.1)),
        "plan_use_band": band.to_numpy(),
        "im_doc_hours_w4": np.round(rng.gamma(4.0, 1.5, n), 1),
    })
    persons = pers[["post_id", "ags", "organisation", "person_vza"]].copy()
    persons["typed_key"] = keys
    return frame, persons


def variables_markdown() -> str:
    """The per-wave variable list (for data/raw/README.md)."""
    cb = load_codebook()
    lines = []
    for wave, spec in cb["waves"].items():
        lines.append(f"- **{wave}** `{SOURCES[spec['raw']].path}` ({spec['unit']} rows): "
                     + ", ".join(f"`{v}`" for v in spec["variables"]))
    return "\n".join(lines)

