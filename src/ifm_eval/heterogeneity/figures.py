"""Subgroup event studies side by side (one figure per moderator)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ifm_eval.credibility.figures import outcome_label
from ifm_eval.heterogeneity.moderators import MISSING, moderator
from ifm_eval.outputs import style

#: row order of the outcomes
_OUTCOMES = ("rate_employment", "rate_training", "rate_language")
_EST = {"callaway_santanna": "Callaway & Sant'Anna", "imputation": "Imputation (BJS)"}
_COLORS = {"callaway_santanna": "#1f4e79", "imputation": "#c05a1a"}


def subgroup_figure(tables: pd.DataFrame, truth_paths: pd.DataFrame, name: str, lang: str) -> plt.Figure:
    """Rows: outcomes; columns: the moderator's groups. Each panel: the event-time estimates
    of every estimator with 95 % intervals (offset horizontally), the planted truth path of
    the first estimator's sample as a line (stand-in data), n treated in the title."""
    style.apply_style()
    mod = moderator(name)
    ev = tables[tables["kind"] == "event_time"] if len(tables) else tables
    outs = [o for o in _OUTCOMES if len(tables) and o in set(tables["outcome"])]
    groups = list(dict.fromkeys(tables["group"].astype(str))) if len(tables) else []
    fig, axes = plt.subplots(max(len(outs), 1), max(len(groups), 1), figsize=(7.2, 1.0 + 1.6 * max(len(outs), 1)),
                             squeeze=False, sharex=True)
    ests = list(dict.fromkeys(tables["estimator"])) if len(tables) else []
    for i, out in enumerate(outs):
        for j, grp in enumerate(groups):
            ax = axes[i][j]
            for k, est in enumerate(ests):
                sel = (ev["outcome"] == out) & (ev["group"].astype(str) == grp) & (ev["estimator"] == est)
                d = ev[sel].sort_values("event_time")
                if not len(d):
                    continue
                x = d["event_time"].to_numpy(float) + (k - (len(ests) - 1) / 2) * 0.3
                ax.errorbar(x, d["estimate"], yerr=[d["estimate"] - d["ci_low"], d["ci_high"] - d["estimate"]],
                            fmt="o", ms=1.8, lw=0.6, color=_COLORS.get(est, "#444444"),
                            label=_EST.get(est, est) if (i == 0 and j == 0) else None)
                if k == 0 and len(truth_paths):
                    tp = truth_paths[(truth_paths["spec"] == d["spec"].iloc[0]) & (truth_paths["group"].astype(str) == grp)]
                    tp = tp.sort_values("event_time")
                    if len(tp):
                        ax.plot(tp["event_time"], tp["truth"], color="#b2182b", lw=0.9,
                                label=("geplanter Effekt" if lang == "de" else "planted effect") if (i == 0 and j == 0) else None)
            ax.axhline(0, color="#888888", lw=0.5)
            ax.axvline(-0.5, color="#bbbbbb", lw=0.5, ls=":")
            ax.tick_params(labelsize=6)
            if i == 0:
                sub = tables[(tables["group"].astype(str) == grp)]
                n_tr = int(sub["n_treated"].max()) if len(sub) else 0
                gl = ("fehlend" if lang == "de" else "missing") if grp == MISSING else grp
                ax.set_title(f"{gl} (n = {n_tr})", fontsize=7)
            if j == 0:
                ax.set_ylabel(f"{outcome_label(out, lang)}\n(pp)", fontsize=6.5)
            if i == len(outs) - 1:
                ax.set_xlabel("Monate seit Beginn" if lang == "de" else "months since start", fontsize=6.5)
            if not np.isfinite(ax.get_ylim()).all():
                ax.set_ylim(-1, 1)
    if len(ests):
        fig.legend(loc="upper right", fontsize=6, frameon=False, ncol=3)
    title = mod.label_de if lang == "de" else mod.label_en
    fig.suptitle(("Effekte nach Untergruppen: " if lang == "de" else "Effects by subgroup: ") + title, fontsize=8.5,
                 x=0.01, ha="left")
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return fig
