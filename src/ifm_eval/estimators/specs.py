"""Model specifications: grid expansion, defaults, and cross-field validation.

``config.yaml`` holds ``models:`` (name -> spec, or name -> grid). The JSON-Schema
fragment ``schemas/config/models.schema.yaml`` checks keys and values (an unknown
estimator or option is an error naming it); :func:`expand_models` expands grids, fills
defaults from that same schema (single source of truth) and checks the rules the schema
cannot express, with messages naming the spec and the key.
"""

from __future__ import annotations

import copy
import itertools
import re
import string
from functools import lru_cache
from typing import Any

import jsonschema

from ifm_eval.config import ConfigError, config_schema

ESTIMATORS = (
    "twfe_static",
    "twfe_dynamic",
    "callaway_santanna",
    "sun_abraham",
    "imputation",
    "gardner",
)
#: Options that only Callaway & Sant'Anna uses.
CS_ONLY = ("method", "base_period", "balance_e")
#: treatment_rule -> cohort column of the panel.
COHORT_COLUMNS = {
    "half_posts": "g_half_posts",
    "first_post": "g_first_post",
    "all_posts": "g_all_posts",
}
NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


class SpecError(ConfigError):
    """A model specification breaks a rule; the message names the spec and the key."""


@lru_cache(maxsize=1)
def _defs() -> dict[str, Any]:
    return config_schema()["$defs"]


def spec_defaults() -> dict[str, Any]:
    """Default of every spec key, read from the schema (inference expanded)."""
    props = _defs()["model_spec"]["properties"]
    out = {k: copy.deepcopy(v["default"]) for k, v in props.items() if "default" in v}
    inf = _defs()["model_inference"]["properties"]
    out["inference"] = {k: copy.deepcopy(v["default"]) for k, v in inf.items() if "default" in v}
    return out


def bootstrap_defaults() -> dict[str, Any]:
    """Defaults of ``inference.bootstrap`` (filled in when a spec asks for it)."""
    props = _defs()["model_inference"]["properties"]["bootstrap"]["properties"]
    return {k: copy.deepcopy(v["default"]) for k, v in props.items()}


def dose_spline_defaults() -> dict[str, Any]:
    """Defaults of ``dose_spline`` (filled in for dose specs)."""
    props = _defs()["model_spec"]["properties"]["dose_spline"]["properties"]
    return {k: copy.deepcopy(v["default"]) for k, v in props.items()}


def spec_keys() -> tuple[str, ...]:
    return tuple(_defs()["model_spec"]["properties"])


def _validate_raw(name: str, raw: Any) -> None:
    schema = {"$defs": _defs(), "$ref": "#/$defs/model_spec"}
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(raw), key=lambda e: list(e.absolute_path))
    if not errors:
        return
    msgs = []
    for e in errors:
        where = "/".join(str(p) for p in e.absolute_path)
        if e.validator == "additionalProperties":
            extra = sorted(set(e.instance) - set(e.schema.get("properties", {})))
            msgs.append(f"unknown key(s) {', '.join(map(repr, extra))}")
        else:
            msgs.append(f"'{where or '<spec>'}': {e.message}")
    raise SpecError(f"model {name!r}: " + "; ".join(msgs))


