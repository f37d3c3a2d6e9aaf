"""Descriptive municipality attributes reported in the surveys but not needed by the DGP.

:func:`draw_survey_attributes` draws, per municipality, who decides on working methods, the
target-group definitions (legal status, housing, minimum age, arrival period) and how the
IM work is documented (mode, software), calibrated to the published shares of the short
report (BRIEF "Published figures", seed 002).

Calibration is by *ordered allocation*: the municipalities are put in an order (a noisy
score, e.g. small size and no prior counselling capacity first for "children under 14
included"), grouped into blocks that share an answer (the members of a district-run Verband
mostly share the district office's policy), and the ordered list is cut at the cumulative
target shares. Marginals therefore hit the targets up to block granularity, correlations
with size and prior capacity come from the score, and whole blocks get the same answer
except the block straddling a cut. Verbände flagged ``district_joint`` (the district office
answers each survey once for all members) share every answer exactly.

Shares are over the municipalities that applied (the units that answer the surveys);
non-applicants get missing attributes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Published targets (short report, 2018 survey waves). Shares over applying municipalities.
TARGETS: dict[str, dict[str, float]] = {
    # who decides on working methods: overall IM 31% (13% of district-run), municipal <10%
    "decision_maker_district": {"im": 0.13, "district_office": 0.87},
    "decision_maker_overall_im": {"im": 0.31},
    "decision_maker_municipal": {"im": 0.635, "municipal_staff": 0.235, "district_office": 0.13},
    "ts_gestattung": {True: 0.98},
    "ts_erlaubnis": {True: 0.99},
    "ts_duldung": {True: 0.96},
    "ts_ausreisepflichtig": {True: 0.44},
    "ts_drittstaat": {True: 0.12},
    "ts_eu": {True: 0.06},
    "hs_privat": {True: 0.95},
    "hs_oeffentlich": {True: 0.93},
    "hs_gu_au": {True: 0.77},
    "hs_vorlaeufig": {True: 0.22},
    "hs_andere": {True: 0.13},
    # minimum age: order matters (first category goes to the highest score)
    "min_age": {"unter14": 0.18, "ab14": 0.13, "ab16": 0.20, "ab18": 0.49},
    "arrival": {"ab2014": 0.06, "ab2015": 0.24, "andere": 0.02, "keine": 0.68},
    "doc_mode": {"digital": 0.47, "gemischt": 0.37, "papier": 0.16},
    # software among municipalities documenting (partly) digitally
    "software": {"jobkraftwerk": 0.36, "enaio": 0.24, "tau": 0.16, "excel": 0.10,
                 "eigenentwicklung": 0.09, "andere": 0.05},
}

TARGET_STATUS = ["ts_gestattung", "ts_erlaubnis", "ts_duldung", "ts_ausreisepflichtig",
                 "ts_drittstaat", "ts_eu"]
HOUSING = ["hs_privat", "hs_oeffentlich", "hs_gu_au", "hs_vorlaeufig", "hs_andere"]
ATTRIBUTE_COLUMNS = (["ags", "verband_id", "district_joint", "decision_maker"] + TARGET_STATUS
                     + HOUSING + ["min_age", "arrival", "doc_mode", "software"])

#: Share of district-run Verbände whose district office answers once for all members.
DISTRICT_JOINT_SHARE = 0.4
#: ``muni.decides_methods`` (structure generator) -> survey answer categories
DECIDES_MAP = {"im": "im", "gemeinde": "municipal_staff", "landratsamt": "district_office"}


def _allocate(
    score: pd.Series,
    blocks: pd.Series,
    shares: dict,
    rng: np.random.Generator,
    noise: float = 1.0,
) -> pd.Series:
    """Cut the score-ordered municipalities at cumulative ``shares`` (first key: top scores).

    ``blocks`` (same index) groups municipalities that share an answer; blocks are ordered by
    their mean score plus noise, members within a block by score. Shares that do not sum to
    one leave the remainder to the last category.
    """
    if len(score) == 0:
        return pd.Series([], index=score.index, dtype=object)
    df = pd.DataFrame({"score": score.astype(float), "block": blocks.astype(str)})
    bscore = df.groupby("block", sort=True)["score"].mean()
    bscore = bscore + rng.normal(0.0, noise, len(bscore))
    df["bscore"] = df["block"].map(bscore)
    order = df.sort_values(["bscore", "block", "score"], ascending=[False, True, False],
                           kind="mergesort").index
    cats = list(shares)
    cum = np.cumsum([shares[c] for c in cats])
    n = len(order)
    cuts = np.round(cum * n).astype(int)
    cuts[-1] = n
    values = np.empty(n, dtype=object)
    start = 0
    for c, stop in zip(cats, cuts, strict=False):
        values[start:stop] = c
        start = stop
    return pd.Series(values, index=order).reindex(score.index)


def _bool_allocate(score, blocks, share, rng, noise=1.0) -> pd.Series:
    return _allocate(score, blocks, {True: share, False: 1.0 - share}, rng, noise).astype(bool)


def _harmonise_joint(values: pd.Series, blocks: pd.Series, joint: pd.Series) -> pd.Series:
    """Give every member of a joint-answer block the block's majority value."""
    out = values.copy()
    if not joint.any():
        return out
    sub = pd.DataFrame({"v": values[joint].astype(str), "b": blocks[joint]})
    major = sub.groupby("b")["v"].agg(lambda s: s.value_counts().sort_index().idxmax())
    lookup = {str(v): v for v in values[joint].unique()}
    out[joint] = blocks[joint].map(major).map(lookup)
    return out


