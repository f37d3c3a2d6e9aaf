"""Continuous-treatment (dose-response) DiD of Callaway, Goodman-Bacon & Sant'Anna (2024).

* :func:`estimate_dose_response` — ATT(d), ACRT(d) with uniform bands, ATT^o / ACRT^o and
  their event study in the staggered setting (:mod:`ifm_eval.dose.estimate`);
* :func:`binned_dose_att` — the cross-check: binary ATT per dose bin next to the spline's
  bin average (:mod:`ifm_eval.dose.binned`);
* :func:`plot_dose_response` — figure (:mod:`ifm_eval.dose.figures`, imported lazily).
"""

from .binned import BinnedDoseResult, binned_dose_att
from .estimate import DEFAULT_SEED, default_dose_grid, estimate_dose_response, fit_dose_cells
from .result import DoseResponseResult

__all__ = [
    "DEFAULT_SEED",
    "BinnedDoseResult",
    "DoseResponseResult",
    "binned_dose_att",
    "default_dose_grid",
    "estimate_dose_response",
    "fit_dose_cells",
    "plot_dose_response",
]


def __getattr__(name: str):
    if name == "plot_dose_response":
        from .figures import plot_dose_response

        return plot_dose_response
    raise AttributeError(name)
