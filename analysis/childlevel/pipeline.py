"""Child-level mode of the data stage: extracts in, LA-year measures and protected tables out.

Switched on by ``SOS_CHILDLEVEL_DIR=DIR`` (or ``python -m analysis data
--child-level DIR``); without it nothing here runs and the public build is
byte for byte what it was.

Expected layout of DIR
----------------------
Every ``*.csv`` and ``*.xml`` file under DIR (any depth; hidden files and
folders are skipped) is an input, one return per LA, year and table::

    DIR/E09000007/2019/header.csv     SSDA903 header   } Camden, year ending
    DIR/E09000007/2019/episodes.csv   SSDA903 episodes } 31 March 2019
    DIR/E09000007/2019/cin.xml        CIN census (any name ending .xml)
    DIR/202/2020/cin.xml              Camden again, under its DfE code
    DIR/903/episodes.csv              combined file with LA and YEAR columns
    DIR/returns/cin_2021.xml          LA and year from the file's <Header>

* SSDA903 files are CSVs whose name contains ``header`` or ``episodes``
  (case-insensitive; any other CSV is an error). CIN census files are XMLs
  per the DfE schema (:func:`analysis.childlevel.readers.read_cin_census`).
* *LA*: an ``LA`` column in the CSV (combined files, as liia-tools writes them,
  may hold many LAs and years); else a folder name that is an ONS code
  (``E09000007``) or a DfE three-digit code (``202``; a folder ``903`` is never
  one); else, for a CSV, an LA code in the file name (``E09000007_episodes.csv``)
  and, for an XML, its ``<LEA>``. Every code must be in the LA register
  (``data/local_authorities.csv``); DfE and former ONS codes are mapped to
  the current ONS code as the files are read, so ``DIR/202/`` and
  ``DIR/E09000007/`` are one LA and a child's records link across them (the
  validation report and the measures show the ONS code).
* *Year* (the DfE reporting year, ending 31 March): a ``YEAR`` column in the
  CSV; else a folder name of four digits (``2000``-``2099``); else, for an XML,
  the year of its ``<ReferenceDate>``. A CSV needs a year column or folder. The
  year decides the code lists and the year-end checks of validation; the
  measures are dated by their own events (referral, authorisation, ...).
* A year after the panel's last (:data:`analysis.ingest.panel.PANEL_YEARS`) is an
  error: no panel row could hold its measures. A year before the panel's first
  is read: its records are the history of later ones (a referral in it can
  make one in the first panel year a re-referral); its own LA-year measures
  find no panel row.

Each of these is a one-line DataError naming the file: a CSV that is neither
header nor episodes; no LA or no year; an LA code not in the register (folder
name, ``LA`` column with its row, file name or ``<LEA>``); folders naming two
different LAs or two years; a year after the panel; and a second return for the
same LA, year and table (``DIR/E09000007/2019/cin.xml`` and
``DIR/202/2019/cin.xml``, or a combined file overlapping a folder), naming both
files. The files are read and validated before the public panel is built
(:func:`read_and_validate`, called by :func:`analysis.run.build.ensure_panel`), so
a layout error or, with ``--strict``, an invalid record stops the data stage
within seconds, with ``data/processed`` (and its key) untouched.

What the data stage does with them (:func:`add_child_level`)
------------------------------------------------------------
1. Read every file (:mod:`analysis.childlevel.readers`) and validate the
   SSDA903 header and episodes and the CIN census against the year's code
   lists. Every problem is written, by rule, child, field, file and row, to
   ``childlevel_validation.csv``; no record is dropped. With ``strict`` the first
   problem stops the build with one line (exit status 2).
2. Keep one copy of each record repeated across consecutive returns (an
   episode or referral open across 31 March is in both; the latest copy wins,
   :func:`analysis.childlevel.returns.combine_returns`), find the days each
   LA's returns cover (:func:`~analysis.childlevel.returns.records_coverage`),
   and compute the child-level LA-year measures with the rules of
   ``data/childlevel_outcomes.yaml``
   (:func:`analysis.childlevel.aggregate.tidy_measures`, ``to_panel_measures``):
   windows that run past an LA's last return, and re-referral histories that
   start before its first, are censored, and LA-years outside its returns get
   no value. Merge them into ``panel.csv`` as extra columns (their names never
   clash with the published measures'; see :mod:`analysis.childlevel.aggregate`),
   with their definitions appended to ``measures.csv``, and write their counts
   to ``childlevel_counts.csv`` for the child-level DiD of :mod:`analysis.run.study`.
3. Disclosure control (:mod:`analysis.childlevel.disclosure`): the counts behind every
   child-level percentage (numerator, the rest of the denominator and the
   denominator, per LA and year, one table per measure, the denominator
   declared the total of the other two so an attacker knows it), with an
   England row per year (the LA rows' sum, declared their total, rounded to 10
   as DfE rounds national figures), go through
   :func:`analysis.childlevel.disclosure.protect_tables` together, counts shared between
   tables tied by ``Link.same`` (the two kinship tables' numerator; re-referrals,
   the numerator of one table and the denominator of another); rates are
   withheld wherever a count behind them is, and
   :func:`analysis.childlevel.disclosure.assert_publishable` checks the result; a failure
   stops the build (DataError, exit status 2). What the book may show is
   ``childlevel_published.csv``.

What is and is not published
----------------------------
``panel.csv`` in child-level mode holds unprotected LA-year percentages: it is
the estimation input, to stay inside the secure environment with the
records, not an output. What leaves it is the book, which shows
``childlevel_published.csv`` (protected) and the results. The results hold
regression coefficients, standard errors, intervals and p-values: each is a
function of many LA-years of many children, not a count of a small cell, so
statistical disclosure control of frequency tables does not apply (an
estimate computed on all matched LAs cannot be differenced to isolate a
child). Their only count columns, ``n_treated`` and ``n_comparison``, count
*local authorities*, not children, and the matched pairs name LAs, which are
public. An output checker should still review them, as the ONS Secure
Research Service requires for every output.

Before the book is built in child-level mode, :func:`publishable_results`
checks every table it reads (``childlevel_published.csv``, the panel as the
book sees it, ``results/*.csv``; see :func:`results_problems`) and
:func:`analysis.run.build.build_book` refuses to build (DataError, exit status 2)
when one fails. The book never shows a per-LA child-level rate whose count is
withheld: :func:`analysis.book.chapters.processed` blanks it (:func:`mask_suppressed`)
and the pilot profiles mark its year ``c``.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from analysis.childlevel import codes
from analysis.childlevel.aggregate import MEASURES, measure_definitions, tidy_measures, to_panel_measures
from analysis.childlevel.disclosure import Link, TableSpec, assert_publishable, load_settings, protect_tables
from analysis.childlevel.readers import (
    REPORT_COLUMNS,
    la_from_name,
    read_903_episodes,
    read_903_header,
    read_cin_census,
    validate_903,
    validate_cin,
)
from analysis.childlevel.returns import combine_returns, records_coverage
from analysis.core.errors import DataError, relative_path
from analysis.core.paths import DESIGN_PATH
from analysis.ingest.geography import la_code_lookup
from analysis.ingest.panel import PANEL_YEARS

ENV_VAR = "SOS_CHILDLEVEL_DIR"
VALIDATION_FILE = "childlevel_validation.csv"
PUBLISHED_FILE = "childlevel_published.csv"
#: LA-year counts (numerator, denominator) of every child-level percentage, for the
#: child-level DiD of :mod:`analysis.run.study`; never read by the book.
COUNTS_FILE = "childlevel_counts.csv"
COUNTS_COLUMNS = ["measure", "la_code", "year", "numerator", "denominator"]
#: Columns of ``childlevel_published.csv``.
PUBLISHED_COLUMNS = ["measure", "la_code", "year", "numerator", "rest", "denominator", "value"]

_ONS = re.compile(r"^[EW]\d{8}$")
_DFE = re.compile(r"^\d{3}$")
_YEAR = re.compile(r"^(20\d\d)$")


def childlevel_dir(explicit: str | Path | None = None) -> Path | None:
    """The child-level folder: ``explicit``, else ``$SOS_CHILDLEVEL_DIR``, else None (public mode)."""
    value = explicit if explicit is not None else os.environ.get(ENV_VAR, "")
    if not str(value).strip():
        return None
    path = Path(value).expanduser()
    if not path.is_dir():
        raise DataError(f"child-level folder not found (set by {ENV_VAR} or --child-level)",
                        file=str(path))
    return path


def input_files(folder: Path) -> list[Path]:
    """Every input file under ``folder`` (CSV and XML), sorted; hidden ones skipped."""
    out = []
    for f in sorted(Path(folder).rglob("*")):
        rel = f.relative_to(folder).parts
        if f.is_file() and f.suffix.lower() in (".csv", ".xml") and not any(p.startswith(".") for p in rel):
            out.append(f)
    return out


def _kind(path: Path) -> str | None:
    name = path.name.lower()
    if path.suffix.lower() == ".xml":
        return "cin"
    if "header" in name:
        return "header"
    if "episode" in name:
        return "episodes"
    return None


def _csv_columns(path: Path) -> set[str]:
    with open(path, encoding="utf-8-sig", errors="replace") as fh:
        first = fh.readline()
    return {c.strip().strip('"').upper() for c in first.split(",")}


def _la_year_from_path(path: Path, folder: Path) -> tuple[str | None, int | None]:
    """LA (current ONS code) and year from the folders (not the file name), unless the CSV has LA/YEAR columns.

    A folder named like an LA code (``E09000007`` or ``202``; never ``903``) must be
    in the LA register; DfE and former ONS codes map to the current ONS code, so
    ``DIR/202/...`` and ``DIR/E09000007/...`` are one LA. Folders naming two
    different LAs, or two different years, are an error.
    """
    cols = _csv_columns(path) if path.suffix.lower() == ".csv" else set()
    las, years = [], []
    for part in path.relative_to(folder).parent.parts:
        if part != "903" and (_ONS.match(part) or _DFE.match(part)):
            las.append(part)
        elif _YEAR.match(part):
            years.append(int(part))
    la = year = None
    if las and "LA" not in cols:
        codes = la_code_lookup()
        unknown = [p for p in las if p not in codes]
        if unknown:
            raise DataError(f"folder {unknown[0]!r} is named like an LA code but is not in the LA "
                            "register (data/local_authorities.csv)", file=relative_path(path))
        mapped = sorted({codes[p] for p in las})
        if len(mapped) > 1:
            raise DataError(f"the folders name two LAs ({', '.join(las)})", file=relative_path(path))
        la = mapped[0]
    if years and "YEAR" not in cols:
        if len(set(years)) > 1:
            raise DataError(f"the folders name two years ({', '.join(map(str, years))})",
                            file=relative_path(path))
        year = years[0]
    return la, year


def _to_ons(df: pd.DataFrame, file: str, where: str) -> None:
    """Map the ``la`` column of an SSDA903 table to current ONS codes, in place.

    ``where`` says where the codes came from (``column LA`` or ``file name``). A
    code not in the register (or blank) is a DataError naming the file, and the
    column and row for an ``LA`` column.
    """
    if not len(df):
        return
    codes = la_code_lookup()
    la = df["la"].astype(object)
    bad = ~la.isin(set(codes)).to_numpy()
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        code = la.iloc[pos]
        what = f"LA code {code!r}" if isinstance(code, str) else "a blank LA code"
        in_column = where == "column LA"
        raise DataError(f"{what} ({where}) is not in the LA register (data/local_authorities.csv)",
                        file=file, column="LA" if in_column else None,
                        row=int(df["row"].iloc[pos]) if in_column else None)
    mapped = la.map(codes)
    if not mapped.eq(la).all():
        df["la"] = mapped.astype("str")


def read_inputs(folder: Path) -> tuple[pd.DataFrame | None, pd.DataFrame | None, dict | None]:
    """All SSDA903 headers, episodes and CIN census tables under ``folder``, concatenated.

    LA codes are current ONS codes (see :func:`_la_year_from_path`). Raises a
    one-line DataError naming the file for: a CSV that is neither header nor
    episodes; a file whose LA or year cannot be found; an LA code not in the
    register; a reporting year after the panel's last; a second return for the
    same LA, year and table (naming both files).
    """
    last_year = max(PANEL_YEARS)
    headers, episodes, cin_parts = [], [], []
    files = input_files(folder)
    unknown = [f for f in files if _kind(f) is None]
    if unknown:
        raise DataError("a CSV whose name says neither 'header' nor 'episodes': "
                        "cannot tell which SSDA903 table it is", file=relative_path(unknown[0]))
    returns: dict[tuple[str, str, int], str] = {}
    labels = {"header": "SSDA903 header", "episodes": "SSDA903 episodes", "cin": "CIN census"}
    for f in files:
        file = relative_path(f)
        la, year = _la_year_from_path(f, folder)
        kind = _kind(f)
        if kind in ("header", "episodes"):
            cols = _csv_columns(f)
            if la is None and "LA" not in cols and la_from_name(f) is None:
                raise DataError("no LA for this SSDA903 file: put it under DIR/<LA code>/<year>/, "
                                "name the LA in the file name or add an LA column", file=file)
            if year is None and "YEAR" not in cols:
                raise DataError("no reporting year for this SSDA903 file: put it under "
                                "DIR/<LA code>/<year>/ or add a YEAR column", file=file)
            reader = read_903_header if kind == "header" else read_903_episodes
            df = reader(f, year=year, la=la)
            if la is None:
                _to_ons(df, file, "column LA" if "LA" in cols else "file name")
            (headers if kind == "header" else episodes).append(df)
            pairs = df[["la", "year"]].astype({"la": object}).drop_duplicates()
            pairs = list(zip(pairs["la"], pairs["year"].astype(int)))
            year_from = "the folder name" if year is not None else "column YEAR"
        else:
            t = read_cin_census(f, year=year, la=la)
            if la is None:
                lea = t["header"]["lea"].iloc[0]
                lea = lea.strip() if isinstance(lea, str) else ""
                if not lea:
                    raise DataError("no LA for this CIN census file: put it under "
                                    "DIR/<LA code>/<year>/ or give <LEA> in its header", file=file)
                codes = la_code_lookup()
                if lea not in codes:
                    raise DataError(f"LA code {lea!r} (<LEA> in the header) is not in the LA "
                                    "register (data/local_authorities.csv)", file=file)
                la = codes[lea]
                for k in t:
                    if k != "header":
                        t[k]["la"] = la        # cin_details is referrals: set once or twice, same value
            if year is None:
                y = int(str(t["header"]["reference_date"].iloc[0])[:4])
                year_from = "<ReferenceDate> in the header"
            else:
                y, year_from = year, "the folder name"
            pairs = [(la, y)]
            cin_parts.append(t)
        late = [y for _, y in pairs if y > last_year]
        if late:
            raise DataError(f"reporting year {late[0]} (from {year_from}) is after the panel's last "
                            f"year {last_year}: no panel row could hold its measures (take the "
                            "file out of the folder, or rebuild once the public data cover that year)",
                            file=file)
        for la_, y in pairs:
            first = returns.setdefault((kind, la_, y), file)
            if first != file:
                raise DataError(f"a second {labels[kind]} return for {la_} {y}: the first is "
                                f"{first} (one file per LA, year and table)", file=file)
    if not (headers or episodes or cin_parts):
        raise DataError("no SSDA903 or CIN census files in the child-level folder", file=str(folder))
    if bool(headers) != bool(episodes):
        raise DataError("SSDA903 needs both header and episodes files", file=str(folder))
    hd = _stack(headers) if headers else None
    ep = _stack(episodes) if episodes else None
    cin = None
    if cin_parts:
        keys = sorted({k for p in cin_parts for k in p if k not in ("header", "cin_details")})
        cin = {k: pd.concat([p[k] for p in cin_parts if k in p], ignore_index=True) for k in keys}
        cin["cin_details"] = cin["referrals"]
    return hd, ep, cin


def _stack(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """One SSDA903 table from its files.

    Each file's missing spec columns go in ``attrs["missing_by_file"]``
    (``{file: (la, years, columns)}``): ``pd.concat`` drops the readers'
    per-file ``attrs``, and validation needs them.
    """
    out = pd.concat(frames, ignore_index=True)
    out.attrs = {"missing_by_file": {
        f.attrs["source_file"]: (str(f["la"].iloc[0]), sorted(int(y) for y in pd.unique(f["year"])),
                                 list(f.attrs["missing_columns"]))
        for f in frames if len(f) and f.attrs.get("missing_columns")}}
    return out


def _missing_columns(report: pd.DataFrame, header: pd.DataFrame, episodes: pd.DataFrame) -> pd.DataFrame:
    """The 903 report with one ``missing_column`` row per file and spec column it lacks.

    The row (row 1) replaces a ``required`` row for each of the file's
    records, as :func:`~analysis.childlevel.readers.validate_903` reports a
    single file.
    """
    rows, missing = [], set()
    for table, frame in (("Header", header), ("Episodes", episodes)):
        for file, (la, years, cols) in frame.attrs.get("missing_by_file", {}).items():
            for col in cols:
                for y in years:
                    lists = codes.code_lists_903(y)
                    if f"{table}.{col}" in lists.fields:
                        missing.add((file, col))
                        rows.append(dict(rule="missing_column", child="", field=col, value="",
                                         file=file, row=1, la=la, year=y,
                                         message=f"the spec ({lists.source}) has column {col}; "
                                         "the file does not"))
                        break
    if not rows:
        return report
    pairs = pd.Series(list(zip(report["file"], report["field"])), index=report.index, dtype=object)
    keep = ~(report["rule"].eq("required") & pairs.isin(missing))
    out = pd.concat([report[keep], pd.DataFrame(rows)[report.columns]], ignore_index=True)
    return out.sort_values(["file", "row", "field", "rule"], kind="stable").reset_index(drop=True)


def validate_inputs(header, episodes, cin, *, strict: bool = False) -> pd.DataFrame:
    """Every validation problem (readers' report layout).

    ``strict`` raises a one-line DataError for the first problem (in file and
    row order, SSDA903 and CIN census together) naming file, field, row, child
    and rule; every record is validated first, none is dropped.
    """
    parts = []
    if header is not None:
        parts.append(_missing_columns(validate_903(header, episodes), header, episodes))
    if cin is not None:
        parts.append(validate_cin(cin))
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame(columns=REPORT_COLUMNS)
    report = pd.concat(parts, ignore_index=True)[REPORT_COLUMNS]
    if strict:
        r = report.sort_values(["file", "row"], kind="stable").iloc[0]
        child = f" (child {r['child']!r})" if r["child"] else ""
        raise DataError(f"{r['message']}{child} [rule {r['rule']}]", file=r["file"],
                        column=r["field"], row=int(r["row"]))
    return report


class ChildLevelInputs:
    """What :func:`read_and_validate` found: the tables and the validation report."""

    def __init__(self, folder: Path, header, episodes, cin, validation: pd.DataFrame) -> None:
        self.folder, self.header, self.episodes, self.cin = Path(folder), header, episodes, cin
        self.validation = validation


def read_and_validate(folder: Path, *, strict: bool = False) -> ChildLevelInputs:
    """Read and validate every return under ``folder`` (:func:`read_inputs`, :func:`validate_inputs`).

    The data stage runs this before the public build, so a bad layout or (with
    ``strict``) an invalid record stops it within seconds, before anything is written.
    """
    header, episodes, cin = read_inputs(Path(folder))
    validation = validate_inputs(header, episodes, cin, strict=strict)
    return ChildLevelInputs(Path(folder), header, episodes, cin, validation)


# --------------------------------------------------------------------------- disclosure
def protect_counts(tidy: pd.DataFrame, *, settings=None, secondary: bool = True,
                   audit: bool = True):
    """Protected tables of the counts behind every child-level percentage.

    One table per measure with a numerator and a denominator: rows
    ``(la_code, year)``, counts ``numerator``, ``rest`` (denominator less
    numerator) and ``denominator`` (declared their total), and the rate
    ``value`` = scale x numerator / denominator (scale 100 for a percentage,
    10,000 for a rate per 10,000, from the measure's unit in
    :data:`analysis.childlevel.aggregate.MEASURES`), withheld wherever a count
    is.

    Each year also has an England row (``la_code`` ``E92000001``, level
    ``national``): the sums of the LA rows' counts, declared their total so that
    secondary suppression and the attacker account for it, rounded as the
    disclosure settings say for the national level (DfE's practice: to the
    nearest 10; the LA rows, level ``local_authority``, unrounded), with its
    rate computed on the unrounded sums and declared with its scale, so the
    attacker uses it too (:class:`analysis.childlevel.disclosure.TableSpec`).

    Tables that share a count are linked (:meth:`analysis.childlevel.disclosure.Link.same`),
    so a cell withheld in one is withheld in the other and the attacker may
    difference the two: the numerator of ``cla_kinship_pct`` and of
    ``foster_kinship_pct`` (children in U1-U3 placements at 31 March), and
    the numerator of ``rereferral_12m_pct_child`` and the denominator of
    ``rereferral_escalation_pct`` (re-referrals within 12 months), in every
    row both tables hold with the same value (the second pair differs only
    where escalation is right-censored by ``data_end``). The count-only
    measures (``cla_31mar_child``, the denominator of ``cla_kinship_pct``;
    ``cla_foster_child``, of ``foster_kinship_pct``; ``referrals_child``,
    ``rereferrals_child``, ``assessments_completed_child``, ``icpc_count_child``)
    are not published; publishing one would need the same link.

    ``secondary=False`` (primary suppression only) and ``audit`` are passed to
    :func:`analysis.childlevel.disclosure.protect_tables`, for tests of the attacker.
    Returns the :class:`~analysis.childlevel.disclosure.ProtectedSet`, or None when no
    measure has a denominator.
    """
    england = "E92000001"
    cols = ["la_code", "year", "numerator", "rest", "denominator", "value", "level"]
    #: (table, column, table, column): the same count by definition
    shared = [("cla_kinship_pct", "numerator", "foster_kinship_pct", "numerator"),
              ("rereferral_12m_pct_child", "numerator", "rereferral_escalation_pct", "denominator")]

    def scale_of(measure: str) -> float:
        unit = MEASURES.get(measure, ("", "percent"))[1]
        return 10000.0 if "10,000" in unit else 100.0

    frames, specs = {}, []
    pct = tidy[tidy["denominator"].notna() & tidy["numerator"].notna()]
    if (pct["la_code"].astype(str) == england).any():
        raise DataError(f"child-level measures for {england} (England): only LA rows expected")
    for measure, g in pct.groupby("measure", sort=True):
        scale = scale_of(measure)
        t = g[["la_code", "year", "numerator", "denominator"]].copy()
        t["la_code"] = t["la_code"].astype(str)
        t["year"] = t["year"].astype(int)
        t["numerator"] = t["numerator"].round().astype(np.int64)
        t["denominator"] = t["denominator"].round().astype(np.int64)
        t["level"] = "local_authority"
        nat = t.groupby("year", as_index=False)[["numerator", "denominator"]].sum()
        nat["la_code"], nat["level"] = england, "national"
        t = pd.concat([nat, t.sort_values(["la_code", "year"])], ignore_index=True)
        t["rest"] = t["denominator"] - t["numerator"]
        den = t["denominator"].where(t["denominator"] > 0)
        t["value"] = (scale * t["numerator"] / den).astype(float)
        frames[measure] = t[cols].reset_index(drop=True)
        la_rows = t[t["level"] == "local_authority"]
        groups = {(england, int(y)): list(zip(r["la_code"], r["year"].astype(int)))
                  for y, r in la_rows.groupby("year")}
        specs.append(TableSpec(name=measure, row_keys=("la_code", "year"),
                               count_cols=("numerator", "rest", "denominator"),
                               total_col="denominator", row_groups=groups,
                               rate_cols={"value": ("numerator", "denominator", scale)},
                               level_col="level"))
    if not frames:
        return None
    links = []
    for a, col_a, b, col_b in shared:
        if a in frames and b in frames:
            x = frames[a].set_index(["la_code", "year"])[col_a]
            y = frames[b].set_index(["la_code", "year"])[col_b]
            common = x.index.intersection(y.index)
            rows = [(la, int(yr)) for la, yr in common if x[(la, yr)] == y[(la, yr)]]
            if rows:
                links.append(Link.same(a, b, rows=rows, cols={col_a: col_b}))
    return protect_tables(frames, specs, links, settings=settings, secondary=secondary,
                          audit=audit)


def published_table(protected) -> pd.DataFrame:
    """The protected tables stacked into ``childlevel_published.csv``'s layout."""
    if protected is None:
        return pd.DataFrame(columns=PUBLISHED_COLUMNS)
    frames = []
    for name, t in protected.tables.items():
        p = t.published.copy()
        p.insert(0, "measure", name)
        frames.append(p)
    return pd.concat(frames, ignore_index=True)[PUBLISHED_COLUMNS]


# --------------------------------------------------------------------------- the hook
def _ons_codes(tidy: pd.DataFrame) -> pd.DataFrame:
    """LA codes as the panel has them: DfE and former ONS codes mapped to current ONS codes."""
    codes = la_code_lookup()
    tidy = tidy.copy()
    tidy["la_code"] = tidy["la_code"].astype(str).map(lambda c: codes.get(c, c))
    return tidy


def add_child_level(build, folder: Path, *, strict: bool = False,
                    inputs: ChildLevelInputs | None = None) -> None:
    """Merge child-level measures into a :class:`analysis.ingest.panel.PanelBuild` (in place).

    Adds the measure columns to ``build.panel`` (and ``build.files['panel.csv']``),
    their definitions to ``measures.csv``, and the files
    ``childlevel_validation.csv`` and ``childlevel_published.csv``.
    Raises DataError (one line) on unreadable files, strict validation
    problems, a column clash, or a table that fails the disclosure check.
    ``inputs``: the returns already read and validated (:func:`read_and_validate`,
    which :func:`analysis.ingest.panel.build_panel_files` runs before the public build);
    read here when not given.
    """
    if inputs is None:
        inputs = read_and_validate(folder, strict=strict)

    validation = inputs.validation
    # A record open across 31 March is in two returns: count it once (the latest
    # copy), and censor windows that run past the last day the returns cover.
    episodes, cin = combine_returns(inputs.episodes, inputs.cin)
    cover = records_coverage(inputs.episodes, inputs.cin).set_index("la")
    tidy = tidy_measures(episodes, cin, data_start=cover["data_start"], data_end=cover["data_end"])
    # An LA-year outside the LA's returns is seen only in part (a referral of 2017
    # still open in the 2019 return): no measure for it.
    first = tidy["la_code"].map(cover["first_year"])
    last = tidy["la_code"].map(cover["last_year"])
    tidy = _ons_codes(tidy[(tidy["year"] >= first) & (tidy["year"] <= last)].reset_index(drop=True))
    wide = to_panel_measures(tidy=tidy)
    clash = sorted(set(wide.columns) - {"la_code", "year"} & set(build.panel.columns))
    if clash:
        raise DataError(f"child-level measure {clash[0]!r} clashes with a panel column",
                        file="data/processed/panel.csv")
    unknown = sorted(set(wide["la_code"]) - set(build.panel["la_code"]))
    if unknown:
        raise DataError(f"child-level records for LA {unknown[0]!r}, not an LA of the panel "
                        "(use ONS codes, E06..., E08..., E09..., E10...)", file=str(folder))
    panel = build.panel.merge(wide, on=["la_code", "year"], how="left")
    protected = protect_counts(tidy)
    if protected is not None:
        assert_publishable(protected)
    published = published_table(protected)

    defs = measure_definitions()
    cols = [c for c in wide.columns if c not in ("la_code", "year")]
    rows = []
    for _, d in defs[defs["name"].isin(cols)].iterrows():
        years = panel.loc[panel[d["name"]].notna(), "year"]
        rows.append(dict(name=d["name"], label=d["label"], unit=d["unit"], kind=d["kind"],
                         definition=d["definition"], source_ids="child_level",
                         first_year=int(years.min()) if len(years) else None,
                         last_year=int(years.max()) if len(years) else None,
                         n_years=int(years.nunique())))
    measures = pd.concat([build.measures, pd.DataFrame(rows)], ignore_index=True)
    build.panel, build.measures = panel, measures
    build.files["panel.csv"] = panel
    build.files["measures.csv"] = measures
    build.files[VALIDATION_FILE] = validation
    build.files[PUBLISHED_FILE] = published
    # The counts behind each child-level percentage, unprotected like panel.csv (an
    # estimation input that stays with the records): the child-level LPM reads them.
    build.files[COUNTS_FILE] = (tidy[tidy["denominator"].notna() & tidy["numerator"].notna()][COUNTS_COLUMNS]
                                .sort_values(["measure", "la_code", "year"]).reset_index(drop=True))
    build.childlevel = dict(tidy=tidy, protected=protected, validation=validation)


# --------------------------------------------------------------------------- what the book reads
#: Results columns that would hold counts of children (never written today; refused
#: unless every value is 0, at least the threshold, or the token ``c``).
CHILD_COUNT_COLUMNS = re.compile(
    r"^(numerator|denominator|rest|count|n_children|children|n_periods|periods|n_episodes|episodes)$")
#: Columns of the results that count local authorities or LA-years, not children.
LA_COUNT_COLUMNS = ("n_las", "n_treated", "n_comparison", "n_control", "n_obs", "n_sensitivity",
                    "rank")


def _published(processed_dir: Path) -> pd.DataFrame | None:
    path = Path(processed_dir) / PUBLISHED_FILE
    if not path.exists():
        return None
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def _child_measures(processed_dir: Path) -> list[str]:
    path = Path(processed_dir) / "measures.csv"
    if not path.exists():
        return []
    m = pd.read_csv(path, dtype=str, keep_default_na=False)
    return sorted(m.loc[m.get("source_ids", pd.Series(dtype=str)) == "child_level", "name"])


def mask_suppressed(panel: pd.DataFrame, published: pd.DataFrame | None,
                    measures: list[str] | None = None) -> pd.DataFrame:
    """The panel as the book may show it: a child-level rate is blank where it is withheld.

    For every measure of ``childlevel_published.csv`` that is a column of the
    panel, the LA-year's value is set to missing (the figures draw a gap; the
    tables show ``c`` through :func:`withheld_marks`) unless the published file
    shows a value for that LA-year: a rate whose count is suppressed (``c``),
    and an LA-year the published file does not hold, are never shown. Child-level
    measures not in the published file (``measures``) are blanked entirely.
    """
    if published is None:
        return panel
    panel = panel.copy()
    keys = panel["la_code"].astype(str) + "|" + panel["year"].astype(str)
    for measure, g in published.groupby("measure"):
        if measure not in panel.columns:
            continue
        shown = set((g["la_code"] + "|" + g["year"].astype(str))[g["value"].ne("c") & g["value"].ne("")])
        panel.loc[~keys.isin(shown), measure] = np.nan
    for measure in measures or []:
        if measure in panel.columns and measure not in set(published["measure"]):
            panel[measure] = np.nan
    return panel


def withheld_marks(panel: pd.DataFrame, published: pd.DataFrame | None, measure: str) -> pd.Series:
    """``"c"`` for each row of ``panel`` whose ``measure`` is withheld in the published file, else ``""``."""
    out = pd.Series("", index=panel.index)
    if published is None or measure not in set(published["measure"]):
        return out
    g = published[published["measure"] == measure]
    withheld = set((g["la_code"] + "|" + g["year"].astype(str))[g["value"] == "c"])
    keys = panel["la_code"].astype(str) + "|" + panel["year"].astype(str)
    out[keys.isin(withheld)] = "c"
    return out


def results_problems(results_dir: Path, processed_dir: Path, *, settings=None) -> list[str]:
    """Every reason the tables the book reads in child-level mode may not be published.

    Empty in public mode (no ``childlevel_published.csv``). Checked, per table:

    * ``childlevel_published.csv``: its columns; no count (numerator, rest,
      denominator) from 1 to threshold - 1; the rate withheld (``c``) wherever a
      count behind it is. These counts are the only child counts the book shows.
    * ``panel.csv`` as the book reads it (:func:`mask_suppressed`, applied by
      :func:`analysis.book.chapters.processed`): no child-level LA-year rate shown where
      its count is suppressed, nor for an LA-year the published file lacks. The
      pilot profiles and any per-LA series draw from this view.
    * ``results/*.csv``: no column of child counts (:data:`CHILD_COUNT_COLUMNS`)
      with a value from 1 to threshold - 1; in ``trends.csv`` no group mean of a
      child-level outcome over a single LA (that would be one LA's rate).

    Why the other results columns need no suppression: ``trends.csv`` group
    means, ``balance.csv`` means and standardised differences, and the
    coefficients, standard errors, intervals and p-values of ``estimates.csv``,
    ``event_study.csv`` and ``group_time.csv`` are each an average (or a
    regression function) over at least one LA's whole population of periods in
    several years, not a count of a small cell of children; the child counts
    behind them are published only through ``childlevel_published.csv``, which
    is protected. Their count columns (:data:`LA_COUNT_COLUMNS`) count local
    authorities or LA-years, and ``matched_pairs.csv`` names LAs (public) with
    matching distances computed on public variables.
    """
    processed_dir, results_dir = Path(processed_dir), Path(results_dir)
    published = _published(processed_dir)
    if published is None:
        return []
    st = settings or load_settings()
    problems: list[str] = []
    if list(published.columns) != PUBLISHED_COLUMNS:
        return [f"{PUBLISHED_FILE}: columns {list(published.columns)}, expected {PUBLISHED_COLUMNS}"]

    def small(values: pd.Series) -> pd.Series:
        num = pd.to_numeric(values.replace({"c": None, "": None}), errors="coerce")
        if not st.suppress_zeros:
            return num.between(1, st.threshold - 1)
        return num.between(0, st.threshold - 1)

    for col in ("numerator", "rest", "denominator"):
        bad = small(published[col])
        if bad.any():
            r = published[bad].iloc[0]
            problems.append(f"{PUBLISHED_FILE}: {col} {r[col]} of {r['measure']} for {r['la_code']} "
                            f"{r['year']} is below the disclosure threshold {st.threshold}")
    hidden = published[["numerator", "rest", "denominator"]].eq("c").any(axis=1) & published["value"].ne("c")
    if hidden.any():
        r = published[hidden].iloc[0]
        problems.append(f"{PUBLISHED_FILE}: rate of {r['measure']} for {r['la_code']} {r['year']} "
                        "is shown though a count behind it is withheld")

    panel_path = processed_dir / "panel.csv"
    if panel_path.exists():
        raw = pd.read_csv(panel_path, dtype={"la_code": str})
        view = mask_suppressed(raw, published, _child_measures(processed_dir))
        for measure, g in published.groupby("measure"):
            if measure not in view.columns:
                continue
            marks = withheld_marks(view, published, measure)
            leak = (marks == "c") & view[measure].notna()
            if leak.any():
                r = view[leak].iloc[0]
                problems.append(f"panel.csv: {measure} for {r['la_code']} {r['year']} is shown though "
                                f"its count is withheld in {PUBLISHED_FILE}")

    # The study design file is read as data here (the design module sits above this layer).
    try:
        outcomes = yaml.safe_load(DESIGN_PATH.read_text(encoding="utf-8")).get("outcomes") or []
        child_outcomes = {o.get("id") for o in outcomes if o.get("source") == "child_level"}
    except (OSError, AttributeError, yaml.YAMLError):  # no design: check the counts only
        child_outcomes = set()
    for path in sorted(results_dir.glob("*.csv")):
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
        for col in df.columns:
            if CHILD_COUNT_COLUMNS.match(col) and small(df[col]).any():
                problems.append(f"{path.name}: column {col} holds a count of children below the "
                                f"disclosure threshold {st.threshold}")
        if path.name == "trends.csv" and {"outcome", "n_las"} <= set(df.columns):
            one = df["outcome"].isin(child_outcomes) & (pd.to_numeric(df["n_las"], errors="coerce") < 2)
            if one.any():
                r = df[one].iloc[0]
                problems.append(f"trends.csv: the {r.get('group', '')} mean of {r['outcome']} in "
                                f"{r.get('year', '')} is over one LA (a single LA's child-level rate)")
    return problems


def publishable_results(results_dir: Path, processed_dir: Path, *, settings=None) -> None:
    """Raise DataError (one line, the first problem) unless :func:`results_problems` is empty."""
    problems = results_problems(results_dir, processed_dir, settings=settings)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise DataError(f"not publishable: {problems[0]}{more}", file=str(processed_dir))