def _label(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "_".join(_label(v) for v in value) or "none"
    if value is None:
        return "none"
    return re.sub(r"[^A-Za-z0-9]+", "_", str(value)).strip("_").replace("-", "m")


def expand_grid(group: str, entry: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Expand one grid entry into named raw specs (base updated by each combination)."""
    grid = entry["grid"]
    base = entry.get("base") or {}
    template = entry["name"]
    keys = list(grid)
    fields = {f for _, f, _, _ in string.Formatter().parse(template) if f}
    varying = {k for k in keys if len(grid[k]) > 1}
    if varying - fields:
        raise SpecError(
            f"model grid {group!r}: name template {template!r} must use every grid key "
            f"with several values; missing {sorted(varying - fields)}"
        )
    unknown = fields - set(keys) - set(base) - set(spec_keys())
    if unknown:
        raise SpecError(
            f"model grid {group!r}: name template uses unknown field(s) {sorted(unknown)}"
        )
    out: dict[str, dict[str, Any]] = {}
    defaults = spec_defaults()
    for combo in itertools.product(*(grid[k] for k in keys)):
        raw = copy.deepcopy(base)
        raw.update(copy.deepcopy(dict(zip(keys, combo, strict=False))))
        full = {**defaults, **raw}
        name = template.format(**{k: _label(v) for k, v in full.items()})
        if not NAME_RE.match(name):
            raise SpecError(f"model grid {group!r}: expanded name {name!r} is not a valid name")
        if name in out:
            raise SpecError(f"model grid {group!r}: name {name!r} produced twice")
        out[name] = raw
    return out


def check_spec(name: str, raw: dict[str, Any], spec: dict[str, Any]) -> None:
    """Cross-field rules. ``raw`` = keys given in the config, ``spec`` = with defaults."""
    est = spec["estimator"]
    defaults = spec_defaults()

    def fail(key: str, msg: str) -> None:
        raise SpecError(f"model {name!r}: '{key}' {msg}")

    if est != "callaway_santanna":
        for key in CS_ONLY:
            if key in raw and raw[key] != defaults[key]:
                fail(key, f"applies to callaway_santanna only (estimator is {est})")
        if spec["inference"]["type"] == "bootstrap":
            fail(
                "inference",
                f"type 'bootstrap' is implemented for callaway_santanna only (estimator is {est})",
            )
    if est == "callaway_santanna" and spec["inference"]["type"] == "jackknife" and spec["method"] != "reg":
        fail("inference", f"type 'jackknife' of callaway_santanna needs method 'reg' (method is {spec['method']})")
    if est == "callaway_santanna" and spec["inference"]["type"] == "jackknife" and spec["balance_e"] is not None:
        fail("inference", "type 'jackknife' of callaway_santanna does not support balance_e")
    cg = spec["control_group"]
    if est == "callaway_santanna" and cg == "last_treated":
        fail(
            "control_group",
            "last_treated is not an option of callaway_santanna "
            "(use not_yet_treated or never_treated)",
        )
    if est in ("twfe_static", "twfe_dynamic", "imputation", "gardner") and cg != "not_yet_treated":
        fail(
            "control_group",
            f"{est} uses every untreated observation: only not_yet_treated is allowed",
        )
    lo, hi = spec["event_window"]
    ref = -1 - spec["anticipation"]
    if not lo <= ref < 0 <= hi:
        fail("event_window", f"{[lo, hi]} must contain the reference period {ref} and 0")
    if spec["balance_e"] is not None and spec["balance_e"] > hi:
        fail("balance_e", f"{spec['balance_e']} exceeds the window end {hi}")
    if spec["sample"] is not None:
        try:
            compile(spec["sample"].replace("@", ""), "<sample>", "eval")
        except SyntaxError as exc:
            fail("sample", f"is not a valid pandas query: {exc.msg}")
    if spec["inference"]["type"] == "bootstrap" and spec["inference"]["seed"] is None:
        fail("inference", "bootstrap needs a seed (reproducibility)")
    het, dose = spec.get("heterogeneity"), spec.get("dose")
    if het and dose:
        fail("dose", "and 'heterogeneity' cannot be combined in one spec (make two specs)")
    if het and est not in ("callaway_santanna", "imputation"):
        fail("heterogeneity", f"is implemented for callaway_santanna and imputation (estimator is {est})")
    if dose and est != "callaway_santanna":
        fail("dose", f"needs estimator callaway_santanna: the dose-response is the continuous-treatment "
                     f"DiD of Callaway, Goodman-Bacon & Sant'Anna (estimator is {est})")
    if dose and spec["covariates"]:
        fail("covariates", "must be [] for a dose spec: the continuous-treatment DiD has no covariates "
                           "(unconditional parallel trends in every dose)")
    if "dose_spline" in raw and not dose:
        fail("dose_spline", "applies to dose specs only (no 'dose' key)")


def normalise_spec(name: str, raw: dict[str, Any]) -> dict[str, Any]:
    """Validate one raw spec, fill defaults, check cross-field rules."""
    if not NAME_RE.match(name):
        raise SpecError(f"model name {name!r} must match {NAME_RE.pattern}")
    _validate_raw(name, raw)
    spec = spec_defaults()
    for key, value in copy.deepcopy(raw).items():
        if key == "inference":
            spec["inference"].update(value)
            if "bootstrap" in value:
                spec["inference"]["bootstrap"] = {**bootstrap_defaults(), **value["bootstrap"]}
        else:
            spec[key] = value
    if spec.get("dose"):
        spec["dose_spline"] = {**dose_spline_defaults(), **(spec.get("dose_spline") or {})}
    check_spec(name, raw, spec)
    return spec


#: what a spec is for, from its keys: ``estimate`` (one estimate job), ``heterogeneity``
#: (subgroup event studies, key ``heterogeneity``), ``dose`` (dose-response, key ``dose``)
SPEC_KINDS = ("estimate", "heterogeneity", "dose")


def spec_kind(spec: dict[str, Any]) -> str:
    """:data:`SPEC_KINDS` entry of a (raw or normalised) spec."""
    if spec.get("heterogeneity"):
        return "heterogeneity"
    if spec.get("dose"):
        return "dose"
    return "estimate"


def expand_models(cfg: dict[str, Any], kinds: tuple[str, ...] | None = ("estimate",)) -> dict[str, dict[str, Any]]:
    """The model specs of ``cfg`` by name (grids expanded, defaults filled, validated), of
    the given :data:`SPEC_KINDS` (default: the estimate specs; ``None``: all). Every spec is
    validated whatever its kind."""
    out: dict[str, dict[str, Any]] = {}
    for group, entry in (cfg.get("models") or {}).items():
        if not isinstance(entry, dict):
            raise SpecError(f"model {group!r}: must be a mapping")
        expanded = expand_grid(group, entry) if "grid" in entry else {group: entry}
        for name, raw in expanded.items():
            if name in out:
                raise SpecError(f"model name {name!r} (from {group!r}) is defined twice")
            out[name] = normalise_spec(name, raw)
    if kinds is None:
        return out
    return {n: s for n, s in out.items() if spec_kind(s) in kinds}


def model_names(cfg: dict[str, Any]) -> list[str]:
    return list(expand_models(cfg))


def get_spec(cfg: dict[str, Any], name: str) -> dict[str, Any]:
    models = expand_models(cfg, kinds=None)
    if name not in models:
        raise SpecError(f"unknown model {name!r}; known: {', '.join(models) or '(none)'}")
    return models[name]


def cohort_column(spec: dict[str, Any]) -> str:
    return COHORT_COLUMNS[spec["treatment_rule"]]
