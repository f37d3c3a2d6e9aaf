"""Survey readers and harmonisation (the five waves of the short report).

Everything wave-specific lives in the declarative codebook ``codebook/surveys.yaml``:
variable names, types, codes, value → harmonised-value maps, ranges, multiple-response
sets, which variable is the typed key, the joint-answer flag and Verband name, and which
waves feed which harmonised variable. Adding a wave or renaming a variable is a codebook
edit.

Reading (:func:`read_wave`):

- checks the file before parsing: missing, empty, wrong type (magic bytes), and truncated
  (row count in the header vs rows read) give a :class:`SurveyError` naming the file;
- validates against the codebook schema: every declared variable present (a renamed
  variable is reported with the unexpected names found), numeric types, allowed codes,
  ranges, integer counts, unique ids; a violation names file, data row (1-based) and
  column. An unknown code is an error by default, or — with ``on_unknown_code="missing"`` —
  set missing with reason ``unknown_code`` and logged as a decision;
- value labels become pandas categoricals (labels from the file, codebook as fallback);
  negative codes become missing with the reason kept in ``<var>__missing``
  (``refused`` / ``dont_know`` / ``not_applicable`` / ``not_asked``; ``system`` for an
  empty cell); multiple-response items become nullable booleans.

Harmonising (:func:`harmonise_surveys`) matches the typed keys (:func:`ifm_eval.ingest.keys.
match_keys`), expands district answers to the Verband's members (flag ``joint_<wave>``),
resolves duplicates (own answer beats a district answer; then the most complete row), and
builds one row per municipality of the reference frame. Nothing is dropped silently:
unmatched and ambiguous keys go to the key report and every step to the lineage table.
"""

from __future__ import annotations

import argparse
import copy
import difflib
import logging
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyreadstat
import yaml

from ifm_eval import paths
from ifm_eval.config import load_config
from ifm_eval.ingest.keys import match_keys
from ifm_eval.lineage import Lineage

log = logging.getLogger(__name__)

STAGE = "surveys"
VALUE_TYPES = ("categorical", "mr", "numeric", "integer")
REASONS = ("refused", "dont_know", "not_applicable", "not_asked")
#: how sure a key match is (lower = surer), used to resolve duplicate answers
METHOD_QUALITY = {"exact": 0, "zero_padded": 0, "name": 1, "verband": 1, "kreis_key": 1,
                  "fuzzy": 2}


class SurveyError(ValueError):
    """A survey file cannot be read or violates its declared schema."""


# --------------------------------------------------------------------------- codebook
@lru_cache(maxsize=4)
def _load_codebook_cached(path: str | None) -> dict:
    if path is None:
        text = (resources.files("ifm_eval") / "codebook" / "surveys.yaml").read_text("utf-8")
        where = "codebook/surveys.yaml"
    else:
        text = Path(path).read_text(encoding="utf-8")
        where = str(path)
    cb = yaml.safe_load(text)
    _check_codebook(cb, where)
    return cb


def load_codebook(path: str | Path | None = None) -> dict:
    """The survey codebook (validated; a deep copy, safe to modify)."""
    return copy.deepcopy(_load_codebook_cached(None if path is None else str(path)))


def _check_codebook(cb: dict, where: str) -> None:
    for top in ("missing_codes", "waves", "harmonised"):
        if top not in cb:
            raise SurveyError(f"{where}: missing top-level key {top!r}")
    harmonised = set(cb["harmonised"])
    for wave, spec in cb["waves"].items():
        for k in ("raw", "format", "unit", "key", "variables"):
            if k not in spec:
                raise SurveyError(f"{where}: wave {wave}: missing {k!r}")
        if spec["raw"] not in paths.RAW_FILES:
            raise SurveyError(f"{where}: wave {wave}: raw {spec['raw']!r} not in paths.RAW_FILES")
        for var, vs in spec["variables"].items():
            t = vs.get("type")
            if t not in ("id", "key", "flag", "text", *VALUE_TYPES):
                raise SurveyError(f"{where}: {wave}.{var}: unknown type {t!r}")
            if t == "categorical" and not vs.get("codes"):
                raise SurveyError(f"{where}: {wave}.{var}: categorical without codes")
            h = vs.get("harmonised")
            if h is not None and h not in harmonised:
                raise SurveyError(f"{where}: {wave}.{var}: harmonised {h!r} not declared")
        for k in ("key", "joint_flag", "joint_name"):
            if spec.get(k) and spec[k] not in spec["variables"]:
                raise SurveyError(f"{where}: wave {wave}: {k} {spec[k]!r} not a variable")


