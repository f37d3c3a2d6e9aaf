"""Small helpers the Snakefile uses to wire rules (no pipeline logic here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ifm_eval import paths

PACKAGE_DIR = Path(__file__).resolve().parent


def module_files(*names: str) -> list[str]:
    """Source files of the given modules/packages (relative to ``src/ifm_eval``).

    Listed as rule inputs so that editing the implementing code reruns the rule (Snakemake
    does not track imported package modules by itself). A package name lists all its
    ``.py`` files (and YAML codebooks).
    """
    files: list[str] = []
    for name in names:
        path = PACKAGE_DIR / name
        if path.is_dir():
            files += sorted(str(p) for p in path.rglob("*") if p.suffix in {".py", ".yaml"})
        elif path.exists():
            files.append(str(path))
    return files


def effective_config_file(cfg: dict[str, Any], path: str | Path = ".snakemake/ifm_eval/config.yaml") -> str:
    """Write the validated config for the stage CLIs; rewrite only if the content changed."""
    path = Path(path)
    text = yaml.safe_dump(cfg, sort_keys=True, allow_unicode=True)
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return str(path)


def model_names(cfg: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Expanded model specifications (name -> spec), see :mod:`ifm_eval.estimators.specs`."""
    from ifm_eval.estimators.specs import expand_models

    return expand_models(cfg)


def estimate_outputs(cfg: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for name in model_names(cfg):
        out += [str(p) for p in paths.estimate_paths(cfg, name)]
    return out
