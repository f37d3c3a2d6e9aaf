"""Writers of the stand-in raw files in the native formats of the real sources.

Formats follow ``data/raw/README.md`` exactly. Outputs are byte-identical for the same seed:
xlsx files are rewritten with fixed document-property dates and fixed zip entry timestamps,
rows are written in a stable order and numbers are formatted explicitly (never through
``repr``).
"""

from __future__ import annotations

import datetime as dt
import io
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import openpyxl
import pandas as pd

from .persons import (
    EV_AUSB,
    EV_AUSZUG,
    EV_B1,
    EV_SVB,
    EV_SVB_END,
    EV_TR_END,
    EV_WEITER,
    EV_ZUZUG,
    N_MONTHS,
    N_PANEL,
    PANEL_OFFSET,
    PANEL_START,
    SIM_START,
    PersonsResult,
)
from .structure import Structure

#: Fixed timestamp written into xlsx metadata and zip entries.
FIXED_TIMESTAMP = dt.datetime(2020, 1, 31, 12, 0, 0)


# --------------------------------------------------------------------------- helpers
def _num(x: float, decimals: int) -> str:
    """German decimal-comma number, trailing zeros stripped (``0,75``, ``1``)."""
    s = f"{x:.{decimals}f}"
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s.replace(".", ",")


def _month_labels(start_idx: int, n: int) -> list[str]:
    return [f"{(start_idx + i) // 12:04d}-{(start_idx + i) % 12 + 1:02d}" for i in range(n)]


def mask_ba(values: np.ndarray) -> np.ndarray:
    """Federal-Employment-Agency masking: 0 -> '-', 1-2 -> '*', else the number."""
    v = np.asarray(values)
    out = v.astype(str).astype(object)
    out[v == 0] = "-"
    out[(v == 1) | (v == 2)] = "*"
    return out


def _write_text(path: Path, text: str, encoding: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding=encoding, newline="") as fh:
        fh.write(text)


def _csv_text(df: pd.DataFrame, sep: str, line_end: str = "\r\n") -> str:
    buf = io.StringIO()
    df.to_csv(buf, sep=sep, index=False, lineterminator=line_end)
    return buf.getvalue()


def normalise_xlsx(path: Path) -> None:
    """Rewrite an xlsx with fixed created/modified dates and zip timestamps (byte-stable)."""
    stamp = FIXED_TIMESTAMP.strftime("%Y-%m-%dT%H:%M:%SZ")
    with zipfile.ZipFile(path) as zin:
        entries = [(info.filename, zin.read(info.filename)) for info in zin.infolist()]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zout:
        for name, data in entries:
            if name == "docProps/core.xml":
                text = data.decode("utf-8")
                text = re.sub(r"(<dcterms:created[^>]*>)[^<]*(</dcterms:created>)", rf"\g<1>{stamp}\g<2>", text)
                text = re.sub(r"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)", rf"\g<1>{stamp}\g<2>", text)
                data = text.encode("utf-8")
            info = zipfile.ZipInfo(name, date_time=FIXED_TIMESTAMP.timetuple()[:6])
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o600 << 16
            zout.writestr(info, data)
    path.write_bytes(buf.getvalue())


def _new_workbook() -> openpyxl.Workbook:
    wb = openpyxl.Workbook()
    wb.properties.creator = "Ministerium für Soziales und Integration Baden-Württemberg"
    wb.properties.created = FIXED_TIMESTAMP
    wb.properties.modified = FIXED_TIMESTAMP
    return wb


