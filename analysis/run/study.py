"""The study runner: every outcome x specification of the study design.

``python -m analysis results`` calls :func:`run_study` and :func:`write_results`.
For each outcome and specification declared in ``data/study_design.yaml`` it

1. matches each pilot LA to its comparators (:mod:`analysis.methods.matching`) on the
   outcome's pre-period and context, within the specification's donor pool;
2. estimates the effect on the matched panel: two-way fixed effects DiD with
   the matching weights (cluster-robust, wild cluster bootstrap and
   randomization inference), an event study with its joint pre-trend test and,
   for the main specification, the Callaway-Sant'Anna staggered estimator;
3. grades the strength of evidence per outcome (:mod:`analysis.methods.evidence`) from
   the main specification and the agreement of the sensitivity specifications.

Every random draw uses the design's seed, so the same inputs give the same
numbers; runs are independent and are spread over the machine's cores.
"""
from __future__ import annotations

import dataclasses
import math
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from analysis.childlevel.did import child_lpm_from_counts
from analysis.childlevel.pipeline import COUNTS_COLUMNS, COUNTS_FILE
from analysis.core.errors import DataError, DesignError, relative_path
from analysis.core.paths import RESULTS_DIR
from analysis.design import DESIGN_PATH, Outcome, StudyDesign, load_design
from analysis.ingest.panel import PROCESSED_DIR, anomalies, load_panel, write_atomically
from analysis.methods import power as power_mod
from analysis.methods.estimation import callaway_santanna, event_study, prepare_panel, twfe_did
from analysis.methods.evidence import grade_evidence, sign_agrees, verdict
from analysis.methods.honest_did import honest_did
from analysis.methods.inference import (
    randomization_inference,
    staggered_randomization_inference,
    wild_bootstrap_event_study,
    wild_bootstrap_null,
    wild_bootstrap_pretrend,
    wild_cluster_bootstrap,
)
from analysis.methods.matching import balance_table, match_comparators, max_abs_smd, pre_trend_table
from analysis.methods.mde import simulated_mde
from analysis.methods.sdid import per_unit_placebo, sdid
from analysis.run.settings import (
    CONTRAST_SPECS,
    DENOMINATORS,
    EVENT_STUDY_DRAWS,
    MDE_DRAWS,
    MDE_PANELS,
    MDE_SPEC_DRAWS,
    MDE_SPEC_PANELS,
    POWER_GRID,
    SDID_PLACEBO_DRAWS,
)
from analysis.run.slices import write_outcome_slices

MAIN = "main"

#: Columns of ``results/estimates.csv`` (issue 3); extend, never rename.
ESTIMATE_COLUMNS = ["outcome", "specification", "estimator", "inference", "estimate", "std_error",
                    "ci_low", "ci_high", "p_value", "n_treated", "n_comparison", "pre_years",
                    "post_years", "mde"]


#: Columns of ``results/evidence.csv`` (extend, never rename). ``estimate``, ``ci_low``,
#: ``ci_high``, ``primary_p`` and ``pretrend_p`` all come from ``primary_inference``.
EVIDENCE_COLUMNS = ["outcome", "measure", "label", "family", "direction", "primary", "grade",
                    "estimate", "ci_low", "ci_high", "p_wild_bootstrap", "p_randomization",
                    "p_cluster", "primary_p", "pretrend_p", "max_abs_smd", "sign_agreement",
                    "n_sensitivity", "effect", "limiting", "reasons",
                    # issue 14: one coherent inference, verdicts that carry their checks
                    "primary_inference", "onset", "ri_ci_low", "ri_ci_high", "pretrend_p_cluster",
                    "balance_ok_other", "verdict", "verdict_reasons", "leans",
                    # issue 13: what a null rules out
                    "mde", "sesoi", "equivalence_p", "honest_ci_low", "honest_ci_high",
                    "breakdown_rm", "p_holm", "p_bh", "p_adjusted", "rules_out_improvement",
                    "rules_out_deterioration", "median_denominator", "effect_in_children",
                    # issue 15: the synthetic DiD's pre-period fit, beside the matched comparators'
                    "sdid_pre_rmse"]

@dataclass(frozen=True)
class Run:
    """One outcome under one specification (and, for leave-one-out, one pilot left out)."""

    outcome: str          # outcome id
    spec: str             # specification key in the design
    left_out: str = ""    # la_code of the pilot left out (leave_one_out only)

    @property
    def label(self) -> str:
        """The run's specification label: ``<spec>:<la_code>`` for leave-one-out, else ``<spec>``."""
        return f"{self.spec}:{self.left_out}" if self.left_out else self.spec


def _signature(design: StudyDesign, o: Outcome, spec: str, pools: dict[str, tuple[str, ...]]) -> tuple:
    """Everything a run of ``o`` under ``spec`` depends on besides the panel."""
    s = design.spec(spec)
    if spec not in pools:
        pools[spec] = tuple(design.donor_pool(spec))
    match_pre = design.matching_pre_years(o, s)
    fixed = design.fixed_year_context(s)
    # the year each context variable is read in, as matching will read it
    at = tuple(sorted((v.name, fixed.get(v.name) or (match_pre[-1] + 1 if v.at in ("next", "first_onset")
                                                     else v.at)) for v in design.matching.context))
    return (design.onset_for(o, s), tuple(design.years(o, s)), tuple(sorted(design.treated(o, s).items())),
            pools[spec], design.k(s), design.replace(s), s.drop_first_treated_year, s.max_event_time,
            s.all_donors, tuple(match_pre), at, s.common_comparators, s.drop_anomalies)


def duplicate_specs(design: StudyDesign) -> list[tuple[str, str]]:
    """``(outcome, specification)`` pairs that would reproduce the main specification.

    A wave-two onset for an outcome whose main onset is already wave two, for
    example: such runs are not run and not counted as robustness checks.
    """
    pools: dict[str, tuple[str, ...]] = {}
    out = []
    for o in design.outcomes:
        main = _signature(design, o, MAIN, pools)
        for name, spec in design.specifications.items():
            if name != MAIN and not spec.leave_one_out and _signature(design, o, name, pools) == main:
                out.append((o.id, name))
    return out


def pilots_in_sample(design: StudyDesign, o: Outcome, spec: str, panel: pd.DataFrame | None) -> list[str]:
    """Pilots of ``o`` under ``spec`` with at least one published pre-period value (all without a panel)."""
    treated = design.treated(o, spec)
    if panel is None or o.measure not in panel.columns:
        return list(treated)
    pre = panel[panel["year"].isin(design.pre_years(o, spec)) & panel[o.measure].notna()]
    have = set(pre["la_code"])
    return [c for c in treated if c in have]


