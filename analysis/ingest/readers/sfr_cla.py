"""Reader for DfE's children-looked-after SFR "underlying data" CSVs, 2010-2019.

Before the move to Explore Education Statistics (2020), DfE published each year
wide CSV files beside its statistical first release (SFR) "Children looked after
in England including adoption": one file of children looked after (CLA) at
31 March, one of children who started to be looked after during the year (ADM),
one of children who ceased to be looked after (CEA). Rows are England, regions
and local authorities (LAs); column names change from year to year. The
metadata ``.txt`` files published with them define the columns.

The year -> column mapping lives in :data:`COLUMN_RULES`, one row per
reporting year, file and measure, with the column(s) summed and why; it was
read from the metadata files (manifest ids ``cla_sfr_<year>_meta``; the
2011-2013 metadata is not in the mirror, but their headers are identical to the
2014 files the 2014 metadata describes). Nothing in the code branches on the
year: change the table, not the code.

Measures (counts of children; reporting year = year ending 31 March):

``cla_31mar``
    Looked after at 31 March.
``cla_foster``
    Looked after at 31 March in a foster placement (all types: with a relative
    or friend, with other foster carers, in and out of area).
``cla_foster_kinship``
    Looked after at 31 March in a foster placement with a relative or friend
    (SSDA903 placement type Q1, later U1-U3). **2010 only**: the 2011-2019 LA
    files publish foster placements as one column (``CLA_Fost``).
``cla_starts``
    Started to be looked after during the year.
``cla_ceased``
    Ceased to be looked after during the year.
``cla_ceased_sgo``
    Ceased because a special guardianship order (SGO) was made: the sum of every
    SGO reason in the file. To 2018 the SSDA903 reasons were E43 (SGO to former
    foster carers) and E44 (SGO to carers other than former foster carers); from
    2019 E45-E48 split each by whether the carer was a relative or friend.
``cla_ceased_sgo_kin``
    **2019 only**: ceased through an SGO to a relative or friend (E45 former
    foster carer who was a relative or friend + E47 other carer who was a
    relative or friend).

A measure summed from several columns is missing and flagged suppressed when
any part is suppressed (the true total is unknown), and missing, not
suppressed, when any part is blank.

Surprises handled here (each pinned by a test):

- 2010 ``SFR27_2010_March.csv``: the placement columns are written in the
  alphabetical order of their placement codes (A3, A4, A5, A6, H5, K1, K2, M1,
  M2, M3, P1, P2, P3, Q1, Q2, R1, R2, R3, R5, S1, Z1) under a header in the
  metadata's order (Q1, Q2, A3, ...). So the column headed ``MarPlace_R2_2010``
  holds Q1 (foster with relative or friend: England 7,300) and
  ``MarPlace_R3_2010`` holds Q2 (other foster carer: 39,900; together 73% of
  64,400, as the SFR reports). LA by LA the columns match 2011 (``CLA_Fost``
  r = 0.98 with the R3-headed column; ``CLA_Parent`` r = 0.97 with the
  K2-headed column, which holds P1). The 2010 Started and Ceased files are in
  header order.
- 2015 ``SFR34_ADM2015.csv`` labels its total ``CLA_started2014``; it holds
  2015 starts (England 31,070, against 30,430 in the 2014 file).
- 2018 and 2019 files carry five years of totals (``CLA_Mar2014`` ...
  ``CLA_Mar2018``, ``CLA_started2014`` ..., ``CLA_cease2014`` ...): the earlier
  years as revised by LAs after their first publication ("Historical data may
  differ from older publications ... amendments and corrections sent by some
  local authorities", the 2018 and 2019 metadata). :func:`read_all` reads each
  file's own year; :func:`read_back_series` reads the earlier years' totals
  (:data:`BACK_SERIES_RULES`), under the file's own source id, so the panel's
  newest-release rule takes the revision (2014 at 31 March: 93 of 151 LAs
  revised in the 2018 file, Hackney 329 -> 340). Foster and SGO counts have no
  back series: they stay as first published.
- Suppression: ``x`` to 2018, ``c`` in 2019.
- Levels: ``National``/``GOR``/``LA`` with DfE letter codes for regions and
  ``921`` for England in 2010 (also Isle of Wight's LA code, so the level is
  read from ``geog_l``, never from the code); ``NATIONAL``/``REGION``/``LA``
  later, Inner and Outer London sharing ``E12000007`` to 2018. Regions are
  identified by name. 2017's CLA file leaves ``geog_l`` blank on the Isles of
  Scilly row; a blank level is then read from the ONS code (E06/E08/E09/E10 =
  LA).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pandas as pd

from analysis.core.errors import DataError
from analysis.ingest.geography import current_la_codes, la_register
from analysis.ingest.readers.common import parse_values, read_csv_text, require_columns, tidy_frame
from analysis.ingest.sources import fetch as fetch_source
from analysis.ingest.sources import load_manifest

#: Reporting years this reader covers.
SFR_YEARS = tuple(range(2010, 2020))

#: Files (by their own year) that republish earlier years: :data:`BACK_SERIES_RULES`.
BACK_SERIES_YEARS = (2018, 2019)

#: File kinds and the manifest id suffix of each.
KINDS = ("cla", "adm", "cea")

#: Panel measures produced by this module: unit, definition, years, source ids.
MEASURES: dict[str, dict[str, str]] = {
    "cla_31mar": {"unit": "count", "years": "2010-2019", "source_id": "cla_sfr_<year>_cla",
                  "definition": "Children looked after at 31 March"},
    "cla_foster": {"unit": "count", "years": "2010-2019", "source_id": "cla_sfr_<year>_cla",
                   "definition": "Children looked after at 31 March in foster placements "
                                 "(all types)"},
    "cla_foster_kinship": {"unit": "count", "years": "2010", "source_id": "cla_sfr_2010_cla",
                           "definition": "Children looked after at 31 March in a foster "
                                         "placement with a relative or friend"},
    "cla_starts": {"unit": "count", "years": "2010-2019", "source_id": "cla_sfr_<year>_adm",
                   "definition": "Children who started to be looked after during the year"},
    "cla_ceased": {"unit": "count", "years": "2010-2019", "source_id": "cla_sfr_<year>_cea",
                   "definition": "Children who ceased to be looked after during the year"},
    "cla_ceased_sgo": {"unit": "count", "years": "2010-2019", "source_id": "cla_sfr_<year>_cea",
                       "definition": "Children who ceased to be looked after because a special "
                                     "guardianship order was made (all SGO reasons summed)"},
    "cla_ceased_sgo_kin": {"unit": "count", "years": "2019", "source_id": "cla_sfr_2019_cea",
                           "definition": "Children who ceased to be looked after because a special "
                                         "guardianship order was made to a relative or friend"},
}


@dataclass(frozen=True)
class ColumnRule:
    """How one measure is read from one year's file.

    Attributes
    ----------
    year
        Reporting year (year ending 31 March) the file is for.
    kind
        ``"cla"`` (at 31 March), ``"adm"`` (started) or ``"cea"`` (ceased).
    measure
        Panel measure name.
    columns
        Column(s) of the file; several are summed.
    note
        Why these columns (metadata wording, known mislabels).
    data_year
        Reporting year the values are for when it is not ``year``: the back
        series of the 2018 and 2019 files (``CLA_Mar2014`` in the 2018 file).
    """

    year: int
    kind: str
    measure: str
    columns: tuple[str, ...]
    note: str = ""
    data_year: int | None = None

    @property
    def value_year(self) -> int:
        """Reporting year of the values read by this rule."""
        return self.year if self.data_year is None else self.data_year


def _standard_years() -> list[ColumnRule]:
    """Rules for 2011-2019, whose layouts differ only in a few names."""
    rules: list[ColumnRule] = []
    # Total at 31 March: CLA_Mar<year> in every year 2011-2019.
    for y in range(2011, 2020):
        rules.append(ColumnRule(y, "cla", "cla_31mar", (f"CLA_Mar{y}",),
                                f"'Children looked after at 31 March {y}'"))
        rules.append(ColumnRule(y, "cla", "cla_foster", ("CLA_Fost",),
                                f"'Children looked after at 31 March {y} in foster placements'"))
    started = {y: f"CLA_started{y}" for y in range(2011, 2020)}
    # The 2015 file mislabels its total: its values are 2015 starts (see module notes).
    started[2015] = "CLA_started2014"
    for y, col in started.items():
        note = f"'Children who started to be looked after during the year ending 31 March {y}'"
        if y == 2015:
            note += "; header mislabelled CLA_started2014 in SFR34_ADM2015.csv"
        rules.append(ColumnRule(y, "adm", "cla_starts", (col,), note))
    ceased = {y: "CLA_cease" for y in range(2011, 2017)}
    ceased.update({y: f"CLA_cease{y}" for y in (2017, 2018, 2019)})
    for y, col in ceased.items():
        rules.append(ColumnRule(y, "cea", "cla_ceased", (col,),
                                f"'Children who ceased to be looked after during the year ending 31 March {y}'"))
    # SGO exits: E43 (to former foster carers) + E44 (to other carers) to 2018.
    sgo = {y: ("CLA_ceaSpecG", "CLA_ceaSpecG2") for y in range(2011, 2016)}
    sgo[2016] = ("CLA_ceaSpecG1", "CLA_ceaSpecG2")
    sgo[2017] = sgo[2018] = ("CEA_SGO1", "CEA_SGO2")
    for y, cols in sgo.items():
        rules.append(ColumnRule(y, "cea", "cla_ceased_sgo", cols,
                                "SGO made to former foster carers (E43) + SGO made to carers "
                                "other than former foster carers (E44)"))
    # 2019: E45-E48 split each SGO by whether the carer was a relative or friend.
    rules.append(ColumnRule(2019, "cea", "cla_ceased_sgo",
                            ("CEA_SGO_FFC_Rel", "CEA_SGO_FFC_Oth", "CEA_SGO_Car_Rel", "CEA_SGO_Car_Oth"),
                            "SGO to former foster carer relative/friend (E45) + former foster "
                            "carer other (E46) + other carer relative/friend (E47) + other carer "
                            "other (E48)"))
    rules.append(ColumnRule(2019, "cea", "cla_ceased_sgo_kin", ("CEA_SGO_FFC_Rel", "CEA_SGO_Car_Rel"),
                            "SGO to a relative or friend: former foster carer (E45) + other carer (E47)"))
    return rules


#: Every (year, file, measure) -> columns rule. 2010 is its own layout (see module notes).
COLUMN_RULES: tuple[ColumnRule, ...] = tuple([
    ColumnRule(2010, "cla", "cla_31mar", ("MarTotal_2010",), "'Children looked after at 31 March 2010'"),
    ColumnRule(2010, "cla", "cla_foster", ("MarPlace_R2_2010", "MarPlace_R3_2010"),
               "placement codes Q1 (foster with relative or friend) + Q2 (other foster carer); the file's "
               "values are in alphabetical code order, so Q1 and Q2 sit under the headers R2 and R3"),
    ColumnRule(2010, "cla", "cla_foster_kinship", ("MarPlace_R2_2010",),
               "placement code Q1, foster placement with relative or friend (under the header R2, "
               "see module notes)"),
    ColumnRule(2010, "adm", "cla_starts", ("StartTotal_2010",),
               "'All children who started to be looked during the year ending 31 March 2010'"),
    ColumnRule(2010, "cea", "cla_ceased", ("CeasedTotal_2010",),
               "'All children who ceased to be looked after during the year ending 31 March 2010'"),
    ColumnRule(2010, "cea", "cla_ceased_sgo", ("CeasedSpeGuaForm_2010", "CeasedSpecGuaOth_2010"),
               "SGO made to former foster carers (E43) + SGO made to carers other than former "
               "foster carers (E44)"),
    *_standard_years(),
])


def _back_series() -> list[ColumnRule]:
    """Earlier years' totals republished (revised) in the 2018 and 2019 files.

    2018: ``CLA_Mar2014``-``2017``, ``CLA_started2014``-``2017``, ``CLA_cease2014``-``2017``;
    2019: the same for 2015-2018 (metadata: "Children looked after at 31 March 2014",
    "Children who started to be looked after during the year ending 31 March 2014", ...).
    """
    rules: list[ColumnRule] = []
    for file_year in (2018, 2019):
        for y in range(file_year - 4, file_year):
            note = f"back series of the {file_year} file: {y} as revised by {file_year}"
            rules += [ColumnRule(file_year, "cla", "cla_31mar", (f"CLA_Mar{y}",), note, y),
                      ColumnRule(file_year, "adm", "cla_starts", (f"CLA_started{y}",), note, y),
                      ColumnRule(file_year, "cea", "cla_ceased", (f"CLA_cease{y}",), note, y)]
    return rules


#: Revised earlier years in the 2018 and 2019 files (read by :func:`read_back_series`).
BACK_SERIES_RULES: tuple[ColumnRule, ...] = tuple(_back_series())


@dataclass(frozen=True)
class Geography:
    """Columns identifying the area of a row in one year's files."""

    level: str = "geog_l"
    dfe_code: str = "geog_c"
    name: str = "geog_n"
    ons_code: str | None = "New_geog_code"