def _missing_reasons(cb: dict) -> dict[int, str]:
    return {int(k): v["reason"] for k, v in cb["missing_codes"].items()}


# --------------------------------------------------------------------------- reading
@dataclass
class WaveData:
    """One wave read and validated."""

    wave: str
    path: Path
    frame: pd.DataFrame          # cleaned: labels as categoricals, <var>__missing reasons
    values: pd.DataFrame         # harmonised values per raw variable (codes → values)
    reasons: pd.DataFrame        # missing reason per raw value variable (None = valid)
    decisions: list[str] = field(default_factory=list)
    value_labels: dict = field(default_factory=dict)


_MAGIC = {"sav": (b"$FL2", b"$FL3"), "dta": (b"<stata_dta>",)}


def _check_file(path: Path, fmt: str) -> None:
    if not path.exists():
        raise SurveyError(f"{path}: survey file not found")
    size = path.stat().st_size
    if size == 0:
        raise SurveyError(f"{path}: empty file (0 bytes)")
    with path.open("rb") as fh:
        head = fh.read(16)
    ok = any(head.startswith(m) for m in _MAGIC[fmt])
    if fmt == "dta" and not ok and head[:1] and 104 <= head[0] <= 115:
        ok = True  # old binary Stata formats (dta 104-115)
    if not ok:
        kind = ("SPSS .sav" if head.startswith((b"$FL2", b"$FL3")) else
                "Stata .dta" if head.startswith(b"<stata_dta>") else
                "zip/xlsx" if head.startswith(b"PK") else
                "text/CSV" if all(32 <= b < 127 or b in (9, 10, 13) for b in head) else
                "unknown binary")
        raise SurveyError(
            f"{path}: wrong file type: expected {'SPSS .sav' if fmt == 'sav' else 'Stata .dta'}"
            f" per codebook, found {kind} (first bytes {head[:8]!r})")


def _read_raw(path: Path, fmt: str) -> tuple[pd.DataFrame, Any]:
    reader = pyreadstat.read_sav if fmt == "sav" else pyreadstat.read_dta
    kwargs = {"user_missing": True} if fmt == "sav" else {}
    try:
        df, meta = reader(str(path), **kwargs)
    except Exception as exc:  # pyreadstat.ReadstatError and friends
        raise SurveyError(f"{path}: cannot read {fmt} file (truncated or corrupt?): {exc}") from exc
    expected = getattr(meta, "number_rows", None)
    if expected is not None and expected >= 0 and expected != len(df):
        raise SurveyError(f"{path}: truncated file: header declares {expected} rows, "
                          f"{len(df)} could be read")
    return df, meta


def _bad(path: Path, row: int, var: str, msg: str) -> SurveyError:
    return SurveyError(f"{path}: row {row + 1}, column {var!r}: {msg}")


