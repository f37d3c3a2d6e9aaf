"""Treatment timing and intensity per municipality.

IM start month (the cohort) from the posts table (:func:`start_months`):

- ``half_posts`` (official rule, VwV Integrationsmanagement as used by the evaluation):
  the first month in which at least half of the distinct posts serving the municipality
  had started (``Beginn`` <= month end), i.e. the month of the ceil(n/2)-th earliest start;
- ``first_post``: the month the first post started;
- ``all_posts``: the month by which all posts had started.

Municipalities of the reference frame that are not funding members (never applied) are
coded never treated (``NaT``); members without any post are also never treated, with a
flag and a lineage record. Intensity: funded VZÄ (member's ``VZÄ Anteil``) per 100
refugees on 15.09.2017 (funding sheet), share-weighted post VZÄ, and the organisation
(codes as in survey wave 3): ``landratsamt`` when the applicant is a Landratsamt (whoever
employs the posts), otherwise ``traeger`` when the posts (dominant by VZÄ) are employed by
a Freier Träger, else ``gemeinde``; the dominant employer is kept in ``employer_type``/``_name``.

The ``treatment`` job (:func:`run`) writes one table with all three rule variants as columns.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from ifm_eval.frame import load_frame
from ifm_eval.lineage import Lineage
from ifm_eval.stage_io import StageIO

log = logging.getLogger(__name__)

RULES = ("half_posts", "first_post", "all_posts")
#: employer of the posts -> organisation code (same codes as survey wave 3 and truth.json)
ORGANISATION = {"Landratsamt": "landratsamt", "Gemeinde": "gemeinde", "Freier Träger": "traeger"}


def start_months(posts: pd.DataFrame) -> pd.DataFrame:
    """Start month per municipality by the three rules from validated posts
    (columns ``ags, stellen_id, beginn``). Returns ``ags, n_posts, start_half_posts,
    start_first_post, start_all_posts`` (datetime64, first of month)."""
    p = posts[["ags", "stellen_id", "beginn"]].copy()
    p["bm"] = pd.to_datetime(p["beginn"]).dt.to_period("M").dt.to_timestamp()
    p = p.drop_duplicates(["ags", "stellen_id"]).sort_values(["ags", "bm", "stellen_id"], kind="stable")
    p["rank"] = p.groupby("ags").cumcount() + 1
    n = p.groupby("ags")["stellen_id"].transform("size")
    k = np.ceil(n / 2).astype("int64")
    half = p.loc[p["rank"] == k].set_index("ags")["bm"]
    g = p.groupby("ags")["bm"]
    out = pd.DataFrame({"n_posts": p.groupby("ags").size(), "start_half_posts": half,
                        "start_first_post": g.min(), "start_all_posts": g.max()})
    out.index.name = "ags"
    return out.reset_index()


def build_treatment(cfg: dict[str, Any], frame: pd.DataFrame, members: pd.DataFrame,
                    posts: pd.DataFrame, lineage: Lineage) -> pd.DataFrame:
    """One row per municipality of the frame: cohort (three rules), intensity, organisation."""
    rule = cfg["panel"].get("treatment_rule", "half_posts")
    base = frame[["ags", "kreis", "population"]].copy()
    base["ags"] = base["ags"].astype("str")
    lineage.add("treatment", "frame", len(base), len(base), "read",
                "municipalities of the reference frame (one treatment row each)")
    mem = members[["ags", "antrag_nr", "verband", "art_antragsteller",
                   "refugees_2017_09_15", "vza_share"]].copy()
    mem["ags"] = mem["ags"].astype("str")
    t = base.merge(mem, on="ags", how="left", validate="one_to_one")
    t["applied"] = t["antrag_nr"].notna()
    n_never = int((~t["applied"]).sum())
    lineage.add("treatment", "never applied", len(t), len(t), "recode",
                f"{n_never} municipalities of the frame are not funding members: coded never "
                "treated (cohort NaT, g = 0), funded VZÄ 0", n_affected=n_never)

    p = posts.copy()
    p["ags"] = p["ags"].astype("str")
    sm = start_months(p)
    t = t.merge(sm, on="ags", how="left", validate="one_to_one")
    t["n_posts"] = t["n_posts"].fillna(0).astype("int64")

    not_member = ~p["ags"].isin(mem["ags"])
    t["posts_without_application"] = t["ags"].isin(p.loc[not_member, "ags"])
    if not_member.any():
        k = int(t["posts_without_application"].sum())
        lineage.add("treatment", "posts of non-members", len(t), len(t), "flag",
                    f"{k} municipalities have IM posts but are not funding members; treated by "
                    "their posts, flag posts_without_application", n_affected=k)
    mism = p.merge(mem[["ags", "antrag_nr"]], on="ags", how="inner", suffixes=("", "_member"))
    mism = mism.loc[mism["antrag_nr"] != mism["antrag_nr_member"]]
    if len(mism):
        lineage.add("treatment", "post Antrags-Nr.", len(p), len(p), "flag",
                    f"{len(mism)} post rows carry a different Antrags-Nr. than the municipality's "
                    f"funding membership (first: post {mism['stellen_id'].iloc[0]}); membership wins",
                    n_affected=len(mism))
    no_posts = t["applied"] & (t["n_posts"] == 0)
    t["applied_no_posts"] = no_posts
    if no_posts.any():
        lineage.add("treatment", "members without posts", len(t), len(t), "recode",
                    f"{int(no_posts.sum())} funding members have no IM post in im_stellen.csv: "
                    f"coded never treated (first: {t.loc[no_posts, 'ags'].iloc[0]})",
                    n_affected=int(no_posts.sum()))

    for r in RULES:
        t[f"cohort_{r}"] = pd.to_datetime(t[f"start_{r}"]).astype("datetime64[ns]")
    t["cohort_month"] = t[f"cohort_{rule}"]
    t["treatment_rule"] = rule
    t["never_treated"] = t["cohort_month"].isna()

    # intensity
    t["funded_vza"] = t["vza_share"].fillna(0.0).astype("float64")
    t["refugees_2017_09_15"] = t["refugees_2017_09_15"].fillna(0).astype("float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        t["vza_per_100_refugees"] = np.where(t["refugees_2017_09_15"] > 0,
                                             100 * t["funded_vza"] / t["refugees_2017_09_15"], np.nan)
    p["vza_weighted"] = p["vza_post"] * p["share"]
    t["posts_vza"] = t["ags"].map(p.groupby("ags")["vza_weighted"].sum()).fillna(0.0).astype("float64")
    dom = (p.sort_values(["ags", "vza_weighted", "stellen_id"], ascending=[True, False, True], kind="stable")
           .drop_duplicates("ags").set_index("ags"))
    t["employer_type"] = t["ags"].map(dom["employer_type"]).astype("str")
    t["employer_name"] = t["ags"].map(dom["employer_name"]).astype("str")
    # organisation: a district office (Landratsamt) applicant organises IM for its members
    # (even where it contracts a provider); otherwise the municipality itself, through a
    # private provider when the posts are employed by a Freier Träger
    org = t["employer_type"].map(ORGANISATION)
    org = org.where(t["art_antragsteller"] != "Landratsamt", "landratsamt")
    t["organisation"] = org.where(t["n_posts"] > 0).astype("str")
    t["verband_id"] = t["antrag_nr"].astype("str")
    t = t.drop(columns=[f"start_{r}" for r in RULES] + ["vza_share", "population"])
    cols = ["ags", "kreis", "applied", "verband_id", "verband", "art_antragsteller",
            "n_posts", "cohort_month", "treatment_rule", "never_treated",
            *[f"cohort_{r}" for r in RULES], "refugees_2017_09_15", "funded_vza",
            "vza_per_100_refugees", "posts_vza", "employer_type", "employer_name",
            "organisation", "applied_no_posts", "posts_without_application"]
    t = t[cols].sort_values("ags").reset_index(drop=True)
    for c in ("verband", "art_antragsteller", "kreis", "treatment_rule"):
        t[c] = t[c].astype("str")
    lineage.add("treatment", "treatment table", len(base), len(t), "read",
                f"cohort by rule {rule}: {int((~t['never_treated']).sum())} treated, "
                f"{int(t['never_treated'].sum())} never treated")
    return t


def run(cfg: dict[str, Any], io: StageIO) -> pd.DataFrame:
    """The ``treatment`` job. Inputs ``frame``, ``members`` (funding members), ``posts``;
    outputs ``treatment`` and ``lineage``."""
    io.require(inputs=("frame", "members", "posts"), outputs=("treatment", "lineage"))
    lineage = Lineage("treatment")
    t = build_treatment(cfg, load_frame(io.input("frame")), pd.read_parquet(io.input("members")),
                        pd.read_parquet(io.input("posts")), lineage)
    out = io.output("treatment")
    t.to_parquet(out, index=False)
    lineage.write(io.output("lineage"))
    log.info("treatment: %d municipalities, %d treated (%s) -> %s", len(t),
             int((~t["never_treated"]).sum()), t["treatment_rule"].iloc[0], out)
    return t