def plan_runs(design: StudyDesign, panel: pd.DataFrame | None = None) -> list[Run]:
    """Every run the design declares, main specification first within each outcome.

    Specifications that would reproduce the main one for an outcome
    (:func:`duplicate_specs`) are left out; leave-one-out runs over the pilots in
    the outcome's sample only (those with a pre-period value, when ``panel`` is given).
    """
    skip = set(duplicate_specs(design))
    runs = []
    for o in design.outcomes:
        for name, spec in design.specifications.items():
            if (o.id, name) in skip:
                continue
            if spec.drop_anomalies and panel is not None and not len(flagged_cells(panel, design, o, name)):
                continue  # no flagged LA-year in this outcome's window: it would reproduce main
            if spec.leave_one_out:
                for code in pilots_in_sample(design, o, name, panel):
                    runs.append(Run(o.id, name, code))
            else:
                runs.append(Run(o.id, name))
    return runs


def _year_span(years: list[int]) -> str:
    """'2013-2014' or '2015-2020,2023-2025' for a sorted list of years."""
    if not years:
        return ""
    parts, start, prev = [], years[0], years[0]
    for y in years[1:] + [None]:
        if y is not None and y == prev + 1:
            prev = y
            continue
        parts.append(f"{start}-{prev}" if prev != start else f"{start}")
        if y is not None:
            start = prev = y
    return ",".join(parts)


#: Panel columns every run reads besides its outcome measure and matching context.
RUN_ID_COLUMNS = ["la_code", "la_name", "year", "region_code"]


def run_columns(design: StudyDesign, run: Run) -> list[str]:
    """The panel columns one run reads: identifiers, the outcome measure, the matching context.

    :func:`run_one` sees only these columns, so a cache of runs keyed on them
    (``analysis.run.build``) cannot miss an input. The common-comparators
    specification also reads the measures of its composite.
    """
    context = design.matching_kwargs(run.spec)["context"]
    composite = [o.measure for o in composite_outcomes(design)] if design.spec(run.spec).common_comparators else []
    extra = ["pop_0_17"] if design.spec(run.spec).drop_anomalies else []
    return list(dict.fromkeys([*RUN_ID_COLUMNS, design.outcome(run.outcome).measure, *context, *composite,
                               *extra]))


def composite_outcomes(design: StudyDesign) -> list[Outcome]:
    """The outcomes whose pre-periods make the common comparators' composite.

    The published primary outcomes with the earliest onset (wave one): the
    comparators are chosen once, before any pilot began, for every outcome.
    """
    public = [o for o in design.outcomes if o.primary and o.source != "child_level"]
    starts = {o.id: min(design.treated(o, MAIN).values()) for o in public}
    return [o for o in public if starts[o.id] == min(starts.values())]


def composite_years(design: StudyDesign) -> list[int]:
    """The composite's years: every pre-year of a composite outcome under ``main``.

    The union, not the intersection, so that a pilot with some measures suppressed
    in some years (Norfolk has no re-referral figure before 2015) still has a composite.
    """
    return sorted(set().union(*[design.pre_years(o, MAIN) for o in composite_outcomes(design)]))


def add_composite(panel: pd.DataFrame, design: StudyDesign) -> pd.DataFrame:
    """``panel`` with a ``composite`` column: the mean of the composite outcomes' standardised values.

    Each measure is standardised within its year across LAs (z-score) and signed so
    that higher is better; an LA-year's composite is the mean over the measures it
    has. It is defined in the composite's years only (NaN elsewhere).
    """
    years = composite_years(design)
    parts = []
    for o in composite_outcomes(design):
        x = panel[o.measure].where(panel["year"].isin(years))
        by_year = x.groupby(panel["year"])
        z = (x - by_year.transform("mean")) / by_year.transform("std")
        parts.append(-z if o.direction == "lower_is_better" else z)
    comp = pd.concat(parts, axis=1).mean(axis=1, skipna=True) if parts else np.nan
    return panel.assign(composite=comp)


def common_match(panel: pd.DataFrame, design: StudyDesign, spec: str):
    """One comparator set for every outcome: matched on context and the primary-outcome composite (issue 15)."""
    treated = design.treated(composite_outcomes(design)[0], spec)
    years = composite_years(design)
    panel = add_composite(panel, design)
    kwargs = design.matching_kwargs(spec)
    n = (panel[panel["la_code"].isin(list(treated)) & panel["year"].isin(years)]
         .groupby("la_code")["composite"].count().reindex(list(treated), fill_value=0))
    # as for one outcome: a pilot with a single year of the composite has no trend (Norfolk: 2014 only)
    kwargs.update(min_pre_years=1, outcome_trend=False) if (n < 2).any() else kwargs.setdefault("min_pre_years", 2)
    return match_comparators(panel, treated, design.donor_pool(spec), "composite", years, **kwargs)


def common_matched_panel(panel: pd.DataFrame, match, treated: dict[str, int], measure: str,
                         years: list[int]) -> pd.DataFrame:
    """The estimation panel of one outcome on the common comparators of ``match``.

    A comparator's weight is the sum of ``1 / k_i`` over the pilots ``i`` of this
    outcome's sample it serves (pilots without the outcome drop out with their pairs).
    """
    pairs = match.pairs[match.pairs["treated_code"].isin(list(treated))]
    k_i = pairs.groupby("treated_code")["comparator_code"].transform("size")
    w = (1.0 / k_i).groupby(pairs["comparator_code"]).sum()
    codes = [c for c in treated if c in set(pairs["treated_code"])]
    mp = panel[panel["la_code"].isin(codes + list(w.index)) & panel["year"].isin(years)]
    mp = mp[["la_code", "year", measure]].copy()
    mp["first_treated"] = mp["la_code"].map(treated).fillna(0).astype("int64")
    mp["weight"] = mp["la_code"].map(w).fillna(1.0).where(mp["first_treated"] == 0, 1.0)
    return mp.reset_index(drop=True)


def flagged_cells(panel: pd.DataFrame, design: StudyDesign, o: Outcome, spec: str) -> pd.DataFrame:
    """LA-years of ``o``'s window whose value of its measure the anomaly rule flags (``la_code``, ``year``)."""
    cols = [c for c in ("la_code", "year", o.measure, "pop_0_17") if c in panel]
    flags = anomalies(panel[cols])
    flags = flags[(flags["measure"] == o.measure) & flags["year"].isin(design.years(o, spec))]
    return flags[["la_code", "year"]].reset_index(drop=True)


