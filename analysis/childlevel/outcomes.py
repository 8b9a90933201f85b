"""Child-level outcome definitions, close to the 2021 Signs of Safety evaluation's.

Every function here takes the child-level tables (SSDA903 episodes, CIN census
tables) as plain DataFrames and returns a child-level or event-level frame with
the indicator; a companion ``*_la_year`` function turns that frame into tidy
LA-year rows ``la_code, year, measure, numerator, denominator, value``.
:mod:`analysis.childlevel.aggregate` gathers them into the panel layout.

Input tables (the interface of :mod:`analysis.childlevel.readers`)
------------------------------------------------------------------
SSDA903 episodes: ``la`` (ONS code), ``child``, ``decom`` (date episode
commenced), ``dec`` (date episode ceased, NaT while open), ``rne`` (reason for
new episode), ``ls`` (legal status), ``place`` (placement type), ``rec``
(reason episode ceased).

CIN census (dict of tables): ``referrals`` (la, child, referral_id,
cin_referral_date, cin_closure_date, reason_for_closure, referral_nfa),
``assessments`` (la, child, referral_id, assessment_actual_start_date,
assessment_authorisation_date), ``s47`` (la, child, s47_actual_start_date,
icpc_date), ``cpp`` (la, child, cpp_start_date, cpp_end_date).

A child is identified by ``(la, child)``: LA child identifiers are unique only
within an LA, and the 903 ``child`` and the CIN ``child`` are assumed to be the
same LA identifier (as the evaluation linked ``CHILD_LA_CODE`` to
``LAchildID``).

Conventions
-----------
Reporting year Y is 1 April Y-1 to 31 March Y (:func:`reporting_year`).
``data_start`` and ``data_end`` (the first and last days the records cover)
are a date, or a mapping from LA to date when LAs' returns cover different
years (:func:`analysis.childlevel.returns.records_coverage`).
"Within n months" uses calendar months (``pandas.DateOffset``): a date d is
within n months after a date a when ``a < d <= a + n months`` (31 January + 1
month is 28/29 February). The evaluation's R code used 30.5-day months for the
six-month windows (183 days); the difference is at most three days.

Definitions (exact)
-------------------
**Kinship care at 31 March** (:func:`kinship_snapshot`). For each reporting
year Y, the children looked after on 31 March Y are, as DfE counts them, those
with an episode such that ``decom <= 31 March Y`` and (``dec`` is NaT or
``dec > 31 March Y``) and whose legal status ``ls`` is not V3 or V4 (an agreed
series of short-term breaks: DfE's looked-after statistics exclude these
children, "Unless otherwise stated, numbers and percentage exclude children
looked after under an agreed series of short term placements", metadata of the
SFR underlying data 2014-2019; :data:`SHORT_BREAK_LEGAL_STATUSES`); a child
with more than one such episode (an error in a return) is counted once, with
the episode that started last. The child is in foster care when
``place`` is U1-U6 and in *kinship* (family and friends) foster care when
``place`` is U1-U3 (foster placement with a relative or friend: long-term,
FFA/concurrent, other). Two child-level indicators: ``kinship_cla`` (0/1 for
every looked-after child) and ``kinship_foster`` (0/1 for children in foster
care, NaN otherwise). LA-year: ``cla_kinship_pct`` = U1-U3 as % of all
children looked after at 31 March; ``foster_kinship_pct`` = U1-U3 as % of
children in U1-U6.

**Kinship care in a period of care** (:func:`kinship_periods_of_care`), the
published evaluation's own outcome (WWCSC ``02_c_cleaning_raw_data_CLA.R``):
a period of care starts with an episode whose ``rne`` is ``S``; its
population is episodes under the legal statuses given (default C1, C2: interim
and full care orders) starting within 365 days of the period's start; the
period counts as kinship when any of those episodes is a kinship placement
(U1-U3, legacy Q1, F1, F4 and, as the evaluation did, P1 placed with parents)
or ceased, within the 365 days, with one of the exits the evaluation's code
counted: a special guardianship order to relatives or friends (``rec`` E45,
E47; legacy E43, E44) or leaving care to live with parents, relatives or
others (E4A, legacy E4, E13; its comments say returns home were not meant to
count, but its code lists them, and this follows the code). Year: reporting
year of the period's start. The lists and the window are parameters in
``data/childlevel_outcomes.yaml``.

**Assessment duration** (:func:`assessment_durations`). For each assessment
with an authorisation date, working days from the start date to the
authorisation date, ``numpy.busday_count(start, authorisation)`` with
Saturdays, Sundays and England's bank holidays (:func:`bank_holidays`: the
``holidays`` package, country GB, subdivision ENG, with substitute days and
one-offs such as the 2022 state funeral) excluded: the working days in
``[start, authorisation)``, so the start day is day 0 and a Friday referral
authorised on the next Monday took 1 working day. This equals the
evaluation's R formula (working days in ``[start, end]`` minus one, plus one
when the end falls on a non-working day). The start is the referral date
(``start="referral"``, DfE's 45-working-day measure, matching
``assessments_45wd_pct``; the assessment is joined to its referral by
``la, child, referral_id``) or the assessment's actual start date
(``start="assessment"``, the evaluation's duration outcome). Completed
within 45 working days when the count is at most 45. Year: reporting year of
the authorisation date (assessments completed in the year, as DfE counts
them). Assessments with a missing start or authorisation before the start
get NaN and are left out.

**Re-referral within 12 months** (:func:`rereferrals`). Referrals of a child
in an LA on the same date count once. A referral is a re-referral when the
child's previous referral in the same LA is dated within 12 months before it
(``previous < date <= previous + 12 months``), DfE's definition in the CIN
census (a referral within 12 months of a previous referral). With
``data_start`` given, every referral within 12 months of it is NaN: its
history is not fully seen, and keeping only those with a seen previous
referral (certain re-referrals) would bias the rate upwards. Year: reporting
year of the referral date.

**Re-referral within 6 months of no further action**
(:func:`rereferral_after_nfa`). Base: referrals with ``referral_nfa`` true.
Reference date: the referral's closure date, or its referral date when it has
none (as the evaluation did). Indicator: the child has a later referral in the
same LA dated after the reference date and within 6 months of it. With
``data_end`` given, NFA referrals whose window ends after it are NaN
(right-censored). Year: reporting year of the reference date.

**Re-referral followed by escalation** (:func:`rereferral_escalation`). Base:
re-referrals within 12 months (above; none within 12 months of
``data_start``, whose status is unknown). Indicator: a child protection plan
starts (``cpp_start_date``) or the child enters care (903 ``decom`` of an
episode with ``rne`` ``S``, new period of care) on or after the re-referral
date and within ``window_months`` (default 12) of it. Right-censored as above
with ``data_end``. Year: reporting year of the re-referral.

**Initial child protection conferences** (:func:`icpcs`). Distinct
``(la, child, icpc_date)`` in the s47 table; count per reporting year of the
conference date, and per 10,000 children aged 0-17 when a population is given.
"""
from __future__ import annotations

