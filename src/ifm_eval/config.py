"""Loading and validating ``config.yaml``.

The schema is assembled from one JSON-Schema fragment per top-level section
(``schemas/config/<section>.schema.yaml``) so that each stage owns its part. Every object
in every fragment sets ``additionalProperties: false``: a misspelt key is an error that
names the key and where it sits.
"""

from __future__ import annotations

import copy
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

SECTIONS = ("seed", "data", "panel", "ingest", "synth", "disclosure", "report", "models", "monte_carlo",
            "credibility", "policy")
REQUIRED = ("seed", "data", "panel", "synth")


class ConfigError(ValueError):
    """Raised when the configuration does not match the schema."""


@lru_cache(maxsize=1)
def config_schema() -> dict[str, Any]:
    """Return the full JSON schema (draft 2020-12) of ``config.yaml``."""
    root = resources.files("ifm_eval") / "schemas" / "config"
    properties: dict[str, Any] = {}
    defs: dict[str, Any] = {}
    for section in SECTIONS:
        path = root / f"{section}.schema.yaml"
        if path.is_file():
            fragment = yaml.safe_load(path.read_text(encoding="utf-8"))
            # fragments refer to their definitions as "#/$defs/<name>": hoist them to the root
            for name, definition in fragment.pop("$defs", {}).items():
                if name in defs:
                    raise RuntimeError(f"schema definition {name!r} defined twice ({section})")
                defs[name] = definition
            properties[section] = fragment
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "ifm_eval configuration",
        "type": "object",
        "additionalProperties": False,
        "required": [s for s in REQUIRED if s in properties],
        "properties": properties,
        "$defs": defs,
    }


def _fill_defaults(instance: Any, schema: dict[str, Any]) -> Any:
    """Insert schema ``default`` values for absent keys (recursively, objects only)."""
    if not isinstance(instance, dict) or schema.get("type") != "object":
        return instance
    for key, sub in schema.get("properties", {}).items():
        if key not in instance and "default" in sub:
            instance[key] = copy.deepcopy(sub["default"])
        if key in instance:
            _fill_defaults(instance[key], sub)
    addl = schema.get("additionalProperties")
    if isinstance(addl, dict):
        for key, value in instance.items():
            if key not in schema.get("properties", {}):
                _fill_defaults(value, addl)
    return instance


def _describe(error: jsonschema.ValidationError) -> str:
    where = "/".join(str(p) for p in error.absolute_path) or "<top level>"
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        return (
            f"unknown key(s) {', '.join(repr(e) for e in extra)} at '{where}'"
            f" (allowed: {', '.join(allowed)})"
        )
    return f"at '{where}': {error.message}"


_SCALAR_TYPES = {"integer": int, "number": (int, float), "boolean": bool}


def _coerce_strings(cfg: dict[str, Any], validator: jsonschema.Draft202012Validator) -> None:
    """Command-line overrides (``snakemake --config monte_carlo='{k: 500}'``) reach the
    config with the values of nested mappings as strings. Where the schema expects an
    integer, number or boolean and gets a string that reads as one in YAML, use that value
    (in place); anything else stays and fails validation as before."""
    for _ in range(100):  # one pass per nesting level is enough; bounded for safety
        changed = False
        for err in validator.iter_errors(cfg):
            if err.validator != "type" or not isinstance(err.instance, str) or not err.absolute_path:
                continue
            want = err.validator_value if isinstance(err.validator_value, list) else [err.validator_value]
            value = yaml.safe_load(err.instance) if err.instance.strip() else None
            types = tuple(t for w in want if w in _SCALAR_TYPES for t in
                          (_SCALAR_TYPES[w] if isinstance(_SCALAR_TYPES[w], tuple) else (_SCALAR_TYPES[w],)))
            if not types or not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
                continue
            *parent, key = list(err.absolute_path)
            node = cfg
            for k in parent:
                node = node[k]
            node[key] = value
            changed = True
        if not changed:
            return


def validate_config(cfg: dict[str, Any]) -> dict[str, Any]:
    """Validate ``cfg`` against the schema, fill defaults, and return a new dict.

    Strings where the schema expects a number or boolean (command-line overrides) are
    read as YAML scalars first (:func:`_coerce_strings`). Raises :class:`ConfigError`
    listing every violation, each naming the offending key.
    """
    cfg = copy.deepcopy(cfg)
    schema = config_schema()
    _fill_defaults(cfg, schema)
    validator = jsonschema.Draft202012Validator(schema)
    _coerce_strings(cfg, validator)
    errors = sorted(validator.iter_errors(cfg), key=lambda e: list(e.absolute_path))
    if errors:
        raise ConfigError(
            "invalid configuration:\n" + "\n".join(f"  - {_describe(e)}" for e in errors)
        )
    return cfg


def load_config(path: str | Path = "config.yaml") -> dict[str, Any]:
    """Read a YAML config file and validate it (see :func:`validate_config`)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    with path.open(encoding="utf-8") as fh:
        cfg = yaml.safe_load(fh) or {}
    if not isinstance(cfg, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    try:
        return validate_config(cfg)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
