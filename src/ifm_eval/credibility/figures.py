"""Figures of the credibility stages (matplotlib; finished by :func:`ifm_eval.outputs.style.finish_figure`)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ifm_eval.outputs import style

_OUTCOME = {"rate_employment": ("Beschäftigung", "employment"), "rate_training": ("Ausbildung", "training"),
            "rate_language": ("Sprache (B1)", "language (B1)")}


def outcome_label(outcome: str, lang: str) -> str:
    de, en = _OUTCOME.get(outcome, (outcome, outcome))
    return de if lang == "de" else en


def _grid(n_rows: int, n_cols: int, width: float = 7.2, row_h: float = 1.55):
    style.apply_style()
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(width, 0.9 + row_h * n_rows), squeeze=False)
    return fig, axes


def randomization_figure(table: pd.DataFrame, draws: pd.DataFrame, lang: str) -> plt.Figure:
    """Per estimator (rows) and outcome (columns): histogram of the headline's t-statistic
    over the permutations, the observed one as a line, the randomization p in the corner."""
    ests = list(dict.fromkeys(table["estimator"]))
    outs = list(dict.fromkeys(table["outcome"]))
    fig, axes = _grid(max(len(ests), 1), max(len(outs), 1))
    for i, est in enumerate(ests):
        for j, out in enumerate(outs):
            ax = axes[i][j]
            row = table[(table["estimator"] == est) & (table["outcome"] == out)]
            if not len(row):
                ax.axis("off")
                continue
            r = row.iloc[0]
            d = draws[draws["model"] == r["model"]]
            t = (d["estimate"] / d["se"]).to_numpy(float)
            perm = t[(d["draw"] > 0).to_numpy() & np.isfinite(t)]
            obs = t[(d["draw"] == 0).to_numpy()]
            if len(perm):
                ax.hist(perm, bins=30, color="#9db4c9", edgecolor="white", linewidth=0.3)
            if len(obs) and np.isfinite(obs[0]):
                ax.axvline(obs[0], color="#b2182b", linewidth=1.2)
            ax.text(0.02, 0.95, f"p = {style.format_number(r['p_randomization'], 3, lang)}", transform=ax.transAxes,
                    fontsize=6.5, va="top")
            ax.set_yticks([])
            ax.tick_params(labelsize=6)
            if i == 0:
                ax.set_title(outcome_label(out, lang), fontsize=7.5)
            if j == 0:
                ax.set_ylabel(est.replace("_", " "), fontsize=6.5)
    fig.suptitle("Randomisierungsinferenz: t-Statistik unter Permutation" if lang == "de"
                 else "Randomization inference: t-statistic under permutation", fontsize=8.5)
    fig.tight_layout()
    return fig


_TYPE_STYLE = {"earlier_vs_later": ("#2166ac", "o"), "later_vs_earlier": ("#b2182b", "^"),
               "treated_vs_untreated": ("#4d9221", "s")}
_TYPE_LABEL = {"earlier_vs_later": ("früher vs. später behandelt", "earlier vs later treated"),
               "later_vs_earlier": ("später vs. früher behandelt (verbotener Vergleich)",
                                    "later vs earlier treated (forbidden comparison)"),
               "treated_vs_untreated": ("behandelt vs. nie behandelt", "treated vs never treated")}


def bacon_figure(bacon: pd.DataFrame, lang: str) -> plt.Figure:
    """Per outcome: every 2x2 estimate against its weight, by comparison type, with the TWFE
    coefficient as a line."""
    outs = list(dict.fromkeys(bacon["outcome"])) if len(bacon) else []
    fig, axes = _grid(1, max(len(outs), 1), row_h=2.4)
    for j, out in enumerate(outs):
        ax = axes[0][j]
        d = bacon[bacon["outcome"] == out]
        for typ, (color, marker) in _TYPE_STYLE.items():
            s = d[d["type"] == typ]
            if len(s):
                de, en = _TYPE_LABEL.get(typ, (typ, typ))
                ax.scatter(s["weight"], s["estimate"], s=6, color=color, marker=marker, alpha=0.6,
                           label=de if lang == "de" else en, linewidths=0)
        beta = float((d["weight"] * d["estimate"]).sum())
        ax.axhline(beta, color="#333333", linewidth=0.8, linestyle="--")
        ax.axhline(0, color="#999999", linewidth=0.5)
        ax.set_xscale("log")
        ax.set_title(outcome_label(out, lang), fontsize=7.5)
        ax.set_xlabel("Gewicht" if lang == "de" else "weight", fontsize=6.5)
        ax.tick_params(labelsize=6)
        if j == 0:
            ax.set_ylabel("2x2-Schätzung (pp)" if lang == "de" else "2x2 estimate (pp)", fontsize=6.5)
    if outs:
        axes[0][0].legend(fontsize=5.5, loc="lower left", frameon=False)
    fig.suptitle("Goodman-Bacon-Zerlegung der statischen TWFE" if lang == "de"
                 else "Goodman-Bacon decomposition of the static TWFE", fontsize=8.5)
    fig.tight_layout()
    return fig


def honest_did_figure(table: pd.DataFrame, lang: str) -> plt.Figure:
    """Headline target: robust CIs against Mbar (relative magnitudes) and M (smoothness),
    the original CI at the left; rows = estimator x restriction, columns = outcome."""
    d = table[table["target"] == "headline"] if len(table) else table
    ests = list(dict.fromkeys(d["estimator"])) if len(d) else []
    outs = list(dict.fromkeys(d["outcome"])) if len(d) else []
    combos = [(e, r) for e in ests for r in ("relative_magnitude", "smoothness")]
    fig, axes = _grid(max(len(combos), 1), max(len(outs), 1), row_h=1.45)
    for i, (est, restr) in enumerate(combos):
        for j, out in enumerate(outs):
            ax = axes[i][j]
            sub = d[(d["estimator"] == est) & (d["outcome"] == out)]
            orig = sub[sub["method"] == "Original"]
            rob = sub[sub["restriction"] == restr].sort_values("m")
            if not len(orig) or not len(rob):
                ax.axis("off")
                continue
            xs = np.arange(len(rob) + 1)
            lo = np.r_[orig["lb"].iloc[0], rob["lb"].to_numpy(float)]
            hi = np.r_[orig["ub"].iloc[0], rob["ub"].to_numpy(float)]
            colors = ["#333333"] + ["#2166ac"] * len(rob)
            for x, a, b, c in zip(xs, lo, hi, colors, strict=True):
                ax.plot([x, x], [a, b], color=c, linewidth=2)
            ax.axhline(0, color="#999999", linewidth=0.5)
            ax.set_xticks(xs)
            ax.set_xticklabels(["orig."] + [f"{m:g}" for m in rob["m"]], fontsize=5.5)
            ax.tick_params(labelsize=6)
            if i == 0:
                ax.set_title(outcome_label(out, lang), fontsize=7.5)
            if j == 0:
                ax.set_ylabel(f"{est.replace('_', ' ')}\n{'M̄' if restr == 'relative_magnitude' else 'M'}",
                              fontsize=6)
    fig.suptitle("HonestDiD: robuste 95-%-Konfidenzintervalle" if lang == "de"
                 else "HonestDiD: robust 95% confidence intervals", fontsize=8.5)
    fig.tight_layout()
    return fig
