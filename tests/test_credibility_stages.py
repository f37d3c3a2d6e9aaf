"""The credibility rules on the session's tiny workflow run (tests/conftest.py): every
diagnosed spec carries its p-values, pre-trend test, HonestDiD bounds and the TWFE
decompositions in results/, with the properties each output must have."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest


@pytest.fixture(scope="module")
def run(small_workflow):
    work, cfg, proc = small_workflow
    assert proc.returncode == 0, proc.stderr[-3000:]
    return work, cfg


def _csv(work, rel):
    return pd.read_csv(work / "results" / rel)


def test_inference_table(run):
    work, cfg = run
    inf = _csv(work, "inference/inference.csv")
    assert (inf["data_source"] == "SYNTHETISCHE DATEN / SYNTHETIC DATA").all()
    assert set(inf["model"]) == set(cfg["models"])
    for col in ("p", "boot_p", "p_randomization", "p_romano_wolf"):
        assert inf[col].between(0, 1).all(), col
    assert (inf["ri_draws"] == 9).all() and (inf["boot_draws"] == 499).all()
    # randomization p over 9 draws is a multiple of 1/10
    assert np.allclose(inf["p_randomization"] * 10, np.round(inf["p_randomization"] * 10))
    # one outcome per estimator: the step-down p of a single hypothesis is its bootstrap p
    # (up to the tie convention: >= for Romano-Wolf, > for the bootstrap p)
    assert (inf["p_romano_wolf"] >= inf["boot_p"] - 1e-12).all()
    assert (inf["p_romano_wolf"] - inf["boot_p"] <= 2 / 499).all()
    # the bootstrap columns are those of the tidy estimates
    for r in inf.itertuples():
        tidy = pd.read_parquet(work / f"results/estimates/{r.model}.parquet")
        h = tidy[(tidy["kind"] == "overall") & (tidy["term"] == r.term)].iloc[0]
        # (published CSVs carry 6 significant digits)
        assert h["boot_p"] == pytest.approx(r.boot_p, rel=1e-5, abs=1e-6)
        assert h["estimate"] == pytest.approx(r.estimate, rel=1e-5)
    draws = _csv(work, "inference/randomization_draws.csv")
    assert draws.groupby("model")["draw"].nunique().eq(10).all()


def test_pretrends_tables(run):
    work, _ = run
    w = _csv(work, "diagnostics/pretrends.csv")
    assert set(w["estimator"]) == {"callaway_santanna", "imputation"}  # the event studies
    assert (w["df"] == w["n_pre"]).all() and (w["n_pre"] == 5).all()  # window -6: e = -6..-2
    assert w["p_wald"].between(0, 1).all()
    p = _csv(work, "diagnostics/pretrend_power.csv")
    assert len(p) == 2 * len(w)
    assert np.allclose(p["power"], p["target_power"], atol=2e-3)
    # a steeper trend is needed for more power, and leaves a larger bias in the headline
    piv = p.pivot(index="model", columns="target_power", values="slope")
    assert (piv[0.8] > piv[0.5]).all()
    assert (p["bias_headline"].abs() > 0).all()


def test_honest_did_tables(run):
    work, _ = run
    t = _csv(work, "sensitivity/honest_did.csv")
    b = _csv(work, "sensitivity/honest_did_breakdown.csv")
    assert set(t["estimator"]) == {"callaway_santanna", "imputation"}
    assert set(t["target"]) == {"headline", "e+0"}
    for _, g in t[t["restriction"] != "none"].groupby(["model", "target", "restriction"]):
        g = g.sort_values("m")
        assert (np.diff(g["ub"] - g["lb"]) >= -1e-9).all()  # wider as the bound grows
    assert set(b["restriction"]) == {"relative_magnitude", "smoothness"}
    contains0 = (b["original_lb"] <= 0) & (b["original_ub"] >= 0)
    assert (b.loc[contains0, "breakdown"] == 0).all()  # no breakdown: already the original contains 0
    assert (b["breakdown"] >= 0).all()
    # where the breakdown is positive, the robust set on the configured grid below it excludes 0
    for r in b[b["breakdown"] > 0].itertuples():
        grid = t[(t["model"] == r.model) & (t["target"] == r.target) & (t["restriction"] == r.restriction)]
        below = grid[grid["m"] < r.breakdown - 1e-3]
        assert ((below["lb"] > 0) | (below["ub"] < 0)).all()


def test_twfe_decompositions(run):
    work, cfg = run
    s = _csv(work, "diagnostics/bacon_summary.csv")
    for _, g in s.groupby("model"):
        assert g["weight"].sum() == pytest.approx(1.0, abs=1e-5)  # 6 significant digits in the CSV
        assert (g["weight"] * g["avg_est"]).sum() == pytest.approx(g["twfe"].iloc[0], rel=1e-4, abs=1e-5)
    w = _csv(work, "diagnostics/twfe_weights.csv")
    assert w["sum_weights"].to_numpy() == pytest.approx(1.0)
    assert (w["n_negative"] + w["n_positive"] + w["n_zero"] == w["n_treated_cells"]).all()
    assert w["sum_w_tau"].notna().all()  # stand-in data: what the TWFE targets given the truth


def test_report_has_the_credibility_chapter(run):
    work, _ = run
    html = (work / "results/report/report_de.html").read_text(encoding="utf-8")
    assert "Glaubwürdigkeit der Ergebnisse" in html
    assert "p Randomisierung" in html and "Bruchpunkt" in html
    meta = json.loads((work / "results/estimates/callaway_santanna_rate_employment.json").read_text())
    assert meta["info"]["bootstrap"]["draws"] == 499
    assert len(meta["vcov_event_time"]["event_times"]) == len(meta["vcov_event_time"]["matrix"])
