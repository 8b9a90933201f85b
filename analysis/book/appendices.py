"""Helpers of the background chapter and the appendices.

The appendices are generated, not written: the data provenance is the manifest
(``data/manifest.csv``) and the reference lists in ``data/reference/``; the
pilot profiles are the study design (``data/study_design.yaml``), the matched
pairs (``results/matched_pairs.csv``) and the panel; the rebuild guide reads
the Makefile and the command line's own parser. A change to any of these
changes the pages on the next build.

Chapters call:

* :func:`glue_background`, :func:`glue_provenance`, :func:`glue_profiles`
  (numbers and sentences for ``{glue:md}``);
* :func:`provenance_table` / :func:`provenance_styler`,
  :func:`repositories_table` / :func:`repositories_styler`,
  :func:`reference_lists_table` / :func:`reference_lists_styler`,
  :func:`practice_model_sources`, :func:`register_changes_table`;
* :func:`comparators_table`, :func:`comparators_overview` /
  :func:`comparators_overview_styler`, :func:`all_comparators_long`,
  :func:`show_comparators`, :func:`profile_markdown`, :func:`profile_figure`,
  :func:`show_pilot_estimates` (each pilot's own estimates, from
  :mod:`analysis.book.robustness`);
* :func:`glue_rebuild`, :func:`make_targets_table` / :func:`make_targets_styler`,
  :func:`cli_commands_table` / :func:`cli_commands_styler`,
  :func:`cli_options_table` / :func:`cli_options_styler`.
"""
from __future__ import annotations

import argparse
import html
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from analysis.book import figures as F
from analysis.book import robustness
from analysis.book.chapters import (
    PROCESSED_DIR,
    design,
    download_link,
    glue_md,
    la_names,
    processed,
    prose_label,
    result,
)
from analysis.book.chapters import design as _design
from analysis.book.figure_memo import memoised
from analysis.childlevel.pipeline import _published, withheld_marks
from analysis.cli.commands import build_parser
from analysis.core.paths import DATA_DIR, REFERENCE_DIR, ROOT
from analysis.design import load_design
from analysis.ingest.geography import la_register
from analysis.ingest.sources import Source, load_manifest

PRACTICE_MODEL_PATH = REFERENCE_DIR / "practice_model_las.csv"
SIF_PATH = REFERENCE_DIR / "sif_judgements_from_reports.csv"
REGISTER_PATH = DATA_DIR / "local_authorities.csv"
MAKEFILE_PATH = ROOT / "Makefile"

#: The public repository whose archived Ofsted report PDFs the SIF
#: transcription was read from (its ``source_path`` and ``git_commit`` columns
#: point into it).
SIF_REPOSITORY = "data-to-insight/ofsted-ilacs-scrape-tool"

#: Licence codes of the manifest -> (name, URL of the licence text).
LICENCES: dict[str, tuple[str, str]] = {
    "OGL-UK-3.0": ("Open Government Licence v3.0",
                   "https://www.nationalarchives.gov.uk/doc/open-government-licence/version/3/"),
}
#: The attribution statement the Open Government Licence asks for.
OGL_ATTRIBUTION = ("Contains public sector information licensed under the Open Government "
                   "Licence v3.0.")

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")

#: Wave ids of the design -> words for prose.
WAVE_WORDS = {"wave1": "wave one", "wave2": "wave two"}


# --------------------------------------------------------------------------- small helpers

def release_month(value: str) -> str:
    """A manifest ``release_date`` (``YYYY-MM``) as readers write it (``October 2025``).

    Parameters
    ----------
    value : str
        ``YYYY-MM`` (or ``YYYY-MM-DD``); empty when not recorded.

    Returns
    -------
    str
        ``"<Month> <year>"``, ``"not recorded"`` for an empty value, the value
        itself when it does not parse.
    """
    value = (value or "").strip()
    if not value:
        return "not recorded"
    m = re.fullmatch(r"(\d{4})-(\d{2})(?:-\d{2})?", value)
    if not m or not 1 <= int(m.group(2)) <= 12:
        return value
    return f"{MONTHS[int(m.group(2)) - 1]} {m.group(1)}"


def repository_of(url: str) -> tuple[str, str]:
    """``(owner/repo, commit)`` of a ``raw.githubusercontent.com`` URL, else ``(host, "")``.

    Parameters
    ----------
    url : str
        A download URL of the manifest.

    Returns
    -------
    tuple of str
        The GitHub repository and the pinned commit (full hash) for a raw
        GitHub URL; the host name and an empty string otherwise.
    """
    parts = urlsplit(url)
    segs = [s for s in parts.path.split("/") if s]
    if parts.netloc == "raw.githubusercontent.com" and len(segs) >= 3:
        return f"{segs[0]}/{segs[1]}", segs[2]
    return parts.netloc, ""


def _short_url(url: str, width: int = 60) -> str:
    """A URL without scheme, ``www.`` and trailing slash, cut to ``width`` characters."""
    parts = urlsplit(url)
    text = (parts.netloc.removeprefix("www.") + parts.path).rstrip("/")
    return text if len(text) <= width else text[: width - 1] + "…"


def _link(url: str, text: str) -> str:
    return f'<a href="{html.escape(url, quote=True)}">{html.escape(text)}</a>'


def _words(n: int) -> str:
    """Small counts in words for prose (``3`` -> ``three``); digits from twenty-one."""
    words = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
             "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen",
             "seventeen", "eighteen", "nineteen", "twenty")
    return words[n] if 0 <= n < len(words) else f"{n:,}"