def read_wave(
    path: str | Path,
    wave: str,
    codebook: dict | None = None,
    on_unknown_code: str = "error",
) -> WaveData:
    """Read and validate one survey wave (see module doc). Raises :class:`SurveyError`."""
    cb = codebook or load_codebook()
    if wave not in cb["waves"]:
        raise SurveyError(f"unknown wave {wave!r} (codebook has {', '.join(cb['waves'])})")
    if on_unknown_code not in ("error", "missing"):
        raise ValueError("on_unknown_code must be 'error' or 'missing'")
    spec = cb["waves"][wave]
    path = Path(path)
    _check_file(path, spec["format"])
    df, meta = _read_raw(path, spec["format"])
    decisions: list[str] = []
    declared = list(spec["variables"])
    missing = [v for v in declared if v not in df.columns]
    extra = [c for c in df.columns if c not in spec["variables"]]
    if missing:
        hints = []
        for v in missing:
            close = difflib.get_close_matches(v, extra, n=1, cutoff=0.5)
            hints.append(f"{v!r}" + (f" (renamed to {close[0]!r}?)" if close else ""))
        raise SurveyError(
            f"{path}: wave {wave}: declared variable(s) missing: {', '.join(hints)}; "
            f"unexpected variable(s) in file: {extra}. If a variable was renamed, edit "
            f"codebook/surveys.yaml")
    if extra:
        msg = f"{path}: wave {wave}: ignoring undeclared variable(s) {extra}"
        log.warning(msg)
        decisions.append(msg)
    if len(df) == 0:
        msg = f"{path}: wave {wave}: file has the declared variables but no rows"
        log.warning(msg)
        decisions.append(msg)

    reasons_map = _missing_reasons(cb)
    file_labels = getattr(meta, "variable_value_labels", {}) or {}
    clean: dict[str, Any] = {}
    values: dict[str, Any] = {}
    reasons: dict[str, Any] = {}
    n = len(df)
    for var, vs in spec["variables"].items():
        t = vs["type"]
        col = df[var]
        if t in ("key", "text"):
            s = col.astype(object).where(col.notna(), "")
            s = s.map(lambda x: str(x).strip())
            clean[var] = s.astype(object)
            values[var] = clean[var]
            continue
        num = pd.to_numeric(col, errors="coerce")
        if col.dtype == object or str(col.dtype).startswith(("str", "string")):
            bad = num.isna() & col.astype(str).str.strip().ne("") & col.notna()
            if bad.any():
                r = int(np.flatnonzero(bad.to_numpy())[0])
                raise _bad(path, r, var, f"text {col.iloc[r]!r} in a numeric variable")
        arr = num.to_numpy(dtype=float)
        if t == "id":
            dup = pd.Series(arr).duplicated() & ~np.isnan(arr)
            if dup.any():
                r = int(np.flatnonzero(dup.to_numpy())[0])
                raise _bad(path, r, var, f"duplicate id {arr[r]:g}")
            clean[var] = num
            continue
        if t == "flag":
            allowed = {float(k) for k in vs["codes"]}
            badm = ~np.isnan(arr) & ~np.isin(arr, list(allowed))
            if badm.any():
                r = int(np.flatnonzero(badm)[0])
                raise _bad(path, r, var, f"flag must be one of {sorted(allowed)}, got {arr[r]:g}")
            if np.isnan(arr).any():
                msg = (f"{path}: {var}: {int(np.isnan(arr).sum())} empty flag(s) read as 0 "
                       f"(own answer)")
                log.info(msg)
                decisions.append(msg)
            flag = pd.array(np.nan_to_num(arr, nan=0.0) == 1.0, dtype="boolean")
            clean[var] = flag
            values[var] = flag
            continue
        # value variables: categorical / mr / numeric / integer
        reason = np.full(n, None, dtype=object)
        neg = arr < 0
        for code, why in reasons_map.items():
            reason[arr == code] = why
        reason[np.isnan(arr)] = "system"
        unknown_neg = neg & ~np.isin(arr, list(reasons_map))
        if t == "categorical":
            allowed = np.array([float(k) for k in vs["codes"]])
            valid = ~np.isnan(arr) & ~neg & np.isin(arr, allowed)
            unknown = (~np.isnan(arr) & ~neg & ~valid) | unknown_neg
            allowed_txt = f"allowed {sorted(int(k) for k in vs['codes'])} or missing codes"
        elif t == "mr":
            valid = ~np.isnan(arr) & np.isin(arr, [0.0, 1.0])
            unknown = (~np.isnan(arr) & ~neg & ~valid) | unknown_neg
            allowed_txt = "allowed 0/1 or missing codes"
        else:
            valid = ~np.isnan(arr) & ~neg
            unknown = unknown_neg
            allowed_txt = "negative values must be missing codes"
        if unknown.any():
            r = int(np.flatnonzero(unknown)[0])
            msg = (f"{path}: row {r + 1}, column {var!r}: unknown code {arr[r]:g} "
                   f"({allowed_txt}); {int(unknown.sum())} row(s) affected")
            if on_unknown_code == "error":
                raise SurveyError(msg)
            log.warning("%s -> set missing (reason unknown_code)", msg)
            decisions.append(msg + " -> set missing (reason unknown_code)")
            reason[unknown] = "unknown_code"
        if t in ("numeric", "integer"):
            lo, hi = vs.get("min"), vs.get("max")
            out_rng = valid & (((arr < lo) if lo is not None else False)
                               | ((arr > hi) if hi is not None else False))
            if np.any(out_rng):
                r = int(np.flatnonzero(out_rng)[0])
                raise _bad(path, r, var, f"value {arr[r]:g} outside [{lo}, {hi}]")
            if t == "integer":
                frac = valid & (np.abs(arr - np.round(arr)) > 1e-9)
                if frac.any():
                    r = int(np.flatnonzero(frac)[0])
                    raise _bad(path, r, var, f"count {arr[r]:g} is not an integer")
        reason[valid] = None
        reasons[var] = reason
        vals = np.where(valid, arr, np.nan)
        if t == "categorical":
            lab = {float(k): v for k, v in (file_labels.get(var) or {}).items()}
            codes_sorted = sorted(float(k) for k in vs["codes"])
            labels = [lab.get(c, vs["codes"][int(c)].get("label", str(int(c))))
                      for c in codes_sorted]
            cat = pd.Categorical.from_codes(
                [codes_sorted.index(v) if not np.isnan(v) else -1 for v in vals],
                categories=pd.Index(labels).drop_duplicates() if len(set(labels)) == len(labels)
                else [f"{int(c)}: {lb}" for c, lb in zip(codes_sorted, labels, strict=False)])
            clean[var] = cat
            vmap = {float(k): v["value"] for k, v in vs["codes"].items()}
            values[var] = pd.Series([vmap.get(v) if not np.isnan(v) else None for v in vals],
                                    dtype=object)
        elif t == "mr":
            b = pd.array([None if np.isnan(v) else bool(v == 1.0) for v in vals],
                         dtype="boolean")
            clean[var] = b
            values[var] = b
        else:
            scale = float(vs.get("scale", 1.0))
            clean[var] = vals
            values[var] = vals * scale
        clean[f"{var}__missing"] = pd.Categorical(
            reason, categories=[*REASONS, "system", "unknown_code"])
    frame = pd.DataFrame(clean, index=range(n))
    vals_df = pd.DataFrame(values, index=range(n))
    reasons_df = pd.DataFrame(reasons, index=range(n))
    frame.attrs = {"wave": wave, "path": str(path)}
    return WaveData(wave, path, frame, vals_df, reasons_df, decisions,
                    {k: dict(v) for k, v in file_labels.items()})


