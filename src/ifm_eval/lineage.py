"""Lineage records: every step that drops, imputes, recodes or expands rows says so.

A step appends :class:`LineageRecord` rows (rows in, rows out, reason); stages write them
as ``<processed>/lineage/<stage>.csv`` and the panel stage concatenates them into one
lineage table. A record whose ``n_affected`` is smaller than ``|rows_in - rows_out|`` would
hide rows; :meth:`Lineage.check_balanced` rejects such records and :meth:`Lineage.write`
calls it.
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

    def check_balanced(self) -> None:
        """Raise if a record changes the row count by more than it says it affected."""
        for r in self.records:
            if abs(r.rows_in - r.rows_out) > r.n_affected:
                raise ValueError(
                    f"lineage {r.stage}/{r.source}/{r.step}: rows {r.rows_in} -> {r.rows_out} "
                    f"but only {r.n_affected} accounted for ({r.reason})"
                )

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(r) for r in self.records], columns=COLUMNS)

    def write(self, path: str | Path) -> None:
        self.check_balanced()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.frame().to_csv(path, index=False)
