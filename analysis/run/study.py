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

from analysis.childlevel.did import child_lpm_from_counts
from analysis.childlevel.pipeline import COUNTS_COLUMNS, COUNTS_FILE
from analysis.core.errors import DataError, DesignError, relative_path
from analysis.core.paths import RESULTS_DIR
from analysis.design import DESIGN_PATH, Outcome, StudyDesign, load_design
from analysis.ingest.panel import PROCESSED_DIR, load_panel, write_atomically
from analysis.methods.estimation import callaway_santanna, event_study, prepare_panel, twfe_did
from analysis.methods.evidence import grade_evidence
from analysis.methods.inference import (
    randomization_inference,
    staggered_randomization_inference,
    wild_cluster_bootstrap,
)
from analysis.methods.matching import balance_table, match_comparators, max_abs_smd, pre_trend_table

MAIN = "main"

#: Columns of ``results/estimates.csv`` (issue 3); extend, never rename.
ESTIMATE_COLUMNS = ["outcome", "specification", "estimator", "inference", "estimate", "std_error",
                    "ci_low", "ci_high", "p_value", "n_treated", "n_comparison", "pre_years",
                    "post_years"]


#: Columns of ``results/evidence.csv``.
EVIDENCE_COLUMNS = ["outcome", "measure", "label", "family", "direction", "primary", "grade",
                    "estimate", "ci_low", "ci_high", "p_wild_bootstrap", "p_randomization",
                    "p_cluster", "primary_p", "pretrend_p", "max_abs_smd", "sign_agreement",
                    "n_sensitivity", "effect", "limiting", "reasons"]


@dataclass(frozen=True)
class Run:
    """One outcome under one specification (and, for leave-one-out, one pilot left out)."""

    outcome: str          # outcome id
    spec: str             # specification key in the design
    left_out: str = ""    # la_code of the pilot left out (leave_one_out only)

    @property
    def label(self) -> str:
        return f"{self.spec}:{self.left_out}" if self.left_out else self.spec


def plan_runs(design: StudyDesign) -> list[Run]:
    """Every run the design declares, main specification first within each outcome."""
    runs = []
    for o in design.outcomes:
        for name, spec in design.specifications.items():
            if spec.leave_one_out:
                for code in design.treated(o, name):
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
    (``analysis.run.build``) cannot miss an input.
    """
    context = design.matching_kwargs(run.spec)["context"]
    return list(dict.fromkeys([*RUN_ID_COLUMNS, design.outcome(run.outcome).measure, *context]))


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
    spec = design.spec(run.spec)
    panel = panel[run_columns(design, run)]  # nothing else of the panel reaches a run
    full = (run.spec == MAIN) if full is None else full
    measure = o.measure
    treated = design.treated(o, run.spec)
    if run.left_out:
        treated = {k: v for k, v in treated.items() if k != run.left_out}
    years = design.years(o, run.spec)
    pre = design.pre_years(o, run.spec)
    inf = design.inference
    out = RunOutput()

    def note(text: str) -> None:
        out.notes.append(dict(outcome=o.id, specification=run.label, note=text))

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
    kwargs = design.matching_kwargs(run.spec)
    # Level: mean of the observed pre-years; trend: slope over at least two of them.
    kwargs.setdefault("min_pre_years", min(2, len(pre)))
    if len(pre) >= 2 and (n_pre[list(treated)] < 2).any():
        few = [names[c] for c in n_pre.index if c in treated and n_pre[c] < 2]
        note(f"matched on the pre-period level of {measure} without its trend: "
             f"{', '.join(few)} {'has' if len(few) == 1 else 'have'} a single published pre-year")
        kwargs.update(outcome_trend=False, min_pre_years=1)
    match = match_comparators(panel, treated, design.donor_pool(run.spec), measure, pre, **kwargs)
    mp = match.matched_panel
    mp = mp[mp["year"].isin(years)][["la_code", "year", measure, "first_treated", "weight"]]
    est_panel = prepare_panel(mp, outcome=measure, unit="la_code", time="year",
                              first_treated="first_treated", weights="weight")
    start = min(treated.values())
    common = dict(outcome=o.id, specification=run.label,
                  n_treated=int(est_panel.n_treated),
                  n_comparison=int(est_panel.n_units - est_panel.n_treated),
                  pre_years=_year_span([y for y in years if y < start]),
                  post_years=_year_span([y for y in years if y >= start]))
    alpha, seed = inf.alpha, inf.seed

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
    bal = balance_table(match)
    out.max_abs_smd = float(max_abs_smd(bal, "after"))
    if run.spec == MAIN:
        out.pairs = match.pairs.assign(outcome=o.id)
        out.balance = bal.assign(outcome=o.id)
        out.trends = pre_trend_table(match, years=years, include_pool=True).assign(outcome=o.id)
    return out


def child_lpm_estimates(design: StudyDesign, runs: list[Run], outputs: dict[Run, RunOutput],
                        processed_dir: Path) -> list[dict]:
    """Child-level DiD beside the LA-level one, for every run of a child-level outcome.

    A child-level model like the published evaluation's (:mod:`analysis.childlevel.did`,
    which says how they differ): a linear probability model on one row per child
    record (a period of care, a referral) with LA and year fixed effects,
    standard errors clustered by LA, t with G - 1 degrees of freedom. It is fitted on the run's matched LAs and years, each child
    weighted by its LA's matching weight, from the LA-year counts the data stage
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
    return {k[0] for k in diagnostics}


