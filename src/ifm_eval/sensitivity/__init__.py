"""Sensitivity of event-study conclusions to violations of parallel trends (HonestDiD).

Rambachan & Roth (2023, Review of Economic Studies 90(5)): robust confidence intervals for
``theta = l'tau_post`` when the bias ``delta`` lies in the relative-magnitudes set
``Delta^RM(Mbar)`` (C-LF hybrid test of Andrews, Roth & Pakes 2023) or the smoothness set
``Delta^SD(M)`` (optimal fixed-length CI), the conventional CI, and breakdown values.
scipy only (HiGHS linear programmes); no cvxpy at run time.

Public API: :func:`honest_did`, :func:`original_ci`, :func:`breakdown`.
"""

from __future__ import annotations

from ifm_eval.sensitivity.honest_did import breakdown, honest_did, original_ci

__all__ = ["breakdown", "honest_did", "original_ci"]
