"""Staggered difference-in-differences and event-study estimators.

Public estimators: :func:`twfe_static`, :func:`twfe_dynamic`, :func:`sun_abraham`,
:func:`imputation` (Borusyak-Jaravel-Spiess), :func:`gardner` (two-stage) and
:func:`callaway_santanna`. The functions are bound here eagerly (several share their
module's name, and a lazily bound name would be shadowed by the submodule once that is
imported). ``callaway_santanna`` is guarded: while its module is missing or fails to
import, the package still imports and calling the function raises the original error.
"""

from __future__ import annotations

from typing import Any

from ifm_eval.estimators.gardner import gardner
from ifm_eval.estimators.imputation import imputation
from ifm_eval.estimators.results import TIDY_SCHEMA, EstimateResult
from ifm_eval.estimators.sun_abraham import sun_abraham
from ifm_eval.estimators.twfe import twfe_dynamic, twfe_static

try:
    from ifm_eval.estimators.callaway_santanna import callaway_santanna
except Exception as _exc:  # noqa: BLE001 - re-raised when the estimator is used
    _CS_IMPORT_ERROR = _exc

    def callaway_santanna(*args: Any, **kwargs: Any) -> Any:  # type: ignore[misc]
        raise ImportError(
            f"ifm_eval.estimators.callaway_santanna is not available: {_CS_IMPORT_ERROR!r}"
        ) from _CS_IMPORT_ERROR


__all__ = [
    "TIDY_SCHEMA",
    "EstimateResult",
    "callaway_santanna",
    "gardner",
    "imputation",
    "sun_abraham",
    "twfe_dynamic",
    "twfe_static",
]
