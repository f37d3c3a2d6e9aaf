"""Survey waves: the codebook and the reader (one wave file -> one cleaned Parquet).

Everything wave-specific lives in the declarative codebook ``codebook/surveys.yaml``:
variable names, types, codes, value -> harmonised-value maps, ranges, multiple-response
sets, which variable is the typed key, the joint-answer flag and Verband name, and which
waves feed which harmonised variable. Adding a wave or renaming a variable is a codebook
edit. Harmonisation across waves is :mod:`ifm_eval.ingest.survey_harmonise`.

Reading (:func:`read_wave`):

- checks the file before parsing: missing, empty, wrong type (magic bytes), and truncated
  (row count in the header vs rows read) give a :class:`SurveyError` naming the file;
- validates against the codebook schema: every declared variable present (a renamed
  variable is reported with the unexpected names found), numeric types, allowed codes,
  ranges, integer counts, unique ids; a violation names file, data row (1-based) and
  column. An unknown code is an error by default, or - with ``on_unknown_code="missing"`` -
  set missing with reason ``unknown_code`` and logged as a decision;
- value labels become pandas categoricals (labels from the file, codebook as fallback);
  negative codes become missing with the reason kept in ``<var>__missing``
  (``refused`` / ``dont_know`` / ``not_applicable`` / ``not_asked``; ``system`` for an
  empty cell); multiple-response items become nullable booleans.

The cleaned frame is what the ``ingest_survey`` job writes; :func:`wave_from_frame` rebuilds
the harmonised values and missing reasons from it (codebook-driven, exact), so the
harmonisation reads the declared Parquet files and never the raw waves.
"""

from __future__ import annotations

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

from ifm_eval.lineage import Lineage
from ifm_eval.sources import SOURCES

log = logging.getLogger(__name__)

VALUE_TYPES = ("categorical", "mr", "numeric", "integer")
REASONS = ("refused", "dont_know", "not_applicable", "not_asked")
MISSING_CATEGORIES = [*REASONS, "system", "unknown_code"]

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
        if spec["raw"] not in SOURCES or SOURCES[spec["raw"]].kind != "survey":
            raise SurveyError(f"{where}: wave {wave}: raw {spec['raw']!r} is not a survey source "
                              "of ifm_eval.sources.SOURCES")
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
    conventions: list[str] = field(default_factory=list)  # format, release, encoding found


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


#: Stata release -> the Stata versions that write it (for messages)
DTA_RELEASES = {104: "Stata 4", 105: "Stata 5", 108: "Stata 6", 110: "Stata 7", 111: "Stata 7 SE",
                113: "Stata 8-9", 114: "Stata 10-11", 115: "Stata 12", 117: "Stata 13",
                118: "Stata 14-18", 119: "Stata 15-18 (> 32,767 variables)",
                120: "Stata 18 (alias variables)", 121: "Stata 18 (alias, > 32,767 variables)"}


def dta_release(path: Path) -> int | None:
    """The format release of a Stata file (113 ... 119), from its first bytes."""
    with path.open("rb") as fh:
        head = fh.read(64)
    if head.startswith(b"<stata_dta>"):
        i = head.find(b"<release>")
        if i >= 0:
            try:
                return int(head[i + 9:i + 12])
            except ValueError:
                return None
        return None
    return head[0] if head and 104 <= head[0] <= 115 else None


