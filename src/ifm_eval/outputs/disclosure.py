"""Statistical disclosure control for everything written under ``results/``.

Rule (config ``disclosure.min_cell``, default 5): a published cell that counts fewer than
``min_cell`` persons (but more than zero) is suppressed (*primary suppression*). Where a
published total (row or column margin) would let a reader recompute a suppressed cell,
further cells of the same line are suppressed (*secondary suppression*): every line with a
published total must contain either no suppressed cell or at least two whose sum is itself
at least ``min_cell``; the smallest remaining cells are added until that holds, iterating
over rows and columns until stable.

Convention for the checker: columns that count persons are named ``n_persons``,
``n_persons_*``, ``*_persons`` or carry a panel count name (``refugees``, ``employed``,
``in_training``, ``b1_holders`` and their ``_lo``/``_hi`` bounds). Municipality counts
(``n``, ``n_units``, ``n_municipalities``) and municipality-months (``n_obs``) are not
person counts. :func:`check_files` scans the given CSV and Parquet files (the
``check_disclosure`` job: every published file its rule declares) and reports any
person-count cell in ``(0, min_cell)``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

DEFAULT_MIN_CELL = 5
PANEL_COUNT_NAMES = ("refugees", "employed", "in_training", "b1_holders")
_COUNTS = "|".join(PANEL_COUNT_NAMES)
_PERSON_RE = re.compile(rf"^(n_persons(_.*)?|.*_persons|persons|({_COUNTS})(_lo|_hi)?)$")


def min_cell(cfg: dict[str, Any] | None) -> int:
    return int(((cfg or {}).get("disclosure") or {}).get("min_cell", DEFAULT_MIN_CELL))


def is_person_count_column(name: str) -> bool:
    """True if a column named ``name`` counts persons (see module docstring)."""
    return bool(_PERSON_RE.match(str(name)))


def primary_mask(values: pd.DataFrame | pd.Series, threshold: int) -> pd.DataFrame | pd.Series:
    """Cells with ``0 < value < threshold`` (NaN and zero are safe)."""
    v = values.apply(pd.to_numeric, errors="coerce") if isinstance(values, pd.DataFrame) else pd.to_numeric(values, errors="coerce")
    return (v > 0) & (v < threshold)


def _protect_line(vals: np.ndarray, mask: np.ndarray, threshold: int) -> bool:
    """Add secondary suppressions to one line (in place); return True if anything changed."""
    changed = False
    while True:
        sup = mask & ~np.isnan(vals)
        n_sup = int(sup.sum())
        if n_sup == 0:
            return changed
        total_sup = float(np.nansum(np.where(sup, vals, 0.0)))
        if n_sup >= 2 and (total_sup == 0 or total_sup >= threshold):
            return changed
        candidates = np.where(~mask & ~np.isnan(vals))[0]
        if len(candidates) == 0:
            return changed
        # smallest remaining cell first; prefer non-zero cells (zeros protect nothing)
        order = sorted(candidates, key=lambda i: (vals[i] == 0, vals[i]))
        mask[order[0]] = True
        changed = True


@dataclass
class Suppressed:
    table: pd.DataFrame  # suppressed cells set to NaN
    mask: pd.DataFrame  # True where suppressed
    n_primary: int
    n_secondary: int


def suppress_table(
    table: pd.DataFrame,
    threshold: int = DEFAULT_MIN_CELL,
    *,
    columns: list[str] | None = None,
    row_totals: bool = True,
    col_totals: bool = True,
) -> Suppressed:
    """Primary + secondary suppression of a table of person counts.

    ``columns``: the count columns (default: all numeric columns). If ``row_totals`` the
    table's rows are published with a total (a "Gesamt"/"total" column, whether or not it is
    part of ``table``): every row is protected. ``col_totals`` likewise for columns. A
    margin present in the table itself (a column or row called ``total``/``Gesamt``) is
    protected like any other cell of its line.
    """
    columns = columns or [c for c in table.columns if pd.api.types.is_numeric_dtype(table[c])]
    values = table[columns].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    mask = ((values > 0) & (values < threshold))
    primary = mask.copy()
    changed = True
    while changed:
        changed = False
        if row_totals:
            for i in range(values.shape[0]):
                line = mask[i, :].copy()
                if _protect_line(values[i, :], line, threshold):
                    mask[i, :] = line
                    changed = True
        if col_totals:
            for j in range(values.shape[1]):
                line = mask[:, j].copy()
                if _protect_line(values[:, j], line, threshold):
                    mask[:, j] = line
                    changed = True
    out = table.copy()
    for j, c in enumerate(columns):
        out[c] = pd.to_numeric(out[c], errors="coerce").astype(float).where(~mask[:, j])
    mask_df = pd.DataFrame(False, index=table.index, columns=table.columns)
    mask_df[columns] = mask
    return Suppressed(out, mask_df, int(primary.sum()), int((mask & ~primary).sum()))


def suppress_rates(
    df: pd.DataFrame,
    numerator: str,
    denominator: str,
    rate_columns: list[str],
    threshold: int = DEFAULT_MIN_CELL,
) -> pd.DataFrame:
    """Blank rates computed from fewer than ``threshold`` persons in numerator or denominator.

    The numerator is dropped from the returned frame (only the denominator, a person count,
    and the rate are published); the denominator itself is suppressed when small.
    """
    out = df.copy()
    num = pd.to_numeric(out[numerator], errors="coerce")
    den = pd.to_numeric(out[denominator], errors="coerce")
    bad = ((num > 0) & (num < threshold)) | ((den > 0) & (den < threshold)) | ((den - num > 0) & (den - num < threshold))
    for c in rate_columns:
        out[c] = out[c].where(~bad)
    out[denominator] = den.where(~((den > 0) & (den < threshold)))
    return out.drop(columns=[numerator])


# --------------------------------------------------------------------------- checker
@dataclass
class Violation:
    file: str
    column: str
    row: int
    value: float

    def __str__(self) -> str:
        return f"{self.file}: column {self.column!r}, row {self.row}: {self.value:g} persons"


def _read_any(path: Path) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path, sep=None, engine="python", dtype=str, keep_default_na=True)


def check_files(files: list[str | Path], threshold: int = DEFAULT_MIN_CELL) -> list[Violation]:
    """Every person-count cell in ``(0, threshold)`` in the given CSV/Parquet files (other
    files are skipped: figures and reports are built from checked tables)."""
    violations: list[Violation] = []
    files = sorted(Path(p) for p in files if Path(p).suffix in {".csv", ".parquet"})
    for path in files:
        try:
            df = _read_any(path)
        except Exception as exc:  # an unreadable table cannot be certified
            violations.append(Violation(str(path), f"<unreadable: {exc}>", -1, float("nan")))
            continue
        for col in df.columns:
            if not is_person_count_column(col):
                continue
            vals = pd.to_numeric(df[col].astype("string").str.replace(",", ".", regex=False), errors="coerce")
            bad = (vals > 0) & (vals < threshold)
            for i in np.flatnonzero(bad.to_numpy()):
                violations.append(Violation(str(path), str(col), int(i), float(vals.iloc[i])))
    log.info("disclosure check: %d file(s) scanned, %d violation(s)", len(files), len(violations))
    return violations
