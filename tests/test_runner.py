"""Runner: a tiny config runs end to end; the tidy file has the exact schema; metadata."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from test_twfe import simulate_staggered  # noqa: I001  (tests/ on sys.path)

from ifm_eval.config import load_config, validate_config
from ifm_eval.estimators.results import TIDY_COLUMNS, TIDY_SCHEMA, file_sha256
from ifm_eval.estimators.runner import run_model
from ifm_eval.estimators.specs import ESTIMATORS, cohort_column, expand_models

ROOT = Path(__file__).resolve().parents[1]


def fake_panel() -> pd.DataFrame:
    """The panel's column names on a small simulated staggered design (10 never-treated)."""
    d = simulate_staggered(
        n_units=70, n_periods=16, cohorts=(5, 8, 11, 14), seed=11, never_treated=10
    )
    rng = np.random.default_rng(0)
    u = d["unit"].str[1:].astype(int)
    g = d["g"]
    return pd.DataFrame(
        {
            "ags": d["unit"].str.replace("u", "0831", regex=False),
            "t": d["time"],
            "kreis": d["kreis"],
            "verband_id": np.where(u % 4 == 0, None, "V" + (u // 4).astype(str)),
            "g": g,
            "g_half_posts": g,
            "g_first_post": np.where(g > 0, g - 1, 0),
            "g_all_posts": np.where(g > 0, np.minimum(g + 2, 16), 0),
            "rate_employment": 10 + d["y"],
            "rate_training": 5 + d["y"] + rng.normal(0, 1, len(d)),
            "rate_language": 20 + d["y"] / 2,
            "refugees": d["w"] * 10,
            "log_population": d["x"] + 8,
            "urbanisation": (u % 3 + 1).astype("Int64"),
        }
    )


@pytest.fixture()
def tiny(tmp_path):
    cfg = load_config(ROOT / "config.yaml")
    cfg = copy.deepcopy(cfg)
    cfg["data"]["processed_dir"] = str(tmp_path / "processed")
    cfg["data"]["results_dir"] = str(tmp_path / "results")
    cfg["models"] = {
        "all": {
            "grid": {"estimator": list(ESTIMATORS)},
            "base": {
                "outcome": "rate_employment",
                "event_window": [-3, 5],
                "covariates": ["log_population"],
            },
            "name": "t_{estimator}",
        },
        "t_weighted_sample": {
            "estimator": "imputation",
            "outcome": "rate_training",
            "weights": "refugees",
            "cluster": "verband_id",
            "sample": "urbanisation != 3",
            "treatment_rule": "first_post",
            "event_window": [-3, 5],
        },
    }
    cfg = validate_config(cfg)
    panel_path = Path(cfg["data"]["processed_dir"]) / "panel" / "panel.parquet"
    panel_path.parent.mkdir(parents=True)
    fake_panel().to_parquet(panel_path, index=False)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return cfg, path, panel_path


@pytest.mark.parametrize("name", [f"t_{e}" for e in ESTIMATORS] + ["t_weighted_sample"])
def test_end_to_end_exact_schema(tiny, name):
    cfg, _, panel_path = tiny
    pq = Path(cfg["data"]["results_dir"]) / "estimates" / f"{name}.parquet"
    js = pq.with_suffix(".json")
    tidy, meta = run_model(cfg, name, panel_path, out=(pq, js))
    back = pd.read_parquet(pq)
    for frame in (tidy, back):
        assert tuple(frame.columns) == TIDY_COLUMNS
        assert {c: str(t) for c, t in frame.dtypes.items()} == TIDY_SCHEMA
    pd.testing.assert_frame_equal(back, tidy)
    spec = expand_models(cfg)[name]
    assert (tidy["spec"] == name).all() and (tidy["estimator"] == spec["estimator"]).all()
    assert set(tidy["kind"]) <= {
        "att_gt",
        "event_time",
        "group",
        "calendar",
        "overall",
        "coefficient",
    }
    assert (tidy["kind"] == "overall").sum() >= 1
    ov = tidy[tidy["kind"] == "overall"].iloc[0]
    assert np.isfinite(ov["estimate"]) and ov["se"] > 0 and 0 <= ov["p"] <= 1
    assert ov["ci_low"] < ov["estimate"] < ov["ci_high"]
    assert tidy["n_units"].iloc[0] > 0 and tidy["n_clusters"].iloc[0] > 0
    if spec["estimator"] != "twfe_static":
        assert (tidy["kind"] == "event_time").any()
    meta_back = json.loads(js.read_text())
    assert meta_back["spec"] == spec
    assert meta_back["input"]["sha256"] == file_sha256(panel_path)
    assert meta_back["packages"]["pyfixest"] and meta_back["runtime_seconds"] >= 0
    assert isinstance(meta_back["warnings"], list)
    assert meta_back["model"] == name and meta_back["n_units"] == meta["n_units"]
    assert meta_back["cohort_column"] == cohort_column(spec)


def test_sample_rule_and_cluster_fill_are_reported(tiny):
    cfg, _, panel_path = tiny
    _, meta = run_model(cfg, "t_weighted_sample", panel_path)
    assert meta["cohort_column"] == "g_first_post"
    assert any("sample 'urbanisation != 3'" in w for w in meta["warnings"])
    assert any("without verband_id" in w for w in meta["warnings"])


def test_cli_estimate_and_list_models(tiny, capsys, caplog):
    from ifm_eval.cli import main

    _, path, panel_path = tiny
    assert main(["list-models", "--config", str(path)]) == 0
    names = capsys.readouterr().out.split()
    assert names == [f"t_{e}" for e in ESTIMATORS] + ["t_weighted_sample"]
    cfg = load_config(path)
    out = Path(cfg["data"]["results_dir"]) / "estimates" / "t_gardner"
    used = Path(cfg["data"]["processed_dir"]) / "estimates" / "t_gardner_used.parquet"
    boot = Path(cfg["data"]["processed_dir"]) / "estimates" / "t_gardner_boot.parquet"
    io = ["--in", f"panel={panel_path}", "--out", f"tidy={out}.parquet", "--out", f"meta={out}.json",
          "--out", f"used={used}", "--out", f"boot={boot}"]
    assert main(["estimate", "--config", str(path), "--model", "t_gardner", *io]) == 0
    assert out.with_suffix(".parquet").is_file() and out.with_suffix(".json").is_file()
    u = pd.read_parquet(used)
    assert list(u.columns) == ["unit", "time", "cohort", "event_time", "weight", "headline"] and len(u) > 0
    b = pd.read_parquet(boot)  # no inference.bootstrap in this spec: empty, fixed schema
    assert list(b.columns) == ["term", "draw", "t_boot"] and len(b) == 0
    assert main(["estimate", "--config", str(path), "--model", "nope", *io]) == 1
    # the rule and the stage must agree on the files: a missing output is an error naming it
    assert main(["estimate", "--config", str(path), "--model", "t_gardner", *io[:4]]) == 1
    assert "missing output(s) ['boot', 'meta', 'used']" in caplog.text


def _run_standin(fx: dict, estimator: str, outcome: str = "rate_employment"):
    """The main specification ``<estimator>_<outcome>`` on the stand-in panel (analytic
    SEs), with its matched planted truth (:func:`ifm_eval.validation.matched_truth`)."""
    from ifm_eval.validation import cell_effects, matched_truth

    cfg = copy.deepcopy(fx["cfg"])
    name = f"{estimator}_{outcome}"
    spec = expand_models(cfg)[name]
    raw = {k: v for k, v in spec.items() if k != "inference"}  # analytic SEs (fast)
    cfg["models"] = {name: raw}
    res = []
    tidy, meta = run_model(cfg, name, fx["panel"], strict=True, result=res)
    spec = expand_models(cfg)[name]
    cells = fx.get("_cells")
    if cells is None:
        cells = fx["_cells"] = cell_effects(fx["panel"], fx["truth_counts"])
    return tidy, meta, spec, matched_truth(cells, spec["outcome"], res[0].used, res[0].info["headline"])


#: event times with enough support: at least this many treated municipalities
MIN_SUPPORT_UNITS = 20

OUTCOMES = ("rate_employment", "rate_training", "rate_language")
ROBUST_ESTIMATORS = ("callaway_santanna", "sun_abraham", "imputation", "gardner")


def _path_z(tidy: pd.DataFrame, truth: pd.DataFrame) -> pd.Series:
    """z = (estimate - matched truth) / SE by post event time with enough support."""
    es = tidy[(tidy["kind"] == "event_time") & (tidy["event_time"] >= 0)]
    es = es[~es["term"].str.startswith("pre")].set_index("event_time")
    sup = truth.index[truth["n_units"] >= MIN_SUPPORT_UNITS]
    es = es[es.index.isin(sup) & (es["se"] > 0)]
    return (es["estimate"] - truth["truth"].reindex(es.index)) / es["se"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("estimator", "outcome"),
    [(e, o) for o in OUTCOMES for e in ROBUST_ESTIMATORS],
)
def test_stand_in_data_planted_paths(standin_panel, estimator, outcome):
    """Main specification (refugee-weighted from 2016-01, see config.yaml) on the stand-in
    panel built from scratch: the event-time path of each outcome is recovered. z =
    (estimate - truth) / SE over post periods e >= 0 with at least 20 treated
    municipalities and a finite SE (at least 12 of them): mean |z| < 1.5 and max |z| < 4.
    Truth: :func:`ifm_eval.validation.matched_truth` -- the cell effects of truth_counts
    (observed minus counterfactual stocks / refugees), averaged with the spec's weights
    over exactly the treated observations the estimator used. The headline aggregate is
    within 3 SE of its matched truth too.

    Callaway & Sant'Anna on the language rate relies on ``panel.b1_gap_fill``: without it,
    the 1 % of B1 months missing at random drop ~45 % of the municipalities from its
    balanced panel, and on that random half its long-horizon ATTs on the counterfactual
    rate (true effect 0) reach +2 pp, z 3.7 (random halves of the gap-free panel: max |z|
    >= 3 in 6 of 20 draws, mean estimate -0.1 pp -- noise with optimistic SEs, not a
    conditioning failure)."""
    tidy, meta, spec, mt = _run_standin(standin_panel, estimator, outcome)
    assert spec["weights"] == "refugees_2017" and meta["status"] == "ok"
    z = _path_z(tidy, mt.path)
    assert len(z) >= 12, z
    assert np.abs(z).mean() < 1.5 and np.abs(z).max() < 4, z.round(2).to_dict()
    ov = tidy[(tidy["kind"] == "overall") & (tidy["term"] == mt.term)].iloc[0]
    assert abs(ov["estimate"] - mt.overall) < 3 * ov["se"], (ov["estimate"], ov["se"], mt.overall)


@pytest.mark.slow
def test_stand_in_static_twfe_is_off(standin_panel):
    """The naive static TWFE of the main specification is more than 3 SE away from the
    (same-weighted) average true effect over all its post-treatment observations."""
    tidy, _, _, mt = _run_standin(standin_panel, "twfe_static")
    assert mt.term == "att" and mt.event_min == 0 and mt.n_obs > 0
    ov = tidy[tidy["kind"] == "overall"].iloc[0]
    assert abs(ov["estimate"] - mt.overall) > 3 * ov["se"], (ov["estimate"], ov["se"], mt.overall)


def test_main_cs_spec_shape_runs(tiny):
    """The shipped main Callaway-Sant'Anna spec combines covariates, Kreis clusters and
    the seeded multiplier bootstrap (uniform bands): that combination must run."""
    cfg, _, panel_path = tiny
    cfg = copy.deepcopy(cfg)
    cfg["models"] = {
        "cs_boot": {
            "estimator": "callaway_santanna",
            "outcome": "rate_employment",
            "covariates": ["log_population"],
            "cluster": "kreis",
            "event_window": [-3, 5],
            "inference": {"type": "bootstrap", "draws": 99, "seed": 1},
        }
    }
    tidy, _ = run_model(cfg, "cs_boot", panel_path)
    es = tidy[tidy["kind"] == "event_time"]
    assert es["cband_low"].notna().all()
    assert (es["cband_low"] <= es["ci_low"] + 1e-12).all()


def test_not_estimable_spec_writes_empty_result(tiny):
    cfg, _, panel_path = tiny
    cfg = copy.deepcopy(cfg)
    cfg["models"] = {
        "nothing": {
            "estimator": "sun_abraham",
            "outcome": "rate_employment",
            "sample": "g == 0 or g == 5",
        }
    }  # one cohort, no control
    tidy, meta = run_model(cfg, "nothing", panel_path)
    assert meta["status"] == "not_estimable" and "sun_abraham" in meta["error"]
    assert len(tidy) == 0 and tuple(tidy.columns) == TIDY_COLUMNS
    assert {c: str(t) for c, t in tidy.dtypes.items()} == TIDY_SCHEMA
    with pytest.raises(ValueError):
        run_model(cfg, "nothing", panel_path, strict=True)