def ingest_wave(cfg: dict, wave: str, codebook: dict | None = None) -> WaveData:
    """Read one configured wave and write its cleaned frame to ``processed/ingest``.

    ``wave`` is the codebook wave (``w1``) or its raw-file key (``survey_w1``)."""
    cb = codebook or load_codebook()
    if wave not in cb["waves"]:
        by_raw = {spec["raw"]: w for w, spec in cb["waves"].items()}
        if wave not in by_raw:
            raise SurveyError(f"unknown wave {wave!r} (codebook has {', '.join(cb['waves'])})")
        wave = by_raw[wave]
    spec = cb["waves"][wave]
    wd = read_wave(paths.raw_path(cfg, spec["raw"]), wave, cb)
    out = paths.processed_path(cfg, f"survey_{wave}")
    out.parent.mkdir(parents=True, exist_ok=True)
    wd.frame.to_parquet(out, index=False)
    log.info("survey %s: %d rows -> %s", wave, len(wd.frame), out)
    return wd


# --------------------------------------------------------------------------- Verbände
def load_verbaende(cfg: dict, frame: pd.DataFrame) -> pd.DataFrame | None:
    """Verband membership (verband_id, verband_name, ags) from the funding data, if present.

    Uses the processed funding members when the funding reader has run, else the raw
    workbook per the contract in data/raw/README.md. Returns None when neither exists.
    """
    proc = paths.processed_path(cfg, "funding_members")
    if proc.exists():
        df = pd.read_parquet(proc)
        if {"verband_id", "ags"} <= set(df.columns):
            if "verband_name" not in df.columns:
                vp = paths.processed_path(cfg, "funding_verbaende")
                if vp.exists():
                    v = pd.read_parquet(vp)
                    if {"verband_id", "verband_name"} <= set(v.columns):
                        df = df.merge(v[["verband_id", "verband_name"]], on="verband_id",
                                      how="left")
            cols = [c for c in ("verband_id", "verband_name", "ags") if c in df.columns]
            return df[cols].astype({"ags": str})
    raw = paths.raw_path(cfg, "funding_applications")
    if not raw.exists():
        return None
    ant = pd.read_excel(raw, sheet_name="Antraege", header=2, dtype=str)
    mit = pd.read_excel(raw, sheet_name="Mitglieder", header=2, dtype=str)
    for col, sheet, d in (("Antrags-Nr.", "Antraege", ant), ("Verband", "Antraege", ant),
                          ("Antrags-Nr.", "Mitglieder", mit), ("AGS", "Mitglieder", mit)):
        if col not in d.columns:
            raise SurveyError(f"{raw}: sheet {sheet!r}: column {col!r} missing")
    mk = match_keys(mit["AGS"], frame)
    mk = mk[mk["method"].isin(["exact", "zero_padded"])].drop_duplicates("input_row")
    mit = mit.reset_index(drop=True)
    mit["ags"] = pd.Series(mk.set_index("input_row")["ags"]).reindex(range(len(mit))).to_numpy()
    out = mit.merge(ant[["Antrags-Nr.", "Verband"]], on="Antrags-Nr.", how="left")
    return pd.DataFrame({"verband_id": out["Antrags-Nr."], "verband_name": out["Verband"],
                         "ags": out["ags"]}).dropna(subset=["ags"])