@dataclass
class RunOutput:
    """What one run produces (rows for each results table)."""

    estimates: list[dict] = field(default_factory=list)
    event_study: pd.DataFrame | None = None
    pairs: pd.DataFrame | None = None
    balance: pd.DataFrame | None = None
    trends: pd.DataFrame | None = None
    group_time: pd.DataFrame | None = None
    pretrend_p: float = math.nan
    max_abs_smd: float = math.nan
    notes: list[dict] = field(default_factory=list)
    #: child-level outcomes only: the estimation sample (la_code, year, first_treated,
    #: weight), for the child-level DiD on the same matched LAs and years
    sample: pd.DataFrame | None = None
    #: main specification only: the wild bootstrap's pre-trend test, MDE, equivalence,
    #: power curve, HonestDiD sensitivity, SDID and each pilot's own estimate
    pretrend_p_wb: float = math.nan
    extras: dict = field(default_factory=dict)
    power: pd.DataFrame | None = None
    honest: pd.DataFrame | None = None
    pilot_effects: pd.DataFrame | None = None
    sdid_weights: pd.DataFrame | None = None
    skipped: bool = False
    #: the estimation sample (la_code, year, the measure, first_treated, weight), for
    #: simulations shaped like the real design (benchmarks/mde_calibration.py)
    est_sample: pd.DataFrame | None = None


def run_one(panel: pd.DataFrame, design: StudyDesign, run: Run, *, full: bool | None = None) -> RunOutput:
    """Match, estimate and test one outcome under one specification.

    Parameters
    ----------
    panel
        The validated LA-year panel (``data/processed/panel.csv``).
    design
        The study design.
    run
        Which outcome, specification and (leave-one-out) pilot.
    full
        Also run the staggered estimator and the Rademacher bootstrap check
        (default: for the main specification only).
    """
    o = design.outcome(run.outcome)
    spec = design.spec(run.spec)  # raises DesignError on an unknown specification
    panel = panel[run_columns(design, run)]  # nothing else of the panel reaches a run
    full = (run.spec == MAIN) if full is None else full
    measure = o.measure
    treated = design.treated(o, run.spec)
    if run.left_out:
        treated = {k: v for k, v in treated.items() if k != run.left_out}
    years = design.years(o, run.spec)
    pre = design.pre_years(o, run.spec)
    match_pre = design.matching_pre_years(o, run.spec)
    have = panel[panel["year"].isin(match_pre) & panel["la_code"].isin(list(treated))][measure].notna()
    if match_pre != pre and panel.loc[have.index[have], "la_code"].nunique() < len(treated):
        match_pre = pre  # a pilot has values only in the held-out year: match on every pre-year
    for var, year in design.fixed_year_context(run.spec).items():
        # measured once, in the earliest onset year, for every outcome (issue 15)
        at = panel[panel["year"] == year].set_index("la_code")[var]
        panel = panel.assign(**{var: panel["la_code"].map(at)})
    inf = design.inference
    out = RunOutput()

    def note(text: str) -> None:
        out.notes.append(dict(outcome=o.id, specification=run.label, note=text))

    if spec.drop_anomalies:
        # Values the anomaly rule flags become missing in this specification only (issue 12).
        flags = flagged_cells(panel, design, o, run.spec)
        hit = pd.MultiIndex.from_frame(panel[["la_code", "year"]]).isin(
            pd.MultiIndex.from_frame(flags[["la_code", "year"]]))
        panel = panel.assign(**{measure: panel[measure].mask(hit)})
        names_ = panel.drop_duplicates("la_code").set_index("la_code")["la_name"]
        if len(flags):
            note(f"{len(flags)} LA-year value(s) of {measure} flagged by the anomaly rule left out: "
                 + ", ".join(f"{names_.get(c, c)} {y}" for c, y in flags.itertuples(index=False)))

    # Suppressed pre-period values: a pilot with none cannot be matched on this
    # outcome and is left out of it; one with a single observed pre-year has no
    # trend, so every LA is then matched on the pre-period level only.
    names = panel.drop_duplicates("la_code").set_index("la_code")["la_name"]
    n_pre = (panel[panel["year"].isin(pre) & panel["la_code"].isin(list(treated))]
             .groupby("la_code")[measure].count().reindex(list(treated), fill_value=0))
    for code in n_pre.index[n_pre == 0]:
        note(f"{names[code]} has no published {measure} in the pre-period "
             f"({_year_span(pre)}) and is left out of this outcome")
        treated.pop(code)
    if not treated:
        raise DesignError(f"no pilot has a pre-period value of {measure}", file="data/study_design.yaml")
    match = None
    if spec.common_comparators:
        # One comparator set for all outcomes, chosen before any pilot began (issue 15).
        match = common_match(panel, design, run.spec)
        mp = common_matched_panel(panel, match, treated, measure, years)
        note(f"common comparators: matched once for every outcome on the context and a composite of "
             f"{', '.join(c.measure for c in composite_outcomes(design))} in {_year_span(composite_years(design))}")
    elif spec.all_donors:
        # Every eligible donor with a value, unweighted: no matching (issue 15).
        donors = design.donor_pool(run.spec)
        mp = panel[panel["la_code"].isin(list(treated) + donors) & panel["year"].isin(years)]
        mp = mp[["la_code", "year", measure]].assign(
            first_treated=lambda d: d["la_code"].map(treated).fillna(0).astype("int64"), weight=1.0)
    else:
        kwargs = design.matching_kwargs(run.spec)
        # Level: mean of the observed pre-years; trend: slope over at least two of them.
        kwargs.setdefault("min_pre_years", min(2, len(match_pre)))
        n_match = (panel[panel["year"].isin(match_pre) & panel["la_code"].isin(list(treated))]
                   .groupby("la_code")[measure].count().reindex(list(treated), fill_value=0))
        if len(match_pre) >= 2 and (n_match < 2).any():
            few = [names[c] for c in n_match.index if n_match[c] < 2]
            note(f"matched on the pre-period level of {measure} without its trend: "
                 f"{', '.join(few)} {'has' if len(few) == 1 else 'have'} a single published pre-year")
            kwargs.update(outcome_trend=False, min_pre_years=1)
        if match_pre != pre:
            note(f"matched on {_year_span(match_pre)}; {pre[-1]} is held out of matching, so the "
                 "event study's last lead is an out-of-sample check")
        match = match_comparators(panel, treated, design.donor_pool(run.spec), measure, match_pre, **kwargs)
        mp = match.matched_panel
        mp = mp[mp["year"].isin(years)][["la_code", "year", measure, "first_treated", "weight"]]
    mp = _timing(mp, spec)
    out.est_sample = mp[mp[measure].notna()].reset_index(drop=True)
    est_panel = prepare_panel(mp, outcome=measure, unit="la_code", time="year",
                              first_treated="first_treated", weights="weight")
    start = min(treated.values())
    common = dict(outcome=o.id, specification=run.label,
                  n_treated=int(est_panel.n_treated),
                  n_comparison=int(est_panel.n_units - est_panel.n_treated),
                  pre_years=_year_span([y for y in years if y < start]),
                  post_years=_year_span([y for y in years if y >= start]))
    alpha, seed = inf.alpha, inf.seed
    wb_weight = inf.wild_bootstrap.weights[0]

    twfe = twfe_did(est_panel, alpha=alpha)
    out.estimates.append(dict(common, estimator="twfe", inference="cluster", estimate=twfe.estimate,
                              std_error=twfe.std_error, ci_low=twfe.ci_low, ci_high=twfe.ci_high,
                              p_value=twfe.p_value))
    weights = list(inf.wild_bootstrap.weights)
    for w in (weights if full else weights[:1]):
        wb = wild_cluster_bootstrap(est_panel, draws=inf.wild_bootstrap.draws, weight_type=w,
                                    seed=seed, alpha=alpha)
        name = "wild_bootstrap" if w == weights[0] else f"wild_bootstrap_{w}"
        out.estimates.append(dict(common, estimator="twfe", inference=name, estimate=wb.estimate,
                                  std_error=twfe.std_error, ci_low=wb.ci_low, ci_high=wb.ci_high,
                                  p_value=wb.p_value))
    if not full:
        # What this run could detect, beside its estimate (the main specification's,
        # from more panels, is added by _design_figures).
        out.estimates[-1]["mde"] = simulated_mde(
            est_panel, power=0.8, panels=MDE_SPEC_PANELS, draws=MDE_SPEC_DRAWS, weight_type=wb_weight,
            alpha=alpha, seed=seed).mde
    ri = randomization_inference(est_panel, draws=inf.randomization.draws, seed=seed, alpha=alpha)
    out.estimates.append(dict(common, estimator="twfe", inference="randomization", estimate=ri.estimate,
                              std_error=math.nan, ci_low=ri.ci_low, ci_high=ri.ci_high,
                              p_value=ri.p_value))
    # Leads before the common pre-period are identified by the later cohort alone
    # (Bexley): one cluster gives no usable cluster variance, so they are binned.
    es = event_study(est_panel, alpha=alpha, min_event=-len(pre))
    out.pretrend_p = float(es.pretrend_p)
    out.estimates.append(dict(common, estimator="event_study_leads", inference="cluster_wald",
                              estimate=math.nan, std_error=math.nan, ci_low=math.nan,
                              ci_high=math.nan, p_value=es.pretrend_p))
    out.event_study = es.coefficients.assign(outcome=o.id, specification=run.label)
    if full:
        # The primary inference for the event study and its pre-trend test (issue 14).
        wbe = wild_bootstrap_event_study(est_panel, min_event=-len(pre), draws=EVENT_STUDY_DRAWS,
                                         weight_type=wb_weight, seed=seed, alpha=alpha)
        out.event_study = out.event_study.merge(wbe, on="event_time", how="left")
        if (es.coefficients["event_time"] < -1).any():
            wpt = wild_bootstrap_pretrend(est_panel, min_event=-len(pre), draws=EVENT_STUDY_DRAWS,
                                          weight_type=wb_weight, seed=seed)
            out.pretrend_p_wb = float(wpt.p_value)
            out.estimates.append(dict(common, estimator="event_study_leads", inference="wild_bootstrap_wald",
                                      estimate=math.nan, std_error=math.nan, ci_low=math.nan,
                                      ci_high=math.nan, p_value=wpt.p_value))
        _design_figures(out, o, est_panel, es, inf, wb_weight)
    if full:
        cs = callaway_santanna(est_panel, alpha=alpha)
        ov = cs.overall
        out.estimates.append(dict(common, estimator="staggered", inference="analytic",
                                  estimate=ov.estimate, std_error=ov.std_error, ci_low=ov.ci_low,
                                  ci_high=ov.ci_high, p_value=ov.p_value))
        sri = staggered_randomization_inference(est_panel, draws=inf.randomization.draws,
                                                seed=seed, alpha=alpha)
        out.estimates.append(dict(common, estimator="staggered", inference="randomization",
                                  estimate=sri.estimate, std_error=math.nan, ci_low=sri.ci_low,
                                  ci_high=sri.ci_high, p_value=sri.p_value))
        out.group_time = cs.group_time.assign(outcome=o.id, specification=run.label)
    if o.source == "child_level":
        out.sample = mp[mp[measure].notna()][["la_code", "year", "first_treated", "weight"]
                                             ].reset_index(drop=True)
    if full and not spec.all_donors:
        _every_donor(out, o, panel, design, treated, years, common, inf)
    if match is None:
        return out
    bal = balance_table(match)
    out.max_abs_smd = float(max_abs_smd(bal, "after"))
    if run.spec == MAIN:
        out.pairs = match.pairs.assign(outcome=o.id)
        out.balance = bal.assign(outcome=o.id)
        out.trends = pre_trend_table(match, years=years, include_pool=True).assign(outcome=o.id)
    return out


