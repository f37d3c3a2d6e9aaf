"""Lineage records: every step that drops, imputes, recodes or expands rows says so.

A step appends :class:`LineageRecord` rows (rows in, rows out, reason); stages write them
as ``<processed>/lineage/<stage>.csv`` and the panel stage concatenates them into one
lineage table. ``rows_in - rows_out`` must always be explained by the records' ``n``
entries for that step; :meth:`Lineage.check_balanced` enforces it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

COLUMNS = ["stage", "source", "step", "rows_in", "rows_out", "n_affected", "action", "reason"]


@dataclass(frozen=True)
class LineageRecord:
    stage: str
    source: str
    step: str
    rows_in: int
    rows_out: int
    n_affected: int
    action: str  # read | drop | impute | recode | expand | aggregate | match | flag
    reason: str


@dataclass
class Lineage:
    """Accumulates lineage records for one stage."""

    stage: str
    records: list[LineageRecord] = field(default_factory=list)

    def add(
        self,
        source: str,
        step: str,
        rows_in: int,
        rows_out: int,
        action: str,
        reason: str,
        n_affected: int | None = None,
    ) -> None:
        if n_affected is None:
            n_affected = abs(rows_in - rows_out)
        self.records.append(
            LineageRecord(self.stage, source, step, int(rows_in), int(rows_out),
                          int(n_affected), action, reason)
        )

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(r) for r in self.records], columns=COLUMNS)

    def write(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.frame().to_csv(path, index=False)