#: 2010 files have no ONS code column; the others carry ``New_geog_code``.
GEOGRAPHY: dict[int, Geography] = {2010: Geography(ons_code=None),
                                   **{y: Geography() for y in range(2011, 2020)}}

#: ``geog_l`` values (lower-case) -> tidy level.
LEVEL_NAMES = {"national": "National", "england": "National", "gor": "Regional",
               "region": "Regional", "la": "Local authority"}

#: Region names (lower-case, '&' -> 'and', 'the ' dropped) -> ONS code and name.
REGIONS = {
    "england": ("E92000001", "England"),
    "north east": ("E12000001", "North East"),
    "north west": ("E12000002", "North West"),
    "yorkshire and humber": ("E12000003", "Yorkshire and The Humber"),
    "east midlands": ("E12000004", "East Midlands"),
    "west midlands": ("E12000005", "West Midlands"),
    "east of england": ("E12000006", "East of England"),
    "london": ("E12000007", "London"),
    "inner london": ("E13000001", "Inner London"),
    "outer london": ("E13000002", "Outer London"),
    "south east": ("E12000008", "South East"),
    "south west": ("E12000009", "South West"),
}


def column_table(*, back_series: bool = False) -> pd.DataFrame:
    """The year -> column mapping as a table (one row per year, file and measure).

    ``back_series`` adds the rules of the earlier years the 2018 and 2019 files
    republish (:data:`BACK_SERIES_RULES`).

    Returns
    -------
    pandas.DataFrame
        Columns ``year`` (of the file), ``file`` (``cla``/``adm``/``cea``),
        ``measure``, ``columns`` (joined with ``+``), ``note`` and ``data_year``
        (the year the values are for: differs from ``year`` in the back
        series); for the data chapter.
    """
    rules = COLUMN_RULES + (BACK_SERIES_RULES if back_series else ())
    return pd.DataFrame([dict(year=r.year, file=r.kind, measure=r.measure,
                              columns=" + ".join(r.columns), note=r.note, data_year=r.value_year)
                         for r in rules])