def _timing(mp: pd.DataFrame, spec) -> pd.DataFrame:
    """Apply a specification's timing changes to the estimation sample (issue 14).

    ``drop_first_treated_year`` leaves out each pilot's first treated year (its
    comparators keep theirs, which identify the year effect); ``max_event_time: n``
    keeps pilot years up to n years after onset and no year after the last pilot's
    window, so the effect is the average over event years 0..n.
    """
    if spec.drop_first_treated_year:
        ft = mp["first_treated"]
        mp = mp[~((ft > 0) & (mp["year"] == ft))]
    if spec.max_event_time is not None:
        n = int(spec.max_event_time)
        ft = mp["first_treated"]
        mp = mp[~((ft > 0) & (mp["year"] - ft > n))]
        mp = mp[mp["year"] <= int(mp.loc[mp["first_treated"] > 0, "first_treated"].max()) + n]
    return mp


def _design_figures(out: RunOutput, o: Outcome, est_panel, es, inf, wb_weight: str) -> None:
    """What the main specification could detect and rules out (issue 13).

    The minimum detectable effect (80% power, two-sided 5%) and the power curve are
    found by simulation on panels shaped like this sample (:mod:`analysis.methods.mde`;
    ``benchmarks/mde_calibration.py`` checks the 80% on fresh panels); the equivalence
    test is two one-sided wild bootstrap tests at the SESOI; the HonestDiD intervals use
    the event study's coefficients and covariance.
    """
    null = wild_bootstrap_null(est_panel, sesoi=o.sesoi, draws=inf.wild_bootstrap.draws,
                               weight_type=wb_weight, seed=inf.seed)
    sim = simulated_mde(est_panel, power=0.8, panels=MDE_PANELS, draws=MDE_DRAWS,
                        weight_type=wb_weight, alpha=inf.alpha, seed=inf.seed)
    mde = sim.mde
    out.extras.update(mde=mde, equivalence_p=null.equivalence_p, std_error=null.std_error)
    primary = [r for r in out.estimates if r["estimator"] == "twfe" and r["inference"] == "wild_bootstrap"]
    primary[0]["mde"] = mde
    if np.isfinite(mde):
        effects = np.array(POWER_GRID) * mde
        out.power = pd.DataFrame({"outcome": o.id, "effect_in_mdes": POWER_GRID, "effect": effects,
                                  "power": sim.power_at(effects)})
    coefs = es.coefficients[es.coefficients["event_time"] != -1].sort_values("event_time")
    names = [str(int(e)) for e in coefs["event_time"]]
    vc = es.vcov.copy()
    vc.index, vc.columns = vc.index.astype(str), vc.columns.astype(str)
    num_pre = int((coefs["event_time"] < -1).sum())
    num_post = int((coefs["event_time"] >= 0).sum())
    if set(names) <= set(vc.index) and num_pre >= 1 and num_post >= 1:
        sigma = vc.loc[names, names].to_numpy(float)
        beta = coefs["estimate"].to_numpy(float)
        se_pre = float(np.sqrt(np.diag(sigma)[:num_pre]).max())
        h = honest_did(beta, sigma, num_pre, num_post, alpha=inf.alpha, m_scale=se_pre)
        rows = [dict(outcome=o.id, method="relative_magnitudes", **r) for r in h["relative_magnitudes"]]
        rows += [dict(outcome=o.id, method="smoothness", **r) for r in h["smoothness"]]
        out.honest = pd.DataFrame(rows)
        rm1 = [r for r in h["relative_magnitudes"] if abs(r["M"] - 1.0) < 1e-9]
        bd = h.get("breakdown_rm")
        out.extras.update(honest_ci_low=rm1[0]["ci_low"] if rm1 else math.nan,
                          honest_ci_high=rm1[0]["ci_high"] if rm1 else math.nan,
                          breakdown_rm=math.nan if bd is None else float(bd))