import datetime as dt
from functools import lru_cache
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from analysis.core.errors import DataError

__all__ = [
    "BANK_HOLIDAYS", "FOSTER_CODES", "KINSHIP_CODES", "SHORT_BREAK_LEGAL_STATUSES", "bank_holidays", "reporting_year",
    "working_days", "open_on", "kinship_snapshot", "kinship_la_year",
    "kinship_periods_of_care", "kinship_poc_la_year", "assessment_durations",
    "assessment_la_year", "rereferrals", "rereferral_la_year", "rereferral_after_nfa",
    "rereferral_nfa_la_year", "rereferral_escalation", "escalation_la_year", "icpcs",
    "icpc_la_year", "TIDY_COLUMNS",
]

#: Where England's bank holidays come from: ``holidays.country_holidays(*BANK_HOLIDAYS)``
#: (the ``holidays`` package, pinned in pyproject.toml; England and Wales share the list).
BANK_HOLIDAYS = ("GB", "ENG")
#: Foster placements (SSDA903 PLACE): U1-U3 with a relative or friend, U4-U6 other carers.
FOSTER_CODES = ("U1", "U2", "U3", "U4", "U5", "U6")
#: Foster placements with a relative or friend (kinship foster care).
KINSHIP_CODES = ("U1", "U2", "U3")
#: SSDA903 legal statuses of an agreed series of short-term breaks (V3: individual episodes
#: recorded; V4: agreements recorded): not counted among children looked after at 31 March
#: in DfE's statistics, nor in any share of them.
SHORT_BREAK_LEGAL_STATUSES = ("V3", "V4")
#: The evaluation's wider kinship placement list (legacy Q1, F1, F4 and P1 placed with parents).
POC_KINSHIP_PLACEMENTS = ("U1", "U2", "U3", "Q1", "F1", "F4", "P1")
#: Exits the evaluation's code counted as kinship: a special guardianship order to relatives
#: or friends (E45, E47; legacy E43, E44 for any special guardian) and leaving care to live
#: with parents, relatives or others (E4A, legacy E4, E13).
POC_KINSHIP_REASONS = ("E45", "E47", "E43", "E44", "E4A", "E4", "E13")
TIDY_COLUMNS = ["la_code", "year", "measure", "numerator", "denominator", "value"]


# --------------------------------------------------------------------------- helpers