def rules_for(year: int, kind: str, *, back_series: bool = False) -> list[ColumnRule]:
    """The rules of one year's file, in table order.

    ``back_series`` gives the rules of the earlier years the file republishes
    (:data:`BACK_SERIES_RULES`) instead of its own year's.

    Raises
    ------
    DataError
        No rule for that year and file (a year outside 2010-2019, or a file
        with no back series).
    """
    table = BACK_SERIES_RULES if back_series else COLUMN_RULES
    rules = [r for r in table if r.year == year and r.kind == kind]
    if not rules:
        what = "back-series rules" if back_series else "column rules"
        covered = sorted({r.year for r in table})
        raise DataError(f"no {what} for SFR year {year} file '{kind}' "
                        f"(covered: {covered[0]}-{covered[-1]})")
    return rules


def _file_lines(path: Path, n_rows: int) -> np.ndarray:
    """The file's own line number of each data row (pandas skips blank lines)."""
    raw = Path(path).read_bytes().decode("latin-1")
    nonblank = [i + 1 for i, line in enumerate(raw.splitlines()) if line.strip() != ""]
    lines = np.asarray(nonblank[1:], dtype=int)  # first non-blank line is the header
    if len(lines) != n_rows:  # quoted line breaks: fall back to the position
        return np.arange(n_rows) + 2
    return lines


