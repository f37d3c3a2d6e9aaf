"""The one registry of raw sources: what the pipeline reads, where, and what it makes of it.

Used by the Snakemake rules (one ingest job per source), by :mod:`ifm_eval.paths` (file
locations), by the readers (:mod:`ifm_eval.ingest`, whose dispatch table must cover exactly
the administrative sources listed here), by the stand-in generator (which writes every file
below) and by ``ifm-eval check-raw``. Paths are relative to the raw directory
(``data/raw/`` for real deliveries, ``data/synthetic/`` for the stand-ins); the contract of
each file is documented in ``data/raw/README.md``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Source:
    """One raw file.

    ``kind``: ``admin`` (administrative file: one ``ingest_<key>`` job) or ``survey`` (a
    survey wave: one ``ingest_survey`` job, wave ``wave``). ``outputs``: keys of
    :data:`ifm_eval.paths.PROCESSED_FILES` the ingest job writes (besides its lineage).
    """

    key: str
    path: str
    kind: str
    label: str
    outputs: tuple[str, ...]
    wave: str | None = None


SOURCES: dict[str, Source] = {
    s.key: s
    for s in (
        Source("funding_applications", "funding/foerderantraege_im.xlsx", "admin",
               "ministry funding applications (Verbände and members)",
               ("funding_verbaende", "funding_members")),
        Source("im_posts", "funding/im_stellen.csv", "admin", "IM posts", ("im_posts",)),
        Source("kpi_reports", "funding/kennzahlen_quartal.xlsx", "admin",
               "quarterly KPI reports (Kennzahlen)", ("kpi_reports",)),
        Source("survey_w1", "surveys/w1_datenerfassung_2018-08.sav", "survey",
               "survey wave 1: data recording (Aug 2018)", ("survey_w1",), "w1"),
        Source("survey_w2", "surveys/w2_stand_integration_1_2018-12.sav", "survey",
               "survey wave 2: state of integration 1 (Dec 2018)", ("survey_w2",), "w2"),
        Source("survey_w3", "surveys/w3_rahmenbedingungen_2019-03.dta", "survey",
               "survey wave 3: framework conditions (Mar 2019)", ("survey_w3",), "w3"),
        Source("survey_w4", "surveys/w4_integrationsmanager_2019-06.sav", "survey",
               "survey wave 4: integration managers (Jun 2019)", ("survey_w4",), "w4"),
        Source("survey_w5", "surveys/w5_stand_integration_2_2019-11.sav", "survey",
               "survey wave 5: state of integration 2 (Nov 2019)", ("survey_w5",), "w5"),
        Source("refugees_au", "outcomes/gefluechtete_au_monat.csv", "admin",
               "refugees in follow-up housing per month (denominator)", ("refugees_au",)),
        Source("employment_ba", "outcomes/ba_beschaeftigte_asylherkunft.csv", "admin",
               "employment subject to social insurance (BA)", ("employment_ba",)),
        Source("training", "outcomes/ausbildung_weiterbildung.csv", "admin",
               "vocational and further training (BA)", ("training",)),
        Source("language_b1", "outcomes/sprachzertifikate_b1.csv", "admin",
               "B1 language certificates", ("language_b1",)),
        Source("case_management", "casemanagement/fallmanagement_export.csv", "admin",
               "person-level case-management export", ("case_management",)),
    )
}

#: Administrative sources, in pipeline order (one ``ingest_<key>`` rule each).
ADMIN_SOURCES: tuple[str, ...] = tuple(k for k, s in SOURCES.items() if s.kind == "admin")
#: Survey sources and their waves.
SURVEY_SOURCES: tuple[str, ...] = tuple(k for k, s in SOURCES.items() if s.kind == "survey")
WAVES: tuple[str, ...] = tuple(SOURCES[k].wave for k in SURVEY_SOURCES)  # type: ignore[misc]
#: The monthly outcome files (and the denominator) merged into the panel.
OUTCOME_SOURCES: tuple[str, ...] = ("refugees_au", "employment_ba", "training", "language_b1")


def survey_source(wave: str) -> Source:
    """The survey source of ``wave`` (``w1`` ... ``w5``)."""
    for key in SURVEY_SOURCES:
        if SOURCES[key].wave == wave:
            return SOURCES[key]
    raise KeyError(f"unknown survey wave {wave!r} (waves: {', '.join(WAVES)})")


#: Stage name of every job that writes a lineage table, in the order the panel stage
#: concatenates them (ingestion, surveys, harmonisation, treatment, panel).
LINEAGE_STAGES: tuple[str, ...] = (
    *(f"ingest_{k}" for k in ADMIN_SOURCES),
    *(f"ingest_survey_{w}" for w in WAVES),
    "harmonise_surveys",
    "treatment",
)
