"""Survey harmonisation: five cleaned waves -> one row per municipality of the frame.

Reads the cleaned wave files of ``ingest_survey`` (:func:`ifm_eval.ingest.survey_read.
wave_from_frame`), matches the typed keys (:func:`ifm_eval.ingest.keys.match_keys`), expands
district answers to the Verband's members (flag ``joint_<wave>``), resolves duplicates (own
answer beats a district answer; then the surer key match, then the most complete row), and
builds one row per municipality of the reference frame. Nothing is dropped silently:
unmatched and ambiguous keys go to the key report and every step to the lineage table. The
item non-response table of all waves is written beside it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ifm_eval.frame import load_frame
from ifm_eval.ingest.keys import match_keys
from ifm_eval.ingest.survey_read import (
    VALUE_TYPES,
    SurveyError,
    WaveData,
    item_nonresponse_wave,
    load_codebook,
    wave_from_frame,
)
from ifm_eval.lineage import Lineage
from ifm_eval.stage_io import StageIO

log = logging.getLogger(__name__)

STAGE = "harmonise_surveys"
#: how sure a key match is (lower = surer), used to resolve duplicate answers
METHOD_QUALITY = {"exact": 0, "zero_padded": 0, "name": 1, "verband": 1, "kreis_key": 1,
                  "fuzzy": 2}


def load_verbaende(members: pd.DataFrame) -> pd.DataFrame:
    """Verband membership (``verband_id, verband_name, ags``) from the processed funding
    members (``ingest_funding_applications``)."""
    need = {"verband_id", "verband_name", "ags"}
    if not need <= set(members.columns):
        raise SurveyError(f"funding members lack column(s) {sorted(need - set(members.columns))}")
    return members[["verband_id", "verband_name", "ags"]].astype({"ags": str})


def _match_wave(wd: WaveData, spec: dict, frame: pd.DataFrame, verbaende: pd.DataFrame | None,
                threshold: float, lin: Lineage) -> pd.DataFrame:
    """Matches for every row of a wave (expanded rows for district answers)."""
    key = wd.frame[spec["key"]]
    mk = match_keys(key, frame, threshold=threshold, verbaende=verbaende)
    n = len(wd.frame)
    joint = (wd.values[spec["joint_flag"]].fillna(False).to_numpy(dtype=bool)
             if spec.get("joint_flag") else np.zeros(n, dtype=bool))
    # how the Verband name of each district answer matched ("" = not a district answer)
    joint_name = np.full(n, "", dtype=object)
    if spec.get("joint_name") and joint.any() and verbaende is not None:
        names = wd.frame[spec["joint_name"]].where(pd.Series(joint, index=wd.frame.index), "")
        mj = match_keys(names.reset_index(drop=True), frame, threshold=threshold,
                        verbaende=verbaende)
        use = set(mj.loc[mj["method"].eq("verband"), "input_row"])
        first = mj.drop_duplicates("input_row").set_index("input_row")
        for row in np.flatnonzero(joint):
            if row in first.index:
                m = first.at[row, "method"]
                joint_name[row] = ("verband" if m == "verband" else
                                   m if m in ("unmatched", "ambiguous") else f"not a Verband ({m})")
        bad = [int(r) for r in np.flatnonzero(joint) if joint_name[r] != "verband"]
        if bad:
            shown = [f"row {r + 1}: {str(names.iloc[r])!r}" for r in bad[:10]]
            lin.add(wd.wave, "district answer: Verband name not matched", n, n, "match",
                    f"{len(bad)} district answer(s) (joint flag set) whose Verband name matches no "
                    f"Verband of the funding data ({'; '.join(shown)}): matched by their key "
                    "column alone (a Kreis key covers the district's Verband; a key that matches "
                    "nothing is listed in the key report as unmatched)", len(bad))
        if use:
            mk = pd.concat([mk[~mk["input_row"].isin(use)], mj[mj["input_row"].isin(use)]],
                           ignore_index=True)
    # a Kreis-key expansion of a district answer covers the district's Verband only
    if verbaende is not None and len(mk):
        vmap = verbaende.drop_duplicates("ags").set_index("ags")["verband_id"]
        mk = mk.reset_index(drop=True)
        kk = mk["method"].eq("kreis_key")
        if kk.any():
            keep = pd.Series(True, index=mk.index)
            for _row, grp in mk[kk].groupby("input_row"):
                vids = grp["ags"].map(vmap)
                if vids.notna().any():
                    main = vids.value_counts().idxmax()
                    keep[grp.index] = vids.eq(main).to_numpy()
            dropped = int((~keep).sum())
            if dropped:
                lin.add(wd.wave, "kreis expansion restricted to the district Verband",
                        len(mk), len(mk) - dropped, "expand",
                        "Kreis key of a district answer: members of other Verbände of the Kreis "
                        "answered (or not) for themselves", dropped)
            mk = mk[keep]
    mk = mk.sort_values(["input_row", "ags"], na_position="last").reset_index(drop=True)
    mk["joint_flag"] = joint[mk["input_row"].to_numpy()] if len(mk) else []
    mk["joint_name_match"] = joint_name[mk["input_row"].to_numpy()] if len(mk) else []
    mk.insert(0, "wave", wd.wave)
    mk["file"] = str(wd.path)
    return mk


def _per_ags(wd: WaveData, spec: dict, matches: pd.DataFrame, lin: Lineage) -> pd.DataFrame:
    """One row per matched municipality with the wave's harmonised values."""
    ok = matches[matches["ags"].notna()].copy()
    n_unmatched = int(matches.loc[matches["ags"].isna(), "input_row"].nunique())
    if n_unmatched:
        lin.add(wd.wave, "key matching", len(wd.frame), len(wd.frame) - n_unmatched, "match",
                "unmatched or ambiguous key: row listed in key_report, not used", n_unmatched)
    ok["district"] = ok["joint_flag"] | ok["expanded"]
    vals = wd.values.iloc[ok["input_row"].to_numpy()].reset_index(drop=True)
    rsn = wd.reasons.iloc[ok["input_row"].to_numpy()].reset_index(drop=True)
    ok = ok.reset_index(drop=True)
    multi = (ok["n_members"] > 1).to_numpy()
    for var, vs in spec["variables"].items():
        if vs.get("on_joint") == "total" and var in vals and multi.any():
            vals.loc[multi, var] = np.nan
            rsn.loc[multi, var] = "verband_total"
    if spec["unit"] == "person":
        return _aggregate_persons(wd, spec, ok, vals, lin)
    # completeness for duplicate resolution
    value_vars = [v for v, vs in spec["variables"].items() if vs["type"] in VALUE_TYPES]
    ok["_n_valid"] = rsn[value_vars].isna().sum(axis=1).to_numpy() if value_vars else 0
    ok["_own"] = ~ok["district"]
    ok["_quality"] = ok["method"].map(METHOD_QUALITY).fillna(9)
    ok = ok.sort_values(["ags", "_own", "_quality", "_n_valid", "input_row"],
                        ascending=[True, False, True, False, True])
    first = ~ok["ags"].duplicated()
    n_dup = int((~first).sum())
    if n_dup:
        lin.add(wd.wave, "duplicate answers", len(ok), int(first.sum()), "drop",
                "several answers for one municipality: own answer beats district answer, then "
                "the surer key match (exact > name > fuzzy), then the most complete row, then "
                "the first row", n_dup)
    ok = ok[first]
    idx = ok.index.to_numpy()
    out = pd.DataFrame({"ags": ok["ags"].to_numpy(),
                        f"joint_{wd.wave}": ok["district"].to_numpy(dtype=bool),
                        f"row_{wd.wave}": ok["input_row"].to_numpy() + 1,
                        f"match_{wd.wave}": ok["method"].to_numpy()})
    for var, vs in spec["variables"].items():
        h = vs.get("harmonised")
        if not h:
            continue
        out[h] = vals.loc[idx, var].to_numpy()
        out[f"{h}__missing"] = rsn.loc[idx, var].to_numpy()
    return out


