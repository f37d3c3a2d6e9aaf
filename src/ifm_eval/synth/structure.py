"""Programme structure of the stand-in data: Verbände, funding, IM posts and start months.

Everything here is built on the REAL municipality frame (1,101 municipalities, 44 Kreise)
and calibrated to the published figures in the BRIEF:

- 192 Verbände, 1,078 applicants, 23 non-applicants (small municipalities with no refugees
  on 15.09.2017); Stadtkreise apply alone, most Landkreise apply as a whole through the
  Landratsamt (about 65% of municipalities), larger towns and some
  Verwaltungsgemeinschaften apply alone; about half of the self-organised units employ
  their IMs through a private provider (Träger).
- Funded VZÄ proportional to refugees (which are proportional to population): 87% of
  municipalities at most 1 VZÄ, about 5% above 2 VZÄ; 72% one IM post, 22% two.
- Counselling capacity before/after with the published shares and change median/mean.
- IM start month per municipality planted first (quantile mapping of a latent score that
  depends on size, prior capacity, organisation and a Verband effect onto the published
  start-date distribution), then post start dates generated so that the OFFICIAL rule
  (first month in which at least half of the distinct posts serving the municipality had
  started) reproduces the planted month exactly.

Months are handled internally as integer month indices ``year * 12 + month - 1``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

#: Expected refugees in follow-up housing (AU, all ages and statuses) on 15.09.2017, state.
REFUGEES_AU_2017 = 135_000
N_VERBAENDE = 192
N_NON_APPLICANTS = 23
TARGET_LRA_SHARE = 0.65

#: Published/assumed distribution of the IM start month over applicant municipalities.
START_MONTH_WEIGHTS: dict[str, float] = {
    "2017-01": 1.5, "2017-02": 0.4, "2017-03": 0.4, "2017-04": 0.4, "2017-05": 0.4,
    "2017-06": 0.4, "2017-07": 2.0, "2017-08": 3.0, "2017-09": 8.0, "2017-10": 12.0,
    "2017-11": 12.0, "2017-12": 10.0, "2018-01": 6.0, "2018-02": 10.0, "2018-03": 12.0,
    "2018-04": 10.0, "2018-05": 6.0, "2018-06": 1.0, "2018-07": 1.0, "2018-08": 1.2,
    "2018-09": 0.8, "2018-10": 0.5, "2018-11": 0.3, "2018-12": 0.2, "2019-02": 0.3,
    "2019-05": 0.2,
}

TRAEGER_TEMPLATES = (
    "Caritasverband {k} e.V.",
    "Diakonisches Werk {k}",
    "AWO Kreisverband {k} e.V.",
    "DRK-Kreisverband {k} e.V.",
    "Internationaler Bund (IB) Süd e.V.",
    "Arbeiterwohlfahrt Bezirksverband Württemberg e.V.",
)

PLAN_BANDS = ("lt20", "20to80", "80to100")

MUNI_COLUMNS = [
    "ags", "name", "kreis", "kreis_name", "kreis_type", "rb", "population", "urbanisation",
    "alloc_weight", "verband_id", "verband_name", "applicant_type", "applied",
    "organisation", "traeger_name", "refugees_20170915", "refugees_20171109",
    "funded_vza", "n_posts", "capacity_before_vza", "capacity_after_vza",
    "capacity_change_vza", "capacity_change_cat", "start_month", "start_month_first_post",
    "start_month_all_posts", "plan_use_band", "decides_methods",
]


def month_index(period: str | pd.Period) -> int:
    p = pd.Period(period, freq="M")
    return p.year * 12 + p.month - 1


def index_to_period(idx: np.ndarray | int) -> Any:
    """Integer month index (or array, -1 = missing) to pandas Period[M] (NaT for -1)."""
    arr = np.atleast_1d(np.asarray(idx, dtype=np.int64))
    out = pd.PeriodIndex(
        [pd.Period(year=int(i // 12), month=int(i % 12) + 1, freq="M") if i >= 0 else pd.NaT
         for i in arr],
        freq="M",
    )
    return out if np.ndim(idx) else out[0]


def short_kreis(kreis_name: str) -> str:
    return kreis_name.replace(", Stadtkreis", "")


def clean_name(name: str) -> str:
    """'Ulm, Universitätsstadt' -> 'Ulm'."""
    return name.split(",")[0].strip()


@dataclass
class Structure:
    muni: pd.DataFrame
    verbaende: pd.DataFrame
    posts: pd.DataFrame
    calibration: dict[str, Any] = field(default_factory=dict)


def _gumbel_keys(rng: np.random.Generator, weights: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(weights, 1e-12)) + rng.gumbel(size=len(weights))


def _assign_verbaende(m: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Assign every municipality to a Verband (or none) with 192 Verbände in total."""
    n = len(m)
    kreise = m[["kreis", "kreis_type"]].drop_duplicates().sort_values("kreis")
    landkreise = kreise.loc[kreise["kreis_type"] != "Stadtkreis", "kreis"].to_numpy()
    stadtkreise = kreise.loc[kreise["kreis_type"] == "Stadtkreis", "kreis"].to_numpy()
    kreis_order = landkreise[rng.permutation(len(landkreise))]

    units = (
        m.loc[m["kreis"].isin(landkreise)]
        .groupby("gemeindeverband", sort=True)
        .agg(kreis=("kreis", "first"), pop=("population", "sum"), size=("ags", "size"))
    )
    unit_gumbel = rng.gumbel(size=len(units))
    log_pop = np.log(units["pop"].to_numpy())
    muni_key = pd.Series(_gumbel_keys(rng, 1.0 / m["population"].to_numpy() ** 1.5), index=m.index)

    best = None
    for n_nolra, expo in itertools.product(range(0, 12), (0.6, 0.8, 1.0, 1.2, 1.4, 1.7, 2.0)):
        unit_keys = pd.Series(expo * log_pop + unit_gumbel, index=units.index)
        nolra = set(kreis_order[:n_nolra])
        in_nolra = units["kreis"].isin(nolra)
        n_self_needed = N_VERBAENDE - len(stadtkreise) - (len(landkreise) - n_nolra) - int(in_nolra.sum())
        if n_self_needed < 0:
            continue
        cand = unit_keys[~in_nolra.to_numpy()].sort_values(ascending=False)
        chosen = set(cand.index[:n_self_needed]) | set(units.index[in_nolra.to_numpy()])
        lra_members = (~m["gemeindeverband"].isin(chosen)) & m["kreis"].isin(landkreise)
        share = (int(lra_members.sum()) - N_NON_APPLICANTS) / (n - N_NON_APPLICANTS)
        if best is None or abs(share - TARGET_LRA_SHARE) < abs(best[0] - TARGET_LRA_SHARE):
            best = (share, n_nolra, chosen)
    _, n_nolra, chosen = best
    nolra = set(kreis_order[:n_nolra])

    m = m.copy()
    m["verband_key"] = ""
    m["applicant_type"] = ""
    sk = m["kreis"].isin(stadtkreise)
    m.loc[sk, "verband_key"] = "SK" + m.loc[sk, "kreis"]
    m.loc[sk, "applicant_type"] = "Stadtkreis"
    self_unit = m["gemeindeverband"].isin(chosen)
    unit_size = m.groupby("gemeindeverband")["ags"].transform("size")
    m.loc[self_unit, "verband_key"] = "GV" + m.loc[self_unit, "gemeindeverband"]
    m.loc[self_unit, "applicant_type"] = np.where(unit_size[self_unit] > 1, "Verwaltungsgemeinschaft", "Gemeinde")
    lra = ~sk & ~self_unit
    m.loc[lra, "verband_key"] = "LK" + m.loc[lra, "kreis"]
    m.loc[lra, "applicant_type"] = "Landratsamt"
    assert not set(m.loc[lra, "kreis"]) & nolra

    # non-applicants: small LRA members, chosen with weight ~ population^-1.5
    cand = muni_key[lra & (m["population"] < 2500)].sort_values(ascending=False)
    non_app = cand.index[:N_NON_APPLICANTS]
    m["applied"] = True
    m.loc[non_app, "applied"] = False
    m.loc[non_app, ["verband_key", "applicant_type"]] = ""
    return m


