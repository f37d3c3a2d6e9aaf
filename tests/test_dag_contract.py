"""The DAG is the only input/output contract.

- Every file a run leaves under ``data/`` and ``results/`` is a declared output of some rule
  (no stage writes a file its rule does not declare: the per-stage lineage tables, the item
  non-response table, the used treated observations are all declared).
- In a shadow run every job sees only its declared inputs (Snakemake ``shadow: minimal``):
  the whole workflow still succeeds, so no stage reads a file its rule does not list.
- No stage module derives a path from the config or lists a directory: stages receive
  their files from the rule (``ifm_eval.stage_io``); only the workflow wiring knows the
  layout (``ifm_eval.paths``).
- A rule that names a module that does not exist fails instead of silently losing the
  dependency on its code.
"""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, run_snakemake

from ifm_eval.workflow_support import module_files

SRC = ROOT / "src" / "ifm_eval"
#: modules that wire the workflow (they may know the layout)
WIRING = {"paths.py", "workflow_support.py", "outputs/targets.py"}


def _summary_outputs(work: Path) -> set[str]:
    """Every output file of the DAG, from ``snakemake --summary``."""
    proc = run_snakemake(work, "--summary")
    files = set()
    for line in proc.stdout.splitlines():
        first = line.split("\t")[0].strip()
        if first and first != "output_file":
            files.add(first)
    return files


def test_every_file_on_disk_is_declared(small_workflow):
    work, _, _ = small_workflow
    declared = _summary_outputs(work)
    assert any(f.endswith("panel/lineage.csv") for f in declared)
    on_disk = {
        str(p.relative_to(work))
        for sub in ("data", "results")
        for p in (work / sub).rglob("*")
        if p.is_file() and p.name != ".gitkeep"
    }
    undeclared = sorted(on_disk - declared)
    assert not undeclared, f"files written by no rule's declared outputs: {undeclared[:20]}"
    # the per-stage lineage tables, the item non-response table and the used observations
    for pattern in (r"data/processed/lineage/ingest_\w+\.csv", r"data/processed/lineage/harmonise_surveys\.csv",
                    r"data/processed/harmonise/item_nonresponse\.csv", r"data/processed/estimates/\w+_used\.parquet"):
        assert any(re.fullmatch(pattern, f) for f in declared), pattern


@pytest.mark.slow
def test_shadow_run_sees_only_declared_inputs(small_workflow, tmp_path):
    """Every job runs in a directory holding only its declared inputs and still succeeds."""
    _, cfg, _ = small_workflow
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    env_before = os.environ.get("IFM_EVAL_SHADOW")
    os.environ["IFM_EVAL_SHADOW"] = "minimal"
    try:
        import conftest

        conftest.ENV["IFM_EVAL_SHADOW"] = "minimal"
        run_snakemake(tmp_path)
    finally:
        conftest.ENV.pop("IFM_EVAL_SHADOW", None)
        if env_before is None:
            os.environ.pop("IFM_EVAL_SHADOW", None)
        else:
            os.environ["IFM_EVAL_SHADOW"] = env_before
    assert (tmp_path / "results/report/report_de.pdf").read_bytes()[:4] == b"%PDF"
    assert (tmp_path / "results/checks/disclosure.json").is_file()


class _PathUse(ast.NodeVisitor):
    """Finds layout knowledge in a stage module: imports of ifm_eval.paths, directory
    listings, and reads of the config's data-directory keys."""

    LISTING = {"glob", "rglob", "iterdir", "listdir", "walk", "scandir"}
    DIR_KEYS = {"raw_dir", "synthetic_dir", "processed_dir", "results_dir", "reference_dir"}

    def __init__(self) -> None:
        self.found: list[str] = []

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.module == "ifm_eval" and any(a.name == "paths" for a in node.names):
            self.found.append(f"line {node.lineno}: imports ifm_eval.paths")
        if node.module == "ifm_eval.paths":
            self.found.append(f"line {node.lineno}: imports from ifm_eval.paths")

    def visit_Import(self, node: ast.Import) -> None:
        if any(a.name == "ifm_eval.paths" for a in node.names):
            self.found.append(f"line {node.lineno}: imports ifm_eval.paths")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr in self.LISTING:
            self.found.append(f"line {node.lineno}: .{node.attr}(...) lists a directory")
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str) and node.value in self.DIR_KEYS:
            self.found.append(f"line {node.lineno}: reads config key {node.value!r}")


def test_no_stage_module_knows_the_layout():
    problems = {}
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel in WIRING:
            continue
        v = _PathUse()
        v.visit(ast.parse(path.read_text(encoding="utf-8")))
        if v.found:
            problems[rel] = v.found
    assert not problems, problems


def test_module_files_fails_on_unknown_module():
    assert any(f.endswith("panel.py") for f in module_files("panel.py"))
    with pytest.raises(FileNotFoundError, match="panel_cli.py"):
        module_files("panel.py", "panel_cli.py")
