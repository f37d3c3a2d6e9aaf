"""Replication of every chart of the short report (seed 002) from the harmonised survey and
funding data, with N, a source line and the stand-in mark, plus a table comparing the
shares with the published ones (BRIEF "Published figures").

All column names of the input files are resolved in ONE place, :data:`FIELDS` (canonical
field -> candidate columns, searched in the sources in the order given), and all value
codings in :data:`VALUE_ALIASES`. Adapting to a renamed column means editing those two
dicts only.

Shares are over municipalities with a valid answer (item non-response excluded); N is
that number. Units are municipalities, not persons: no disclosure issue arises, but the
person-based share (refugees where counselling improved) is computed from a state-wide
aggregate only.
"""

from __future__ import annotations

import logging
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ifm_eval.outputs import style
from ifm_eval.outputs.style import label
from ifm_eval.outputs.tablefmt import write_csv, write_table
from ifm_eval.outputs.targets import DESCRIPTIVE_FIGURES

log = logging.getLogger(__name__)

# ----------------------------------------------------------------- column mapping
#: canonical field -> candidate column names (first found, in source order, wins).
FIELDS: dict[str, list[str]] = {
    "ags": ["ags", "AGS"],
    "applied": ["applied", "applicant", "beantragt"],
    "start_month": ["start_month", "cohort_month", "im_start", "treatment_month"],
    "funded_vza": ["funded_vza", "vza_share", "vza_anteil", "vza", "VZÄ Anteil"],
    "n_posts": ["n_posts", "n_im_posts", "posts"],
    "refugees_ref": ["refugees_20171109", "refugees_2017_09_15", "refugees_20170915", "refugees_au_20170915", "refugees_2017",
                     "Geflüchtete AU 15.09.2017"],
    "capacity_before_vza": ["capacity_before_vza", "beratung_vorher_vza", "capacity_before"],
    "capacity_after_vza": ["capacity_after_vza", "beratung_nachher_vza", "capacity_after"],
    "capacity_change_vza": ["capacity_change_vza", "capacity_change"],
    "organisation": ["organisation", "organisation_im", "org"],
    "decision_maker": ["decision_maker", "decides_methods", "entscheidung"],
    "ts_gestattung": ["ts_gestattung", "target_status_gestattung"],
    "ts_erlaubnis": ["ts_erlaubnis", "target_status_erlaubnis"],
    "ts_duldung": ["ts_duldung", "target_status_duldung"],
    "ts_ausreisepflichtig": ["ts_ausreisepflichtig", "target_status_ausreisepflichtig"],
    "ts_drittstaat": ["ts_drittstaat", "target_status_drittstaat"],
    "ts_eu": ["ts_eu", "target_status_eu"],
    "hs_privat": ["hs_privat", "target_housing_privat"],
    "hs_oeffentlich": ["hs_oeffentlich", "target_housing_oeffentlich"],
    "hs_gu_au": ["hs_gu_au", "target_housing_gu_au"],
    "hs_vorlaeufig": ["hs_vorlaeufig", "target_housing_vorlaeufig"],
    "hs_andere": ["hs_andere", "target_housing_andere"],
    "min_age": ["min_age", "target_min_age", "mindestalter"],
    "arrival": ["arrival", "target_arrival", "ankunft"],
    "plan_use_band": ["plan_use_band", "integration_plan_band", "plan_use"],
    "doc_mode": ["doc_mode", "documentation_mode", "dokumentation"],
    "software": ["software", "doc_software"],
}

#: normalised raw value -> canonical code, per field.
VALUE_ALIASES: dict[str, dict[str, str]] = {
    "organisation": {"landratsamt": "landratsamt", "lra": "landratsamt", "kreis": "landratsamt",
                     "gemeinde": "gemeinde", "kommune": "gemeinde", "selbst": "gemeinde",
                     "traeger": "traeger", "freier traeger": "traeger", "privater traeger": "traeger"},
    "decision_maker": {"im": "im", "integrationsmanager": "im", "integrationsmanager/-innen": "im",
                       "district_office": "district_office", "landratsamt": "district_office",
                       "municipal_staff": "municipal_staff", "kommune": "municipal_staff",
                       "kommunale mitarbeiter": "municipal_staff", "other": "other", "andere": "other"},
    "min_age": {"unter14": "unter14", "u14": "unter14", "0": "unter14", "ab14": "ab14", "14": "ab14",
                "ab16": "ab16", "16": "ab16", "ab18": "ab18", "18": "ab18", "erwachsene": "ab18"},
    "arrival": {"keine": "keine", "none": "keine", "ab2014": "ab2014", "2014": "ab2014",
                "ab2015": "ab2015", "2015": "ab2015", "andere": "andere", "other": "andere"},
    "plan_use_band": {"lt20": "lt20", "<20": "lt20", "unter 20%": "lt20", "20to80": "20to80",
                      "20-80": "20to80", "80to100": "80to100", "80-100": "80to100"},
    "doc_mode": {"digital": "digital", "papier": "papier", "paper": "papier", "gemischt": "gemischt",
                 "mixed": "gemischt", "beides": "gemischt"},
    "software": {"jobkraftwerk": "jobkraftwerk", "enaio": "enaio", "tau": "tau", "tau office": "tau",
                 "tau cloud": "tau", "tau office/tau cloud": "tau", "excel": "excel",
                 "eigenentwicklung": "eigenentwicklung", "in-house": "eigenentwicklung", "andere": "andere"},
}