def _read_raw(path: Path, fmt: str, decisions: list[str] | None = None) -> tuple[pd.DataFrame, Any]:
    """Read a .sav / .dta file with pyreadstat.

    Stata files before release 118 (Stata 8-13: dta 113-117) declare no string encoding:
    Stata wrote them in the Windows code page (cp1252, a superset of latin-1), but programs
    that save Unicode text in an old format (Stata 14+ ``saveold``, ReadStat) write UTF-8.
    The strings (values, value and variable labels) are read as UTF-8 if they are valid
    UTF-8, else as cp1252; the choice is a logged decision (``decisions``)."""
    reader = pyreadstat.read_sav if fmt == "sav" else pyreadstat.read_dta
    kwargs: dict[str, Any] = {"user_missing": True} if fmt == "sav" else {}
    release = dta_release(path) if fmt == "dta" else None
    note = None
    try:
        if release is not None and release < 118:
            label = f"dta release {release} ({DTA_RELEASES.get(release, 'old Stata')}; no declared encoding)"
            try:
                df, meta = reader(str(path), encoding="UTF-8", **kwargs)
                meta.ifm_encoding = "UTF-8 (detected)"
                non_ascii = _has_non_ascii(df, meta)
                note = (f"{path}: {label}: strings are valid UTF-8 "
                        + ("with non-ASCII characters (saved in the old format by a Unicode-aware "
                           "program): read as UTF-8" if non_ascii else "(ASCII only): read as UTF-8"))
            except pyreadstat.ReadstatError as exc:
                if "encoding" not in str(exc) and "convert" not in str(exc):
                    raise
                df, meta = reader(str(path), encoding="CP1252", **kwargs)
                meta.ifm_encoding = "cp1252 (detected)"
                note = (f"{path}: {label}: strings are not valid UTF-8: read as cp1252 "
                        "(Windows-1252 / latin-1, as Stata 8-13 write on Windows)")
        else:
            df, meta = reader(str(path), **kwargs)
    except Exception as exc:  # pyreadstat.ReadstatError and friends
        raise SurveyError(f"{path}: cannot read {fmt} file (truncated or corrupt?): {exc}") from exc
    if note is not None:
        log.warning(note)
        if decisions is not None:
            decisions.append(note)
    expected = getattr(meta, "number_rows", None)
    if expected is not None and expected >= 0 and expected != len(df):
        raise SurveyError(f"{path}: truncated file: header declares {expected} rows, "
                          f"{len(df)} could be read")
    return df, meta


def _has_non_ascii(df: pd.DataFrame, meta: Any) -> bool:
    for c in df.columns:
        textual = df[c].dtype == object or str(df[c].dtype).startswith(("str", "string"))
        if textual and any(isinstance(v, str) and not v.isascii() for v in df[c].dropna().unique()):
            return True
    texts = list(getattr(meta, "column_labels", None) or [])
    for labels in (getattr(meta, "variable_value_labels", None) or {}).values():
        texts += [str(v) for v in labels.values()]
    return any(isinstance(t, str) and not t.isascii() for t in texts)


def _match_case(df: pd.DataFrame, meta: Any, declared: list[str], path: Path, wave: str,
                decisions: list[str]) -> pd.DataFrame:
    """Declared variables present under another case (``f1_KOMMUNE`` for ``F1_kommune``):
    SPSS (and the people who rename variables in it) ignore case, so a unique
    case-insensitive match is taken, logged."""
    missing = [v for v in declared if v not in df.columns]
    if not missing:
        return df
    by_lower: dict[str, list[str]] = {}
    for c in df.columns:
        by_lower.setdefault(str(c).lower(), []).append(c)
    rename = {}
    for v in missing:
        cands = [c for c in by_lower.get(v.lower(), []) if c not in declared]
        if len(cands) == 1:
            rename[cands[0]] = v
    if rename:
        msg = (f"{path}: wave {wave}: {len(rename)} variable name(s) differ from the codebook in "
               f"case only, taken as the declared variable (SPSS ignores case): "
               + ", ".join(f"{a!r} -> {b!r}" for a, b in rename.items()))
        log.warning(msg)
        decisions.append(msg)
        df = df.rename(columns=rename)
        vvl = getattr(meta, "variable_value_labels", None)
        if vvl:
            meta.variable_value_labels = {rename.get(k, k): v for k, v in vvl.items()}
    return df


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
    decisions: list[str] = []
    df, meta = _read_raw(path, spec["format"], decisions)
    declared = list(spec["variables"])
    df = _match_case(df, meta, declared, path, wave, decisions)
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
            reason, categories=MISSING_CATEGORIES)
    frame = pd.DataFrame(clean, index=range(n))
    vals_df = pd.DataFrame(values, index=range(n))
    reasons_df = pd.DataFrame(reasons, index=range(n))
    frame.attrs = {"wave": wave, "path": str(path)}
    return WaveData(wave, path, frame, vals_df, reasons_df, decisions,
                    {k: dict(v) for k, v in file_labels.items()},
                    [_describe_format(path, spec["format"], meta, len(df))])