def _every_donor(out: RunOutput, o: Outcome, panel: pd.DataFrame, design: StudyDesign,
                 treated: dict[str, int], years: list[int], common: dict, inf) -> None:
    """Synthetic DiD on every eligible donor, and each pilot's own synthetic DiD (issue 15).

    SDID needs a balanced panel: LAs with a missing year of the measure are left
    out (the notes say how many). Each primary outcome also gets one estimate
    per pilot (SDID on that pilot alone) with a placebo-in-space p-value.
    """
    donors = design.donor_pool(MAIN)
    df = panel[panel["la_code"].isin(list(treated) + donors) & panel["year"].isin(years)]
    df = df[["la_code", "year", o.measure]].assign(
        first_treated=lambda d: d["la_code"].map(treated).fillna(0).astype("int64"))
    try:
        res = sdid(df, outcome=o.measure, unit="la_code", time="year", first_treated="first_treated",
                   estimator="sdid", inference="placebo", draws=SDID_PLACEBO_DRAWS, seed=inf.seed,
                   alpha=inf.alpha)
    except ValueError as exc:
        out.notes.append(dict(outcome=o.id, specification=MAIN, note=f"no SDID estimate: {exc}"))
        return
    out.estimates.append(dict(common, estimator="sdid", inference="placebo", estimate=res.estimate,
                              std_error=res.std_error, ci_low=res.ci_low, ci_high=res.ci_high,
                              p_value=res.p_value, n_treated=int(res.n_treated),
                              n_comparison=int(res.n_control)))
    w = res.unit_weights.sort_values(ascending=False)
    out.sdid_weights = pd.DataFrame({"outcome": o.id, "la_code": w.index.astype(str), "weight": w.to_numpy()})
    out.extras.update(sdid_pre_rmse=float(res.pre_rmse), sdid_dropped=len(res.dropped_units))
    if res.dropped_units:
        out.notes.append(dict(outcome=o.id, specification=MAIN, note=(
            f"SDID uses a balanced panel: {len(res.dropped_units)} LAs with a missing year of "
            f"{o.measure} are left out of it")))
    if o.primary:
        pe = per_unit_placebo(df, outcome=o.measure, unit="la_code", time="year",
                              first_treated="first_treated", estimator="sdid", alpha=inf.alpha)
        names = panel.drop_duplicates("la_code").set_index("la_code")["la_name"]
        out.pilot_effects = pd.DataFrame({
            "outcome": o.id, "la_code": pe["unit"].astype(str).to_numpy(),
            "la_name": pe["unit"].map(names).to_numpy(), "estimate": pe["estimate"].to_numpy(),
            "ci_low": pe["ci_low"].to_numpy(), "ci_high": pe["ci_high"].to_numpy(),
            "p_value": pe["p_value"].to_numpy(), "pre_rmse": pe["pre_rmse"].to_numpy(),
            "onset": pe["onset"].to_numpy(), "n_placebo": pe["n_placebo"].to_numpy(),
            "placebo_estimates": [";".join(f"{x:.6g}" for x in a) for a in pe["placebo_estimates"]]})


def child_lpm_estimates(design: StudyDesign, runs: list[Run], outputs: dict[Run, RunOutput],
                        processed_dir: Path) -> list[dict]:
    """Child-level DiD beside the LA-level one, for every run of a child-level outcome.

    A child-level model like the published evaluation's (:mod:`analysis.childlevel.did`,
    which says how they differ): a linear probability model on one row per child
    record (a period of care, a referral) with LA and year fixed effects,
    standard errors clustered by LA, t with G - 1 degrees of freedom. It is
    fitted on the run's matched LAs and years, each child weighted by its
    LA's matching weight, from the LA-year counts the data stage
    keeps in child-level mode (``childlevel_counts.csv``), which give exactly
    the child-row estimate. Unlike the LA-level TWFE, which weighs every LA-year
    alike, it weighs LA-years by their number of children. Estimates are in
    percentage points (estimator ``child_lpm``, inference ``cluster``). Returns
    no rows when the counts file is absent (public mode).
    """
    path = Path(processed_dir) / COUNTS_FILE
    wanted = [r for r in runs if design.outcome(r.outcome).source == "child_level"
              and outputs[r].sample is not None]
    if not wanted or not path.exists():
        return []
    counts = pd.read_csv(path, dtype={"la_code": str})
    lacking = [c for c in COUNTS_COLUMNS if c not in counts.columns]
    if lacking:
        raise DataError(f"column {lacking[0]!r} missing (rebuild the panel: python -m analysis "
                        "data --child-level DIR)", file=relative_path(path))
    for c in ("year", "numerator", "denominator"):
        bad = counts[c].notna() & pd.to_numeric(counts[c], errors="coerce").isna()
        if bad.any():
            i = int(bad.to_numpy().nonzero()[0][0])
            raise DataError(f"not a number: {counts[c].iloc[i]!r}", file=relative_path(path),
                            column=c, row=i + 2)
        counts[c] = pd.to_numeric(counts[c], errors="coerce")
    rows = []
    for run in wanted:
        o, out = design.outcome(run.outcome), outputs[run]
        cells = counts[counts["measure"] == o.measure].merge(out.sample, on=["la_code", "year"])
        cells = cells[cells["numerator"].notna() & (cells["denominator"] > 0)]
        if cells.empty:  # not a share of 0/1 outcomes (a median), or no counts
            continue
        fit = child_lpm_from_counts(cells, weights="weight", scale=100.0,
                                    alpha=design.inference.alpha)
        twfe = next(e for e in out.estimates if e["estimator"] == "twfe")
        rows.append({k: twfe[k] for k in ("outcome", "specification", "n_treated", "n_comparison",
                                           "pre_years", "post_years")}
                    | dict(estimator="child_lpm", inference="cluster", estimate=fit.estimate,
                           std_error=fit.se, ci_low=fit.ci_low, ci_high=fit.ci_high, p_value=fit.p))
    return rows


