"""The real municipality frame of Baden-Württemberg (Destatis Gemeindeverzeichnis).

Parses the GV-ISys extract (record types 10-60: Land, Regierungsbezirk, Region, Kreis,
Gemeindeverband, Gemeinde), splits the key columns into the 8-digit AGS, converts numbers
with space thousands separators and decimal-comma coordinates, and returns one row per
municipality. The two unincorporated areas (gemeindefreie Gebiete, Textkennzeichen 65/66)
are kept with ``unincorporated = True`` and are not counted as municipalities.

Contract (real data, Q4 2020 edition): 1,101 municipalities in 44 Kreise, 4
Regierungsbezirke, population 11,100,394 (31.12.2019).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

log = logging.getLogger(__name__)

RECORD_TYPES = {
    "10": "Land",
    "20": "Regierungsbezirk",
    "30": "Region",
    "40": "Kreis",
    "50": "Gemeindeverband",
    "60": "Gemeinde",
}
#: Textkennzeichen of record type 60 that denote unincorporated areas.
UNINCORPORATED_CODES = {"65", "66"}
#: Textkennzeichen of record type 40.
KREIS_TYPES = {"41": "Kreisfreie Stadt", "42": "Stadtkreis", "43": "Kreis", "44": "Landkreis"}
URBANISATION = {"01": "dicht besiedelt", "02": "mittlere Besiedlungsdichte", "03": "gering besiedelt"}

EXPECTED_COLUMNS = [
    "satzart", "textkennzeichen", "land", "rb", "kreis", "vb", "gemeinde", "gemeindename",
    "flaeche", "bevoelkerung", "maennlich", "weiblich", "jekm2", "postleitzahl",
    "laengengrad", "breitengrad", "schluessel", "bezeichnung",
    "verstaedterungschluessel", "verstaedterungbezeichnung",
]

MUNICIPALITY_COLUMNS = [
    "ags", "name", "municipality_type", "unincorporated", "kreis", "kreis_name",
    "kreis_type", "rb", "rb_name", "gemeindeverband", "gemeindeverband_name",
    "population", "population_male", "population_female", "area_km2", "density",
    "postcode", "lon", "lat", "urbanisation", "urbanisation_label",
]


def _number(series: pd.Series, path: Path, column: str, decimal_comma: bool = False) -> pd.Series:
    text = series.astype("string").str.replace(" ", "", regex=False).str.strip()
    if decimal_comma:
        text = text.str.replace(",", ".", regex=False)
    text = text.replace("", pd.NA)
    out = pd.to_numeric(text, errors="coerce")
    bad = out.isna() & text.notna()
    if bad.any():
        row = int(bad.idxmax()) + 2  # header is line 1
        raise ValueError(f"{path}: line {row}, column {column!r}: not a number: {series[bad.idxmax()]!r}")
    return out


def read_gemeindeverzeichnis(path: str | Path) -> pd.DataFrame:
    """Parse the Destatis GV extract into one row per municipality (and unincorporated area).

    Returns the columns :data:`MUNICIPALITY_COLUMNS`, sorted by AGS; ``kreis`` is the
    5-digit Kreis key (``08111``), ``rb`` the 3-digit Regierungsbezirk key (``081``).
    """
    path = Path(path)
    raw = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    missing = [c for c in EXPECTED_COLUMNS if c not in raw.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; is this a GV-ISys extract?")
    unknown = sorted(set(raw["satzart"]) - set(RECORD_TYPES))
    if unknown:
        row = int(raw.index[raw["satzart"].isin(unknown)][0]) + 2
        raise ValueError(f"{path}: line {row}, column 'satzart': unknown record type(s) {unknown}")

    raw["rb_key"] = raw["land"] + raw["rb"]
    raw["kreis_key"] = raw["rb_key"] + raw["kreis"]
    rb_names = raw.loc[raw["satzart"] == "20"].set_index("rb_key")["gemeindename"]
    kreise = raw.loc[raw["satzart"] == "40"].set_index("kreis_key")
    vb = raw.loc[raw["satzart"] == "50"].assign(vb_key=lambda d: d["kreis_key"] + d["vb"])
    vb_names = vb.set_index("vb_key")["gemeindename"]

    g = raw.loc[raw["satzart"] == "60"].copy()
    bad_key = ~(g["kreis_key"].str.fullmatch(r"\d{5}") & g["gemeinde"].str.fullmatch(r"\d{3}"))
    if bad_key.any():
        row = int(g.index[bad_key][0]) + 2
        raise ValueError(f"{path}: line {row}: malformed key columns land/rb/kreis/gemeinde")
    out = pd.DataFrame(
        {
            "ags": g["kreis_key"] + g["gemeinde"],
            "name": g["gemeindename"],
            "municipality_type": g["textkennzeichen"],
            "unincorporated": g["textkennzeichen"].isin(UNINCORPORATED_CODES),
            "kreis": g["kreis_key"],
            "kreis_name": g["kreis_key"].map(kreise["gemeindename"]),
            "kreis_type": g["kreis_key"].map(kreise["textkennzeichen"]).map(KREIS_TYPES),
            "rb": g["rb_key"],
            "rb_name": g["rb_key"].map(rb_names),
            "gemeindeverband": g["kreis_key"] + g["vb"],
            "gemeindeverband_name": (g["kreis_key"] + g["vb"]).map(vb_names),
            "population": _number(g["bevoelkerung"], path, "bevoelkerung").astype("int64"),
            "population_male": _number(g["maennlich"], path, "maennlich").astype("int64"),
            "population_female": _number(g["weiblich"], path, "weiblich").astype("int64"),
            "area_km2": _number(g["flaeche"], path, "flaeche"),
            "density": _number(g["jekm2"], path, "jekm2"),
            "postcode": g["postleitzahl"].replace("", pd.NA),
            "lon": _number(g["laengengrad"], path, "laengengrad", decimal_comma=True),
            "lat": _number(g["breitengrad"], path, "breitengrad", decimal_comma=True),
            "urbanisation": g["verstaedterungschluessel"].map(lambda s: int(s) if s else pd.NA),
            "urbanisation_label": g["verstaedterungbezeichnung"],
        }
    )
    if out["ags"].duplicated().any():
        dup = out.loc[out["ags"].duplicated(), "ags"].iloc[0]
        raise ValueError(f"{path}: duplicate AGS {dup}")
    if out["kreis_name"].isna().any():
        ags = out.loc[out["kreis_name"].isna(), "ags"].iloc[0]
        raise ValueError(f"{path}: municipality {ags} has no Kreis record (satzart 40)")
    out = out.sort_values("ags").reset_index(drop=True)
    return out[MUNICIPALITY_COLUMNS]


def municipalities(frame: pd.DataFrame) -> pd.DataFrame:
    """The incorporated municipalities only (the 1,101 units of the panel)."""
    return frame.loc[~frame["unincorporated"]].reset_index(drop=True)


def summary(frame: pd.DataFrame) -> dict[str, int]:
    m = municipalities(frame)
    return {
        "municipalities": len(m),
        "unincorporated_areas": int(frame["unincorporated"].sum()),
        "kreise": int(m["kreis"].nunique()),
        "regierungsbezirke": int(m["rb"].nunique()),
        "population": int(m["population"].sum()),
    }


def run(gv_path: str | Path, out_path: str | Path) -> pd.DataFrame:
    """Parse the GV extract and write the municipality table as Parquet."""
    frame = read_gemeindeverzeichnis(gv_path)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(out_path, index=False)
    log.info("reference frame: %s", summary(frame))
    return frame