# --------------------------------------------------------------------------- funding
def write_funding_xlsx(st: Structure, path: Path, rng: np.random.Generator) -> None:
    """``funding/foerderantraege_im.xlsx``: sheets Antraege and Mitglieder (title row 1, header row 3)."""
    wb = _new_workbook()
    ws = wb.active
    ws.title = "Antraege"
    ws.append(["Pakt für Integration mit den Kommunen – Förderung Integrationsmanagement: bewilligte Anträge"])
    ws.append([])
    ws.append(["Antrags-Nr.", "Verband", "Antragsteller", "Art Antragsteller", "Kreis",
               "Bewilligte VZÄ", "Fördersumme EUR", "Bewilligt am"])
    v = st.verbaende.sort_values("verband_id")
    for r in v.itertuples(index=False):
        approved = pd.Timestamp(r.approved).date()
        ws.append([r.verband_id, r.verband_name, r.applicant, r.applicant_type, r.kreis_name,
                   round(float(r.funded_vza), 2), float(r.funding_eur), approved])
        ws.cell(ws.max_row, 8).number_format = "DD.MM.YYYY"
    ws2 = wb.create_sheet("Mitglieder")
    ws2.append(["Pakt für Integration mit den Kommunen – Mitgliedsgemeinden der Antragsteller"])
    ws2.append([])
    ws2.append(["Antrags-Nr.", "AGS", "Gemeinde", "Geflüchtete AU 15.09.2017", "VZÄ Anteil"])
    mem = st.muni.loc[st.muni["applied"]].sort_values(["verband_id", "ags"])
    as_number = rng.random(len(mem)) < 0.3  # typed as numbers: leading zero lost
    for r, num in zip(mem.itertuples(index=False), as_number, strict=True):
        ags: Any = int(r.ags) if num else r.ags
        ws2.append([r.verband_id, ags, r.name, int(r.refugees_20170915), round(float(r.funded_vza), 2)])
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    normalise_xlsx(path)


def write_posts_csv(st: Structure, path: Path) -> None:
    """``funding/im_stellen.csv``: one row per post and municipality served (cp1252, ';')."""
    p = st.posts.sort_values(["post_id", "ags"])
    out = pd.DataFrame({
        "Stellen-ID": p["post_id"],
        "Antrags-Nr.": p["verband_id"],
        "AGS": p["ags"],
        "Gemeinde": p["name"],
        "Anstellungsträger": p["employer"],
        "Trägername": p["traeger_name"],
        "Beginn": p["start"].dt.strftime("%d.%m.%Y"),
        "Ende": p["end"].dt.strftime("%d.%m.%Y").fillna(""),
        "VZÄ Stelle": [_num(x, 2) for x in p["vza_post"]],
        "Anteil Gemeinde": [_num(x, 4) for x in p["share"]],
    })
    _write_text(path, _csv_text(out, ";"), "cp1252")


# --------------------------------------------------------------------------- KPI
KPI_COLUMNS = ["AGS", "Gemeinde", "Quartal", "Klienten", "Erstgespräche", "Integrationspläne",
               "Übergänge Sprachkurs", "Übergänge Ausbildung", "Übergänge Arbeit"]


def kpi_table(st: Structure, pr: PersonsResult, rng: np.random.Generator) -> pd.DataFrame:
    """Quarterly KPI reports per municipality from the quarter the IM started (with gaps)."""
    muni = st.muni
    n_muni = len(muni)
    q_of_t = (SIM_START + np.arange(N_MONTHS)) // 3  # absolute quarter index
    q_ids = np.unique(q_of_t)
    stock = np.zeros((n_muni, N_MONTHS), dtype=np.int64)
    stock[:, PANEL_OFFSET:] = pr.counts["refugees"]

    def qsum(arr: np.ndarray) -> np.ndarray:
        return np.stack([arr[:, q_of_t == q].sum(axis=1) for q in q_ids], axis=1)

    def qmean(arr: np.ndarray) -> np.ndarray:
        return np.stack([arr[:, q_of_t == q].mean(axis=1) for q in q_ids], axis=1)

    au = qmean(stock)
    zuzug = qsum(pr.entries_q["zuzug"])
    b1 = qsum(pr.entries_q["b1"])
    tr = qsum(pr.entries_q["training"])
    svb = qsum(pr.entries_q["svb"])
    coverage = rng.uniform(0.35, 0.9, n_muni)
    band = muni["plan_use_band"].fillna("20to80").to_numpy()
    plan_lo = np.select([band == "lt20", band == "20to80"], [0.0, 0.2], 0.8)
    plan_share = plan_lo + rng.random(n_muni) * np.where(band == "20to80", 0.6, 0.2)
    rows = []
    start = muni["start_idx"].to_numpy()
    for i in np.flatnonzero(start >= 0):
        q0 = start[i] // 3
        for j, q in enumerate(q_ids):
            if q < q0:
                continue
            first = q == q0
            klienten = rng.binomial(int(round(au[i, j])), coverage[i])
            erst = klienten if first else rng.binomial(int(zuzug[i, j]), coverage[i])
            plans = rng.binomial(klienten, plan_share[i])
            sprach = rng.poisson(1.5 * b1[i, j] * coverage[i] + 0.2)
            ausb = rng.binomial(int(tr[i, j]), coverage[i])
            arbeit = rng.binomial(int(svb[i, j]), coverage[i])
            rows.append([muni.at[i, "ags"], muni.at[i, "name"], f"{q // 4:04d}-Q{q % 4 + 1}",
                         klienten, erst, plans, sprach, ausb, arbeit])
    df = pd.DataFrame(rows, columns=KPI_COLUMNS)
    vals = df[KPI_COLUMNS[3:]].astype("Int64")
    miss = rng.random(vals.shape) < 0.08
    # some municipalities stop reporting the transition figures altogether
    quit_rep = df["AGS"].isin(muni.loc[rng.random(n_muni) < 0.1, "ags"]).to_numpy() & (rng.random(len(df)) < 0.7)
    miss[:, 3:] |= quit_rep[:, None]
    df[KPI_COLUMNS[3:]] = vals.mask(miss)
    return df


