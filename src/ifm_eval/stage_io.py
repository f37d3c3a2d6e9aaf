"""The input/output contract of one pipeline job: the files its Snakemake rule declares.

Every stage subcommand receives its files from the rule, never from the config:
``ifm-eval <stage> --in NAME=PATH ... --out NAME=PATH ...`` (a name may repeat for a list
of files). The rule builds these arguments from its own named ``input:`` and ``output:``
(:func:`ifm_eval.workflow_support.cli_io`), so what the rule declares is exactly what the
stage reads and writes. :meth:`StageIO.require` checks the names against what the stage
expects and fails naming the missing or unexpected ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class StageIOError(ValueError):
    """The files handed to a stage do not match what the stage reads and writes."""


def _as_paths(value: Any) -> tuple[Path, ...]:
    if value is None:
        return ()
    if isinstance(value, (str, Path)):
        return (Path(value),)
    return tuple(Path(v) for v in value)


def _parse_pairs(pairs: Iterable[str], flag: str) -> dict[str, tuple[Path, ...]]:
    out: dict[str, list[Path]] = {}
    for item in pairs or ():
        name, sep, path = str(item).partition("=")
        if not sep or not name or not path:
            raise StageIOError(f"{flag} expects NAME=PATH, got {item!r}")
        out.setdefault(name, []).append(Path(path))
    return {k: tuple(v) for k, v in out.items()}


@dataclass(frozen=True)
class StageIO:
    """Named input and output files of one job (each name maps to one or more paths)."""

    stage: str
    inputs: Mapping[str, tuple[Path, ...]] = field(default_factory=dict)
    outputs: Mapping[str, tuple[Path, ...]] = field(default_factory=dict)

    @classmethod
    def of(cls, stage: str, inputs: Mapping[str, Any] | None = None,
           outputs: Mapping[str, Any] | None = None) -> StageIO:
        """Build from ``{name: path | [paths]}`` mappings (in-process use, tests)."""
        return cls(stage, {k: _as_paths(v) for k, v in (inputs or {}).items()},
                   {k: _as_paths(v) for k, v in (outputs or {}).items()})

    @classmethod
    def parse(cls, stage: str, ins: Iterable[str] | None, outs: Iterable[str] | None) -> StageIO:
        """Build from the CLI's ``--in NAME=PATH`` / ``--out NAME=PATH`` values."""
        return cls(stage, _parse_pairs(ins or (), "--in"), _parse_pairs(outs or (), "--out"))

    # ------------------------------------------------------------------ checks
    def require(self, inputs: Iterable[str] = (), outputs: Iterable[str] = (),
                optional_inputs: Iterable[str] = ()) -> StageIO:
        """Fail unless the inputs are exactly ``inputs`` (plus any of ``optional_inputs``)
        and the outputs exactly ``outputs``. Returns ``self``."""
        problems = []
        need_in, opt_in, need_out = set(inputs), set(optional_inputs), set(outputs)
        if missing := sorted(need_in - set(self.inputs)):
            problems.append(f"missing input(s) {missing}")
        if extra := sorted(set(self.inputs) - need_in - opt_in):
            problems.append(f"unexpected input(s) {extra} (this stage does not read them)")
        if missing := sorted(need_out - set(self.outputs)):
            problems.append(f"missing output(s) {missing}")
        if extra := sorted(set(self.outputs) - need_out):
            problems.append(f"unexpected output(s) {extra} (this stage does not write them)")
        if problems:
            raise StageIOError(f"stage {self.stage}: " + "; ".join(problems)
                               + " - the rule and the stage disagree")
        return self

    # ------------------------------------------------------------------ access
    def input(self, name: str) -> Path:
        """The single input file ``name``."""
        return self._one(self.inputs, name, "input")

    def input_list(self, name: str) -> list[Path]:
        """All input files of ``name`` (empty list if not given)."""
        return list(self.inputs.get(name, ()))

    def optional_input(self, name: str) -> Path | None:
        return self._one(self.inputs, name, "input") if name in self.inputs else None

    def output(self, name: str) -> Path:
        """The single output file ``name`` (its directory is created)."""
        p = self._one(self.outputs, name, "output")
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def output_list(self, name: str) -> list[Path]:
        out = list(self.outputs.get(name, ()))
        for p in out:
            p.parent.mkdir(parents=True, exist_ok=True)
        return out

    def _one(self, table: Mapping[str, tuple[Path, ...]], name: str, what: str) -> Path:
        if name not in table:
            raise StageIOError(f"stage {self.stage}: no {what} {name!r} (has {sorted(table)})")
        files = table[name]
        if len(files) != 1:
            raise StageIOError(f"stage {self.stage}: {what} {name!r} must be one file, got {len(files)}")
        return files[0]

    def args(self) -> list[str]:
        """The equivalent CLI arguments (``--in``/``--out`` pairs)."""
        out: list[str] = []
        for flag, table in (("--in", self.inputs), ("--out", self.outputs)):
            for name, files in table.items():
                out += [x for p in files for x in (flag, f"{name}={p}")]
        return out
