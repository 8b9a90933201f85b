"""Child-level mode of the data stage: extracts in, LA-year measures and protected tables out.

Switched on by ``SOS_CHILDLEVEL_DIR=DIR`` (or ``python -m analysis data
--child-level DIR``); without it nothing here runs and the public build is
byte for byte what it was.

Expected layout of DIR
----------------------
Every ``*.csv`` and ``*.xml`` file under DIR (any depth; hidden files and
folders are skipped) is an input:

* SSDA903 files are CSVs whose name contains ``header`` or ``episodes``
  (case-insensitive), e.g. ``DIR/E09000005/2019/header.csv`` and
  ``DIR/E09000005/2019/episodes.csv``. The LA and the reporting year (ending
  31 March) of a file are, in this order: ``LA``/``YEAR`` columns in the file
  (combined files, as liia-tools writes them, may hold many LAs and years);
  else a folder name that is an ONS LA code (``E09000005``) or a DfE
  three-digit code, and a folder name that is a four-digit year
  (``2000``-``2099``), folders only (a file name is left to the reader,
  which also knows ``E09000005_episodes.csv``). See :func:`analysis.childlevel.readers.read_903_header`.
* CIN census files are XMLs (one per LA per year, per the DfE schema); LA and
  year come from the path as above, else from the file's own header
  (``<LEA>``, ``<ReferenceDate>``).

What the data stage does with them (:func:`add_child_level`)
------------------------------------------------------------
1. Read every file (:mod:`analysis.childlevel.readers`) and validate the
   SSDA903 header and episodes and the CIN census against the year's code
   lists. Every problem is written, by rule, child, field, file and row, to
   ``childlevel_validation.csv``; no record is dropped. With ``strict`` the first
   problem stops the build with one line (exit status 2).
2. Compute the child-level LA-year measures
   (:func:`analysis.childlevel.aggregate.tidy_measures`, ``to_panel_measures``)
   and merge them into ``panel.csv`` as extra columns (their names never clash
   with the published measures'; see :mod:`analysis.childlevel.aggregate`),
   with their definitions appended to ``measures.csv``.
3. Disclosure control (:mod:`analysis.disclosure`): the counts behind every
   child-level percentage (numerator, the rest of the denominator and the
   denominator, per LA and year, one table per measure, the denominator
   declared the total of the other two so an attacker knows it) go through
   :func:`analysis.disclosure.protect_tables` together, rates are withheld
   wherever a count behind them is, and :func:`analysis.disclosure.assert_publishable`
   checks the result; a failure stops the build (DataError, exit status 2).
   What the book may show is ``childlevel_published.csv``.

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
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError

ENV_VAR = "SOS_CHILDLEVEL_DIR"
VALIDATION_FILE = "childlevel_validation.csv"
PUBLISHED_FILE = "childlevel_published.csv"
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
    """LA and year from the folders (not the file name), unless the CSV has LA/YEAR columns."""
    la = year = None
    cols = _csv_columns(path) if path.suffix.lower() == ".csv" else set()
    for part in path.relative_to(folder).parent.parts:
        if la is None and (_ONS.match(part) or _DFE.match(part)):
            la = part
        elif year is None and _YEAR.match(part):
            year = int(part)
    return (None if "LA" in cols else la), (None if "YEAR" in cols else year)


def read_inputs(folder: Path) -> tuple[pd.DataFrame | None, pd.DataFrame | None, dict | None]:
    """All SSDA903 headers, episodes and CIN census tables under ``folder``, concatenated."""
    from .readers import read_903_episodes, read_903_header, read_cin_census

    headers, episodes, cin_parts = [], [], []
    files = input_files(folder)
    unknown = [f for f in files if _kind(f) is None]
    if unknown:
        raise DataError("a CSV whose name says neither 'header' nor 'episodes': "
                        "cannot tell which SSDA903 table it is", file=str(unknown[0]))
    for f in files:
        la, year = _la_year_from_path(f, folder)
        kind = _kind(f)
        if kind == "header":
            headers.append(read_903_header(f, year=year, la=la))
        elif kind == "episodes":
            episodes.append(read_903_episodes(f, year=year, la=la))
        else:
            cin_parts.append(read_cin_census(f, year=year, la=la))
    if not (headers or episodes or cin_parts):
        raise DataError("no SSDA903 or CIN census files in the child-level folder", file=str(folder))
    if bool(headers) != bool(episodes):
        raise DataError("SSDA903 needs both header and episodes files", file=str(folder))
    hd = pd.concat(headers, ignore_index=True) if headers else None
    ep = pd.concat(episodes, ignore_index=True) if episodes else None
    cin = None
    if cin_parts:
        keys = sorted({k for p in cin_parts for k in p if k != "header"})
        cin = {k: pd.concat([p[k] for p in cin_parts if k in p], ignore_index=True) for k in keys}
    return hd, ep, cin


def validate_inputs(header, episodes, cin, *, strict: bool = False) -> pd.DataFrame:
    """Every validation problem (readers' report layout); ``strict`` raises on the first."""
    from .readers import REPORT_COLUMNS, validate_903, validate_cin

    parts = []
    if header is not None:
        parts.append(validate_903(header, episodes, strict=strict))
    if cin is not None:
        parts.append(validate_cin(cin, strict=strict))
    parts = [p for p in parts if len(p)]
    return (pd.concat(parts, ignore_index=True)[REPORT_COLUMNS] if parts
            else pd.DataFrame(columns=REPORT_COLUMNS))


# --------------------------------------------------------------------------- disclosure
def protect_counts(tidy: pd.DataFrame, *, settings=None):
    """Protected tables of the counts behind every child-level percentage.

    One table per percentage measure: rows ``(la_code, year)``, counts
    ``numerator``, ``rest`` (denominator less numerator) and ``denominator``
    (declared their total), and the rate ``value`` = numerator / denominator
    (withheld wherever a count is). Returns the :class:`~analysis.disclosure.ProtectedSet`.
    """
    from ..disclosure import TableSpec, protect_tables

    frames, specs = {}, []
    pct = tidy[tidy["denominator"].notna() & tidy["numerator"].notna()]
    for measure, g in pct.groupby("measure", sort=True):
        t = g[["la_code", "year", "numerator", "denominator"]].copy()
        t["year"] = t["year"].astype(int)
        t["numerator"] = t["numerator"].round().astype(np.int64)
        t["denominator"] = t["denominator"].round().astype(np.int64)
        t["rest"] = t["denominator"] - t["numerator"]
        t["value"] = np.where(t["denominator"] > 0, 100.0 * t["numerator"] / t["denominator"].where(
            t["denominator"] > 0), np.nan)
        frames[measure] = t[["la_code", "year", "numerator", "rest", "denominator", "value"]
                            ].sort_values(["la_code", "year"]).reset_index(drop=True)
        specs.append(TableSpec(name=measure, row_keys=("la_code", "year"),
                               count_cols=("numerator", "rest", "denominator"),
                               total_col="denominator",
                               rate_cols={"value": ("numerator", "denominator")}))
    if not frames:
        return None
    return protect_tables(frames, specs, settings=settings)


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
    """LA codes as the panel has them: DfE three-digit codes mapped to ONS codes."""
    from ..geography import la_register

    reg = la_register()
    dfe = dict(zip(reg["old_la_code"].astype(str), reg["la_code"]))
    tidy = tidy.copy()
    tidy["la_code"] = tidy["la_code"].astype(str).map(lambda c: dfe.get(c, c))
    return tidy


def add_child_level(build, folder: Path, *, strict: bool = False) -> None:
    """Merge child-level measures into a :class:`analysis.panel.PanelBuild` (in place).

    Adds the measure columns to ``build.panel`` (and ``build.files['panel.csv']``),
    their definitions to ``measures.csv``, and the files
    ``childlevel_validation.csv`` and ``childlevel_published.csv``.
    Raises DataError (one line) on unreadable files, strict validation
    problems, a column clash, or a table that fails the disclosure check.
    """
    from ..disclosure import assert_publishable
    from .aggregate import measure_definitions, tidy_measures, to_panel_measures

    header, episodes, cin = read_inputs(folder)
    validation = validate_inputs(header, episodes, cin, strict=strict)
    tidy = _ons_codes(tidy_measures(episodes, cin))
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
    build.childlevel = dict(tidy=tidy, protected=protected, validation=validation)
