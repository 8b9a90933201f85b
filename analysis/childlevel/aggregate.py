"""Child-level outcomes aggregated to the LA-year panel.

:func:`tidy_measures` runs every outcome of :mod:`analysis.childlevel.outcomes`
that the given tables allow and returns tidy rows ``la_code, year, measure,
numerator, denominator, value``; :func:`to_panel_measures` pivots them to the
layout of ``data/processed/panel.csv`` (one row per ``la_code`` and ``year``,
one column per measure), so the panel, matching and estimation code can
consume them unchanged, for example by merging on ``la_code, year``.
:func:`measure_definitions` gives the rows, in the style of
``data/measure_definitions.csv`` (``name, label, unit, kind, definition,
derived_from``), that describe the new columns.

Child-level measure names end in ``_child`` where a published measure with a
close definition exists (``assessments_45wd_pct`` published vs
``assessments_45wd_pct_child`` from the records), so the study design file can
say which source an outcome uses and the two never overwrite each other.

The numerators and denominators are kept in the tidy rows because the
disclosure step (``analysis.childlevel.disclosure``) needs the counts behind every
percentage; the wide panel holds the values only.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from analysis.childlevel import outcomes as O
from analysis.core.errors import DesignError, relative_path
from analysis.core.paths import DATA_DIR

__all__ = ["MEASURES", "OUTCOME_RULES_PATH", "OutcomeRules", "load_outcome_rules",
           "measure_definitions", "tidy_measures", "to_panel_measures"]

#: Parameters and rule text of the child-level outcomes (the study design's, as data).
OUTCOME_RULES_PATH = DATA_DIR / "childlevel_outcomes.yaml"
#: parameter -> expected type: "codes" (a list of SSDA903 codes), "int" (> 0) or a set of words
PARAMETER_TYPES: dict[str, Any] = {
    "kinship_placements": "codes", "foster_placements": "codes",
    "cla_excluded_legal_statuses": "codes", "poc_window_days": "int",
    "poc_legal_statuses": "codes", "poc_kinship_placements": "codes",
    "poc_kinship_reasons": "codes", "assessment_start": {"referral", "assessment"},
    "assessment_limit_working_days": "int", "rereferral_months": "int",
    "nfa_rereferral_months": "int", "escalation_window_months": "int",
}
RULE_FIELDS = ("outcome", "measures", "population", "indicator", "window", "year",
               "evaluation_2021")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class OutcomeRules:
    """The child-level outcome rules of ``data/childlevel_outcomes.yaml``.

    ``parameters`` are the values the outcome functions use; ``rules`` the
    rule texts, one dict per outcome, with ``{parameter}`` placeholders.
    """

    parameters: dict[str, Any]
    rules: tuple[dict[str, Any], ...]
    path: Path = OUTCOME_RULES_PATH

    def text(self, template: str) -> str:
        """``template`` with every ``{parameter}`` replaced by its value (lists as "U1, U2")."""
        def value(m: re.Match) -> str:
            v = self.parameters[m.group(1)]
            return ", ".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)
        return _PLACEHOLDER.sub(value, template)

    def table(self) -> pd.DataFrame:
        """The rules with their parameter values filled in, one row per outcome (method chapter)."""
        rows = []
        for r in self.rules:
            rows.append({"Outcome": self.text(r["outcome"]),
                         "Measures": ", ".join(r["measures"]),
                         "Who is counted": self.text(r["population"]),
                         "What is counted": self.text(r["indicator"]),
                         "Window and censoring": self.text(r["window"]),
                         "Year": self.text(r["year"]),
                         "Compared with the 2021 evaluation": self.text(r["evaluation_2021"])})
        return pd.DataFrame(rows)

    def markdown(self) -> str:
        """The rules as MyST markdown: one bold outcome heading and a list of its fields."""
        blocks = []
        for _, r in self.table().iterrows():
            measures = ", ".join(f"`{m}`" for m in r["Measures"].split(", "))
            items = [f"- *{k}.* {r[k]}" for k in ("Who is counted", "What is counted",
                                                 "Window and censoring", "Year",
                                                 "Compared with the 2021 evaluation")]
            blocks.append(f"**{r['Outcome']}** ({measures})\n\n" + "\n".join(items))
        return "\n\n".join(blocks)

    def outcome_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`tidy_measures` from the parameters."""
        p = self.parameters
        return dict(kinship_codes=tuple(p["kinship_placements"]),
                    foster_codes=tuple(p["foster_placements"]),
                    cla_excluded_legal_statuses=tuple(p["cla_excluded_legal_statuses"]),
                    poc_window_days=p["poc_window_days"],
                    poc_legal_statuses=tuple(p["poc_legal_statuses"]),
                    poc_placements=tuple(p["poc_kinship_placements"]),
                    poc_reasons=tuple(p["poc_kinship_reasons"]),
                    assessment_start=p["assessment_start"],
                    assessment_limit=p["assessment_limit_working_days"],
                    rereferral_months=p["rereferral_months"],
                    nfa_months=p["nfa_rereferral_months"],
                    escalation_window_months=p["escalation_window_months"])


