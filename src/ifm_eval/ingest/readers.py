"""Shared helpers for the administrative readers: encoding detection, German CSV and Excel
reading with line numbers, declared-schema validation, AGS repair and masked counts.

Every reader keeps a ``_line`` column: the 1-based line (CSV) or row (Excel sheet) as a
person sees it when opening the file, so that every error can name file, line and column.
Where real files are legitimately messy (a different encoding, a moved header, blank
lines, whitespace in column names, a trailing separator on the data lines, a decimal point
instead of a comma, thousands separators, totals rows, Excel serial dates, months that
Excel turned into dates, ``k.A.`` for "not reported", ``ue`` for ``ü`` in a header) the
helpers do not stop but record an explicit decision in the stage's
:class:`~ifm_eval.lineage.Lineage`. The conventions found in each file (encoding,
separator, decimal mark, header line, line breaks) are recorded as ``conventions`` steps,
whether or not they deviate from the contract, so that ``ifm-eval check-raw`` can show
them. What cannot be repaired unambiguously (a file cut inside a line, mixed decimal
conventions) is an :class:`IngestError` naming file, line and column.
"""

from __future__ import annotations

import csv
import difflib
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
    Months are also read from dates (``01.01.2015``, Excel dates and serial numbers), see
    :func:`parse_months`.
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
    #: cell values that mean "not reported" in this source (German table conventions such
    #: as ``k.A.``, ``.``, ``-``); read as missing in nullable columns (logged), an error in
    #: required ones. Compared case- and space-insensitively.
    na_tokens: tuple[str, ...] = ()
    #: the file's separator (CSV sources), for documentation and ``check-raw``
    separator: str | None = None

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
                         "not_reported": "|".join(self.na_tokens) if c.nullable and c.kind in (
                             "int", "number", "masked", "date", "month") else "",
                         "description": c.description})
        return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- encoding

ENCODING_LABEL = {"utf-8-sig": "UTF-8 with BOM", "utf-8": "UTF-8", "cp1252": "cp1252"}


def _line_of_offset(raw: bytes, offset: int) -> int:
    return raw.count(b"\n", 0, offset) + 1


def decode(path: Path, raw: bytes, expected: str, lineage: Lineage | None, source: str) -> str:
    """Decode ``raw`` detecting the encoding; a deviation from ``expected`` is a logged
    decision, undecodable bytes are an error naming the line."""
    return decode_detect(path, raw, expected, lineage, source)[0]


def decode_detect(path: Path, raw: bytes, expected: str, lineage: Lineage | None,
                  source: str) -> tuple[str, str]:
    """:func:`decode`, also returning the encoding found (key of :data:`ENCODING_LABEL`)."""
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
    return text, found


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


@dataclass(frozen=True)
class IngestOptions:
    """The ``ingest`` section of the configuration (see ``schemas/config/ingest.schema.yaml``)."""

    min_municipality_coverage: float = 0.9
    min_month_coverage: float = 0.9
    require_final_newline: bool = True

    @classmethod
    def from_config(cls, cfg: dict[str, Any] | None) -> IngestOptions:
        sec = dict((cfg or {}).get("ingest") or {})
        return cls(**{k: sec[k] for k in ("min_municipality_coverage", "min_month_coverage",
                                            "require_final_newline") if k in sec})


def note(lineage: Lineage | None, source: str, reason: str, rows: int = 0,
         step: str = "conventions") -> None:
    """Record what was found in a file (not a change): a ``read`` step with 0 rows affected."""
    log.info("%s: %s", source, reason)
    if lineage is not None:
        lineage.add(source, step, rows, rows, "read", reason, n_affected=0)


def check_final_newline(path: Path, raw: bytes, text_last_line: str, n_lines: int,
                        required: bool, lineage: Lineage | None, source: str) -> bool:
    """A text file whose last byte is not a line break was cut inside its last line (a
    broken download or copy): the last value may be incomplete (``32`` cut to ``3``) and
    every line after it is gone. An error naming the line unless ``required`` is False
    (``ingest.require_final_newline``), then a logged decision. Returns whether the file
    ends with a line break."""
    ends = raw.rstrip(b"\x1a").endswith((b"\n", b"\r"))
    if ends:
        return True
    shown = text_last_line if len(text_last_line) <= 80 else text_last_line[:77] + "..."
    msg = (f"the last line ends without a line break: the file was cut inside line {n_lines} "
           f"({shown!r}; broken download or copy?) - its last value may be incomplete and the "
           "lines after it are missing. Deliver the complete file; if it is complete but "
           "written without a final line break, set ingest.require_final_newline: false")
    if required:
        raise IngestError(path, msg, line=n_lines)
    _decision(lineage, source, "final line break",
              f"line {n_lines} (the last) ends without a line break; read as complete because "
              "ingest.require_final_newline is false")
    return False


