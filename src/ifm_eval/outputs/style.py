"""One matplotlib style for every figure: grayscale-readable, German labels by default.

- :func:`apply_style` sets rcParams (no colour needed to tell series apart: gray shades,
  markers and line styles differ together).
- :func:`label` translates label keys (``de`` default, ``en`` switch).
- :func:`finish_figure` adds the source line, N and — for stand-in data — the visible
  "SYNTHETISCHE DATEN / SYNTHETIC DATA" mark, then writes PNG and PDF.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
logging.getLogger("fontTools").setLevel(logging.WARNING)
import matplotlib.pyplot as plt  # noqa: E402

SYNTHETIC_MARK = "SYNTHETISCHE DATEN / SYNTHETIC DATA"

#: Gray shades (dark to light), markers and line styles: series stay distinguishable in
#: black-and-white print.
GRAYS = ["#000000", "#555555", "#888888", "#aaaaaa", "#333333", "#777777"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X"]
LINESTYLES = ["-", "--", ":", "-.", (0, (5, 1)), (0, (1, 1))]
HATCHES = ["", "///", "...", "xxx", "\\\\\\", "++"]
SEQUENTIAL_CMAP = "Greys"
DIVERGING_CMAP = "cividis"  # monotone lightness: readable in grayscale

DPI = 200
FORMATS = ("png", "pdf")

LABELS: dict[str, dict[str, str]] = {
    # axes and generic words
    "n": {"de": "N", "en": "N"},
    "municipalities": {"de": "Kommunen", "en": "Municipalities"},
    "share_municipalities": {"de": "Anteil der Kommunen (%)", "en": "Share of municipalities (%)"},
    "count_municipalities": {"de": "Anzahl Kommunen", "en": "Number of municipalities"},
    "cum_share": {"de": "Kumulierter Anteil (%)", "en": "Cumulative share (%)"},
    "month": {"de": "Monat", "en": "Month"},
    "event_time": {"de": "Monate relativ zum Start des IM", "en": "Months relative to IM start"},
    "effect_pp": {"de": "Effekt (Prozentpunkte)", "en": "Effect (percentage points)"},
    "rate_pct": {"de": "Quote (%)", "en": "Rate (%)"},
    "cohort": {"de": "Startkohorte", "en": "Start cohort"},
    "calendar_month": {"de": "Kalendermonat", "en": "Calendar month"},
    "att": {"de": "ATT (Prozentpunkte)", "en": "ATT (percentage points)"},
    "ci95": {"de": "Punktweises 95-%-Konfidenzintervall", "en": "Pointwise 95% confidence interval"},
    "cband": {"de": "Simultanes 95-%-Konfidenzband", "en": "Uniform 95% confidence band"},
    "truth": {"de": "Wahrer (eingepflanzter) Effekt", "en": "True (planted) effect"},
    "truth_matched": {"de": "Wahrer Effekt, gleiche Beobachtungen und Gewichte",
                      "en": "True effect, same observations and weights"},
    "not_applied": {"de": "kein Antrag / nie behandelt", "en": "no application / never treated"},
    "vza": {"de": "Vollzeitäquivalente (VZÄ)", "en": "Full-time equivalents (FTE)"},
    "source": {"de": "Quelle", "en": "Source"},
    "note": {"de": "Anmerkung", "en": "Note"},
    "multiple": {"de": "Mehrfachnennung möglich.", "en": "Multiple answers possible."},
    "own_calc": {"de": "Eigene Berechnungen.", "en": "Own calculations."},
    # outcomes
    "employment": {"de": "Beschäftigung (SvB)", "en": "Employment (social insurance)"},
    "training": {"de": "Ausbildung/Weiterbildung", "en": "Vocational/further training"},
    "language": {"de": "Sprache (B1-Zertifikat)", "en": "Language (B1 certificate)"},
    # estimators
    "twfe": {"de": "TWFE (naiv)", "en": "TWFE (naive)"},
    "twfe_static": {"de": "TWFE statisch (naiv)", "en": "TWFE static (naive)"},
    "twfe_dynamic": {"de": "TWFE dynamisch (naiv)", "en": "TWFE dynamic (naive)"},
    "callaway_santanna": {"de": "Callaway & Sant'Anna", "en": "Callaway & Sant'Anna"},
    "cs": {"de": "Callaway & Sant'Anna", "en": "Callaway & Sant'Anna"},
    "sun_abraham": {"de": "Sun & Abraham", "en": "Sun & Abraham"},
    "imputation": {"de": "Imputation (BJS)", "en": "Imputation (BJS)"},
    "borusyak_jaravel_spiess": {"de": "Imputation (BJS)", "en": "Imputation (BJS)"},
    "bjs": {"de": "Imputation (BJS)", "en": "Imputation (BJS)"},
    "did2s": {"de": "Zweistufig (Gardner)", "en": "Two-stage (Gardner)"},
    "gardner": {"de": "Zweistufig (Gardner)", "en": "Two-stage (Gardner)"},
    "two_stage": {"de": "Zweistufig (Gardner)", "en": "Two-stage (Gardner)"},
    "bacon": {"de": "Goodman-Bacon", "en": "Goodman-Bacon"},
}

OUTCOME_ALIASES = {
    "rate_employment": "employment",
    "rate_training": "training",
    "rate_language": "language",
}


def label(key: str, lang: str = "de") -> str:
    """Label of ``key`` in ``lang``; unknown keys are returned unchanged (prettified)."""
    key = OUTCOME_ALIASES.get(key, key)
    entry = LABELS.get(key)
    if entry is None:
        return str(key).replace("_", " ")
    return entry.get(lang, entry["de"])


def is_synthetic(cfg: dict[str, Any]) -> bool:
    return cfg.get("data", {}).get("source", "synthetic") == "synthetic"


def language(cfg: dict[str, Any]) -> str:
    return cfg.get("report", {}).get("language", "de")


def apply_style() -> None:
    """Set the common rcParams (idempotent)."""
    plt.rcParams.update(
        {
            "figure.figsize": (7.0, 4.2),
            "figure.dpi": 100,
            "savefig.dpi": DPI,
            "font.family": "DejaVu Sans",
            "font.size": 9,
            "axes.titlesize": 11,
            "axes.titleweight": "bold",
            "axes.labelsize": 9,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "axes.axisbelow": True,
            "grid.color": "#dddddd",
            "grid.linewidth": 0.6,
            "axes.prop_cycle": matplotlib.cycler(color=GRAYS[:4]),
            "legend.frameon": False,
            "legend.fontsize": 8,
            "lines.linewidth": 1.4,
            "pdf.fonttype": 42,
            "svg.hashsalt": "ifm_eval",
            "path.simplify": True,
        }
    )


def series_style(i: int) -> dict[str, Any]:
    """Colour, marker and line style of the i-th series."""
    return {
        "color": GRAYS[i % len(GRAYS)],
        "marker": MARKERS[i % len(MARKERS)],
        "linestyle": LINESTYLES[i % len(LINESTYLES)],
    }


def add_synthetic_mark(fig: plt.Figure) -> None:
    """Visible diagonal watermark plus a boxed corner stamp."""
    fig.text(
        0.5, 0.5, SYNTHETIC_MARK, fontsize=22, color="#000000", alpha=0.13,
        ha="center", va="center", rotation=25, fontweight="bold", zorder=1000,
        gid="synthetic-mark",
    )
    fig.text(
        0.995, 0.995, SYNTHETIC_MARK, fontsize=7, ha="right", va="top", color="#000000",
        fontweight="bold", zorder=1001,
        bbox={"boxstyle": "square,pad=0.25", "facecolor": "white", "edgecolor": "#000000", "linewidth": 0.8},
    )


def finish_figure(
    fig: plt.Figure,
    stem: str | Path,
    *,
    synthetic: bool,
    source: str | None = None,
    n: int | str | None = None,
    note: str | None = None,
    lang: str = "de",
    formats: Iterable[str] = FORMATS,
) -> list[Path]:
    """Add footer (N, note, source) and the stand-in mark; save as PNG and PDF; close."""
    lines = []
    if n is not None:
        lines.append(f"N = {format_int(n, lang) if not isinstance(n, str) else n}")
    if note:
        lines.append(f"{label('note', lang)}: {note}")
    if source:
        lines.append(f"{label('source', lang)}: {source}")
    if lines:
        import textwrap

        width_in, height_in = fig.get_size_inches()
        chars = max(40, int(width_in * 72 / (6.5 * 0.56)))  # 6.5 pt text, ~0.56 em per char
        wrapped = [w for line in lines for w in textwrap.wrap(line, chars)]
        fig.text(0.01, 0.005, "\n".join(wrapped), fontsize=6.5, ha="left", va="bottom", color="#333333")
        footer_h = (0.125 * len(wrapped) + 0.1) / height_in  # ~9 pt per line
        fig.subplots_adjust(bottom=min(0.6, fig.subplotpars.bottom + footer_h))
    if synthetic:
        height_in = fig.get_size_inches()[1]
        fig.subplots_adjust(top=max(0.4, fig.subplotpars.top - 0.16 / height_in))
        add_synthetic_mark(fig)
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in formats:
        path = stem.with_suffix(f".{fmt}")
        metadata = {"pdf": {"Creator": "ifm_eval", "CreationDate": None}, "svg": {"Date": None}}.get(fmt, {"Software": "ifm_eval"})
        fig.savefig(path, format=fmt, metadata=metadata)
        written.append(path)
    plt.close(fig)
    return written


# ---------------------------------------------------------------------------- numbers
def format_number(x: Any, digits: int = 2, lang: str = "de", signed: bool = False) -> str:
    """Consistent number formatting: German decimal comma / thousands dot, or English."""
    try:
        if x is None or x != x:  # NaN
            return "–"
    except TypeError:
        return str(x)
    s = f"{float(x):+,.{digits}f}" if signed else f"{float(x):,.{digits}f}"
    if lang == "de":
        s = s.replace(",", "\u2009").replace(".", ",").replace("\u2009", ".")
    return s.replace("-", "−")


def format_int(x: Any, lang: str = "de") -> str:
    return format_number(x, 0, lang)


def format_pct(x: Any, digits: int = 0, lang: str = "de") -> str:
    """Percent with the language's spacing (``68 %`` in German, ``68%`` in English)."""
    s = format_number(x, digits, lang)
    if s == "–":
        return s
    return f"{s}\u00a0%" if lang == "de" else f"{s}%"