def _aggregate_persons(wd: WaveData, spec: dict, ok: pd.DataFrame, vals: pd.DataFrame,
                       lin: Lineage) -> pd.DataFrame:
    w = 1.0 / ok["n_members"].clip(lower=1).astype(float)
    base = pd.DataFrame({"ags": ok["ags"], "w": w})
    out = base.groupby("ags")["w"].sum().rename(spec.get("person_count", f"persons_{wd.wave}"))
    res = [out]
    for var, vs in spec["variables"].items():
        h = vs.get("harmonised")
        if not h:
            continue
        if vs.get("aggregate") == "mode":  # categorical: weighted most frequent answer
            d = base.assign(v=vals[var].to_numpy()).dropna(subset=["v"])
            if d.empty:
                res.append(pd.Series(dtype=object, name=h))
                continue
            tot = d.groupby(["ags", "v"])["w"].sum().reset_index()
            tot = tot.sort_values(["ags", "w", "v"], ascending=[True, False, True])
            res.append(tot.drop_duplicates("ags").set_index("ags")["v"].rename(h))
            continue
        x = pd.to_numeric(vals[var], errors="coerce")
        d = base.assign(x=x, wx=x * base["w"], wv=base["w"].where(x.notna()))
        g = d.groupby("ags")
        if vs.get("aggregate", "sum") == "sum":
            res.append(g["wx"].sum(min_count=1).rename(h))
        else:
            res.append((g["wx"].sum(min_count=1) / g["wv"].sum(min_count=1)).rename(h))
    agg = pd.concat(res, axis=1)
    agg.index.name = "ags"
    agg = agg.reset_index()
    agg[f"joint_{wd.wave}"] = agg["ags"].map(ok.groupby("ags")["expanded"].any()).astype(bool)
    lin.add(wd.wave, "aggregate persons", len(ok), len(agg), "aggregate",
            "IM persons aggregated per municipality (district-level persons split equally "
            "over the Verband/Kreis members)")
    return agg


