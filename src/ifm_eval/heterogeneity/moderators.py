"""The moderators of a heterogeneity analysis and every municipality's subgroup.

A moderator is a municipality-level panel column (time-invariant). Its groups are listed in
a fixed order (the first is the reference of the differences); a municipality without a
value (survey item or unit non-response, non-applicants) belongs to the group
:data:`MISSING` — never silently dropped. Values outside the listed groups (a real delivery
with a new category) become groups of their own, after the listed ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

#: label of the group without a value
MISSING = "missing"


@dataclass(frozen=True)
class Moderator:
    name: str
    column: str
    groups: tuple[str, ...]
    label_de: str
    label_en: str


MODERATORS: dict[str, Moderator] = {m.name: m for m in (
    Moderator("plan_use_band", "plan_use_band", ("lt20", "20to80", "80to100"),
              "Anteil der Klienten mit Integrationsplan", "share of clients with an integration plan"),
    Moderator("organisation", "organisation", ("landratsamt", "gemeinde", "traeger"),
              "Organisation des IM", "organisation of IM"),
    Moderator("size_class", "size_class", ("lt5k", "5k_20k", "20k_plus"),
              "Gemeindegröße (Einwohner)", "municipality size (inhabitants)"),
    Moderator("target_group", "target_group", ("not_obliged", "obliged"),
              "Zielgruppe (mit Ausreisepflichtigen)", "target group (incl. persons obliged to leave)"),
    Moderator("doc_mode", "doc_mode", ("digital", "gemischt", "papier"),
              "Art der Dokumentation", "documentation mode"),
    Moderator("decision_maker", "decision_maker", ("district_office", "im", "municipal_staff"),
              "Wer entscheidet über die Arbeitsweise", "who decides on working methods"),
)}

#: display labels of the groups (de, en); a missing answer is the group ``missing``
GROUP_LABELS: dict[str, tuple[str, str]] = {
    "lt20": ("unter 20 %", "below 20%"), "20to80": ("20–80 %", "20–80%"), "80to100": ("80–100 %", "80–100%"),
    "landratsamt": ("Landratsamt", "district office"), "gemeinde": ("Gemeinde", "municipality"),
    "traeger": ("freier Träger", "private provider"),
    "lt5k": ("unter 5.000", "below 5,000"), "5k_20k": ("5.000–20.000", "5,000–20,000"),
    "20k_plus": ("20.000 und mehr", "20,000 and more"),
    "not_obliged": ("ohne Ausreisepflichtige", "without persons obliged to leave"),
    "obliged": ("mit Ausreisepflichtigen", "incl. persons obliged to leave"),
    "digital": ("digital", "digital"), "gemischt": ("gemischt", "mixed"), "papier": ("Papier", "paper"),
    "district_office": ("Landratsamt", "district office"), "im": ("Integrationsmanagement", "integration managers"),
    "municipal_staff": ("Gemeindeverwaltung", "municipal staff"),
    "missing": ("keine Angabe", "no answer"),
}


def group_label(group: str, lang: str = "de") -> str:
    """Display label of a moderator group (unknown groups unchanged)."""
    de, en = GROUP_LABELS.get(str(group), (str(group), str(group)))
    return de if lang == "de" else en


#: how the panel spells a missing value once a categorical column went through astype(str)
_MISSING_SPELLINGS = {"", "nan", "none", "<na>", "nat", "null"}


def moderator(name: str) -> Moderator:
    if name not in MODERATORS:
        raise KeyError(f"unknown moderator {name!r} (one of {', '.join(MODERATORS)})")
    return MODERATORS[name]


def group_labels(panel: pd.DataFrame, name: str, unit: str = "ags") -> pd.Series:
    """The subgroup of every unit of ``panel`` (index: unit) for moderator ``name``:
    :data:`MISSING` where the value is missing. Raises naming the column if the panel lacks
    it or if it varies within a unit."""
    mod = moderator(name)
    if mod.column not in panel.columns:
        raise KeyError(f"panel lacks column {mod.column!r} of moderator {name!r}")
    v = panel[[unit, mod.column]].copy()
    s = v[mod.column].astype("object")
    miss = s.isna() | s.astype(str).str.strip().str.lower().isin(_MISSING_SPELLINGS)
    v["label"] = np.where(miss, MISSING, s.astype(str))
    n_per = v.groupby(unit)["label"].nunique()
    if (n_per > 1).any():
        bad = n_per.index[n_per > 1][0]
        raise ValueError(f"moderator {name!r}: column {mod.column!r} varies within {unit} {bad}")
    return v.drop_duplicates(unit).set_index(unit)["label"].rename(name)


def ordered_groups(labels: pd.Series, name: str) -> list[str]:
    """The groups present in ``labels``: the moderator's listed groups in order, then any
    other value (sorted), then :data:`MISSING`."""
    present = set(labels.unique())
    listed = [g for g in moderator(name).groups if g in present]
    other = sorted(present - set(listed) - {MISSING})
    return listed + other + ([MISSING] if MISSING in present else [])