def _month_cdf_targets() -> tuple[np.ndarray, np.ndarray]:
    months = np.array([month_index(k) for k in START_MONTH_WEIGHTS])
    w = np.array(list(START_MONTH_WEIGHTS.values()), dtype=float)
    return months, np.cumsum(w) / w.sum()


def _random_day(rng: np.random.Generator, month_idx: np.ndarray) -> np.ndarray:
    """A random date (datetime64[D]) inside each month index; mostly the 1st or 15th."""
    first = np.array(
        [np.datetime64(f"{i // 12:04d}-{i % 12 + 1:02d}-01") for i in month_idx], dtype="datetime64[D]"
    )
    kind = rng.random(len(month_idx))
    offset = np.where(kind < 0.6, 0, np.where(kind < 0.8, 14, rng.integers(0, 28, len(month_idx))))
    return first + offset.astype("timedelta64[D]")


def _z(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    return (x - x.mean()) / (x.std() + 1e-12)


#: Weights of the latent timing score (low = early start): municipality size (z of log
#: population), counselling capacity before IM (z), provider organisation, Landratsamt
#: organisation, the Verband's common effect, idiosyncratic noise.
TIMING_WEIGHTS = {"size": -0.6, "capacity": -0.4, "traeger": 0.6, "landratsamt": -0.2,
                  "verband": 0.9, "noise": 0.35}


#: Weight of the unobserved "dynamism" in the timing score of the violated design (high
#: dynamism = early start; the same dynamism makes untreated outcomes grow faster).
DYNAMISM_TIMING = -0.8


def dynamism(synth_cfg: dict[str, Any], seed: int, n: int) -> np.ndarray:
    """Per municipality the unobserved dynamism of the violated design (``synth.design:
    violated``: N(0, 1), from its own random stream, so the other draws of the world are the
    same as in the default design); zeros otherwise."""
    if synth_cfg.get("design", "conditional_parallel") != "violated":
        return np.zeros(n)
    from ifm_eval.synth import rng_for

    return rng_for(int(seed), "dynamism").normal(size=n)


def build_structure(frame: pd.DataFrame, cfg: dict[str, Any], rng: np.random.Generator) -> Structure:
    """Build Verbände, funding, capacities, posts and start months (see module docstring)."""
    m = frame.loc[~frame["unincorporated"]].sort_values("ags").reset_index(drop=True).copy()
    n = len(m)
    m = _assign_verbaende(m, rng)
    applied = m["applied"].to_numpy()

    # --- refugees (AU, all ages) on 15.09.2017 and 09.11.2017, proportional to population
    urb_factor = np.select([m["urbanisation"] == 1, m["urbanisation"] == 2], [1.15, 1.0], 0.9)
    w = m["population"].to_numpy() * urb_factor * np.exp(rng.normal(0, 0.25, n))
    w = np.where(applied, w, 0.0)
    m["alloc_weight"] = w / w.sum()
    lam = m["alloc_weight"].to_numpy() * REFUGEES_AU_2017
    ref = np.where(applied, np.maximum(1, rng.poisson(lam)), 0)
    m["refugees_20170915"] = ref.astype("int64")
    ref2 = np.where(applied, np.maximum(1, np.round(ref * np.exp(rng.normal(0.01, 0.04, n)))), 0)
    m["refugees_20171109"] = ref2.astype("int64")

    # --- funded VZÄ, proportional to refugees; constant set so that 87% are <= 1 VZÄ
    k = 1.0 / np.quantile(ref[applied], 0.87)
    funded = np.where(applied, np.maximum(0.01, np.round(ref * k, 2)), 0.0)
    m["funded_vza"] = funded
    t1 = np.quantile(funded[applied], 0.72)
    t2 = np.quantile(funded[applied], 0.94)
    n_posts = np.where(funded <= t1, 1, np.where(funded <= t2, 2, np.maximum(3, np.ceil(funded / 0.9))))
    m["n_posts"] = np.where(applied, n_posts, 0).astype("int64")

    # --- organisation and provider
    vkeys = sorted(set(m.loc[applied, "verband_key"]))
    v_traeger = {vk: (rng.random() < 0.5) for vk in vkeys}
    org = np.where(
        m["applicant_type"] == "Landratsamt",
        "landratsamt",
        np.where(m["verband_key"].map(v_traeger).fillna(False).astype(bool), "traeger", "gemeinde"),
    )
    m["organisation"] = np.where(applied, org, None)
    v_traeger_name = {}
    for vk in vkeys:
        kn = short_kreis(m.loc[m["verband_key"] == vk, "kreis_name"].iloc[0])
        tmpl = TRAEGER_TEMPLATES[int(rng.integers(len(TRAEGER_TEMPLATES)))]
        v_traeger_name[vk] = tmpl.format(k=kn)
    m["traeger_name"] = np.where(m["organisation"] == "traeger", m["verband_key"].map(v_traeger_name), None)

    # --- counselling capacity before / after (VZÄ)
    cap_rate = np.exp(rng.normal(np.log(0.5), 0.6, n))  # VZÄ per 100 refugees before IM
    has_before = rng.random(n) < 0.8
    before = np.where(has_before, np.round(ref / 100 * cap_rate, 2), 0.0)
    size_z = _z(np.log(m["population"].to_numpy()))
    # change category: more / unchanged / less, shares 68:15:9 among the 92% answering
    u = rng.random(n)
    p_less = 0.09 / 0.92 * np.exp(0.3 * _z(cap_rate)) / np.exp(0.3 * _z(cap_rate)).mean()
    p_same = np.full(n, 0.15 / 0.92)
    cat = np.where(u < p_less, "less", np.where(u < p_less + p_same, "unchanged", "more"))
    cat = np.where(before <= 0.0, np.where(cat == "less", "more", cat), cat)
    mult = np.exp(rng.normal(0.0, 0.6, n))
    raw_more = np.maximum(funded, 0.01) ** 0.8 * mult
    more = cat == "more"
    less = cat == "less"
    raw_less = np.minimum(before, np.maximum(0.05, before * rng.uniform(0.1, 0.5, n)))
    # scale so that the overall median change among applicants equals 0.25 VZÄ
    def _changes(c: float) -> np.ndarray:
        return np.where(more, np.maximum(0.05, np.round(c * raw_more, 2)),
                        np.where(less, -np.round(raw_less, 2), 0.0))
    lo, hi = 0.01, 20.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if np.median(_changes(mid)[applied]) < 0.25:
            lo = mid
        else:
            hi = mid
    change = np.where(applied, _changes(hi), 0.0)
    m["capacity_before_vza"] = np.where(applied, before, np.nan)
    m["capacity_after_vza"] = np.where(applied, np.round(before + change, 2), np.nan)
    m["capacity_change_vza"] = np.where(applied, change, np.nan)
    m["capacity_change_cat"] = np.where(applied, cat, None)

    # --- latent timing score (low = early) and planted start month by quantile mapping
    v_effect = {vk: rng.normal() for vk in vkeys}
    cap_z = _z(np.log1p(cap_rate * has_before))
    tw = TIMING_WEIGHTS
    dyn = dynamism(cfg.get("synth", {}), int(cfg.get("seed", 0)), n)
    m["dynamism"] = dyn
    score = DYNAMISM_TIMING * dyn + (
        tw["size"] * size_z
        + tw["capacity"] * cap_z
        + tw["traeger"] * (m["organisation"] == "traeger").to_numpy()
        + tw["landratsamt"] * (m["organisation"] == "landratsamt").to_numpy()
        + tw["verband"] * m["verband_key"].map(v_effect).fillna(0.0).to_numpy()
        + tw["noise"] * rng.normal(size=n)
    )

    # post groups: small single-post municipalities in multi-member Verbände share posts
    m["group"] = -1
    gid = 0
    for vk in vkeys:
        idx = m.index[(m["verband_key"] == vk)].to_numpy()
        open_group: list[int] = []
        open_sum = 0.0
        for i in idx:
            if m.at[i, "n_posts"] == 1 and funded[i] < 0.5 and len(idx) > 1:
                if open_group and (open_sum + funded[i] > 1.0 or len(open_group) >= 6):
                    m.loc[open_group, "group"] = gid
                    gid += 1
                    open_group, open_sum = [], 0.0
                open_group.append(i)
                open_sum += funded[i]
            else:
                m.at[i, "group"] = gid
                gid += 1
        if open_group:
            m.loc[open_group, "group"] = gid
            gid += 1
    groups = m.loc[applied].groupby("group")
    g_score = groups.apply(lambda d: score[d.index].mean(), include_groups=False)
    g_size = groups.size()
    order = g_score.sort_values(kind="stable").index
    cum = (g_size[order].cumsum() - g_size[order] / 2) / g_size.sum()
    months, cdf = _month_cdf_targets()
    g_month = pd.Series(months[np.searchsorted(cdf, cum.to_numpy(), side="left")], index=order)
    planted = m["group"].map(g_month).fillna(-1).astype("int64").to_numpy()
    planted = np.where(applied, planted, -1)

    # --- posts
    posts = _build_posts(m, funded, planted, rng, v_traeger_name)

    # --- official rules recomputed from posts
    rules = start_months_from_posts(posts)
    m["start_idx"] = planted
    for col, rule in (("start_month", "half_posts"), ("start_month_first_post", "first_post"),
                      ("start_month_all_posts", "all_posts")):
        idx = m["ags"].map(rules[rule]).fillna(-1).astype("int64").to_numpy()
        m[col] = index_to_period(idx)
    assert (m["ags"].map(rules["half_posts"]).fillna(-1).astype("int64").to_numpy() == planted).all(), \
        "official rule does not reproduce the planted start month"

    # --- integration-plan use and who decides on working methods
    u = rng.random(n)
    shift = np.where(m["organisation"] == "landratsamt", -0.05, 0.08)
    p80 = np.clip(0.31 + shift * 0.5, 0, 1)
    p20 = 0.23 - shift * 0.3
    m["plan_use_band"] = np.where(
        applied, np.where(u < p20, "lt20", np.where(u < 1 - p80, "20to80", "80to100")), None
    )
    u = rng.random(n)
    is_lra = (m["organisation"] == "landratsamt").to_numpy()
    p_im = np.where(is_lra, 0.13, 0.64)
    p_staff = np.where(is_lra, 0.02, 0.2)
    m["decides_methods"] = np.where(
        applied,
        np.where(u < p_im, "im", np.where(u < p_im + p_staff, "gemeinde", "landratsamt")),
        None,
    )

    # --- Verband table and names
    verbaende, vid = _verband_table(m, rng)
    m["verband_id"] = m["verband_key"].map(vid).where(applied, None)
    m["verband_name"] = m["verband_key"].map(verbaende.set_index("verband_key")["verband_name"]).where(applied, None)
    posts["verband_id"] = posts["verband_key"].map(vid)
    posts = posts.drop(columns="verband_key")
    verbaende = verbaende.drop(columns="verband_key")
    m["applicant_type"] = m["applicant_type"].where(applied, None)

    calib = calibration_figures(m)
    muni = m[MUNI_COLUMNS + ["start_idx", "dynamism"]].copy()
    return Structure(muni=muni, verbaende=verbaende, posts=posts, calibration=calib)


def _verband_table(m: pd.DataFrame, rng: np.random.Generator) -> tuple[pd.DataFrame, dict[str, str]]:
    rows = []
    app = m.loc[m["applied"]]
    for vk, d in app.groupby("verband_key", sort=True):
        first = d.iloc[0]
        kn = short_kreis(first["kreis_name"])
        at = first["applicant_type"]
        if at == "Landratsamt":
            name, applicant = f"Landkreis {kn}", f"Landratsamt {kn}"
        elif at == "Stadtkreis":
            name, applicant = f"Stadt {kn}", f"Stadt {kn}"
        elif at == "Verwaltungsgemeinschaft":
            gv = m.loc[m["gemeindeverband"] == first["gemeindeverband"], "gemeindeverband_name"].iloc[0]
            name, applicant = str(gv), str(gv)
        else:
            nm = clean_name(first["name"])
            kind = "Stadt" if "Stadt" in str(first["name"]) else "Gemeinde"
            name, applicant = nm, f"{kind} {nm}"
        rows.append({
            "verband_key": vk, "verband_name": name, "applicant": applicant,
            "applicant_type": at, "kreis": first["kreis"], "kreis_name": kn,
            "n_members": len(d), "funded_vza": round(float(d["funded_vza"].sum()), 2),
            "refugees_20170915": int(d["refugees_20170915"].sum()),
            "min_start_idx": int(d["start_idx"].min()),
        })
    v = pd.DataFrame(rows).sort_values(["kreis", "applicant_type", "verband_key"]).reset_index(drop=True)
    nums = np.arange(1, len(v) + 1) * 7 + 1000  # non-contiguous application numbers
    v["verband_id"] = [f"PIK-IM-{x:04d}" for x in nums]
    # approval: a few weeks before the earliest start, not before 27.04.2017 unless retroactive
    approve_month = np.maximum(v["min_start_idx"].to_numpy() - rng.integers(0, 3, len(v)), month_index("2017-05"))
    approve_month = np.minimum(approve_month, month_index("2018-12"))
    v["approved"] = _random_day(rng, approve_month)
    v["funding_eur"] = np.round(v["funded_vza"].to_numpy() * 62_500.0, 0)
    v = v.drop(columns="min_start_idx")
    return v, dict(zip(v["verband_key"], v["verband_id"], strict=True))


def _build_posts(m: pd.DataFrame, funded: np.ndarray, planted: np.ndarray, rng: np.random.Generator,
                 v_traeger_name: dict[str, str]) -> pd.DataFrame:
    """Original posts per group, successors, and start/end dates satisfying the official rule."""
    app = m.loc[m["applied"]]
    specs: list[dict[str, Any]] = []  # one per original post
    for g, d in app.groupby("group", sort=True):
        idx = d.index.to_numpy()
        if len(idx) > 1 or m.at[idx[0], "n_posts"] == 1:
            total = float(np.round(funded[idx].sum(), 2))
            vzas = [min(1.0, max(0.05, total))]
            shares = funded[idx] / funded[idx].sum()
            specs.append({"group": g, "idx": idx, "shares": shares, "vza": vzas[0]})
        else:
            i = idx[0]
            k = int(m.at[i, "n_posts"])
            base = np.full(k, np.floor(funded[i] / k * 100) / 100)
            base[: int(round((funded[i] - base.sum()) * 100))] += 0.01
            for x in base:
                specs.append({"group": g, "idx": idx, "shares": np.array([1.0]), "vza": float(min(1.0, round(x, 2)))})
    n_orig = len(specs)
    has_succ = rng.random(n_orig) < 0.12
    ends_alone = (~has_succ) & (rng.random(n_orig) < 0.04)

    # start months: per group, originals sorted; r = ceil(n_total/2)
    start_m = np.zeros(n_orig, dtype=np.int64)
    end_m = np.full(n_orig, -1, dtype=np.int64)
    by_group: dict[int, list[int]] = {}
    for j, s in enumerate(specs):
        by_group.setdefault(s["group"], []).append(j)
    lo_bound = month_index("2017-01")
    for _g, js in by_group.items():
        M = int(planted[specs[js[0]]["idx"][0]])
        js = [js[p] for p in rng.permutation(len(js))]
        n_total = len(js) + int(has_succ[js].sum())
        r = math.ceil(n_total / 2)
        for pos, j in enumerate(js):
            if pos < r - 1:
                start_m[j] = max(lo_bound, M - int(rng.integers(0, 5)))
            elif pos == r - 1:
                start_m[j] = M
            else:
                start_m[j] = M + int(rng.integers(0, 7))
    # ends (>= 2019-01 and at least 12 months after start, so successors start after the planted month)
    for j in np.flatnonzero(has_succ | ends_alone):
        lo = max(month_index("2019-01"), start_m[j] + 12)
        end_m[j] = int(rng.integers(lo, max(lo, month_index("2020-10")) + 1))
    rows = []
    post_no = 0
    start_day = _random_day(rng, start_m)
    end_day = _random_day(rng, np.where(end_m >= 0, end_m, start_m))
    verband_of = m["verband_key"]
    for j, s in enumerate(specs):
        vk = verband_of[s["idx"][0]]
        org = m.at[s["idx"][0], "organisation"]
        kn = short_kreis(m.at[s["idx"][0], "kreis_name"])
        if org == "landratsamt":
            if rng.random() < 0.15:
                employer, tname = "Freier Träger", v_traeger_name[vk]
            else:
                employer, tname = "Landratsamt", f"Landratsamt {kn}"
        elif org == "traeger":
            employer, tname = "Freier Träger", v_traeger_name[vk]
        else:
            at = m.at[s["idx"][0], "applicant_type"]
            if at == "Verwaltungsgemeinschaft":
                gv = m.at[s["idx"][0], "gemeindeverband_name"] if "gemeindeverband_name" in m else None
                tname = str(gv) if gv else f"Gemeinde {clean_name(m.at[s['idx'][0], 'name'])}"
            else:
                nm = m.at[s["idx"][0], "name"]
                tname = f"{'Stadt' if 'Stadt' in nm else 'Gemeinde'} {clean_name(nm)}"
            employer = "Gemeinde"
        post_no += 1
        chain = [(post_no, start_day[j], end_day[j] if end_m[j] >= 0 else None)]
        if has_succ[j]:
            post_no += 1
            gap = int(rng.integers(0, 4))
            sm = end_m[j] + gap
            sd = _random_day(rng, np.array([sm]))[0]
            if sd <= end_day[j]:
                sd = end_day[j] + np.timedelta64(1, "D")
            chain.append((post_no, sd, None))
        for pid, sd, ed in chain:
            for i, sh in zip(s["idx"], s["shares"], strict=True):
                rows.append({
                    "post_id": f"S{pid:05d}", "verband_key": vk, "ags": m.at[i, "ags"],
                    "name": m.at[i, "name"], "employer": employer, "traeger_name": tname,
                    "start": sd, "end": ed, "vza_post": s["vza"], "share": float(sh),
                    "successor_of": f"S{chain[0][0]:05d}" if pid != chain[0][0] else None,
                })
    posts = pd.DataFrame(rows)
    # shares: 4 decimals, summing exactly to 1 per post
    posts["share"] = posts["share"].round(4)
    last = ~posts["post_id"].duplicated(keep="last")
    s_other = posts.groupby("post_id")["share"].transform("sum") - posts["share"]
    posts.loc[last, "share"] = (1.0 - s_other[last]).round(4)
    posts["start"] = pd.to_datetime(posts["start"])
    posts["end"] = pd.to_datetime(posts["end"])
    return posts.reset_index(drop=True)


def start_months_from_posts(posts: pd.DataFrame) -> dict[str, pd.Series]:
    """Apply the three treatment rules to a posts table (columns post_id, ags, start).

    Returns integer month indices per AGS for ``half_posts`` (official: first month in which at
    least half of the distinct posts serving the municipality had started), ``first_post``
    and ``all_posts``.
    """
    p = posts[["post_id", "ags", "start"]].drop_duplicates(["post_id", "ags"]).copy()
    st = pd.to_datetime(p["start"])
    p["m"] = st.dt.year * 12 + st.dt.month - 1
    p = p.sort_values(["ags", "m", "post_id"])
    p["rank"] = p.groupby("ags").cumcount() + 1
    p["n"] = p.groupby("ags")["post_id"].transform("size")
    need = np.ceil(p["n"] / 2)
    half = p.loc[p["rank"] == need].set_index("ags")["m"]
    return {
        "half_posts": half,
        "first_post": p.groupby("ags")["m"].min(),
        "all_posts": p.groupby("ags")["m"].max(),
    }


def calibration_figures(m: pd.DataFrame) -> dict[str, Any]:
    """Published-figure analogues achieved by the structure (applicants unless stated)."""
    a = m.loc[m["applied"]]
    st = a["start_idx"].to_numpy()
    ch = a["capacity_change_vza"].to_numpy()
    before = a["capacity_before_vza"].to_numpy()
    rel = np.where(before > 0, ch / np.where(before > 0, before, 1), np.nan)
    ref_nov = a["refugees_20171109"].to_numpy()
    return {
        "n_municipalities": int(len(m)),
        "n_verbaende": int(a["verband_key"].nunique()),
        "n_applicants": int(len(a)),
        "n_non_applicants": int((~m["applied"]).sum()),
        "non_applicants_refugees_20170915": int(m.loc[~m["applied"], "refugees_20170915"].sum()),
        "share_started_by_2018_01": float((st <= month_index("2018-01")).mean()),
        "share_started_by_2018_05": float((st <= month_index("2018-05")).mean()),
        "share_started_h1_2017": float((st <= month_index("2017-06")).mean()),
        "share_started_from_2018_08": float((st >= month_index("2018-08")).mean()),
        "share_funded_le_1_vza": float((a["funded_vza"] <= 1.0).mean()),
        "share_funded_gt_2_vza": float((a["funded_vza"] > 2.0).mean()),
        "share_one_post": float((a["n_posts"] == 1).mean()),
        "share_two_posts": float((a["n_posts"] == 2).mean()),
        "share_capacity_more": float((a["capacity_change_cat"] == "more").mean()),
        "share_capacity_unchanged": float((a["capacity_change_cat"] == "unchanged").mean()),
        "share_capacity_less": float((a["capacity_change_cat"] == "less").mean()),
        "capacity_change_median_vza": float(np.median(ch)),
        "capacity_change_mean_vza": float(np.mean(ch)),
        "capacity_change_rel_median": float(np.nanmedian(rel)),
        "capacity_change_rel_mean": float(np.nanmean(rel)),
        "share_refugees_where_capacity_improved": float(ref_nov[ch > 0].sum() / ref_nov.sum()),
        "share_org_landratsamt": float((a["organisation"] == "landratsamt").mean()),
        "share_org_gemeinde": float((a["organisation"] == "gemeinde").mean()),
        "share_org_traeger": float((a["organisation"] == "traeger").mean()),
        "share_plan_use_80to100": float((a["plan_use_band"] == "80to100").mean()),
        "share_plan_use_20to80": float((a["plan_use_band"] == "20to80").mean()),
        "share_plan_use_lt20": float((a["plan_use_band"] == "lt20").mean()),
        "share_decides_im": float((a["decides_methods"] == "im").mean()),
        "share_decides_im_landratsamt_run": float(
            (a.loc[a["organisation"] == "landratsamt", "decides_methods"] == "im").mean()),
        "funded_vza_total": float(a["funded_vza"].sum()),
        "refugees_20170915_total": int(a["refugees_20170915"].sum()),
    }
