"""ifm_eval — evaluation pipeline for Integrationsmanagement (IM) in Baden-Württemberg.

Stages: reference frame -> stand-in data (synth) -> ingestion/harmonisation -> municipality x
month panel -> staggered DiD / event-study estimators -> tables, figures, report.
"""

__version__ = "0.1.0"
