"""Shared helpers for the administrative readers: encoding detection, German CSV and Excel
reading with line numbers, declared-schema validation, AGS repair and masked counts.

Every reader keeps a ``_line`` column: the 1-based line (CSV) or row (Excel sheet) as a
person sees it when opening the file, so that every error can name file, line and column.
Where real files are legitimately messy (a different encoding, a moved header, blank
lines, whitespace in column names) the helpers do not stop but record an explicit decision
in the stage's :class:`~ifm_eval.lineage.Lineage`.
"""

from __future__ import annotations

import difflib
import io
import logging
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ifm_eval.lineage import Lineage

log = logging.getLogger(__name__)

LINE = "_line"


class IngestError(ValueError):
    """A raw file violates its contract. The message names file, line/row and column."""

    def __init__(self, path: str | Path, message: str, line: int | None = None,
                 column: str | None = None) -> None:
        self.path = str(path)
        self.line = line
        self.column = column
        where = [self.path]
        if line is not None:
            where.append(f"line {line}")
        if column is not None:
            where.append(f"column {column!r}")
        super().__init__(", ".join(where) + ": " + message)


# ----------------------------------------------------------------------------- schemas


@dataclass(frozen=True)
class Col:
    """One declared column of a raw file.

    ``kind``: ``text`` | ``int`` | ``number`` | ``date`` (``DD.MM.YYYY``) | ``month``
    (``YYYY-MM``; ``YYYYMM`` accepted) | ``quarter`` (``YYYY-Qn``) | ``ags`` (8-digit key,
    lost leading zeros repaired) | ``masked`` (BA count: ``*`` = 1-2, ``-`` = 0).
    """

    name: str
    out: str
    kind: str = "text"
    nullable: bool = False
    min: float | None = None
    max: float | None = None
    min_exclusive: bool = False
    allowed: tuple[str, ...] | None = None
    pattern: str | None = None
    unit: str = ""
    description: str = ""


@dataclass(frozen=True)
class Schema:
    source: str
    columns: tuple[Col, ...]
    unique: tuple[tuple[str, ...], ...] = ()  # output names
    decimal_comma: bool = False

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def describe(self) -> pd.DataFrame:
        """The schema as a table (for documentation and the data dictionary)."""
        rows = []
        for c in self.columns:
            rng = []
            if c.min is not None:
                rng.append(f"{'>' if c.min_exclusive else '>='} {c.min:g}")
            if c.max is not None:
                rng.append(f"<= {c.max:g}")
            rows.append({"source": self.source, "column": c.name, "name": c.out, "kind": c.kind,
                         "nullable": c.nullable, "range": " and ".join(rng),
                         "allowed": "|".join(c.allowed) if c.allowed else "",
                         "pattern": c.pattern or "", "unit": c.unit,
                         "description": c.description})
        return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- encoding

ENCODING_LABEL = {"utf-8-sig": "UTF-8 with BOM", "utf-8": "UTF-8", "cp1252": "cp1252"}


def _line_of_offset(raw: bytes, offset: int) -> int:
    return raw.count(b"\n", 0, offset) + 1


def decode(path: Path, raw: bytes, expected: str, lineage: Lineage | None, source: str) -> str:
    """Decode ``raw`` detecting the encoding; a deviation from ``expected`` is a logged
    decision, undecodable bytes are an error naming the line."""
    if b"\x00" in raw[:4096]:
        raise IngestError(path, "contains NUL bytes: not a text/CSV file (binary, UTF-16 or corrupt)")
    if raw.startswith(b"\xef\xbb\xbf"):
        found = "utf-8-sig"
        text = raw[3:].decode("utf-8", errors="strict") if _is_utf8(raw[3:]) else None
        if text is None:
            exc = _utf8_error(raw[3:])
            raise IngestError(path, f"starts with a UTF-8 BOM but byte 0x{raw[3 + exc.start]:02x} "
                              "is not valid UTF-8 (mixed encodings?)", line=_line_of_offset(raw, 3 + exc.start))
    elif _is_utf8(raw):
        found = "utf-8"
        text = raw.decode("utf-8")
    else:
        exc = _utf8_error(raw)
        try:
            text = raw.decode("cp1252")
        except UnicodeDecodeError as exc2:
            raise IngestError(path, f"neither UTF-8 nor cp1252: byte 0x{raw[exc2.start]:02x} cannot be "
                              "decoded", line=_line_of_offset(raw, exc2.start)) from None
        found = "cp1252"
        if expected != "cp1252":
            msg = (f"expected {ENCODING_LABEL[expected]} but byte 0x{raw[exc.start]:02x} on line "
                   f"{_line_of_offset(raw, exc.start)} is not valid UTF-8; read as cp1252")
            _decision(lineage, source, "encoding", msg)
    if found != "cp1252" and expected == "cp1252" and not raw.isascii():
        _decision(lineage, source, "encoding",
                  f"expected cp1252 but the file is valid {ENCODING_LABEL[found]} with non-ASCII "
                  f"characters; read as {ENCODING_LABEL[found]}")
    if found == "utf-8" and expected == "utf-8-sig":
        log.debug("%s: no UTF-8 BOM; read as UTF-8", path)
    return text


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _utf8_error(raw: bytes) -> UnicodeDecodeError:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc
    raise AssertionError("valid UTF-8")  # pragma: no cover


