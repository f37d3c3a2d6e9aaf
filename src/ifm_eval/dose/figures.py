"""Figure of the dose response: ATT(d) and ACRT(d) with uniform and pointwise bands.

:func:`plot_dose_response` draws two panels (ATT(d), ACRT(d)): the estimate, the uniform
(sup-t) band, the pointwise band, a zero line, and the treated units' doses as a
histogram along the bottom with a rug. :func:`save_dose_figure` writes PNG/PDF through
:func:`ifm_eval.outputs.style.finish_figure` (no timestamps in the metadata, so the files
are byte-identical across runs).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ifm_eval.outputs import style  # noqa: E402

from .result import DoseResponseResult  # noqa: E402

_LABELS = {
    "att": {"de": "ATT(d)", "en": "ATT(d)"},
    "acrt": {"de": "ACRT(d) (Steigung)", "en": "ACRT(d) (slope)"},
    "dose": {"de": "Dosis", "en": "Dose"},
    "estimate": {"de": "Schätzung", "en": "Estimate"},
    "uniform": {"de": "Simultanes Konfidenzband", "en": "Uniform confidence band"},
    "pointwise": {"de": "Punktweises Konfidenzintervall", "en": "Pointwise confidence interval"},
    "doses": {"de": "Dosen der behandelten Kommunen", "en": "Doses of treated municipalities"},
}


def _lab(key: str, lang: str) -> str:
    return _LABELS[key].get(lang, _LABELS[key]["de"])


def _panel(ax: plt.Axes, x: np.ndarray, est: np.ndarray, lo: np.ndarray, hi: np.ndarray, plo: np.ndarray,
           phi: np.ndarray, doses: np.ndarray, ylabel: str, lang: str, level: int) -> None:
    if np.isfinite(lo).any():
        ax.fill_between(x, lo, hi, color="#d9d9d9", linewidth=0, label=f"{_lab('uniform', lang)} ({level} %)")
    ax.fill_between(x, plo, phi, color="#a6a6a6", linewidth=0, label=f"{_lab('pointwise', lang)} ({level} %)")
    ax.plot(x, est, color="#000000", linewidth=1.6, label=_lab("estimate", lang))
    ax.axhline(0.0, color="#555555", linewidth=0.8, linestyle="--")
    if x.max() > x.min():
        ax.set_xlim(x.min(), x.max())
    ax.set_ylabel(ylabel)
    ax.set_xlabel(_lab("dose", lang))
    shown = doses[(doses >= x.min()) & (doses <= x.max())]
    if len(shown):
        hx = ax.twinx()
        hx.hist(shown, bins=min(30, max(5, len(np.unique(shown)))), color="#777777", alpha=0.35,
                label=_lab("doses", lang))
        top = hx.get_ylim()[1]
        hx.set_ylim(0, top * 4.0)  # histogram in the lower quarter
        hx.set_yticks([])
        hx.spines["right"].set_visible(False)
        hx.grid(False)
        ax.set_zorder(hx.get_zorder() + 1)  # bands and estimate above the histogram
        ax.patch.set_visible(False)
        ax.plot(shown, np.zeros_like(shown), "|", color="#000000", markersize=4, alpha=0.5,
                transform=ax.get_xaxis_transform())


def plot_dose_response(
    result: DoseResponseResult,
    title: str | None = None,
    ax: Sequence[plt.Axes] | None = None,
    *,
    lang: str = "de",
    outcome_label: str | None = None,
) -> plt.Figure:
    """ATT(d) (left) and ACRT(d) (right) with uniform (light) and pointwise (dark) bands and
    the treated doses' histogram / rug; ``ax``: two axes to draw into (default: new figure)."""
    style.apply_style()
    if ax is None:
        fig, axes = plt.subplots(1, 2, figsize=(7.2, 3.3))
    else:
        axes = list(ax)
        if len(axes) != 2:
            raise ValueError("ax must be a pair of matplotlib Axes (ATT(d), ACRT(d))")
        fig = axes[0].figure
    c = result.curves
    x = c["dose"].to_numpy(float)
    level = int(round(100 * (1 - float(result.info.get("alpha", 0.05)))))
    doses = np.asarray(result.treated_doses, float)
    ylab = outcome_label or ""
    _panel(axes[0], x, c["att"].to_numpy(float), c["att_lo"].to_numpy(float), c["att_hi"].to_numpy(float),
           c["att_lo_pointwise"].to_numpy(float), c["att_hi_pointwise"].to_numpy(float), doses,
           f"{_lab('att', lang)}{' – ' + ylab if ylab else ''}", lang, level)
    _panel(axes[1], x, c["acrt"].to_numpy(float), c["acrt_lo"].to_numpy(float), c["acrt_hi"].to_numpy(float),
           c["acrt_lo_pointwise"].to_numpy(float), c["acrt_hi_pointwise"].to_numpy(float), doses,
           _lab("acrt", lang), lang, level)
    axes[0].set_title(_lab("att", lang))
    axes[1].set_title(_lab("acrt", lang))
    axes[0].legend(loc="upper left", fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def save_dose_figure(fig: plt.Figure, stem: str | Path, *, synthetic: bool, source: str | None = None,
                     n: int | str | None = None, note: str | None = None, lang: str = "de",
                     formats: Sequence[str] = ("png", "pdf")) -> list[Path]:
    """Write ``fig`` as ``stem.png`` / ``stem.pdf`` (deterministic metadata; closes it)."""
    return style.finish_figure(fig, stem, synthetic=synthetic, source=source, n=n, note=note, lang=lang,
                               formats=formats)