def _join(items: Sequence[str], last: str = "and") -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + f" {last} " + items[-1]


# --------------------------------------------------------------------------- provenance

PROVENANCE_COLUMNS = ["Publisher", "File", "Title", "Release", "Release date", "Licence",
                      "URL", "sha256", "Manifest id"]


def provenance_table(manifest: Mapping[str, Source] | None = None) -> pd.DataFrame:
    """One row per manifest entry: what the file is, where it comes from, its checksum.

    Rows are grouped by publisher (publishers with most files first, then by
    name) and keep the manifest's order within a publisher.

    Parameters
    ----------
    manifest : mapping of id to Source, optional
        Default: :func:`analysis.ingest.sources.load_manifest` (``$SOS_DATA_MANIFEST``
        or ``data/manifest.csv``).

    Returns
    -------
    DataFrame
        Columns :data:`PROVENANCE_COLUMNS`; ``URL`` and ``sha256`` in full,
        ``Release date`` in words (:func:`release_month`), ``Licence`` by name.
    """
    manifest = load_manifest() if manifest is None else manifest
    rows = []
    for order, s in enumerate(manifest.values()):
        rows.append({"Publisher": s.publisher, "File": s.path.rsplit("/", 1)[-1], "Title": s.title,
                     "Release": s.release, "Release date": release_month(s.release_date),
                     "Licence": LICENCES.get(s.licence, (s.licence, ""))[0], "URL": s.url,
                     "sha256": s.sha256, "Manifest id": s.id, "_order": order})
    df = pd.DataFrame(rows, columns=PROVENANCE_COLUMNS + ["_order"])
    if df.empty:
        return df.drop(columns="_order")
    size = df.groupby("Publisher")["Publisher"].transform("size")
    df = (df.assign(_size=-size).sort_values(["_size", "Publisher", "_order"], kind="stable")
          .drop(columns=["_size", "_order"]).reset_index(drop=True))
    return df


def publishers(table: pd.DataFrame) -> list[str]:
    """Publishers of a :func:`provenance_table` in the table's order."""
    return list(dict.fromkeys(table["Publisher"]))


#: Short licence names for narrow tables.
LICENCE_SHORT = {"Open Government Licence v3.0": "OGL v3.0"}


def provenance_styler(table: pd.DataFrame):
    """A :func:`provenance_table` (or a part of it) laid out for the page's narrow column.

    Three columns: the file name with its title below; the release with its
    publication month and licence (short name, linked to its text); the
    download link (labelled with the repository and commit it is pinned to)
    with the full sha256 below it in a small monospaced font that wraps. The
    publisher is left out (the page groups the rows under publisher
    headings); the CSV download keeps every column separate.

    Parameters
    ----------
    table : DataFrame
        Rows of :func:`provenance_table`.

    Returns
    -------
    pandas.io.formats.style.Styler
    """
    licence_urls = {name: url for name, url in LICENCES.values()}
    small = '<br><span style="font-size:0.85em">{}</span>'

    def licence(lic: str) -> str:
        short = LICENCE_SHORT.get(lic, lic)
        return _link(licence_urls[lic], short) if lic in licence_urls else html.escape(lic)

    out = pd.DataFrame({
        "File": [f'<code style="word-break:break-all">{html.escape(f)}</code>' + small.format(html.escape(t))
                 for f, t in zip(table["File"], table["Title"])],
        "Release and licence": [
            html.escape(r) + small.format(
                (f"published {html.escape(d)}" if d != "not recorded" else "publication month not recorded")
                + f"; {licence(lic)}")
            for r, d, lic in zip(table["Release"], table["Release date"], table["Licence"])],
        "Download and sha256": [
            _link(u, _url_label(u)) + '<br><code style="word-break:break-all;font-size:0.75em">'
            f"{h}</code>" for u, h in zip(table["URL"], table["sha256"])],
    })
    return (out.style.hide(axis="index")
            .set_properties(**{"vertical-align": "top"}))


def _url_label(url: str) -> str:
    repo, commit = repository_of(url)
    return f"{repo} at {commit[:7]}" if commit else repo


def repositories_table(manifest: Mapping[str, Source] | None = None) -> pd.DataFrame:
    """Where the files are downloaded from: one row per repository (or host) and commit.

    Returns
    -------
    DataFrame
        ``Repository``, ``Commit`` (first seven characters), ``Files``,
        ``Publishers`` (of the files taken from it), ordered by files.
    """
    manifest = load_manifest() if manifest is None else manifest
    rows = []
    for s in manifest.values():
        repo, commit = repository_of(s.url)
        rows.append({"Repository": repo, "Commit": commit[:7], "Publisher": s.publisher})
    df = pd.DataFrame(rows, columns=["Repository", "Commit", "Publisher"])
    g = (df.groupby(["Repository", "Commit"], sort=False)
         .agg(Files=("Publisher", "size"),
              Publishers=("Publisher", lambda x: "; ".join(dict.fromkeys(x))))
         .reset_index())
    return g.sort_values(["Files", "Repository"], ascending=[False, True], kind="stable").reset_index(drop=True)


def repositories_styler(table: pd.DataFrame):
    """:func:`repositories_table` with each repository linked to its GitHub page."""
    out = table.copy()
    out["Repository"] = [_link(f"https://github.com/{r}", r) if "/" in r else html.escape(r)
                         for r in table["Repository"]]
    out["Publishers"] = [html.escape(p) for p in table["Publishers"]]
    return out.style.hide(axis="index")


