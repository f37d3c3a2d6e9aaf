"""Small helpers the Snakefile uses to wire rules (no pipeline logic here)."""

from __future__ import annotations

import shlex
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from ifm_eval import paths

PACKAGE_DIR = Path(__file__).resolve().parent


def module_files(*names: str) -> list[str]:
    """Source files of the given modules/packages (relative to ``src/ifm_eval``).

    Listed as rule inputs so that editing the implementing code reruns the rule (Snakemake
    does not track imported package modules by itself). A package name lists all its
    ``.py`` files (and YAML data files). A name that is neither a file nor a package is an
    error: a rule must not silently lose the dependency on its code.
    """
    files: list[str] = []
    for name in names:
        path = PACKAGE_DIR / name
        if path.is_dir():
            files += sorted(str(p) for p in path.rglob("*") if p.suffix in {".py", ".yaml"})
        elif path.is_file():
            files.append(str(path))
        else:
            raise FileNotFoundError(f"module_files: {name!r} is not a module or package of "
                                    f"ifm_eval ({PACKAGE_DIR})")
    return files


def cli_io(wildcards: Any, input: Any, output: Any) -> str:
    """``--in NAME=PATH`` / ``--out NAME=PATH`` arguments from a rule's named inputs and
    outputs (the ``code`` inputs, which only trigger reruns, are left out). Used as a params
    function, so the stage CLI receives exactly the files the rule declares."""
    parts: list[str] = []
    for flag, files in (("--in", input), ("--out", output)):
        for name, value in files.items():
            if name == "code":
                continue
            for p in [value] if isinstance(value, str) else list(value):
                parts.append(f"{flag} {shlex.quote(f'{name}={p}')}")
    return " ".join(parts)


def effective_config_file(cfg: dict[str, Any], path: str | Path = ".snakemake/ifm_eval/config.yaml",
                          absolute: bool = False) -> str:
    """Write the validated config for the stage CLIs; rewrite only if the content changed."""
    path = Path(path)
    text = yaml.safe_dump(cfg, sort_keys=True, allow_unicode=True)
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return str(path.resolve() if absolute else path)


def model_names(cfg: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Expanded model specifications (name -> spec), see :mod:`ifm_eval.estimators.specs`."""
    from ifm_eval.estimators.specs import expand_models

    return expand_models(cfg)


def estimate_outputs(cfg: dict[str, Any]) -> list[str]:
    """Tidy and metadata files of every configured model (the declared list of specs)."""
    out: list[str] = []
    for name in model_names(cfg):
        out += [str(p) for p in paths.estimate_paths(cfg, name)]
    return out


def estimate_tidy(cfg: dict[str, Any]) -> list[str]:
    return [str(paths.estimate_paths(cfg, n)[0]) for n in model_names(cfg)]


def estimate_meta(cfg: dict[str, Any]) -> list[str]:
    return [str(paths.estimate_paths(cfg, n)[1]) for n in model_names(cfg)]


def estimate_boot(cfg: dict[str, Any]) -> list[str]:
    return [str(paths.boot_path(cfg, n)) for n in model_names(cfg)]


def estimate_used(cfg: dict[str, Any]) -> list[str]:
    return [str(paths.used_path(cfg, n)) for n in model_names(cfg)]


@lru_cache(maxsize=4)
def _resources(path: str) -> dict[str, dict[str, int]]:
    import yaml

    doc = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    return doc.get("rules") or {}


def rule_resources(name: str, path: str | Path) -> dict[str, int]:
    """The resources declared for rule ``name`` in ``path`` (``workflow/resources.yaml``:
    ``mem_mb``, ``runtime`` in minutes), for ``resources: **RES(name)`` in a rule. A rule
    without an entry is an error naming it (every rule declares what it needs)."""
    table = _resources(str(path))
    if name not in table:
        raise KeyError(f"rule {name!r} has no entry in {path} (run `python benchmarks/resources.py --write` "
                       "after a run, or add it by hand)")
    return dict(table[name])