def _decision(lineage: Lineage | None, source: str, step: str, reason: str, rows: int = 0,
              n: int = 0, action: str = "recode", rows_out: int | None = None) -> None:
    log.warning("%s: %s", source, reason)
    if lineage is not None:
        lineage.add(source, step, rows, rows if rows_out is None else rows_out, action, reason,
                    n_affected=n)


def check_file(path: Path) -> bytes:
    if not path.is_file():
        raise IngestError(path, "file not found (see data/raw/README.md for the expected layout)")
    raw = path.read_bytes()
    if not raw.strip(b" \t\r\n\xef\xbb\xbf"):
        raise IngestError(path, "file is empty")
    return raw


# ----------------------------------------------------------------------------- CSV


def read_delimited(path: str | Path, *, sep: str, encoding: str, lineage: Lineage | None,
                   source: str, comment: str | None = None) -> pd.DataFrame:
    """Read a delimited text file as strings with a ``_line`` column.

    Leading comment lines (starting with ``comment``) are skipped; blank lines are dropped
    with a lineage record; a row with fewer fields than the header (truncated file) or more
    is an error naming the line.
    """
    path = Path(path)
    raw = check_file(path)
    text = decode(path, raw, encoding, lineage, source)
    lines = text.splitlines()
    skip = 0
    if comment:
        while skip < len(lines) and lines[skip].lstrip().startswith(comment):
            skip += 1
    if skip >= len(lines) or not lines[skip].strip():
        raise IngestError(path, "no header line found", line=skip + 1)
    header_line = skip + 1
    header = lines[skip]
    if sep not in header:
        other = [s for s in (";", ",", "\t", "|") if s != sep and s in header]
        hint = f" (found {other[0]!r}: wrong separator?)" if other else ""
        raise IngestError(path, f"header has no {sep!r} separator{hint}", line=header_line)
    n_fields = header.count(sep) + 1
    for i in range(skip + 1, len(lines)):
        ln = lines[i]
        if not ln.strip() or '"' in ln:
            continue
        got = ln.count(sep) + 1
        if got < n_fields:
            raise IngestError(path, f"only {got} of {n_fields} fields (file truncated or row broken)",
                              line=i + 1)
    try:
        df = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False,
                         skiprows=skip, skip_blank_lines=False, engine="c")
    except pd.errors.ParserError as exc:
        m = re.search(r"line (\d+), saw (\d+)", str(exc))
        if m:
            line = int(m.group(1)) + skip
            raise IngestError(path, f"{m.group(2)} fields, the header has {n_fields} "
                              "(stray separator or unquoted text?)", line=line) from None
        raise IngestError(path, f"cannot parse: {exc}") from None
    df.columns = [str(c) for c in df.columns]
    df.insert(0, LINE, np.arange(len(df), dtype="int64") + header_line + 1)
    cols = [c for c in df.columns if c != LINE]
    isna = df[cols].isna()
    blank = isna.all(axis=1) | (df[cols].fillna("").apply(lambda s: s.str.strip()) == "").all(axis=1)
    if blank.any():
        n = int(blank.sum())
        _decision(lineage, source, "blank lines",
                  f"{n} blank line(s) dropped (first at line {int(df.loc[blank, LINE].iloc[0])})",
                  rows=len(df), n=n, action="drop", rows_out=len(df) - n)
        df = df.loc[~blank].reset_index(drop=True)
        isna = isna.loc[~blank.values].reset_index(drop=True)
    short = isna.any(axis=1)
    if short.any():
        i = int(np.flatnonzero(short.to_numpy())[0])
        got = int((~isna.iloc[i]).sum())
        raise IngestError(path, f"only {got} of {n_fields} fields (file truncated or row broken)",
                          line=int(df[LINE].iloc[i]))
    return df