def _region_key(name: str) -> str:
    key = re.sub(r"\s+", " ", name.strip().lower().replace("&", "and"))
    return key.replace("the ", "")


def _levels(df: pd.DataFrame, geo: Geography, file: str, rows: np.ndarray) -> pd.Series:
    """Tidy level per row; blank ``geog_l`` falls back to the ONS code's prefix."""
    raw = df[geo.level].str.strip()
    level = raw.str.lower().map(LEVEL_NAMES)
    blank = raw.eq("")
    if blank.any() and geo.ons_code is not None:
        # 2017 CLA file: the Isles of Scilly row has an empty geog_l.
        ons = df[geo.ons_code].str.strip()
        la_like = ons.str.match(r"^E(06|07|08|09|10)\d{6}$")
        level = level.mask(blank & la_like, "Local authority")
    bad = level.isna().to_numpy().copy()
    if bad.any():
        # Wholly empty lines (trailing ",,,,") are skipped, not errors.
        cells = df.loc[bad].to_numpy(dtype=str)
        empty = (np.char.strip(cells) == "").all(axis=1)
        bad[np.flatnonzero(bad)[empty]] = False
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise DataError(f"unknown geography level {raw.iloc[pos]!r} "
                        f"(expected one of {sorted(set(LEVEL_NAMES))})",
                        file=file, column=geo.level, row=int(rows[pos]))
    return level


