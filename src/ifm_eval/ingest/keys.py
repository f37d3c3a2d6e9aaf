"""Repair and match municipality keys as people type them.

Real files give the 8-digit AGS with its leading zero lost (``8111000``), 5-digit Kreis keys
(``08115``), municipality names instead of keys (``Stadt Böblingen``, ``boeblingen``), Verband
names (``GVV Holzgerlingen``, ``Landratsamt Böblingen``), typos, and junk (``k.A.``).
:func:`match_keys` matches every typed value to the reference frame, in this order:

``exact``        8 digits, a municipality AGS
``zero_padded``  digits with lost leading zero(s) (also ``8111000.0`` from a float column)
``kreis_key``    5-digit Kreis key (or 4 digits with lost zero, or ``Landkreis <name>``):
                 expands to the Kreis's members
``verband``      a Verband id (``PIK-IM-0012``) or Verband name (needs ``verbaende``), or a
                 Gemeindeverwaltungsverband name of the frame: expands to the members
``name``         normalised municipality name, unique within the frame (or within the
                 ``within`` Kreis/Verband hint of that row)
``fuzzy``        rapidfuzz ratio on normalised names, score >= ``threshold``; among the
                 candidates the fewest edits win (OSA: a swap of two letters is one edit)
``ambiguous``    a name shared by several municipalities, or a fuzzy tie
``unmatched``    nothing matched (empty, junk, unknown digits)

Nothing is dropped: every input row gives at least one output row; expansions give one row
per member with ``expanded = True``. The function is generic (used by the survey and the
administrative readers) and caches per distinct typed value, so 100k rows match in well
under a second.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import pandas as pd
from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA

METHODS = ("exact", "zero_padded", "kreis_key", "verband", "name", "fuzzy", "ambiguous",
           "unmatched")
OUTPUT_COLUMNS = ["input_row", "input", "ags", "method", "score", "n_members", "expanded",
                  "status", "candidates"]

_UMLAUTS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "é": "e", "è": "e"})
#: words that carry no identity in a municipality name (dropped anywhere in the name)
_NOISE_WORDS = {
    "stadt", "gemeinde", "landeshauptstadt", "universitaetsstadt", "grosse", "kreisstadt",
    "grosse kreisstadt", "gem", "stadtverwaltung", "buergermeisteramt", "rathaus", "markt",
}
_KREIS_PREFIX = re.compile(
    r"^(landkreis|landratsamt|lra|kreis|stadtkreis|lk|kreisverwaltung)\s+"
)
_KREIS_SUFFIX = re.compile(r"\s+(landkreis|stadtkreis|kreis)$")
_VERBAND_PREFIX = re.compile(
    r"^(gvv|vvg|verwaltungsgemeinschaft|gemeindeverwaltungsverband|vereinbarte "
    r"verwaltungsgemeinschaft( der stadt| der gemeinde)?|verband)\s+"
)
_VERBAND_ID = re.compile(r"^pik\s*-?\s*im\s*-?\s*(\d{1,4})$")


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFC", str(text)).lower().translate(_UMLAUTS)
    text = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in text if not unicodedata.combining(ch))


def normalise_name(text: object) -> str:
    """Normalise a municipality name for matching.

    Lower case, umlauts/ß folded (``ü`` → ``ue``), punctuation removed, and the words
    "Stadt", "Gemeinde", ", Landeshauptstadt", "Große Kreisstadt" … dropped:
    ``"Stuttgart, Landeshauptstadt"`` → ``"stuttgart"``; ``"St. Leon-Rot"`` → ``"st leon rot"``.
    """
    if text is None or (isinstance(text, float) and pd.isna(text)) or text is pd.NA:
        return ""
    s = _fold(text)
    s = s.replace("sankt ", "st ")
    s = re.sub(r"[^a-z0-9]+", " ", s)
    words = [w for w in s.split() if w not in _NOISE_WORDS]
    return " ".join(words)


def _alias(norm: str, raw: str) -> str:
    """Short form without parenthetical or slash qualifier: "Wernau (Neckar)" → "wernau"."""
    base = re.sub(r"\(.*?\)", " ", str(raw))
    base = base.split("/")[0]
    return normalise_name(base)


@dataclass
class _Index:
    ags: set[str]
    kreise: dict[str, list[str]]          # kreis key -> member ags
    kreis_names: dict[str, list[tuple[str, str]]]  # normalised name -> [(kreis key, type)]
    names: dict[str, list[str]]           # normalised name -> ags list
    aliases: dict[str, list[str]]         # short alias -> ags list
    verband_names: dict[str, str]         # normalised verband name -> verband id
    verband_members: dict[str, list[str]]  # verband id -> member ags
    ags_kreis: dict[str, str]
    ags_verband: dict[str, str]
    choices: list[str]


def _build_index(frame: pd.DataFrame, verbaende: pd.DataFrame | None) -> _Index:
    ags = frame["ags"].astype(str).tolist()
    kreis = (frame["kreis"].astype(str) if "kreis" in frame else frame["ags"].str[:5]).tolist()
    kreise: dict[str, list[str]] = {}
    for a, k in zip(ags, kreis, strict=False):
        kreise.setdefault(k, []).append(a)
    kreis_names: dict[str, list[tuple[str, str]]] = {}
    if "kreis_name" in frame:
        ktype = (frame["kreis_type"].astype(str).tolist() if "kreis_type" in frame
                 else ["Stadtkreis" if "Stadtkreis" in str(n) else "Landkreis"
                       for n in frame["kreis_name"]])
        seen: set[str] = set()
        for k, kn, kt in zip(kreis, frame["kreis_name"].astype(str), ktype, strict=False):
            if k in seen:
                continue
            seen.add(k)
            full = normalise_name(kn.replace("Stadtkreis", "").replace("Landkreis", ""))
            for n in {full, _KREIS_SUFFIX.sub("", full).strip()}:
                kreis_names.setdefault(n, []).append((k, kt))
    names: dict[str, list[str]] = {}
    aliases: dict[str, list[str]] = {}
    for a, nm in zip(ags, frame["name"].astype(str), strict=False):
        n = normalise_name(nm)
        names.setdefault(n, []).append(a)
        al = _alias(n, nm)
        if al != n:
            aliases.setdefault(al, []).append(a)
    verband_names: dict[str, str] = {}
    verband_members: dict[str, list[str]] = {}
    ags_verband: dict[str, str] = {}
    if verbaende is not None and len(verbaende):
        v = verbaende.dropna(subset=["ags"])
        for vid, grp in v.groupby("verband_id", sort=True):
            verband_members[str(vid)] = sorted(grp["ags"].astype(str).unique())
            for a in verband_members[str(vid)]:
                ags_verband[a] = str(vid)
            if "verband_name" in grp:
                for vn in grp["verband_name"].dropna().astype(str).unique():
                    verband_names.setdefault(_verband_norm(vn), str(vid))
    # Gemeindeverwaltungsverbände / VVG of the frame (several members) count as Verbände too
    if "gemeindeverband_name" in frame and "gemeindeverband" in frame:
        gv = frame.groupby("gemeindeverband")
        for gid, grp in gv:
            if len(grp) < 2:
                continue
            key = f"GV:{gid}"
            verband_members.setdefault(key, sorted(grp["ags"].astype(str)))
            gname = str(grp["gemeindeverband_name"].iloc[0])
            verband_names.setdefault(_verband_norm(gname), key)
    choices = sorted(names)
    return _Index(set(ags), kreise, kreis_names, names, aliases, verband_names,
                  verband_members, dict(zip(ags, kreis, strict=False)), ags_verband, choices)


def _verband_norm(text: str) -> str:
    s = normalise_name(text)
    s = _VERBAND_PREFIX.sub("", s)
    return s


def _digits(text: str) -> str | None:
    t = text.strip().replace(" ", "")
    t = re.sub(r"\.0+$", "", t)
    return t if t.isdigit() else None


def _match_one(text: object, idx: _Index, threshold: float, within: str | None) -> dict:
    """Return {method, ags: list, score, candidates} for one typed value."""
    if text is None or text is pd.NA or (isinstance(text, float) and pd.isna(text)):
        return {"method": "unmatched", "ags": [], "score": 0.0, "candidates": ""}
    raw = str(text).strip()
    if not raw:
        return {"method": "unmatched", "ags": [], "score": 0.0, "candidates": ""}
    d = _digits(raw)
    if d is not None:
        if len(d) == 8 and d in idx.ags:
            return {"method": "exact", "ags": [d], "score": 100.0, "candidates": ""}
        if len(d) == 7 and ("0" + d) in idx.ags:
            return {"method": "zero_padded", "ags": ["0" + d], "score": 100.0, "candidates": ""}
        if len(d) == 5 and d in idx.kreise:
            return {"method": "kreis_key", "ags": idx.kreise[d], "score": 100.0, "candidates": d}
        if len(d) == 4 and ("0" + d) in idx.kreise:
            return {"method": "kreis_key", "ags": idx.kreise["0" + d], "score": 100.0,
                    "candidates": ""}
        return {"method": "unmatched", "ags": [], "score": 0.0, "candidates": ""}
    folded = re.sub(r"[^a-z0-9]+", " ", _fold(raw)).strip()
    m = _VERBAND_ID.match(folded.replace(" ", "-").replace("--", "-")) or _VERBAND_ID.match(folded)
    if m:
        vid = f"PIK-IM-{int(m.group(1)):04d}"
        if vid in idx.verband_members:
            return {"method": "verband", "ags": idx.verband_members[vid], "score": 100.0,
                    "candidates": vid}
        return {"method": "unmatched", "ags": [], "score": 0.0, "candidates": ""}
    norm = normalise_name(raw)
    if not norm:
        return {"method": "unmatched", "ags": [], "score": 0.0, "candidates": ""}
    # Verband names (explicit GVV/VVG prefix or a known Verband name)
    vnorm = _verband_norm(raw)
    has_vprefix = bool(_VERBAND_PREFIX.match(normalise_name(raw)))
    if vnorm in idx.verband_names and (has_vprefix or norm not in idx.names):
        vid = idx.verband_names[vnorm]
        return {"method": "verband", "ags": idx.verband_members[vid], "score": 100.0,
                "candidates": vid}
    # Kreis names with an explicit prefix ("Landkreis Böblingen", "LRA Tübingen")
    kp = _KREIS_PREFIX.match(norm)
    if kp or _KREIS_SUFFIX.search(norm):
        prefix = kp.group(1) if kp else ""
        stripped = _KREIS_PREFIX.sub("", norm)
        opts: list[tuple[str, str]] = []
        for kname in (stripped, _KREIS_SUFFIX.sub("", stripped).strip()):
            opts = idx.kreis_names.get(kname, [])
            if opts:
                break
        if not opts:
            found = process.extractOne(stripped, list(idx.kreis_names), scorer=fuzz.ratio,
                                       score_cutoff=threshold)
            if found:
                opts = idx.kreis_names[found[0]]
        if len(opts) > 1:
            want = "Stadtkreis" if prefix == "stadtkreis" else "Landkreis"
            opts = [o for o in opts if o[1] == want] or opts
        if len(opts) == 1:
            k = opts[0][0]
            return {"method": "kreis_key", "ags": idx.kreise[k], "score": 100.0,
                    "candidates": k}
    for table in (idx.names, idx.aliases):
        hits = table.get(norm)
        if hits:
            if len(hits) == 1:
                return {"method": "name", "ags": hits, "score": 100.0, "candidates": ""}
            if within:
                narrowed = [a for a in hits
                            if idx.ags_kreis.get(a) == within or idx.ags_verband.get(a) == within]
                if len(narrowed) == 1:
                    return {"method": "name", "ags": narrowed, "score": 100.0,
                            "candidates": ""}
            return {"method": "ambiguous", "ags": [], "score": 100.0,
                    "candidates": "|".join(hits)}
    found = process.extract(norm, idx.choices, scorer=fuzz.ratio, limit=5,
                            score_cutoff=threshold)
    if found:
        # among the candidates above the threshold the fewest edits win, counting a swap of
        # two neighbouring letters as one edit (OSA); then the higher ratio; ties = ambiguous
        ranked = sorted(((OSA.distance(norm, c), -s, c) for c, s, _ in found))
        best_key = ranked[0][:2]
        top = [c for d, s, c in ranked if (d, s) == best_key]
        best = -best_key[1]
        hits = sorted({a for c in top for a in idx.names[c]})
        if len(hits) == 1:
            return {"method": "fuzzy", "ags": hits, "score": float(best), "candidates": top[0]}
        if within:
            narrowed = [a for a in hits
                        if idx.ags_kreis.get(a) == within or idx.ags_verband.get(a) == within]
            if len(narrowed) == 1:
                return {"method": "fuzzy", "ags": narrowed, "score": float(best),
                        "candidates": top[0]}
        return {"method": "ambiguous", "ags": [], "score": float(best),
                "candidates": "|".join(hits)}
    return {"method": "unmatched", "ags": [], "score": 0.0, "candidates": ""}


def match_keys(
    typed: pd.Series,
    frame: pd.DataFrame,
    threshold: float = 90,
    verbaende: pd.DataFrame | None = None,
    within: pd.Series | None = None,
) -> pd.DataFrame:
    """Match typed municipality keys to the reference ``frame``.

    Parameters
    ----------
    typed:
        The keys as typed (any dtype; numbers that lost their leading zero are fine).
    frame:
        Reference municipalities with at least ``ags`` and ``name``; ``kreis``,
        ``kreis_name``, ``gemeindeverband``, ``gemeindeverband_name`` are used if present.
    threshold:
        Minimum rapidfuzz ``ratio`` (0-100) for a fuzzy name match.
    verbaende:
        Optional Verband membership, one row per member: ``verband_id``, ``verband_name``,
        ``ags``. Enables matching Verband ids/names (expanded to members) and disambiguation.
    within:
        Optional per-row hint (Kreis key or Verband id, aligned with ``typed``) used to break
        ties between municipalities of the same name.

    Returns
    -------
    DataFrame with :data:`OUTPUT_COLUMNS`: one row per input row, or one row per member for
    Kreis/Verband expansions (``expanded = True``); ``input_row`` is the position of the input
    row. ``status`` is ``matched``, ``expanded``, ``ambiguous`` or ``unmatched``; ``ags`` is
    None unless matched/expanded; ``candidates`` lists tied AGS for ambiguous keys, or the
    Kreis/Verband key of an expansion.
    """
    idx = _build_index(frame, verbaende)
    values = list(typed)
    hints = list(within) if within is not None else [None] * len(values)
    cache: dict[tuple, dict] = {}
    rows_input_row: list[int] = []
    rows_input: list[object] = []
    rows_ags: list[object] = []
    rows_method: list[str] = []
    rows_score: list[float] = []
    rows_n: list[int] = []
    rows_exp: list[bool] = []
    rows_status: list[str] = []
    rows_cand: list[str] = []
    for i, (val, hint) in enumerate(zip(values, hints, strict=False)):
        hint = None if hint is None or (isinstance(hint, float) and pd.isna(hint)) else str(hint)
        key = (None if val is None or (isinstance(val, float) and pd.isna(val)) else str(val),
               hint)
        res = cache.get(key)
        if res is None:
            res = _match_one(val, idx, threshold, hint)
            cache[key] = res
        members = res["ags"]
        expanded = res["method"] in ("kreis_key", "verband")
        if members:
            for a in members:
                rows_input_row.append(i)
                rows_input.append(val)
                rows_ags.append(a)
                rows_method.append(res["method"])
                rows_score.append(res["score"])
                rows_n.append(len(members))
                rows_exp.append(expanded)
                rows_status.append("expanded" if expanded else "matched")
                rows_cand.append(res["candidates"])
        else:
            rows_input_row.append(i)
            rows_input.append(val)
            rows_ags.append(None)
            rows_method.append(res["method"])
            rows_score.append(res["score"])
            rows_n.append(0)
            rows_exp.append(False)
            rows_status.append(res["method"])
            rows_cand.append(res["candidates"])
    out = pd.DataFrame(
        {
            "input_row": pd.array(rows_input_row, dtype="int64"),
            "input": pd.Series(rows_input, dtype=object),
            "ags": pd.Series(rows_ags, dtype=object),
            "method": rows_method,
            "score": pd.array(rows_score, dtype="float64"),
            "n_members": pd.array(rows_n, dtype="int64"),
            "expanded": pd.array(rows_exp, dtype=bool),
            "status": rows_status,
            "candidates": rows_cand,
        },
        columns=OUTPUT_COLUMNS,
    )
    return out


def summary(matches: pd.DataFrame) -> pd.DataFrame:
    """Counts of input rows per method (for logs and the key report)."""
    first = matches.drop_duplicates("input_row")
    return first["method"].value_counts().rename_axis("method").reset_index(name="n_inputs")
