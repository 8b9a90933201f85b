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
disclosure step (``analysis.disclosure``) needs the counts behind every
percentage; the wide panel holds the values only.
"""
from __future__ import annotations

import pandas as pd

from . import outcomes as O

__all__ = ["MEASURES", "measure_definitions", "tidy_measures", "to_panel_measures"]

_WD = ("working days from the referral date (day 0) to the assessment's authorisation date, "
       "excluding weekends and England and Wales bank holidays")

#: name -> (label, unit, kind, definition)
MEASURES: dict[str, tuple[str, str, str, str]] = {
    "cla_31mar_child": (
        "Children looked after at 31 March (child-level)", "count", "count",
        "Children with an SSDA903 episode open on 31 March (DECOM on or before 31 March and "
        "DEC blank or after 31 March), counted once per LA."),
    "cla_foster_child": (
        "Children looked after in foster care at 31 March (child-level)", "count", "count",
        "Children looked after at 31 March whose placement (PLACE) is a foster placement, U1-U6."),
    "cla_kinship": (
        "Children looked after in kinship foster care at 31 March", "count", "count",
        "Children looked after at 31 March in a foster placement with a relative or friend "
        "(PLACE U1-U3)."),
    "cla_kinship_pct": (
        "Children looked after in kinship foster care (% of children looked after)", "percent", "pct",
        "Children looked after at 31 March placed in foster care with a relative or friend "
        "(PLACE U1-U3) as a percentage of all children looked after at 31 March (SSDA903)."),
    "foster_kinship_pct": (
        "Foster placements with relatives or friends (% of foster placements)", "percent", "pct",
        "Children looked after at 31 March in foster care with a relative or friend (PLACE U1-U3) "
        "as a percentage of children in any foster placement (PLACE U1-U6) (SSDA903)."),
    "poc_kinship_pct": (
        "Periods of care with a kinship placement in the first year (%)", "percent", "pct",
        "Periods of care starting in the year (episode RNE 'S') under an interim or full care "
        "order (C1, C2) in which, within 365 days of the start, the child was placed with a "
        "relative or friend or with parents (U1-U3, Q1, F1, F4, P1) or left care by a special "
        "guardianship or child arrangements order to a relative or friend (REC E45, E47, E43, "
        "E44, E4A, E4): the 2021 evaluation's kinship outcome."),
    "assessments_completed_child": (
        "Assessments completed (child-level)", "count", "count",
        "Children and family assessments authorised during the year (CIN census)."),
    "assessments_45wd_pct_child": (
        "Assessments completed within 45 working days (%, child-level)", "percent", "pct",
        f"Assessments authorised during the year that took at most 45 {_WD}, as a percentage of "
        "assessments authorised during the year (CIN census)."),
    "assessment_days_median": (
        "Median assessment duration (working days)", "working days", "rate",
        f"Median number of {_WD}, over assessments authorised during the year (CIN census)."),
    "referrals_child": (
        "Referrals (child-level)", "count", "count",
        "Referrals during the year, a child's referrals on the same date counted once (CIN census)."),
    "rereferrals_child": (
        "Re-referrals within 12 months (child-level)", "count", "count",
        "Referrals during the year dated within 12 calendar months after the same child's "
        "previous referral in the LA (CIN census)."),
    "rereferral_12m_pct_child": (
        "Re-referrals within 12 months (%, child-level)", "percent", "pct",
        "Referrals during the year dated within 12 calendar months after the same child's "
        "previous referral in the LA, as a percentage of referrals during the year (CIN census)."),
    "rereferral_6m_after_nfa_pct": (
        "Re-referrals within 6 months of no further action (%)", "percent", "pct",
        "Referrals closed with no further action (closure date, or referral date when not "
        "closed, in the year) followed by another referral of the child within 6 calendar "
        "months, as a percentage of such referrals (CIN census)."),
    "rereferral_escalation_pct": (
        "Re-referrals followed by a child protection plan or entry to care (%)", "percent", "pct",
        "Re-referrals within 12 months made during the year that were followed, on or after the "
        "re-referral date and within 12 calendar months, by the start of a child protection plan "
        "or by the child starting to be looked after (SSDA903 RNE 'S'), as a percentage of "
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


def measure_definitions() -> pd.DataFrame:
    """Rows in the layout of ``data/measure_definitions.csv`` for the child-level measures."""
    return pd.DataFrame([{"name": k, "label": v[0], "unit": v[1], "kind": v[2],
                          "definition": v[3], "derived_from": ""} for k, v in MEASURES.items()])


def tidy_measures(episodes: pd.DataFrame | None = None, cin: dict | None = None, *,
                  pop: pd.DataFrame | None = None, data_start=None, data_end=None,
                  escalation_window_months: int = 12, assessment_start: str = "referral",
                  years=None) -> pd.DataFrame:
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
    escalation_window_months : int
        Window after a re-referral in which a CPP or care entry counts.
    assessment_start : {"referral", "assessment"}
        Day 0 of the assessment duration.
    years : iterable of int, optional
        Reporting years of the 31 March kinship snapshot (default: all spanned).
    """
    parts = []
    if episodes is not None:
        parts.append(O.kinship_la_year(O.kinship_snapshot(episodes, years=years)))
        if {"rne", "ls", "rec"} <= set(episodes.columns):
            parts.append(O.kinship_poc_la_year(O.kinship_periods_of_care(episodes,
                                                                         data_end=data_end)))
    if cin is not None:
        if "assessments" in cin and "referrals" in cin:
            parts.append(O.assessment_la_year(O.assessment_durations(cin, start=assessment_start)))
        if "referrals" in cin:
            parts.append(O.rereferral_la_year(O.rereferrals(cin, data_start=data_start)))
            if "referral_nfa" in cin["referrals"].columns:
                parts.append(O.rereferral_nfa_la_year(O.rereferral_after_nfa(cin,
                                                                             data_end=data_end)))
            if "cpp" in cin or episodes is not None:
                parts.append(O.escalation_la_year(O.rereferral_escalation(
                    cin, episodes, window_months=escalation_window_months, data_end=data_end)))
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