def read_file(path: Path | str, year: int, kind: str, *, source_id: str = "",
              file: str | None = None, back_series: bool = False) -> pd.DataFrame:
    """Read one SFR underlying-data CSV into the tidy long table.

    Parameters
    ----------
    path
        The CSV (as published).
    year
        Reporting year the file is for (year ending 31 March).
    kind
        ``"cla"``, ``"adm"`` or ``"cea"``: which of the year's files it is.
    source_id
        Manifest id written into ``source_id``.
    file
        Name used in error messages (default: the file name).
    back_series
        Read the earlier years the file republishes (2018 and 2019 files) instead
        of its own year; ``year`` in the result is then the year of the values.

    Returns
    -------
    pandas.DataFrame
        Tidy rows (:data:`~analysis.ingest.readers.common.TIDY_COLUMNS`) for England,
        the regions and every LA in the file; LA rows carry the current ONS code.

    Raises
    ------
    DataError
        A column the year's rules expect is missing, a value is neither a number
        nor a suppression token (names the file's own line), a geography level
        or LA code is unknown.
    """
    path = Path(path)
    file = file or path.name
    rules = rules_for(year, kind, back_series=back_series)
    if year not in GEOGRAPHY:
        raise DataError(f"no geography layout for SFR year {year}", file=file)
    geo = GEOGRAPHY[year]
    df = read_csv_text(path, file)
    id_cols = [geo.level, geo.dfe_code, geo.name] + ([geo.ons_code] if geo.ons_code else [])
    value_cols = list(dict.fromkeys(c for r in rules for c in r.columns))
    require_columns(df, id_cols + value_cols, file)

    rows = _file_lines(path, len(df))
    level = _levels(df, geo, file, rows)
    keep = level.notna().to_numpy()
    df, level, rows = df[keep].reset_index(drop=True), level[keep].reset_index(drop=True), rows[keep]

    is_la = level.eq("Local authority").to_numpy()
    names = df[geo.name].str.strip()
    dfe = df[geo.dfe_code].str.strip()
    area_code = pd.Series("", index=df.index, dtype=object)
    area_name = names.astype(object).copy()
    old_code = pd.Series("", index=df.index, dtype=object)
    if is_la.any():
        ons = df.loc[is_la, geo.ons_code] if geo.ons_code else None
        codes = current_la_codes(ons, dfe[is_la], file=file, column=geo.dfe_code,
                                 row_numbers=rows[is_la])
        area_code[is_la] = codes.to_numpy()
        old_code[is_la] = dfe[is_la].to_numpy()
        reg_names = dict(zip(la_register()["la_code"], la_register()["la_name"]))
        area_name[is_la] = codes.map(reg_names).to_numpy()
    for pos in np.flatnonzero(~is_la):
        key = "england" if level.iloc[pos] == "National" else _region_key(names.iloc[pos])
        if key not in REGIONS:
            raise DataError(f"unknown region name {names.iloc[pos]!r}", file=file,
                            column=geo.name, row=int(rows[pos]))
        area_code.iloc[pos], area_name.iloc[pos] = REGIONS[key]

    parsed = {c: parse_values(df[c], file=file, column=c, row_numbers=rows) for c in value_cols}
    parts = []
    for rule in rules:
        values = [parsed[c][0] for c in rule.columns]
        supp = [parsed[c][1] for c in rule.columns]
        toks = [parsed[c][2] for c in rule.columns]
        # A sum with a suppressed or blank part is unknown: NaN (sum of NaN stays NaN).
        value = pd.concat(values, axis=1).sum(axis=1, min_count=len(values))
        suppressed = pd.concat(supp, axis=1).any(axis=1)
        token = pd.Series([""] * len(df), dtype=object)
        for t in reversed(toks):  # first suppressed part's token wins
            token = token.where(t.eq(""), t)
        parts.append(pd.DataFrame({
            "geographic_level": level.to_numpy(),
            "area_code": area_code.to_numpy(),
            "old_la_code": old_code.to_numpy(),
            "area_name": area_name.to_numpy(),
            "year": rule.value_year,
            "measure": rule.measure,
            "value": value.to_numpy(dtype=float),
            "suppressed": suppressed.to_numpy(dtype=bool),
            "token": token.to_numpy(),
            "source_id": source_id,
            "row": rows,
        }))
    return tidy_frame(parts)