def reporting_year(dates) -> pd.Series:
    """DfE reporting year (April-March, named by the year it ends) of each date; NaN if NaT."""
    d = pd.to_datetime(pd.Series(dates))
    y = d.dt.year + (d.dt.month >= 4).astype(float)
    return y.where(d.notna()).astype("Int64")


@lru_cache(maxsize=64)
def _package_holidays(first: int, last: int) -> np.ndarray:
    """England's bank holidays on weekdays, ``first`` to ``last`` (years), from ``holidays``."""
    import holidays

    country, subdiv = BANK_HOLIDAYS
    cal = holidays.country_holidays(country, subdiv=subdiv, years=range(first, last + 1))
    # weekend dates (Christmas on a Saturday) are in the calendar with their weekday
    # substitutes; gov.uk lists only the substitutes, and weekends are not working days anyway
    return np.array(sorted(d for d in cal if d.weekday() < 5), dtype="datetime64[D]")


@lru_cache(maxsize=4)
def _file_holidays(path: str) -> tuple[np.ndarray, int, int]:
    df = pd.read_csv(path, comment="#", dtype=str)
    if "date" not in df.columns:
        raise DataError("bank holiday file has no 'date' column", file=path)
    d = pd.to_datetime(df["date"], format="%Y-%m-%d", errors="coerce")
    if d.isna().any():
        pos = int(np.flatnonzero(d.isna().to_numpy())[0])
        raise DataError(f"not a date: '{df['date'].iloc[pos]}'", file=path, column="date", row=pos)
    arr = d.to_numpy().astype("datetime64[D]")
    return np.sort(arr), int(d.dt.year.min()), int(d.dt.year.max())


def bank_holidays(path: Path | str | None = None, *, years: Iterable[int] | None = None) -> pd.Series:
    """England's bank holidays that fall on weekdays (substitute days included), as dates.

    From the ``holidays`` package (:data:`BANK_HOLIDAYS`) for ``years`` (default:
    2012 to next year), as gov.uk's list has them: the statutory days, their
    weekday substitutes, and the one-off days (2011 royal wedding, 2012 Diamond
    Jubilee, VE day moved to 8 May 2020, 2022 Platinum Jubilee and state
    funeral, 2023 coronation). ``path`` reads a CSV with a ``date`` column
    instead (a list to compare, e.g. the hand-typed one in ``tests/fixtures``).
    """
    if path is not None:
        arr, _, _ = _file_holidays(str(path))
    else:
        ys = sorted({int(y) for y in years}) if years is not None else range(
            2012, dt.date.today().year + 2)
        arr = (np.concatenate([_package_holidays(y, y) for y in ys]) if len(ys)
               else np.array([], dtype="datetime64[D]"))
    return pd.Series(pd.to_datetime(arr), name="date")


def working_days(start, end, *, holidays_path: Path | str | None = None) -> np.ndarray:
    """Working days in ``[start, end)``: ``numpy.busday_count`` without weekends and bank holidays.

    NaN where either date is missing. The bank holidays are England's from the
    ``holidays`` package for every year the dates span (:func:`bank_holidays`),
    so new years of data need no list to be extended; a one-off bank holiday
    announced after the pinned version was released is missing until the pin is
    raised. ``holidays_path`` counts with a CSV list instead (``date`` column),
    and then raises :class:`DataError` when a date lies outside the years it
    covers (the count would be wrong without saying so).
    """
    s = pd.to_datetime(pd.Series(start)).reset_index(drop=True)
    e = pd.to_datetime(pd.Series(end)).reset_index(drop=True)
    ok = (s.notna() & e.notna()).to_numpy()
    out = np.full(len(s), np.nan)
    if not ok.any():
        return out
    lo = int(min(s[ok].dt.year.min(), e[ok].dt.year.min()))
    hi = int(max(s[ok].dt.year.max(), e[ok].dt.year.max()))
    if holidays_path is None:
        hol = _package_holidays(lo, hi)
    else:
        hol, y0, y1 = _file_holidays(str(holidays_path))
        if lo < y0 or hi > y1:
            raise DataError(f"dates from {lo} to {hi} fall outside the bank holidays listed "
                            f"({y0}-{y1})", file=str(holidays_path),
                            hint="add the missing years, or leave holidays_path unset to use "
                                 "the holidays package")
    a = s[ok].to_numpy().astype("datetime64[D]")
    b = e[ok].to_numpy().astype("datetime64[D]")
    out[ok] = np.busday_count(a, b, holidays=hol)
    return out


