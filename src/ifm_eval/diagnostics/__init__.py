"""Diagnostics of (staggered) difference-in-differences designs.

* :mod:`.pretrends`: joint Wald pre-test, power of the conventional pre-test against
  hypothesised violations of parallel trends and the bias surviving pre-testing
  (Roth 2022; R ``pretrends``).
* :mod:`.bacon`: Goodman-Bacon (2021) decomposition of the static TWFE coefficient into
  2x2 difference-in-differences (R ``bacondecomp``).
* :mod:`.twfe_weights`: de Chaisemartin & D'Haultfoeuille (2020) weights of the static TWFE
  coefficient on the treated cells, negative weights and robustness measures.

Runtime dependencies: numpy, scipy, pandas.
"""

from ifm_eval.diagnostics.bacon import bacon_decomposition, bacon_summary
from ifm_eval.diagnostics.pretrends import (
    PretrendPower,
    pretest_threshold,
    pretest_wald,
    pretrend_power,
    slope_for_power,
)
from ifm_eval.diagnostics.twfe_weights import fe_residual, twfe_weights, twfe_weights_summary

__all__ = [
    "PretrendPower",
    "bacon_decomposition",
    "bacon_summary",
    "fe_residual",
    "pretest_threshold",
    "pretest_wald",
    "pretrend_power",
    "slope_for_power",
    "twfe_weights",
    "twfe_weights_summary",
]