# ----------------------------------------------------------------------------- CSV

SEPARATOR_LABEL = {";": "';'", ",": "','", "\t": "tab", "|": "'|'"}


def read_delimited(path: str | Path, *, sep: str, encoding: str, lineage: Lineage | None,
                   source: str, comment: str | None = None,
                   require_final_newline: bool = True) -> pd.DataFrame:
    """Read a delimited text file as strings with a ``_line`` column.

    Leading comment lines (starting with ``comment``) are skipped; blank lines are dropped
    with a lineage record; a row with fewer fields than the header (truncated file) or more
    non-empty fields is an error naming the line. An extra *empty* last field on data lines
    that the header does not have (a trailing separator, as some exports write) is dropped
    with a logged decision, so that the columns stay aligned. A file that does not end with
    a line break was cut inside its last line: an error (see :func:`check_final_newline`).
    Totals rows (``Summe``/``Gesamt``/``Insgesamt`` in the first field) are dropped
    (:func:`drop_total_rows`). The conventions found are recorded (step ``conventions``).
    """
    path = Path(path)
    raw = check_file(path)
    text, found = decode_detect(path, raw, encoding, lineage, source)
    crlf = "\r\n" in text
    if "\n" not in text and "\r" in text:  # classic Mac line breaks
        text = text.replace("\r", "\n")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # after the final line break
    lines = [ln[:-1] if ln.endswith("\r") else ln for ln in lines]
    skip = 0
    if comment:
        while skip < len(lines) and lines[skip].lstrip().startswith(comment):
            skip += 1
    if skip >= len(lines) or not lines[skip].strip():
        raise IngestError(path, "no header line found", line=skip + 1)
    header_line = skip + 1
    if sep not in lines[skip]:
        other = [s for s in (";", ",", "\t", "|") if s != sep and s in lines[skip]]
        hint = f" (found {other[0]!r}: wrong separator?)" if other else ""
        raise IngestError(path, f"header has no {sep!r} separator{hint}", line=header_line)
    reader = csv.reader(lines[skip:], delimiter=sep, quotechar='"', doublequote=True, strict=False)
    try:
        header = next(reader)
        records: list[list[str]] = []
        rec_lines: list[int] = []
        for rec in reader:
            records.append(rec)
            rec_lines.append(skip + reader.line_num)
    except csv.Error as exc:
        raise IngestError(path, f"cannot parse: {exc}", line=skip + reader.line_num) from None
    header = [h.replace("\ufeff", "") for h in header]
    hdr_trailing = 0
    while len(header) - hdr_trailing > 1 and not header[len(header) - hdr_trailing - 1].strip():
        hdr_trailing += 1
    width = len(header) - hdr_trailing
    n_fields = width
    blank = np.zeros(len(records), dtype=bool)
    n_extra = 0
    first_extra = None
    for i, rec in enumerate(records):
        if not rec or all(not f.strip() for f in rec):
            blank[i] = True
            continue
        got = len(rec)
        if got > width:
            if any(f.strip() for f in rec[width:]):
                raise IngestError(path, f"{got} fields, the header has {n_fields} "
                                  "(stray separator or unquoted text?)", line=rec_lines[i])
            if got > len(header):
                n_extra += 1
                first_extra = rec_lines[i] if first_extra is None else first_extra
            records[i] = rec[:width]
        elif got < width:
            raise IngestError(path, f"only {got} of {n_fields} fields (file truncated or row broken)",
                              line=rec_lines[i])
    last_text = lines[-1] if lines else ""
    final = check_final_newline(path, raw, last_text, len(lines), require_final_newline,
                                lineage, source)
    n_data = int((~blank).sum())
    if n_extra:
        _decision(lineage, source, "trailing separator",
                  f"{n_extra} of {n_data} data line(s) end with an extra {sep!r} that the header "
                  f"(line {header_line}) does not have (first at line {first_extra}): the empty "
                  "last field is dropped so that the columns stay aligned with the header",
                  rows=n_data, n=n_extra)
    parts = [f"encoding {ENCODING_LABEL[found]}", f"separator {SEPARATOR_LABEL.get(sep, repr(sep))}",
             f"header line {header_line}"]
    if skip:
        parts.append(f"{skip} comment line(s) before the header")
    if hdr_trailing:
        parts.append(f"header ends with {hdr_trailing} empty column name(s) (trailing {sep!r}; ignored)")
    parts.append("line breaks CRLF" if crlf else "line breaks LF")
    parts.append("final line break" if final else "no final line break")
    if n_extra:
        parts.append(f"trailing {sep!r} on {n_extra} data line(s)")
    note(lineage, source, "; ".join(parts), rows=n_data)
    cols = header[:width]
    data = [r for r, b in zip(records, blank, strict=True) if not b]
    df = pd.DataFrame(data, columns=cols, dtype=object) if data else pd.DataFrame(columns=cols, dtype=object)
    df.insert(0, LINE, np.asarray([ln for ln, b in zip(rec_lines, blank, strict=True) if not b],
                                  dtype="int64"))
    if blank.any():
        n = int(blank.sum())
        first = rec_lines[int(np.flatnonzero(blank)[0])]
        _decision(lineage, source, "blank lines", f"{n} blank line(s) dropped (first at line {first})",
                  rows=len(records), n=n, action="drop", rows_out=len(records) - n)
    df = drop_total_rows(df, lineage, source, what="line")
    return df