def _split_sources(text: str) -> list[str]:
    """URLs in a ``source`` cell (several are separated by `` ; ``)."""
    return re.findall(r"https?://[^\s;,)]+", str(text))


def practice_model_sources(path: Path = PRACTICE_MODEL_PATH) -> pd.DataFrame:
    """Every public page the practice-model list was read from, with what it supports.

    Returns
    -------
    DataFrame
        ``Source`` (URL), ``Practice models`` (those of the rows citing it) and
        ``Rows`` (how many rows cite it), most cited first.
    """
    pm = pd.read_csv(path, dtype=str, keep_default_na=False)
    rows = []
    for _, r in pm.iterrows():
        for url in _split_sources(r["source"]):
            if "/.../" in url:  # an elided URL in the list's own notes: not a link
                continue
            rows.append({"Source": url, "model": r["practice_model"]})
    df = pd.DataFrame(rows, columns=["Source", "model"])
    g = (df.groupby("Source", sort=False)
         .agg(**{"Practice models": ("model", lambda x: "; ".join(dict.fromkeys(x))),
                 "Rows": ("model", "size")})
         .reset_index())
    return g.sort_values("Rows", ascending=False, kind="stable").reset_index(drop=True)


def reference_lists_table() -> pd.DataFrame:
    """The project's research lists in ``data/reference/``: what each holds, its size, its sources.

    Returns
    -------
    DataFrame
        One row per list: ``File``, ``What it lists``, ``Rows``, ``Local
        authorities``, ``Read from``.
    """
    pm = pd.read_csv(PRACTICE_MODEL_PATH, dtype=str, keep_default_na=False)
    sif = pd.read_csv(SIF_PATH, dtype=str, keep_default_na=False)
    n_pm_sources = len(practice_model_sources())
    return pd.DataFrame([
        {"File": "data/reference/practice_model_las.csv",
         "What it lists": ("Local authorities in the Signs of Safety pilots, in other Signs of "
                           "Safety programmes, and running similar whole-system practice models"),
         "Rows": len(pm), "Local authorities": pm["new_la_code"].nunique(),
         "Read from": f"{n_pm_sources} public web pages, named row by row"},
        {"File": "data/reference/sif_judgements_from_reports.csv",
         "What it lists": "Ofsted single inspection framework (SIF) judgements",
         "Rows": len(sif), "Local authorities": sif["new_la_code"].nunique(),
         "Read from": f"Ofsted's inspection reports, archived in {SIF_REPOSITORY}"},
    ])


def reference_lists_styler(table: pd.DataFrame):
    """:func:`reference_lists_table` for the page: file names in code font that may wrap."""
    out = table.assign(File=[f'<code style="word-break:break-all">{html.escape(f)}</code>'
                             for f in table["File"]])
    return out.style.hide(axis="index").set_properties(**{"vertical-align": "top"})


def register_changes_table(path: Path = REGISTER_PATH) -> pd.DataFrame:
    """LAs of the register whose boundary or code changed, with the change.

    Returns
    -------
    DataFrame
        ``Local authority``, ``Code``, ``Years in the data``, ``Change`` and
        ``Boundary changed`` (yes/no), in register order.
    """
    reg = pd.read_csv(path, dtype=str, keep_default_na=False)
    keep = reg[(reg["boundary_changed"] == "True") | (reg["former_codes"] != "")
               | (reg["code_change_note"] != "")]
    return pd.DataFrame({
        "Local authority": keep["la_name"],
        "Code": keep["la_code"],
        "Years in the data": keep["first_year"] + "–" + keep["last_year"],
        "Change": [b or c for b, c in zip(keep["boundary_note"], keep["code_change_note"])],
        "Boundary changed": np.where(keep["boundary_changed"] == "True", "yes", "no"),
    }).reset_index(drop=True)


def glue_provenance() -> None:
    """Glue the provenance appendix's counts and sentences."""
    manifest = load_manifest()
    table = provenance_table(manifest)
    repos = repositories_table(manifest)
    reg = pd.read_csv(REGISTER_PATH, dtype=str, keep_default_na=False)
    sif = pd.read_csv(SIF_PATH, dtype=str, keep_default_na=False)
    pm = pd.read_csv(PRACTICE_MODEL_PATH, dtype=str, keep_default_na=False)
    licences = sorted(set(table["Licence"]))
    total_mb = sum(s.bytes for s in manifest.values()) / 1e6
    glue_md("prov_n_files", f"{len(table):,}")
    glue_md("prov_n_publishers", _words(len(publishers(table))))
    glue_md("prov_n_repos", _words(repos["Repository"].nunique()))
    glue_md("prov_size", f"{total_mb:,.0f} MB" if total_mb >= 10 else f"{total_mb:,.1f} MB")
    glue_md("prov_licences", _join(licences))
    glue_md("prov_all_ogl", "Every file is published under the Open Government Licence v3.0."
            if licences == [LICENCES["OGL-UK-3.0"][0]] else
            "The files are published under these licences: " + _join(licences) + ".")
    dates = sorted(d for d in (s.release_date for s in manifest.values()) if d)
    glue_md("prov_first_release", release_month(dates[0]) if dates else "not recorded")
    glue_md("prov_last_release", release_month(dates[-1]) if dates else "not recorded")
    glue_md("reg_n_las", f"{len(reg):,}")
    glue_md("reg_n_boundary", _words(int((reg["boundary_changed"] == "True").sum())))
    glue_md("reg_n_codes", _words(int((reg["former_codes"] != "").sum())))
    glue_md("reg_first_year", str(int(reg["first_year"].astype(int).min())))
    glue_md("reg_last_year", str(int(reg["last_year"].astype(int).max())))
    glue_md("pm_n_rows", f"{len(pm):,}")
    glue_md("pm_n_las", f"{pm['new_la_code'].nunique():,}")
    glue_md("pm_models", _join(sorted(m for m in set(pm["practice_model"])
                                      if not m.startswith("Signs of Safety"))))
    used = sif[sif["framework"].isin(["SIF", "SIF re-inspection"]) & (sif["overall"] != "")]
    glue_md("sif_n_rows", f"{len(sif):,}")
    glue_md("sif_n_used", f"{len(used):,}")
    glue_md("sif_n_las", f"{used['new_la_code'].nunique():,}")
    commits = set(sif["git_commit"]) - {""}
    glue_md("sif_repo_link", f"[{SIF_REPOSITORY}](https://github.com/{SIF_REPOSITORY})")
    glue_md("sif_n_commits", _words(len(commits)))


