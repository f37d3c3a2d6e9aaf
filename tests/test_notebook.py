"""The walk-through notebook executes (nbclient) on the tiny stand-in panel and is committed
with its outputs stripped."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "walkthrough.ipynb"


def test_notebook_outputs_stripped():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.get("outputs") == [], "notebook has outputs: strip them before committing"
            assert cell.get("execution_count") is None
    assert "widgets" not in nb.metadata


def test_notebook_executes_on_small_panel(small_workflow, monkeypatch, tmp_path):
    nbclient = pytest.importorskip("nbclient")
    work, _, _ = small_workflow
    panel = work / "data" / "processed" / "panel" / "panel.parquet"
    truth = work / "data" / "synthetic" / "truth.json"
    assert panel.is_file() and truth.is_file()
    monkeypatch.setenv("IFM_EVAL_PANEL", str(panel))
    monkeypatch.setenv("IFM_EVAL_TRUTH", str(truth))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(ROOT / "notebooks")}},
    )
    client.execute(env=dict(os.environ))
    text = "\n".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
    )
    assert str(panel) in text
    assert "percentage points" in text
    assert "planted true effect" in text
    # the original file is untouched (still stripped)
    assert all(
        c.get("outputs") == []
        for c in nbformat.read(NOTEBOOK, as_version=4).cells
        if c.cell_type == "code"
    )
