"""Declared schemas of the administrative raw files (see ``data/raw/README.md``).

One :class:`~ifm_eval.ingest.readers.Schema` per file/sheet: column name in the file, output
name, type, nullability, range, allowed codes, pattern, and the key that must be unique.
The readers validate against these declarations; ``describe_all()`` renders them as one
table for documentation.
"""

from __future__ import annotations

import pandas as pd

from ifm_eval.ingest.readers import Col, Schema

ANTRAG_PATTERN = r"PIK-IM-\d{4}"

#: "not reported" markers of German tables (statistical offices: ``.`` unknown or secret,
#: ``...`` not yet available, ``x`` not applicable; ``k.A.`` keine Angabe; ``-`` where a
#: table uses it for "no value"). BA files keep ``-`` = 0 (masked counts) and so do not
#: list it.
NA_DESTATIS = ("k.A.", "-", "–", ".", "...", "x")
NA_BA = ("k.A.", ".")
NA_REPORTS = ("k.A.", "-", "–", ".", "n.v.")

FUNDING_VERBAENDE = Schema(
    source="funding_applications",
    decimal_comma=True,  # numbers typed as text in German Excel ("0,75"); numeric cells kept
    columns=(
        Col("Antrags-Nr.", "antrag_nr", pattern=ANTRAG_PATTERN, description="application number"),
        Col("Verband", "verband", description="applicant association (Verband)"),
        Col("Antragsteller", "antragsteller", description="applicant authority"),
        Col("Art Antragsteller", "art_antragsteller",
            allowed=("Landratsamt", "Stadtkreis", "Gemeinde", "Verwaltungsgemeinschaft")),
        Col("Kreis", "kreis_name", description="Kreis name"),
        Col("Bewilligte VZÄ", "vza_bewilligt", "number", min=0, max=500, unit="VZÄ",
            description="funded full-time equivalents of the Verband"),
        Col("Fördersumme EUR", "foerdersumme_eur", "number", min=0, unit="EUR"),
        Col("Bewilligt am", "bewilligt_am", "date", description="approval date"),
    ),
    unique=(("antrag_nr",),),
)

FUNDING_MEMBERS = Schema(
    source="funding_applications",
    decimal_comma=True,
    columns=(
        Col("Antrags-Nr.", "antrag_nr", pattern=ANTRAG_PATTERN),
        Col("AGS", "ags", "ags"),
        Col("Gemeinde", "gemeinde"),
        Col("Geflüchtete AU 15.09.2017", "refugees_2017_09_15", "int", min=0, unit="persons",
            description="refugees in follow-up housing on 15.09.2017"),
        Col("VZÄ Anteil", "vza_share", "number", min=0, max=100, unit="VZÄ",
            description="funded VZÄ attributed to the member"),
    ),
    unique=(("ags",),),
)

IM_POSTS = Schema(
    source="im_posts",
    decimal_comma=True,
    separator=";",
    columns=(
        Col("Stellen-ID", "stellen_id", pattern=r"S\d{5}"),
        Col("Antrags-Nr.", "antrag_nr", pattern=ANTRAG_PATTERN),
        Col("AGS", "ags", "ags"),
        Col("Gemeinde", "gemeinde"),
        Col("Anstellungsträger", "employer_type", allowed=("Landratsamt", "Gemeinde", "Freier Träger")),
        Col("Trägername", "employer_name"),
        Col("Beginn", "beginn", "date"),
        Col("Ende", "ende", "date", nullable=True, description="empty = still running"),
        Col("VZÄ Stelle", "vza_post", "number", min=0, min_exclusive=True, max=1, unit="VZÄ"),
        Col("Anteil Gemeinde", "share", "number", min=0, min_exclusive=True, max=1,
            description="share of the post serving the municipality"),
    ),
    unique=(("stellen_id", "ags"),),
)

