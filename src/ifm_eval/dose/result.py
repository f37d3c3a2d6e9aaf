"""Result container of :func:`ifm_eval.dose.estimate_dose_response`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd


@dataclass
class DoseResponseResult:
    """Continuous-treatment DiD (Callaway, Goodman-Bacon & Sant'Anna 2024), staggered.

    * ``curves``: one row per grid dose: ``dose``, ``att`` (ATT(d)), ``att_se``, ``att_lo`` /
      ``att_hi`` (uniform sup-t band over the grid), ``att_lo_pointwise`` /
      ``att_hi_pointwise``, the same for ``acrt`` (ACRT(d)), and ``att_se_analytic`` /
      ``acrt_se_analytic``;
    * ``aggregates``: ``term`` in {``att_overall``, ``acrt_overall``} (ATT^o, ACRT^o),
      ``estimate``, ``se``, ``ci_low``, ``ci_high``, ``p``, ``se_analytic``;
    * ``event_study``: ``event_time``, ``att`` (ATT^o(e)), ``se``, ``ci_low``, ``ci_high``,
      ``acrt`` (ACRT^o(e)), ``acrt_se``, ``acrt_ci_low``, ``acrt_ci_high``, analytic SEs,
      ``n_cohorts``, ``n_treated`` (treated unit-cells);
    * ``cells``: every (g,t) cell: cohort, time, base period, event time, ATT^o(g,t),
      ACRT^o(g,t) with analytic SEs, treated / comparison units, dose-aggregation weight,
      ``dropped`` and ``reason``;
    * counts: ``n_units`` (estimation sample), ``n_treated`` (treated units),
      ``n_clusters``, ``n_cells_used`` (cells estimated), ``n_cells_dropped`` (cells dropped
      for too few comparison units), ``n_cells_unidentified`` (dropped because the dose spline
      is not identified / no treated unit observed);
    * ``treated_doses``: the treated units' doses (for rugs / histograms);
    * ``info``: settings, critical values, notes, timing.

    ``se`` columns are bootstrap SEs when ``n_boot > 0``, analytic otherwise (then the
    uniform bands are NaN).
    """

    curves: pd.DataFrame
    aggregates: pd.DataFrame
    event_study: pd.DataFrame
    cells: pd.DataFrame
    n_units: int
    n_treated: int
    n_clusters: int
    n_cells_used: int
    n_cells_dropped: int
    n_cells_unidentified: int
    treated_doses: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)
    influence: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def aggregate(self, term: str) -> pd.Series:
        """The ``aggregates`` row of ``term`` (``att_overall`` / ``acrt_overall``)."""
        rows = self.aggregates[self.aggregates["term"] == term]
        if len(rows) != 1:
            raise KeyError(term)
        return rows.iloc[0]