def write_kpi_xlsx(df: pd.DataFrame, path: Path) -> None:
    wb = _new_workbook()
    ws = wb.active
    ws.title = "Kennzahlen"
    ws.append(KPI_COLUMNS)
    for r in df.itertuples(index=False):
        ws.append([None if (isinstance(v, type(pd.NA)) or v is pd.NA) else (int(v) if k > 2 else v)
                   for k, v in enumerate(r)])
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    normalise_xlsx(path)


# --------------------------------------------------------------------------- outcomes
def _long(st: Structure, arrays: dict[str, np.ndarray]) -> pd.DataFrame:
    muni = st.muni
    months = _month_labels(PANEL_START, N_PANEL)
    df = pd.DataFrame({
        "ags": np.repeat(muni["ags"].to_numpy(), N_PANEL),
        "name": np.repeat(muni["name"].to_numpy(), N_PANEL),
        "month": np.tile(months, len(muni)),
    })
    for k, v in arrays.items():
        df[k] = v.reshape(-1)
    return df


BA_HEADER_LINES = (
    "# Statistik der Bundesagentur für Arbeit",
    "# {title}",
    "# Gemeinden (Wohnort) Baden-Württemberg, Berichtsmonate 2015-01 bis 2020-12, Stichtag Monatsende",
    "# Zeichenerklärung: * = Wert 1 oder 2 (aus Datenschutzgründen anonymisiert), - = nichts vorhanden",
    "# Erstellungsdatum: 31.01.2021; synthetische Ersatzdaten (ifm_eval synth)",
)


#: Share of municipality-months whose B1 stock is not reported (missing at random).
B1_UNREPORTED_SHARE = 0.01


def outcome_values(st: Structure, pr: PersonsResult, rng: np.random.Generator) -> tuple[pd.DataFrame, np.ndarray]:
    """The monthly outcome stocks in file order (``ags, name, month, ref, b1, ausb, weiter,
    svb``; one row per municipality and panel month) and the mask of B1 cells left
    unreported. The one draw of ``rng`` both the file writer and the in-memory replicate
    path (:mod:`ifm_eval.synth.memory`) use."""
    c = pr.counts
    df = _long(st, {"ref": c["refugees"], "b1": c["b1"], "ausb": c["ausbildung"],
                    "weiter": c["weiterbildung"], "svb": c["svb"]})
    return df, rng.random(len(df)) < B1_UNREPORTED_SHARE


