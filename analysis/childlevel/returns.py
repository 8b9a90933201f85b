"""Annual returns stacked into one record per event, and the span of time they cover.

An LA's SSDA903 return for year Y holds every episode open at any time in the
year, and its CIN census every referral open at any time in the year, with the
referral's assessments, section 47 enquiries, plans and child protection plans.
A record open across 31 March is therefore in two (or more) consecutive returns,
the later one with its end date filled in. Read as one table, the returns
would count such an episode, period of care, assessment or conference twice.
:func:`combine_returns` keeps one copy of each, the one from the latest return
(its most complete state); :func:`records_coverage` gives the first and last
days the returns cover, which the outcome definitions use to censor windows
that run past the data rather than count them as no event.

Identity of a record (within an LA and child):

* 903 episode: its start date ``decom``.
* CIN referral: its referral date. ``referral_id`` in the readers' tables is a
  line number within one file, so it is replaced by a key that is the same in
  every return (``la|child|referral date``); assessments, section 47
  enquiries, plans and CPPs take the key of the referral they belong to in
  their own file, so they join to the kept copy of their referral.
* assessment: its referral and actual start date; s47: its referral and start
  date; CIN plan: its referral and start date; CPP: its start date.

Records whose identifying date is missing are never merged with another (they
keep their file and line as identity); validation reports them.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["combine_returns", "records_coverage", "CIN_KEYS"]

#: CIN table -> the date that, with LA, child and referral, identifies a record in it.
CIN_KEYS = {"referrals": ["cin_referral_date"],
            "assessments": ["referral_id", "assessment_actual_start_date"],
            "s47": ["referral_id", "s47_actual_start_date"],
            "cin_plans": ["referral_id", "cin_plan_start_date"],
            "cpp": ["cpp_start_date"]}


def _latest(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """One row per ``la, child, *keys``: the one from the latest return (``year``).

    Rows with a missing key value are all kept. Order: as the input, less the
    dropped copies.
    """
    cols = ["la", "child", *keys]
    if not len(df) or "year" not in df.columns or any(c not in df.columns for c in cols):
        return df
    complete = df[cols].notna().all(axis=1)
    # latest return last; a stable sort keeps file order within a year
    order = df.assign(_i=np.arange(len(df))).sort_values(["year", "_i"], kind="stable")
    dup = order[cols].duplicated(keep="last") & complete.loc[order.index]
    keep = order.index[~dup.to_numpy()]
    return df.loc[df.index.isin(keep)].reset_index(drop=True)


def _referral_keys(cin: dict) -> dict:
    """Replace ``referral_id`` (a line in one file) by ``la|child|referral date`` in every table."""
    ref = cin.get("referrals")
    if ref is None or "referral_id" not in ref.columns or "source_file" not in ref.columns:
        return cin
    date = ref["cin_referral_date"]
    key = (ref["la"].astype(str) + "|" + ref["child"].astype(str) + "|"
           + date.dt.strftime("%Y-%m-%d").where(date.notna(),
                                                "line " + ref["referral_id"].astype(str)
                                                + " of " + ref["source_file"].astype(str)))
    lookup = pd.Series(key.to_numpy(),
                       index=pd.MultiIndex.from_arrays([ref["source_file"].astype(str),
                                                        ref["referral_id"].astype(str)]))
    lookup = lookup[~lookup.index.duplicated()]
    out = {}
    for name, t in cin.items():
        if isinstance(t, pd.DataFrame) and {"referral_id", "source_file"} <= set(t.columns):
            idx = pd.MultiIndex.from_arrays([t["source_file"].astype(str), t["referral_id"].astype(str)])
            mapped = lookup.reindex(idx).to_numpy()
            own = ("line " + t["referral_id"].astype(str) + " of " + t["source_file"].astype(str)).to_numpy()
            t = t.assign(referral_id=np.where(pd.isna(mapped), own, mapped))
        out[name] = t
    return out


def combine_returns(episodes: pd.DataFrame | None, cin: dict | None
                    ) -> tuple[pd.DataFrame | None, dict | None]:
    """One copy of every record repeated across annual returns (module docstring).

    Parameters
    ----------
    episodes : DataFrame or None
        SSDA903 episodes as :func:`analysis.childlevel.readers.read_903_episodes`
        returns them (``la, year, child, decom, ...``), several returns stacked.
    cin : dict of DataFrame or None
        CIN census tables as :func:`analysis.childlevel.readers.read_cin_census`
        returns them, several returns stacked.
    """
    if episodes is not None:
        episodes = _latest(episodes, ["decom"])
    if cin is not None:
        cin = _referral_keys(cin)
        cin = {name: (_latest(t, CIN_KEYS[name]) if name in CIN_KEYS and isinstance(t, pd.DataFrame)
                      else t) for name, t in cin.items()}
    return episodes, cin


def records_coverage(episodes: pd.DataFrame | None, cin: dict | None) -> pd.DataFrame:
    """The days each LA's returns cover: ``la, first_year, last_year, data_start, data_end``.

    ``data_start`` is 1 April before the LA's earliest return year, ``data_end``
    31 March of its latest (reporting years end on 31 March); an LA's returns
    are taken to run without a gap between them. Empty when no table has ``la``
    and ``year``.
    """
    tables = ([episodes] if episodes is not None else []) + (
        [t for t in (cin or {}).values() if isinstance(t, pd.DataFrame)])
    parts = [t[["la", "year"]] for t in tables if {"la", "year"} <= set(t.columns) and len(t)]
    cols = ["la", "first_year", "last_year", "data_start", "data_end"]
    if not parts:
        return pd.DataFrame(columns=cols)
    both = pd.concat(parts, ignore_index=True)
    both["year"] = pd.to_numeric(both["year"], errors="coerce")
    span = both.dropna().groupby("la")["year"].agg(["min", "max"]).astype(int)
    out = pd.DataFrame({"la": span.index, "first_year": span["min"].to_numpy(),
                        "last_year": span["max"].to_numpy()})
    out["data_start"] = pd.to_datetime((out["first_year"] - 1).astype(str) + "-04-01")
    out["data_end"] = pd.to_datetime(out["last_year"].astype(str) + "-03-31")
    return out[cols]