def grade_outcomes(design: StudyDesign, estimates: pd.DataFrame,
                   diagnostics: dict[tuple[str, str], RunOutput]) -> pd.DataFrame:
    """One evidence grade per outcome from the main specification and the sensitivity runs.

    The primary p-value is the larger of the wild bootstrap and randomization
    p-values (``evidence.primary_p_value`` in the design); the interval is the
    wild bootstrap's; sign agreement is the share of the other specifications
    (each leave-one-out run counted once) whose TWFE estimate has the main sign.
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
        primary_p = max(wb["p_value"], ri["p_value"])
        others = e[(e["specification"] != MAIN) & (e["inference"] == "cluster")]
        sign = np.sign(wb["estimate"])
        agree = float((np.sign(others["estimate"]) == sign).mean()) if len(others) else math.nan
        diag = diagnostics[(o.id, MAIN)]
        g = grade_evidence(primary_p, wb["ci_low"], wb["ci_high"], diag.pretrend_p,
                           diag.max_abs_smd, agree, th)
        rows.append(dict(outcome=o.id, measure=o.measure, label=o.label, family=o.family,
                         direction=o.direction, primary=o.primary, grade=g.level,
                         estimate=wb["estimate"], ci_low=wb["ci_low"], ci_high=wb["ci_high"],
                         p_wild_bootstrap=wb["p_value"], p_randomization=ri["p_value"],
                         p_cluster=main.loc["cluster", "p_value"], primary_p=primary_p,
                         pretrend_p=diag.pretrend_p, max_abs_smd=diag.max_abs_smd,
                         sign_agreement=agree, n_sensitivity=int(len(others)),
                         effect=_direction_word(o, wb["estimate"]),
                         limiting="; ".join(c.name for c in g.criteria if c.ceiling == g.level
                                            and c.passed is not True) if g.level != "high" else "",
                         reasons=" | ".join(g.reasons)))
    return pd.DataFrame(rows, columns=EVIDENCE_COLUMNS)


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

    def tables(self) -> dict[str, pd.DataFrame]:
        return {"estimates.csv": self.estimates, "evidence.csv": self.evidence,
                "event_study.csv": self.event_study, "group_time.csv": self.group_time,
                "matched_pairs.csv": self.pairs, "balance.csv": self.balance,
                "trends.csv": self.trends, "notes.csv": self.notes}


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
              outcomes: list[str] | None = None, cache: Any = None) -> StudyResults:
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
    runs = [r for r in plan_runs(design) if outcomes is None or r.outcome in outcomes]
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
        with ProcessPoolExecutor(max_workers=min(workers, len(todo)), initializer=_init_worker,
                                 initargs=(str(panel_path), str(design_path))) as pool:
            for run, out in pool.map(_work, todo, chunksize=1):
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

    return StudyResults(estimates=estimates, evidence=grade_outcomes(design, estimates, diagnostics),
                        event_study=cat("event_study"), group_time=cat("group_time"),
                        pairs=cat("pairs"), balance=cat("balance"), trends=cat("trends"),
                        notes=pd.DataFrame([n for o in ordered for n in o.notes] + skipped,
                                           columns=["outcome", "specification", "note"]))


def write_results(results: StudyResults, out_dir: Path | None = None) -> list[Path]:
    """Write every results table atomically into ``results/`` (default)."""

    return write_atomically(results.tables(), Path(out_dir or RESULTS_DIR))
