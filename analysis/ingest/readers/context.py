"""Context measures for matching: area, population density and deprivation.

Three published files, one reader each, all returning the tidy long table of
:mod:`analysis.ingest.readers.common`:

``ons_mye23`` -- ONS mid-year estimates 2023, sheet MYE5 (area and density)
    ``people_per_sqkm`` (residents of all ages per square kilometre of land)
    and ``area_sqkm`` (land area, excluding inland water, Standard Area
    Measurements at 31 December 2021), for reporting years 2012-2024.

    *Timing.* The estimate for mid-year ``y`` is attached to reporting year
    ``y + 1``, the convention DfE uses for its rates (the 2019 rate per 10,000
    divides by the mid-2018 population). Mid-2011 therefore gives 2012 and
    mid-2023 gives 2024; 2025 has no value until ONS publishes mid-2024.

    *Boundaries.* The sheet is on April 2023 boundaries. Density is computed
    here as population / area from the unrounded figures (the sheet prints it
    rounded to a whole number; :func:`read_mye5` keeps that printed value for
    checks). LAs abolished inside the window are rebuilt from their
    successors, which the sheet holds as unitary authorities:

    - Cumbria (E10000006, to reporting year 2023) = Cumberland + Westmorland
      and Furness: the two 2023 unitaries are exactly the old county.
    - Northamptonshire (E10000021, to 2021) = North + West Northamptonshire:
      exactly the old county.

    Bournemouth (E06000028), Poole (E06000029) and the old Dorset county
    (E10000009), all to reporting year 2019, **cannot** be rebuilt from this
    sheet: Christchurch moved from Dorset county into Bournemouth,
    Christchurch and Poole in April 2019 and the 2023-boundary sheet has no
    row for Christchurch (nor for Bournemouth or Poole alone), so no sum of its
    rows gives any of the three. They get no rows, rather than an
    approximation; all three are boundary-changed LAs and excluded from the
    donor pool, so matching never needs them. The successor unitaries (BCP
    E06000058, Dorset E06000059) get values from their first register year.

    Buckinghamshire, North Yorkshire and Somerset changed code but not area;
    the sheet's current codes are the register's codes.

    Rows are emitted only for the years an LA exists in the register
    (``first_year`` to ``last_year`` of ``data/local_authorities.csv``).
    The reader checks that the upper-tier rows of England (unitary
    authorities, metropolitan districts, London boroughs and shire counties)
    add up to the England row, so a change of layout cannot silently drop or
    double-count an area.

``imd_2019`` -- English Indices of Deprivation 2019, upper-tier LA summaries
    ``imd_score``: the IMD "average score", the population-weighted mean of
    the IMD scores of the LA's LSOAs (higher = more deprived).

``idaci_2019`` -- Income Deprivation Affecting Children Index 2019 by upper-tier LA
    ``idaci_score``: the IDACI "average score", the population-weighted mean
    of the LSOA IDACI scores; an LSOA's score is the proportion of its
    children aged 0-15 living in income-deprived families, so the LA figure
    reads as that proportion (0-1) for the LA. Chosen over the two other
    summaries the file gives: the "average rank" depends on the ranking of
    every other small area and has no unit, and the "proportion of LSOAs in
    the most deprived 10%" is zero for 15 LAs and measures concentration, not
    level.

    Both deprivation measures are time-invariant (one release, 2019): they
    are emitted with ``year`` 2019 only; the panel broadcasts them to every
    year of the LA. The files use April 2019 upper-tier codes: former codes of
    Buckinghamshire, North Yorkshire and Somerset map to the current code
    through the register; Cumbria, Northamptonshire, Bournemouth, Christchurch
    and Poole and the Dorset unitary are 2019 areas and keep their own rows.
    Bournemouth, Poole and the old Dorset county (abolished before the 2019
    release) and the 2021/2023 successor unitaries (North and West
    Northamptonshire, Cumberland, Westmorland and Furness) have no 2019
    summary and get no rows.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.core.errors import DataError
from analysis.core.errors import relative_path as _rel
from analysis.ingest.geography import current_la_codes, la_register
from analysis.ingest.readers.common import parse_values, read_csv_text, require_columns, tidy_frame
from analysis.ingest.sources import fetch

#: Geography labels of MYE5 rows that are upper-tier LAs in England (2023 boundaries).
UPPER_TIER_GEOGRAPHIES = ("Unitary Authority", "Metropolitan District", "London Borough", "County")

#: Abolished LAs rebuilt as the sum of their 2023 successors (exact: no area moved elsewhere).
REBUILT_FROM_SUCCESSORS: dict[str, tuple[str, ...]] = {
    "E10000006": ("E06000063", "E06000064"),  # Cumbria = Cumberland + Westmorland and Furness
    "E10000021": ("E06000061", "E06000062"),  # Northamptonshire = North + West Northamptonshire
}

#: Abolished LAs that no sum of 2023-boundary rows reproduces, and why.
NOT_REBUILDABLE: dict[str, str] = {
    "E06000028": "Bournemouth: part of BCP since April 2019; the 2023 sheet has no Bournemouth row",
    "E06000029": "Poole: part of BCP since April 2019; the 2023 sheet has no Poole row",
    "E10000009": ("Dorset county: Christchurch moved to BCP in April 2019 and the 2023 sheet "
                  "has no Christchurch row, so Dorset unitary + Christchurch cannot be formed"),
}

MYE5_SHEET = "MYE5"
_POP_COLUMN = re.compile(r"^Estimated Population mid-(\d{4})$")
_DENSITY_COLUMN = re.compile(r"^(\d{4}) people per sq\. ?km2?$")

IMD_CODE = "Upper Tier Local Authority District code (2019)"
IMD_SCORE = "IMD - Average score"
IDACI_CODE = "LAD19CD"
IDACI_SCORE = "IDACI - Average score"

#: Reporting year the time-invariant deprivation measures are filed under.
DEPRIVATION_YEAR = 2019


#: A file path, or a function ``source id -> verified path`` (the panel passes its fetcher).
PathOrFetch = Path | str | Callable[[str], Path] | None


def _resolve(path: PathOrFetch, source_id: str) -> Path:
    """The file to read: ``path`` itself, ``path(source_id)`` when it is a fetcher, else fetched."""
    if path is None:
        return fetch(source_id)
    if callable(path):
        return Path(path(source_id))
    return Path(path)




def read_mye5(path: PathOrFetch = None, *, source_id: str = "ons_mye23") -> pd.DataFrame:
    """Read sheet MYE5 as published: one row per area and mid-year.

    Parameters
    ----------
    path
        The ``mye23tablesew.xlsx`` workbook, or a function ``source id ->
        path`` (such as the panel's fetcher); default: fetched by ``source_id``.
    source_id
        Manifest id, used for fetching and named in messages.

    Returns
    -------
    DataFrame
        Columns ``code``, ``name``, ``geography``, ``area_sqkm``, ``mid_year``
        (int), ``population`` (float), ``density_published`` (the sheet's
        rounded people per sq km), ``row`` (the sheet's 1-based row number),
        for every row of the table (countries, regions, counties, districts,
        England and Wales).

    Raises
    ------
    DataError
        The sheet, its header row or an expected column is missing, or a cell
        is not a number.
    """
    import openpyxl  # read-only mode streams the sheet: ~0.2 s for the real file

    path = _resolve(path, source_id)
    file = _rel(path)
    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # zip/xml errors: one line for the user
        raise DataError(f"cannot open workbook: {exc}", file=file) from None
    try:
        if MYE5_SHEET not in wb.sheetnames:
            raise DataError(f"sheet '{MYE5_SHEET}' not found (sheets: {wb.sheetnames})", file=file)
        rows = list(wb[MYE5_SHEET].iter_rows(values_only=True))
    finally:
        wb.close()
    # The table starts below a few lines of notes: find its header by its first cell.
    header_at = next((i for i, r in enumerate(rows) if r and str(r[0]).strip() == "Code"), None)
    if header_at is None:
        raise DataError(f"sheet '{MYE5_SHEET}': no header row starting with 'Code'", file=file)
    header = [str(c).strip() if c is not None else "" for c in rows[header_at]]
    # Keep each row's 1-based sheet row number for messages; skip blank rows.
    body = [(i + 1, r) for i, r in enumerate(rows) if i > header_at
            and r and r[0] is not None and str(r[0]).strip()]
    if not body:
        raise DataError(f"sheet '{MYE5_SHEET}': no rows below the header", file=file)
    width = len(header)
    df = pd.DataFrame([list(r[:width]) + [None] * (width - len(r)) for _, r in body], columns=header)
    df["row"] = [n for n, _ in body]
    where = f"{file}, sheet {MYE5_SHEET}"
    require_columns(df, ["Code", "Name", "Geography", "Area (sq km)"], where)
    pop_cols = {int(m.group(1)): c for c in df.columns if (m := _POP_COLUMN.match(c))}
    dens_cols = {int(m.group(1)): c for c in df.columns if (m := _DENSITY_COLUMN.match(c))}
    if not pop_cols:
        raise DataError("no 'Estimated Population mid-YYYY' columns", file=where)
    area, _, _ = parse_values(df["Area (sq km)"], file=where, column="Area (sq km)",
                              row_numbers=df["row"].to_numpy())
    parts = []
    for year, col in sorted(pop_cols.items()):
        pop, _, _ = parse_values(df[col], file=where, column=col, row_numbers=df["row"].to_numpy())
        dens = (pd.to_numeric(df[dens_cols[year]], errors="coerce").to_numpy(float)
                if year in dens_cols else np.full(len(df), np.nan))
        parts.append(pd.DataFrame({
            "code": df["Code"].astype(str).str.strip().to_numpy(),
            "name": df["Name"].astype(str).str.strip().to_numpy(),
            "geography": df["Geography"].astype(str).str.strip().to_numpy(),
            "area_sqkm": area.to_numpy(float),
            "mid_year": year,
            "population": pop.to_numpy(float),
            "density_published": dens,
            "row": df["row"].to_numpy(),
        }))
    return pd.concat(parts, ignore_index=True)


def _check_england_total(mye: pd.DataFrame, file: str) -> None:
    """The upper-tier rows of England must add up to the England row, every year."""
    eng = mye[mye["code"].eq("E92000001")]
    if eng.empty:
        raise DataError("no England row (E92000001) to check the upper-tier rows against", file=file)
    upper = mye[mye["code"].str.startswith("E") & mye["geography"].isin(UPPER_TIER_GEOGRAPHIES)]
    sums = upper.groupby("mid_year")[["population", "area_sqkm"]].sum()
    tot = eng.set_index("mid_year")[["population", "area_sqkm"]]
    gap = (sums - tot).abs()
    # Areas are printed to 4 decimals: 153 rounded terms can differ from the total by < 0.01 km2.
    bad = gap[(gap["population"] > 0.5) | (gap["area_sqkm"] > 0.05)]
    if not bad.empty:
        y = int(bad.index[0])
        raise DataError(
            f"upper-tier rows do not add up to England for mid-{y} "
            f"(population {sums.loc[y, 'population']:.0f} vs {tot.loc[y, 'population']:.0f}); "
            "has the sheet's geography layout changed?", file=file)


def _la_rows(frame: pd.DataFrame, measures: list[str], source_id: str) -> pd.DataFrame:
    """Tidy rows for ``frame`` (la_code, year, the measures, optional row), register-named."""
    reg = la_register().set_index("la_code")
    parts = []
    for m in measures:
        parts.append(pd.DataFrame({
            "geographic_level": "Local authority",
            "area_code": frame["la_code"].to_numpy(),
            "old_la_code": reg.loc[frame["la_code"], "old_la_code"].to_numpy(),
            "area_name": reg.loc[frame["la_code"], "la_name"].to_numpy(),
            "year": frame["year"].to_numpy(int),
            "measure": m,
            "value": frame[m].to_numpy(float),
            "suppressed": False,
            "token": "",
            "source_id": source_id,
            "row": frame["row"].to_numpy(int) if "row" in frame else -1,
        }))
    return tidy_frame(parts)


def read_density(path: PathOrFetch = None, *, source_id: str = "ons_mye23") -> pd.DataFrame:
    """Population density and land area per LA and reporting year, from ONS MYE5.

    Parameters
    ----------
    path
        The ``mye23tablesew.xlsx`` workbook, or a function ``source id ->
        path`` (such as the panel's fetcher); default: fetched by ``source_id``.
    source_id
        Manifest id written into ``source_id``.

    Returns
    -------
    DataFrame
        The tidy long table with measures ``people_per_sqkm`` (population of
        all ages at mid-year ``year - 1`` divided by land area in km2,
        unrounded) and ``area_sqkm``, one row per register LA and reporting
        year the sheet covers and the LA exists. See the module docstring for
        boundaries, rebuilt LAs and the LAs without a value.

    Raises
    ------
    DataError
        Layout problems (see :func:`read_mye5`), an English upper-tier code
        unknown to the LA register, or upper-tier rows that do not add up to
        England.
    """
    path = _resolve(path, source_id)
    mye = read_mye5(path, source_id=source_id)
    where = f"{_rel(path)}, sheet {MYE5_SHEET}"
    _check_england_total(mye, where)
    upper = mye[mye["code"].str.startswith("E") & mye["geography"].isin(UPPER_TIER_GEOGRAPHIES)].copy()
    upper["la_code"] = current_la_codes(upper["code"], None, file=where, column="Code",
                                        row_numbers=upper["row"].to_numpy()).to_numpy()
    upper = upper[["la_code", "mid_year", "population", "area_sqkm", "row"]]
    have = set(upper["la_code"])
    rebuilt = []
    for old, parts in REBUILT_FROM_SUCCESSORS.items():
        if not set(parts) <= have:
            continue  # a fixture or future sheet without the successors: nothing to rebuild
        s = upper[upper["la_code"].isin(parts)].groupby("mid_year", as_index=False)[
            ["population", "area_sqkm"]].sum()
        s["la_code"], s["row"] = old, -1  # a sum: no single sheet row
        rebuilt.append(s)
    allrows = pd.concat([upper, *rebuilt], ignore_index=True)
    allrows["year"] = allrows["mid_year"] + 1  # mid-2018 -> reporting year 2019, as DfE rates
    allrows["people_per_sqkm"] = allrows["population"] / allrows["area_sqkm"]
    reg = la_register().set_index("la_code")
    window = reg.loc[allrows["la_code"], ["first_year", "last_year"]].to_numpy()
    keep = (allrows["year"].to_numpy() >= window[:, 0]) & (allrows["year"].to_numpy() <= window[:, 1])
    out = allrows[keep].sort_values(["la_code", "year"], ignore_index=True)
    return _la_rows(out, ["people_per_sqkm", "area_sqkm"], source_id)


def _read_deprivation(path: PathOrFetch, source_id: str, code_col: str, score_col: str,
                      measure: str) -> pd.DataFrame:
    path = _resolve(path, source_id)
    file = _rel(path)
    df = read_csv_text(path, file)
    # Headers in these files carry trailing spaces ("IMD - Average score ").
    df.columns = [re.sub(r"\s+", " ", c).strip() for c in df.columns]
    require_columns(df, [code_col, score_col], file)
    df = df[df[code_col].str.strip().ne("")].reset_index(drop=True)
    rows = np.arange(len(df)) + 2
    codes = current_la_codes(df[code_col], None, file=file, column=code_col, row_numbers=rows)
    value, suppressed, token = parse_values(df[score_col], file=file, column=score_col, row_numbers=rows)
    frame = pd.DataFrame({"la_code": codes.to_numpy(), "year": DEPRIVATION_YEAR,
                          measure: value.to_numpy(float), "row": rows})
    dup = frame["la_code"].duplicated()
    if dup.any():
        pos = int(np.flatnonzero(dup.to_numpy())[0])
        raise DataError(f"LA {frame['la_code'].iloc[pos]} appears twice", file=file,
                        column=code_col, row=int(rows[pos]))
    out = _la_rows(frame, [measure], source_id)
    out["suppressed"], out["token"] = suppressed.to_numpy(), token.to_numpy()
    return out


def read_imd(path: PathOrFetch = None, *, source_id: str = "imd_2019") -> pd.DataFrame:
    """IMD 2019 average score per upper-tier LA (``imd_score``, year 2019).

    Parameters
    ----------
    path
        ``imd19.csv`` (upper-tier summaries), or a function ``source id ->
        path``; default: fetched by ``source_id``.
    source_id
        Manifest id written into ``source_id``.

    Returns
    -------
    DataFrame
        Tidy long table, measure ``imd_score``, one row per LA with ``year``
        2019. Time-invariant: the panel broadcasts it to every year of the LA.

    Raises
    ------
    DataError
        A column is missing, a code is unknown to the register, a score is
        not a number, or an LA appears twice.
    """
    return _read_deprivation(path, source_id, IMD_CODE, IMD_SCORE, "imd_score")


def read_idaci(path: PathOrFetch = None, *, source_id: str = "idaci_2019") -> pd.DataFrame:
    """IDACI 2019 average score per upper-tier LA (``idaci_score``, year 2019).

    Parameters
    ----------
    path
        ``idacilarge.csv``, or a function ``source id -> path``; default:
        fetched by ``source_id``.
    source_id
        Manifest id written into ``source_id``.

    Returns
    -------
    DataFrame
        Tidy long table, measure ``idaci_score`` (proportion 0-1 of children
        aged 0-15 in income-deprived families, population-weighted over the
        LA's LSOAs), one row per LA with ``year`` 2019. Time-invariant: the
        panel broadcasts it to every year of the LA.

    Raises
    ------
    DataError
        As :func:`read_imd`.
    """
    return _read_deprivation(path, source_id, IDACI_CODE, IDACI_SCORE, "idaci_score")


def read_deprivation(fetcher: Callable[[str], Path] | None = None) -> pd.DataFrame:
    """``imd_score`` and ``idaci_score`` (year 2019, time-invariant) in one tidy table.

    Parameters
    ----------
    fetcher
        Function ``source id -> path`` (default: :func:`analysis.ingest.sources.fetch`).
    """
    return tidy_frame([read_imd(fetcher), read_idaci(fetcher)])


def read_context(density_path: PathOrFetch = None, imd_path: PathOrFetch = None,
                 idaci_path: PathOrFetch = None) -> pd.DataFrame:
    """All context measures of this module in one tidy table.

    Parameters
    ----------
    density_path, imd_path, idaci_path
        Files (or fetchers) to read instead of the fetched manifest sources.

    Returns
    -------
    DataFrame
        ``people_per_sqkm``, ``area_sqkm`` (reporting years 2012-2024),
        ``imd_score`` and ``idaci_score`` (year 2019, time-invariant).
    """
    return tidy_frame([read_density(density_path), read_imd(imd_path), read_idaci(idaci_path)])