def _direction_word(o: Outcome, estimate: float) -> str:
    if not np.isfinite(estimate) or estimate == 0:
        return "no change"
    if o.direction == "none":
        return "increase" if estimate > 0 else "decrease"
    better = (estimate < 0) if o.direction == "lower_is_better" else (estimate > 0)
    return "improvement" if better else "deterioration"


def diagnostics_outcomes(diagnostics: dict[tuple[str, str], RunOutput]) -> set[str]:
    """Outcome ids that have diagnostics (keys are ``(outcome, specification)``)."""
    return {k[0] for k in diagnostics}


def grade_outcomes(design: StudyDesign, estimates: pd.DataFrame,
                   diagnostics: dict[tuple[str, str], RunOutput],
                   panel: pd.DataFrame | None = None) -> pd.DataFrame:
    """One evidence grade and one verdict per outcome, from the main specification and its checks.

    Everything comes from the primary inference, the wild cluster bootstrap
    (``evidence.primary_p_value`` in the design): the interval, the p-value, the
    pre-trend test (its joint Wald test of the leads), the equivalence test and
    the minimum detectable effect. Randomization inference is reported beside it
    (``p_randomization``, ``ri_ci_low``, ``ri_ci_high``). Sign agreement is the
    share of the sensitivity specifications actually run for the outcome (each
    leave-one-out run counted once; prior-use subgroups are contrasts, not checks)
    whose estimate agrees in sign within ``sign_tolerance`` standard errors.
    p-values are adjusted across outcomes: Holm across the primary outcomes
    (family-wise), Benjamini-Hochberg across all (false discovery rate);
    ``p_adjusted`` holds the first for primary outcomes and the second for the rest.
    """
    rows = []
    th = design.evidence.threshold_values()
    twfe = estimates[(estimates["estimator"] == "twfe")]
    for o in design.outcomes:
        if o.id not in diagnostics_outcomes(diagnostics):
            continue
        e = twfe[twfe["outcome"] == o.id]
        main = e[e["specification"] == MAIN].set_index("inference")
        if main.empty:
            continue
        wb, ri = main.loc["wild_bootstrap"], main.loc["randomization"]
        diag = diagnostics[(o.id, MAIN)]
        se_main = float(main.loc["cluster", "std_error"])
        others = e[(e["specification"] != MAIN) & (e["inference"] == "wild_bootstrap")
                   & ~e["specification"].isin(CONTRAST_SPECS)]
        agree_flags = [sign_agrees(wb["estimate"], se_main, x, th["sign_tolerance"]) for x in others["estimate"]]
        agree = float(np.mean(agree_flags)) if agree_flags else math.nan
        pretrend = diag.pretrend_p_wb if np.isfinite(diag.pretrend_p_wb) else diag.pretrend_p
        g = grade_evidence(wb["p_value"], wb["ci_low"], wb["ci_high"], pretrend, diag.max_abs_smd, agree, th)
        other_smd = [d.max_abs_smd for (oid, spec), d in diagnostics.items()
                     if oid == o.id and spec != MAIN and np.isfinite(d.max_abs_smd)]
        balance_main = bool(np.isfinite(diag.max_abs_smd) and diag.max_abs_smd < th["max_smd"])
        balance_other = any(s < th["max_smd"] for s in other_smd)
        x = diag.extras
        # A design check errs on the side of failing: parallel trends count as rejected when
        # either the wild bootstrap Wald test or the cluster-robust F test rejects them.
        check_p = float(np.nanmin([pretrend, diag.pretrend_p])) if np.isfinite([pretrend, diag.pretrend_p]).any() \
            else math.nan
        v = verdict(g, equivalence_p=x.get("equivalence_p", math.nan), pretrend_p=check_p,
                    balance_ok_main=balance_main, balance_ok_any_other=balance_other, thresholds=th,
                    alpha=design.inference.alpha)
        direction = {"higher_is_better": "higher", "lower_is_better": "lower"}.get(o.direction)
        if direction:
            ro = power_mod.interval_rules_out(wb["ci_low"], wb["ci_high"], direction)
            improvement, deterioration = float(ro.improvement), float(ro.deterioration)
        else:
            improvement = deterioration = math.nan
        median_den, children = _effect_in_children(o, panel, design, wb["estimate"])
        rows.append(dict(outcome=o.id, measure=o.measure, label=o.label, family=o.family,
                         direction=o.direction, primary=o.primary, grade=g.level,
                         estimate=wb["estimate"], ci_low=wb["ci_low"], ci_high=wb["ci_high"],
                         p_wild_bootstrap=wb["p_value"], p_randomization=ri["p_value"],
                         p_cluster=main.loc["cluster", "p_value"], primary_p=wb["p_value"],
                         pretrend_p=pretrend, max_abs_smd=diag.max_abs_smd,
                         sign_agreement=agree, n_sensitivity=int(len(others)),
                         effect=_direction_word(o, wb["estimate"]),
                         limiting="; ".join(c.name for c in g.criteria if c.ceiling == g.level
                                            and c.passed is not True) if g.level != "high" else "",
                         reasons=" | ".join(g.reasons),
                         primary_inference="wild_bootstrap", onset=design.onset_for(o, MAIN),
                         ri_ci_low=ri["ci_low"], ri_ci_high=ri["ci_high"],
                         pretrend_p_cluster=diag.pretrend_p, balance_ok_other=balance_other,
                         verdict=v.text, verdict_reasons=" | ".join(v.reasons),
                         leans=_direction_word(o, wb["estimate"]),
                         mde=x.get("mde", math.nan), sesoi=o.sesoi,
                         equivalence_p=x.get("equivalence_p", math.nan),
                         honest_ci_low=x.get("honest_ci_low", math.nan),
                         honest_ci_high=x.get("honest_ci_high", math.nan),
                         breakdown_rm=x.get("breakdown_rm", math.nan),
                         rules_out_improvement=improvement, rules_out_deterioration=deterioration,
                         median_denominator=median_den, effect_in_children=children,
                         sdid_pre_rmse=x.get("sdid_pre_rmse", math.nan)))
    out = pd.DataFrame(rows, columns=EVIDENCE_COLUMNS)
    if not out.empty:
        prim = out["primary"].astype(bool).to_numpy()
        p = out["primary_p"].to_numpy(float)
        holm = np.full(len(out), math.nan)
        holm[prim] = power_mod.holm(p[prim])
        out["p_holm"] = holm
        out["p_bh"] = power_mod.benjamini_hochberg(p)
        out["p_adjusted"] = np.where(prim, out["p_holm"], out["p_bh"])
        # the breakdown value is only defined where the interval at Mbar = 0 excludes zero
        out["breakdown_rm"] = out["breakdown_rm"].astype(float)
    return out