# ----------------------------------------------------------------------------- Excel


def read_excel_sheet(path: str | Path, sheet: str, expected: list[str], *, header_row: int,
                     lineage: Lineage | None, source: str) -> pd.DataFrame:
    """Read one sheet as strings/objects with ``_line`` = Excel row number.

    The header is expected in ``header_row`` (1-based); if it is elsewhere within the first
    15 rows, that row is used and the decision logged.
    """
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    path = Path(path)
    check_file(path)
    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, KeyError, OSError, ValueError) as exc:
        raise IngestError(path, f"not a readable .xlsx workbook ({type(exc).__name__}: {exc})") from None
    except Exception as exc:  # zipfile.BadZipFile and friends
        raise IngestError(path, f"not a readable .xlsx workbook ({type(exc).__name__}: {exc})") from None
    try:
        if sheet not in wb.sheetnames:
            raise IngestError(path, f"sheet {sheet!r} not found (sheets: {wb.sheetnames})")
        rows = [list(r) for r in wb[sheet].iter_rows(values_only=True)]
    finally:
        wb.close()
    if not rows:
        raise IngestError(path, f"sheet {sheet!r} is empty")

    def norm_row(r: list[Any]) -> list[str]:
        return [_norm_name(str(v)) if v is not None else "" for v in r]

    want = {_norm_name(e) for e in expected}
    found_at = None
    for i, r in enumerate(rows[:15]):
        if len(want & set(norm_row(r))) >= max(2, len(want) // 2):
            found_at = i
            break
    if found_at is None:
        found_at = header_row - 1
        if len(rows) < header_row:
            raise IngestError(path, f"sheet {sheet!r}: no header row (expected in row {header_row})")
    if found_at != header_row - 1:
        _decision(lineage, source, "header row",
                  f"sheet {sheet!r}: header found in row {found_at + 1}, not row {header_row}")
    header = [str(v).strip() if v is not None else "" for v in rows[found_at]]
    while header and header[-1] == "":
        header.pop()
    body = rows[found_at + 1:]
    data = [list(r[: len(header)]) + [None] * (len(header) - len(r)) for r in body]
    df = pd.DataFrame(data, columns=header, dtype=object)
    df.insert(0, LINE, np.arange(len(df), dtype="int64") + found_at + 2)
    cols = [c for c in df.columns if c != LINE]
    blank = df[cols].map(lambda v: v is None or (isinstance(v, str) and not v.strip())).all(axis=1)
    if blank.any():
        n = int(blank.sum())
        trailing = len(df) - int(np.flatnonzero(~blank.to_numpy())[-1]) - 1 if (~blank).any() else n
        if n > trailing:
            _decision(lineage, source, "blank rows", f"sheet {sheet!r}: {n - trailing} empty row(s) "
                      f"inside the table dropped", rows=len(df) - trailing, n=n - trailing, action="drop",
                      rows_out=len(df) - n)
        df = df.loc[~blank].reset_index(drop=True)
    if df.empty:
        raise IngestError(path, f"sheet {sheet!r} has a header but no data rows")
    # cells as text (numbers keep their Python value for numeric columns)
    return df


# ----------------------------------------------------------------------------- validation


def _norm_name(name: str) -> str:
    s = unicodedata.normalize("NFC", str(name)).replace("\ufeff", "").strip().lower()
    return re.sub(r"\s+", " ", s)


def match_columns(df: pd.DataFrame, schema: Schema, path: Path, lineage: Lineage | None,
                  header_line: int | None = None) -> pd.DataFrame:
    """Map the file's columns to the schema (exact, then case/whitespace-insensitive with a
    logged decision). Missing columns are an error that lists near matches."""
    present = [c for c in df.columns if c != LINE]
    by_norm: dict[str, str] = {}
    for c in present:
        by_norm.setdefault(_norm_name(c), c)
    rename: dict[str, str] = {}
    missing = []
    for col in schema.columns:
        if col.name in present:
            rename[col.name] = col.name
        elif _norm_name(col.name) in by_norm:
            actual = by_norm[_norm_name(col.name)]
            rename[actual] = col.name
            _decision(lineage, schema.source, "column names",
                      f"column {actual!r} taken as {col.name!r} (case/whitespace differ)")
        else:
            missing.append(col.name)
    if missing:
        extra = [c for c in present if c not in rename]
        hints = []
        for m in missing:
            close = difflib.get_close_matches(m, extra, n=1, cutoff=0.5)
            if close:
                hints.append(f"{m!r} (renamed to {close[0]!r}?)")
            else:
                hints.append(repr(m))
        raise IngestError(path, f"missing column(s) {', '.join(hints)}; found {present}",
                          line=header_line)
    dup = [c for c in present if present.count(c) > 1]
    if dup:
        raise IngestError(path, f"duplicate column name(s) {sorted(set(dup))}", line=header_line)
    return df.rename(columns=rename)


_MONTH_RE = re.compile(r"^(\d{4})-?(\d{2})$")


def _as_text(s: pd.Series) -> pd.Series:
    def conv(v: Any) -> Any:
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return pd.NA
        if isinstance(v, float) and v.is_integer():
            return str(int(v))
        if hasattr(v, "strftime"):
            return v.strftime("%d.%m.%Y")
        return str(v)
    out = s.map(conv) if s.dtype == object else s
    return out.astype("string").str.strip().replace("", pd.NA)


def _fail(path: Path, df: pd.DataFrame, mask: pd.Series, column: str, message: str,
          values: pd.Series | None = None) -> None:
    if not mask.any():
        return
    idx = np.flatnonzero(mask.to_numpy())
    line = int(df[LINE].iloc[idx[0]])
    val = (values if values is not None else df[column]).iloc[idx[0]]
    more = f" ({len(idx) - 1} more row(s) affected)" if len(idx) > 1 else ""
    raise IngestError(path, f"{message}: {val!r}{more}", line=line, column=column)


def parse_number(text: pd.Series, decimal_comma: bool) -> pd.Series:
    t = text
    if decimal_comma:
        thousands = t.str.fullmatch(r"-?\d{1,3}(\.\d{3})+(,\d*)?", na=False)
        t = t.where(~thousands, t.str.replace(".", "", regex=False))
        t = t.str.replace(",", ".", regex=False)
    return pd.to_numeric(t, errors="coerce").astype("float64")


def repair_ags(text: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Repair typed AGS: digits with lost leading zero(s) (7 digits, Excel numbers such as
    ``8111000.0``) are zero-padded to 8 digits. Returns (ags, repaired flag); values that are
    not 7-8 digits are returned unchanged (validated by the caller)."""
    t = text.str.replace(r"\.0+$", "", regex=True).str.replace(" ", "", regex=False)
    seven = t.str.fullmatch(r"\d{7}", na=False)
    out = t.where(~seven, "0" + t)
    return out, seven


def _match_unknown_ags(val: pd.Series, text: pd.Series, missing: pd.Series, frame: pd.DataFrame,
                       threshold: float, lineage: Lineage | None, source: str, column: str) -> pd.Series:
    """Key repair (names, typos) for values that are not an AGS of the frame."""
    todo = ~missing & ~val.isin(set(frame["ags"]))
    if not todo.any():
        return val
    try:
        from ifm_eval.ingest.keys import match_keys
    except ImportError:  # pragma: no cover - key matcher not installed
        return val
    typed = text[todo].reset_index(drop=True)
    mk = match_keys(typed, frame[[c for c in frame.columns if c in (
        "ags", "name", "kreis", "kreis_name", "gemeindeverband", "gemeindeverband_name")]],
        threshold=threshold)
    ok = mk.loc[(mk["status"] == "matched") & ~mk["expanded"].astype(bool)
                & ~mk["input_row"].duplicated(keep=False)]
    if ok.empty:
        return val
    pos = np.flatnonzero(todo.to_numpy())[ok["input_row"].to_numpy()]
    val = val.copy()
    val.iloc[pos] = ok["ags"].to_numpy()
    methods = ok["method"].value_counts().to_dict()
    _decision(lineage, source, "AGS key matching",
              f"{len(ok)} value(s) in {column!r} that are not an AGS of the frame matched to one "
              f"municipality by key repair {methods} (e.g. {typed.iloc[int(ok['input_row'].iloc[0])]!r} "
              f"-> {ok['ags'].iloc[0]})", rows=len(val), n=len(ok))
    return val


def validate(df: pd.DataFrame, schema: Schema, path: str | Path, *, lineage: Lineage | None,
             frame_ags: set[str] | None = None, masked_rule: str = "midpoint",
             date_range: tuple[str, str] = ("2000-01-01", "2030-12-31"),
             header_line: int | None = None, frame: pd.DataFrame | None = None,
             fuzzy_threshold: float = 90) -> pd.DataFrame:
    """Check and convert the columns of ``df`` (strings, ``_line``) against ``schema``.

    Returns a frame with the output names, typed, plus ``_line``. Violations raise
    :class:`IngestError` with file, line and column. ``ags`` columns are repaired (lost
    leading zero, logged); with the reference ``frame`` given, values that are still not a
    municipality AGS (names, typos) go through :func:`ifm_eval.ingest.keys.match_keys` and a
    unique municipality match is accepted as a logged decision (Kreis/Verband expansions
    are not: an administrative row belongs to one municipality). The result must be in
    ``frame_ags`` if given (unknown = error).
    """
    path = Path(path)
    df = match_columns(df, schema, path, lineage, header_line)
    out = pd.DataFrame({LINE: df[LINE].to_numpy()})
    lo_d, hi_d = pd.Timestamp(date_range[0]), pd.Timestamp(date_range[1])
    for col in schema.columns:
        raw = df[col.name]
        text = _as_text(raw)
        missing = text.isna()
        if not col.nullable:
            _fail(path, df, missing, col.name, "empty value in a required column", text)
        if col.kind == "text":
            val = text
        elif col.kind in ("int", "number"):
            val = parse_number(text, schema.decimal_comma)
            if raw.dtype == object:  # Excel: numeric cells keep their value, text cells parsed
                isnum = raw.map(lambda v: isinstance(v, (int, float, np.number)) and not isinstance(v, bool))
                if isnum.any():
                    val = val.where(~isnum.to_numpy(), pd.to_numeric(raw.where(isnum), errors="coerce")
                                    .astype("float64").to_numpy())
            _fail(path, df, val.isna() & ~missing, col.name, "not a number", text)
            if col.kind == "int":
                frac = val.notna() & (val != np.floor(val.fillna(0)))
                _fail(path, df, frac, col.name, "not a whole number", text)
                val = val.astype("Int64")
            else:
                val = val.astype("float64")
        elif col.kind == "date":
            val = pd.to_datetime(text, format="%d.%m.%Y", errors="coerce")
            iso = val.isna() & text.str.fullmatch(r"\d{4}-\d{2}-\d{2}( 00:00:00)?", na=False)
            if iso.any():
                val = val.where(~iso, pd.to_datetime(text.where(iso).str[:10], format="%Y-%m-%d", errors="coerce"))
            _fail(path, df, val.isna() & ~missing, col.name, "not a date DD.MM.YYYY", text)
            _fail(path, df, (val < lo_d) | (val > hi_d), col.name,
                  f"date out of range {date_range[0]}..{date_range[1]}", text)
        elif col.kind == "month":
            m = text.str.extract(_MONTH_RE)
            ok = m[0].notna() & m[1].astype(float).between(1, 12)
            _fail(path, df, ~ok & ~missing, col.name, "not a month YYYY-MM", text)
            val = pd.to_datetime(m[0].where(ok) + "-" + m[1].where(ok) + "-01", format="%Y-%m-%d",
                                 errors="coerce")
            _fail(path, df, (val < lo_d) | (val > hi_d), col.name,
                  f"month out of range {date_range[0][:7]}..{date_range[1][:7]}", text)
        elif col.kind == "quarter":
            ok = text.str.fullmatch(r"\d{4}-Q[1-4]", na=False)
            _fail(path, df, ~ok & ~missing, col.name, "not a quarter YYYY-Qn", text)
            val = text
            qstart = pd.to_datetime(text.str[:4] + "-" + ((text.str[-1].astype(float) - 1) * 3 + 1)
                                    .astype("Int64").astype("string").str.zfill(2) + "-01",
                                    format="%Y-%m-%d", errors="coerce")
            _fail(path, df, (qstart < lo_d) | (qstart > hi_d), col.name, "quarter out of range", text)
        elif col.kind == "ags":
            val, repaired = repair_ags(text)
            if frame is not None:
                val = _match_unknown_ags(val, text, missing, frame, fuzzy_threshold, lineage,
                                         schema.source, col.name)
            bad = ~val.str.fullmatch(r"\d{8}", na=False) & ~missing
            _fail(path, df, bad, col.name, "not an 8-digit AGS", text)
            if repaired.any():
                _decision(lineage, schema.source, "AGS repair",
                          f"{int(repaired.sum())} AGS in {col.name!r} had lost the leading zero; "
                          "zero-padded to 8 digits", rows=len(df), n=int(repaired.sum()))
            if frame_ags is not None:
                unknown = ~val.isin(frame_ags) & ~missing
                _fail(path, df, unknown, col.name, "AGS not in the reference frame "
                      "(Destatis Gemeindeverzeichnis)", text)
        elif col.kind == "masked":
            t = text.str.replace(r"^(\d{1,3})(\.\d{3})+$", lambda m: m.group(0).replace(".", ""), regex=True)
            star = t.eq("*").fillna(False)
            dash = t.isin(["-", "–"]).fillna(False)
            num = pd.to_numeric(t.where(~star & ~dash), errors="coerce").astype("float64")
            _fail(path, df, num.isna() & ~star & ~dash & ~missing, col.name,
                  "not a count, '*' (1-2, masked) or '-' (0)", text)
            lo = num.where(~star, 1.0).where(~dash, 0.0)
            hi = num.where(~star, 2.0).where(~dash, 0.0)
            point = {"midpoint": 1.5, "lower": 1.0, "upper": 2.0}[masked_rule]
            val = num.where(~star, point).where(~dash, 0.0).astype("float64")
            frac = val.notna() & ~star & (val != np.floor(val.fillna(0)))
            _fail(path, df, frac, col.name, "not a whole number", text)
            _fail(path, df, val < 0, col.name, "negative count", text)
            out[col.out + "_lo"] = lo.astype("float64")
            out[col.out + "_hi"] = hi.astype("float64")
            out[col.out + "_masked"] = star.astype(bool)
        else:  # pragma: no cover
            raise ValueError(f"unknown column kind {col.kind}")
        if col.kind in ("int", "number"):
            if col.min is not None:
                below = (val <= col.min) if col.min_exclusive else (val < col.min)
                _fail(path, df, below.fillna(False).astype(bool), col.name,
                      f"must be {'>' if col.min_exclusive else '>='} {col.min:g}", text)
            if col.max is not None:
                _fail(path, df, (val > col.max).fillna(False).astype(bool), col.name,
                      f"must be <= {col.max:g}", text)
        if col.allowed is not None:
            _fail(path, df, ~text.isin(col.allowed) & ~missing, col.name,
                  f"not an allowed code {list(col.allowed)}", text)
        if col.pattern is not None:
            _fail(path, df, ~text.str.fullmatch(col.pattern, na=False) & ~missing, col.name,
                  f"does not match pattern {col.pattern}", text)
        out[col.out] = val.array if isinstance(val.dtype, pd.api.extensions.ExtensionDtype) else val.to_numpy()
    for key in schema.unique:
        dup = out.duplicated(list(key), keep=False)
        if dup.any():
            first = out.loc[dup].iloc[0]
            lines = out.loc[dup & (out[list(key)] == first[list(key)]).all(axis=1), LINE].tolist()
            names = [c.name for c in schema.columns if c.out in key]
            raise IngestError(path, f"duplicate key {dict(zip(names, first[list(key)].tolist(), strict=True))} "
                              f"on lines {lines[:5]} ({int(dup.sum())} rows in duplicate groups)",
                              line=int(lines[0]), column=", ".join(names))
    return out


def to_default_str(df: pd.DataFrame) -> pd.DataFrame:
    """Text columns as the pandas default ``str`` dtype (missing = NaN; comparisons with a
    missing value are False), so that downstream code sees one string dtype everywhere."""
    df = df.copy()
    for c in df.columns:
        if isinstance(df[c].dtype, pd.StringDtype) and df[c].dtype.na_value is pd.NA:
            df[c] = df[c].astype("str")
    return df


def write_parquet(df: pd.DataFrame, path: Path) -> Path:
    df = to_default_str(df)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_parquet(path, index=False)
    return path
