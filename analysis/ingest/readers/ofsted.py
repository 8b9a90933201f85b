"""Ofsted overall judgements of LA children's services, and the one in force each year.

Two sources, one list of inspections:

- Single inspection framework (SIF, November 2013 to 2018), including SIF
  re-inspections: ``data/reference/sif_judgements_from_reports.csv``, a
  transcription of the published Ofsted reports committed in this
  repository (not a manifest file; its ``source_id`` is
  :data:`SIF_SOURCE_ID`; cite Ofsted's reports as the source). Its rows of
  other frameworks (ILACS, older or partial reports without an overall
  judgement) are not used: ILACS comes from Ofsted's own table below.
  The date used is ``report_published`` (the date printed on the report);
  where the transcription has none (13 SIF reports and 1 re-inspection),
  ``file_date``, the date Ofsted's website gives the report file (where
  both exist it is the same day for 147 of 153 reports and at most 7 days
  later; none of the 14 fallback dates lies within 7 days after a 1 April,
  so the year a judgement comes into force is not affected).
- Inspections of local authority children's services (ILACS, from 2018):
  sheet ``ILACS_inspection_history`` of Ofsted's "LA inspection outcomes as
  at 31 March 2025" (manifest id ``ofsted_ilacs_2025``), standard and short
  inspections. Focused visits and monitoring visits carry no overall
  judgement and are not in the sheet.

The overall judgement is coded as an ordered category, lower is better
(:data:`OVERALL_CODES`): Outstanding 1, Good 2, Requires improvement 3
(ILACS "Requires improvement to be good" is the same grade under its ILACS
name), Inadequate 4.

``ofsted_overall`` for reporting year ``y`` is the latest overall judgement
published on or before 1 April of ``y - 1``, the first day of the reporting
year: the judgement in force when the year started (a report published on
1 April counts as in force that day). It is missing before the LA's first
judgement: SIF reports appeared from early 2014, so years up to 2014 are
empty and 2015 (start 1 April 2014) holds only the LAs inspected by then.
Judgements of a predecessor LA are not carried to its successor (e.g. BCP
starts empty in its first year), and rows are emitted only for the years
the LA exists in the register; LAs the register lists from 2012 are taken
to exist in 2011 too.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.core.errors import DataError
from analysis.core.errors import relative_path as _rel
from analysis.core.paths import DATA_DIR
from analysis.ingest.geography import current_la_codes, la_register
from analysis.ingest.readers.common import read_csv_text, require_columns, tidy_frame
from analysis.ingest.sources import fetch

#: Ordered codes of the overall judgement (lower is better).
OVERALL_CODES: dict[str, int] = {
    "Outstanding": 1,
    "Good": 2,
    "Requires improvement": 3,
    "Inadequate": 4,
}
#: Code -> label, the inverse of :data:`OVERALL_CODES`.
OVERALL_LABELS: dict[int, str] = {v: k for k, v in OVERALL_CODES.items()}

#: Wordings in the sources mapped to the labels of :data:`OVERALL_CODES`.
LABEL_ALIASES: dict[str, str] = {
    "outstanding": "Outstanding",
    "good": "Good",
    "requires improvement": "Requires improvement",
    "requires improvement to be good": "Requires improvement",  # ILACS name of the same grade
    "inadequate": "Inadequate",
}

SIF_PATH = DATA_DIR / "reference" / "sif_judgements_from_reports.csv"
#: ``source_id`` of rows from the committed SIF transcription (not a manifest entry).
SIF_SOURCE_ID = "sif_judgements_from_reports"
ILACS_SOURCE_ID = "ofsted_ilacs_2025"
ILACS_SHEET = "ILACS_inspection_history"
SIF_FRAMEWORKS = ("SIF", "SIF re-inspection")

#: First reporting year that starts after the first ILACS reports (published from March 2018).
ILACS_FIRST_YEAR = 2019

#: Reporting years for which :func:`read_ofsted` gives the judgement in force.
YEARS = range(2011, 2026)

INSPECTION_COLUMNS = ["la_code", "la_name", "framework", "inspection_type", "published",
                      "overall", "overall_code", "source_id", "row"]




def normalise_judgement(label: str, *, file: str, column: str, row: int) -> str:
    """Map a judgement as worded in a source to a key of :data:`OVERALL_CODES`.

    Raises
    ------
    DataError
        The wording is not a known overall judgement.
    """
    key = " ".join(str(label).split()).lower()
    if key not in LABEL_ALIASES:
        raise DataError(f"unknown overall judgement {label!r} (expected one of "
                        f"{sorted(set(LABEL_ALIASES.values()))})", file=file, column=column, row=row)
    return LABEL_ALIASES[key]


def start_of_reporting_year(year: int) -> dt.date:
    """First day of DfE reporting year ``year`` (1 April of ``year - 1``)."""
    return dt.date(year - 1, 4, 1)


def _parse_report_date(text: str, *, file: str, column: str, row: int) -> pd.Timestamp:
    """'19 October 2015' as printed on reports, or '25/11/2016' (two transcribed rows)."""
    text = " ".join(text.split())
    for fmt in ("%d %B %Y", "%d/%m/%Y"):
        try:
            return pd.Timestamp(dt.datetime.strptime(text, fmt))
        except ValueError:
            continue
    raise DataError(f"date {text!r} is neither like '19 October 2015' nor '19/10/2015'",
                    file=file, column=column, row=row)


def read_sif(path: Path | None = None) -> pd.DataFrame:
    """SIF and SIF re-inspection overall judgements from the committed transcription.

    Parameters
    ----------
    path
        The CSV; default ``data/reference/sif_judgements_from_reports.csv``.

    Returns
    -------
    DataFrame
        One row per inspection with an overall judgement, columns
        :data:`INSPECTION_COLUMNS` (``framework`` "SIF", ``inspection_type``
        as in the file, ``published`` a Timestamp, ``row`` the CSV line).

    Raises
    ------
    DataError
        A column is missing, an LA code is unknown, a date does not parse, or
        a judgement is not one of the four grades.
    """
    path = Path(path) if path is not None else SIF_PATH
    file = _rel(path)
    df = read_csv_text(path, file)
    require_columns(df, ["old_la_code", "new_la_code", "framework", "report_published",
                         "file_date", "overall"], file)
    df["row"] = np.arange(len(df)) + 2
    df = df[df["framework"].str.strip().isin(SIF_FRAMEWORKS) & df["overall"].str.strip().ne("")]
    codes = current_la_codes(df["new_la_code"], df["old_la_code"], file=file, column="old_la_code",
                             row_numbers=df["row"].to_numpy())
    published = []
    for printed, filed, row in zip(df["report_published"], df["file_date"], df["row"]):
        # The report's own date first; the website's file date where none was transcribed.
        text, col = (printed, "report_published") if printed.strip() else (filed, "file_date")
        published.append(_parse_report_date(text, file=file, column=col, row=int(row)))
    labels = [normalise_judgement(v, file=file, column="overall", row=int(r))
              for v, r in zip(df["overall"], df["row"])]
    reg = la_register().set_index("la_code")
    out = pd.DataFrame({
        "la_code": codes.to_numpy(),
        "la_name": reg.loc[codes, "la_name"].to_numpy(),
        "framework": "SIF",
        "inspection_type": df["framework"].str.strip().to_numpy(),
        "published": pd.to_datetime(published),
        "overall": labels,
        "overall_code": [OVERALL_CODES[v] for v in labels],
        "source_id": SIF_SOURCE_ID,
        "row": df["row"].to_numpy(int),
    })
    return out.drop_duplicates(["la_code", "published", "overall"], ignore_index=True)


def read_ilacs(path: Path | Callable[[str], Path] | None = None, *,
               source_id: str = ILACS_SOURCE_ID) -> pd.DataFrame:
    """ILACS overall judgements from Ofsted's inspection-outcomes workbook.

    Parameters
    ----------
    path
        The ``.ods`` workbook, or a function ``source id -> path`` (the
        panel's fetcher); default: fetched by ``source_id``.
    source_id
        Manifest id written into ``source_id``.

    Returns
    -------
    DataFrame
        One row per standard or short inspection, columns
        :data:`INSPECTION_COLUMNS` (``framework`` "ILACS", ``row`` the sheet's
        1-based row number). Reading the sheet takes about 0.5 s (odfpy).

    Raises
    ------
    DataError
        The sheet, its header or a column is missing, an LA code is unknown,
        a date does not parse, or a judgement is not one of the four grades.
    """
    if path is None:
        path = fetch(source_id)
    elif callable(path):
        path = path(source_id)
    path = Path(path)
    file = _rel(path)
    try:
        raw = pd.read_excel(path, engine="odf", sheet_name=ILACS_SHEET, header=None, dtype=object)
    except ValueError as exc:  # pandas raises ValueError for a missing sheet
        raise DataError(f"cannot read sheet '{ILACS_SHEET}': {exc}", file=file) from None
    where = f"{file}, sheet {ILACS_SHEET}"
    code_col = "Local authority area code"
    # The table starts under a title and a note: find its header row by a column name.
    hits = [i for i in range(min(len(raw), 20))
            if any(str(v).strip() == code_col for v in raw.iloc[i].tolist())]
    if not hits:
        raise DataError(f"no header row with '{code_col}' in the first 20 rows", file=where)
    h = hits[0]
    df = raw.iloc[h + 1:].copy()
    df.columns = [str(c).strip() if pd.notna(c) else f"unnamed_{j}" for j, c in enumerate(raw.iloc[h])]
    df["row"] = np.arange(h + 2, h + 2 + len(df))  # 1-based sheet rows
    require_columns(df, [code_col, "Local authority name", "Publication date",
                         "Inspection type", "Overall effectiveness"], where)
    df = df[df[code_col].notna() & df[code_col].astype(str).str.strip().ne("")]
    codes = current_la_codes(df[code_col].astype(str), None, file=where, column=code_col,
                             row_numbers=df["row"].to_numpy())
    published = []
    for v, row in zip(df["Publication date"], df["row"]):
        ts = pd.to_datetime(v, errors="coerce", dayfirst=True) if not isinstance(v, dt.datetime) else pd.Timestamp(v)
        if pd.isna(ts):
            raise DataError(f"publication date {v!r} is not a date", file=where,
                            column="Publication date", row=int(row))
        published.append(ts.normalize())
    labels = [normalise_judgement(v, file=where, column="Overall effectiveness", row=int(r))
              for v, r in zip(df["Overall effectiveness"], df["row"])]
    reg = la_register().set_index("la_code")
    return pd.DataFrame({
        "la_code": codes.to_numpy(),
        "la_name": reg.loc[codes, "la_name"].to_numpy(),
        "framework": "ILACS",
        "inspection_type": df["Inspection type"].astype(str).str.strip().to_numpy(),
        "published": pd.to_datetime(published),
        "overall": labels,
        "overall_code": [OVERALL_CODES[v] for v in labels],
        "source_id": source_id,
        "row": df["row"].to_numpy(int),
    })


def inspections(sif_path: Path | None = None,
                ilacs_path: Path | Callable[[str], Path] | None = None) -> pd.DataFrame:
    """Every overall judgement per LA, SIF then ILACS, sorted by LA and publication date.

    Parameters
    ----------
    sif_path, ilacs_path
        Files to read instead of the defaults (see :func:`read_sif`, :func:`read_ilacs`).

    Returns
    -------
    DataFrame
        Columns :data:`INSPECTION_COLUMNS`.
    """
    both = pd.concat([read_sif(sif_path), read_ilacs(ilacs_path)], ignore_index=True)
    return both.sort_values(["la_code", "published", "framework"], ignore_index=True)[INSPECTION_COLUMNS]


def overall_in_force(insp: pd.DataFrame, years: range | list[int] = YEARS) -> pd.DataFrame:
    """The overall judgement in force at the start of each reporting year.

    Parameters
    ----------
    insp
        Output of :func:`inspections`.
    years
        Reporting years wanted.

    Returns
    -------
    DataFrame
        One row per register LA and year it exists (see the module
        docstring), columns ``la_code``, ``year``, ``ofsted_overall`` (float
        code, NaN before the first judgement), ``ofsted_overall_label``
        ("" when none), ``published`` (date of that judgement, NaT when none),
        ``framework``, ``source_id`` and ``row`` of the judgement.
    """
    reg = la_register()
    years = list(years)
    lo = min(years)
    grid = []
    for code, first, last in zip(reg["la_code"], reg["first_year"], reg["last_year"]):
        start = lo if first <= reg["first_year"].min() else first  # existed before the register starts
        grid += [(code, y) for y in years if start <= y <= last]
    g = pd.DataFrame(grid, columns=["la_code", "year"])
    # One resolution on both sides: merge_asof refuses mixed datetime units.
    g["start"] = pd.to_datetime([start_of_reporting_year(y) for y in g["year"]]).astype("datetime64[us]")
    g = g.sort_values("start", kind="stable")
    right = insp.sort_values("published", kind="stable").rename(columns={"published": "published_at"})
    right["published_at"] = right["published_at"].astype("datetime64[us]")
    right["published"] = right["published_at"]
    # Latest judgement published on or before the first day of the year, per LA.
    m = pd.merge_asof(g, right[["la_code", "published_at", "published", "overall", "overall_code",
                                "framework", "source_id", "row"]],
                      left_on="start", right_on="published_at", by="la_code",
                      direction="backward", allow_exact_matches=True)
    m = m.sort_values(["la_code", "year"], ignore_index=True)
    return pd.DataFrame({
        "la_code": m["la_code"],
        "year": m["year"].astype(int),
        "ofsted_overall": m["overall_code"].astype(float),
        "ofsted_overall_label": m["overall"].fillna("").astype(str),
        "published": m["published"],
        "framework": m["framework"].fillna("").astype(str),
        "source_id": m["source_id"].fillna("").astype(str),
        "row": m["row"].fillna(-1).astype(int),
    })


def read_ofsted(sif_path: Path | None = None, ilacs_path: Path | Callable[[str], Path] | None = None,
                years: range | list[int] = YEARS) -> pd.DataFrame:
    """``ofsted_overall`` per LA and reporting year, in the tidy long schema.

    Parameters
    ----------
    sif_path, ilacs_path
        Files to read instead of the defaults.
    years
        Reporting years (default 2011-2025).

    Returns
    -------
    DataFrame
        Tidy long table, measure ``ofsted_overall``: the code of
        :data:`OVERALL_CODES` (1 Outstanding ... 4 Inadequate) of the
        judgement in force on the first day of the year; NaN (not
        suppressed) before the LA's first judgement. ``source_id`` is that
        of the judgement; where there is none, the source that would hold it
        (the SIF transcription before :data:`ILACS_FIRST_YEAR`, else ILACS).
        Labels: :data:`OVERALL_LABELS` or :func:`overall_in_force`.
    """
    f = overall_in_force(inspections(sif_path, ilacs_path), years)
    reg = la_register().set_index("la_code")
    # No judgement yet: name the source that would have held one in that year.
    none_yet = np.where(f["year"].to_numpy() < ILACS_FIRST_YEAR, SIF_SOURCE_ID, ILACS_SOURCE_ID)
    return tidy_frame([pd.DataFrame({
        "geographic_level": "Local authority",
        "area_code": f["la_code"].to_numpy(),
        "old_la_code": reg.loc[f["la_code"], "old_la_code"].to_numpy(),
        "area_name": reg.loc[f["la_code"], "la_name"].to_numpy(),
        "year": f["year"].to_numpy(),
        "measure": "ofsted_overall",
        "value": f["ofsted_overall"].to_numpy(),
        "suppressed": False,
        "token": "",
        "source_id": np.where(f["source_id"].eq("").to_numpy(), none_yet, f["source_id"].to_numpy()),
        "row": f["row"].to_numpy(),
    })])


def read_ofsted_overall(fetcher: Callable[[str], Path] | None = None) -> pd.DataFrame:
    """:func:`read_ofsted` with the ILACS workbook from ``fetcher`` (the panel's entry point).

    Parameters
    ----------
    fetcher
        Function ``source id -> verified path`` (default :func:`analysis.ingest.sources.fetch`).
        The SIF transcription is read from the repository.
    """
    return read_ofsted(ilacs_path=fetcher(ILACS_SOURCE_ID) if fetcher is not None else None)
