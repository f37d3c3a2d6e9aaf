"""Model specifications: schema (unknown estimator / option named), grid expansion,
defaults from the schema, cross-field rules, and the shipped default list."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from ifm_eval.config import ConfigError, load_config, validate_config
from ifm_eval.estimators.specs import (
    ESTIMATORS,
    SpecError,
    cohort_column,
    expand_models,
    spec_defaults,
)

ROOT = Path(__file__).resolve().parents[1]
BASE = {"seed": 1, "data": {"source": "synthetic"}, "panel": {}, "synth": {}}


def cfg_with(models: dict) -> dict:
    return validate_config({**copy.deepcopy(BASE), "models": models})


def test_schema_rejects_unknown_estimator_naming_it():
    with pytest.raises(ConfigError, match=r"models/m/estimator.*'ols'"):
        cfg_with({"m": {"estimator": "ols", "outcome": "rate_employment"}})


def test_schema_rejects_unknown_option_naming_it():
    with pytest.raises(ConfigError, match=r"unknown key\(s\) 'metod' at 'models/m'"):
        cfg_with(
            {"m": {"estimator": "callaway_santanna", "outcome": "rate_employment", "metod": "dr"}}
        )
    with pytest.raises(ConfigError, match=r"models/m/method"):
        cfg_with(
            {"m": {"estimator": "callaway_santanna", "outcome": "rate_employment", "method": "ols"}}
        )
    with pytest.raises(ConfigError, match=r"unknown key\(s\) 'draw'"):
        cfg_with(
            {
                "m": {
                    "estimator": "callaway_santanna",
                    "outcome": "rate_employment",
                    "inference": {"draw": 9},
                }
            }
        )
    with pytest.raises(ConfigError, match=r"models/g/grid"):
        cfg_with({"g": {"grid": {"estimater": ["twfe_static"]}, "name": "x{estimater}"}})


def test_defaults_filled_from_schema():
    models = expand_models(cfg_with({"m": {"estimator": "imputation", "outcome": "rate_training"}}))
    spec = models["m"]
    assert spec == {**spec_defaults(), "estimator": "imputation", "outcome": "rate_training"}
    assert spec["control_group"] == "not_yet_treated" and spec["cluster"] == "kreis"
    assert spec["inference"] == {"type": "analytic", "draws": 999, "seed": None}
    assert cohort_column(spec) == "g_half_posts"
    partial = expand_models(
        cfg_with(
            {
                "m": {
                    "estimator": "callaway_santanna",
                    "outcome": "rate_training",
                    "inference": {"type": "bootstrap", "seed": 3},
                }
            }
        )
    )
    assert partial["m"]["inference"] == {"type": "bootstrap", "draws": 999, "seed": 3}


def test_grid_expansion():
    models = expand_models(
        cfg_with(
            {
                "main": {
                    "grid": {
                        "outcome": ["rate_employment", "rate_language"],
                        "estimator": ["twfe_static", "sun_abraham"],
                    },
                    "base": {"covariates": ["log_population"], "event_window": [-6, 12]},
                    "name": "{estimator}_{outcome}",
                }
            }
        )
    )
    assert sorted(models) == sorted(
        f"{e}_{o}"
        for e in ("twfe_static", "sun_abraham")
        for o in ("rate_employment", "rate_language")
    )
    assert all(s["covariates"] == ["log_population"] for s in models.values())
    assert models["sun_abraham_rate_language"]["event_window"] == [-6, 12]


def test_grid_name_must_use_varying_keys_and_be_unique():
    with pytest.raises(SpecError, match=r"grid 'g'.*missing \['outcome'\]"):
        expand_models(
            cfg_with(
                {
                    "g": {
                        "grid": {"outcome": ["rate_employment", "rate_language"]},
                        "base": {"estimator": "gardner"},
                        "name": "gardner",
                    }
                }
            )
        )
    with pytest.raises(SpecError, match="defined twice"):
        expand_models(
            cfg_with(
                {
                    "gardner_rate_language": {"estimator": "gardner", "outcome": "rate_language"},
                    "g": {
                        "grid": {"outcome": ["rate_language"]},
                        "base": {"estimator": "gardner"},
                        "name": "gardner_{outcome}",
                    },
                }
            )
        )
    with pytest.raises(SpecError, match=r"model 'g_x'.*'estimator'"):
        expand_models(
            cfg_with({"g": {"grid": {"outcome": ["rate_language"]}, "name": "g_x"}})
        )  # estimator missing after expansion


@pytest.mark.parametrize(
    ("spec", "key"),
    [
        ({"estimator": "twfe_static", "method": "ipw"}, "method"),
        ({"estimator": "imputation", "base_period": "universal"}, "base_period"),
        ({"estimator": "gardner", "inference": {"type": "bootstrap", "seed": 1}}, "inference"),
        ({"estimator": "imputation", "control_group": "never_treated"}, "control_group"),
        ({"estimator": "callaway_santanna", "control_group": "last_treated"}, "control_group"),
        ({"estimator": "twfe_dynamic", "anticipation": 3, "event_window": [-3, 6]}, "event_window"),
        ({"estimator": "callaway_santanna", "balance_e": 30}, "balance_e"),
        ({"estimator": "callaway_santanna", "inference": {"type": "bootstrap"}}, "inference"),
        ({"estimator": "sun_abraham", "sample": "t >"}, "sample"),
    ],
)
def test_cross_field_rules_name_spec_and_key(spec, key):
    with pytest.raises(SpecError, match=rf"model 'bad': '{key}'"):
        expand_models(cfg_with({"bad": {"outcome": "rate_employment", **spec}}))


def test_cs_only_keys_at_their_defaults_are_fine_elsewhere():
    # a grid base shared by several estimators may carry CS options at default values
    models = expand_models(
        cfg_with(
            {
                "g": {
                    "grid": {"estimator": list(ESTIMATORS)},
                    "base": {
                        "outcome": "rate_employment",
                        "method": "dr",
                        "base_period": "varying",
                    },
                    "name": "{estimator}",
                }
            }
        )
    )
    assert set(models) == set(ESTIMATORS)


def test_shipped_default_models():
    cfg = load_config(ROOT / "config.yaml")
    models = expand_models(cfg)
    assert 30 <= len(models) <= 40
    outcomes = ("rate_employment", "rate_training", "rate_language")
    for est in ESTIMATORS:  # main specification: every estimator x outcome
        for out in outcomes:
            assert any(
                s["estimator"] == est
                and s["outcome"] == out
                and s["treatment_rule"] == "half_posts"
                and s["anticipation"] == 0
                for s in models.values()
            ), (est, out)
    values = lambda key: {str(s[key]) for s in models.values()}  # noqa: E731
    assert {"never_treated", "not_yet_treated"} <= values("control_group")
    assert {"0", "1", "2", "3"} <= values("anticipation")
    assert {"half_posts", "first_post", "all_posts"} <= values("treatment_rule")
    assert {"kreis", "verband_id"} <= values("cluster")
    assert any(s["covariates"] == [] for s in models.values())
    assert any(s["covariates"] for s in models.values())


def test_schema_defaults_are_documented_in_the_yaml():
    raw = yaml.safe_load((ROOT / "src/ifm_eval/schemas/config/models.schema.yaml").read_text())
    props = raw["$defs"]["model_spec"]["properties"]
    assert set(props["estimator"]["enum"]) == set(ESTIMATORS)
    assert {k for k, v in props.items() if "default" in v} | {"inference"} == set(spec_defaults())
