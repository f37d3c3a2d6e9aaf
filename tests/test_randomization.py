"""Randomization inference across Verbände (ifm_eval.inference.randomization)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ifm_eval.inference.randomization import permuted_cohorts, randomization_p, verband_structure


def _units():
    # Verband A: 3 municipalities starting 10, 12, never; B: 2 starting 20, 20; C: never; D: 5
    return pd.DataFrame({"ags": list("abcdefg"), "vb": ["A", "A", "A", "B", "B", "C", "D"],
                         "g": [10, 12, 0, 20, 20, 0, 5]})


def test_structure_and_permutation_keep_the_verband_timing():
    code, S, off = verband_structure(_units(), "ags", "vb", "g")
    assert dict(zip(["A", "B", "C", "D"], S, strict=True)) == {"A": 10, "B": 20, "C": 0, "D": 5}
    np.testing.assert_array_equal(off, [0, 2, -1, 0, 0, 0, 0])  # C's unit would start with C
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(200):
        new = permuted_cohorts(code, S, off, rng, last_period=72)
        # the Verband starts are permuted: every Verband's earliest start is one of S
        starts = {v: (new[code == i][new[code == i] > 0].min() if (new[code == i] > 0).any() else 0)
                  for i, v in enumerate("ABCD")}
        assert sorted(starts.values()) == sorted(S.tolist())
        assert new[2] == 0  # a never-treated municipality of a treated Verband stays never treated
        a = new[code == 0]
        if a[0] > 0:  # A's offsets move with it
            assert a[1] - a[0] == 2
        seen.add(tuple(new))
    assert len(seen) > 10
    # starts pushed past the panel's end become never treated
    late = permuted_cohorts(code, S, off + 70 * (off >= 0), np.random.default_rng(1), last_period=72)
    assert (late == 0).sum() >= 2


def test_randomization_p_counts_ties_and_failures():
    d = pd.DataFrame({"model": "m", "draw": range(6), "estimate": [1.0, 0.5, -1.0, 2.0, np.nan, -0.2],
                      "se": [0.5, 0.1, 1.0, 1.0, 1.0, 0.05]})
    r = randomization_p(d).iloc[0]
    # t: observed 2; permuted 5, -1, 2, NaN, -4 -> |5|, |2|, |-4| reach |2|
    assert r["t"] == 2.0 and r["p_randomization"] == pytest.approx((1 + 3) / (4 + 1))
    # the estimate itself: |-1| and |2| reach |1|
    assert r["p_randomization_estimate"] == pytest.approx((1 + 2) / (4 + 1))
    assert r["n_draws"] == 4 and r["n_failed"] == 1


@pytest.mark.slow
def test_randomization_p_is_close_to_uniform_without_effects(standin_panel):
    """Stand-in worlds with every effect exactly zero (the Monte Carlo's zero design): the
    (studentized) randomization p of the Callaway & Sant'Anna employment headline (the main
    spec with its cluster-jackknife SE, 19 permutations) rejects at 5% in about 5% of the
    worlds, and the p-values are spread like a uniform (24 worlds: at most 4 rejections,
    P(X >= 5) = 0.7% under 5%; the unstudentized p of the estimate itself rejects in about 40%
    of such worlds, see ifm_eval.inference.randomization)."""
    from ifm_eval.estimators.specs import expand_models
    from ifm_eval.inference.randomization import randomization_draws
    from ifm_eval.montecarlo.replicate import design_config
    from ifm_eval.reference import read_gemeindeverzeichnis
    from ifm_eval.synth import simulate
    from ifm_eval.synth.memory import panel_in_memory

    cfg = standin_panel["cfg"]
    frame = read_gemeindeverzeichnis(f"{cfg['data']['reference_dir']}/destatis_gv_auszug_bw.csv")
    specs = expand_models(cfg)
    sel = {n: specs[n] for n in ("callaway_santanna_rate_employment",)}
    ps = {n: [] for n in sel}
    for seed in range(24):
        rcfg = design_config(cfg, "zero", 700000 + seed)
        panel = panel_in_memory(simulate(rcfg, frame), rcfg, frame)
        p = randomization_p(randomization_draws(panel, sel, 19, seed)).set_index("model")["p_randomization"]
        for n in sel:
            ps[n].append(float(p[n]))
    for n, values in ps.items():
        values = np.array(values)
        assert (values <= 0.05).sum() <= 4, (n, values)
        assert 0.3 <= values.mean() <= 0.7, (n, values)  # uniform on {1/20, ..., 1}: mean 0.525