CATEGORY_LABELS: dict[str, dict[str, tuple[str, str]]] = {
    "organisation": {"landratsamt": ("Landratsamt", "District office"),
                     "gemeinde": ("Kommune selbst", "Municipality itself"),
                     "traeger": ("Kommune über privaten Träger", "Municipality via private provider")},
    "decision_maker": {"im": ("Integrationsmanager/-innen", "Integration managers"),
                       "district_office": ("Landratsamt", "District office"),
                       "municipal_staff": ("Kommunale Mitarbeiter/-innen", "Municipal staff"),
                       "other": ("Andere", "Other")},
    "ts": {"ts_gestattung": ("Aufenthaltsgestattung", "Permission to reside (asylum pending)"),
           "ts_erlaubnis": ("Aufenthaltserlaubnis", "Residence permit"),
           "ts_duldung": ("Duldung", "Tolerated stay (Duldung)"),
           "ts_ausreisepflichtig": ("Ausreisepflichtige", "Obliged to leave"),
           "ts_drittstaat": ("Drittstaatsangehörige ohne Fluchthintergrund", "Third-country migrants (no refugee status)"),
           "ts_eu": ("EU-Zugewanderte", "EU migrants")},
    "hs": {"hs_privat": ("Private Wohnungen", "Private flats"),
           "hs_oeffentlich": ("Öffentliche Wohnungen", "Public flats"),
           "hs_gu_au": ("Gemeinschaftsunterkunft AU", "Shared accommodation (AU)"),
           "hs_vorlaeufig": ("Vorläufige Unterbringung", "Initial reception"),
           "hs_andere": ("Andere (Obdachlosenheim, Frauenhaus)", "Other (homeless/women's shelters)")},
    "min_age": {"unter14": ("Auch Kinder unter 14", "Children under 14 included"),
                "ab14": ("Ab 14 Jahren", "From 14 years"), "ab16": ("Ab 16 Jahren", "From 16 years"),
                "ab18": ("Nur Erwachsene (ab 18)", "Adults only (18+)")},
    "arrival": {"keine": ("Keine Einschränkung", "No restriction"), "ab2015": ("Ankunft ab 2015", "Arrived from 2015"),
                "ab2014": ("Ankunft ab 2014", "Arrived from 2014"), "andere": ("Andere", "Other")},
    "plan_use_band": {"80to100": ("80–100 % der Klienten", "80–100% of clients"),
                      "20to80": ("20–80 % der Klienten", "20–80% of clients"),
                      "lt20": ("unter 20 % der Klienten", "under 20% of clients")},
    "doc_mode": {"digital": ("Digital", "Digital"), "gemischt": ("Gemischt", "Mixed"), "papier": ("Nur Papier", "Paper only")},
    "software": {"jobkraftwerk": ("Jobkraftwerk", "Jobkraftwerk"), "enaio": ("Enaio", "Enaio"),
                 "tau": ("Tau Office/Tau Cloud", "Tau Office/Tau Cloud"), "excel": ("Excel", "Excel"),
                 "eigenentwicklung": ("Eigenentwicklung", "In-house"), "andere": ("Andere", "Other")},
}

SOURCES = {
    "ministry": "Ministerium für Soziales und Integration Baden-Württemberg",
    "w1": "Umfrage zur Art der Datenerfassung",
    "w2": "Umfrage über die Lage der Geflüchteten vor Ort Dezember 2018",
    "w3": "Umfrage zu den Rahmenbedingungen der Integration",
    "geo": "Statistisches Landesamt; ©GeoBasis-DE/BKG 2021 (Daten verändert)",
}
SOURCES_EN = {
    "ministry": "Ministry of Social Affairs and Integration Baden-Württemberg",
    "w1": "Survey on data recording",
    "w2": "Survey on the situation of refugees, December 2018",
    "w3": "Survey on the framework conditions of integration",
    "geo": "State Statistical Office; ©GeoBasis-DE/BKG 2021 (data modified)",
}

# ------------------------------------------------------------------ loading


def _norm(value: Any) -> str:
    s = unicodedata.normalize("NFKD", str(value)).encode("ascii", "ignore").decode().strip().lower()
    return s.replace("ae", "ae")


def _first_per_ags(df: pd.DataFrame, name: str) -> pd.DataFrame:
    if "ags" not in df:
        raise KeyError(f"descriptives: input {name!r} has no column 'ags' (columns {list(df.columns)})")
    return df.drop_duplicates("ags").set_index("ags")