def _effect_in_children(o: Outcome, panel: pd.DataFrame | None, design: StudyDesign,
                        estimate: float) -> tuple[float, float]:
    """The estimate in children a year for a pilot of median size (its denominator's median).

    Returns ``(median denominator over the pilots in their post-period, children a year)``;
    NaN where the measure has no count denominator in the panel.
    """
    spec = DENOMINATORS.get(o.measure)
    if panel is None or spec is None or spec[0] not in panel.columns or not np.isfinite(estimate):
        return math.nan, math.nan
    col, scale, _ = spec
    treated = design.treated(o)
    post = panel[panel["la_code"].isin(list(treated)) & (panel["year"] >= min(treated.values()))
                 & panel["year"].isin(design.years(o))]
    den = float(post.groupby("la_code")[col].mean().median())
    return den, estimate * den / scale


@dataclass
class StudyResults:
    """Every table of the study, ready to write."""

    estimates: pd.DataFrame
    evidence: pd.DataFrame
    event_study: pd.DataFrame
    group_time: pd.DataFrame
    pairs: pd.DataFrame
    balance: pd.DataFrame
    trends: pd.DataFrame
    notes: pd.DataFrame
    power: pd.DataFrame = field(default_factory=pd.DataFrame)
    honest_did: pd.DataFrame = field(default_factory=pd.DataFrame)
    pilot_effects: pd.DataFrame = field(default_factory=pd.DataFrame)
    sdid_weights: pd.DataFrame = field(default_factory=pd.DataFrame)
    contrasts: pd.DataFrame = field(default_factory=pd.DataFrame)

    def tables(self) -> dict[str, pd.DataFrame]:
        """``{file name: table}`` of every results table, as written to ``results/``."""
        return {"estimates.csv": self.estimates, "evidence.csv": self.evidence,
                "event_study.csv": self.event_study, "group_time.csv": self.group_time,
                "matched_pairs.csv": self.pairs, "balance.csv": self.balance,
                "trends.csv": self.trends, "notes.csv": self.notes, "power.csv": self.power,
                "honest_did.csv": self.honest_did, "pilot_effects.csv": self.pilot_effects,
                "sdid_weights.csv": self.sdid_weights, "contrasts.csv": self.contrasts,
                # which outcomes were estimated: the book's outcome list reads this small file,
                # so a changed estimate does not re-execute chapters that only list outcomes
                "outcomes.csv": pd.DataFrame({"outcome": pd.unique(self.estimates["outcome"])
                                              if len(self.estimates) else []})}


_WORKER: dict[str, Any] = {}


def _init_worker(panel_path: str, design_path: str) -> None:

    _WORKER["panel"] = load_panel(Path(panel_path))
    _WORKER["design"] = load_design(Path(design_path))


def _work(run: Run) -> tuple[Run, RunOutput]:
    return run, run_one(_WORKER["panel"], _WORKER["design"], run)


def _child_level_gap(panel: pd.DataFrame, design: StudyDesign, o: Outcome) -> str:
    """Why a child-level outcome cannot be estimated on this panel ('' when it can).

    The public panel lacks child-level measures; a panel built from returns for
    some years or LAs only may lack a pilot's pre-period or any comparator's value.
    """
    if o.measure not in panel.columns:
        return (f"child-level outcome whose measure {o.measure} is not in the panel "
                "(build the panel with child-level data: python -m analysis data --child-level DIR)")
    have = panel[panel[o.measure].notna()]
    treated = design.treated(o)
    pre = have[have["la_code"].isin(list(treated)) & have["year"].isin(design.pre_years(o))]
    if pre.empty:
        return (f"no pilot has a child-level {o.measure} in the pre-period "
                f"({_year_span(design.pre_years(o))}): the child-level returns do not cover it")
    if not have["la_code"].isin(design.donor_pool()).any():
        return f"no LA of the donor pool has a child-level {o.measure}"
    return ""