def read_back_series(fetch: Callable[[str], Path] | None = None,
                     years: Iterable[int] = BACK_SERIES_YEARS) -> pd.DataFrame:
    """The earlier years republished in the 2018 and 2019 files, as revised.

    Parameters
    ----------
    fetch
        ``manifest id -> verified local path``; default :func:`analysis.ingest.sources.fetch`.
    years
        Files to read (default 2018 and 2019).

    Returns
    -------
    pandas.DataFrame
        Tidy rows of ``cla_31mar``, ``cla_starts`` and ``cla_ceased`` for the four
        years before each file's own year (2014-2017 from 2018, 2015-2018 from
        2019), with the file's source id (so its release date decides which
        revision the panel keeps).
    """
    if fetch is None:
        fetch = fetch_source
    parts = []
    for year in years:
        for kind in KINDS:
            sid = manifest_id(year, kind)
            path = Path(fetch(sid))
            parts.append(read_file(path, year, kind, source_id=sid, file=_display_name(sid, path),
                                   back_series=True))
    return tidy_frame(parts)


def manifest_id(year: int, kind: str) -> str:
    """Manifest id of a year's file, e.g. ``cla_sfr_2015_adm``."""
    return f"cla_sfr_{year}_{kind}"


def read_year(year: int, fetch: Callable[[str], Path]) -> pd.DataFrame:
    """Read the CLA, ADM and CEA files of one reporting year.

    Parameters
    ----------
    year
        Reporting year, 2010-2019.
    fetch
        ``manifest id -> verified local path`` (e.g. :func:`analysis.ingest.sources.fetch`).
    """
    parts = []
    for kind in KINDS:
        sid = manifest_id(year, kind)
        path = Path(fetch(sid))
        parts.append(read_file(path, year, kind, source_id=sid, file=_display_name(sid, path)))
    return tidy_frame(parts)


@lru_cache(maxsize=1)
def _manifest_paths() -> dict[str, str]:

    try:
        return {sid: src.path for sid, src in load_manifest().items()}
    except DataError:  # no manifest (e.g. a test's own fetch): fall back to file names
        return {}


def _display_name(sid: str, path: Path) -> str:
    """Name errors by the manifest path (where the user can find the file)."""
    return _manifest_paths().get(sid, path.name)


def read_all(fetch: Callable[[str], Path] | None = None,
             years: Iterable[int] = SFR_YEARS) -> pd.DataFrame:
    """Read every SFR year into one tidy table.

    Parameters
    ----------
    fetch
        ``manifest id -> verified local path``; default :func:`analysis.ingest.sources.fetch`.
    years
        Reporting years to read (default 2010-2019).

    Returns
    -------
    pandas.DataFrame
        Tidy rows for measures ``cla_31mar``, ``cla_foster``, ``cla_starts``,
        ``cla_ceased``, ``cla_ceased_sgo`` (all years), ``cla_foster_kinship``
        (2010) and ``cla_ceased_sgo_kin`` (2019).
    """
    if fetch is None:

        fetch = fetch_source
    return tidy_frame([read_year(y, fetch) for y in years])
