"""The ``dose_response`` job (ifm_eval.dose.stage): sample and lineage, the planted truth,
spec rules, the job end to end, and the planted dose gradient on a stand-in world."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT

from ifm_eval.config import load_config
from ifm_eval.dose.stage import dose_sample, planted_dose_truth, run_spec
from ifm_eval.estimators.specs import SpecError, get_spec, normalise_spec
from ifm_eval.lineage import Lineage
from ifm_eval.outputs.targets import dose_spec_paths
from ifm_eval.stage_io import StageIO

SPEC = "dose_vza_per_100_refugees_rate_employment"


def _cfg(tmp_path, source: str = "raw") -> dict:
    cfg = copy.deepcopy(load_config(ROOT / "config.yaml"))
    cfg["data"].update(source=source, results_dir=str(tmp_path / "results"), processed_dir=str(tmp_path / "proc"))
    return cfg


def _toy_panel(seed: int = 0, n: int = 900, T: int = 30, slope: float = 2.0, n_kreise: int = 30) -> pd.DataFrame:
    """Municipality-month panel with the columns a dose spec reads; effect 1 + slope *
    (dose - 1) from the start month on; some treated units without / with zero dose."""
    rng = np.random.default_rng(seed)
    g = rng.choice([0, 18, 21, 24, 27], size=n, p=[0.3, 0.2, 0.2, 0.15, 0.15])
    d = rng.uniform(0.5, 1.5, n)
    d[(g > 0) & (rng.random(n) < 0.1)] = np.nan
    d[(g > 0) & (rng.random(n) < 0.05)] = 0.0
    kreis = rng.integers(0, n_kreise, n)
    t = np.arange(1, T + 1)
    y = (rng.normal(size=n)[:, None] + 0.05 * t[None, :] + rng.normal(0, 0.3, (n_kreise, T))[kreis]
         + rng.normal(0, 0.5, (n, T)))
    post = (g[:, None] > 0) & (t[None, :] >= g[:, None])
    y = y + post * (1 + slope * (np.nan_to_num(d, nan=1.0) - 1))[:, None]
    return pd.DataFrame({
        "ags": np.repeat([f"08{i:06d}" for i in range(n)], T), "t": np.tile(t, n), "g": np.repeat(g, T),
        "kreis": np.repeat([f"K{k:02d}" for k in kreis], T), "rate_employment": y.ravel(),
        "vza_per_100_refugees": np.repeat(d, T), "population": 1000.0,
        "refugees_per_1000_2017": np.repeat(rng.integers(5, 40, n), T).astype(float),
    })


def test_dose_sample_drops_treated_without_dose_with_lineage(tmp_path):
    cfg = _cfg(tmp_path)
    spec = get_spec(cfg, SPEC)
    panel = _toy_panel()
    units = panel.groupby("ags")[["g", "vza_per_100_refugees"]].first()
    n_missing = int(((units["g"] > 0) & units["vza_per_100_refugees"].isna()).sum())
    n_zero = int(((units["g"] > 0) & (units["vza_per_100_refugees"] == 0)).sum())
    assert n_missing > 0 and n_zero > 0
    lin = Lineage("dose")
    data, gcol, warns = dose_sample(panel, spec, lin)
    n_sample = int((panel["t"] >= 13).sum())
    rec = {r.step: r for r in lin.records}
    assert rec["sample"].rows_out == n_sample
    drops = [r for r in lin.records if r.step.startswith("treated without dose")]
    assert [r.n_affected for r in drops] == [n_missing * (30 - 12), n_zero * (30 - 12)]
    assert f"{n_missing} treated municipalities" in drops[0].reason
    assert f"{n_zero} treated municipalities" in drops[1].reason
    kept = data.groupby("ags")[[gcol, "vza_per_100_refugees"]].first()
    assert (kept.loc[kept[gcol] > 0, "vza_per_100_refugees"] > 0).all()
    assert int((kept[gcol] == 0).sum()) == int((units["g"] == 0).sum())  # never-treated all kept
    assert len(data) == n_sample - sum(r.n_affected for r in drops)
    lin.check_balanced()
    assert len(warns) >= 2


def test_planted_truth_is_the_cell_slope_and_weighted_mean():
    """Within every cell the true effect is a_c + 3 * dose: the truth of ACRT^o is 3 exactly,
    ATT^o's the cell-weight average of the cells' weighted means; cells of weight 0 are out."""
    from ifm_eval.validation import tau_column

    rng = np.random.default_rng(3)
    omega = {(10, 10): 0.5, (10, 11): 0.3, (12, 12): 0.2, (12, 11): 0.0}
    level = {(10, 10): 1.0, (10, 11): 2.0, (12, 12): -1.0, (12, 11): 50.0}
    rows = [{"ags": f"{g}_{i}", "t": t, "g": g, "x": rng.uniform(0.5, 1.5), "w": float(rng.integers(1, 9)),
             "rate_employment": 0.0} for (g, t) in omega for i in range(40)]
    data = pd.DataFrame(rows)
    tau = [level[(g, t)] + 3.0 * x for g, t, x in zip(data["g"], data["t"], data["x"], strict=True)]
    cells = data[["ags", "t"]].assign(**{tau_column("rate_employment"): tau})
    dose_cells = pd.DataFrame([{"cohort": g, "time": t, "weight": w} for (g, t), w in omega.items()])
    spec = {"outcome": "rate_employment", "dose": "x", "weights": "w"}
    out = planted_dose_truth(cells, data, spec, "g", dose_cells)
    assert out["acrt_overall"] == pytest.approx(3.0, abs=1e-12)
    data["tau"] = tau
    exp = sum(w * np.average(c["tau"], weights=c["w"]) for (g, t), w in omega.items()
              for c in [data[(data["g"] == g) & (data["t"] == t)]])
    assert out["att_overall"] == pytest.approx(exp / sum(omega.values()), abs=1e-12)


def test_dose_spec_rules_name_the_key():
    base = {"estimator": "callaway_santanna", "outcome": "rate_employment", "dose": "vza_per_100_refugees"}
    with pytest.raises(SpecError, match="covariates"):
        normalise_spec("d", {**base, "covariates": ["log_population"]})
    spec = normalise_spec("d", {**base, "dose_spline": {"degree": 2}})
    assert spec["dose_spline"] == {"degree": 2, "knots": 0, "draws": 999, "seed": 20261202}
    assert "dose_spline" not in normalise_spec("e", {"estimator": "callaway_santanna", "outcome": "rate_employment"})


def test_run_spec_writes_every_output(tmp_path):
    cfg = _cfg(tmp_path)
    cfg["models"]["dose"]["base"]["dose_spline"]["draws"] = 199
    panel_path = tmp_path / "panel.parquet"
    _toy_panel(slope=2.0).to_parquet(panel_path)
    outs = dose_spec_paths(cfg, SPEC)
    for p in outs.values():
        p.parent.mkdir(parents=True, exist_ok=True)
    table = run_spec(cfg, SPEC, StageIO.of("dose-response", {"panel": panel_path}, outs))
    assert all(p.exists() for p in outs.values())
    agg = table[table["kind"] == "aggregate"].set_index("term")
    # planted slope 2 per dose unit: inside the interval and detected
    assert agg.loc["acrt_overall", "ci_low"] <= 2.0 <= agg.loc["acrt_overall", "ci_high"]
    assert agg.loc["acrt_overall", "ci_low"] > 0
    assert set(table["kind"]) == {"aggregate", "event_time", "bin"}
    assert (table["kind"] == "bin").sum() == 3
    meta = json.loads(outs["meta"].read_text())
    assert meta["n_treated"] == int(table.loc[table["kind"] == "bin", "n_units"].sum())
    assert "seconds" not in meta["info"]
    lin = pd.read_csv(outs["lineage"])
    assert lin["step"].str.startswith("treated without dose").sum() == 2
    # deterministic: a second run writes identical tables and metadata
    first = {k: outs[k].read_bytes() for k in ("table", "curve", "meta", "figure")}
    run_spec(cfg, SPEC, StageIO.of("dose-response", {"panel": panel_path}, outs))
    assert first == {k: outs[k].read_bytes() for k in ("table", "curve", "meta", "figure")}


def test_run_spec_rejects_other_specs(tmp_path):
    cfg = _cfg(tmp_path)
    outs = dose_spec_paths(cfg, "callaway_santanna_rate_employment")
    with pytest.raises(ValueError, match="no 'dose' key"):
        run_spec(cfg, "callaway_santanna_rate_employment",
                 StageIO.of("dose-response", {"panel": tmp_path / "p.parquet"}, outs))


@pytest.mark.slow
def test_planted_capacity_gradient_recovered(standin_panel):
    """A stand-in world whose effect grows with the counselling-capacity increase
    (``capacity_gradient``): the dose spec's ACRT^o interval covers the planted slope and
    excludes 0; with the gradient at 0 the planted slope is ~0 and covered."""
    from ifm_eval.reference import read_gemeindeverzeichnis
    from ifm_eval.synth import simulate, truth_counts_frame
    from ifm_eval.synth.memory import panel_in_memory
    from ifm_eval.synth.persons import capacity_increase_per100
    from ifm_eval.validation import cell_effects

    frame = read_gemeindeverzeichnis(f"{standin_panel['cfg']['data']['reference_dir']}/destatis_gv_auszug_bw.csv")
    name = "dose_capacity_per_100_refugees_rate_employment"
    out = {}
    for grad in (0.0, 3.0):
        cfg = copy.deepcopy(standin_panel["cfg"])
        eff = cfg["synth"]["effects"]["employment"]
        eff.update({"max_hazard_ratio": 1.8, "capacity_gradient": grad, "cohort_gradient": 0.0})
        world = simulate(cfg, frame)
        panel = panel_in_memory(world, cfg, frame)
        muni = world.structure.muni
        panel["capacity_per_100_refugees"] = panel["ags"].map(
            pd.Series(capacity_increase_per100(muni), index=muni["ags"]))
        spec = get_spec(cfg, name)
        spec["dose_spline"]["draws"] = 499
        lin = Lineage("dose")
        data, gcol, _ = dose_sample(panel, spec, lin)
        from ifm_eval.dose import estimate_dose_response

        r = estimate_dose_response(data, outcome=spec["outcome"], dose=spec["dose"], cohort=gcol, time="t",
                                   weights=spec["weights"], degree=1, n_boot=499, seed=1,
                                   min_comparison_units=spec["min_comparison_units"])
        truth = planted_dose_truth(cell_effects(panel, truth_counts_frame(world)), data, spec, gcol, r.cells)
        out[grad] = (r.aggregate("acrt_overall"), truth)
    for grad, (a, truth) in out.items():
        assert a["ci_low"] <= truth["acrt_overall"] <= a["ci_high"], (grad, a.to_dict(), truth)
    assert abs(out[0.0][1]["acrt_overall"]) < 0.2 * abs(out[3.0][1]["acrt_overall"])
    assert out[3.0][0]["ci_low"] > 0, out[3.0][0].to_dict()
