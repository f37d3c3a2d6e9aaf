"""ifm_eval.progress: periodic log lines in a job's log, a bar on a terminal, the final line."""

from __future__ import annotations

import logging

import pytest

from ifm_eval import progress as P


def test_log_mode_writes_periodic_and_final_lines(monkeypatch, caplog):
    monkeypatch.setenv("IFM_EVAL_PROGRESS", "log")
    now = [0.0]
    monkeypatch.setattr(P.time, "perf_counter", lambda: now[0])
    caplog.set_level(logging.INFO, logger="ifm_eval.progress")
    with P.Progress(10, "draws", every=10.0) as p:
        for _ in range(10):
            now[0] += 4.0  # one unit every 4 s
            p.update()
    lines = [r.getMessage() for r in caplog.records]
    # t0 = 0; updates at 4, 8, ..., 40 s: a line when >= 10 s passed since the last (12, 24, 36), then the final one
    assert lines[:3] == ["draws: 3/10 (30 %), 12 s, about 28 s left", "draws: 6/10 (60 %), 24 s, about 16 s left",
                         "draws: 9/10 (90 %), 36 s, about 4 s left"]
    assert lines[-1].startswith("draws: 10/10 (100 %)") and "left" not in lines[-1]
    assert len(lines) == 4


def test_off_mode_writes_only_the_final_line(monkeypatch, caplog):
    monkeypatch.setenv("IFM_EVAL_PROGRESS", "off")
    caplog.set_level(logging.INFO, logger="ifm_eval.progress")
    assert list(P.track(range(5), "items", every=0.0)) == [0, 1, 2, 3, 4]
    assert [r.getMessage().split(",")[0] for r in caplog.records] == ["items: 5/5 (100 %)"]


def test_mode_follows_the_terminal(monkeypatch):
    monkeypatch.delenv("IFM_EVAL_PROGRESS", raising=False)
    monkeypatch.setattr(P.sys.stderr, "isatty", lambda: True, raising=False)
    assert P._mode() == "bar"
    monkeypatch.setattr(P.sys.stderr, "isatty", lambda: False, raising=False)
    assert P._mode() == "log"


@pytest.mark.parametrize("total", [0, 3])
def test_bar_mode_counts(monkeypatch, total):
    monkeypatch.setenv("IFM_EVAL_PROGRESS", "bar")
    with P.Progress(total, "x") as p:
        for _ in range(total):
            p.update()
        assert p.done == total
