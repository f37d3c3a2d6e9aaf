"""Progress of long steps: a bar on an interactive terminal, periodic log lines otherwise.

``Progress(total, what)`` counts units of work (bootstrap draws, permutations, months
simulated, subgroup fits). Where standard error is a terminal (a user running a stage by
hand) it draws a ``tqdm`` bar; in a Snakemake or SLURM job, whose standard error goes to the
job's log file, it writes one ``INFO`` line ``<what>: <done>/<total> (<pct> %), <elapsed> s,
about <eta> s left`` at most every ``every`` seconds and at the end, so a log shows how far a
job got and how long the rest will take. ``IFM_EVAL_PROGRESS=bar | log | off`` overrides the
choice (``off``: only the final line).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

#: seconds between two log lines of one progress counter
EVERY_SECONDS = 10.0


def _mode() -> str:
    env = os.environ.get("IFM_EVAL_PROGRESS", "").strip().lower()
    if env in ("bar", "log", "off"):
        return env
    return "bar" if sys.stderr.isatty() else "log"


class Progress:
    """Counter of ``total`` units of ``what``; use as a context manager or call
    :meth:`close`."""

    def __init__(self, total: int, what: str, logger: logging.Logger | None = None,
                 every: float = EVERY_SECONDS) -> None:
        self.total, self.what, self.every = int(total), what, float(every)
        self.log = logger or logging.getLogger("ifm_eval.progress")
        self.done = 0
        self.t0 = self._last = time.perf_counter()
        self.mode = _mode()
        self._bar = None
        if self.mode == "bar":
            try:
                from tqdm import tqdm

                self._bar = tqdm(total=self.total, desc=what, unit="", leave=False, file=sys.stderr)
            except ImportError:  # pragma: no cover - tqdm comes with snakemake
                self.mode = "log"

    def line(self) -> str:
        el = time.perf_counter() - self.t0
        pct = 100.0 * self.done / self.total if self.total else 100.0
        eta = el / self.done * (self.total - self.done) if self.done else float("nan")
        tail = f", about {eta:.0f} s left" if self.done < self.total and self.done else ""
        return f"{self.what}: {self.done}/{self.total} ({pct:.0f} %), {el:.0f} s{tail}"

    def update(self, n: int = 1) -> None:
        self.done += int(n)
        if self._bar is not None:
            self._bar.update(n)
            return
        now = time.perf_counter()
        if self.mode == "log" and now - self._last >= self.every and self.done < self.total:
            self._last = now
            self.log.info(self.line())

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        self.log.info(self.line())

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def track(items: Iterable[T], what: str, total: int | None = None, logger: logging.Logger | None = None,
          every: float = EVERY_SECONDS) -> Iterator[T]:
    """Iterate over ``items`` with a :class:`Progress` (``total`` defaults to ``len(items)``)."""
    n = total if total is not None else len(items)  # type: ignore[arg-type]
    with Progress(n, what, logger, every) as p:
        for x in items:
            yield x
            p.update()