# --------------------------------------------------------------------------- background

def glue_background() -> None:
    """Glue the background chapter's counts, read from the study design."""
    d = design()
    w1 = [p for p in d.pilots if "wave1" in p.waves]
    w2 = [p for p in d.pilots if "wave2" in p.waves]
    only1 = [p.name for p in w1 if p not in w2]
    only2 = [p.name for p in w2 if p not in w1]
    glue_md("bg_n_pilots", _words(len(d.pilots)))
    glue_md("bg_n_wave1", _words(len(w1)))
    glue_md("bg_n_wave2", _words(len(w2)))
    glue_md("bg_n_both", _words(len(w1) - len(only1)))
    glue_md("bg_wave1_names", _join(sorted(p.name for p in w1)))
    glue_md("bg_left", _join(only1) or "none")
    glue_md("bg_joined", _join(only2) or "none")
    public = [o for o in d.outcomes if o.source == "public"]
    glue_md("bg_n_primary", _words(sum(o.primary for o in public)))
    glue_md("bg_n_outcomes", _words(len(public)))
    # the book's design hides child-level outcomes without results; count the file's

    glue_md("bg_n_child_outcomes",
            _words(sum(o.source == "child_level" for o in load_design().outcomes)))
    glue_md("bg_n_similar", _words(len(d.similar_models)))
    glue_md("bg_n_other_sos", _words(len(d.other_sos_las)))
    glue_md("bg_wave1_start", f"{MONTHS[d.waves['wave1'].start.month - 1]} {d.waves['wave1'].start.year}")
    glue_md("bg_wave1_end", f"{MONTHS[d.waves['wave1'].end.month - 1]} {d.waves['wave1'].end.year}")
    glue_md("bg_wave2_start", f"{d.waves['wave2'].start.day} {MONTHS[d.waves['wave2'].start.month - 1]} "
                              f"{d.waves['wave2'].start.year}")
    glue_md("bg_wave2_end", f"{MONTHS[d.waves['wave2'].end.month - 1]} {d.waves['wave2'].end.year}")
    glue_md("bg_wave1_first", str(d.waves["wave1"].first_treated_year))
    glue_md("bg_wave2_first", str(d.waves["wave2"].first_treated_year))


# --------------------------------------------------------------------------- pilot profiles

def primary_outcomes(design=None) -> list:
    """The design's primary outcomes, in the design's order."""
    d = design or _design()
    return [o for o in d.outcomes if o.primary]


def matched_comparators(pairs: pd.DataFrame, la_code: str, outcome: str) -> list[str]:
    """Codes of a pilot's matched comparators for one outcome, nearest first.

    Parameters
    ----------
    pairs : DataFrame
        ``results/matched_pairs.csv`` (main specification): ``treated_code``,
        ``comparator_code``, ``rank``, ``outcome``.
    la_code : str
        The pilot.
    outcome : str
        Outcome id.

    Returns
    -------
    list of str
        Empty when the pilot is not in that outcome's analysis.
    """
    p = pairs[(pairs["treated_code"] == la_code) & (pairs["outcome"] == outcome)]
    return p.sort_values("rank")["comparator_code"].tolist()


def _pilot(d, la_code: str):
    for p in d.pilots:
        if p.la_code == la_code:
            return p
    raise KeyError(f"{la_code} is not a pilot of the study design")


def _outcome_note(d, notes: pd.DataFrame, la_code: str, outcome, in_pairs: bool,
                  names: Mapping[str, str]) -> str:
    """Why a pilot has no comparators for an outcome, or how it was matched."""
    pilot = _pilot(d, la_code)
    treated = d.treated(outcome)
    if la_code not in treated:
        onset = d.onset_for(outcome)
        return (f"Not treated under this outcome's {WAVE_WORDS.get(onset, onset)} onset "
                f"(took part in {_join([WAVE_WORDS.get(w, w) for w in pilot.waves])} only)")
    mine = notes[(notes["outcome"] == outcome.id) & (notes["specification"] == "main")]["note"]
    who = {names.get(la_code, pilot.name), pilot.name}
    relevant = [n for n in mine if any(w in n for w in who)]
    if not in_pairs:
        return ("Left out of this outcome: no published value in the pre-period"
                if not relevant else "Left out of this outcome: " + _clean_note(relevant[0]))
    if any("without its trend" in n for n in relevant):
        return "Matched on the pre-period level only (a single published pre-year)"
    return ""


