"""Calibration of the stand-in data to the published figures (BRIEF), at full scale.

The programme structure does not depend on ``synth.scale`` (funding, posts and start months are
state-wide facts), so its calibration is checked for several seeds; the person-level DGP is
checked once at full scale (about 3 s). Tolerances are stated per target.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ifm_eval.config import load_config
from ifm_eval.reference import read_gemeindeverzeichnis
from ifm_eval.synth import rng_for
from ifm_eval.synth.persons import PANEL_START, simulate_persons
from ifm_eval.synth.structure import build_structure, month_index

ROOT = Path(__file__).resolve().parents[1]
CFG = load_config(ROOT / "config.yaml")
SEEDS = (CFG["seed"], 1, 2)


@pytest.fixture(scope="module")
def frame():
    return read_gemeindeverzeichnis(ROOT / "data/raw/reference/destatis_gv_auszug_bw.csv")


@pytest.fixture(scope="module")
def structures(frame):
    return {s: build_structure(frame, CFG, rng_for(s, "structure")) for s in SEEDS}


@pytest.mark.parametrize("seed", SEEDS)
def test_structure_calibration(structures, seed):
    c = structures[seed].calibration
    # exact counts
    assert (c["n_municipalities"], c["n_verbaende"], c["n_applicants"], c["n_non_applicants"]) == (
        1101,
        192,
        1078,
        23,
    )
    assert c["non_applicants_refugees_20170915"] == 0
    # start of IM (official rule): > 50% by Jan 2018, ~95% by May 2018, a few H1 2017, some from Aug 2018
    assert c["share_started_by_2018_01"] > 0.5
    assert 0.92 <= c["share_started_by_2018_05"] <= 0.97
    assert 0.01 <= c["share_started_h1_2017"] <= 0.08
    assert 0.01 <= c["share_started_from_2018_08"] <= 0.08
    # funded VZÄ and persons, +-4 pp
    assert abs(c["share_funded_le_1_vza"] - 0.87) <= 0.04
    assert abs(c["share_funded_gt_2_vza"] - 0.05) <= 0.04
    assert abs(c["share_one_post"] - 0.72) <= 0.04
    assert abs(c["share_two_posts"] - 0.22) <= 0.04
    # capacity before/after: 68/15/9 of all = 74/16/10 of those answering, +-5 pp; median 0.25, mean 0.57
    assert abs(c["share_capacity_more"] - 0.68 / 0.92) <= 0.05
    assert abs(c["share_capacity_unchanged"] - 0.15 / 0.92) <= 0.05
    assert abs(c["share_capacity_less"] - 0.09 / 0.92) <= 0.05
    assert abs(c["capacity_change_median_vza"] - 0.25) <= 0.03
    assert abs(c["capacity_change_mean_vza"] - 0.57) <= 0.12
    assert abs(c["share_refugees_where_capacity_improved"] - 0.75) <= 0.1
    # organisation: 65% district office (+-6 pp), about half of the rest through a Träger
    assert abs(c["share_org_landratsamt"] - 0.65) <= 0.06
    assert 0.3 <= c["share_org_traeger"] / (1 - c["share_org_landratsamt"]) <= 0.7
    # integration-plan use 31/46/23, +-5 pp
    assert abs(c["share_plan_use_80to100"] - 0.31) <= 0.05
    assert abs(c["share_plan_use_20to80"] - 0.46) <= 0.05
    assert abs(c["share_plan_use_lt20"] - 0.23) <= 0.05


def test_structure_tables(structures):
    st = structures[CFG["seed"]]
    m = st.muni
    for col in (
        "ags",
        "name",
        "kreis",
        "kreis_name",
        "population",
        "urbanisation",
        "verband_id",
        "verband_name",
        "applicant_type",
        "applied",
        "organisation",
        "traeger_name",
        "capacity_before_vza",
        "capacity_after_vza",
        "funded_vza",
        "n_posts",
        "start_month",
        "refugees_20170915",
        "refugees_20171109",
        "plan_use_band",
    ):
        assert col in m.columns, col
    a = m[m["applied"]]
    assert a["verband_id"].str.fullmatch(r"PIK-IM-\d{4}").all()
    assert m.loc[~m["applied"], "verband_id"].isna().all()
    assert set(a["applicant_type"]) == {
        "Landratsamt",
        "Stadtkreis",
        "Gemeinde",
        "Verwaltungsgemeinschaft",
    }
    assert (a.loc[a["organisation"] == "traeger", "traeger_name"].notna()).all()
    assert (a.loc[a["organisation"] != "traeger", "traeger_name"].isna()).all()
    assert isinstance(m["start_month"].dtype, pd.PeriodDtype)
    assert m.loc[~m["applied"], "start_month"].isna().all() and a["start_month"].notna().all()
    # Stadtkreise apply alone; their funding is the largest
    sk = a[a["applicant_type"] == "Stadtkreis"]
    assert len(sk) == 9 and sk["verband_id"].is_unique
    assert len(st.verbaende) == 192 and st.verbaende["verband_id"].is_unique
    np.testing.assert_allclose(st.verbaende["n_members"].sum(), 1078)
    p = st.posts
    np.testing.assert_allclose(p.groupby("post_id")["share"].sum(), 1.0, atol=1e-9)
    assert p["successor_of"].notna().any() and p["end"].notna().any()


def test_timing_correlates_with_observables(structures):
    """Start timing depends on size, prior capacity and organisation (conditional PT only)."""
    m = structures[CFG["seed"]].muni
    a = m[m["applied"]]
    rho = np.corrcoef(np.log(a["population"]).rank(), a["start_idx"].rank())[0, 1]
    assert rho < -0.2  # larger municipalities start earlier
    by_org = a.groupby("organisation")["start_idx"].mean()
    assert by_org["traeger"] > by_org["landratsamt"]


@pytest.fixture(scope="module")
def persons_full(structures):
    st = structures[CFG["seed"]]
    return st, simulate_persons(st.muni, CFG, rng_for(CFG["seed"], "persons"))


def test_persons_full_scale(persons_full):
    st, pr = persons_full
    assert len(pr.persons) == 125_000  # scale 1.0: full state, target group
    ref = pr.counts["refugees"].sum(axis=0)
    peak = PANEL_START + int(ref.argmax())
    assert month_index("2016-06") <= peak <= month_index("2018-06")
    assert 50_000 <= ref.max() <= 120_000
    last = {
        k: pr.counts[k].sum(axis=0)[-1] / ref[-1] * 100
        for k in ("b1", "svb", "ausbildung", "weiterbildung")
    }
    assert 30 <= last["b1"] <= 75
    assert 20 <= last["svb"] <= 45
    assert 3 <= last["ausbildung"] + last["weiterbildung"] <= 15
    # non-applicants never house anyone in the target group
    non = ~st.muni["applied"].to_numpy()
    assert pr.counts["refugees"][non].sum() == 0
    # rates rise with time since arrival: employment rate increases over the panel
    svb = pr.counts["svb_cf"].sum(axis=0) / ref
    assert svb[-13] > svb[24] > svb[0]


def test_unconditional_trends_differ_by_urbanisation(persons_full):
    """Untreated employment trends differ by urbanisation, so unconditional PT fails."""
    st, pr = persons_full
    urb = st.muni["urbanisation"].to_numpy()
    growth = {}
    for u in (1, 3):
        s = urb == u
        ref = pr.counts["refugees"][s].sum(axis=0)
        rate = pr.counts["svb_cf"][s].sum(axis=0) / ref * 100
        growth[u] = (rate[59] - rate[35]) / rate[35]  # 2019-12 vs 2017-12, relative
    assert growth[3] > growth[1] + 0.1
