"""Person-level case-management export -> municipality-month stocks.

The export (Jobkraftwerk-like, UTF-8, ``;``) has one row per person and status change. A
person counts in the stock of municipality *a* in month *m* while in follow-up housing
there (from the month of ``Zuzug AU`` up to the month before ``Auszug``); the outcome
stocks count persons in AU who at the same time hold a B1 certificate (from the month of
``B1 erreicht``), are in vocational training / further training (``Beginn Ausbildung`` /
``Beginn Weiterbildung`` up to the month before ``Ende``) or in employment subject to social
insurance (``Beginn SvB`` up to the month before ``Ende``). Spells are intersected with the
person's AU spells, so stocks are always among refugees in AU of that municipality.

Everything is vectorised: the CSV is read with pyarrow (dictionary-encoded strings), codes
and dates are validated on the dictionaries, spells are paired with one sort, and stocks
are cumulative sums of +1/-1 deltas on an (AGS x month) grid.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from ifm_eval.ingest import schemas as S
from ifm_eval.ingest.readers import (
    IngestError,
    IngestOptions,
    check_file,
    check_final_newline,
    note,
    repair_ags,
)
from ifm_eval.lineage import Lineage
from ifm_eval.months import month_index, panel_window

log = logging.getLogger(__name__)

SOURCE = "case_management"
STOCKS = ("refugees", "b1_holders", "in_ausbildung", "in_weiterbildung", "in_training", "employed")
_BEREICH = {"Unterbringung": 0, "Sprache": 1, "Ausbildung": 2, "Arbeit": 3}
# (Bereich, Status) -> (is_start, subtype); subtype 1 = Ausbildung, 2 = Weiterbildung
_STATUS = {
    ("Unterbringung", "Zuzug AU"): (True, 0), ("Unterbringung", "Auszug"): (False, 0),
    ("Sprache", "B1 erreicht"): (True, 0),
    ("Ausbildung", "Beginn Ausbildung"): (True, 1), ("Ausbildung", "Beginn Weiterbildung"): (True, 2),
    ("Ausbildung", "Ende"): (False, 0),
    ("Arbeit", "Beginn SvB"): (True, 0), ("Arbeit", "Ende"): (False, 0),
}
_FAR = np.int64(10**6)  # "no end"


def _detect_encoding(path: Path, lineage: Lineage) -> str:
    with path.open("rb") as fh:
        head = fh.read(4)
    if head.startswith(b"\xef\xbb\xbf"):
        return "utf8"
    # validate UTF-8 on the whole file in blocks (cheap compared with parsing)
    dec = __import__("codecs").getincrementaldecoder("utf-8")()
    with path.open("rb") as fh:
        try:
            while block := fh.read(1 << 24):
                dec.decode(block)
            dec.decode(b"", final=True)
        except UnicodeDecodeError:
            lineage.add(SOURCE, "encoding", 0, 0, "recode",
                        "expected UTF-8 but the file is not valid UTF-8; read as cp1252", 0)
            log.warning("%s: not UTF-8, read as cp1252", path)
            return "cp1252"
    return "utf8"


def read_export(path: str | Path, frame_ags: set[str], lineage: Lineage,
                require_final_newline: bool = True) -> pd.DataFrame:
    """Read and validate the export. Returns one row per event with integer columns
    ``pid, ags_code, month, bereich, start, sub, line`` and the AGS categories in
    ``df.attrs['ags']``. A file cut inside its last line is an error (see
    :func:`~ifm_eval.ingest.readers.check_final_newline`)."""
    path = Path(path)
    raw = check_file(path)
    n_lines = raw.count(b"\n") + (0 if raw.endswith(b"\n") else 1)
    last = raw[raw.rstrip(b"\r\n").rfind(b"\n") + 1:].decode("utf-8", errors="replace").rstrip("\r\n")
    final = check_final_newline(path, raw, last, n_lines, require_final_newline, lineage, SOURCE)
    del raw
    enc = _detect_encoding(path, lineage)
    note(lineage, SOURCE, f"encoding {'UTF-8' if enc == 'utf8' else 'cp1252'}; separator ';'; "
         f"header line 1; {'final line break' if final else 'no final line break'}")
    with path.open("rb") as fh:
        first = fh.readline().decode("utf-8-sig" if enc == "utf8" else "cp1252", errors="replace")
    header = [h.strip() for h in first.rstrip("\r\n").split(";")]
    missing = [c for c in S.CASE_COLUMNS if c not in header]
    if missing:
        import difflib

        hints = [f"{m!r}" + (f" (renamed to {c[0]!r}?)" if (c := difflib.get_close_matches(m, header, 1, 0.5)) else "")
                 for m in missing]
        raise IngestError(path, f"missing column(s) {', '.join(hints)}; found {header}", line=1)
    dict_t = pa.dictionary(pa.int32(), pa.string())
    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(encoding=enc, block_size=1 << 24),
            parse_options=pacsv.ParseOptions(delimiter=";"),
            convert_options=pacsv.ConvertOptions(
                column_types={c: dict_t for c in S.CASE_COLUMNS},
                include_columns=list(S.CASE_COLUMNS), strings_can_be_null=False),
        )
    except pa.ArrowInvalid as exc:
        msg = str(exc)
        import re

        m = re.search(r"[Rr]ow #(\d+)", msg)
        raise IngestError(path, f"cannot parse ({msg.splitlines()[0]})",
                          line=int(m.group(1)) + 1 if m else None) from None
    n = table.num_rows
    if n == 0:
        raise IngestError(path, "header but no data rows")
    lineage.add(SOURCE, "read", n, n, "read", f"event rows of {path.name}")
    cols = {c: table.column(c).to_pandas() for c in ("Pseudonym", "AGS", "Datum", "Bereich",
                                                     "Status", "Geschlecht", "Geburtsjahr")}
    line = np.arange(n, dtype=np.int64) + 2

    def fail(mask: np.ndarray, column: str, message: str, values: pd.Series) -> None:
        if mask.any():
            i = int(np.flatnonzero(mask)[0])
            more = f" ({int(mask.sum()) - 1} more row(s))" if mask.sum() > 1 else ""
            raise IngestError(path, f"{message}: {values.iloc[i]!r}{more}", line=int(line[i]),
                              column=column)

    # categorical codes validated on the dictionaries
    for c in ("Pseudonym", "AGS", "Datum", "Bereich", "Status"):
        fail((cols[c].astype("string").str.strip() == "").fillna(True).to_numpy(), c,
             "empty value in a required column", cols[c])
    sex = cols["Geschlecht"]
    fail(~sex.isin(S.CASE_SEX).to_numpy(), "Geschlecht", f"not an allowed code {list(S.CASE_SEX)}", sex)
    by = cols["Geburtsjahr"]
    by_txt = pd.Series(by.cat.categories).astype(str).str.strip()
    by_cat = pd.to_numeric(by_txt, errors="coerce").astype("float64")
    bad_cat = (~by_cat.between(1900, 2025).to_numpy(dtype=bool)
               & (by_txt != "").to_numpy(dtype=bool))  # empty = not recorded
    fail(bad_cat[by.cat.codes.to_numpy()], "Geburtsjahr", "not a birth year 1900-2025", by)

    ber, st = cols["Bereich"], cols["Status"]
    fail(~ber.isin(list(_BEREICH)).to_numpy(), "Bereich", f"not an allowed code {list(_BEREICH)}", ber)
    pair = pd.MultiIndex.from_arrays([ber.astype(str), st.astype(str)])
    # code the (Bereich, Status) pairs via a small lookup on category codes
    bc, sc = ber.cat.codes.to_numpy(), st.cat.codes.to_numpy()
    ns = len(st.cat.categories)
    combo = bc.astype(np.int64) * ns + sc
    lut_start = np.zeros(len(ber.cat.categories) * ns, dtype=np.int8) - 1
    lut_sub = np.zeros_like(lut_start)
    lut_ber = np.zeros_like(lut_start) - 1
    for i, b in enumerate(ber.cat.categories):
        for j, s in enumerate(st.cat.categories):
            if (b, s) in _STATUS:
                is_start, sub = _STATUS[(b, s)]
                lut_start[i * ns + j] = int(is_start)
                lut_sub[i * ns + j] = sub
                lut_ber[i * ns + j] = _BEREICH[b]
    start = lut_start[combo]
    fail(start < 0, "Status", "Status not allowed for its Bereich "
         f"({ {k: list(v) for k, v in S.CASE_STATUS.items()} })", pd.Series(pair.map(" / ".join)))
    del pair

    dcat = pd.Series(cols["Datum"].cat.categories)
    dparsed = pd.to_datetime(dcat, format="%d.%m.%Y", errors="coerce")
    mi = (dparsed.dt.year * 12 + dparsed.dt.month - 1).to_numpy()
    bad_d = dparsed.isna().to_numpy() | (dparsed.dt.year < 2000).to_numpy() | (dparsed.dt.year > 2030).to_numpy()
    dcodes = cols["Datum"].cat.codes.to_numpy()
    fail(bad_d[dcodes], "Datum", "not a date DD.MM.YYYY in 2000-2030", cols["Datum"])
    month = mi[dcodes].astype(np.int64)

    acat = pd.Series(cols["AGS"].cat.categories).astype("string").str.strip()
    fixed, repaired = repair_ags(acat)
    acodes = cols["AGS"].cat.codes.to_numpy()
    if repaired.any():
        nrep = int(repaired.to_numpy()[acodes].sum())
        lineage.add(SOURCE, "AGS repair", n, n, "recode",
                    f"{nrep} rows with AGS that had lost the leading zero; zero-padded", nrep)
    known = fixed.isin(frame_ags).to_numpy()
    unknown_rows = ~known[acodes]
    keep = ~unknown_rows
    if unknown_rows.any():
        k = int(unknown_rows.sum())
        lineage.add(SOURCE, "unknown AGS", n, n - k, "drop",
                    f"{k} event rows with AGS not in the reference frame dropped "
                    f"({sorted(set(fixed[~known].dropna().tolist()))[:10]}; first at line "
                    f"{int(line[unknown_rows][0])})")
        log.warning("%s: %d rows with unknown AGS dropped", SOURCE, k)

    pid = cols["Pseudonym"].cat.codes.to_numpy().astype(np.int64)
    out = pd.DataFrame({
        "pid": pid[keep], "ags_code": acodes[keep].astype(np.int64), "month": month[keep],
        "bereich": lut_ber[combo][keep].astype(np.int8), "start": start[keep].astype(np.int8),
        "sub": lut_sub[combo][keep].astype(np.int8), "line": line[keep],
    })
    out.attrs["ags"] = fixed.to_numpy(dtype=object)
    out.attrs["n_persons"] = int(len(cols["Pseudonym"].cat.categories))
    return out


def _pair_spells(ev: pd.DataFrame, bereich: int, lineage: Lineage, label: str) -> pd.DataFrame:
    """Pair start rows with the following end row of the same person (same Bereich).

    Returns spells ``pid, ags_code, sub, start, end`` (end = far future if open).
    Decisions: an end without open spell is ignored; a start following an unclosed start
    closes the earlier spell at the later start (both logged)."""
    e = ev.loc[ev["bereich"] == bereich]
    pid = e["pid"].to_numpy()
    mon = e["month"].to_numpy()
    order = np.lexsort((e["line"].to_numpy(), mon, pid))
    pid, mon = pid[order], mon[order]
    st = e["start"].to_numpy()[order].astype(bool)
    ags = e["ags_code"].to_numpy()[order]
    sub = e["sub"].to_numpy()[order]
    n = len(pid)
    same_next = np.zeros(n, dtype=bool)
    if n > 1:
        same_next[:-1] = pid[1:] == pid[:-1]
    nxt = np.r_[np.arange(1, n), n - 1] if n else np.array([], dtype=np.int64)
    starts = np.flatnonzero(st)
    if bereich == _BEREICH["Sprache"]:  # B1: no end
        end = np.full(len(starts), _FAR)
        # a person holds B1 once: the first certificate counts
        first = np.r_[True, pid[starts][1:] != pid[starts][:-1]] if len(starts) else np.array([], bool)
        dup = int((~first).sum())
        if dup:
            lineage.add(SOURCE, f"{label}: repeated B1", len(starts), len(starts) - dup, "drop",
                        f"{dup} repeated 'B1 erreicht' rows of persons who already hold B1 ignored")
        starts, end = starts[first], end[first]
    else:
        has_next = same_next[starts]
        nx = nxt[starts]
        closed_by_end = has_next & ~st[nx]
        closed_by_start = has_next & st[nx]
        end = np.where(has_next, mon[nx], _FAR)
        if closed_by_start.any():
            k = int(closed_by_start.sum())
            lineage.add(SOURCE, f"{label}: start without end", len(starts), len(starts), "recode",
                        f"{k} spells followed by a new start without an end row: closed at the new start", k)
        ends = np.flatnonzero(~st)
        prev_is_start = np.zeros(len(ends), dtype=bool)
        ok = ends > 0
        prev_is_start[ok] = st[ends[ok] - 1] & (pid[ends[ok] - 1] == pid[ends[ok]])
        orphan = int((~prev_is_start).sum())
        if orphan:
            lineage.add(SOURCE, f"{label}: end without start", len(ends), len(ends) - orphan, "drop",
                        f"{orphan} end rows without an open spell of the same person ignored "
                        "(spell began before the export's history)")
        del closed_by_end
    return pd.DataFrame({"pid": pid[starts], "ags_code": ags[starts], "sub": sub[starts],
                         "start": mon[starts], "end": end})


def aggregate_stocks(ev: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp,
                     frame_ags: list[str], lineage: Lineage) -> pd.DataFrame:
    """Municipality-month stocks for ``frame_ags`` x months ``start..end`` (zero-filled)."""
    ags_cats = ev.attrs["ags"]
    au = _pair_spells(ev, _BEREICH["Unterbringung"], lineage, "AU")
    au = au.loc[au["end"] > au["start"]]
    m0 = min(int(ev["month"].min()) if len(ev) else month_index(start), month_index(start))
    m1 = month_index(end)
    nm = m1 - m0 + 2  # one extra slot for deltas after the window
    frame_pos = {a: i for i, a in enumerate(frame_ags)}
    ags_map = np.array([frame_pos.get(a, -1) for a in ags_cats], dtype=np.int64)
    na = len(frame_ags)

    def stock(spells: pd.DataFrame) -> np.ndarray:
        s = np.clip(spells["start"].to_numpy() - m0, 0, nm - 1)
        e = np.clip(spells["end"].to_numpy() - m0, 0, nm - 1)
        a = ags_map[spells["ags_code"].to_numpy()]
        ok = (a >= 0) & (e > s)
        delta = np.bincount(a[ok] * nm + s[ok], minlength=na * nm) - np.bincount(a[ok] * nm + e[ok], minlength=na * nm)
        return np.cumsum(delta.reshape(na, nm), axis=1)[:, month_index(start) - m0: m1 - m0 + 1]

    def within_au(spells: pd.DataFrame, label: str) -> pd.DataFrame:
        spells = spells.reset_index(drop=True).rename_axis("spell").reset_index()
        j = spells.merge(au[["pid", "ags_code", "start", "end"]], on="pid", suffixes=("", "_au"))
        j["start"] = np.maximum(j["start"], j["start_au"])
        j["end"] = np.minimum(j["end"], j["end_au"])
        j["ags_code"] = j["ags_code_au"]
        j = j.loc[j["end"] > j["start"]]
        outside = len(spells) - j["spell"].nunique()
        if outside:
            lineage.add(SOURCE, f"{label}: outside AU", len(spells), len(spells) - outside, "drop",
                        f"{outside} {label} spells of persons never in AU at the same time (no "
                        "Zuzug AU in the export, or the spell lies outside the AU stay) not counted")
        return j[["pid", "ags_code", "sub", "start", "end"]]

    out = {"refugees": stock(au)}
    b1 = within_au(_pair_spells(ev, _BEREICH["Sprache"], lineage, "B1"), "B1")
    out["b1_holders"] = stock(b1)
    tr = within_au(_pair_spells(ev, _BEREICH["Ausbildung"], lineage, "training"), "training")
    out["in_ausbildung"] = stock(tr.loc[tr["sub"] == 1])
    out["in_weiterbildung"] = stock(tr.loc[tr["sub"] == 2])
    out["in_training"] = out["in_ausbildung"] + out["in_weiterbildung"]
    out["employed"] = stock(within_au(_pair_spells(ev, _BEREICH["Arbeit"], lineage, "employment"),
                                      "employment"))
    months = pd.date_range(start, end, freq="MS")
    res = pd.DataFrame({
        "ags": np.repeat(np.asarray(frame_ags, dtype=object), len(months)),
        "month": np.tile(months.to_numpy(), na),
    })
    for k in STOCKS:
        res[k] = out[k].reshape(-1).astype("int64")
    res["ags"] = res["ags"].astype("str")
    return res


def ingest_case_management(cfg: dict[str, Any], raw: Path, frame: pd.DataFrame,
                           lineage: Lineage) -> dict[str, pd.DataFrame]:
    """The export at ``raw`` aggregated to municipality-month stocks (frame x panel window)."""
    ags = sorted(frame["ags"].tolist())
    ev = read_export(raw, set(ags), lineage,
                     require_final_newline=IngestOptions.from_config(cfg).require_final_newline)
    start, end = panel_window(cfg)
    res = aggregate_stocks(ev, start, end, ags, lineage)
    lineage.add(SOURCE, "aggregate", len(ev), len(res), "aggregate",
                f"{len(ev)} event rows of {ev.attrs['n_persons']} persons aggregated to "
                f"municipality-month stocks ({len(ags)} municipalities x "
                f"{res['month'].nunique()} months, zero-filled)")
    log.info("case management: %d events -> %d municipality-months", len(ev), len(res))
    return {"case_management": res}
