"""Monte Carlo machinery: the in-memory replicate path equals the file-based pipeline, the
summaries compute what they say, and a replicate recovers the planted truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ifm_eval import paths
from ifm_eval.montecarlo.power import MDE_FACTOR, analytic_mde, detectable_effect
from ifm_eval.montecarlo.replicate import design_config, run_replicate
from ifm_eval.montecarlo.summary import passes, power_curve, summarise
from ifm_eval.reference import read_gemeindeverzeichnis


@pytest.mark.slow
def test_in_memory_panel_equals_file_based_panel(standin_panel):
    """Same seed and config: the panel built in memory from the generator equals the panel
    the pipeline builds from the written native files, cell by cell (the survey moderators
    aside, which the in-memory path does not build)."""
    from ifm_eval.synth import simulate, truth_counts_frame
    from ifm_eval.synth.memory import SURVEY_COLUMNS, panel_in_memory

    cfg = standin_panel["cfg"]
    frame = read_gemeindeverzeichnis(paths.reference_path(cfg, "gv"))
    world = simulate(cfg, frame)
    mem = panel_in_memory(world, cfg, frame)
    files = standin_panel["panel"]
    assert set(files.columns) - set(mem.columns) == set(SURVEY_COLUMNS)
    pd.testing.assert_frame_equal(mem, files.drop(columns=list(SURVEY_COLUMNS)), check_exact=True)
    pd.testing.assert_frame_equal(truth_counts_frame(world), standin_panel["truth_counts"], check_exact=True)


def test_design_config():
    from conftest import ROOT

    from ifm_eval.config import load_config

    cfg = load_config(ROOT / "config.yaml")
    null = design_config(cfg, "zero", 7)
    assert null["seed"] == 7
    assert {e["max_hazard_ratio"] for e in null["synth"]["effects"].values()} == {1.0}
    hr = design_config(cfg, "hr1.25", 8)
    assert {e["max_hazard_ratio"] for e in hr["synth"]["effects"].values()} == {1.25}
    assert design_config(cfg, "effects", 9)["synth"]["effects"] == cfg["synth"]["effects"]
    with pytest.raises(ValueError, match="unknown Monte Carlo design"):
        design_config(cfg, "bogus", 1)


def _rows(estimates, truths, ses, design="effects"):
    n = len(estimates)
    est, se = np.asarray(estimates, float), np.asarray(ses, float)
    return pd.DataFrame({"design": design, "seed": np.arange(n), "model": "m", "estimator": "e", "outcome": "o",
                         "row": "headline", "event_time": np.nan, "estimate": est, "se": se,
                         "ci_low": est - 1.959964 * se, "ci_high": est + 1.959964 * se, "p": np.nan,
                         "truth": truths, "n_units": np.nan, "status": "ok"})


def test_summary_counts_exactly():
    # errors -3, -1, 0, 1, 3 with SE 1: two of five intervals miss the truth
    r = _rows([0.0, 2.0, 3.0, 4.0, 6.0], [3.0] * 5, [1.0] * 5)
    s = summarise(r).iloc[0]
    assert s["k"] == 5 and s["coverage"] == pytest.approx(0.6)
    assert s["bias"] == pytest.approx(0.0) and s["rmse"] == pytest.approx(np.sqrt(20 / 5))
    assert s["sd_error"] == pytest.approx(np.std([-3, -1, 0, 1, 3], ddof=1))
    assert s["calibration"] == pytest.approx(1.0 / s["sd_error"])
    assert s["rejection"] == pytest.approx(0.8)  # only the interval around 0.0 contains zero
    assert s["coverage_mcse"] == pytest.approx(np.sqrt(0.6 * 0.4 / 5))


def test_targets_and_power_curve():
    rng = np.random.default_rng(0)
    k = 400
    eff = _rows(rng.normal(1.0, 1.0, k), np.ones(k), np.ones(k))
    nul = _rows(rng.normal(0.0, 1.0, k), np.zeros(k), np.ones(k), design="zero")
    bad = _rows(rng.normal(0.0, 2.0, k), np.zeros(k), np.ones(k), design="zero")  # SE half the SD
    ok = passes(summarise(pd.concat([eff, nul]))).iloc[0]
    assert ok["passes"] and ok["coverage_ok"] and ok["size_ok"]
    notok = passes(summarise(pd.concat([eff, bad]))).iloc[0]
    assert not notok["size_ok"] and not notok["passes"]
    curve = power_curve(pd.concat([
        nul, *[_rows(rng.normal(m, 1.0, k), np.full(k, m), np.ones(k), design=f"hr{x}")
               for x, m in ((1.2, 1.0), (1.5, 3.2), (2.0, 4.0))]]))
    assert list(curve["max_hazard_ratio"]) == [1.0, 1.2, 1.5, 2.0]
    assert curve["rejection"].iloc[0] == pytest.approx(0.05, abs=0.03)
    det = detectable_effect(curve).iloc[0]
    # power 0.80 is reached where the true effect is about 2.8 SE (normal theory)
    assert 1.2 < det["max_hazard_ratio_80"] <= 1.5
    assert det["effect_pp_80"] == pytest.approx(MDE_FACTOR, abs=0.4)


def test_analytic_mde_is_2_8_standard_errors():
    tidy = pd.DataFrame({"kind": ["overall", "event_time", "event_time", "event_time"],
                         "term": ["dynamic", "e-1", "e+0", "e+1"], "event_time": [np.nan, -1, 0, 1],
                         "se": [0.5, 0.2, 0.3, 0.4]})
    m = analytic_mde(tidy, "dynamic", baseline=10.0)
    assert list(m["row"]) == ["headline", "event_time", "event_time"]
    np.testing.assert_allclose(m["mde80_pp"], MDE_FACTOR * np.array([0.5, 0.3, 0.4]))
    np.testing.assert_allclose(m["mde80_relative"], m["mde80_pp"] / 10.0)
    assert pytest.approx(2.8016, abs=1e-4) == MDE_FACTOR


@pytest.mark.slow
def test_replicate_recovers_planted_truth(standin_panel):
    """One replicate of the main imputation and Callaway & Sant'Anna specs at a small
    scale: every headline has a finite matched truth and lies within 4 SE of it."""
    cfg = dict(standin_panel["cfg"])
    frame = read_gemeindeverzeichnis(paths.reference_path(cfg, "gv"))
    rows = run_replicate(cfg, "effects", 4242, frame, ["imputation_rate_employment",
                                                       "callaway_santanna_rate_employment"])
    h = rows[rows["row"] == "headline"]
    assert set(h["model"]) == {"imputation_rate_employment", "callaway_santanna_rate_employment"}
    assert h["truth"].notna().all() and (h["truth"] > 0).all()
    z = (h["estimate"] - h["truth"]) / h["se"]
    assert (z.abs() < 4).all(), z.to_dict()
    e = rows[(rows["row"] == "event_time") & (rows["event_time"] >= 0)]
    assert e["truth"].notna().mean() > 0.9


def test_targets_within_monte_carlo_error_at_the_boundary():
    """12 of 12 intervals covering is consistent with 95% coverage (Wilson interval
    0.76-1.0), 500 of 500 is not (over-coverage fails the 93-97% band too)."""
    from ifm_eval.montecarlo.summary import wilson

    lo, hi = wilson(1.0, 12)
    assert lo == pytest.approx(0.7575, abs=1e-3) and hi == pytest.approx(1.0)
    for k, expect in ((12, True), (500, False)):
        eff = _rows(np.full(k, 1.0), np.full(k, 1.0), np.ones(k))  # every interval covers
        nul = _rows(np.where(np.arange(k) % 20 == 0, 3.0, 0.0), np.zeros(k), np.ones(k), design="zero")  # 5% reject
        got = passes(summarise(pd.concat([eff, nul]))).iloc[0]
        assert bool(got["coverage_ok"]) == expect and bool(got["size_ok"]) and bool(got["passes"]) == expect


def test_fingerprint_ties_evidence_to_the_configuration():
    """The fingerprint ignores what a full run and a small run of one configuration differ
    in (K, the pipeline's own seed) and changes with the main specification and the
    generator."""
    import copy

    from conftest import ROOT

    from ifm_eval.config import load_config, validate_config
    from ifm_eval.montecarlo.evidence import fingerprint

    cfg = load_config(ROOT / "config.yaml")
    fp = fingerprint(cfg)
    same = copy.deepcopy(cfg)
    same["monte_carlo"]["k"] = 500
    same["seed"] = cfg["seed"] + 1
    assert fingerprint(validate_config(same)) == fp
    spec = copy.deepcopy(cfg)
    spec["models"]["main"]["base"]["min_comparison_units"] = 10
    assert fingerprint(validate_config(spec)) != fp
    gen = copy.deepcopy(cfg)
    gen["synth"]["effects"]["employment"]["max_hazard_ratio"] = 1.1
    assert fingerprint(validate_config(gen)) != fp


def test_recorded_evidence_decides_with_this_run():
    """A recorded full run of the same configuration decides where it exists (it misses a
    target: fails, whatever this run's 12 draws say; it meets them: passes); without a
    recorded run the targets are this run's."""
    from ifm_eval.montecarlo.evidence import evidence_table, with_recorded

    def summ(cov, rej, k):
        rows = []
        for design, c, r in (("effects", cov, 1.0), ("zero", 1.0, rej)):
            for est in ("imputation", "callaway_santanna"):
                rows.append({"design": design, "estimator": est, "outcome": "rate_employment", "k": k,
                             "bias": 0.0, "bias_mcse": 0.01, "mean_se": 1.0, "bias_se": 0.0, "calibration": 1.0,
                             "coverage": c if est == "imputation" else 0.95, "rejection": r})
        return pd.DataFrame(rows)

    this = passes(summ(1.0, 0.0, 12))  # 12/12 covered: consistent with 95% at K = 12
    assert this["passes"].all()
    rec = passes(summ(0.99, 0.05, 500))  # 99% at K = 500: over-covers, misses the band
    out = with_recorded(this, rec).set_index("estimator")
    assert not out.loc["imputation", "passes"] and out.loc["callaway_santanna", "passes"]
    assert out["this_run_passes"].all() and set(out["evidence"]) == {"recorded"}
    weak = passes(summ(0.5, 0.5, 12))  # a bad small draw: fails at K = 12
    assert not weak.set_index("estimator").loc["imputation", "passes"]
    out = with_recorded(weak, passes(summ(0.95, 0.05, 500))).set_index("estimator")
    assert out.loc["imputation", "passes"] and not out.loc["imputation", "this_run_passes"]
    alone = with_recorded(this, None)
    assert alone["passes"].all() and set(alone["evidence"]) == {"this_run"}
    ev = evidence_table(summ(0.95, 0.05, 500), summ(0.6, 0.5, 500)).set_index("estimator")
    assert ev.loc["imputation", "before_coverage"] == 0.6 and ev.loc["imputation", "after_rejection"] == 0.05
    assert evidence_table(None, None).empty


def test_shipped_evidence_matches_the_shipped_configuration():
    """The recorded K = 500 run shipped with the package was made with the shipped
    config.yaml: a change to a main specification or to the generator must come with a new
    full run (benchmarks/mc_compare.py) before the report may cite it."""
    from conftest import ROOT

    from ifm_eval.config import load_config
    from ifm_eval.montecarlo.evidence import RECORDED, RECORDED_BEFORE, fingerprint, read_recorded

    rec = read_recorded(RECORDED)
    assert set(rec["fingerprint"]) == {fingerprint(load_config(ROOT / "config.yaml"))}
    assert ((rec["k"] + rec["k_failed"]) >= 500).all()  # a full-size run: 500 replicates per design
    before = read_recorded(RECORDED_BEFORE)
    assert set(before["fingerprint"]) == {fingerprint(load_config(ROOT / "benchmarks/configs/before_issue9.yaml"))}