def _describe_format(path: Path, fmt: str, meta: Any, n: int) -> str:
    if fmt == "dta":
        rel = dta_release(path)
        what = f"Stata .dta release {rel} ({DTA_RELEASES.get(rel, '?')})" if rel else "Stata .dta"
    else:
        with path.open("rb") as fh:
            magic = fh.read(4)
        what = "SPSS .zsav (compressed)" if magic == b"$FL3" else "SPSS .sav"
    enc = getattr(meta, "ifm_encoding", None) or getattr(meta, "file_encoding", None) or (
        "UTF-8" if fmt == "dta" else "not declared (read as UTF-8)")
    return (f"{what}; encoding {enc}; {n} row(s), "
            f"{len(getattr(meta, 'column_names', []) or [])} variable(s)")


def wave_from_frame(frame: pd.DataFrame, wave: str, codebook: dict | None = None,
                    path: str | Path | None = None) -> WaveData:
    """Rebuild a :class:`WaveData` from the cleaned frame :func:`read_wave` produced (the
    Parquet of ``ingest_survey``): harmonised values from the codebook (categorical codes in
    sorted order -> ``value``, numeric values times ``scale``) and missing reasons from the
    ``<var>__missing`` columns. Equal to the :class:`WaveData` of :func:`read_wave`."""
    cb = codebook or load_codebook()
    if wave not in cb["waves"]:
        raise SurveyError(f"unknown wave {wave!r} (codebook has {', '.join(cb['waves'])})")
    spec = cb["waves"][wave]
    where = path or frame.attrs.get("path", f"wave {wave}")
    missing = [v for v in spec["variables"] if v not in frame.columns]
    if missing:
        raise SurveyError(f"{where}: cleaned wave {wave} lacks variable(s) {missing}: not written "
                          "by this codebook's reader (rerun ingest_survey)")
    n = len(frame)
    values: dict[str, Any] = {}
    reasons: dict[str, Any] = {}
    for var, vs in spec["variables"].items():
        t = vs["type"]
        col = frame[var]
        if t in ("key", "text", "flag", "mr"):
            values[var] = col
        elif t == "categorical":
            codes_sorted = sorted(float(k) for k in vs["codes"])
            vmap = {float(k): v["value"] for k, v in vs["codes"].items()}
            cat = col.cat.codes.to_numpy()
            values[var] = pd.Series([vmap[codes_sorted[c]] if c >= 0 else None for c in cat],
                                    dtype=object)
        elif t in ("numeric", "integer"):
            values[var] = col.to_numpy(dtype=float) * float(vs.get("scale", 1.0))
        if t in VALUE_TYPES:
            r = frame[f"{var}__missing"].astype(object)
            reasons[var] = np.asarray(r.where(r.notna(), None), dtype=object)
    return WaveData(wave, Path(str(where)), frame, pd.DataFrame(values, index=range(n)),
                    pd.DataFrame(reasons, index=range(n)), [], {})


def item_nonresponse_wave(wd: WaveData, codebook: dict | None = None) -> pd.DataFrame:
    """Item non-response of one wave: per value variable the rows, missing counts by reason
    and the share missing."""
    cb = codebook or load_codebook()
    spec = cb["waves"][wd.wave]
    n = len(wd.frame)
    rows = []
    for var in wd.reasons.columns:
        counts = pd.Series(wd.reasons[var]).value_counts()
        row = {"wave": wd.wave, "variable": var,
               "harmonised": spec["variables"][var].get("harmonised"), "n": n}
        for why in MISSING_CATEGORIES:
            row[f"n_{why}"] = int(counts.get(why, 0))
        row["n_missing"] = int(pd.Series(wd.reasons[var]).notna().sum())
        row["share_missing"] = row["n_missing"] / n if n else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def ingest_wave(wave: str, raw: str | Path, out: str | Path, lineage: Lineage | None = None,
                codebook: dict | None = None) -> WaveData:
    """Read wave ``wave`` from ``raw``, write its cleaned frame to ``out`` (Parquet) and record
    the read and every decision in ``lineage``."""
    cb = codebook or load_codebook()
    wd = read_wave(raw, wave, cb)
    if lineage is not None:
        lineage.add(wave, "read", len(wd.frame), len(wd.frame), "read", f"{wd.path}")
        for c in wd.conventions:
            lineage.add(wave, "conventions", len(wd.frame), len(wd.frame), "read", c, 0)
        for d in wd.decisions:
            lineage.add(wave, "decision", len(wd.frame), len(wd.frame), "flag", d, 0)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    wd.frame.to_parquet(out, index=False)
    log.info("survey %s: %d rows -> %s", wave, len(wd.frame), out)
    return wd