_TOTAL_RE = re.compile(r"^(summe|gesamt|gesamtsumme|insgesamt|total|zusammen|gesamtergebnis)\b[\s:]*",
                       re.IGNORECASE)


def drop_total_rows(df: pd.DataFrame, lineage: Lineage | None, source: str,
                    what: str = "row") -> pd.DataFrame:
    """Drop totals rows (first non-empty cell ``Summe``, ``Gesamt``, ``Insgesamt``, ``Total``
    ...), as tables have under (or between) their data rows; logged naming the rows."""
    cols = [c for c in df.columns if c != LINE]
    if df.empty or not cols:
        return df
    col = df[cols[0]]
    if pd.api.types.infer_dtype(col, skipna=False) == "string":  # CSV: all text, vectorised
        lead = col.astype(str).str.strip()
        cand = (lead.eq("") | lead.str.match(_TOTAL_RE)).to_numpy(dtype=bool)
    else:
        lead = col.map(lambda x: x.strip() if isinstance(x, str) else x)
        cand = (lead.isna() | lead.eq("") | lead.map(
            lambda x: isinstance(x, str) and bool(_TOTAL_RE.match(x)))).to_numpy(dtype=bool)
    first = pd.Series(pd.NA, index=df.index, dtype=object)
    for i in np.flatnonzero(cand):  # first non-empty cell of the few candidate rows
        for c in cols:
            x = df[c].iat[i]
            x = x.strip() if isinstance(x, str) else x
            if x is not None and not (isinstance(x, float) and np.isnan(x)) and x != "":
                first.iat[i] = x
                break
    tot = first.map(lambda x: isinstance(x, str) and bool(_TOTAL_RE.match(x))).astype(bool)
    if tot.any():
        n = int(tot.sum())
        where = df.loc[tot, LINE].tolist()
        labels = sorted({str(x) for x in first[tot]})
        _decision(lineage, source, "totals rows",
                  f"{n} totals row(s) ({', '.join(repr(x) for x in labels[:3])}) dropped: {what}(s) "
                  f"{where[:10]}; the sums are not data rows", rows=len(df), n=n, action="drop",
                  rows_out=len(df) - n)
        df = df.loc[~tot].reset_index(drop=True)
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
        return [_fold_name(str(v)) if v is not None else "" for v in r]

    want = {_fold_name(e) for e in expected}
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
    df = drop_total_rows(df, lineage, source, what=f"sheet {sheet!r} row")
    note(lineage, source, f"sheet {sheet!r}: header row {found_at + 1}, {len(df)} data row(s)",
         rows=len(df))
    # cells as text (numbers keep their Python value for numeric columns)
    return df


# ----------------------------------------------------------------------------- validation


def _norm_name(name: str) -> str:
    s = unicodedata.normalize("NFC", str(name)).replace("\ufeff", "").strip().lower()
    return re.sub(r"\s+", " ", s)


_FOLD = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"})


