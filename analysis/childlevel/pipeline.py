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

Before the book is built in child-level mode, :func:`publishable_results`
checks every table it reads (``childlevel_published.csv``, the panel as the
book sees it, ``results/*.csv``; see :func:`results_problems`) and
:func:`analysis.build.build_book` refuses to build (DataError, exit status 2)
when one fails. The book never shows a per-LA child-level rate whose count is
withheld: :func:`analysis.report.processed` blanks it (:func:`mask_suppressed`)
and the pilot profiles mark its year ``c``.
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
      :func:`analysis.report.processed`): no child-level LA-year rate shown where
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
    from ..disclosure import load_settings

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

    child_outcomes: set[str] = set()
    try:
        from ..design import load_design

        d = load_design()
        child_outcomes = {o.id for o in d.outcomes if getattr(o, "source", None) == "child_level"}
    except Exception:  # noqa: BLE001 - no design: check the counts only
        pass
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
