"""Readers for DfE explore-education-statistics (EES) tidy CSV files.

EES files share one layout: identifying columns (``time_period``,
``time_identifier``, ``geographic_level``, country/region/LA codes and names),
zero or more *breakdown* columns (``category``, ``population_type``,
``characteristic``...) and one column per published figure. One generic
function, :func:`read_ees`, turns such a file into the tidy long table of
:data:`analysis.ingest.readers.common.TIDY_COLUMNS`; the named readers below fix,
for each file the evaluation uses, which breakdown rows are the headline and
which columns become which panel measure.

Guards (each raises :class:`analysis.core.errors.DataError` with file, column and
the file's own line number):

- an expected column is missing or renamed;
- a breakdown value the reader filters on is no longer in the file;
- after filtering there is still more than one row per area and year (a new
  breakdown the reader does not know about);
- ``time_identifier`` is not the expected one (e.g. "Financial year");
- a value cell holds neither a number nor a known suppression token;
- an LA code is not in the register ``data/local_authorities.csv``.

Year convention: the tidy ``year`` is the DfE reporting year ending 31 March
(``time_period`` 2019 = April 2018 to March 2019), except where a reader says
otherwise (ONS mid-year population: shifted by one; workforce: year to 30
September, see :func:`read_csww`).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.core.errors import DataError, relative_path
from analysis.ingest.geography import current_la_codes
from analysis.ingest.readers.common import LEVELS, melt_measures, read_csv_text, require_columns, tidy_frame

#: Identifying columns every EES file carries.
ID_COLUMNS = ["time_period", "time_identifier", "geographic_level", "country_code",
              "country_name", "region_code", "region_name", "old_la_code", "new_la_code",
              "la_name"]

#: Panel measures produced by this module: unit, definition, years, source id.
MEASURES: dict[str, dict[str, str]] = {
    "referrals": {"unit": "count", "source_id": "cin_c1", "years": "2013-2025",
                  "definition": "Referrals to children's social care in the year"},
    "rereferrals": {"unit": "count", "source_id": "cin_c1", "years": "2013-2025",
                    "definition": "Referrals within 12 months of a previous referral"},
    "rereferral_pct": {"unit": "%", "source_id": "cin_c1", "years": "2013-2025",
                       "definition": "Percentage of referrals that were within 12 months "
                                     "of a previous referral"},
    "nfa_pct": {"unit": "%", "source_id": "cin_c1", "years": "2013-2025",
                "definition": "Percentage of referrals closed with no further action"},
    "cin_31mar": {"unit": "count", "source_id": "cin_b1", "years": "2013-2025",
                  "definition": "Children in need episodes open at 31 March"},
    "cin_starts": {"unit": "count", "source_id": "cin_b1", "years": "2013-2025",
                   "definition": "Children in need episodes starting in the year"},
    "cin_episodes": {"unit": "count", "source_id": "cin_b1", "years": "2013-2025",
                     "definition": "Children in need episodes open at any point in the year"},
    "cpp_starts": {"unit": "count", "source_id": "cpp_d3", "years": "2013-2025",
                   "definition": "Child protection plans starting in the year"},
    "cpp_second_subsequent": {"unit": "count", "source_id": "cpp_d3", "years": "2013-2025",
                              "definition": "Child protection plans starting in the year "
                                            "that were a second or subsequent plan"},
    "cpp_second_subsequent_pct": {"unit": "%", "source_id": "cpp_d3", "years": "2013-2025",
                                  "definition": "Percentage of child protection plans starting "
                                                "in the year that were a second or "
                                                "subsequent plan"},
    "cla_31mar": {"unit": "count", "source_id": "cla_rates_2025; cla_rates_2024",
                  "years": "2020-2025", "definition": "Children looked after at 31 March"},
    "cla_rate_per10k": {"unit": "rate per 10,000 children aged 0-17",
                        "source_id": "cla_rates_2025; cla_rates_2024", "years": "2020-2025",
                        "definition": "Children looked after at 31 March per 10,000 children "
                                      "(ONS mid-year estimate of the previous calendar year)"},
    "cla_starts": {"unit": "count", "source_id": "cla_rates_2025; cla_rates_2024",
                   "years": "2020-2025",
                   "definition": "Children starting to be looked after in the year"},
    "cla_starts_rate_per10k": {"unit": "rate per 10,000 children aged 0-17",
                               "source_id": "cla_rates_2025; cla_rates_2024",
                               "years": "2020-2025",
                               "definition": "Children starting to be looked after in the "
                                             "year per 10,000 children"},
    "cla_ceased": {"unit": "count", "source_id": "cla_rates_2025; cla_rates_2024",
                   "years": "2020-2025",
                   "definition": "Children ceasing to be looked after in the year"},
    "cla_ceased_rate_per10k": {"unit": "rate per 10,000 children aged 0-17",
                               "source_id": "cla_rates_2025; cla_rates_2024",
                               "years": "2020-2025",
                               "definition": "Children ceasing to be looked after in the "
                                             "year per 10,000 children"},
    "cla_ceased_sgo": {"unit": "count", "source_id": "cla_ceased_sgo_2024",
                       "years": "2020-2024",
                       "definition": "Children who ceased to be looked after in the year "
                                     "because of a special guardianship order (all carers)"},
    "pop_0_17": {"unit": "persons", "source_id": "ons_pop_0_17", "years": "2013-2025",
                 "definition": "ONS mid-year estimate of children aged 0-17, mid-(year-1): "
                               "the denominator DfE uses for rates in reporting year `year`"},
    "sw_turnover_pct": {"unit": "%", "source_id": "csww_2025", "years": "2017-2025",
                        "definition": "Children and family social worker leavers in the year "
                                      "to 30 September / social workers in post at "
                                      "30 September (FTE)"},
    "sw_agency_pct": {"unit": "%", "source_id": "csww_2025", "years": "2017-2025",
                      "definition": "Agency children and family social workers at 30 "
                                    "September / (agency + employed) social workers (FTE)"},
    "sw_vacancy_pct": {"unit": "%", "source_id": "csww_2025", "years": "2017-2025",
                       "definition": "FTE vacancies at 30 September / (vacancies + FTE "
                                     "social workers in post)"},
    "sw_caseload_per_fte": {"unit": "cases per FTE", "source_id": "csww_2025",
                            "years": "2017-2025",
                            "definition": "Cases held at 30 September per FTE case-holding "
                                          "children and family social worker (incl. agency)"},
}

_YEAR4 = re.compile(r"^\d{4}$")
_YEAR6 = re.compile(r"^(\d{4})(\d{2})$")
# Joint returns (e.g. "314 / 318" for Kingston upon Thames and Richmond upon Thames).
_JOINT = " / "


def _resolve(path: Path | str | None, source_id: str) -> Path:
    """The given path, else the verified cached copy of the manifest entry."""
    if path is not None:
        return Path(path)
    from analysis.ingest.sources import fetch  # late import: fetching is only needed without a path

    return fetch(source_id)


def _parse_years(raw: pd.Series, rows: np.ndarray, *, file: str) -> pd.Series:
    """``time_period`` to the ending year: "2019" -> 2019, "201819" -> 2019."""
    text = raw.astype(str).str.strip()
    out = pd.Series(np.full(len(text), -1, dtype=np.int64), index=text.index)
    four = text.str.fullmatch(_YEAR4.pattern).fillna(False).astype(bool)
    out[four] = text[four].astype(int)
    six = text.str.extract(_YEAR6)
    is_six = six[0].notna() & ~four
    if is_six.any():
        first, second = six[0][is_six].astype(int), six[1][is_six].astype(int)
        ok = (first + 1) % 100 == second
        if not ok.all():
            pos = int(np.flatnonzero(is_six.to_numpy())[int(np.flatnonzero(~ok.to_numpy())[0])])
            raise DataError(f"time_period {text.iloc[pos]!r} is not a financial year",
                            file=file, column="time_period", row=int(rows[pos]))
        out[is_six] = first + 1
    bad = (out < 0).to_numpy()
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise DataError(f"time_period {text.iloc[pos]!r} is not a year (YYYY or YYYYYY)",
                        file=file, column="time_period", row=int(rows[pos]))
    return out


def _split_joint_returns(df: pd.DataFrame, file: str) -> pd.DataFrame:
    """Give a joint return ("314 / 318") to each of its LAs, keeping the joint name.

    DfE publishes one workforce return for LAs that run children's services
    together (Kingston upon Thames and Richmond upon Thames via Achieving for
    Children; North and West Northamptonshire via the Northamptonshire
    Children's Trust). LAIT gives the joint figure to each LA; so do we, with
    ``area_name`` keeping the joint name so the sharing stays visible.
    """
    joint = df["old_la_code"].str.contains(_JOINT, regex=False)
    if not joint.any():
        return df
    parts = df[joint].copy()
    dfe = parts["old_la_code"].str.split(_JOINT, regex=False)
    ons = parts["new_la_code"].str.split(_JOINT, regex=False)
    n_dfe, n_ons = dfe.str.len(), ons.str.len()
    if (n_dfe != n_ons).any():
        pos = int(np.flatnonzero((n_dfe != n_ons).to_numpy())[0])
        raise DataError("joint return lists a different number of DfE and ONS codes",
                        file=file, column="old_la_code",
                        row=int(parts["_row"].iloc[pos]))
    parts["old_la_code"], parts["new_la_code"] = dfe, ons
    parts = parts.explode(["old_la_code", "new_la_code"])
    parts["old_la_code"] = parts["old_la_code"].str.strip()
    parts["new_la_code"] = parts["new_la_code"].str.strip()
    return pd.concat([df[~joint], parts]).sort_values("_row", kind="stable")


def tidy_ees(df: pd.DataFrame, *, file: str, source_id: str, columns: dict[str, str],
             filters: dict[str, str] | None = None, year_offset: int = 0,
             time_identifier: str | None = "Reporting year") -> pd.DataFrame:
    """Turn an EES frame (all columns text, as read) into the tidy long table.

    Parameters
    ----------
    df
        The file as read by :func:`analysis.ingest.readers.common.read_csv_text`, in
        file order (line ``i + 2`` of the file is row ``i``).
    file
        Name of the file for error messages.
    source_id
        Manifest id written to ``source_id``.
    columns
        ``{column in the file: panel measure name}``.
    filters
        ``{breakdown column: value}`` selecting the headline rows, e.g.
        ``{"category": "Referrals and Re-referrals"}``. Every value must occur.
    year_offset
        Added to ``time_period`` to give the tidy ``year`` (1 for ONS mid-year).
    time_identifier
        Expected value of ``time_identifier`` (None: not checked).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`~analysis.ingest.readers.common.TIDY_COLUMNS`; National,
        Regional and Local authority rows only (other levels are dropped).

    Raises
    ------
    DataError
        See the module docstring.
    """
    filters = filters or {}
    require_columns(df, ID_COLUMNS + list(filters) + list(columns), file)
    df = df.copy()
    df["_row"] = np.arange(len(df)) + 2  # line 1 is the header

    if time_identifier is not None:
        ti = df["time_identifier"].str.strip()
        bad = ti.ne(time_identifier).to_numpy()
        if bad.any():
            pos = int(np.flatnonzero(bad)[0])
            raise DataError(f"time_identifier is {ti.iloc[pos]!r}, expected {time_identifier!r}",
                            file=file, column="time_identifier", row=int(df["_row"].iloc[pos]))

    for col, value in filters.items():
        keep = df[col].str.strip().eq(value)
        if not keep.any():
            found = sorted(df[col].str.strip().unique())[:8]
            raise DataError(f"headline breakdown value {value!r} not found (values present: "
                            f"{found})", file=file, column=col,
                            hint="was the breakdown relabelled in a new release?")
        df = df[keep]

    level = df["geographic_level"].str.strip().str.lower().map(LEVELS)
    df = df[level.notna()].assign(_level=level[level.notna()])
    if not df["_level"].eq("Local authority").any():
        raise DataError("no Local authority rows after filtering", file=file,
                        column="geographic_level")
    for c in ("old_la_code", "new_la_code", "region_code", "country_code"):
        df[c] = df[c].str.strip()
    df = _split_joint_returns(df, file).reset_index(drop=True)

    rows = df["_row"].to_numpy()
    df["_year"] = _parse_years(df["time_period"], rows, file=file).to_numpy() + year_offset

    is_la = df["_level"].eq("Local authority")
    is_reg = df["_level"].eq("Regional")
    area = pd.Series(df["country_code"].to_numpy(), index=df.index, dtype=object)
    area[is_reg] = df.loc[is_reg, "region_code"]
    if is_la.any():
        area[is_la] = current_la_codes(df.loc[is_la, "new_la_code"], df.loc[is_la, "old_la_code"],
                                       file=file, column="old_la_code",
                                       row_numbers=df.loc[is_la, "_row"].to_numpy()).to_numpy()
    blank = area.fillna("").eq("").to_numpy()
    if blank.any():
        pos = int(np.flatnonzero(blank)[0])
        col = {"National": "country_code", "Regional": "region_code"}.get(df["_level"].iloc[pos],
                                                                           "old_la_code")
        raise DataError("area code is blank", file=file, column=col, row=int(rows[pos]))
    name = df["country_name"].where(~is_reg, df["region_name"]).where(~is_la, df["la_name"])
    old = df["old_la_code"].where(is_la, "")

    key = pd.DataFrame({"y": df["_year"], "l": df["_level"], "a": area})
    dup = key.duplicated().to_numpy()
    if dup.any():
        pos = int(np.flatnonzero(dup)[0])
        first = int(np.flatnonzero(key.duplicated(keep=False).to_numpy()
                                   & (key == key.iloc[pos]).all(axis=1).to_numpy())[0])
        raise DataError(f"duplicate rows for {area.iloc[pos]} in {df['_year'].iloc[pos]} "
                        f"(file rows {int(rows[first])} and {int(rows[pos])}) after selecting "
                        "the headline rows", file=file, row=int(rows[pos]),
                        hint="a repeated line, or a breakdown the reader does not filter on")

    return melt_measures(df.reset_index(drop=True), columns, file=file, source_id=source_id,
                         year=df["_year"], level=df["_level"], area_code=area,
                         old_la_code=old, area_name=name, row_numbers=df["_row"])


def read_ees(path: Path | str, source_id: str, columns: dict[str, str],
             filters: dict[str, str] | None = None, *, year_offset: int = 0,
             time_identifier: str | None = "Reporting year") -> pd.DataFrame:
    """Read one EES tidy CSV into the tidy long table.

    Parameters
    ----------
    path
        The CSV file.
    source_id
        Manifest id of the file (written to ``source_id``).
    columns
        ``{column in the file: panel measure name}``.
    filters
        ``{breakdown column: value}`` picking the headline rows.
    year_offset, time_identifier
        See :func:`tidy_ees`.

    Returns
    -------
    pandas.DataFrame
        The tidy long table (:data:`~analysis.ingest.readers.common.TIDY_COLUMNS`).

    Raises
    ------
    DataError
        Missing column, vanished breakdown value, unknown token, unknown LA code,
        duplicated area-year, unexpected time_identifier.
    """
    path = Path(path)
    file = relative_path(path)
    return tidy_ees(read_csv_text(path, file), file=file, source_id=source_id,
                    columns=columns, filters=filters, year_offset=year_offset,
                    time_identifier=time_identifier)


# --------------------------------------------------------------------------
# Named readers, one per file the evaluation uses.
# --------------------------------------------------------------------------

def read_c1(path: Path | str | None = None, source_id: str = "cin_c1") -> pd.DataFrame:
    """Referrals, re-referrals within 12 months and NFA (CIN table C1), 2013-2025.

    Measures ``referrals``, ``rereferrals``, ``rereferral_pct``, ``nfa_pct``;
    headline rows ``category == "Referrals and Re-referrals"``.

    Parameters
    ----------
    path
        The CSV; default: the manifest entry ``source_id`` fetched into the cache.
    source_id
        Manifest id.

    Returns
    -------
    pandas.DataFrame
        Tidy long table.
    """
    return read_ees(_resolve(path, source_id), source_id,
                    {"referral_count": "referrals", "rereferral_count": "rereferrals",
                     "rereferral_percent": "rereferral_pct",
                     "no_further_action_percent": "nfa_pct"},
                    {"category": "Referrals and Re-referrals"})


def read_b1(path: Path | str | None = None, source_id: str = "cin_b1") -> pd.DataFrame:
    """Children in need episodes (CIN table B1), 2013-2025.

    Measures ``cin_31mar`` (``At31_episodes``), ``cin_starts``
    (``Started_episodes``), ``cin_episodes`` (``Anypoint_episodes``); headline
    rows ``category == "Children in Need"``. Episodes, not children.

    Parameters
    ----------
    path
        The CSV; default: the manifest entry fetched into the cache.
    source_id
        Manifest id.

    Returns
    -------
    pandas.DataFrame
        Tidy long table.
    """
    return read_ees(_resolve(path, source_id), source_id,
                    {"At31_episodes": "cin_31mar", "Started_episodes": "cin_starts",
                     "Anypoint_episodes": "cin_episodes"},
                    {"category": "Children in Need"})


def read_d3(path: Path | str | None = None, source_id: str = "cpp_d3") -> pd.DataFrame:
    """Child protection plans starting, and second or subsequent plans (table D3), 2013-2025.

    Measures ``cpp_starts``, ``cpp_second_subsequent``,
    ``cpp_second_subsequent_pct``. The percentage is ``z`` (not applicable)
    where an LA started no plans.

    Parameters
    ----------
    path
        The CSV; default: the manifest entry fetched into the cache.
    source_id
        Manifest id.

    Returns
    -------
    pandas.DataFrame
        Tidy long table.
    """
    return read_ees(_resolve(path, source_id), source_id,
                    {"CPP_start": "cpp_starts", "CPP_subsequent": "cpp_second_subsequent",
                     "CPP_subsequent_percent": "cpp_second_subsequent_pct"},
                    {"category": "Child Protection Plans which are a second or subsequent plan"})


#: The two layouts of the CLA numbers-and-rates file: (type column, count column,
#: {population type label: (count measure, rate measure)}).
CLA_LAYOUTS: dict[str, tuple[str, str, dict[str, tuple[str, str]]]] = {
    # Release 2025 (2021-2025).
    "children_count": ("population_type", "children_count", {
        "Children looked after on 31 March each year": ("cla_31mar", "cla_rate_per10k"),
        "Children starting to be looked after each year": ("cla_starts", "cla_starts_rate_per10k"),
        "Children ceasing to be looked after each year": ("cla_ceased", "cla_ceased_rate_per10k"),
    }),
    # Release 2024 (2020-2024): other column names, "at 31 March".
    "number": ("population_count", "number", {
        "Children looked after at 31 March each year": ("cla_31mar", "cla_rate_per10k"),
        "Children starting to be looked after each year": ("cla_starts", "cla_starts_rate_per10k"),
        "Children ceasing to be looked after each year": ("cla_ceased", "cla_ceased_rate_per10k"),
    }),
}


def read_cla_rates(path: Path | str | None = None,
                   source_id: str = "cla_rates_2025") -> pd.DataFrame:
    """Children looked after at 31 March, starting and ceasing: numbers and rates per 10,000.

    Reads either release: 2025 (``cla_rates_2025``, 2021-2025; columns
    ``population_type``/``children_count``, label "on 31 March") or 2024
    (``cla_rates_2024``, 2020-2024; columns ``population_count``/``number``,
    label "at 31 March"). The layout is recognised by its count column. Rates
    use the ONS mid-year estimate of the previous calendar year (the file's
    ``population_estimate`` for 2024 equals ONS mid-2023 in the 2025 release).
    The 2024 release used ONS estimates since revised for 2023 and 2024, so
    its rates for those years differ from the 2025 release.

    LA-years for LAs that did not exist (e.g. Northamptonshire 2022+) are in the
    file as ``z`` and come out suppressed with token ``z``.

    Parameters
    ----------
    path
        The CSV; default: the manifest entry fetched into the cache.
    source_id
        Manifest id (``cla_rates_2025`` or ``cla_rates_2024``).

    Returns
    -------
    pandas.DataFrame
        Tidy long table with measures ``cla_31mar``, ``cla_rate_per10k``,
        ``cla_starts``, ``cla_starts_rate_per10k``, ``cla_ceased``,
        ``cla_ceased_rate_per10k``.

    Raises
    ------
    DataError
        Neither layout's count column is present, a population-type label is
        missing, or any guard of :func:`tidy_ees` fails.
    """
    path = _resolve(path, source_id)
    file = relative_path(path)
    df = read_csv_text(path, file)
    layout = next((k for k in CLA_LAYOUTS if k in df.columns), None)
    if layout is None:
        raise DataError("expected column is missing", file=file, column="children_count",
                        hint="neither 'children_count' (2025 layout) nor 'number' (2024 layout) "
                             "is in the file")
    type_col, count_col, labels = CLA_LAYOUTS[layout]
    parts = [tidy_ees(df, file=file, source_id=source_id,
                      columns={count_col: count_m, "rate_per_10000": rate_m},
                      filters={type_col: label})
             for label, (count_m, rate_m) in labels.items()]
    return tidy_frame(parts)


def read_cla_ceased_sgo(path: Path | str | None = None,
                        source_id: str = "cla_ceased_sgo_2024") -> pd.DataFrame:
    """Children who ceased to be looked after via a special guardianship order, 2020-2024.

    Headline rows ``cla_group == "Special guardianship orders"`` and
    ``characteristic == "Total"``; measure ``cla_ceased_sgo`` (count, rounded
    by DfE). The file's ``percentage`` is the share *within* the SGO group
    (100 for the Total row; the carer-type rows split it), not a share of all
    children ceasing care, so it is not read: divide by ``cla_ceased`` (from
    :func:`read_cla_rates`) or use LAIT ``LAC_ceased_SGO%`` for that.

    Parameters
    ----------
    path
        The CSV; default: the manifest entry fetched into the cache.
    source_id
        Manifest id.

    Returns
    -------
    pandas.DataFrame
        Tidy long table.
    """
    return read_ees(_resolve(path, source_id), source_id, {"number": "cla_ceased_sgo"},
                    {"cla_group": "Special guardianship orders", "characteristic": "Total"})


def read_population(path: Path | str | None = None,
                    source_id: str = "ons_pop_0_17") -> pd.DataFrame:
    """ONS mid-year population estimates of children aged 0-17, as DfE rate denominators.

    The file's ``time_period`` is the ONS **mid-year** (2018 = mid-2018), even
    though its ``time_identifier`` says "Reporting year". DfE divides counts of
    reporting year Y (April Y-1 to March Y) by the mid-(Y-1) estimate, so this
    reader emits ``year = time_period + 1``: the row with ``year`` 2019 holds
    the mid-2018 estimate, the denominator of 2019 rates. Checked on the real
    files: in the CLA release 2025 the ``population_estimate`` of every area
    for reporting years 2021-2025 equals this file's mid-(Y-1) figure (821 of
    821 LA-years), and never its mid-Y figure. Mid-2012 to mid-2024 give years
    2013-2025.

    Parameters
    ----------
    path
        The CSV; default: the manifest entry fetched into the cache.
    source_id
        Manifest id.

    Returns
    -------
    pandas.DataFrame
        Tidy long table, measure ``pop_0_17``; headline rows
        ``age_group == "Children aged 0 to 17 years"``.
    """
    return read_ees(_resolve(path, source_id), source_id,
                    {"population_estimate": "pop_0_17"},
                    {"age_group": "Children aged 0 to 17 years"}, year_offset=1)


def read_csww(path: Path | str | None = None, source_id: str = "csww_2025") -> pd.DataFrame:
    """Children's social work workforce indicators by LA, 2017-2025.

    One row per area and year, no breakdown columns: the FTE measures are the
    headline DfE publishes (headcount versions exist beside them and are not
    read). Measures ``sw_turnover_pct`` (``turnover_rate_fte``),
    ``sw_agency_pct`` (``agency_rate_fte``), ``sw_vacancy_pct``
    (``vacancy_rate_fte``), ``sw_caseload_per_fte`` (``caseload_fte``).

    Year: ``time_period`` Y is the workforce census at **30 September Y**
    (turnover over October Y-1 to September Y); e.g. North and West
    Northamptonshire (formed April 2021) first appear in 2021. It is kept as
    ``year`` = Y, as DfE and LAIT label it, so it runs six months after the
    reporting year Y of the CIN and CLA measures ends.

    Joint returns ("Kingston upon Thames / Richmond upon Thames" 2017-2025,
    "North Northamptonshire / West Northamptonshire" 2021-2025) are given to
    each LA, as LAIT does, keeping the joint ``area_name``.

    Parameters
    ----------
    path
        The CSV; default: the manifest entry fetched into the cache.
    source_id
        Manifest id.

    Returns
    -------
    pandas.DataFrame
        Tidy long table.
    """
    return read_ees(_resolve(path, source_id), source_id,
                    {"turnover_rate_fte": "sw_turnover_pct", "agency_rate_fte": "sw_agency_pct",
                     "vacancy_rate_fte": "sw_vacancy_pct", "caseload_fte": "sw_caseload_per_fte"})


#: Named readers by manifest id (``read_all_ees`` runs them all).
EES_READERS = {
    "cin_c1": read_c1,
    "cin_b1": read_b1,
    "cpp_d3": read_d3,
    "cla_rates_2025": read_cla_rates,
    "cla_rates_2024": read_cla_rates,
    "cla_ceased_sgo_2024": read_cla_ceased_sgo,
    "ons_pop_0_17": read_population,
    "csww_2025": read_csww,
}


def read_all_ees() -> pd.DataFrame:
    """Run every named EES reader on its manifest file and stack the results.

    Returns
    -------
    pandas.DataFrame
        Tidy long table; ``source_id`` tells the files apart (both CLA
        releases are included, each with its own id).
    """
    return tidy_frame([reader(source_id=sid) for sid, reader in EES_READERS.items()])