def _bound(df: pd.DataFrame, value) -> pd.Series | pd.Timestamp:
    """A first or last day of the data: one date for every row, or per LA.

    ``value`` is a date, or a mapping (dict or Series) from LA code to date, when
    the returns of different LAs cover different years; rows of an LA not in it
    get NaT, which censors nothing.
    """
    if isinstance(value, (dict, pd.Series)):
        return pd.to_datetime(df["la"].map(value))
    return pd.Timestamp(value)


def _add_months(dates: pd.Series, months: int) -> pd.Series:
    return pd.to_datetime(dates) + pd.DateOffset(months=int(months))


def _need(df: pd.DataFrame, cols: list[str], what: str) -> pd.DataFrame:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise DataError(f"{what} lacks column(s) {', '.join(missing)} "
                        f"(has: {', '.join(map(str, df.columns))})")
    return df


def _table(cin: dict, name: str, cols: list[str]) -> pd.DataFrame:
    if name not in cin:
        raise DataError(f"CIN tables lack '{name}' (have: {', '.join(cin)})")
    df = _need(cin[name], cols, f"CIN table '{name}'").copy()
    for c in cols:
        if c.endswith("_date"):
            df[c] = pd.to_datetime(df[c])
    return df


def _episodes(episodes: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    df = _need(episodes, cols, "SSDA903 episodes").copy()
    for c in ("decom", "dec"):
        if c in df:
            df[c] = pd.to_datetime(df[c])
    return df


def _tidy(groups: pd.DataFrame, measure: str, num: str | None, den: str | None,
          value: str | None = None, scale: float = 100.0) -> pd.DataFrame:
    """Tidy rows from a frame indexed by (la, year) with numerator/denominator columns."""
    g = groups.reset_index()
    n = g[num].astype(float) if num else pd.Series(np.nan, index=g.index)
    d = g[den].astype(float) if den else pd.Series(np.nan, index=g.index)
    if value is not None:
        v = g[value].astype(float)
    elif den:
        v = (n / d * scale).where(d > 0)
    else:
        v = n
    return pd.DataFrame({"la_code": g["la"].astype(str), "year": g["year"].astype(int),
                         "measure": measure, "numerator": n, "denominator": d,
                         "value": v.astype(float)})[TIDY_COLUMNS]


def _share_la_year(df: pd.DataFrame, indicator: str, measure: str) -> pd.DataFrame:
    """Tidy LA-year rows of ``measure``: the % of rows whose 0/1 ``indicator`` is 1.

    The denominator is the rows where the indicator is known (NaN rows,
    censored, are left out).
    """
    d = df[df[indicator].notna()]
    if not len(d):
        return pd.DataFrame(columns=TIDY_COLUMNS)
    g = d.groupby(["la", "year"]).agg(n=(indicator, "size"), k=(indicator, "sum"))
    return _tidy(g, measure, "k", "n")


def _concat(parts: list[pd.DataFrame]) -> pd.DataFrame:
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame(columns=TIDY_COLUMNS)
    return (pd.concat(parts, ignore_index=True)
            .sort_values(["measure", "la_code", "year"]).reset_index(drop=True))


# --------------------------------------------------------------------------- kinship

def open_on(episodes: pd.DataFrame, day) -> pd.Series:
    """Boolean per episode: open on ``day`` (``decom <= day`` and ``dec`` NaT or ``> day``)."""
    day = pd.Timestamp(day)
    return (episodes["decom"] <= day) & (episodes["dec"].isna() | (episodes["dec"] > day))


def kinship_snapshot(episodes: pd.DataFrame, years=None, *, kinship_codes=KINSHIP_CODES,
                     foster_codes=FOSTER_CODES,
                     excluded_legal_statuses=SHORT_BREAK_LEGAL_STATUSES) -> pd.DataFrame:
    """Children looked after on 31 March of each year, with kinship indicators.

    Returns one row per ``(la, child, year)``: ``la, child, year, place,
    foster, kinship, kinship_cla`` (0/1), ``kinship_foster`` (0/1, NaN when
    not in foster care). ``years`` defaults to every reporting year whose 31
    March some episode spans. Episodes under ``excluded_legal_statuses``
    (default V3, V4: short breaks, which DfE does not count) are left out
    before the snapshot, so a child looked after only under them is not
    counted; pass ``()`` to count every open episode.
    """
    excluded = [str(c).strip().upper() for c in (excluded_legal_statuses or ())]
    ep = _episodes(episodes, ["la", "child", "decom", "dec", "place"] + (["ls"] if excluded else []))
    ep = ep[ep["decom"].notna()]
    if excluded:
        short = ep["ls"].astype("string").str.strip().str.upper().isin(excluded).fillna(False)
        ep = ep[~short.to_numpy(dtype=bool)]
    if years is None:
        if not len(ep):
            years = []
        else:
            first = int(reporting_year(ep["decom"].min()).iloc[0])
            last_date = max(ep["decom"].max(), ep["dec"].max() if ep["dec"].notna().any()
                            else ep["decom"].max())
            last = int(reporting_year(last_date).iloc[0])
            years = range(first, last + 1)
    parts = []
    ep = _sort_by_child(ep, "decom") if len(ep) else ep
    for y in years:
        sel = ep[open_on(ep, pd.Timestamp(int(y), 3, 31))]
        if not len(sel):
            continue
        sel = sel.drop_duplicates(["la", "child"], keep="last")  # latest-starting episode
        parts.append(pd.DataFrame({"la": sel["la"].to_numpy(), "child": sel["child"].to_numpy(),
                                   "year": int(y), "place": sel["place"].to_numpy()}))
    cols = ["la", "child", "year", "place", "foster", "kinship", "kinship_cla", "kinship_foster"]
    if not parts:
        return pd.DataFrame(columns=cols)
    out = pd.concat(parts, ignore_index=True)
    place = out["place"].astype("string").str.strip().str.upper()
    out["foster"] = place.isin(list(foster_codes)).fillna(False).astype(bool)
    out["kinship"] = place.isin(list(kinship_codes)).fillna(False).astype(bool)
    out["kinship_cla"] = out["kinship"].astype(float)
    out["kinship_foster"] = out["kinship_cla"].where(out["foster"])
    return out[cols]


def kinship_la_year(snapshot: pd.DataFrame) -> pd.DataFrame:
    """Tidy LA-year rows of the looked-after snapshot's kinship measures.

    ``cla_31mar_child``, ``cla_foster_child``, ``cla_kinship`` (counts),
    ``cla_kinship_pct`` (U1-U3 % of all CLA), ``foster_kinship_pct`` (U1-U3 % of U1-U6).
    """
    if not len(snapshot):
        return pd.DataFrame(columns=TIDY_COLUMNS)
    g = snapshot.groupby(["la", "year"]).agg(n=("child", "size"), foster=("foster", "sum"),
                                              kin=("kinship", "sum"))
    return _concat([
        _tidy(g, "cla_31mar_child", "n", None),
        _tidy(g, "cla_foster_child", "foster", None),
        _tidy(g, "cla_kinship", "kin", None),
        _tidy(g, "cla_kinship_pct", "kin", "n"),
        _tidy(g, "foster_kinship_pct", "kin", "foster"),
    ])


def kinship_periods_of_care(episodes: pd.DataFrame, *, window_days: int = 365,
                            legal_statuses=("C1", "C2"), include_parents: bool = True,
                            placements=POC_KINSHIP_PLACEMENTS, reasons=POC_KINSHIP_REASONS,
                            data_end=None) -> pd.DataFrame:
    """The evaluation's kinship outcome: one row per period of care (see module docstring).

    Returns ``la, child, poc_start, year, kinship_poc`` (0/1; NaN when
    ``data_end`` is given and ``poc_start + window_days`` is after it).
    Periods start at an episode with ``rne == 'S'``; episodes of a child before
    its first such episode in the data (a period begun before the data) are
    ignored. A period with no episode under ``legal_statuses`` within the
    window is not in the population.
    """
    ep = _episodes(episodes, ["la", "child", "decom", "dec", "rne", "place", "rec", "ls"])
    ep = _sort_by_child(ep[ep["decom"].notna()], "decom")
    start = ep["rne"].astype("string").str.strip().str.upper().eq("S").fillna(False)
    ep = ep.assign(_new=start.astype(int))
    ep["_poc"] = ep.groupby(["la", "child"])["_new"].cumsum()
    ep = ep[ep["_poc"] > 0]
    ep["poc_start"] = ep["decom"].where(ep["_new"] == 1)
    ep["poc_start"] = ep.groupby(["la", "child", "_poc"])["poc_start"].transform("first")
    horizon = ep["poc_start"] + pd.Timedelta(days=window_days)
    ep = ep[ep["decom"] <= horizon]
    if legal_statuses is not None:
        ep = ep[ep["ls"].astype("string").str.strip().str.upper().isin(legal_statuses).fillna(False)]
    codes = [c for c in placements if include_parents or c != "P1"]
    horizon = ep["poc_start"] + pd.Timedelta(days=window_days)
    place_k = ep["place"].astype("string").str.strip().str.upper().isin(codes).fillna(False)
    rec_k = (ep["rec"].astype("string").str.strip().str.upper().isin(list(reasons))
             .fillna(False) & ep["dec"].notna() & (ep["dec"] <= horizon))
    ep = ep.assign(_k=(place_k | rec_k).astype(float))
    out = (ep.groupby(["la", "child", "_poc"], as_index=False)
           .agg(poc_start=("poc_start", "first"), kinship_poc=("_k", "max")))
    out["year"] = reporting_year(out["poc_start"]).to_numpy()
    if data_end is not None:
        late = out["poc_start"] + pd.Timedelta(days=window_days) > _bound(out, data_end)
        out.loc[late, "kinship_poc"] = np.nan
    return out[["la", "child", "poc_start", "year", "kinship_poc"]].reset_index(drop=True)


def kinship_poc_la_year(periods: pd.DataFrame) -> pd.DataFrame:
    """Tidy LA-year rows: ``poc_kinship_pct`` (% of periods of care starting in the year)."""
    return _share_la_year(periods, "kinship_poc", "poc_kinship_pct")


# --------------------------------------------------------------------------- assessments

def assessment_durations(cin: dict, *, start: str = "referral", limit: int = 45,
                         holidays_path: Path | str | None = None) -> pd.DataFrame:
    """Completed assessments with their duration in working days (see module docstring).

    Returns ``la, child, referral_id, start_date, authorisation_date, year,
    working_days, within_45wd`` (0/1; NaN when the duration is unknown or
    negative). Open assessments (no authorisation date) are left out.
    """
    if start not in ("referral", "assessment"):
        raise ValueError("start must be 'referral' or 'assessment'")
    a = _table(cin, "assessments", ["la", "child", "referral_id", "assessment_actual_start_date",
                                    "assessment_authorisation_date"])
    a = a[a["assessment_authorisation_date"].notna()]
    if start == "referral":
        r = _table(cin, "referrals", ["la", "child", "referral_id", "cin_referral_date"])
        r = r.drop_duplicates(["la", "child", "referral_id"])[
            ["la", "child", "referral_id", "cin_referral_date"]]
        a = a.merge(r, on=["la", "child", "referral_id"], how="left", validate="many_to_one")
        a["start_date"] = a["cin_referral_date"]
    else:
        a["start_date"] = a["assessment_actual_start_date"]
    a = a.reset_index(drop=True)
    days = working_days(a["start_date"], a["assessment_authorisation_date"],
                        holidays_path=holidays_path)
    days[days < 0] = np.nan
    out = pd.DataFrame({"la": a["la"], "child": a["child"], "referral_id": a["referral_id"],
                        "start_date": a["start_date"],
                        "authorisation_date": a["assessment_authorisation_date"],
                        "year": reporting_year(a["assessment_authorisation_date"]).to_numpy(),
                        "working_days": days})
    out["within_45wd"] = (out["working_days"] <= limit).astype(float).where(
        out["working_days"].notna())
    return out


def assessment_la_year(durations: pd.DataFrame) -> pd.DataFrame:
    """Tidy LA-year rows of the assessment-duration measures.

    ``assessments_completed_child`` (count), ``assessments_45wd_pct_child``
    and ``assessment_days_median`` (median working days; denominator = assessments).
    """
    d = durations[durations["working_days"].notna()]
    if not len(d):
        return pd.DataFrame(columns=TIDY_COLUMNS)
    g = d.groupby(["la", "year"]).agg(n=("working_days", "size"), k=("within_45wd", "sum"),
                                       med=("working_days", "median"))
    return _concat([
        _tidy(g, "assessments_completed_child", "n", None),
        _tidy(g, "assessments_45wd_pct_child", "k", "n"),
        _tidy(g, "assessment_days_median", None, "n", value="med"),
    ])


# --------------------------------------------------------------------------- re-referrals

def _sort_by_child(df: pd.DataFrame, date: str) -> pd.DataFrame:
    """Rows ordered by child (``la, child`` pair, as integer group codes) then ``date``.

    Integer keys and ``numpy.lexsort`` instead of sorting on the string columns:
    several times faster on millions of rows; rows of one child stay together.
    """
    key = df.groupby(["la", "child"], sort=False).ngroup().to_numpy()
    order = np.lexsort((df[date].to_numpy().astype("datetime64[ns]").astype("int64"), key))
    return df.iloc[order].reset_index(drop=True)


def _referrals(cin: dict) -> pd.DataFrame:
    r = _table(cin, "referrals", ["la", "child", "referral_id", "cin_referral_date"])
    r = r[r["cin_referral_date"].notna()]
    return _sort_by_child(r, "cin_referral_date")


def rereferrals(cin: dict, *, months: int = 12, data_start=None) -> pd.DataFrame:
    """Referrals with ``rereferral_12m`` (0/1) and the previous referral date.

    Returns ``la, child, referral_id, cin_referral_date, year,
    previous_referral_date, rereferral_12m`` (one row per child, LA and
    referral date; NaN for referrals whose history is cut off by ``data_start``).
    """
    r = _referrals(cin).drop_duplicates(["la", "child", "cin_referral_date"])
    prev = r.groupby(["la", "child"])["cin_referral_date"].shift(1)
    ind = (prev.notna() & (r["cin_referral_date"] <= _add_months(prev, months))).astype(float)
    if data_start is not None:
        # Within the first `months` of the data a referral's window reaches before it, so
        # whether it is a re-referral is not known. Only the 0s are uncertain (a seen
        # previous referral makes a 1 certain), but keeping the certain 1s alone would
        # bias the year's rate upwards: every such referral is left out.
        seen_from = _add_months(_bound(r, data_start), months)
        ind = ind.mask(r["cin_referral_date"] <= seen_from)
    out = r[["la", "child", "referral_id", "cin_referral_date"]].copy()
    out["year"] = reporting_year(out["cin_referral_date"]).to_numpy()
    out["previous_referral_date"] = prev
    out["rereferral_12m"] = ind
    return out.reset_index(drop=True)


def rereferral_la_year(rerefs: pd.DataFrame) -> pd.DataFrame:
    """Tidy LA-year rows of the referral and re-referral measures.

    ``referrals_child`` (every referral), ``rereferrals_child`` and
    ``rereferral_12m_pct_child`` (% of the referrals whose history is known).
    """
    if not len(rerefs):
        return pd.DataFrame(columns=TIDY_COLUMNS)
    every = rerefs.groupby(["la", "year"]).agg(n=("cin_referral_date", "size"))
    d = rerefs[rerefs["rereferral_12m"].notna()]
    parts = [_tidy(every, "referrals_child", "n", None)]
    if len(d):
        g = d.groupby(["la", "year"]).agg(n=("rereferral_12m", "size"), k=("rereferral_12m", "sum"))
        parts += [_tidy(g, "rereferrals_child", "k", None),
                  _tidy(g, "rereferral_12m_pct_child", "k", "n")]
    return _concat(parts)


def _next_after(base: pd.DataFrame, on: str, events: pd.DataFrame, ev_on: str,
                allow_same_day: bool) -> pd.Series:
    """First event date per base row, of the same (la, child), on/after ``base[on]``."""
    if not len(base):
        return pd.Series(pd.NaT, index=base.index, dtype="datetime64[ns]")
    b = base[["la", "child", on]].copy()
    b["_row"] = np.arange(len(b))
    b["_key"] = b["la"].astype(str) + "\x1f" + b["child"].astype(str)
    e = events[["la", "child", ev_on]].dropna(subset=[ev_on]).copy()
    e["_key"] = e["la"].astype(str) + "\x1f" + e["child"].astype(str)
    e = e[["_key", ev_on]].rename(columns={ev_on: "_ev"})
    e["_ev"] = pd.to_datetime(e["_ev"]).astype("datetime64[ns]")
    e["_t"] = e["_ev"]
    b["_t"] = pd.to_datetime(b[on]).astype("datetime64[ns]")
    known = b["_t"].notna()
    res = pd.Series(pd.NaT, index=range(len(b)), dtype="datetime64[ns]")
    if known.any() and len(e):
        m = pd.merge_asof(b[known].sort_values("_t"), e.sort_values("_t"), on="_t", by="_key",
                          direction="forward", allow_exact_matches=allow_same_day)
        res.iloc[m["_row"].to_numpy()] = m["_ev"].to_numpy()
    res.index = base.index
    return res


def rereferral_after_nfa(cin: dict, *, months: int = 6, data_end=None) -> pd.DataFrame:
    """Referrals closed with no further action, and whether the child was re-referred.

    Returns ``la, child, referral_id, cin_referral_date, nfa_date, year,
    next_referral_date, rereferral_6m`` (0/1; NaN when right-censored by
    ``data_end``). See the module docstring for the exact rule.
    """
    r = _referrals(cin)
    _need(r, ["referral_nfa"], "CIN table 'referrals'")
    close = (pd.to_datetime(r["cin_closure_date"]) if "cin_closure_date" in r
             else pd.Series(pd.NaT, index=r.index))
    nfa = r["referral_nfa"].astype("boolean").fillna(False).astype(bool)
    base = r[nfa].copy()
    base["nfa_date"] = close[nfa].fillna(base["cin_referral_date"])
    base = base.drop_duplicates(["la", "child", "nfa_date"]).reset_index(drop=True)
    base["next_referral_date"] = _next_after(base, "nfa_date", r, "cin_referral_date",
                                             allow_same_day=False)
    limit = _add_months(base["nfa_date"], months)
    ind = (base["next_referral_date"].notna()
           & (base["next_referral_date"] <= limit)).astype(float)
    if data_end is not None:
        ind = ind.mask(limit > _bound(base, data_end))
    base["year"] = reporting_year(base["nfa_date"]).to_numpy()
    base["rereferral_6m"] = ind
    return base[["la", "child", "referral_id", "cin_referral_date", "nfa_date", "year",
                 "next_referral_date", "rereferral_6m"]]


def rereferral_nfa_la_year(nfa: pd.DataFrame) -> pd.DataFrame:
    """Tidy LA-year rows: ``rereferral_6m_after_nfa_pct`` (% of NFA referrals)."""
    return _share_la_year(nfa, "rereferral_6m", "rereferral_6m_after_nfa_pct")


def care_entries(episodes: pd.DataFrame) -> pd.DataFrame:
    """Entries to care: ``la, child, entry_date`` from episodes whose ``rne`` is ``S``."""
    ep = _episodes(episodes, ["la", "child", "decom", "rne"])
    s = ep["rne"].astype("string").str.strip().str.upper().eq("S").fillna(False)
    return (ep.loc[s, ["la", "child", "decom"]].rename(columns={"decom": "entry_date"})
            .drop_duplicates().reset_index(drop=True))


def rereferral_escalation(cin: dict, episodes: pd.DataFrame | None = None, *,
                          months: int = 12, window_months: int = 12,
                          data_start=None, data_end=None) -> pd.DataFrame:
    """Re-referrals and whether a CPP or an entry to care followed within the window.

    Returns ``la, child, referral_id, cin_referral_date, year, cpp_date,
    care_entry_date, escalated`` (0/1; NaN when right-censored by
    ``data_end``). Without ``episodes`` only child protection plans count
    (``care_entry_date`` is NaT).
    """
    rr = rereferrals(cin, months=months, data_start=data_start)
    rr = rr[rr["rereferral_12m"] == 1].reset_index(drop=True)
    cpp = _table(cin, "cpp", ["la", "child", "cpp_start_date"]) if "cpp" in cin else None
    rr["cpp_date"] = (_next_after(rr, "cin_referral_date", cpp, "cpp_start_date", True)
                      if cpp is not None else pd.NaT)
    rr["care_entry_date"] = (_next_after(rr, "cin_referral_date", care_entries(episodes),
                                         "entry_date", True)
                             if episodes is not None else pd.NaT)
    first = rr[["cpp_date", "care_entry_date"]].min(axis=1)
    limit = _add_months(rr["cin_referral_date"], window_months)
    ind = (first.notna() & (first <= limit)).astype(float)
    if data_end is not None:
        ind = ind.mask(limit > _bound(rr, data_end))
    rr["escalated"] = ind
    return rr[["la", "child", "referral_id", "cin_referral_date", "year", "cpp_date",
               "care_entry_date", "escalated"]]


def escalation_la_year(esc: pd.DataFrame) -> pd.DataFrame:
    """Tidy LA-year rows: ``rereferral_escalation_pct`` (% of re-referrals escalating)."""
    return _share_la_year(esc, "escalated", "rereferral_escalation_pct")


# --------------------------------------------------------------------------- conferences

def icpcs(cin: dict) -> pd.DataFrame:
    """Initial child protection conferences: distinct ``la, child, icpc_date`` with ``year``."""
    s = _table(cin, "s47", ["la", "child", "icpc_date"])
    s = s[s["icpc_date"].notna()].drop_duplicates(["la", "child", "icpc_date"])
    out = s[["la", "child", "icpc_date"]].reset_index(drop=True)
    out["year"] = reporting_year(out["icpc_date"]).to_numpy()
    return out


def icpc_la_year(conf: pd.DataFrame, pop: pd.DataFrame | None = None) -> pd.DataFrame:
    """Tidy LA-year rows of initial child protection conferences.

    ``icpc_count_child``; with ``pop`` (``la_code, year, pop_0_17``) also
    ``icpc_rate_per10k_child`` (conferences per 10,000 children aged 0-17).
    """
    if not len(conf):
        return pd.DataFrame(columns=TIDY_COLUMNS)
    g = conf.groupby(["la", "year"]).agg(n=("icpc_date", "size"))
    parts = [_tidy(g, "icpc_count_child", "n", None)]
    if pop is not None:
        _need(pop, ["la_code", "year", "pop_0_17"], "population table")
        p = pop[["la_code", "year", "pop_0_17"]].rename(columns={"la_code": "la"})
        p = p.assign(la=p["la"].astype(str), year=p["year"].astype(int))
        gg = g.reset_index().assign(la=lambda x: x["la"].astype(str), year=lambda x: x["year"].astype(int))
        gg = gg.merge(p, on=["la", "year"], how="left").set_index(["la", "year"])
        parts.append(_tidy(gg, "icpc_rate_per10k_child", "n", "pop_0_17", scale=10000.0))
    return _concat(parts)