def _clean_note(note: str) -> str:
    """The reason part of a results note, without panel column names."""
    m = re.search(r"has no published \S+ in the pre-period \(([^)]*)\)", note)
    if m:
        return f"no published value in the pre-period ({m.group(1).replace('-', '–')})"
    return note


def comparators_table(la_code: str, outcomes: Sequence | None = None, *,
                      pairs: pd.DataFrame | None = None, notes: pd.DataFrame | None = None,
                      design=None) -> pd.DataFrame:
    """A pilot's matched comparators, outcome by outcome (main specification).

    Parameters
    ----------
    la_code : str
        The pilot.
    outcomes : sequence of Outcome, optional
        Default: the primary outcomes (:func:`primary_outcomes`).
    pairs, notes : DataFrame, optional
        ``results/matched_pairs.csv`` and ``results/notes.csv`` (default: read).
    design : StudyDesign, optional

    Returns
    -------
    DataFrame
        ``Outcome``, ``First treated year`` (blank when not treated),
        ``Matched comparators`` (names, nearest first, separated by
        semicolons; ``none`` when the pilot is not in that outcome's
        analysis) and ``Note`` (why not, or how it was matched when it
        differs from the rule).
    """
    d = design or _design()
    pairs = result("matched_pairs") if pairs is None else pairs
    notes = result("notes") if notes is None else notes
    outcomes = primary_outcomes(d) if outcomes is None else outcomes
    names = la_names()
    rows = []
    for o in outcomes:
        comps = matched_comparators(pairs, la_code, o.id)
        sub = pairs[(pairs["outcome"] == o.id)].drop_duplicates("comparator_code")
        comp_names = dict(zip(sub["comparator_code"], sub["comparator_name"]))
        first = d.treated(o).get(la_code)
        rows.append({"Outcome": o.label,
                     "First treated year": str(first) if first else "–",
                     "Matched comparators": "; ".join(comp_names.get(c, names.get(c, c)) for c in comps)
                     or "none",
                     "Note": _outcome_note(d, notes, la_code, o, bool(comps), names)})
    return pd.DataFrame(rows, columns=["Outcome", "First treated year", "Matched comparators", "Note"])


def comparators_overview(outcomes: Sequence | None = None, *, pairs: pd.DataFrame | None = None,
                         design=None) -> pd.DataFrame:
    """Every pilot (rows) by outcome (columns): its matched comparators.

    Returns
    -------
    DataFrame
        ``Pilot`` then one column per outcome (its label); a cell lists the
        comparators nearest first, or ``–`` when the pilot is not in that
        outcome's analysis.
    """
    d = design or _design()
    pairs = result("matched_pairs") if pairs is None else pairs
    outcomes = primary_outcomes(d) if outcomes is None else outcomes
    names = dict(zip(pairs["comparator_code"], pairs["comparator_name"]))
    rows = []
    for p in d.pilots:
        row = {"Pilot": p.name}
        for o in outcomes:
            comps = matched_comparators(pairs, p.la_code, o.id)
            row[o.label] = "; ".join(names[c] for c in comps) if comps else "–"
        rows.append(row)
    return pd.DataFrame(rows)


def comparators_overview_styler(table: pd.DataFrame):
    """:func:`comparators_overview` in a smaller font, so that its columns fit the page."""
    return (table.style.hide(axis="index")
            .set_table_styles([{"selector": "", "props": "font-size: 0.85em;"}])
            .set_properties(**{"vertical-align": "top"})
            .set_properties(subset=["Pilot"], **{"white-space": "nowrap"}))


def all_comparators_long(pairs: pd.DataFrame | None = None) -> pd.DataFrame:
    """Matched pairs of every outcome, with readable outcome labels (for download)."""
    pairs = result("matched_pairs") if pairs is None else pairs
    labels = {o.id: o.label for o in design().outcomes}
    out = pairs[["treated_code", "treated_name", "outcome", "rank", "comparator_code",
                 "comparator_name", "distance", "same_region", "beyond_caliper"]].copy()
    out.insert(3, "outcome_label", out["outcome"].map(labels))
    return out


def show_comparators(la_code: str) -> None:
    """Display a pilot's comparators table and a CSV download of its pairs for every outcome."""
    from IPython.display import display


    table = comparators_table(la_code)
    if not table["Note"].astype(bool).any():
        table = table.drop(columns="Note")
    display(table.style.hide(axis="index"))
    pairs = all_comparators_long()
    display(download_link(pairs[pairs["treated_code"] == la_code],
                          f"comparators_{la_code}.csv",
                          "Download this pilot's comparators for every outcome (CSV)"))


def show_pilot_estimates(la_code: str) -> None:
    """Display a pilot's own estimates (:func:`analysis.book.robustness.pilot_estimates_table`) and a CSV."""
    from IPython.display import display

    table = robustness.pilot_estimates_table(la_code)
    display(robustness.styled(table, nowrap=["First treated year", "95% placebo interval",
                                             "Interval width (pooled)", "Rank p-value"]))
    pe = robustness.pilot_effects(la_code).drop(columns="placebo")
    display(download_link(pe, f"own_estimates_{la_code}.csv",
                          "Download this pilot's own estimates with every donor's placebo estimate (CSV)"))


