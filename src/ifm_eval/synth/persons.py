"""Person-level data-generating process of the stand-in data (vectorised over persons).

Refugees in the target group (adults from the main asylum countries) are allocated to the
municipalities in proportion to the structure's allocation weights (proportional to
population; the 23 non-applicants never house anyone), move into follow-up housing (AU) in
waves peaking 2015-16, and move out (Auszug) at a constant monthly hazard.

While in AU, three processes run month by month (a loop over months, never over persons):

- language: B1 certificate, absorbing; hazard rises with time since arrival in Germany;
- training: spells of vocational training (Ausbildung) or further training (Weiterbildung)
  with type-specific exit hazards;
- employment: spells of employment subject to social insurance (SvB) with exits; the entry
  hazard is higher with B1.

Hazards depend on time since arrival (so composition drives trends), on urbanisation and
size, with calendar-time paths that differ by urbanisation (so only conditional parallel
trends hold), and on a municipality random effect.

Treatment: after the municipality's IM start month (and ``anticipation_months`` before it)
the ENTRY hazards are multiplied by ``max_hazard_ratio ** (ramp(e) * g_m)`` where ``ramp``
builds up linearly over ``ramp_months`` and ``g_m = max(0, 1 + cohort_gradient * (months
before 2018-01)/12 + capacity_gradient * (capacity increase per 100 refugees - mean) + the
heterogeneity terms of :func:`effect_gradients`)`` (integration-plan use, organisation, size
class, target-group breadth, funded VZÄ per 100 refugees; each centred on its mean over the
treated municipalities and zero unless configured).
Every transition uses the inverse-CDF method on the piecewise-constant monthly hazard with
per-person exponential thresholds that are SHARED between the observed (treated) and the
untreated counterfactual path (common random numbers). With ``max_hazard_ratio`` 1.0 both
paths are identical, so the true effect is exactly zero.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .structure import month_index

log = logging.getLogger(__name__)

#: Persons in the target group ever in AU 2013-2020, full state (scale 1.0).
N_PERSONS_FULL = 125_000
SIM_START = month_index("2013-01")
SIM_END = month_index("2020-12")  # inclusive
N_MONTHS = SIM_END - SIM_START + 1
PANEL_START = month_index("2015-01")
PANEL_OFFSET = PANEL_START - SIM_START
N_PANEL = SIM_END - PANEL_START + 1
REF_COHORT = month_index("2018-01")
MAX_SPELLS = 8
OUTCOMES = ("language", "training", "employment")

ORIGINS = (
    ("Syrien", 0.42), ("Afghanistan", 0.15), ("Irak", 0.13), ("Eritrea", 0.07),
    ("Nigeria", 0.07), ("Iran", 0.05), ("Pakistan", 0.04), ("Somalia", 0.04), ("Gambia", 0.03),
)

#: Event codes of the person-level export.
EV_ZUZUG, EV_AUSZUG, EV_B1, EV_AUSB, EV_WEITER, EV_TR_END, EV_SVB, EV_SVB_END = range(8)


@dataclass
class PersonsResult:
    persons: pd.DataFrame  # one row per person: pid, muni (index), birth_year, sex, origin, a, x
    events: pd.DataFrame  # observed events: pid, t (month index), code
    counts: dict[str, np.ndarray]  # name -> [n_muni, N_PANEL] stocks (observed and cf)
    entries_q: dict[str, np.ndarray]  # observed entries per muni and month [n_muni, N_MONTHS]
    hazard_ratio: dict[str, np.ndarray]  # outcome -> [n_muni, N_MONTHS]


def _arrival_weights() -> np.ndarray:
    """Monthly weights of moving into AU, 2013-01 .. 2020-12 (peak 2016)."""
    by_half = {
        (2013, 1): 0.3, (2013, 2): 0.4, (2014, 1): 0.6, (2014, 2): 1.0, (2015, 1): 2.0,
        (2015, 2): 5.0, (2016, 1): 8.0, (2016, 2): 7.0, (2017, 1): 4.0, (2017, 2): 2.5,
        (2018, 1): 1.6, (2018, 2): 1.3, (2019, 1): 1.0, (2019, 2): 0.9, (2020, 1): 0.6,
        (2020, 2): 0.6,
    }
    w = np.array([by_half[(SIM_START // 12 + i // 12 + (SIM_START % 12 + i % 12) // 12, 1 + (i % 12 >= 6))]
                  for i in range(N_MONTHS)], dtype=float)
    return w / w.sum()


def _per100_treated(muni: pd.DataFrame, vza: str, refugees: str) -> np.ndarray:
    """``vza`` (NaN as 0) per 100 refugees of column ``refugees`` (at least 1) for the treated
    municipalities; 0 for the untreated."""
    treated = muni["start_idx"].to_numpy() >= 0
    return np.where(
        treated,
        muni[vza].fillna(0).to_numpy(float) / np.maximum(muni[refugees].to_numpy(float), 1) * 100,
        0.0,
    )


def capacity_increase_per100(muni: pd.DataFrame) -> np.ndarray:
    """Counselling-capacity increase (VZÄ) per 100 refugees (09.11.2017); 0 for untreated."""
    return _per100_treated(muni, "capacity_change_vza", "refugees_20171109")


#: Integration-plan bands as an ordinal score (``plan_gradient`` per band step).
PLAN_SCORE = {"lt20": 0.0, "20to80": 1.0, "80to100": 2.0}


def dose_per100(muni: pd.DataFrame) -> np.ndarray:
    """Funded VZÄ per 100 refugees (15.09.2017, the funding sheet's count); 0 for untreated."""
    return _per100_treated(muni, "funded_vza", "refugees_20170915")


def effect_moderators(muni: pd.DataFrame) -> dict[str, np.ndarray]:
    """The TRUE municipality attributes the planted effect can depend on (not the survey
    answers, which have non-response and misreports): ``plan`` (score 0/1/2 of
    :data:`PLAN_SCORE`, NaN without a band), ``organisation`` (label), ``size_class`` (0/1/2,
    :mod:`ifm_eval.size_class`), ``target_obliged`` (1.0 if the target group includes persons
    obliged to leave, ``muni.target_obliged`` drawn with the survey attributes; NaN if
    unknown), ``dose`` (:func:`dose_per100`), ``capacity`` (:func:`capacity_increase_per100`)."""
    from ifm_eval.size_class import size_class_index

    obliged = (muni["target_obliged"].astype("float64").to_numpy() if "target_obliged" in muni
               else np.full(len(muni), np.nan))
    return {
        "plan": muni["plan_use_band"].map(PLAN_SCORE).astype("float64").to_numpy(),
        "organisation": muni["organisation"].astype(object).to_numpy(),
        "size_class": size_class_index(muni["population"].to_numpy(float)).astype(float),
        "target_obliged": obliged,
        "dose": dose_per100(muni),
        "capacity": capacity_increase_per100(muni),
    }


def _centred(x: np.ndarray, treated: np.ndarray) -> np.ndarray:
    """``x`` minus its mean over the treated units with a value; 0 where ``x`` is missing."""
    ok = treated & ~np.isnan(x)
    mean = x[ok].mean() if ok.any() else 0.0
    return np.where(np.isnan(x), 0.0, x - mean)


def effect_gradients(muni: pd.DataFrame, synth_cfg: dict[str, Any]) -> dict[str, np.ndarray]:
    """Per outcome and municipality the relative effect size g_m (1 = the average treated
    municipality; 0 for the untreated):

        g_m = max(0, 1 + cohort_gradient * (2018-01 - start) / 12
                    + capacity_gradient * (capacity increase per 100 refugees - mean)
                    + plan_gradient * (plan band score - mean)
                    + sum_o organisation_effects[o] * (1[organisation = o] - share_o)
                    + size_class_gradient * (size class - mean)
                    + target_group_gradient * (1[target group includes obliged to leave] - share)
                    + dose_gradient * (funded VZÄ per 100 refugees - mean)),

    means and shares over the treated municipalities (so the average effect size stays 1
    whatever the heterogeneity). Every coefficient defaults to 0; with all of them 0 the
    effect is homogeneous up to the ramp."""
    start = muni["start_idx"].to_numpy()
    treated = start >= 0
    mod = effect_moderators(muni)
    org = mod["organisation"]
    out = {}
    for o in OUTCOMES:
        p = synth_cfg.get("effects", {}).get(o, {})
        g = 1.0 + float(p.get("cohort_gradient", 0.0)) * (REF_COHORT - start) / 12.0
        terms = (("capacity_gradient", "capacity"), ("plan_gradient", "plan"),
                 ("size_class_gradient", "size_class"), ("target_group_gradient", "target_obliged"),
                 ("dose_gradient", "dose"))
        for key, name in terms:
            coef = float(p.get(key, 0.0))
            if coef:
                g = g + coef * _centred(mod[name], treated)
        for k, coef in (p.get("organisation_effects") or {}).items():
            if float(coef):
                g = g + float(coef) * _centred((org == k).astype(float), treated)
        out[o] = np.where(treated, np.maximum(0.0, g), 0.0)
    return out


def treatment_hazard_ratios(muni: pd.DataFrame, synth_cfg: dict[str, Any]) -> dict[str, np.ndarray]:
    """Hazard multiplier per outcome, municipality and simulated month (1.0 = untreated)."""
    start = muni["start_idx"].to_numpy()
    treated = start >= 0
    ant = int(synth_cfg.get("anticipation_months", 0))
    t = np.arange(SIM_START, SIM_END + 1)
    e = t[None, :] - start[:, None]
    grads = effect_gradients(muni, synth_cfg)
    out = {}
    for o in OUTCOMES:
        p = synth_cfg.get("effects", {}).get(o, {})
        hr = float(p.get("max_hazard_ratio", 1.0))
        ramp = int(p.get("ramp_months", 12))
        g = grads[o]
        frac = np.clip((e + ant + 1) / (ramp + ant), 0.0, 1.0)
        frac = np.where(treated[:, None] & (e >= -ant), frac, 0.0)
        out[o] = np.power(hr, frac * g[:, None]) if hr != 1.0 else np.ones_like(frac)
    return out


@dataclass(frozen=True)
class UntreatedPaths:
    """How the untreated transition hazards depend on municipality characteristics:
    ``size_gradient`` multiplies a hazard by ``1 + size_gradient * (log10 population - 3.7)``;
    ``urbanisation_trends`` gives the three urbanisation classes their own calendar-time
    paths (levels and slopes); ``urbanisation_arrivals`` lets cities fill earlier (arrival
    into AU shifted by 2 / 1 / 0 months for urbanisation 1 / 2 / 3)."""

    size_gradient: float = 0.06
    urbanisation_trends: bool = True
    urbanisation_arrivals: bool = True
    #: hazard multiplier exp(dynamism_effect * dynamism) (the violated design's unobserved
    #: growth, correlated with the start month; 0 in the default design)
    dynamism_effect: float = 0.0


#: The stand-in designs (``synth.design``): conditional_parallel = the untreated paths
#: depend on urbanisation and size (observed, conditioned on by the main specification)
#: and on idiosyncratic municipality effects independent of the start; violated = in
#: addition an unobserved dynamism speeds up every untreated transition and makes the
#: municipality start earlier (parallel trends fail conditional on the covariates).
DESIGNS = {
    "conditional_parallel": UntreatedPaths(),
    "violated": UntreatedPaths(dynamism_effect=0.25),
}


def untreated_paths(synth_cfg: dict[str, Any]) -> UntreatedPaths:
    """The untreated-path parameters of the configured design (:data:`DESIGNS`)."""
    return DESIGNS[synth_cfg.get("design", "conditional_parallel")]


def _ramp(d: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return np.clip((d - lo) / (hi - lo), 0.0, 1.0)


def simulate_persons(muni: pd.DataFrame, cfg: dict[str, Any], rng: np.random.Generator) -> PersonsResult:
    """Simulate persons, their observed and counterfactual paths, and municipality stocks."""
    synth_cfg = cfg.get("synth", {})
    scale = float(synth_cfg.get("scale", 1.0))
    n_muni = len(muni)
    n = int(round(N_PERSONS_FULL * scale))
    counts_m = rng.multinomial(n, muni["alloc_weight"].to_numpy() / muni["alloc_weight"].sum())
    mi = np.repeat(np.arange(n_muni), counts_m)
    urb = muni["urbanisation"].fillna(2).astype(int).to_numpy()
    urb_i = urb[mi]
    up = untreated_paths(synth_cfg)

    # --- arrival into AU, time since arrival in Germany, move-out
    a = rng.choice(N_MONTHS, size=n, p=_arrival_weights())
    if up.urbanisation_arrivals:
        a = np.maximum(0, a - np.where(urb_i == 1, 2, np.where(urb_i == 2, 1, 0)))  # cities fill earlier
    lag = 3 + rng.geometric(1 / 8, size=n)
    x = a + rng.geometric(0.012, size=n)  # first month no longer in AU (>= N_MONTHS: censored)
    order = np.lexsort((a, mi))
    mi, a, lag, x, urb_i = mi[order], a[order], lag[order], x[order], urb_i[order]
    age0 = np.minimum(64, 18 + rng.gamma(2.0, 6.0, n)).astype(int)
    arr_year = (SIM_START + a) // 12
    birth_year = arr_year - age0
    sex = rng.choice(np.array(["m", "w", "d"]), size=n, p=[0.68, 0.3195, 0.0005])
    names, probs = zip(*ORIGINS, strict=True)
    origin = rng.choice(np.array(names), size=n, p=np.array(probs) / sum(probs))
    age_c = age0 - 30

    # --- municipality random effects and size
    logpop = np.log10(muni["population"].to_numpy())
    size_f = (1 + up.size_gradient * (logpop - 3.7)) * np.exp(
        up.dynamism_effect * muni["dynamism"].to_numpy() if "dynamism" in muni else 0.0)
    re = {o: np.exp(rng.normal(0, 0.15, n_muni)) for o in OUTCOMES}
    female = sex == "w"
    base_L = 0.022 * size_f[mi] * re["language"][mi] * np.exp(-0.025 * age_c) * np.where(female, 0.85, 1.0)
    base_T = 0.007 * size_f[mi] * re["training"][mi] * np.exp(-0.06 * np.maximum(age0 - 22, 0))
    base_E = 0.011 * size_f[mi] * re["employment"][mi] * np.where(female, 0.6, 1.15) * np.exp(-0.01 * age_c)
    p_ausb = np.clip(0.75 - 0.02 * (age0 - 20), 0.15, 0.8)

    # --- thresholds (common random numbers)
    E_L = rng.exponential(size=n)
    E_T = rng.exponential(size=(n, MAX_SPELLS))
    X_T = rng.exponential(size=(n, MAX_SPELLS))
    U_T = rng.random(size=(n, MAX_SPELLS))
    E_E = rng.exponential(size=(n, MAX_SPELLS))
    X_E = rng.exponential(size=(n, MAX_SPELLS))

    hr = treatment_hazard_ratios(muni, synth_cfg)
    # The monthly loop runs over persons sorted by arrival (stable), on the prefix of those
    # who have arrived: the same arithmetic per person as over everyone, about half the
    # work. Events are mapped back to the persons' original indices. Without any planted
    # effect (every hazard ratio 1) the counterfactual path equals the observed one and is
    # copied instead of simulated.
    perm = np.argsort(a, kind="stable")
    n_arrived = np.searchsorted(a[perm], np.arange(N_MONTHS), side="right")
    a_p, x_p, lag_p, mi_p, urb_p = a[perm], x[perm], lag[perm], mi[perm], urb_i[perm]
    bL, bT, bE, pA = base_L[perm], base_T[perm], base_E[perm], p_ausb[perm]
    E_L, E_T, X_T, U_T, E_E, X_E = E_L[perm], E_T[perm], X_T[perm], U_T[perm], E_E[perm], X_E[perm]
    no_effect = all(np.all(h == 1.0) for h in hr.values())
    versions = (0,) if no_effect else (0, 1)

    def urb_sel(m: int) -> list[np.ndarray]:
        u = urb_p[:m]
        return ([u == 1, u == 2, u == 3] if up.urbanisation_trends
                else [np.zeros(m, bool), np.ones(m, bool), np.zeros(m, bool)])  # all as class 2

    def cal_L(t_abs: int, sel: list[np.ndarray]) -> np.ndarray:
        yrs = (t_abs - month_index("2017-01")) / 12
        course = min(1.0, 0.55 + 0.25 * max(0.0, (t_abs - month_index("2015-01")) / 12))
        return course * np.select(sel, [1.2 - 0.04 * yrs, 1.0, 0.8 + 0.06 * yrs])

    def cal_E(t_abs: int, sel: list[np.ndarray]) -> tuple[np.ndarray, float]:
        yrs = (t_abs - month_index("2017-01")) / 12
        econ = 0.85 + 0.1 * min(max(yrs + 2, 0), 4)
        exit_h = 0.018
        if month_index("2020-04") <= t_abs <= month_index("2020-06"):
            econ *= 0.35
            exit_h = 0.06
        elif t_abs > month_index("2020-06"):
            econ *= 0.75
        return econ * np.select(sel, [1.1 - 0.03 * yrs, 1.0, 0.85 + 0.08 * yrs]), exit_h

    def cal_T(t_abs: int, sel: list[np.ndarray]) -> np.ndarray:
        yrs = (t_abs - month_index("2017-01")) / 12
        return np.select(sel, [1.1, 1.0, 0.85 + 0.05 * yrs])

    arange_n = np.arange(n)
    # state per version (arrival order): 0 = observed (treated), 1 = counterfactual
    cumL = np.zeros((2, n))
    b1 = np.zeros((2, n), dtype=bool)
    tr_in = np.zeros((2, n), dtype=bool)
    tr_type = np.zeros((2, n), dtype=np.int8)  # 1 Ausbildung, 2 Weiterbildung
    tr_k = np.zeros((2, n), dtype=np.int64)
    tr_cum = np.zeros((2, n))
    em_in = np.zeros((2, n), dtype=bool)
    em_k = np.zeros((2, n), dtype=np.int64)
    em_cum = np.zeros((2, n))

    stock_names = ("refugees", "b1", "b1_cf", "ausbildung", "weiterbildung", "ausbildung_cf",
                   "weiterbildung_cf", "svb", "svb_cf")
    counts = {k: np.zeros((n_muni, N_PANEL), dtype=np.int64) for k in stock_names}
    entries = {k: np.zeros((n_muni, N_MONTHS), dtype=np.int64) for k in ("b1", "training", "svb", "zuzug")}
    ev_p: list[np.ndarray] = [arange_n, arange_n[x < N_MONTHS]]
    ev_t: list[np.ndarray] = [a, x[x < N_MONTHS]]
    ev_c: list[np.ndarray] = [np.full(n, EV_ZUZUG), np.full(int((x < N_MONTHS).sum()), EV_AUSZUG)]

    def record(mask: np.ndarray, t: int, code: int) -> None:
        idx = np.sort(perm[np.flatnonzero(mask)])  # original person indices, ascending
        if idx.size:
            ev_p.append(idx)
            ev_t.append(np.full(idx.size, t))
            ev_c.append(np.full(idx.size, code))

    for t in range(N_MONTHS):
        t_abs = SIM_START + t
        m = int(n_arrived[t])
        ar = arange_n[:m]
        present = t < x_p[:m]  # arrived (a <= t: the prefix) and not yet left
        d = (t - a_p[:m] + lag_p[:m]).astype(float)
        mi_t = mi_p[:m]
        hrL = hr["language"][mi_t, t]
        hrT = hr["training"][mi_t, t]
        hrE = hr["employment"][mi_t, t]
        sel = urb_sel(m)
        hL = bL[:m] * _ramp(d, 4, 24) * cal_L(t_abs, sel)
        hT = bT[:m] * _ramp(d, 3, 24) * cal_T(t_abs, sel)
        econ, exit_E = cal_E(t_abs, sel)
        hE0 = bE[:m] * _ramp(d, 6, 40) * econ
        for v in versions:
            cL, B1, TI, TT, TK, TC = cumL[v, :m], b1[v, :m], tr_in[v, :m], tr_type[v, :m], tr_k[v, :m], tr_cum[v, :m]
            EI, EK, EC = em_in[v, :m], em_k[v, :m], em_cum[v, :m]
            # language (absorbing)
            act = present & ~B1
            cL += np.where(act, hL * (hrL if v == 0 else 1.0), 0.0)
            newb1 = act & (cL >= E_L[:m])
            B1 |= newb1
            # training: exits first, then entries
            kk = np.minimum(TK, MAX_SPELLS - 1)
            exit_rate = np.where(TT == 1, 1 / 30, 1 / 6)
            insp = present & TI
            TC += np.where(insp, exit_rate, 0.0)
            tr_exit = insp & (X_T[ar, kk] <= TC)
            can_enter = present & ~TI & (TK < MAX_SPELLS)
            TC += np.where(can_enter, hT * (hrT if v == 0 else 1.0), 0.0)
            tr_enter = can_enter & (E_T[ar, kk] <= TC)
            new_type = np.where(U_T[ar, kk] < pA[:m], 1, 2).astype(np.int8)
            TI[:] = (TI & ~tr_exit) | tr_enter
            TT[:] = np.where(tr_enter, new_type, TT)
            TC[:] = np.where(tr_exit | tr_enter, 0.0, TC)
            TK += tr_exit  # next spell uses the next thresholds
            # employment
            kk = np.minimum(EK, MAX_SPELLS - 1)
            insp = present & EI
            EC += np.where(insp, exit_E, 0.0)
            em_exit = insp & (X_E[ar, kk] <= EC)
            can_enter = present & ~EI & (EK < MAX_SPELLS)
            hE = hE0 * np.where(B1, 1.6, 1.0) * np.where(TI, 0.3, 1.0)
            EC += np.where(can_enter, hE * (hrE if v == 0 else 1.0), 0.0)
            em_enter = can_enter & (E_E[ar, kk] <= EC)
            EI[:] = (EI & ~em_exit) | em_enter
            EC[:] = np.where(em_exit | em_enter, 0.0, EC)
            EK += em_exit
            if v == 0:
                record(newb1, t, EV_B1)
                record(tr_exit, t, EV_TR_END)
                record(tr_enter & (new_type == 1), t, EV_AUSB)
                record(tr_enter & (new_type == 2), t, EV_WEITER)
                record(em_exit, t, EV_SVB_END)
                record(em_enter, t, EV_SVB)
                entries["b1"][:, t] = np.bincount(mi_t[newb1], minlength=n_muni)
                entries["training"][:, t] = np.bincount(mi_t[tr_enter], minlength=n_muni)
                entries["svb"][:, t] = np.bincount(mi_t[em_enter], minlength=n_muni)
                entries["zuzug"][:, t] = np.bincount(mi_t[a_p[:m] == t], minlength=n_muni)
        if t >= PANEL_OFFSET:
            j = t - PANEL_OFFSET
            counts["refugees"][:, j] = np.bincount(mi_t[present], minlength=n_muni)
            for v, suf in ((0, ""), (1, "_cf")):
                w = v if v in versions else 0  # no effect: the counterfactual is the observed path
                counts["b1" + suf][:, j] = np.bincount(mi_t[present & b1[w, :m]], minlength=n_muni)
                counts["ausbildung" + suf][:, j] = np.bincount(
                    mi_t[present & tr_in[w, :m] & (tr_type[w, :m] == 1)], minlength=n_muni)
                counts["weiterbildung" + suf][:, j] = np.bincount(
                    mi_t[present & tr_in[w, :m] & (tr_type[w, :m] == 2)], minlength=n_muni)
                counts["svb" + suf][:, j] = np.bincount(mi_t[present & em_in[w, :m]], minlength=n_muni)
        if t % 24 == 23:
            log.info("persons: simulated through %s", pd.Period(year=t_abs // 12, month=t_abs % 12 + 1, freq="M"))

    pid_num = rng.choice(2**40, size=n, replace=False)
    persons = pd.DataFrame({
        "pid": [f"JK{v:010X}" for v in pid_num], "muni": mi, "birth_year": birth_year, "sex": sex,
        "origin": origin, "a": a, "x": x,
    })
    ev = pd.DataFrame({
        "p": np.concatenate(ev_p), "t": np.concatenate(ev_t), "code": np.concatenate(ev_c),
    })
    return PersonsResult(persons=persons, events=ev, counts=counts, entries_q=entries, hazard_ratio=hr)


def true_effects(muni: pd.DataFrame, counts: dict[str, np.ndarray]) -> dict[str, Any]:
    """True effect paths (percentage points) from observed and counterfactual stocks."""
    ref = counts["refugees"].astype(float)
    start = muni["start_idx"].to_numpy()
    treated = start >= 0
    t_abs = PANEL_START + np.arange(N_PANEL)
    e = t_abs[None, :] - start[:, None]
    valid = treated[:, None] & (ref > 0)
    obs = {
        "language": (counts["b1"], counts["b1_cf"]),
        "training": (counts["ausbildung"] + counts["weiterbildung"],
                     counts["ausbildung_cf"] + counts["weiterbildung_cf"]),
        "employment": (counts["svb"], counts["svb_cf"]),
    }
    out: dict[str, Any] = {}
    safe = np.where(ref > 0, ref, 1.0)
    for o, (y1, y0) in obs.items():
        dcount = (y1 - y0).astype(float)
        drate = dcount / safe * 100.0
        cells = pd.DataFrame({
            "e": e[valid], "cohort": np.repeat(start[:, None], N_PANEL, axis=1)[valid],
            "drate": drate[valid], "dcount": dcount[valid], "ref": ref[valid],
        })
        by_e = cells.groupby("e").agg(att=("drate", "mean"), n_units=("drate", "size"),
                                      dcount=("dcount", "sum"), ref=("ref", "sum"))
        by_e["att_weighted"] = by_e["dcount"] / by_e["ref"] * 100.0
        post = cells.loc[cells["e"] >= 0]
        by_ce = cells.groupby(["cohort", "e"])["drate"].mean()
        cohort_map: dict[str, dict[str, float]] = {}
        for (c, ev), val in by_ce.items():
            key = str(pd.Period(year=int(c) // 12, month=int(c) % 12 + 1, freq="M"))
            cohort_map.setdefault(key, {})[str(int(ev))] = float(val)
        out[o] = {
            "att_by_event_time": {str(int(k)): float(v) for k, v in by_e["att"].items()},
            "att_by_event_time_weighted": {str(int(k)): float(v) for k, v in by_e["att_weighted"].items()},
            "n_units_by_event_time": {str(int(k)): int(v) for k, v in by_e["n_units"].items()},
            "att_by_cohort_event_time": cohort_map,
            "att_overall": float(post["drate"].mean()) if len(post) else 0.0,
            "att_overall_weighted": float(post["dcount"].sum() / post["ref"].sum() * 100.0) if len(post) else 0.0,
            "att_overall_pre": float(cells.loc[cells["e"] < 0, "drate"].mean()) if (cells["e"] < 0).any() else 0.0,
        }
    return out


#: moderators with planted gradients whose true subgroup paths go to truth.json
SUBGROUP_MODERATORS = ("plan_use_band", "organisation", "size_class", "target_group")


def subgroup_labels(muni: pd.DataFrame) -> dict[str, np.ndarray]:
    """The TRUE subgroup of every municipality by moderator (None = no value, e.g. a
    non-applicant): plan band, organisation, size class label, target group ``obliged``
    (includes persons obliged to leave) | ``not_obliged``."""
    from ifm_eval.size_class import size_class_label

    ob = (muni["target_obliged"].astype("float64").to_numpy() if "target_obliged" in muni
          else np.full(len(muni), np.nan))
    return {
        "plan_use_band": muni["plan_use_band"].astype(object).to_numpy(),
        "organisation": muni["organisation"].astype(object).to_numpy(),
        "size_class": size_class_label(muni["population"].to_numpy(float)),
        "target_group": np.where(np.isnan(ob), None, np.where(ob == 1.0, "obliged", "not_obliged")).astype(object),
    }


def subgroup_effects(muni: pd.DataFrame, counts: dict[str, np.ndarray]) -> dict[str, Any]:
    """True effect paths by moderator and TRUE subgroup (treated municipalities only):
    ``{moderator: {group: {"n_treated": int, outcome: {att_by_event_time_weighted,
    att_overall_weighted, att_overall}}}}``, as :func:`true_effects` restricted to the group."""
    treated = muni["start_idx"].to_numpy() >= 0
    out: dict[str, Any] = {}
    for mod, lab in subgroup_labels(muni).items():
        groups: dict[str, Any] = {}
        for grp in sorted({x for x in lab[treated] if x is not None}):
            mask = treated & (lab == grp)
            eff = true_effects(muni.loc[mask], {k: v[mask] for k, v in counts.items()})
            groups[str(grp)] = {"n_treated": int(mask.sum()), **{
                o: {k: eff[o][k] for k in ("att_by_event_time_weighted", "att_overall_weighted", "att_overall")}
                for o in OUTCOMES}}
        out[mod] = groups
    return out