def _fold_name(name: str) -> str:
    """:func:`_norm_name` with umlauts and ß transliterated (``ü`` -> ``ue`` ...), as headers
    typed on keyboards or by programs without umlauts have them."""
    return _norm_name(name).translate(_FOLD)


def match_columns(df: pd.DataFrame, schema: Schema, path: Path, lineage: Lineage | None,
                  header_line: int | None = None) -> pd.DataFrame:
    """Map the file's columns to the schema (exact, then case/whitespace-insensitive with a
    logged decision). Missing columns are an error that lists near matches."""
    present = [c for c in df.columns if c != LINE]
    by_norm: dict[str, str] = {}
    by_fold: dict[str, str] = {}
    for c in present:
        by_norm.setdefault(_norm_name(c), c)
        by_fold.setdefault(_fold_name(c), c)
    rename: dict[str, str] = {}
    missing = []
    for col in schema.columns:
        if col.name in present:
            rename[col.name] = col.name
        elif _norm_name(col.name) in by_norm and by_norm[_norm_name(col.name)] not in rename:
            actual = by_norm[_norm_name(col.name)]
            rename[actual] = col.name
            _decision(lineage, schema.source, "column names",
                      f"column {actual!r} taken as {col.name!r} (case/whitespace differ)")
        elif _fold_name(col.name) in by_fold and by_fold[_fold_name(col.name)] not in rename:
            actual = by_fold[_fold_name(col.name)]
            rename[actual] = col.name
            _decision(lineage, schema.source, "column names",
                      f"column {actual!r} taken as {col.name!r} (umlauts/ß written as "
                      "ae/oe/ue/ss, or case/whitespace differ)")
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


def _as_text(s: pd.Series) -> pd.Series:
    if s.dtype == object and pd.api.types.infer_dtype(s, skipna=False) == "string":
        return s.astype("string").str.strip().replace("", pd.NA)  # CSV: all text

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


# numbers --------------------------------------------------------------------------------
_NUM_COMMA = re.compile(r"^[+-]?\d+,\d+$")
_NUM_POINT = re.compile(r"^[+-]?\d+\.\d+$")
_GROUPED_DOT = re.compile(r"^[+-]?[1-9]\d{0,2}(\.\d{3})+$")      # 1.234 / 1.234.567
_GROUPED_COMMA = re.compile(r"^[+-]?[1-9]\d{0,2}(,\d{3})+$")     # 1,234 / 1,234,567
_DOT_THEN_COMMA = re.compile(r"^[+-]?\d{1,3}(\.\d{3})+,\d+$")    # 1.234,5
_COMMA_THEN_DOT = re.compile(r"^[+-]?\d{1,3}(,\d{3})+\.\d+$")    # 1,234.5
_GROUPED_SPACE = re.compile(r"^[+-]?\d{1,3}([ \u00a0\u202f']\d{3})+([.,]\d+)?$")