def write_outcomes(st: Structure, pr: PersonsResult, out_dir: Path, rng: np.random.Generator,
                   files: dict[str, str]) -> dict[str, int]:
    """The four monthly outcome files; returns counts of masked/unreported cells."""
    df, unrep = outcome_values(st, pr, rng)
    den = pd.DataFrame({"AGS": df["ags"], "Gemeinde": df["name"], "Monat": df["month"],
                        "Geflüchtete AU": df["ref"]})
    _write_text(out_dir / files["refugees_au"], _csv_text(den, ";"), "utf-8-sig")

    ba = pd.DataFrame({"Region": df["ags"], "Regionsname": df["name"], "Berichtsmonat": df["month"],
                       "SvB Asylherkunftsländer": mask_ba(df["svb"].to_numpy())})
    head = "\r\n".join(BA_HEADER_LINES).format(
        title="Sozialversicherungspflichtig Beschäftigte aus den nichteuropäischen Asylherkunftsländern") + "\r\n"
    _write_text(out_dir / files["employment_ba"], head + _csv_text(ba, ";"), "cp1252")

    tr = pd.DataFrame({"Region": df["ags"], "Regionsname": df["name"], "Berichtsmonat": df["month"],
                       "In Ausbildung": mask_ba(df["ausb"].to_numpy()),
                       "In Weiterbildung": mask_ba(df["weiter"].to_numpy())})
    head = "\r\n".join(BA_HEADER_LINES).format(
        title="Personen aus den nichteuropäischen Asylherkunftsländern in Berufsausbildung und beruflicher Weiterbildung") + "\r\n"
    _write_text(out_dir / files["training"], head + _csv_text(tr, ";"), "cp1252")

    b1 = df["b1"].astype("Int64").mask(unrep)
    lang = pd.DataFrame({"ags": df["ags"], "gemeinde": df["name"], "monat": df["month"], "b1_bestand": b1})
    _write_text(out_dir / files["language_b1"], _csv_text(lang, ",", "\n"), "utf-8")
    return {
        "employment_masked_star": int(((df["svb"] >= 1) & (df["svb"] <= 2)).sum()),
        "employment_masked_dash": int((df["svb"] == 0).sum()),
        "language_unreported": int(unrep.sum()),
    }


# --------------------------------------------------------------------------- case management
ORIGIN_VARIANTS = {
    "Syrien": ("Syrien", "Syrien, Arabische Republik", "syrien"),
    "Irak": ("Irak", "Irak ", "Iraq"),
    "Afghanistan": ("Afghanistan", "Afganistan"),
}
EVENT_LABELS = {
    EV_ZUZUG: ("Unterbringung", "Zuzug AU"),
    EV_AUSZUG: ("Unterbringung", "Auszug"),
    EV_B1: ("Sprache", "B1 erreicht"),
    EV_AUSB: ("Ausbildung", "Beginn Ausbildung"),
    EV_WEITER: ("Ausbildung", "Beginn Weiterbildung"),
    EV_TR_END: ("Ausbildung", "Ende"),
    EV_SVB: ("Arbeit", "Beginn SvB"),
    EV_SVB_END: ("Arbeit", "Ende"),
}


def case_management_table(st: Structure, pr: PersonsResult, rng: np.random.Generator) -> pd.DataFrame:
    """One row per person and status change (observed paths), sorted by person and date."""
    persons = pr.persons
    n = len(persons)
    origin = persons["origin"].to_numpy().astype(object).copy()
    for canon, variants in ORIGIN_VARIANTS.items():
        sel = np.flatnonzero(origin == canon)
        alt = rng.random(sel.size) < 0.15
        origin[sel[alt]] = np.array(variants, dtype=object)[rng.integers(1, len(variants), alt.sum())]
    birth = pd.array(persons["birth_year"].to_numpy(), dtype="Int64")
    birth[rng.random(n) < 0.005] = pd.NA
    # export order: by pseudonym (as the software lists cases), then chronologically
    rank = np.empty(n, dtype=np.int64)
    rank[np.argsort(persons["pid"].to_numpy().astype(str), kind="stable")] = np.arange(n)
    ev = pr.events.assign(rank=rank[pr.events["p"].to_numpy()])
    ev = ev.sort_values(["rank", "t", "code"], kind="stable")
    p = ev["p"].to_numpy()
    dates = np.array([f"01.{(SIM_START + t) % 12 + 1:02d}.{(SIM_START + t) // 12:04d}" for t in range(N_MONTHS)],
                     dtype=object)
    codes = ev["code"].to_numpy()
    bereich = np.array([EVENT_LABELS[k][0] for k in range(8)], dtype=object)[codes]
    status = np.array([EVENT_LABELS[k][1] for k in range(8)], dtype=object)[codes]
    ags = st.muni["ags"].to_numpy()[persons["muni"].to_numpy()]
    out = pd.DataFrame({
        "Pseudonym": persons["pid"].to_numpy()[p],
        "AGS": ags[p],
        "Geburtsjahr": birth[p],
        "Geschlecht": persons["sex"].to_numpy()[p],
        "Herkunftsland": origin[p],
        "Datum": dates[ev["t"].to_numpy()],
        "Bereich": bereich,
        "Status": status,
    })
    return out


def write_case_management(df: pd.DataFrame, path: Path) -> None:
    _write_text(path, _csv_text(df, ";", "\n"), "utf-8")
