"""Small raw files in the exact contract formats of data/raw/README.md (admin sources).

``write_admin_fixture(root)`` writes funding workbook, posts CSV (cp1252, decimal comma), KPI
workbook, the four monthly outcome files and a person-level case-management export for a
handful of real municipalities, and returns the expected values (start months, stocks)
computed by a naive per-person loop, independent of the vectorised code under test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REFERENCE_DIR = Path(__file__).resolve().parents[1] / "data" / "raw" / "reference"

# AGS used by the fixture (real municipalities): three in Kreis Böblingen, Stuttgart
A, B, C, STG = "08115001", "08115002", "08115003", "08111000"
MONTHS = pd.date_range("2016-01-01", "2019-12-01", freq="MS")


def config(tmp: Path, start: str = "2017-01", end: str = "2019-06", **panel: Any) -> dict[str, Any]:
    from ifm_eval.config import validate_config

    return validate_config(
        {
            "seed": 1,
            "data": {
                "source": "synthetic",
                "synthetic_dir": str(tmp / "raw"),
                "raw_dir": str(tmp / "raw"),
                "reference_dir": str(REFERENCE_DIR),
                "processed_dir": str(tmp / "processed"),
                "results_dir": str(tmp / "results"),
            },
            "panel": {"start": start, "end": end, **panel},
            # four municipalities of the 1,101: the coverage checks of the monthly files
            # (ingest.min_*_coverage) do not apply to this small contract fixture
            "ingest": {"min_municipality_coverage": 0.0, "min_month_coverage": 0.0},
            "synth": {},
        }
    )


def _xlsx(path: Path, sheets: dict[str, tuple[str | None, list[str], list[list[Any]]]]) -> None:
    import openpyxl

    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, (title, header, rows) in sheets.items():
        ws = wb.create_sheet(name)
        if title is not None:
            ws.append([title])
            ws.append([])
        ws.append(header)
        for r in rows:
            ws.append(r)
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)


FUNDING_A_HEADER = [
    "Antrags-Nr.",
    "Verband",
    "Antragsteller",
    "Art Antragsteller",
    "Kreis",
    "Bewilligte VZÄ",
    "Fördersumme EUR",
    "Bewilligt am",
]
FUNDING_M_HEADER = ["Antrags-Nr.", "AGS", "Gemeinde", "Geflüchtete AU 15.09.2017", "VZÄ Anteil"]
POSTS_HEADER = [
    "Stellen-ID",
    "Antrags-Nr.",
    "AGS",
    "Gemeinde",
    "Anstellungsträger",
    "Trägername",
    "Beginn",
    "Ende",
    "VZÄ Stelle",
    "Anteil Gemeinde",
]


def funding_rows() -> tuple[list[list[Any]], list[list[Any]]]:
    ant = [
        [
            "PIK-IM-0001",
            "Landkreis Böblingen",
            "Landratsamt Böblingen",
            "Landratsamt",
            "Böblingen",
            1.5,
            90000.0,
            "15.01.2018",
        ],
        [
            "PIK-IM-0002",
            "Stuttgart",
            "Landeshauptstadt Stuttgart",
            "Stadtkreis",
            "Stuttgart",
            2.5,
            150000.0,
            "20.12.2017",
        ],
    ]
    mem = [
        ["PIK-IM-0001", 8115001, "Aidlingen", 40, 0.75],  # number: lost leading zero
        ["PIK-IM-0001", "08115002", "Altdorf", 20, 0.25],
        ["PIK-IM-0001", "08115003", "Böblingen", 60, 0.5],
        ["PIK-IM-0002", "08111000", "Stuttgart", 1000, 2.5],
    ]
    return ant, mem


def posts_rows() -> list[list[str]]:
    return [
        [
            "S00001",
            "PIK-IM-0001",
            A,
            "Aidlingen",
            "Landratsamt",
            "Landratsamt Böblingen",
            "01.09.2017",
            "",
            "1,0",
            "0,5",
        ],
        [
            "S00001",
            "PIK-IM-0001",
            B,
            "Altdorf",
            "Landratsamt",
            "Landratsamt Böblingen",
            "01.09.2017",
            "",
            "1,0",
            "0,5",
        ],
        [
            "S00002",
            "PIK-IM-0001",
            A,
            "Aidlingen",
            "Landratsamt",
            "Landratsamt Böblingen",
            "15.03.2018",
            "31.12.2019",
            "0,5",
            "1,0",
        ],
        [
            "S00003",
            "PIK-IM-0001",
            C,
            "Böblingen",
            "Freier Träger",
            "Caritasverband Böblingen e.V.",
            "01.02.2018",
            "",
            "0,5",
            "1,0",
        ],
        [
            "S00004",
            "PIK-IM-0002",
            STG,
            "Stuttgart",
            "Gemeinde",
            "Landeshauptstadt Stuttgart",
            "01.10.2017",
            "",
            "1,0",
            "1,0",
        ],
        [
            "S00005",
            "PIK-IM-0002",
            STG,
            "Stuttgart",
            "Gemeinde",
            "Landeshauptstadt Stuttgart",
            "14.12.2017",
            "",
            "1,0",
            "1,0",
        ],
        [
            "S00006",
            "PIK-IM-0002",
            STG,
            "Stuttgart",
            "Freier Träger",
            "Diakonisches Werk Stuttgart",
            "01.06.2018",
            "",
            "0,5",
            "1,0",
        ],
    ]


EXPECTED_START = {  # ags -> (half_posts, first_post, all_posts)
    A: ("2017-09", "2017-09", "2018-03"),
    B: ("2017-09", "2017-09", "2017-09"),
    C: ("2018-02", "2018-02", "2018-02"),
    STG: ("2017-12", "2017-10", "2018-06"),
}


def _d(m: pd.Timestamp) -> str:
    return m.strftime("01.%m.%Y")


def persons(seed: int = 3, n: int = 120) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Random person histories -> (export rows, expected stocks by naive loop)."""
    rng = np.random.default_rng(seed)
    rows = []
    cols = [A, B, C, STG]
    stocks = {
        k: np.zeros((len(MONTHS), 4), dtype=np.int64)
        for k in ("refugees", "b1_holders", "in_ausbildung", "in_weiterbildung", "employed")
    }
    months = list(MONTHS)
    for p in range(n):
        ags = [A, B, C, STG][rng.integers(0, 4)]
        pid = f"P{p:06d}"
        a = int(rng.integers(0, 30))
        b = a + int(rng.integers(2, 40))
        base = [pid, ags, str(int(rng.integers(1960, 2000))), "mwd"[rng.integers(0, 3)], "Syrien"]
        rows.append(base + [_d(months[a]), "Unterbringung", "Zuzug AU"])
        if b < len(months):
            rows.append(base + [_d(months[b]), "Unterbringung", "Auszug"])
        b_eff = min(b, len(months))
        for i in range(a, b_eff):
            stocks["refugees"][i, cols.index(ags)] += 1
        if rng.random() < 0.5:
            c = a + int(rng.integers(0, 30))
            if c < len(months):
                rows.append(base + [_d(months[c]), "Sprache", "B1 erreicht"])
                for i in range(c, b_eff):
                    stocks["b1_holders"][i, cols.index(ags)] += 1
        for bereich, starts in (
            ("Ausbildung", ("Beginn Ausbildung", "Beginn Weiterbildung")),
            ("Arbeit", ("Beginn SvB",)),
        ):
            if rng.random() < 0.5:
                s = a + int(rng.integers(0, 25))
                e = s + int(rng.integers(1, 20))
                kind = starts[rng.integers(0, len(starts))]
                if s < len(months):
                    rows.append(base + [_d(months[s]), bereich, kind])
                    if e < len(months):
                        rows.append(base + [_d(months[e]), bereich, "Ende"])
                    key = {
                        "Beginn Ausbildung": "in_ausbildung",
                        "Beginn Weiterbildung": "in_weiterbildung",
                        "Beginn SvB": "employed",
                    }[kind]
                    for i in range(s, min(e, b_eff)):
                        stocks[key][i, cols.index(ags)] += 1
    export = pd.DataFrame(
        rows,
        columns=[
            "Pseudonym",
            "AGS",
            "Geburtsjahr",
            "Geschlecht",
            "Herkunftsland",
            "Datum",
            "Bereich",
            "Status",
        ],
    )
    export = export.sample(frac=1.0, random_state=seed)  # not sorted, like a real export
    long = []
    for k, arr in stocks.items():
        s = pd.DataFrame(arr, index=MONTHS, columns=cols).stack().rename(k)
        long.append(s)
    st = pd.concat(long, axis=1).reset_index(names=["month", "ags"])
    st["in_training"] = st["in_ausbildung"] + st["in_weiterbildung"]
    return export, st.sort_values(["ags", "month"]).reset_index(drop=True)