def _posts_per_ags(posts: pd.DataFrame) -> pd.Series:
    pid = next((c for c in ("post_id", "stellen_id", "Stellen-ID") if c in posts), None)
    if "ags" not in posts or pid is None:
        raise KeyError(f"descriptives: the posts table needs ags and a post id column, has {list(posts.columns)}")
    return posts.groupby("ags")[pid].nunique().rename("n_posts")


def load_inputs(files: dict[str, Path]) -> dict[str, pd.DataFrame]:
    """The processed tables the charts are drawn from: ``survey`` (harmonised), ``treatment``,
    ``members`` (funding members), ``posts``, ``frame`` (municipalities)."""
    need = ("survey", "treatment", "members", "posts", "frame")
    missing = [k for k in need if k not in files]
    if missing:
        raise KeyError(f"descriptives: input(s) {missing} not given")
    return {k: pd.read_parquet(files[k]) for k in need}


def municipality_frame(inputs: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per municipality with the canonical fields of :data:`FIELDS` (``inputs``:
    :func:`load_inputs`)."""
    order = ["survey", "treatment", "members", "frame"]
    frames = {k: _first_per_ags(inputs[k], k) for k in order}
    index = pd.Index(sorted(set().union(*[f.index for f in frames.values()])), name="ags")
    out = pd.DataFrame(index=index)
    posts = _posts_per_ags(inputs["posts"])
    for fld, candidates in FIELDS.items():
        if fld == "ags":
            continue
        for src in order:
            df = frames[src]
            col = next((c for c in candidates if c in df.columns and df[c].notna().any()), None)
            if col is not None:
                out[fld] = df[col].reindex(index)
                break
        if fld == "n_posts" and fld not in out:
            out[fld] = posts.reindex(index)
    # normalise codings
    for fld, aliases in VALUE_ALIASES.items():
        if fld in out:
            out[fld] = out[fld].map(lambda v, a=aliases: a.get(_norm(v), _norm(v)) if pd.notna(v) else np.nan)
    for fld in [f for f in FIELDS if f.startswith(("ts_", "hs_"))]:
        if fld in out:
            out[fld] = out[fld].map(_to_bool)
    if "start_month" in out:
        out["start_month"] = pd.to_datetime(out["start_month"], errors="coerce").dt.to_period("M")
    if "capacity_change_vza" not in out and {"capacity_before_vza", "capacity_after_vza"} <= set(out):
        out["capacity_change_vza"] = out["capacity_after_vza"] - out["capacity_before_vza"]
    if "applied" not in out:
        out["applied"] = out.index.isin(frames["members"].index)
    out["applied"] = out["applied"].fillna(False).astype(bool)
    if missing := [f for f in FIELDS if f != "ags" and f not in out]:
        raise KeyError("descriptives: no column for field(s) " + "; ".join(f"{f} (tried {FIELDS[f]})" for f in missing)
                       + f" in the inputs {order}: extend FIELDS if a column was renamed")
    return out.reset_index()


def _to_bool(v: Any) -> Any:
    if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
        return np.nan
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    s = _norm(v)
    if s in {"1", "1.0", "true", "ja", "yes", "genannt", "x"}:
        return True
    if s in {"0", "0.0", "false", "nein", "no", "nicht genannt"}:
        return False
    return np.nan


# ------------------------------------------------------------------ chart data


@dataclass
class ChartData:
    key: str
    title: tuple[str, str]
    table: pd.DataFrame  # columns: category, label_de, label_en, n, share (percent)
    n: int
    sources: list[str]
    note: tuple[str, str] | None = None
    extra: dict[str, float] = field(default_factory=dict)
    kind: str = "barh"


def _categorical(m: pd.DataFrame, fld: str, order: list[str] | None = None) -> tuple[pd.DataFrame, int]:
    labels = CATEGORY_LABELS.get(fld, {})
    vals = m.loc[m["applied"], fld].dropna()
    n = int(len(vals))
    cats = order or list(labels) or sorted(vals.unique())
    counts = vals.value_counts()
    rows = []
    for c in cats + sorted(set(counts.index) - set(cats)):
        k = int(counts.get(c, 0))
        de, en = labels.get(c, (str(c), str(c)))
        rows.append({"category": c, "label_de": de, "label_en": en, "n": k, "share": 100 * k / n if n else np.nan})
    return pd.DataFrame(rows), n


def _multi(m: pd.DataFrame, group: str) -> tuple[pd.DataFrame, int]:
    labels = CATEGORY_LABELS[group]
    rows, ns = [], []
    for fld, (de, en) in labels.items():
        vals = m.loc[m["applied"], fld].dropna()
        n = int(len(vals))
        ns.append(n)
        k = int(vals.astype(bool).sum())
        rows.append({"category": fld, "label_de": de, "label_en": en, "n": k, "share": 100 * k / n if n else np.nan, "n_valid": n})
    return pd.DataFrame(rows), int(min(ns) if ns else 0)


def _binned(values: pd.Series, edges: list[float], names: list[tuple[str, str]], right: bool = True) -> tuple[pd.DataFrame, int]:
    v = values.dropna().astype(float)
    n = int(len(v))
    cat = pd.cut(v, bins=edges, labels=False, right=right, include_lowest=True)
    rows = []
    for i, (de, en) in enumerate(names):
        k = int((cat == i).sum())
        rows.append({"category": str(i), "label_de": de, "label_en": en, "n": k, "share": 100 * k / n if n else np.nan})
    return pd.DataFrame(rows), n


def chart_data(m: pd.DataFrame) -> dict[str, ChartData]:
    """Data of every chart (keys of :data:`DESCRIPTIVE_FIGURES`)."""
    a = m.loc[m["applied"]]
    out: dict[str, ChartData] = {}

    # start month: municipalities per month + cumulative share
    sm = a["start_month"].dropna()
    if len(sm):
        months = pd.period_range(sm.min(), sm.max(), freq="M")
        counts = sm.value_counts().reindex(months, fill_value=0)
        tab = pd.DataFrame({"category": [str(p) for p in months], "label_de": [p.strftime("%m/%Y") for p in months],
                            "label_en": [p.strftime("%b %Y") for p in months], "n": counts.to_numpy()})
        tab["share"] = 100 * tab["n"] / len(sm)
        tab["cum_share"] = tab["share"].cumsum()
        extra = {
            "share_by_2018_01": 100 * float((sm <= pd.Period("2018-01", "M")).mean()),
            "share_by_2018_05": 100 * float((sm <= pd.Period("2018-05", "M")).mean()),
            "share_h1_2017": 100 * float((sm <= pd.Period("2017-06", "M")).mean()),
            "share_from_2018_08": 100 * float((sm >= pd.Period("2018-08", "M")).mean()),
        }
    else:
        tab, extra = pd.DataFrame(columns=["category", "label_de", "label_en", "n", "share", "cum_share"]), {}
    out["start_month"] = ChartData("start_month", ("Start des Integrationsmanagements in den Kommunen", "Start of integration management in the municipalities"),
                                   tab, int(len(sm)), ["ministry", "w1"], extra=extra, kind="months")
    n_all, n_applied = int(len(m)), int(m["applied"].sum())
    out["map_start"] = ChartData("map_start", ("Regionale Verteilung des Integrationsmanagements", "Regional distribution of integration management"),
                                 tab, n_all, ["ministry", "w1", "geo"], extra={"n_applied": n_applied, "n_not_applied": n_all - n_applied}, kind="map")

    # funded VZÄ per municipality, and posts (persons)
    if a["funded_vza"].notna().any():
        tab, n = _binned(a["funded_vza"], [-np.inf, 0.5, 1.0, 2.0, np.inf],
                         [("bis 0,5", "up to 0.5"), ("über 0,5 bis 1", "0.5–1"), ("über 1 bis 2", "1–2"), ("über 2", "over 2")])
        v = a["funded_vza"].dropna()
        extra = {"share_le_1": 100 * float((v <= 1).mean()), "share_gt_2": 100 * float((v > 2).mean())}
        if a["n_posts"].notna().any():
            p = a["n_posts"].dropna()
            extra |= {"share_one_post": 100 * float((p == 1).mean()), "share_two_posts": 100 * float((p == 2).mean())}
    else:
        tab, n, extra = pd.DataFrame(columns=["category", "label_de", "label_en", "n", "share"]), 0, {}
    out["vza_per_municipality"] = ChartData("vza_per_municipality", ("Integrationsmanager/-innen pro Kommune (VZÄ)", "Integration managers per municipality (FTE)"),
                                            tab, n, ["ministry", "w1"], note=("Stand August 2018.", "As of August 2018."), extra=extra, kind="bar")

    # change in counselling capacity
    if a["capacity_change_vza"].notna().any():
        ch = a["capacity_change_vza"].dropna()
        tab, n = _binned(ch, [-np.inf, -1e-9, 1e-9, 0.5, 1.0, 2.0, np.inf],
                         [("weniger", "less"), ("unverändert", "unchanged"), ("über 0 bis 0,5", "0–0.5"),
                          ("über 0,5 bis 1", "0.5–1"), ("über 1 bis 2", "1–2"), ("über 2", "over 2")])
        before = a.loc[ch.index, "capacity_before_vza"]
        rel = (ch / before.where(before > 0)).dropna()
        extra = {"share_more": 100 * float((ch > 1e-9).mean()), "share_unchanged": 100 * float((ch.abs() <= 1e-9).mean()),
                 "share_less": 100 * float((ch < -1e-9).mean()), "median_change": float(ch.median()), "mean_change": float(ch.mean()),
                 "median_change_rel": 100 * float(rel.median()) if len(rel) else np.nan,
                 "mean_change_rel": 100 * float(rel.mean()) if len(rel) else np.nan}
        # denominator of the published shares: all responding applicants (incl. "don't know")
        n_resp = int(a["capacity_before_vza"].notna().sum())
        if a["refugees_ref"].notna().any():
            r = a.loc[ch.index, "refugees_ref"].fillna(0)
            extra["share_refugees_improved"] = 100 * float(r[ch > 1e-9].sum() / r.sum()) if r.sum() > 0 else np.nan
        extra["n_responding"] = n_resp
    else:
        tab, n, extra = pd.DataFrame(columns=["category", "label_de", "label_en", "n", "share"]), 0, {}
    out["capacity_change"] = ChartData("capacity_change", ("Veränderung der Beratungskapazitäten (VZÄ)", "Change in counselling capacity (FTE)"),
                                       tab, n, ["w3"], extra=extra, kind="bar")

    tab, n = _categorical(m, "organisation", ["landratsamt", "gemeinde", "traeger"])
    out["organisation"] = ChartData("organisation", ("Organisation des Integrationsmanagements", "Organisation of integration management"), tab, n, ["w3"])

    for key, grp, title, src in [
        ("target_legal_status", "ts", ("Zielgruppe: Rechtlicher Status", "Target group: legal status"), "w2"),
        ("target_housing", "hs", ("Zielgruppe: Unterbringungsform", "Target group: housing"), "w2"),
    ]:
        tab, n = _multi(m, grp)
        out[key] = ChartData(key, title, tab, n, [src], note=("Mehrfachnennung möglich.", "Multiple answers possible."))
    tab, n = _categorical(m, "min_age", ["ab18", "ab16", "ab14", "unter14"])
    out["target_min_age"] = ChartData("target_min_age", ("Zielgruppe: Mindestalter", "Target group: minimum age"), tab, n, ["w2"])
    tab, n = _categorical(m, "arrival", ["keine", "ab2015", "ab2014", "andere"])
    out["target_arrival"] = ChartData("target_arrival", ("Zielgruppe: Ankunftszeitraum", "Target group: arrival period"), tab, n, ["w2"])

    tab, n = _categorical(m, "decision_maker", ["im", "district_office", "municipal_staff", "other"])
    extra = {}
    if {"decision_maker", "organisation"} <= set(a.columns):
        lra = a[(a["organisation"] == "landratsamt") & a["decision_maker"].notna()]
        extra["share_im_in_lra_run"] = 100 * float((lra["decision_maker"] == "im").mean()) if len(lra) else np.nan
    tab = tab[(tab["n"] > 0) | (tab["category"] != "other")]
    out["decision_maker"] = ChartData("decision_maker", ("Entscheidungsstellen des Integrationsmanagements", "Who decides on working methods"), tab, n, ["w3"], extra=extra)

    tab, n = _categorical(m, "plan_use_band", ["80to100", "20to80", "lt20"])
    out["integration_plan"] = ChartData("integration_plan", ("Nutzung des Integrationsplans", "Use of the integration plan"), tab, n, ["w2"])

    tab, n = _categorical(m, "doc_mode", ["digital", "gemischt", "papier"])
    sw, n_sw = _categorical(m, "software", ["jobkraftwerk", "enaio", "tau", "excel", "eigenentwicklung", "andere"])
    sw = sw.assign(panel="software")
    out["documentation"] = ChartData("documentation", ("Einsatz digitaler Dokumentationsprogramme", "Use of digital documentation software"),
                                     pd.concat([tab.assign(panel="mode"), sw], ignore_index=True), n, ["w1"],
                                     note=("Stand August 2018.", "As of August 2018."), extra={"n_software": n_sw}, kind="documentation")
    return out


# ------------------------------------------------------------------ comparison with the published shares

#: (chart, category or extra-key, published share in %, qualifier, description de, description en)
PUBLISHED: list[tuple[str, str, float, str, str, str]] = [
    ("start_month", "share_by_2018_01", 50, ">", "IM gestartet bis Januar 2018", "IM started by January 2018"),
    ("start_month", "share_by_2018_05", 95, "≈", "IM gestartet bis Mai 2018", "IM started by May 2018"),
    ("vza_per_municipality", "share_le_1", 87, "", "Gefördert höchstens 1 VZÄ", "Funded at most 1 FTE"),
    ("vza_per_municipality", "share_gt_2", 5, "", "Gefördert über 2 VZÄ", "Funded more than 2 FTE"),
    ("vza_per_municipality", "share_one_post", 72, "", "Ein/e Integrationsmanager/-in (Personen)", "One integration manager (persons)"),
    ("vza_per_municipality", "share_two_posts", 22, "", "Ein bis zwei Integrationsmanager/-innen", "One to two integration managers"),
    ("capacity_change", "share_more", 68, "", "Mehr Beratungskapazität", "More counselling capacity"),
    ("capacity_change", "share_unchanged", 15, "", "Unveränderte Beratungskapazität", "Unchanged counselling capacity"),
    ("capacity_change", "share_less", 9, "", "Weniger Beratungskapazität", "Less counselling capacity"),
    ("capacity_change", "share_refugees_improved", 75, "", "Geflüchtete mit verbesserter Beratung", "Refugees where counselling improved"),
    ("organisation", "landratsamt", 65, "", "Organisation über das Landratsamt", "Organised by the district office"),
    ("organisation", "gemeinde+traeger", 33, "≈", "Organisation durch die Kommune", "Organised by the municipality"),
    ("decision_maker", "im", 31, "", "IM entscheiden selbst", "IMs decide themselves"),
    ("decision_maker", "share_im_in_lra_run", 13, "", "IM entscheiden selbst (Landratsamt-Kommunen)", "IMs decide (district-run)"),
    ("decision_maker", "municipal_staff", 10, "<", "Kommunale Mitarbeiter/-innen entscheiden", "Municipal staff decide"),
    ("target_legal_status", "ts_ausreisepflichtig", 44, "", "Zielgruppe: Ausreisepflichtige", "Target group: obliged to leave"),
    ("target_legal_status", "ts_drittstaat", 12, "", "Zielgruppe: Drittstaatsangehörige", "Target group: third-country migrants"),
    ("target_legal_status", "ts_eu", 6, "", "Zielgruppe: EU-Zugewanderte", "Target group: EU migrants"),
    ("target_housing", "hs_privat", 95, "", "Zielgruppe: private Wohnungen", "Target group: private flats"),
    ("target_housing", "hs_oeffentlich", 93, "", "Zielgruppe: öffentliche Wohnungen", "Target group: public flats"),
    ("target_housing", "hs_gu_au", 77, "", "Zielgruppe: Gemeinschaftsunterkunft AU", "Target group: shared AU accommodation"),
    ("target_housing", "hs_vorlaeufig", 22, "", "Zielgruppe: vorläufige Unterbringung", "Target group: initial reception"),
    ("target_housing", "hs_andere", 13, "", "Zielgruppe: andere Unterkünfte", "Target group: other accommodation"),
    ("target_min_age", "ab18", 49, "", "Mindestalter: nur Erwachsene", "Minimum age: adults only"),
    ("target_min_age", "unter14", 18, "", "Mindestalter: auch Kinder unter 14", "Minimum age: children under 14"),
    ("target_arrival", "keine", 68, "", "Ankunft: keine Einschränkung", "Arrival: no restriction"),
    ("target_arrival", "ab2015", 24, "", "Ankunft ab 2015", "Arrival from 2015"),
    ("target_arrival", "ab2014", 6, "", "Ankunft ab 2014", "Arrival from 2014"),
    ("integration_plan", "80to100", 31, "", "Integrationsplan für 80–100 %", "Integration plan for 80–100%"),
    ("integration_plan", "20to80", 46, "", "Integrationsplan für 20–80 %", "Integration plan for 20–80%"),
    ("integration_plan", "lt20", 23, "", "Integrationsplan für unter 20 %", "Integration plan for under 20%"),
    ("documentation", "digital", 47, "", "Dokumentation digital", "Documentation digital"),
    ("documentation", "papier", 16, "", "Dokumentation nur Papier", "Documentation paper only"),
    ("documentation", "gemischt", 37, "", "Dokumentation gemischt", "Documentation mixed"),
]


def _share_of(cd: ChartData, key: str) -> tuple[float, int]:
    if key in cd.extra:
        return float(cd.extra[key]), cd.n
    tab = cd.table
    if "panel" in tab:
        tab = tab[tab["panel"] == "mode"]
    keys = key.split("+")
    sub = tab[tab["category"].isin(keys)]
    if sub.empty:
        return np.nan, cd.n
    n = int(sub["n_valid"].iloc[0]) if "n_valid" in sub else cd.n
    return float(sub["share"].sum()), n


def comparison_table(charts: dict[str, ChartData]) -> pd.DataFrame:
    rows = []
    for chart, key, pub, qual, de, en in PUBLISHED:
        share, n = _share_of(charts[chart], key)
        rows.append({"chart": chart, "item": key, "item_de": de, "item_en": en, "published": float(pub),
                     "qualifier": qual, "replicated": share, "difference": share - pub, "n": int(n)})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------ drawing


def _source_line(cd: ChartData, lang: str) -> str:
    names = SOURCES if lang == "de" else SOURCES_EN
    return "; ".join(names[s] for s in cd.sources) + ". " + label("own_calc", lang)


def _draw_bars(cd: ChartData, lang: str, horizontal: bool = True):
    import matplotlib.pyplot as plt

    tab = cd.table
    labels = tab[f"label_{lang}"].tolist()
    fig, ax = plt.subplots(figsize=(7.0, 0.45 * max(len(tab), 3) + 1.6) if horizontal else (7.0, 3.8))
    if horizontal:
        y = np.arange(len(tab))[::-1]
        bars = ax.barh(y, tab["share"], color="#555555", edgecolor="black", linewidth=0.5)
        ax.set_yticks(y, labels)
        ax.set_xlabel(label("share_municipalities", lang))
        ax.set_xlim(0, max(100, float(np.nanmax(tab["share"]) if len(tab) else 0) * 1.1))
        ax.grid(axis="y", visible=False)
        for b, v in zip(bars, tab["share"], strict=False):
            if v == v:
                ax.text(b.get_width() + 1, b.get_y() + b.get_height() / 2, style.format_pct(v, 0, lang), va="center", fontsize=8)
    else:
        x = np.arange(len(tab))
        bars = ax.bar(x, tab["share"], color="#555555", edgecolor="black", linewidth=0.5)
        ax.set_xticks(x, labels)
        ax.set_ylabel(label("share_municipalities", lang))
        ax.grid(axis="x", visible=False)
        for b, v in zip(bars, tab["share"], strict=False):
            if v == v:
                ax.text(b.get_x() + b.get_width() / 2, b.get_height() + 1, style.format_pct(v, 0, lang), ha="center", fontsize=8)
    ax.set_title(cd.title[0 if lang == "de" else 1], loc="left")
    fig.tight_layout()
    return fig


def _draw_months(cd: ChartData, lang: str):
    import matplotlib.pyplot as plt

    tab = cd.table
    fig, ax = plt.subplots(figsize=(7.5, 4.0))
    x = np.arange(len(tab))
    ax.bar(x, tab["n"], color="#888888", edgecolor="black", linewidth=0.4, label=label("count_municipalities", lang))
    ax.set_ylabel(label("count_municipalities", lang))
    step = max(1, len(tab) // 12)
    ax.set_xticks(x[::step], tab[f"label_{lang}"].iloc[::step], rotation=45, ha="right")
    ax.grid(axis="x", visible=False)
    ax2 = ax.twinx()
    ax2.plot(x, tab["cum_share"], color="black", marker="o", markersize=3, label=label("cum_share", lang))
    ax2.set_ylim(0, 105)
    ax2.set_ylabel(label("cum_share", lang))
    ax2.grid(False)
    ax2.spines["right"].set_visible(True)
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, loc="upper left")
    ax.set_title(cd.title[0 if lang == "de" else 1], loc="left")
    fig.tight_layout()
    return fig


def _draw_documentation(cd: ChartData, lang: str):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(8.0, 3.8), gridspec_kw={"width_ratios": [1, 1.5]})
    for ax, panel, title in [(axes[0], "mode", ("Art der Dokumentation", "Documentation mode")),
                             (axes[1], "software", ("Software (digital/gemischt)", "Software (digital/mixed)"))]:
        tab = cd.table[cd.table["panel"] == panel]
        y = np.arange(len(tab))[::-1]
        ax.barh(y, tab["share"], color="#555555", edgecolor="black", linewidth=0.5)
        ax.set_yticks(y, tab[f"label_{lang}"])
        ax.set_xlim(0, 100)
        ax.grid(axis="y", visible=False)
        n = cd.n if panel == "mode" else int(cd.extra.get("n_software", 0))
        ax.set_title(f"{title[0 if lang == 'de' else 1]} (N = {style.format_int(n, lang)})", fontsize=9, loc="left")
        ax.set_xlabel(label("share_municipalities", lang))
        for yy, v in zip(y, tab["share"], strict=False):
            if v == v:
                ax.text(v + 1, yy, style.format_pct(v, 0, lang), va="center", fontsize=8)
    fig.suptitle(cd.title[0 if lang == "de" else 1], x=0.01, ha="left", fontweight="bold")
    fig.tight_layout()
    return fig


#: start-month classes of the map (upper bounds inclusive) and their gray shades.
MAP_CLASSES = [
    ("2017-06", ("1. Halbjahr 2017 (rückwirkend)", "H1 2017 (retroactive)")),
    ("2017-12", ("2. Halbjahr 2017", "H2 2017")),
    ("2018-01", ("Januar 2018", "January 2018")),
    ("2018-05", ("Februar bis Mai 2018", "February to May 2018")),
    ("2018-07", ("Juni/Juli 2018", "June/July 2018")),
    ("2099-12", ("ab August 2018", "from August 2018")),
]
MAP_GRAYS = ["#111111", "#444444", "#6e6e6e", "#9a9a9a", "#c4c4c4", "#e8e8e8"]


def start_class(start: pd.Series) -> pd.Series:
    """Index into :data:`MAP_CLASSES` (-1 = no start)."""
    out = pd.Series(-1, index=start.index)
    for i, (upper, _) in reversed(list(enumerate(MAP_CLASSES))):
        out[start.notna() & (start <= pd.Period(upper, "M"))] = i
    return out


def draw_start_map(m: pd.DataFrame, geo_municipalities: Path, geo_kreise: Path, lang: str, title: str):
    """Choropleth of the IM start class by municipality on the real VG5000 boundaries."""
    import geopandas as gpd
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    g = gpd.read_file(geo_municipalities)[["AGS", "geometry"]].rename(columns={"AGS": "ags"})
    g["ags"] = g["ags"].astype(str).str.zfill(8)
    g = g.to_crs(25832)
    d = g.merge(m[["ags", "start_month", "applied"]], on="ags", how="left")
    d["cls"] = start_class(d["start_month"])
    fig, ax = plt.subplots(figsize=(8.6, 6.6))
    for i, shade in enumerate(MAP_GRAYS):
        sub = d[d["cls"] == i]
        if len(sub):
            sub.plot(ax=ax, color=shade, edgecolor="white", linewidth=0.1)
    none = d[d["cls"] == -1]
    if len(none):
        none.plot(ax=ax, facecolor="white", edgecolor="#777777", linewidth=0.2, hatch="////")
    k = gpd.read_file(geo_kreise).to_crs(25832)
    k.boundary.plot(ax=ax, color="black", linewidth=0.5)
    ax.set_axis_off()
    handles = [Patch(facecolor=MAP_GRAYS[i], edgecolor="black", linewidth=0.3,
                     label=f"{MAP_CLASSES[i][1][0 if lang == 'de' else 1]} ({style.format_int((d['cls'] == i).sum(), lang)})")
               for i in range(len(MAP_CLASSES))]
    handles.append(Patch(facecolor="white", edgecolor="#777777", hatch="////",
                         label=f"{label('not_applied', lang)} ({style.format_int(len(none), lang)})"))
    ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=7, title=("Start des IM" if lang == "de" else "IM start"), title_fontsize=8)
    ax.set_title(title, loc="left")
    fig.tight_layout()
    return fig


def draw_chart(cd: ChartData, lang: str, m: pd.DataFrame, geo: tuple[Path, Path]):
    style.apply_style()
    title = cd.title[0 if lang == "de" else 1]
    if cd.kind == "map":
        return draw_start_map(m, geo[0], geo[1], lang, title)
    if cd.kind == "months":
        return _draw_months(cd, lang)
    if cd.kind == "documentation":
        return _draw_documentation(cd, lang)
    return _draw_bars(cd, lang, horizontal=cd.kind != "bar")


# ------------------------------------------------------------------ stage


def build_descriptives(cfg: dict[str, Any], inputs: dict[str, pd.DataFrame], geo: tuple[Path, Path],
                       fig_dir: Path, table_dir: Path) -> dict[str, Any]:
    """Draw all charts into ``fig_dir``, write the shares and comparison tables into
    ``table_dir``. Returns a summary (``figures``: files written, ``tables``, ...)."""
    lang = style.language(cfg)
    synthetic = style.is_synthetic(cfg)
    m = municipality_frame(inputs)
    charts = chart_data(m)
    fdir = Path(fig_dir)
    written: list[Path] = []
    for key in DESCRIPTIVE_FIGURES:
        cd = charts[key]
        fig = draw_chart(cd, lang, m, geo)
        note = cd.note[0 if lang == "de" else 1] if cd.note else None
        written += style.finish_figure(fig, fdir / key, synthetic=synthetic, source=_source_line(cd, lang),
                                       n=cd.n, note=note, lang=lang)
    tdir = Path(table_dir)
    tdir.mkdir(parents=True, exist_ok=True)
    shares = pd.concat([cd.table.assign(chart=k, n_chart=cd.n) for k, cd in charts.items() if k != "map_start"], ignore_index=True)
    cols = ["chart"] + [c for c in shares.columns if c != "chart"]
    write_csv(shares[cols], tdir / "descriptives_shares.csv", synthetic=synthetic)
    comp = comparison_table(charts)
    show = comp[["item_de" if lang == "de" else "item_en", "qualifier", "published", "replicated", "difference", "n"]]
    headers = ({"item_de": "Kennzahl", "qualifier": "", "published": "Kurzbericht (%)", "replicated": "Replikation (%)",
                "difference": "Differenz (PP)", "n": "N Kommunen"} if lang == "de" else
               {"item_en": "Figure", "qualifier": "", "published": "Short report (%)", "replicated": "Replication (%)",
                "difference": "Difference (pp)", "n": "N municipalities"})
    tables = [tdir / "descriptives_shares.csv"]
    tables += write_table(show, tdir / "descriptives_comparison", caption=("Anteile im Vergleich zum Kurzbericht" if lang == "de" else "Shares compared with the short report"),
                headers=headers, kinds={"published": "num", "replicated": "num", "difference": "num", "n": "int"}, csv_frame=comp,
                digits={"published": 0, "replicated": 1, "difference": 1}, lang=lang, synthetic=synthetic,
                note=("Anteile an Kommunen mit gültiger Angabe." if lang == "de" else "Shares of municipalities with a valid answer.")).values()
    log.info("descriptives: %d figure file(s), comparison of %d published shares", len(written), len(comp))
    # a readable print of the comparison for the log
    log.info("\n%s", comp[["item_en", "qualifier", "published", "replicated", "n"]].round(1).to_string(index=False))
    return {"figures": written, "tables": tables, "comparison": comp, "charts": charts}