def load_outcome_rules(path: Path | str = OUTCOME_RULES_PATH) -> OutcomeRules:
    """Read and check ``data/childlevel_outcomes.yaml``.

    Raises
    ------
    DesignError
        Unreadable file, an unknown or missing key, a value of the wrong type, a
        ``{placeholder}`` naming no parameter, or a rule naming an unknown measure.
    """
    path = Path(path)
    where = relative_path(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise DesignError(f"cannot read the child-level outcome rules: {e}", file=where) from None
    if not isinstance(doc, dict) or set(doc) != {"parameters", "rules"}:
        raise DesignError("expected exactly the keys 'parameters' and 'rules'", file=where)
    params = doc["parameters"] or {}
    unknown = sorted(set(params) - set(PARAMETER_TYPES))
    missing = sorted(set(PARAMETER_TYPES) - set(params))
    if unknown or missing:
        raise DesignError(f"parameters: unknown key {unknown[0]!r}" if unknown
                          else f"parameters: missing key {missing[0]!r}", file=where)
    for key, kind in PARAMETER_TYPES.items():
        v = params[key]
        ok = (isinstance(v, list) and v and all(isinstance(c, str) and c.strip() for c in v)
              if kind == "codes" else
              isinstance(v, int) and not isinstance(v, bool) and v > 0 if kind == "int" else
              v in kind)
        if not ok:
            want = ("a list of codes" if kind == "codes" else
                    "a positive whole number" if kind == "int" else " or ".join(sorted(kind)))
            raise DesignError(f"parameters.{key} must be {want}, not {v!r}", file=where)
    rules = doc["rules"]
    if not isinstance(rules, list) or not rules:
        raise DesignError("rules must be a list of outcomes", file=where)
    for i, r in enumerate(rules):
        if not isinstance(r, dict) or set(r) != set(RULE_FIELDS):
            got = sorted(r) if isinstance(r, dict) else r
            raise DesignError(f"rules[{i}] must have exactly the fields {', '.join(RULE_FIELDS)} "
                              f"(has {got})", file=where)
        if not (isinstance(r["measures"], list) and r["measures"]):
            raise DesignError(f"rules[{i}].measures must be a list of child-level measures, "
                              f"not {r['measures']!r}", file=where)
        for m in r["measures"]:
            if m not in MEASURES:
                raise DesignError(f"rules[{i}].measures: unknown child-level measure {m!r}", file=where)
        for f in RULE_FIELDS:
            if f == "measures":
                continue
            for name in _PLACEHOLDER.findall(str(r[f])):
                if name not in params:
                    raise DesignError(f"rules[{i}].{f}: {{{name}}} names no parameter", file=where)
    return OutcomeRules(parameters=params, rules=tuple(rules), path=path)

_WD = ("working days from the {assessment_start} date (day 0) to the assessment's authorisation date, "
       "excluding weekends and England and Wales bank holidays")

#: name -> (label, unit, kind, definition)
MEASURES: dict[str, tuple[str, str, str, str]] = {
    "cla_31mar_child": (
        "Children looked after at 31 March (child-level)", "count", "count",
        "Children with an SSDA903 episode open on 31 March (DECOM on or before 31 March and "
        "DEC blank or after 31 March) under a legal status other than {cla_excluded_legal_statuses} "
        "(short breaks, which DfE does not count), counted once per LA."),
    "cla_foster_child": (
        "Children looked after in foster care at 31 March (child-level)", "count", "count",
        "Children looked after at 31 March (short breaks, {cla_excluded_legal_statuses}, not counted) "
        "whose placement (PLACE) is a foster placement, {foster_placements}."),
    "cla_kinship": (
        "Children looked after in kinship foster care at 31 March", "count", "count",
        "Children looked after at 31 March (short breaks, {cla_excluded_legal_statuses}, not counted) "
        "in a foster placement with a relative or friend (PLACE {kinship_placements})."),
    "cla_kinship_pct": (
        "Children looked after in kinship foster care (% of children looked after)", "percent", "pct",
        "Children looked after at 31 March placed in foster care with a relative or friend "
        "(PLACE {kinship_placements}) as a percentage of all children looked after at 31 March, "
        "as DfE counts them (short breaks, {cla_excluded_legal_statuses}, not counted) (SSDA903)."),
    "foster_kinship_pct": (
        "Foster placements with relatives or friends (% of foster placements)", "percent", "pct",
        "Children looked after at 31 March in foster care with a relative or friend (PLACE "
        "{kinship_placements}) as a percentage of children in any foster placement (PLACE "
        "{foster_placements}); short breaks ({cla_excluded_legal_statuses}) not counted (SSDA903)."),
    "poc_kinship_pct": (
        "Periods of care with a kinship placement in the first year (%)", "percent", "pct",
        "Periods of care starting in the year (episode RNE 'S') under legal status "
        "{poc_legal_statuses} in which, within {poc_window_days} days of the start, the child was "
        "placed with a relative or friend or with parents ({poc_kinship_placements}) or left care "
        "by a special guardianship order to relatives or friends or to live with parents or "
        "relatives (REC {poc_kinship_reasons}): the 2021 evaluation's kinship outcome."),
    "assessments_completed_child": (
        "Assessments completed (child-level)", "count", "count",
        "Children and family assessments authorised during the year (CIN census)."),
    "assessments_45wd_pct_child": (
        "Assessments completed within {assessment_limit_working_days} working days (%, child-level)", "percent", "pct",
        f"Assessments authorised during the year that took at most "
        f"{{assessment_limit_working_days}} {_WD}, as a percentage of "
        "assessments authorised during the year (CIN census)."),
    "assessment_days_median": (
        "Median assessment duration (working days)", "working days", "rate",
        f"Median number of {_WD}, over assessments authorised during the year (CIN census)."),
    "referrals_child": (
        "Referrals (child-level)", "count", "count",
        "Referrals during the year, a child's referrals on the same date counted once (CIN census)."),
    "rereferrals_child": (
        "Re-referrals within {rereferral_months} months (child-level)", "count", "count",
        "Referrals during the year dated within {rereferral_months} calendar months after the same child's "
        "previous referral in the LA (CIN census)."),
    "rereferral_12m_pct_child": (
        "Re-referrals within {rereferral_months} months (%, child-level)", "percent", "pct",
        "Referrals during the year dated within {rereferral_months} calendar months after the same child's "
        "previous referral in the LA, as a percentage of referrals during the year (CIN census)."),
    "rereferral_6m_after_nfa_pct": (
        "Re-referrals within {nfa_rereferral_months} months of no further action (%)", "percent", "pct",
        "Referrals closed with no further action (closure date, or referral date when not "
        "closed, in the year) followed by another referral of the child within {nfa_rereferral_months} calendar "
        "months, as a percentage of such referrals (CIN census)."),
    "rereferral_escalation_pct": (
        "Re-referrals followed by a child protection plan or entry to care (%)", "percent", "pct",
        "Re-referrals within {rereferral_months} months made during the year that were followed, on or after the "
        "re-referral date and within {escalation_window_months} calendar months, by the start of a child "
        "protection plan or by the child starting to be looked after (SSDA903 RNE 'S'), as a percentage of "
        "re-referrals (CIN census and SSDA903)."),
    "icpc_count_child": (
        "Initial child protection conferences (child-level)", "count", "count",
        "Initial child protection conferences held during the year, one per child and date "
        "(CIN census)."),
    "icpc_rate_per10k_child": (
        "Initial child protection conferences per 10,000 children (child-level)",
        "rate per 10,000", "rate",
        "Initial child protection conferences held during the year per 10,000 children aged "
        "0-17 (CIN census; ONS mid-year population)."),
}


def measure_definitions(rules: OutcomeRules | None = None) -> pd.DataFrame:
    """Rows in the layout of ``data/measure_definitions.csv`` for the child-level measures.

    Labels and definitions have the parameter values of ``rules`` (default:
    the rules file) filled in.
    """
    rules = rules or load_outcome_rules()
    return pd.DataFrame([{"name": k, "label": rules.text(v[0]), "unit": v[1], "kind": v[2],
                          "definition": rules.text(v[3]), "derived_from": "", "series": ""}
                         for k, v in MEASURES.items()])


def tidy_measures(episodes: pd.DataFrame | None = None, cin: dict | None = None, *,
                  pop: pd.DataFrame | None = None, data_start=None, data_end=None,
                  rules: OutcomeRules | None = None, years=None, **overrides) -> pd.DataFrame:
    """Every child-level measure the inputs allow, as tidy LA-year rows.

    Parameters
    ----------
    episodes : DataFrame, optional
        SSDA903 episodes (kinship; entries to care for escalation).
    cin : dict of DataFrame, optional
        CIN census tables (``referrals``, ``assessments``, ``s47``, ``cpp``).
    pop : DataFrame, optional
        ``la_code, year, pop_0_17`` for the conference rate.
    data_start, data_end : date, optional
        First and last days the records cover: re-referrals whose 12-month
        history starts before ``data_start`` and windows that end after
        ``data_end`` are left out (censored) rather than counted as zero.
    rules : OutcomeRules, optional
        Code lists and windows (default: ``data/childlevel_outcomes.yaml``).
    years : iterable of int, optional
        Reporting years of the 31 March kinship snapshot (default: all spanned).
    **overrides
        Replace single values of :meth:`OutcomeRules.outcome_kwargs`, e.g.
        ``escalation_window_months=6`` or ``assessment_start="assessment"``.
    """
    kw = (rules or load_outcome_rules()).outcome_kwargs()
    unknown = sorted(set(overrides) - set(kw))
    if unknown:
        raise TypeError(f"tidy_measures() got an unexpected keyword argument {unknown[0]!r}")
    kw.update(overrides)
    parts = []
    if episodes is not None:
        parts.append(O.kinship_la_year(O.kinship_snapshot(
            episodes, years=years, kinship_codes=kw["kinship_codes"], foster_codes=kw["foster_codes"],
            excluded_legal_statuses=kw["cla_excluded_legal_statuses"])))
        if {"rne", "ls", "rec"} <= set(episodes.columns):
            parts.append(O.kinship_poc_la_year(O.kinship_periods_of_care(
                episodes, window_days=kw["poc_window_days"], legal_statuses=kw["poc_legal_statuses"],
                placements=kw["poc_placements"], reasons=kw["poc_reasons"], data_end=data_end)))
    if cin is not None:
        if "assessments" in cin and "referrals" in cin:
            parts.append(O.assessment_la_year(O.assessment_durations(
                cin, start=kw["assessment_start"], limit=kw["assessment_limit"])))
        if "referrals" in cin:
            parts.append(O.rereferral_la_year(O.rereferrals(
                cin, months=kw["rereferral_months"], data_start=data_start)))
            if "referral_nfa" in cin["referrals"].columns:
                parts.append(O.rereferral_nfa_la_year(O.rereferral_after_nfa(
                    cin, months=kw["nfa_months"], data_end=data_end)))
            if "cpp" in cin or episodes is not None:
                parts.append(O.escalation_la_year(O.rereferral_escalation(
                    cin, episodes, months=kw["rereferral_months"],
                    window_months=kw["escalation_window_months"], data_start=data_start,
                    data_end=data_end)))
        if "s47" in cin:
            parts.append(O.icpc_la_year(O.icpcs(cin), pop=pop))
    return O._concat(parts)


def to_panel_measures(episodes: pd.DataFrame | None = None, cin: dict | None = None, *,
                      tidy: pd.DataFrame | None = None, **kwargs) -> pd.DataFrame:
    """Wide LA-year frame: ``la_code, year`` then one column per child-level measure.

    The columns follow :data:`MEASURES` order and hold ``value`` of the tidy
    rows (percentages 0-100, counts, rates per 10,000, median working days),
    as the measure columns of ``data/processed/panel.csv`` do. Pass ``tidy``
    (from :func:`tidy_measures`, perhaps after disclosure control) to pivot it
    instead of recomputing; other keyword arguments go to :func:`tidy_measures`.
    LA-years with no records for a measure are NaN.
    """
    if tidy is None:
        tidy = tidy_measures(episodes, cin, **kwargs)
    if not len(tidy):
        return pd.DataFrame(columns=["la_code", "year"])
    wide = tidy.pivot_table(index=["la_code", "year"], columns="measure", values="value",
                            aggfunc="first", dropna=False)
    wide.columns.name = None
    wide = wide.reset_index()
    wide["year"] = wide["year"].astype(int)
    cols = [m for m in MEASURES if m in wide.columns]
    cols += sorted(c for c in wide.columns if c not in cols and c not in ("la_code", "year"))
    return wide[["la_code", "year"] + cols].sort_values(["la_code", "year"]).reset_index(drop=True)