def mask(v: int) -> str:
    return "-" if v == 0 else ("*" if v <= 2 else str(v))


def write_admin_fixture(root: Path) -> dict[str, Any]:
    raw = root / "raw"
    ant, mem = funding_rows()
    _xlsx(
        raw / "funding/foerderantraege_im.xlsx",
        {
            "Antraege": ("Förderanträge Integrationsmanagement", FUNDING_A_HEADER, ant),
            "Mitglieder": ("Mitgliedsgemeinden", FUNDING_M_HEADER, mem),
        },
    )
    posts = posts_rows()
    (raw / "funding").mkdir(parents=True, exist_ok=True)
    (raw / "funding/im_stellen.csv").write_bytes(
        ("\r\n".join(";".join(r) for r in [POSTS_HEADER, *posts]) + "\r\n").encode("cp1252")
    )
    kpi = [
        [A, "Aidlingen", "2017-Q4", 5, 3, 1, 0, 0, 0],
        [A, "Aidlingen", "2018-Q1", 8, 4, None, 1, 0, 1],
        [STG, "Stuttgart", "2018-Q1", 300, 120, 40, 10, 5, 8],
    ]
    _xlsx(
        raw / "funding/kennzahlen_quartal.xlsx",
        {
            "Kennzahlen": (
                None,
                [
                    "AGS",
                    "Gemeinde",
                    "Quartal",
                    "Klienten",
                    "Erstgespräche",
                    "Integrationspläne",
                    "Übergänge Sprachkurs",
                    "Übergänge Ausbildung",
                    "Übergänge Arbeit",
                ],
                kpi,
            )
        },
    )
    export, st = persons()
    (raw / "casemanagement").mkdir(parents=True, exist_ok=True)
    export.to_csv(
        raw / "casemanagement/fallmanagement_export.csv", sep=";", index=False, encoding="utf-8"
    )
    names = {A: "Aidlingen", B: "Altdorf", C: "Böblingen", STG: "Stuttgart"}
    out = raw / "outcomes"
    out.mkdir(parents=True, exist_ok=True)
    ym = st["month"].dt.strftime("%Y-%m")
    lines = ["AGS;Gemeinde;Monat;Geflüchtete AU"] + [
        f"{a};{names[a]};{m};{v}" for a, m, v in zip(st["ags"], ym, st["refugees"], strict=True)
    ]
    (out / "gefluechtete_au_monat.csv").write_bytes(
        ("\r\n".join(lines) + "\r\n").encode("utf-8-sig")
    )
    comments = [
        "# Bundesagentur für Arbeit - Statistik",
        "# Beschäftigte nach Staatsangehörigkeit",
        "# Asylherkunftsländer",
        "# * = 1 oder 2 Personen, - = 0",
        "# Stand: 2021",
    ]
    lines = (
        comments
        + ["Region;Regionsname;Berichtsmonat;SvB Asylherkunftsländer", "08115;Böblingen;2018-01;55"]
        + [
            f"{a};{names[a]};{m};{mask(v)}"
            for a, m, v in zip(st["ags"], ym, st["employed"], strict=True)
        ]
    )
    (out / "ba_beschaeftigte_asylherkunft.csv").write_bytes(
        ("\r\n".join(lines) + "\r\n").encode("cp1252")
    )
    lines = (
        comments
        + ["Region;Regionsname;Berichtsmonat;In Ausbildung;In Weiterbildung"]
        + [
            f"{a};{names[a]};{m};{mask(x)};{mask(y)}"
            for a, m, x, y in zip(
                st["ags"], ym, st["in_ausbildung"], st["in_weiterbildung"], strict=True
            )
        ]
    )
    (out / "ausbildung_weiterbildung.csv").write_bytes(
        ("\r\n".join(lines) + "\r\n").encode("cp1252")
    )
    lines = ["ags,gemeinde,monat,b1_bestand"] + [
        f"{a},{names[a]},{m},{v}" for a, m, v in zip(st["ags"], ym, st["b1_holders"], strict=True)
    ]
    (out / "sprachzertifikate_b1.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {"stocks": st, "export": export, "start": EXPECTED_START}