def draw_survey_attributes(muni: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Draw the survey-only attributes for every municipality of ``muni``.

    ``muni`` needs ``ags, population, organisation, verband_id, applied,
    capacity_before_vza``. If it has ``decides_methods`` (``im`` | ``gemeinde`` |
    ``landratsamt``, drawn by the structure generator) that is used for ``decision_maker``
    instead of drawing it here (members of jointly answering Verbände get the district's
    majority answer). Returns one row per ``ags`` with :data:`ATTRIBUTE_COLUMNS`:
    ``district_joint`` (the district office answers once for the whole Verband),
    ``decision_maker`` (``im`` | ``municipal_staff`` | ``district_office``), target-group
    booleans ``ts_*`` and ``hs_*``, ``min_age`` (``ab18`` | ``ab16`` | ``ab14`` |
    ``unter14``), ``arrival`` (``keine`` | ``ab2015`` | ``ab2014`` | ``andere``),
    ``doc_mode`` (``digital`` | ``gemischt`` | ``papier``), ``software`` (``jobkraftwerk`` |
    ``enaio`` | ``tau`` | ``excel`` | ``eigenentwicklung`` | ``andere``; None on paper).
    """
    m = muni.reset_index(drop=True)
    out = pd.DataFrame({"ags": m["ags"].astype(str), "verband_id": m["verband_id"]})
    applied = m["applied"].fillna(False).astype(bool).to_numpy()
    a = m.loc[applied].copy()
    logpop = np.log(a["population"].clip(lower=1).astype(float))
    z_size = (logpop - logpop.mean()) / (logpop.std() or 1.0)
    no_prior = (a["capacity_before_vza"].fillna(0).astype(float) <= 0).astype(float)
    district = a["organisation"].eq("landratsamt")
    vid = a["verband_id"].fillna(a["ags"]).astype(str)

    # Verbände run by the district office: half answer once for all members
    dverb = sorted(vid[district].unique())
    u = rng.random(len(dverb))
    if dverb and "decides_methods" in a.columns and a["decides_methods"].notna().any():
        # prefer Verbände where the district office decides for (almost) every member, so that
        # the joint answer misreports few members
        other = a["decides_methods"].ne("landratsamt").groupby(vid).mean()
        rank = other.reindex(dverb).to_numpy() + 0.15 * u
        n_joint = int(round(DISTRICT_JOINT_SHARE * len(dverb)))
        joint_ids = set(np.array(dverb)[np.argsort(rank, kind="stable")[:n_joint]])
    else:
        joint_ids = set(np.array(dverb)[u < DISTRICT_JOINT_SHARE]) if dverb else set()
    joint = vid.isin(joint_ids) & district
    # blocks sharing answers: district-run members share the Verband's policy
    blocks = vid.where(district, a["ags"].astype(str))

    def noise(scale: float = 1.0) -> pd.Series:
        return pd.Series(rng.normal(0, scale, len(a)), index=a.index)

    attrs = pd.DataFrame(index=a.index)
    attrs["district_joint"] = joint

    # decision maker ------------------------------------------------------------------
    dm = pd.Series("district_office", index=a.index, dtype=object)
    # district-run: IM decide in 13%, the larger members of Verbände that answer per member
    dr = district & ~joint
    n_im_d = int(round(TARGETS["decision_maker_district"]["im"] * district.sum()))
    if dr.any() and n_im_d:
        sc = (z_size + noise(0.7))[dr]
        dm.loc[sc.sort_values(ascending=False).index[:n_im_d]] = "im"
    mr = ~district
    if mr.any():
        # shares among municipality-run units chosen so that the overall shares hit the
        # published ones (IM 31%, municipal staff < 10%) whatever the organisation mix
        n_all, n_mr = len(a), int(mr.sum())
        p_im = (TARGETS["decision_maker_overall_im"]["im"] * n_all - n_im_d) / n_mr
        p_im = float(np.clip(p_im, 0.0, 0.9))
        p_staff = float(np.clip(0.08 * n_all / n_mr, 0.0, 1.0 - p_im))
        shares = {"im": p_im, "municipal_staff": p_staff,
                  "district_office": 1.0 - p_im - p_staff}
        sc = (a["organisation"].eq("gemeinde").astype(float) * 0.8 + noise(1.0))[mr]
        dm[mr] = _allocate(sc, a.loc[mr, "ags"], shares, rng, 0.0)
    if "decides_methods" in a.columns and a["decides_methods"].notna().any():
        # the structure generator already drew who decides: use it (one source of truth);
        # a district office answering jointly reports its own answer for every member
        dm = a["decides_methods"].map(DECIDES_MAP).astype(object)
        if joint.any():
            major = dm[joint].groupby(vid[joint]).agg(
                lambda s: s.value_counts().sort_index().idxmax())
            dm[joint] = vid[joint].map(major)
    attrs["decision_maker"] = dm

    # target group: legal status and housing ------------------------------------------
    for col in TARGET_STATUS + HOUSING:
        share = TARGETS[col][True]
        sc = noise(1.0)
        if col == "hs_vorlaeufig":  # districts run the initial reception: more often included
            sc = sc + district.astype(float) * 0.5
        if col in ("ts_drittstaat", "ts_eu", "hs_andere"):
            sc = sc + 0.3 * z_size
        attrs[col] = _harmonise_joint(_bool_allocate(sc, blocks, share, rng, 0.5), blocks,
                                      joint).astype(bool)

    # minimum age: children more often in small municipalities and without prior capacity
    sc = -0.8 * z_size + 1.0 * no_prior + noise(0.8)
    attrs["min_age"] = _harmonise_joint(_allocate(sc, blocks, TARGETS["min_age"], rng, 0.5),
                                        blocks, joint)
    # arrival period: "ab 2014" more often where nobody counselled before
    sc = 1.2 * no_prior + noise(1.0)
    attrs["arrival"] = _harmonise_joint(_allocate(sc, blocks, TARGETS["arrival"], rng, 0.5),
                                        blocks, joint)
    # documentation mode and software: shared within Verbände
    sc = 0.4 * z_size + noise(1.0)
    attrs["doc_mode"] = _harmonise_joint(_allocate(sc, blocks, TARGETS["doc_mode"], rng, 0.8),
                                         blocks, joint)
    dig = attrs["doc_mode"].ne("papier")
    sw = pd.Series(None, index=a.index, dtype=object)
    if dig.any():
        sw[dig] = _allocate(noise(1.0)[dig], blocks[dig], TARGETS["software"], rng, 0.8)
        sw[dig] = _harmonise_joint(sw[dig], blocks[dig], joint[dig])
    attrs["software"] = sw

    res = out.join(attrs)
    res["district_joint"] = res["district_joint"].fillna(False).astype(bool)
    for col in TARGET_STATUS + HOUSING:
        res[col] = res[col].astype("boolean")
    for col in ("decision_maker", "min_age", "arrival", "doc_mode", "software"):
        res[col] = res[col].astype(object).where(res[col].notna(), None)
    return res[ATTRIBUTE_COLUMNS]


def marginals(attrs: pd.DataFrame, muni: pd.DataFrame) -> dict[str, float]:
    """Shares (in %) of the drawn attributes among applying municipalities, as published."""
    d = attrs.merge(muni[["ags", "organisation", "applied"]], on="ags")
    d = d[d["applied"].fillna(False).astype(bool)]
    district = d["organisation"].eq("landratsamt")
    out = {
        "decision_im": d["decision_maker"].eq("im").mean(),
        "decision_im_district": d.loc[district, "decision_maker"].eq("im").mean(),
        "decision_municipal_staff": d["decision_maker"].eq("municipal_staff").mean(),
    }
    for col in TARGET_STATUS + HOUSING:
        out[col] = d[col].astype(float).mean()
    for col in ("min_age", "arrival", "doc_mode"):
        for k, v in d[col].value_counts(normalize=True).items():
            out[f"{col}_{k}"] = v
    for k, v in d["software"].value_counts(normalize=True).items():
        out[f"software_{k}"] = v
    return {k: round(100 * float(v), 1) for k, v in out.items()}
