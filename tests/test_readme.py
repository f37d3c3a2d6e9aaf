"""The README's two commands and .ci/run stay in sync."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- commands -->\s*```bash\n(.*?)```", text, re.S)
    assert block, "README lacks the <!-- commands --> block"
    return [line for line in block.group(1).splitlines() if line and not line.startswith("#")]


def test_two_commands():
    cmds = _readme_commands()
    assert len(cmds) == 2
    assert "snakemake" in cmds[0] and "pip install" in cmds[0]
    assert "pytest" in cmds[1] and "pip install" in cmds[1]


def test_ci_runs_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert _readme_commands()[1] in ci.splitlines()