_KPI_COUNTS = (
    ("Klienten", "clients"), ("Erstgespräche", "first_talks"),
    ("Integrationspläne", "integration_plans"), ("Übergänge Sprachkurs", "to_language_course"),
    ("Übergänge Ausbildung", "to_training"), ("Übergänge Arbeit", "to_work"),
)
KPI_REPORTS = Schema(
    source="kpi_reports",
    decimal_comma=True,
    na_tokens=NA_REPORTS,
    columns=(
        Col("AGS", "ags", "ags"),
        Col("Gemeinde", "gemeinde"),
        Col("Quartal", "quarter", "quarter"),
        *(Col(n, o, "int", nullable=True, min=0, unit="persons") for n, o in _KPI_COUNTS),
    ),
    unique=(("ags", "quarter"),),
)

REFUGEES_AU = Schema(
    source="refugees_au",
    decimal_comma=True,  # counts only; '1.234' is a thousands separator
    na_tokens=NA_DESTATIS,
    separator=";",
    columns=(
        Col("AGS", "ags", "ags"),
        Col("Gemeinde", "gemeinde"),
        Col("Monat", "month", "month"),
        Col("Geflüchtete AU", "refugees", "int", nullable=True, min=0, unit="persons",
            description="month-end stock of refugees in follow-up housing (target group)"),
    ),
    unique=(("ags", "month"),),
)

EMPLOYMENT_BA = Schema(
    source="employment_ba",
    decimal_comma=True,
    na_tokens=NA_BA,
    separator=";",
    columns=(
        Col("Region", "ags", "ags"),
        Col("Regionsname", "gemeinde"),
        Col("Berichtsmonat", "month", "month"),
        Col("SvB Asylherkunftsländer", "employed", "masked", nullable=True, unit="persons",
            description="employed subject to social insurance (* = 1-2, - = 0)"),
    ),
    unique=(("ags", "month"),),
)

TRAINING = Schema(
    source="training",
    decimal_comma=True,
    na_tokens=NA_BA,
    separator=";",
    columns=(
        Col("Region", "ags", "ags"),
        Col("Regionsname", "gemeinde"),
        Col("Berichtsmonat", "month", "month"),
        Col("In Ausbildung", "in_ausbildung", "masked", nullable=True, unit="persons"),
        Col("In Weiterbildung", "in_weiterbildung", "masked", nullable=True, unit="persons"),
    ),
    unique=(("ags", "month"),),
)

LANGUAGE_B1 = Schema(
    source="language_b1",
    na_tokens=("k.A.", "-", "–", "."),
    separator=",",
    columns=(
        Col("ags", "ags", "ags"),
        Col("gemeinde", "gemeinde"),
        Col("monat", "month", "month"),
        Col("b1_bestand", "b1_holders", "int", nullable=True, min=0, unit="persons"),
    ),
    unique=(("ags", "month"),),
)

#: Case-management export: allowed codes (validated vectorised in ``case_management.py``).
CASE_COLUMNS = ("Pseudonym", "AGS", "Geburtsjahr", "Geschlecht", "Herkunftsland", "Datum",
                "Bereich", "Status")
CASE_STATUS = {
    "Unterbringung": ("Zuzug AU", "Auszug"),
    "Sprache": ("B1 erreicht",),
    "Ausbildung": ("Beginn Ausbildung", "Beginn Weiterbildung", "Ende"),
    "Arbeit": ("Beginn SvB", "Ende"),
}
CASE_SEX = ("m", "w", "d")

ALL = {
    "funding_applications/Antraege": FUNDING_VERBAENDE,
    "funding_applications/Mitglieder": FUNDING_MEMBERS,
    "im_posts": IM_POSTS,
    "kpi_reports": KPI_REPORTS,
    "refugees_au": REFUGEES_AU,
    "employment_ba": EMPLOYMENT_BA,
    "training": TRAINING,
    "language_b1": LANGUAGE_B1,
}


def describe_all() -> pd.DataFrame:
    """All declared schemas as one table (source, column, name, kind, range, codes, ...)."""
    frames = []
    for key, schema in ALL.items():
        d = schema.describe()
        d["source"] = key
        frames.append(d)
    return pd.concat(frames, ignore_index=True)