def harmonise_surveys(
    waves: dict[str, WaveData],
    frame: pd.DataFrame,
    verbaende: pd.DataFrame | None = None,
    codebook: dict | None = None,
    threshold: float = 90,
) -> tuple[pd.DataFrame, pd.DataFrame, Lineage]:
    """Build one row per municipality of ``frame`` from the cleaned ``waves``.

    Returns ``(harmonised, key_report, lineage)``. Columns of ``harmonised``: ``ags``; every
    harmonised variable of the codebook with ``<var>__missing`` (reason when missing) and,
    for variables with several source waves, ``<var>__wave``; per wave ``answered_<w>``,
    ``joint_<w>`` (answer given by the district office for all members), ``match_<w>`` and
    ``row_<w>``; ``district_answer`` (any harmonised answer came from a district office for
    all members). Without ``verbaende`` (no funding data) Verband names cannot be matched
    and Kreis keys expand to the whole Kreis (recorded in the lineage).
    """
    cb = codebook or load_codebook()
    lin = Lineage(STAGE)
    if verbaende is None:
        msg = "no funding data found: Verband names cannot be matched, Kreis keys expand to the whole Kreis"
        log.warning(msg)
        lin.add("funding", "verbaende", 0, 0, "flag", msg)
    unknown = sorted(set(waves) - set(cb["waves"]))
    if unknown:
        raise SurveyError(f"wave(s) {unknown} not in the codebook ({', '.join(cb['waves'])})")
    reports = []
    per_wave: dict[str, pd.DataFrame] = {}
    for wave, spec in cb["waves"].items():
        if wave not in waves:
            raise SurveyError(f"wave {wave} of the codebook not given")
        wd = waves[wave]
        mk = _match_wave(wd, spec, frame, verbaende, threshold, lin)
        n_exp = int(mk["expanded"].sum())
        if n_exp:
            lin.add(wave, "expand district answers", int(mk["input_row"].nunique()), len(mk),
                    "expand", "Kreis key / Verband answer expanded to its member municipalities",
                    n_exp)
        reports.append(mk)
        per_wave[wave] = _per_ags(wd, spec, mk, lin)

    out = frame[["ags"]].copy()
    for wave, df in per_wave.items():
        meta_cols = [c for c in df.columns if c.startswith(("joint_", "row_", "match_"))]
        out = out.merge(df[["ags", *meta_cols]], on="ags", how="left")
        out[f"answered_{wave}"] = out["ags"].isin(df["ags"])
        out[f"joint_{wave}"] = out[f"joint_{wave}"].astype("boolean").fillna(False).astype(bool)
    # combine sources per harmonised variable
    result = out[["ags"]].copy()
    wave_cols = [c for c in out.columns if c.startswith(("answered_", "joint_", "match_", "row_"))]
    for h, hs in cb["harmonised"].items():
        if hs.get("derive") == "difference":
            continue
        if hs.get("set"):
            continue
        srcs = hs.get("sources", [])
        value = pd.Series(None, index=out.index, dtype=object)
        reason = pd.Series(None, index=out.index, dtype=object)
        src_wave = pd.Series(None, index=out.index, dtype=object)
        for w in srcs:
            cand = _wave_col(out, per_wave, w, h)
            if cand is None:
                continue
            rcol = _wave_col(out, per_wave, w, f"{h}__missing")
            take = value.isna() & cand.notna()
            value[take] = cand[take]
            src_wave[take] = w
            if rcol is not None:
                fill = reason.isna() & value.isna() & rcol.notna()
                reason[fill] = rcol[fill]
        reason[value.notna()] = None
        unanswered = value.isna() & reason.isna()
        reason[unanswered] = "no_answer"
        result[h] = _typed(value, hs["type"])
        result[f"{h}__missing"] = reason
        if len(srcs) > 1:
            result[f"{h}__wave"] = src_wave
    for h, hs in cb["harmonised"].items():
        if hs.get("set"):
            items = [c for c in result.columns
                     if c.startswith(f"{hs['set']}_") and not c.endswith(("__missing", "__wave"))]
            result[h] = _single_from_set(result[items], f"{hs['set']}_")
            result[f"{h}__missing"] = np.where(result[h].isna(),
                                               result[f"{items[0]}__missing"], None)
        if hs.get("derive") == "difference":
            a, b = hs["of"]
            result[h] = result[a] - result[b]
            result[f"{h}__missing"] = np.where(result[h].isna(),
                                               result[f"{a}__missing"].fillna(result[f"{b}__missing"]),
                                               None)
    result = result.join(out[wave_cols])
    joint_cols = [f"joint_{w}" for w in per_wave]
    result["district_answer"] = result[joint_cols].any(axis=1)
    lin.add("all", "one row per municipality", len(frame), len(result), "aggregate",
            "harmonised survey variables for every municipality of the reference frame "
            "(unanswered = missing with reason no_answer)", 0)
    key_report = pd.concat(reports, ignore_index=True)
    key_report["input"] = key_report["input"].astype(str)
    bad = key_report.drop_duplicates(["wave", "input_row"])
    bad = bad[bad["status"].isin(["unmatched", "ambiguous"])]
    if len(bad):
        log.warning("survey keys: %d row(s) unmatched or ambiguous (see key report)", len(bad))
    return result, key_report, lin