def _prior_sentence(text: str) -> str:
    text = text.strip().rstrip(".")
    return text[0].upper() + text[1:] + "." if text else "Not stated in the sources used."


def profile_markdown(la_code: str, *, design=None) -> str:
    """The opening paragraph of a pilot's profile (Markdown with links).

    States the LA's code and region, the waves it took part in with their
    dates, its first treated year under each onset, its experience of Signs
    of Safety before the pilot and the public sources of these facts.
    """
    d = design or _design()
    p = _pilot(d, la_code)
    reg = la_register().set_index("la_code")
    region = reg.loc[la_code, "region_name"] if la_code in reg.index else ""
    waves = []
    for w in p.waves:
        wave = d.waves[w]
        waves.append(f"{WAVE_WORDS.get(w, w)} ({MONTHS[wave.start.month - 1]} {wave.start.year} "
                     f"to {MONTHS[wave.end.month - 1]} {wave.end.year})")
    firsts = []
    for onset in d.onsets:
        y = d.first_treated_year(la_code, onset)
        firsts.append(f"{y} under a {WAVE_WORDS.get(onset, onset)} onset" if y
                      else f"not treated under a {WAVE_WORDS.get(onset, onset)} onset")
    src = "; ".join(f"[{_short_url(u)}]({u})" for u in _split_sources(p.source))
    return (f"**{p.name}** ({la_code}{', ' + region if region else ''}) took part in "
            f"{_join(waves)}. First treated reporting year: {_join(firsts)}. "
            f"**Experience of Signs of Safety before the pilot:** {_prior_sentence(p.prior_sos)} "
            f"Sources: {src}.")


def glue_profiles() -> None:
    """Glue every pilot's opening paragraph (``profile_<la_code>``) and the page's counts."""
    d = design()
    for p in d.pilots:
        glue_md(f"profile_{p.la_code}", profile_markdown(p.la_code, design=d))
        glue_md(f"profile_noise_{p.la_code}", robustness.pilot_noise_markdown(p.la_code))
    prim = primary_outcomes(d)
    glue_md("profiles_n_pilots", _words(len(d.pilots)))
    glue_md("profiles_n_primary", _words(len(prim)))
    glue_md("profiles_primary", _join([prose_label(o.label) for o in prim]))
    glue_md("profiles_k", _words(d.matching.k))


def _withheld_years(rows: pd.DataFrame, measure: str) -> list[int]:
    """Years of ``rows`` (one LA) whose child-level ``measure`` is withheld.

    A year is withheld when it is marked ``c`` in ``childlevel_published.csv``;
    empty in public mode.
    """
    path = Path(PROCESSED_DIR) / "childlevel_published.csv"
    if not path.exists() or rows.empty:
        return []

    marks = withheld_marks(rows, _published(Path(PROCESSED_DIR)), measure)
    return sorted(int(y) for y in rows.loc[marks == "c", "year"])


def profile_figure(la_code: str, outcomes: Sequence | None = None, *, panel: pd.DataFrame | None = None,
                   pairs: pd.DataFrame | None = None, design=None, ncols: int = 2) -> Figure:
    """Small multiples of one pilot's series against its comparators' mean, one panel per outcome.

    Like :func:`analysis.book.figures.pilot_profile_plot`, but each panel uses the
    comparators matched *for that outcome* and marks the pilot's first
    treated year *under that outcome's onset* (matching and onset differ by
    outcome). A panel whose outcome leaves the pilot out shows the pilot's
    series alone, with a note.

    Parameters
    ----------
    la_code : str
        The pilot.
    outcomes : sequence of Outcome, optional
        Default: the primary outcomes.
    panel : DataFrame, optional
        The LA-year panel (default ``data/processed/panel.csv``).
    pairs : DataFrame, optional
        ``results/matched_pairs.csv`` (default: read).
    design : StudyDesign, optional
    ncols : int
        Panels per row.

    Returns
    -------
    Figure
        Lines carry ``gid`` ``pilot``, ``comparators`` (the mean) and
        ``comparator:<code>``, ``onset``, for tests.
    """
    d = design or _design()
    panel = processed("panel") if panel is None else panel
    pairs = result("matched_pairs") if pairs is None else pairs
    outcomes = primary_outcomes(d) if outcomes is None else list(outcomes)
    pilot = _pilot(d, la_code)
    if panel[panel["la_code"] == la_code].empty:
        raise ValueError(f"profile_figure: {la_code} is not in the panel")
    # What the figure shows, and nothing else, so that the figure store keys on it
    # (analysis.book.figure_memo): per outcome its id, label, measure, years, the
    # pilot's first treated year and its withheld years; the pilot's and its
    # comparators' rows of those columns; the pilot's pairs.
    shown = [(o.id, o.label, o.measure, o.first_year, o.last_year, d.treated(o).get(la_code))
             for o in outcomes]
    own_pairs = pairs[pairs["treated_code"] == la_code][["treated_code", "comparator_code", "rank", "outcome"]]
    codes = {la_code, *own_pairs["comparator_code"]}
    rows = panel[panel["la_code"].isin(codes)][["la_code", "year", *dict.fromkeys(m for _, _, m, *_ in shown)]]
    own_all = panel[panel["la_code"] == la_code]
    withheld = {oid: _withheld_years(own_all[own_all["year"].between(y0, y1)].sort_values("year"), m)
                for oid, _, m, y0, y1, _ in shown}
    return _profile_figure(la_code, pilot.name, shown, rows, own_pairs, withheld, ncols=ncols)