def decimal_evidence(text: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Which cells can only be read with a decimal comma / only with a decimal point.

    ``0,5``, ``12,25``, ``1.234,5`` and ``1.234.567`` need the German convention; ``0.725``,
    ``0.8``, ``1,234.5`` and ``1,234,567`` the English one. ``1.250`` and ``1,250`` are
    ambiguous (a decimal or a thousands separator) and count for neither."""
    t = text.fillna("").astype(str).str.strip()
    comma = ((t.str.match(_NUM_COMMA) & ~t.str.match(_GROUPED_COMMA)) | t.str.match(_DOT_THEN_COMMA)
             | (t.str.match(_GROUPED_DOT) & (t.str.count(r"\.") > 1)))
    point = ((t.str.match(_NUM_POINT) & ~t.str.match(_GROUPED_DOT)) | t.str.match(_COMMA_THEN_DOT)
             | (t.str.match(_GROUPED_COMMA) & (t.str.count(",") > 1)))
    return comma.astype(bool), point.astype(bool)


def parse_number(text: pd.Series, decimal_comma: bool, integer: bool = False) -> pd.Series:
    """Parse numbers written with the file's convention (``decimal_comma``: ``1.234,5``;
    else ``1,234.5``). Thousands separators of the convention (and spaces) are removed; in
    ``integer`` columns ``1.234`` is always 1234 (a count has no decimals). Returns floats
    (NaN where not a number); see :func:`thousands_cells` for which cells had separators."""
    t = text
    grouped = thousands_cells(t, decimal_comma, integer)
    if grouped.any():
        t = t.where(~grouped, t.str.replace(r"[ \u00a0\u202f']", "", regex=True))
    if decimal_comma:
        dots = grouped & t.str.contains(".", regex=False).fillna(False)
        t = t.where(~dots, t.str.replace(".", "", regex=False))
        t = t.str.replace(",", ".", regex=False)
    else:
        commas = grouped & t.str.contains(",", regex=False).fillna(False)
        t = t.where(~commas, t.str.replace(",", "", regex=False))
        if integer:
            dots = grouped & t.str.contains(".", regex=False).fillna(False)
            t = t.where(~dots, t.str.replace(".", "", regex=False))
    return pd.to_numeric(t, errors="coerce").astype("float64")


def thousands_cells(text: pd.Series, decimal_comma: bool, integer: bool = False) -> pd.Series:
    """Cells that carry thousands separators under the convention (see :func:`parse_number`)."""
    t = text.fillna("").astype(str).str.strip()
    space = t.str.match(_GROUPED_SPACE)
    if decimal_comma:
        g = t.str.match(_GROUPED_DOT) | t.str.match(_DOT_THEN_COMMA)
    else:
        g = t.str.match(_GROUPED_COMMA) | t.str.match(_COMMA_THEN_DOT)
        if integer:
            g |= t.str.match(_GROUPED_DOT)
    return ((g | space) & text.notna()).astype(bool)


def _detect_decimal(df: pd.DataFrame, schema: Schema, path: Path,
                    lineage: Lineage | None) -> bool:
    """The decimal convention of the file, from its number columns (text cells only; Excel
    numbers carry no convention). Returns True for a decimal comma. A file that uses the
    other convention than declared is read with it (logged); a file with both is an error."""
    cols = [c for c in schema.columns if c.kind == "number" and c.name in df.columns]
    declared = "decimal comma" if schema.decimal_comma else "decimal point"
    if not cols:
        sep = "'.'" if schema.decimal_comma else "','"
        note(lineage, schema.source, f"{path.name}: decimal mark: none needed (whole-number "
             f"columns only; thousands separators {sep} and spaces are removed, logged)")
        return schema.decimal_comma
    ev: dict[str, list[tuple[int, int, str, str]]] = {"comma": [], "point": []}
    counts = {"comma": 0, "point": 0}
    for j, c in enumerate(cols):
        raw = df[c.name]
        isstr = raw.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)
        text = raw.where(isstr).astype("string").str.strip()
        comma, point = decimal_evidence(text)
        for kind, mask in (("comma", comma.to_numpy()), ("point", point.to_numpy())):
            idx = np.flatnonzero(mask)
            counts[kind] += len(idx)
            if len(idx):
                ev[kind].append((int(df[LINE].iloc[idx[0]]), j, c.name, str(text.iloc[idx[0]])))
    if counts["comma"] and counts["point"]:
        other = "point" if schema.decimal_comma else "comma"
        line, _, col, val = min(ev[other])
        own = min(ev["comma" if other == "point" else "point"])
        raise IngestError(path, f"mixed decimal conventions: {val!r} needs a decimal {other} "
                          f"but {own[3]!r} (line {own[0]}, column {own[2]!r}) a decimal "
                          f"{'comma' if other == 'point' else 'point'} ({counts['comma']} cell(s) "
                          f"with a comma, {counts['point']} with a point); correct the file",
                          line=line, column=col)
    found = "comma" if counts["comma"] else "point" if counts["point"] else None
    use_comma = schema.decimal_comma if found is None else found == "comma"
    where = path.name
    if found is None:
        note(lineage, schema.source, f"{where}: decimal mark: {declared} as declared (no number "
             "typed as text shows the convention)")
    elif use_comma == schema.decimal_comma:
        note(lineage, schema.source, f"{where}: decimal mark: {declared} as declared "
             f"({counts[found]} cell(s) such as {min(ev[found])[3]!r}, none with the other convention)")
    else:
        line, _, col, val = min(ev[found])
        note(lineage, schema.source, f"{where}: decimal mark: decimal {found} (detected; the "
             f"contract declares a {declared})")
        _decision(lineage, schema.source, "decimal mark",
                  f"{where}: numbers written with a decimal {found}, not the declared {declared}: "
                  f"{counts[found]} cell(s) such as {val!r} (line {line}, column {col!r}), none "
                  f"with a decimal {'point' if found == 'comma' else 'comma'}; every number of "
                  f"the file read with a decimal {found}"
                  + (" (',' as thousands separator)" if found == "point" else ""),
                  rows=len(df), n=counts[found])
    return use_comma


# months -----------------------------------------------------------------------------------
_MONTH_NAMES = {
    "jan": 1, "januar": 1, "january": 1, "jän": 1, "jaen": 1, "feb": 2, "februar": 2, "february": 2,
    "mär": 3, "mrz": 3, "maer": 3, "mar": 3, "märz": 3, "maerz": 3, "march": 3, "apr": 4,
    "april": 4, "mai": 5, "may": 5, "jun": 6, "juni": 6, "june": 6, "jul": 7, "juli": 7,
    "july": 7, "aug": 8, "august": 8, "sep": 9, "sept": 9, "september": 9, "okt": 10,
    "oct": 10, "oktober": 10, "october": 10, "nov": 11, "november": 11, "dez": 12, "dec": 12,
    "dezember": 12, "december": 12,
}
EXCEL_EPOCH = pd.Timestamp("1899-12-30")
#: Excel serial day numbers read as dates: 01.01.1990 .. 31.12.2050
EXCEL_SERIAL_RANGE = (32874, 55152)


def excel_serial(raw: pd.Series, text: pd.Series) -> pd.Series:
    """Excel serial day numbers (numeric cells, or 5-digit text as CSV exports write them) in
    :data:`EXCEL_SERIAL_RANGE` as dates; NaT elsewhere."""
    num = pd.Series(np.nan, index=raw.index, dtype="float64")
    if raw.dtype == object:
        isnum = raw.map(lambda v: isinstance(v, (int, float, np.number)) and not isinstance(v, bool))
        num = num.where(~isnum, pd.to_numeric(raw.where(isnum), errors="coerce"))
    txt = text.str.fullmatch(r"\d{5}(\.0+)?", na=False)
    num = num.where(~txt.to_numpy(dtype=bool), pd.to_numeric(text.where(txt), errors="coerce"))
    ok = num.between(*EXCEL_SERIAL_RANGE) & (num == np.floor(num))
    days = num.where(ok)
    return (EXCEL_EPOCH + pd.to_timedelta(days, unit="D")).where(ok)


def parse_months(text: pd.Series, raw: pd.Series | None = None) -> tuple[pd.Series, pd.Series]:
    """Months from ``YYYY-MM`` (canonical), ``YYYYMM``, and the forms Excel and people turn
    months into: dates ``DD.MM.YYYY`` / ``YYYY-MM-DD`` on the first or last day of the month,
    Excel serial numbers (numeric cells or 5-digit text), ``MM.YYYY`` / ``MM/YYYY``,
    ``Jan 15`` / ``Januar 2015``.

    Returns (first day of the month or NaT, form): form is ``""`` for ``YYYY-MM``, a label of
    the other form where it was recognised, and ``"day"`` for a date that is not the first
    or last day of its month (not a month). Parsed once per distinct value."""
    t = text.astype("string").str.strip()
    uniq = pd.Series(pd.unique(t.dropna()), dtype="string")
    ts, form = _parse_month_values(uniq)  # numeric Excel cells arrive as text ('42005')
    pos = pd.Index(uniq).get_indexer(t.fillna(""))
    ok = pos >= 0
    out = pd.Series(pd.NaT, index=t.index, dtype="datetime64[us]")
    fo = pd.Series("", index=t.index, dtype=object)
    if ok.any():
        out[ok] = ts.to_numpy()[pos[ok]]
        fo[ok] = form.to_numpy()[pos[ok]]
    return out, fo


def _parse_month_values(t: pd.Series) -> tuple[pd.Series, pd.Series]:
    out = pd.Series(pd.NaT, index=t.index, dtype="datetime64[us]")
    form = pd.Series("", index=t.index, dtype=object)

    def put(mask: pd.Series, ts: pd.Series, label: str) -> None:
        nonlocal out
        m = mask.fillna(False).to_numpy(dtype=bool) & out.isna().to_numpy() & ts.notna().to_numpy()
        if m.any():
            out = out.where(~m, ts.astype("datetime64[us]"))
            form[m] = label

    def ym(y: pd.Series, m: pd.Series) -> pd.Series:
        m = pd.to_numeric(m, errors="coerce")
        y = pd.to_numeric(y, errors="coerce")
        ok = m.between(1, 12) & y.notna()
        s = (y.where(ok).astype("Int64").astype("string") + "-" +
             m.where(ok).astype("Int64").astype("string").str.zfill(2) + "-01")
        return pd.to_datetime(s, format="%Y-%m-%d", errors="coerce")

    def day_rule(d: pd.Series, first: pd.Series, label: str) -> None:
        d = pd.to_numeric(d, errors="coerce")
        last = (first + pd.offsets.MonthEnd(0)).dt.day
        ok = (d == 1) | (d == last)
        valid = d.notna() & first.notna() & (d >= 1) & (d <= last)
        put(valid & ok, first, label)
        bad = (valid & ~ok).fillna(False).to_numpy(dtype=bool) & out.isna().to_numpy()
        form[bad] = "day"

    m = t.str.extract(r"^(\d{4})-(\d{2})$")
    put(m[0].notna(), ym(m[0], m[1]), "")
    m = t.str.extract(r"^(\d{4})(\d{2})$")
    put(m[0].notna(), ym(m[0], m[1]), "YYYYMM")
    m = t.str.extract(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})$")
    day_rule(m[0], ym(m[2], m[1]), "date DD.MM.YYYY")
    m = t.str.extract(r"^(\d{4})-(\d{2})-(\d{2})(?:[ T]00:00(?::00)?)?$")
    day_rule(m[2], ym(m[0], m[1]), "date YYYY-MM-DD")
    m = t.str.extract(r"^(\d{1,2})[./](\d{4})$")
    put(m[0].notna(), ym(m[1], m[0]), "MM.YYYY")
    m = t.str.extract(r"^(\d{4})/(\d{1,2})$")
    put(m[0].notna(), ym(m[0], m[1]), "YYYY/MM")
    m = t.str.extract(r"^([A-Za-zÄäÖöÜü]+)\.?[\s\-/]*'?(\d{2}|\d{4})$")
    if m[0].notna().any():
        mon = m[0].str.lower().map(_MONTH_NAMES)
        yr = pd.to_numeric(m[1], errors="coerce")
        yr = yr.where(yr >= 100, 2000 + yr)
        put(mon.notna(), ym(yr, mon), "month name")
    serial = excel_serial(t, t)
    if serial.notna().any():
        first = serial.dt.to_period("M").dt.to_timestamp()
        day_rule(serial.dt.day.where(serial.notna()), first.where(serial.notna()), "Excel serial date")
    return out, form


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


def _norm_token(s: pd.Series) -> pd.Series:
    return s.str.replace(r"\s+", "", regex=True).str.lower()


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

    Conventions detected per file and logged: the decimal mark (:func:`_detect_decimal`),
    thousands separators, the source's "not reported" markers (:attr:`Schema.na_tokens`),
    Excel serial dates, and months written as dates (:func:`parse_months`).
    """
    path = Path(path)
    df = match_columns(df, schema, path, lineage, header_line)
    out = pd.DataFrame({LINE: df[LINE].to_numpy()})
    lo_d, hi_d = pd.Timestamp(date_range[0]), pd.Timestamp(date_range[1])
    comma = _detect_decimal(df, schema, path, lineage)
    tokens = {t.replace(" ", "").lower(): t for t in schema.na_tokens}
    thousands: list[tuple[int, int, str, str]] = []  # (n, first line, column, example)
    for col in schema.columns:
        raw = df[col.name]
        text = _as_text(raw)
        if tokens and col.kind in ("int", "number", "masked", "date", "month"):
            tok = _norm_token(text).isin(list(tokens)).fillna(False).astype(bool)
            if tok.any():
                if not col.nullable:
                    _fail(path, df, tok, col.name, "'not reported' marker in a required column",
                          text)
                found = sorted(set(text[tok]))
                first = int(df[LINE].iloc[int(np.flatnonzero(tok.to_numpy())[0])])
                _decision(lineage, schema.source, "not reported",
                          f"{int(tok.sum())} cell(s) in {col.name!r} marked {found} (declared "
                          f"'not reported' markers of this source {list(schema.na_tokens)}; first "
                          f"at line {first}) read as not reported (missing)",
                          rows=len(df), n=int(tok.sum()))
                text = text.mask(tok)
                raw = raw.where(~tok.to_numpy(), None) if raw.dtype == object else raw
        missing = text.isna()
        if not col.nullable:
            _fail(path, df, missing, col.name, "empty value in a required column", text)
        if col.kind == "text":
            val = text
        elif col.kind in ("int", "number"):
            if raw.dtype == object and pd.api.types.infer_dtype(raw, skipna=True) != "string":
                isstr = ~raw.map(lambda v: isinstance(v, (int, float, np.number)) and not isinstance(v, bool))
            else:
                isstr = pd.Series(True, index=raw.index)
            integer = col.kind == "int"
            val = parse_number(text, comma, integer=integer)
            grouped = thousands_cells(text, comma, integer) & isstr.to_numpy()
            if grouped.any():
                i = int(np.flatnonzero(grouped.to_numpy())[0])
                thousands.append((int(grouped.sum()), int(df[LINE].iloc[i]), col.name, str(text.iloc[i])))
            if raw.dtype == object:  # Excel: numeric cells keep their value, text cells parsed
                isnum = ~isstr
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
            serial = excel_serial(raw, text)
            use = (val.isna() & serial.notna() & ~missing).to_numpy(dtype=bool)
            if use.any():
                i = int(np.flatnonzero(use)[0])
                val = val.where(~use, serial.astype(val.dtype))
                _decision(lineage, schema.source, "Excel serial dates",
                          f"{int(use.sum())} value(s) in {col.name!r} are Excel serial day numbers "
                          f"(e.g. {text.iloc[i]!r} on line {int(df[LINE].iloc[i])} = "
                          f"{serial.iloc[i]:%d.%m.%Y}; the cell lost its date format): read as dates",
                          rows=len(df), n=int(use.sum()))
            val = val.astype("datetime64[us]")
            _fail(path, df, val.isna() & ~missing, col.name, "not a date DD.MM.YYYY", text)
            _fail(path, df, (val < lo_d) | (val > hi_d), col.name,
                  f"date out of range {date_range[0]}..{date_range[1]}", text)
        elif col.kind == "month":
            val, form = parse_months(text, raw)
            _fail(path, df, (form == "day") & ~missing, col.name,
                  "not a month YYYY-MM (a date that is not the first or last day of its month)", text)
            _fail(path, df, val.isna() & ~missing, col.name, "not a month YYYY-MM", text)
            other = (form != "") & (form != "YYYYMM") & ~missing
            if other.any():
                i = int(np.flatnonzero(other.to_numpy())[0])
                kinds = form[other].value_counts().to_dict()
                _decision(lineage, schema.source, "months as dates",
                          f"{int(other.sum())} value(s) in {col.name!r} are not YYYY-MM but "
                          f"{kinds} (e.g. {text.iloc[i]!r} on line {int(df[LINE].iloc[i])} -> "
                          f"{val.iloc[i]:%Y-%m}; Excel turns months into dates): read as their month",
                          rows=len(df), n=int(other.sum()))
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
            grouped = thousands_cells(text, comma, integer=True)
            t = text.where(~grouped, text.str.replace(r"[.\s\u00a0\u202f']", "", regex=True))
            if grouped.any():
                i = int(np.flatnonzero(grouped.to_numpy())[0])
                thousands.append((int(grouped.sum()), int(df[LINE].iloc[i]), col.name, str(text.iloc[i])))
            star = t.eq("*").fillna(False)
            dash = t.isin(["-", "–"]).fillna(False)
            num = pd.to_numeric(t.where(~star & ~dash), errors="coerce").astype("float64")
            _fail(path, df, num.isna() & ~star & ~dash & ~missing, col.name,
                  "not a count, '*' (1-2, masked) or '-' (0)", text)
            lo = num.where(~star, 1.0).where(~dash, 0.0)
            hi = num.where(~star, 2.0).where(~dash, 0.0)
            # "expected": the panel stage replaces masked cells by their expectation
            point = {"midpoint": 1.5, "lower": 1.0, "upper": 2.0, "expected": 1.5}[masked_rule]
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
    if thousands:
        n = sum(t[0] for t in thousands)
        _, line, column, ex = min(thousands, key=lambda t: t[1])
        sep = "'.'" if comma else "','"
        _decision(lineage, schema.source, "thousands separators",
                  f"{n} number(s) written with thousands separators ({sep} or space; e.g. {ex!r} "
                  f"on line {line}, column {column!r}) in {sorted({t[2] for t in thousands})}: "
                  "separators removed", rows=len(df), n=n)
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
