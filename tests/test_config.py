"""Config schema: defaults, rejection of unknown keys and bad values with the key named."""

import copy
from pathlib import Path

import pytest
import yaml

from ifm_eval.config import ConfigError, load_config, validate_config

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cfg():
    return load_config(ROOT / "config.yaml")


def test_shipped_config_is_valid(cfg):
    assert cfg["data"]["source"] == "synthetic"
    assert cfg["panel"]["treatment_rule"] == "half_posts"


def test_defaults_filled():
    cfg = validate_config({"seed": 1, "data": {"source": "raw"}, "panel": {}, "synth": {}})
    assert cfg["data"]["raw_dir"] == "data/raw"
    assert cfg["panel"]["start"] == "2015-01"
    assert cfg["disclosure"]["min_cell"] == 5


@pytest.mark.parametrize(
    ("section", "key"),
    [("panel", "treatmnt_rule"), ("data", "sorce"), ("synth", "scael"), (None, "sed")],
)
def test_misspelt_key_is_named(cfg, section, key):
    bad = copy.deepcopy(cfg)
    (bad[section] if section else bad)[key] = 1
    with pytest.raises(ConfigError, match=rf"unknown key\(s\) '{key}'"):
        validate_config(bad)


def test_bad_value_names_path(cfg):
    bad = copy.deepcopy(cfg)
    bad["data"]["source"] = "excel"
    with pytest.raises(ConfigError, match="data/source"):
        validate_config(bad)
    bad = copy.deepcopy(cfg)
    bad["panel"]["start"] = "2015-13"
    with pytest.raises(ConfigError, match="panel/start"):
        validate_config(bad)


def test_load_config_names_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        yaml.safe_dump({"seed": 1, "data": {"source": "raw"}, "panel": {}, "synth": {}, "extra": 1})
    )
    with pytest.raises(ConfigError, match=r"(?s)c\.yaml.*'extra'"):
        load_config(path)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")


def test_command_line_scalars_are_read_as_yaml(cfg):
    """`snakemake --config monte_carlo='{k: 500}'` hands the nested values over as strings:
    where the schema wants a number or boolean they are read as YAML; other strings still
    fail, naming the key."""
    c = copy.deepcopy(cfg)
    c["monte_carlo"] = {"k": "500", "bootstrap": "true", "power": {"max_hazard_ratio": ["1.5", "2"], "k": "30"}}
    out = validate_config(c)
    assert out["monte_carlo"]["k"] == 500 and out["monte_carlo"]["bootstrap"] is True
    assert out["monte_carlo"]["power"] == {"max_hazard_ratio": [1.5, 2], "k": 30}
    for bad, where in (({"k": "five hundred"}, "monte_carlo/k"), ({"k": "true"}, "monte_carlo/k"),
                       ({"bootstrap": "1"}, "monte_carlo/bootstrap")):
        c["monte_carlo"] = bad
        with pytest.raises(ConfigError, match=f"at '{where}'"):
            validate_config(c)