@memoised
def _profile_figure(la_code: str, name: str, shown: list[tuple], panel: pd.DataFrame, pairs: pd.DataFrame,
                    withheld: dict[str, list[int]], *, ncols: int = 2) -> Figure:
    """:func:`profile_figure` drawn from what it shows (what the figure store keys on).

    ``shown``: per outcome ``(id, label, measure, first year, last year, the
    pilot's first treated year or None)``; ``panel``: the rows of the pilot and
    its comparators; ``pairs``: the pilot's matched pairs; ``withheld``: per
    outcome, the pilot's withheld years (child-level mode).
    """
    n = len(shown)
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    onsets_shown: set[int] = set()
    with F.house_style():
        fig, axes = F._subplots(nrows, ncols, figsize=(F._MAIN_WIDTH, 2.35 * nrows + 0.7), squeeze=False)
        for k, (oid, label, measure, first_year, last_year, first) in enumerate(shown):
            ax = axes[k // ncols][k % ncols]
            years = list(range(first_year, last_year + 1))
            p = panel[panel["year"].isin(years)]
            own = p[p["la_code"] == la_code].sort_values("year")
            comps = matched_comparators(pairs, la_code, oid)
            comp = p[p["la_code"].isin(comps)]
            for c, g in comp.groupby("la_code"):
                g = g.sort_values("year")
                ax.plot(g["year"].to_numpy(int), g[measure].to_numpy(float), color=F.COMPARATOR_COLOUR,
                        alpha=0.35, linewidth=0.8, zorder=1, gid=f"comparator:{c}")
            if comps:
                mean = comp.groupby("year")[measure].mean().reindex(years)
                ax.plot(np.asarray(years), mean.to_numpy(float), gid="comparators",
                        **F.GROUP_STYLES["comparators"])
            ax.plot(own["year"].to_numpy(int), own[measure].to_numpy(float), gid="pilot",
                    **F.GROUP_STYLES["pilots"])
            for yr in withheld[oid]:
                # child-level mode: the pilot's rate is withheld (its count is suppressed)
                ax.text(yr, 0.02, "c", transform=ax.get_xaxis_transform(), ha="center",
                        va="bottom", color=F.DARK_GREY, fontsize=8, gid=f"withheld:{yr}")
            if first is not None:
                ax.axvline(first - 0.5, color=F.DARK_GREY, linestyle=(0, (4, 3)), linewidth=1,
                           zorder=1, gid="onset")
                onsets_shown.add(int(first))
            if own[measure].isna().all() and comp[measure].isna().all():
                ax.text(0.5, 0.5, "no published values", transform=ax.transAxes, ha="center",
                        va="center", color=F.DARK_GREY, fontsize=8)
            title = F._wrap(label, 46)
            if not comps:
                title += "\n(not in this outcome's analysis: no comparators)"
            ax.set_title(title, loc="left", fontsize=9)
            ax.set_xticks(years[::2])
            ax.set_xlim(years[0] - 0.5, years[-1] + 0.5)
            ax.tick_params(axis="x", labelsize=8)
        for k in range(n, nrows * ncols):
            axes[k // ncols][k % ncols].set_visible(False)
        for c in range(ncols):
            col = [k for k in range(n) if k % ncols == c]
            if col:
                axes[col[-1] // ncols][c].set_xlabel(F.YEAR_LABEL, fontsize=8.5)
        handles = [Line2D([], [], label=name, **F.GROUP_STYLES["pilots"]),
                   Line2D([], [], label="Mean of its matched comparators for the outcome",
                          **F.GROUP_STYLES["comparators"]),
                   Line2D([], [], color=F.COMPARATOR_COLOUR, alpha=0.35, linewidth=0.8,
                          label="Each comparator")]
        if onsets_shown:
            years_txt = " or ".join(str(y) for y in sorted(onsets_shown))
            handles.append(Line2D([], [], color=F.DARK_GREY, linestyle=(0, (4, 3)), linewidth=1,
                                  label=f"Treatment starts ({years_txt})"))
        fig.legend(handles=handles, loc="upper left", ncols=2, bbox_to_anchor=(0.0, 1.0),
                   borderaxespad=0.2)
        fig.tight_layout(rect=(0, 0, 1, 1 - 0.6 / fig.get_figheight()))
    return fig


# --------------------------------------------------------------------------- rebuild guide

def make_variables(path: Path = MAKEFILE_PATH) -> dict[str, str]:
    """Simple variable assignments of the Makefile (``PY := .venv/bin/python``)."""
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^([A-Z][A-Z0-9_]*)\s*:?=\s*(.*)$", line)
        if m:
            out[m.group(1)] = m.group(2).strip()
    return out


def make_targets(path: Path = MAKEFILE_PATH) -> dict[str, list[str]]:
    """Recipes of the Makefile: ``{target: [command, ...]}``.

    Recipe lines lose their ``@`` prefix; lines continued with a backslash
    are joined; ``$(VAR)`` of simple assignments (and ``$(MAKE)``) is
    expanded. Only named targets with a recipe are returned, in file order
    (``$(STAMP)`` and other variable targets are skipped).
    """
    return {t: cmds for t, (cmds, _) in _parse_makefile(path).items() if cmds}


def make_target_comments(path: Path = MAKEFILE_PATH) -> dict[str, str]:
    """The comment block written just above each target, joined into one line (may be empty)."""
    return {t: note for t, (_, note) in _parse_makefile(path).items()}


def _parse_makefile(path: Path) -> dict[str, tuple[list[str], str]]:
    variables = {"MAKE": "make", **make_variables(path)}
    targets: dict[str, tuple[list[str], str]] = {}
    current: str | None = None
    pending = ""
    comment: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("\t"):
            if current is None:
                continue
            cmd = pending + line.strip()
            if cmd.endswith("\\"):
                pending = cmd[:-1].rstrip() + " "
                continue
            pending = ""
            cmd = cmd.lstrip("@").strip()
            cmd = re.sub(r"\$\((\w+)\)", lambda m: variables.get(m.group(1), m.group(0)), cmd)
            if cmd:
                targets[current][0].append(re.sub(r"\s+", " ", cmd))
            continue
        pending = ""
        if line.startswith("#"):
            comment.append(line.lstrip("#").strip())
            continue
        m = re.match(r"^([A-Za-z][\w-]*)\s*:(?!=)", line)
        current = m.group(1) if m else None
        if current is not None:
            targets[current] = ([], " ".join(c for c in comment if c))
        if line.strip() or current is not None:
            comment = []
    return targets


def make_targets_table(targets: Sequence[str] = ("report", "test", "pdf", "site-check", "publish",
                                                 "fetch", "data", "results")) -> pd.DataFrame:
    """The Makefile targets a reader uses, with what each runs (read from the Makefile).

    Returns
    -------
    DataFrame
        ``Command`` (``make <target>``), ``Runs`` (its recipe, one ``<code>``
        line per command, as HTML) and ``Notes`` (the Makefile's comment above
        the target, if any); targets absent from the Makefile are left out.
    """
    recipes = make_targets()
    comments = make_target_comments()
    rows = [{"Command": f"<code>make {t}</code>",
             "Runs": "<br>".join(f"<code>{html.escape(c)}</code>" for c in recipes[t]),
             "Notes": re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(comments.get(t, "")))}
            for t in targets if t in recipes]
    table = pd.DataFrame(rows, columns=["Command", "Runs", "Notes"])
    return table if table["Notes"].astype(bool).any() else table.drop(columns="Notes")


def make_targets_styler(table: pd.DataFrame):
    """:func:`make_targets_table` for the page: cells aligned at the top, commands not split."""
    return (table.style.hide(axis="index")
            .set_properties(**{"vertical-align": "top"})
            .set_properties(subset=["Command"], **{"white-space": "nowrap"}))


def glue_rebuild() -> None:
    """Glue the rebuild guide's facts read from the project files (Python version, manifest size)."""
    import tomllib


    meta = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    requires = meta.get("project", {}).get("requires-python", "")
    m = re.search(r">=\s*([\d.]+)", requires)
    glue_md("rebuild_python", f"Python {m.group(1)} or later" if m else "Python 3")
    glue_md("rebuild_n_files", f"{len(load_manifest()):,}")


def cli_commands_table() -> pd.DataFrame:
    """Sub-commands of ``python -m analysis`` with their help text, read from its parser.

    Returns
    -------
    DataFrame
        ``Command`` (``python -m analysis <name>``) and ``What it does``, in
        the parser's order.
    """
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {a.dest: a.help or "" for a in sub._choices_actions}
    return pd.DataFrame([{"Command": f"python -m analysis {name}", "What it does": helps.get(name, "")}
                         for name in sub.choices], columns=["Command", "What it does"])


def cli_commands_styler(table: pd.DataFrame):
    """:func:`cli_commands_table` for the page: commands in code font, on one line."""
    out = table.assign(Command=[f"<code>{html.escape(c)}</code>" for c in table["Command"]],
                       **{"What it does": [html.escape(h) for h in table["What it does"]]})
    return (out.style.hide(axis="index")
            .set_properties(**{"vertical-align": "top"})
            .set_properties(subset=["Command"], **{"white-space": "nowrap"}))


def cli_options_table(command: str = "estimate") -> pd.DataFrame:
    """Options of a ``python -m analysis`` sub-command, read from its argparse parser.

    Parameters
    ----------
    command : str
        Sub-command name (``estimate``, ``data``, ``results``, ``fetch``).

    Returns
    -------
    DataFrame
        ``Option`` (flags and metavar), ``Required`` (yes/no), ``Meaning``
        (the help text, with argparse's ``%(default)s`` expanded).
    """
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    p = sub.choices[command]
    rows = []
    for a in p._actions:
        if isinstance(a, argparse._HelpAction):
            continue
        if a.option_strings:
            flag = ", ".join(a.option_strings)
            if a.nargs != 0:
                flag += f" {a.metavar or a.dest.upper()}"
        else:
            flag = a.metavar or a.dest
        text = (a.help or "") % {"default": a.default} if a.help else ""
        if a.choices:
            text += f" (one of: {', '.join(map(str, a.choices))})"
        rows.append({"Option": flag, "Required": "yes" if (a.required or not a.option_strings) else "no",
                     "Meaning": text})
    return pd.DataFrame(rows, columns=["Option", "Required", "Meaning"])


def cli_options_styler(table: pd.DataFrame):
    """:func:`cli_options_table` for the page: options in code font, kept on one line."""
    out = table.assign(Option=[f"<code>{html.escape(o)}</code>" for o in table["Option"]],
                       Meaning=[html.escape(m) for m in table["Meaning"]])
    return (out.style.hide(axis="index")
            .set_properties(**{"vertical-align": "top"})
            .set_properties(subset=["Option"], **{"white-space": "nowrap"}))
