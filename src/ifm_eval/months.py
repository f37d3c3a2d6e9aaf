"""Month arithmetic and the panel window: the one home for both.

Months are handled as integer *month indices* ``year * 12 + month - 1`` (so that
differences are month counts) and, inside the panel, as periods ``t = 1 .. T`` with
``t = 1`` the first panel month (``panel.start``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def month_index(ts: Any) -> Any:
    """``year * 12 + month - 1`` of a Timestamp, Period, ``"YYYY-MM"`` string, or of every
    element of a datetime Series / DatetimeIndex (returned as the same kind)."""
    if isinstance(ts, str):
        ts = pd.Period(ts, "M")
    if isinstance(ts, (pd.Timestamp, pd.Period)):
        return int(ts.year * 12 + ts.month - 1)
    if isinstance(ts, pd.Series):
        return ts.dt.year * 12 + ts.dt.month - 1
    idx = pd.DatetimeIndex(ts)
    return np.asarray(idx.year * 12 + idx.month - 1)


def month_of_index(i: int) -> pd.Timestamp:
    """First day of the month with month index ``i``."""
    return pd.Timestamp(year=int(i) // 12, month=int(i) % 12 + 1, day=1)


def panel_window(cfg: dict[str, Any]) -> tuple[pd.Timestamp, pd.Timestamp]:
    """(first, last) panel month of the configuration (first days of the months).

    Raises ``ValueError`` naming the keys when ``panel.end`` lies before ``panel.start``."""
    start = pd.Timestamp(str(cfg["panel"]["start"]) + "-01")
    end = pd.Timestamp(str(cfg["panel"]["end"]) + "-01")
    if end < start:
        raise ValueError(f"panel.end {cfg['panel']['end']} before panel.start {cfg['panel']['start']}")
    return start, end


def panel_months(cfg: dict[str, Any]) -> pd.DatetimeIndex:
    """Every panel month (first days), ``panel.start .. panel.end``."""
    start, end = panel_window(cfg)
    return pd.date_range(start, end, freq="MS")


def period_of(month: Any, start: pd.Timestamp) -> Any:
    """Panel period ``t`` (1 = ``start``) of a month or of a datetime Series."""
    return month_index(month) - month_index(start) + 1