def run_study(panel_path: Path | None = None, design_path: Path | None = None, *,
              workers: int | None = None, progress: bool = True,
              outcomes: list[str] | None = None, specifications: list[str] | None = None,
              cache: Any = None) -> StudyResults:
    """Run every outcome x specification of the design on the built panel.

    Parameters
    ----------
    panel_path, design_path
        Default ``data/processed/panel.csv`` and ``data/study_design.yaml``.
    workers
        Processes to use (default: the machine's cores, at most 4; 1 runs inline).
    progress
        Print one line per outcome as it completes.
    outcomes
        Only these outcome ids (default: all of the design's).
    specifications
        Only these specifications (default: all; ``main`` is always run). For tests
        and trials: grades then count only the robustness checks that were run.
    cache
        Optional store of finished runs (``analysis.run.build.RunCache``):
        ``cache.load(panel, design, runs)`` returns ``{run: RunOutput}`` for the
        runs whose inputs are unchanged, which are not run again, and
        ``cache.save(panel, design, outputs)`` keeps the runs just computed.
    """
    panel_path = Path(panel_path or PROCESSED_DIR / "panel.csv")
    design_path = Path(design_path or DESIGN_PATH)
    panel = load_panel(panel_path)
    design = load_design(design_path, known_measures=set(panel.columns))
    # Child-level outcomes (source: child_level) run only on a panel built in
    # child-level mode; otherwise they are left out with a note, so the public
    # results are exactly those of a design without them.
    reasons = {o.id: _child_level_gap(panel, design, o) for o in design.outcomes
               if o.source == "child_level"}
    absent = [o for o in design.outcomes if reasons.get(o.id)]
    skipped = [dict(outcome=o.id, specification="", note=f"not estimated: {reasons[o.id]}")
               for o in absent if outcomes is None or o.id in outcomes]
    if absent:
        design = dataclasses.replace(design, outcomes=tuple(o for o in design.outcomes if o not in absent))
    runs = [r for r in plan_runs(design, panel) if (outcomes is None or r.outcome in outcomes)
            and (specifications is None or r.spec == MAIN or r.spec in specifications)]
    skipped += [dict(outcome=oid, specification=spec, note="not run: it reproduces the main specification "
                     "for this outcome, so it is not counted as a robustness check")
                for oid, spec in duplicate_specs(design) if outcomes is None or oid in outcomes]
    planned = {(r.outcome, r.spec) for r in runs}
    skipped += [dict(outcome=o.id, specification=name, note="not run: no value of its measure in its window is "
                     "flagged by the anomaly rule, so it reproduces the main specification")
                for o in design.outcomes for name, spec in design.specifications.items()
                if spec.drop_anomalies and (o.id, name) not in planned and (outcomes is None or o.id in outcomes)
                and (specifications is None or name in specifications)]
    workers = workers or min(4, os.cpu_count() or 1)
    outputs: dict[Run, RunOutput] = {}
    per_outcome = {o.id: sum(r.outcome == o.id for r in runs) for o in design.outcomes
                   if outcomes is None or o.id in outcomes}
    done: dict[str, int] = {k: 0 for k in per_outcome}

    def record(run: Run, out: RunOutput) -> None:
        outputs[run] = out
        done[run.outcome] += 1
        if progress and done[run.outcome] == per_outcome[run.outcome]:
            print(f"  {run.outcome}: {per_outcome[run.outcome]} specifications done", flush=True)

    cached = cache.load(panel, design, runs) if cache is not None else {}
    todo = [r for r in runs if r not in cached]
    for run in runs:
        if run in cached:
            record(run, cached[run])
    if workers <= 1 or len(todo) <= 1:
        for run in todo:
            record(run, run_one(panel, design, run))
    else:
        # The main runs (synthetic DiD on every donor, simulated MDE) take seconds, the
        # others a fraction of one: handing out the long ones first keeps both workers
        # busy to the end. The tables keep the plan's order (`ordered` below).
        by_length = sorted(todo, key=lambda r: r.spec != MAIN)
        with ProcessPoolExecutor(max_workers=min(workers, len(todo)), initializer=_init_worker,
                                 initargs=(str(panel_path), str(design_path))) as pool:
            for run, out in pool.map(_work, by_length, chunksize=1):
                record(run, out)
    if cache is not None:
        cache.save(panel, design, {r: outputs[r] for r in todo})
    ordered = [outputs[r] for r in runs]  # plan order, whatever the completion order
    rows = [row for o in ordered for row in o.estimates]
    rows += child_lpm_estimates(design, runs, outputs, panel_path.parent)
    estimates = pd.DataFrame(rows, columns=ESTIMATE_COLUMNS)
    diagnostics = {(r.outcome, r.label): outputs[r] for r in runs}

    def cat(attr: str) -> pd.DataFrame:
        frames = [getattr(o, attr) for o in ordered if getattr(o, attr) is not None]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    return StudyResults(estimates=estimates, evidence=grade_outcomes(design, estimates, diagnostics, panel),
                        event_study=cat("event_study"), group_time=cat("group_time"),
                        pairs=cat("pairs"), balance=cat("balance"), trends=cat("trends"),
                        notes=pd.DataFrame([n for o in ordered for n in o.notes] + skipped,
                                           columns=["outcome", "specification", "note"]),
                        power=cat("power"), honest_did=cat("honest"), pilot_effects=cat("pilot_effects"),
                        sdid_weights=cat("sdid_weights"), contrasts=contrasts(design, estimates))


def contrasts(design: StudyDesign, estimates: pd.DataFrame) -> pd.DataFrame:
    """Pre-declared contrasts between specifications, per outcome, with an interval.

    - ``similar_models``: main minus ``exclude_similar_models`` (does the estimate grow
      when LAs running similar models leave the comparators, as the 2021 evaluation
      found?); ``grows`` says whether its magnitude grows;
    - ``prior_use``: ``pilots_new_to_sos`` minus ``pilots_experienced`` (does prior use
      bias the estimate towards zero?).

    The standard error of a difference is ``sqrt(se1^2 + se2^2)`` from the two
    cluster-robust standard errors, t with G - 1 degrees of freedom of the smaller
    sample: conservative when, as here, the two estimates share pilots or
    comparators and are positively correlated; for two disjoint pilot groups it
    treats them as independent.
    """
    rows = []
    cl = estimates[(estimates["estimator"] == "twfe") & (estimates["inference"] == "cluster")]
    pairs = {"similar_models": (MAIN, "exclude_similar_models"),
             "prior_use": ("pilots_new_to_sos", "pilots_experienced")}
    for o in design.outcomes:
        e = cl[cl["outcome"] == o.id].set_index("specification")
        for name, (a, b) in pairs.items():
            if a not in e.index or b not in e.index:
                continue
            ea, eb = e.loc[a], e.loc[b]
            diff = float(ea["estimate"] - eb["estimate"])
            se = math.sqrt(float(ea["std_error"]) ** 2 + float(eb["std_error"]) ** 2)
            g = int(min(ea["n_treated"] + ea["n_comparison"], eb["n_treated"] + eb["n_comparison"]))
            q = float(stats.t.ppf(1 - design.inference.alpha / 2, max(g - 1, 1)))
            p = float(2 * stats.t.sf(abs(diff) / se, max(g - 1, 1))) if se > 0 else math.nan
            grows = bool(abs(eb["estimate"]) > abs(ea["estimate"])) if name == "similar_models" else None
            rows.append(dict(outcome=o.id, contrast=name, first=a, second=b,
                             estimate_first=float(ea["estimate"]), estimate_second=float(eb["estimate"]),
                             difference=diff, std_error=se, ci_low=diff - q * se, ci_high=diff + q * se,
                             p_value=p, grows=grows))
    return pd.DataFrame(rows, columns=["outcome", "contrast", "first", "second", "estimate_first",
                                       "estimate_second", "difference", "std_error", "ci_low", "ci_high",
                                       "p_value", "grows"])


def write_results(results: StudyResults, out_dir: Path | None = None) -> list[Path]:
    """Write every results table atomically into ``results/`` (default), then its per-outcome slices.

    The slices (:func:`analysis.run.slices.write_outcome_slices`) let a findings
    chapter read its own outcomes' rows only.
    """
    out_dir = Path(out_dir or RESULTS_DIR)
    written = write_atomically(results.tables(), out_dir)
    write_outcome_slices(out_dir)
    return written