# --------------------------------------------------------------------------- harmonising
def _reference(cfg: dict) -> pd.DataFrame:
    from ifm_eval.reference import municipalities, read_gemeindeverzeichnis

    return municipalities(read_gemeindeverzeichnis(paths.reference_path(cfg, "gv")))


def _match_wave(wd: WaveData, spec: dict, frame: pd.DataFrame, verbaende: pd.DataFrame | None,
                threshold: float, lin: Lineage) -> pd.DataFrame:
    """Matches for every row of a wave (expanded rows for district answers)."""
    key = wd.frame[spec["key"]]
    mk = match_keys(key, frame, threshold=threshold, verbaende=verbaende)
    n = len(wd.frame)
    joint = (wd.values[spec["joint_flag"]].fillna(False).to_numpy(dtype=bool)
             if spec.get("joint_flag") else np.zeros(n, dtype=bool))
    if spec.get("joint_name") and joint.any() and verbaende is not None:
        names = wd.frame[spec["joint_name"]].where(pd.Series(joint), "")
        mj = match_keys(names, frame, threshold=threshold, verbaende=verbaende)
        use = set(mj.loc[mj["method"].eq("verband"), "input_row"])
        if use:
            mk = pd.concat([mk[~mk["input_row"].isin(use)], mj[mj["input_row"].isin(use)]])
    # a Kreis-key expansion of a district answer covers the district's Verband only
    if verbaende is not None and len(mk):
        vmap = verbaende.drop_duplicates("ags").set_index("ags")["verband_id"]
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
    cfg: dict,
    verbaende: pd.DataFrame | None = None,
    codebook: dict | None = None,
    write: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame, Lineage]:
    """Read all waves and build one row per municipality of the reference frame.

    Returns ``(harmonised, key_report, lineage)`` and (``write=True``) writes
    ``survey_harmonised``, ``key_report``, the per-wave cleaned frames and
    ``lineage/surveys.csv``. Columns of ``harmonised``: ``ags``; every harmonised variable of
    the codebook with ``<var>__missing`` (reason when missing) and, for variables with several
    source waves, ``<var>__wave``; per wave ``answered_<w>``, ``joint_<w>`` (answer given by the
    district office for all members), ``match_<w>`` and ``row_<w>``; ``district_answer``
    (any harmonised answer came from a district office for all members).
    """
    cb = codebook or load_codebook()
    lin = Lineage(STAGE)
    frame = _reference(cfg)
    if verbaende is None:
        verbaende = load_verbaende(cfg, frame)
        if verbaende is None:
            msg = "no funding data found: Verband names cannot be matched, Kreis keys expand to the whole Kreis"
            log.warning(msg)
            lin.add("funding", "verbaende", 0, 0, "flag", msg)
    threshold = float(cfg.get("panel", {}).get("fuzzy_match_threshold", 90))
    reports = []
    per_wave: dict[str, pd.DataFrame] = {}
    for wave, spec in cb["waves"].items():
        wd = read_wave(paths.raw_path(cfg, spec["raw"]), wave, cb)
        lin.add(wave, "read", len(wd.frame), len(wd.frame), "read", f"{wd.path}")
        for d in wd.decisions:
            lin.add(wave, "decision", len(wd.frame), len(wd.frame), "flag", d, 0)
        if write:
            out = paths.processed_path(cfg, f"survey_{wave}")
            out.parent.mkdir(parents=True, exist_ok=True)
            wd.frame.to_parquet(out, index=False)
        mk = _match_wave(wd, spec, frame, verbaende, threshold, lin)
        n_exp = int(mk["expanded"].sum())
        if n_exp:
            lin.add(wave, "expand district answers", int(mk["input_row"].nunique()), len(mk),
                    "expand", "Kreis key / Verband answer expanded to its member municipalities",
                    n_exp)
        reports.append(mk)
        per_wave[wave] = _per_ags(wd, spec, mk, lin)
        for d in wd.decisions:
            log.info("%s", d)

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
    if write:
        p = paths.processed_path(cfg, "survey_harmonised")
        p.parent.mkdir(parents=True, exist_ok=True)
        result.to_parquet(p, index=False)
        kr = paths.processed_path(cfg, "key_report")
        kr.parent.mkdir(parents=True, exist_ok=True)
        key_report.to_csv(kr, index=False)
        lin.write(paths.lineage_path(cfg, STAGE))
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
def item_nonresponse(cfg: dict, codebook: dict | None = None) -> pd.DataFrame:
    """Item non-response by wave and variable: n, missing counts by reason, share missing."""
    cb = codebook or load_codebook()
    rows = []
    for wave, spec in cb["waves"].items():
        wd = read_wave(paths.raw_path(cfg, spec["raw"]), wave, cb)
        n = len(wd.frame)
        for var in wd.reasons.columns:
            r = wd.reasons[var]
            counts = r.value_counts()
            row = {"wave": wave, "variable": var,
                   "harmonised": spec["variables"][var].get("harmonised"), "n": n}
            for why in (*REASONS, "system", "unknown_code"):
                row[f"n_{why}"] = int(counts.get(why, 0))
            row["n_missing"] = int(r.notna().sum())
            row["share_missing"] = row["n_missing"] / n if n else np.nan
            rows.append(row)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- CLI
def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ingest-survey", help="read and validate one survey wave")
    p.add_argument("--config", required=True)
    p.add_argument("--wave", required=True, help="codebook wave (w1..w5) or raw key (survey_w1)")
    p.set_defaults(func=lambda a: ingest_wave(load_config(a.config), a.wave))
    q = sub.add_parser("harmonise-surveys",
                       help="match keys, expand district answers, one row per municipality")
    q.add_argument("--config", required=True)
    q.set_defaults(func=lambda a: harmonise_surveys(load_config(a.config)))
