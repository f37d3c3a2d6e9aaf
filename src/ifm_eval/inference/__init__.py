"""Inference beyond the analytic standard errors: few-cluster bootstraps (wild cluster
restricted bootstrap of regression coefficients, multiplier bootstrap of influence
functions), randomization inference across Verbände and Romano–Wolf step-down p-values
across outcomes."""

from ifm_eval.inference.multiplier import multiplier_rows
from ifm_eval.inference.romano_wolf import romano_wolf
from ifm_eval.inference.weights import WEIGHT_KINDS, draw_weights
from ifm_eval.inference.wild_cluster import WCRProblem, wcr_rows

__all__ = ["WCRProblem", "WEIGHT_KINDS", "draw_weights", "multiplier_rows", "romano_wolf", "wcr_rows"]