def _wave_col(out: pd.DataFrame, per_wave: dict, wave: str, col: str) -> pd.Series | None:
    """Column ``col`` contributed by ``wave`` (merge suffixes avoided by renaming)."""
    if col not in per_wave[wave].columns:
        return None
    s = per_wave[wave].set_index("ags")[col]
    return out["ags"].map(s)


def _typed(value: pd.Series, t: str) -> pd.Series:
    if t == "boolean":
        return pd.array([None if pd.isna(x) else bool(x) for x in value], dtype="boolean")
    if t == "numeric":
        return pd.to_numeric(value, errors="coerce").astype(float)
    return value.astype(object).where(value.notna(), None)


def _single_from_set(items: pd.DataFrame, prefix: str) -> pd.Series:
    def one(row):
        ticked = [c[len(prefix):] for c, v in row.items() if not pd.isna(v) and bool(v)]
        if not ticked:
            return None
        return ticked[0] if len(ticked) == 1 else "mehrere"
    return items.astype(object).apply(one, axis=1)


# --------------------------------------------------------------------------- item nonresponse


def item_nonresponse(waves: dict[str, WaveData], codebook: dict | None = None) -> pd.DataFrame:
    """Item non-response by wave and variable: n, missing counts by reason, share missing."""
    cb = codebook or load_codebook()
    frames = [item_nonresponse_wave(waves[w], cb) for w in cb["waves"] if w in waves]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def read_waves(files: dict[str, Path], codebook: dict | None = None) -> dict[str, WaveData]:
    """The cleaned wave files (``{wave: parquet}``) as :class:`WaveData`."""
    cb = codebook or load_codebook()
    return {w: wave_from_frame(pd.read_parquet(p), w, cb) for w, p in files.items()}


def run(cfg: dict[str, Any], io: StageIO) -> pd.DataFrame:
    """The ``harmonise_surveys`` job. Inputs: ``wave`` (the cleaned wave files, one per
    codebook wave, named ``survey_<wave>.parquet``), ``frame``, ``members`` (processed funding
    members). Outputs: ``harmonised``, ``key_report``, ``item_nonresponse``, ``lineage``."""
    io.require(inputs=("wave", "frame", "members"),
               outputs=("harmonised", "key_report", "item_nonresponse", "lineage"))
    cb = load_codebook()
    files = {}
    for p in io.input_list("wave"):
        w = p.stem.removeprefix("survey_")
        if w not in cb["waves"]:
            raise SurveyError(f"{p}: not a cleaned wave file survey_<wave>.parquet of the codebook")
        files[w] = p
    waves = read_waves(files, cb)
    frame = load_frame(io.input("frame"))
    verbaende = load_verbaende(pd.read_parquet(io.input("members")))
    threshold = float(cfg["panel"]["fuzzy_match_threshold"])
    result, key_report, lin = harmonise_surveys(waves, frame, verbaende, cb, threshold)
    result.to_parquet(io.output("harmonised"), index=False)
    key_report.to_csv(io.output("key_report"), index=False)
    item_nonresponse(waves, cb).to_csv(io.output("item_nonresponse"), index=False)
    lin.write(io.output("lineage"))
    bad = key_report.drop_duplicates(["wave", "input_row"])
    n_bad = int(bad["status"].isin(["unmatched", "ambiguous"]).sum())
    log.info("harmonised %d waves -> %d municipalities; %d key(s) unmatched or ambiguous",
             len(waves), len(result), n_bad)
    return result
