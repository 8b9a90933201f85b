"""Editions of the report: the published reference edition, what changed since it, data updates.

- :func:`publish` (``make publish``, ``python -m analysis publish``) copies the
  current ``results/estimates.csv`` and ``results/evidence.csv`` into
  ``results/published/`` with ``edition.json``: the publication date, when the
  results were computed, every manifest entry's id, release, release date and
  sha256, and the years each measure covers in the panel. That folder is
  committed: it is the reference edition.
- :func:`compare` sets the current data, panel coverage and results against the
  published edition: data files changed, added or removed (old and new release
  and sha256), years added or removed per measure, outcomes whose headline
  estimate, interval or evidence grade changed (old and new side by side), and
  how many of the other estimates moved. Numbers are equal within
  :data:`TOLERANCE` (relative, floor one), so float noise is not a change.
- :func:`glue_changes` glues that comparison into the book's *What changed in
  this edition* page (``chapters/changes.md``).
- :func:`check_updates` (``python -m analysis check-update``) reports, for each
  manifest entry, whether the file in the mirror (``$SOS_DATA_MIRROR``) or at
  its URL differs from the recorded sha256: ``same``, ``changed``, ``missing``
  or ``unreachable``.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.core.errors import DataError
from analysis.core.paths import PROCESSED_DIR, PUBLISHED_DIR, RESULTS_DIR
from analysis.ingest.sources import load_manifest, rewrite_url, sha256_of

EDITION_FILES = ("estimates.csv", "evidence.csv")
EDITION_JSON = "edition.json"
#: Two numbers are the same when they differ by at most this, relative to the
#: larger of one and their size (the CSVs carry ten significant digits).
TOLERANCE = 1e-6
ESTIMATE_KEYS = ["outcome", "specification", "estimator", "inference"]
HEADLINE = {"estimate": "estimate", "interval": ("ci_low", "ci_high"), "evidence grade": "grade"}
GRADE_WORDS = {"no": "no evidence", "low": "low strength evidence",
               "moderate": "moderate strength evidence", "high": "high strength evidence"}


# --------------------------------------------------------------------------- publish
def _coverage(processed_dir: Path) -> dict[str, dict[str, Any]]:
    """``{measure: {label, years}}``: the years in which any LA has a value."""
    processed_dir = Path(processed_dir)
    cov_path, meas_path = processed_dir / "coverage.csv", processed_dir / "measures.csv"
    if not cov_path.exists():
        return {}
    cov = pd.read_csv(cov_path)
    labels = (pd.read_csv(meas_path).set_index("name")["label"].to_dict()
              if meas_path.exists() else {})
    out = {}
    for measure, g in cov.groupby("measure", sort=False):
        years = sorted(int(y) for y in g.loc[g["las_with_value"] > 0, "year"])
        out[str(measure)] = {"label": str(labels.get(measure, measure)), "years": years}
    return out


def _manifest_rows() -> list[dict[str, str]]:

    return [dict(id=s.id, title=s.title, release=s.release, release_date=s.release_date,
                 sha256=s.sha256, path=s.path) for s in load_manifest().values()]


def publish(results_dir: Path | None = None, processed_dir: Path | None = None,
            published_dir: Path | None = None, *, today: dt.date | None = None) -> Path:
    """Promote the current results to the published edition; returns its folder.

    The new edition is written to a temporary folder beside the old one and
    swapped in only when complete.
    """
    results_dir = Path(results_dir or RESULTS_DIR)
    processed_dir = Path(processed_dir or PROCESSED_DIR)
    published_dir = Path(published_dir or PUBLISHED_DIR)

    for name in EDITION_FILES:
        if not (results_dir / name).exists():
            raise DataError("no results to publish: run `python -m analysis results`",
                            file=str(results_dir / name))
    stamp = {}
    try:
        stamp = json.loads((results_dir / ".key").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass
    edition = {
        "published": (today or dt.date.today()).isoformat(),
        "results_built": stamp.get("built", ""),
        "results_key": stamp.get("key", ""),
        "files": list(EDITION_FILES),
        "sources": _manifest_rows(),
        "coverage": _coverage(processed_dir),
    }
    published_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".published-", dir=published_dir.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; the edition is committed and served
    try:
        for name in EDITION_FILES:
            shutil.copyfile(results_dir / name, tmp / name)
        (tmp / EDITION_JSON).write_text(json.dumps(edition, indent=1) + "\n", encoding="utf-8")
        old = published_dir.with_name(published_dir.name + ".old")
        if old.exists():
            shutil.rmtree(old)
        if published_dir.exists():
            os.replace(published_dir, old)
        os.replace(tmp, published_dir)
        if old.exists():
            shutil.rmtree(old)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return published_dir


@dataclass
class Edition:
    """A published edition as read back: its metadata and its two tables."""

    meta: dict[str, Any]
    estimates: pd.DataFrame
    evidence: pd.DataFrame

    @property
    def date(self) -> str:
        """The edition's publication date (``published`` in its metadata; ``""`` when absent)."""
        return self.meta.get("published", "")


def load_edition(published_dir: Path | None = None) -> Edition | None:
    """The published edition, or None when none has been published."""
    d = Path(published_dir or PUBLISHED_DIR)
    if not (d / EDITION_JSON).exists():
        return None
    meta = json.loads((d / EDITION_JSON).read_text(encoding="utf-8"))
    return Edition(meta, pd.read_csv(d / "estimates.csv"), pd.read_csv(d / "evidence.csv"))


# --------------------------------------------------------------------------- compare
def same_number(a: Any, b: Any, tol: float = TOLERANCE) -> bool:
    """Equal within ``tol`` (relative, floor one); two missing values are equal."""
    try:
        a, b = float(a), float(b)
    except (TypeError, ValueError):
        return a == b
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= tol * max(1.0, abs(a), abs(b))


@dataclass
class Changes:
    """What differs between the current edition and the published one."""

    edition: Edition | None
    files: pd.DataFrame = field(default_factory=pd.DataFrame)
    years: pd.DataFrame = field(default_factory=pd.DataFrame)
    outcomes: pd.DataFrame = field(default_factory=pd.DataFrame)
    estimates: pd.DataFrame = field(default_factory=pd.DataFrame)
    labels: dict[str, str] = field(default_factory=dict)  # outcome id -> label

    @property
    def published(self) -> bool:
        """Whether there is a published edition to compare with."""
        return self.edition is not None

    @property
    def none(self) -> bool:
        """True when nothing changed (and an edition exists to compare with)."""
        return (self.published and self.files.empty and self.years.empty
                and self.outcomes.empty and self.estimates.empty)

    @property
    def changed_files(self) -> list[str]:
        """Manifest ids of the data files that changed."""
        return [] if self.files.empty else self.files["id"].tolist()

    @property
    def changed_outcomes(self) -> list[str]:
        """Ids of the outcomes that changed."""
        return [] if self.outcomes.empty else self.outcomes["outcome"].tolist()


def _compare_files(old: list[dict], new: list[dict]) -> pd.DataFrame:
    o, n = {r["id"]: r for r in old}, {r["id"]: r for r in new}
    rows = []
    for sid in [*n, *[k for k in o if k not in n]]:
        a, b = o.get(sid), n.get(sid)
        if a is not None and b is not None and a.get("sha256") == b.get("sha256"):
            continue
        status = "new" if a is None else "removed" if b is None else "changed"
        rows.append(dict(id=sid, title=(b or a).get("title", ""), status=status,
                         old_release=(a or {}).get("release", ""), new_release=(b or {}).get("release", ""),
                         old_release_date=(a or {}).get("release_date", ""),
                         new_release_date=(b or {}).get("release_date", ""),
                         old_sha256=(a or {}).get("sha256", ""), new_sha256=(b or {}).get("sha256", "")))
    return pd.DataFrame(rows, columns=["id", "title", "status", "old_release", "new_release",
                                       "old_release_date", "new_release_date", "old_sha256", "new_sha256"])


def _compare_years(old: dict, new: dict) -> pd.DataFrame:
    rows = []
    for m in [*new, *[k for k in old if k not in new]]:
        a = set((old.get(m) or {}).get("years", []))
        b = set((new.get(m) or {}).get("years", []))
        if a == b:
            continue
        rows.append(dict(measure=m, label=(new.get(m) or old.get(m) or {}).get("label", m),
                         added=sorted(b - a), removed=sorted(a - b)))
    return pd.DataFrame(rows, columns=["measure", "label", "added", "removed"])


def _compare_outcomes(old: pd.DataFrame, new: pd.DataFrame, tol: float) -> pd.DataFrame:
    o, n = old.set_index("outcome"), new.set_index("outcome")
    rows = []
    for oc in [*n.index, *[k for k in o.index if k not in n.index]]:
        a = o.loc[oc] if oc in o.index else None
        b = n.loc[oc] if oc in n.index else None
        if a is None or b is None:
            what = ["new outcome"] if a is None else ["outcome removed"]
        else:
            what = []
            if not same_number(a["estimate"], b["estimate"], tol):
                what.append("estimate")
            if not (same_number(a["ci_low"], b["ci_low"], tol) and same_number(a["ci_high"], b["ci_high"], tol)):
                what.append("interval")
            if a["grade"] != b["grade"]:
                what.append("evidence grade")
        if not what:
            continue
        get = lambda r, c: (r[c] if r is not None else math.nan)  # noqa: E731
        rows.append(dict(outcome=oc, label=(b if b is not None else a)["label"], changed=what,
                         measure=(b if b is not None else a)["measure"],
                         old_estimate=get(a, "estimate"), new_estimate=get(b, "estimate"),
                         old_ci_low=get(a, "ci_low"), old_ci_high=get(a, "ci_high"),
                         new_ci_low=get(b, "ci_low"), new_ci_high=get(b, "ci_high"),
                         old_grade=get(a, "grade") if a is not None else "",
                         new_grade=get(b, "grade") if b is not None else ""))
    return pd.DataFrame(rows, columns=["outcome", "label", "changed", "measure", "old_estimate",
                                       "new_estimate", "old_ci_low", "old_ci_high", "new_ci_low",
                                       "new_ci_high", "old_grade", "new_grade"])


def _compare_estimates(old: pd.DataFrame, new: pd.DataFrame, tol: float) -> pd.DataFrame:
    """Per outcome: estimates (every specification and inference) changed, added, removed."""
    keys = ESTIMATE_KEYS
    m = old.merge(new, on=keys, how="outer", suffixes=("_old", "_new"), indicator=True)
    values = [c for c in new.columns if c not in keys and c in old.columns]
    changed = pd.Series(False, index=m.index)
    both = m["_merge"] == "both"
    for c in values:
        a, b = m[f"{c}_old"], m[f"{c}_new"]
        if pd.api.types.is_numeric_dtype(a) and pd.api.types.is_numeric_dtype(b):
            diff = [not same_number(x, y, tol) for x, y in zip(a, b)]
        else:
            diff = [not (x == y or (pd.isna(x) and pd.isna(y))) for x, y in zip(a, b)]
        changed |= pd.Series(diff, index=m.index)
    m["changed"] = changed & both
    m["added"] = m["_merge"] == "right_only"
    m["removed"] = m["_merge"] == "left_only"
    g = m.groupby("outcome", sort=False).agg(total=("changed", "size"), changed=("changed", "sum"),
                                             added=("added", "sum"), removed=("removed", "sum"))
    g = g.astype(int).reset_index()
    return g[(g["changed"] > 0) | (g["added"] > 0) | (g["removed"] > 0)].reset_index(drop=True)


def compare(results_dir: Path | None = None, processed_dir: Path | None = None,
            published_dir: Path | None = None, *, tol: float = TOLERANCE) -> Changes:
    """The current data and results against the published edition."""
    results_dir = Path(results_dir or RESULTS_DIR)
    processed_dir = Path(processed_dir or PROCESSED_DIR)
    edition = load_edition(published_dir)
    if edition is None:
        return Changes(edition=None)
    est = pd.read_csv(results_dir / "estimates.csv")
    ev = pd.read_csv(results_dir / "evidence.csv")
    return Changes(
        edition=edition,
        files=_compare_files(edition.meta.get("sources", []), _manifest_rows()),
        years=_compare_years(edition.meta.get("coverage", {}), _coverage(processed_dir)),
        outcomes=_compare_outcomes(edition.evidence, ev, tol),
        estimates=_compare_estimates(edition.estimates, est, tol),
        labels={**dict(zip(edition.evidence["outcome"], edition.evidence["label"])),
                **dict(zip(ev["outcome"], ev["label"]))},
    )


# --------------------------------------------------------------------------- the page
def long_date(iso: str) -> str:
    """'2026-04-01' -> '1 April 2026' (as DfE writes dates)."""
    try:
        d = dt.date.fromisoformat(iso[:10])
    except ValueError:
        return iso
    return f"{d.day} {d.strftime('%B')} {d.year}"


def _num(x: float, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:+.{digits}f}".replace("-", "−")


def _pair_digits(*pairs: tuple[float, float]) -> int:
    """Fewest decimals (at least two) at which each changed pair shows a difference."""
    for d in (2, 3, 4, 6, 8):
        if all(_num(a, d) != _num(b, d) or same_number(a, b) for a, b in pairs):
            return d
    return 8


def _interval(lo: float, hi: float, digits: int) -> str:
    if any(isinstance(v, float) and math.isnan(v) for v in (lo, hi)):
        return "–"
    return f"{_num(lo, digits).lstrip('+')} to {_num(hi, digits).lstrip('+')}"


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown_table(df: pd.DataFrame) -> str:
    """``df`` as a Markdown pipe table (``|`` escaped, newlines flattened; no index)."""
    head = "| " + " | ".join(_cell(c) for c in df.columns) + " |"
    rule = "|" + "|".join(" --- " for _ in df.columns) + "|"
    body = ["| " + " | ".join(_cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def _years_text(years: list[int]) -> str:
    if not years:
        return "–"
    parts, start, prev = [], years[0], years[0]
    for y in [*years[1:], None]:
        if y is not None and y == prev + 1:
            prev = y
            continue
        parts.append(f"{start}–{prev}" if prev != start else f"{start}")
        if y is not None:
            start = prev = y
    return ", ".join(parts)


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def render(changes: Changes) -> dict[str, str]:
    """The page's generated Markdown, by glue key: summary, files, years, outcomes, estimates."""
    if not changes.published:
        text = ("No edition of this report has been published yet, so there is nothing to compare "
                "this one with. When the authors publish an edition, the next rebuild lists here every "
                "data file, year and result that changed since it.")
        return {"changes_summary": text, "changes_files": "Not applicable: no published edition.",
                "changes_years": "Not applicable: no published edition.",
                "changes_outcomes": "Not applicable: no published edition.",
                "changes_estimates": ""}
    date = long_date(changes.edition.date)
    out: dict[str, str] = {}
    n_est = 0 if changes.estimates.empty else int(changes.estimates["changed"].sum()
                                                   + changes.estimates["added"].sum()
                                                   + changes.estimates["removed"].sum())
    if changes.none:
        out["changes_summary"] = (f"No change since the published edition of {date}: the data files "
                                  "are the same, and so is every estimate, interval and evidence grade.")
    else:
        bits = []
        if not changes.files.empty:
            bits.append(_plural(len(changes.files), "data file") + " changed")
        if not changes.years.empty:
            bits.append(f"the years covered changed for {_plural(len(changes.years), 'measure')}")
        if not changes.outcomes.empty:
            bits.append(f"{_plural(len(changes.outcomes), 'outcome')} "
                        f"{'has' if len(changes.outcomes) == 1 else 'have'} a different headline "
                        "estimate, interval or evidence grade")
        elif n_est:
            bits.append("no headline result changed")
        if n_est:
            bits.append(f"{_plural(n_est, 'estimate')} in all changed, added or removed")
        out["changes_summary"] = (f"Compared with the published edition of {date}: "
                                  + "; ".join(bits) + ".")
    # data files
    if changes.files.empty:
        out["changes_files"] = f"No data file has changed since the edition of {date}."
    else:
        f = changes.files
        out["changes_files"] = markdown_table(pd.DataFrame({
            "File (manifest id)": [f"{t} (`{i}`)" for t, i in zip(f["title"], f["id"])],
            "Change": f["status"],
            "Published edition: release": [f"{r} ({d})" if r else "–"
                                           for r, d in zip(f["old_release"], f["old_release_date"])],
            "This edition: release": [f"{r} ({d})" if r else "–"
                                      for r, d in zip(f["new_release"], f["new_release_date"])],
            "sha256 (first 12), published → now": [f"`{a[:12] or '–'}` → `{b[:12] or '–'}`"
                                                   for a, b in zip(f["old_sha256"], f["new_sha256"])],
        }))
    # years
    if changes.years.empty:
        out["changes_years"] = "Every measure covers the same years as in the published edition."
    else:
        y = changes.years
        out["changes_years"] = markdown_table(pd.DataFrame({
            "Measure": [f"{lab} (`{m}`)" for lab, m in zip(y["label"], y["measure"])],
            "Years added": [_years_text(v) for v in y["added"]],
            "Years no longer covered": [_years_text(v) for v in y["removed"]],
        }))
    # outcomes
    if changes.outcomes.empty:
        out["changes_outcomes"] = ("No outcome's headline estimate, interval or evidence grade has "
                                   "changed.")
    else:
        o = changes.outcomes
        rows = []
        for r in o.itertuples(index=False):
            d = _pair_digits((r.old_estimate, r.new_estimate), (r.old_ci_low, r.new_ci_low),
                             (r.old_ci_high, r.new_ci_high))
            rows.append({"Outcome": r.label, "What changed": ", ".join(r.changed),
                         "Estimate, published": _num(r.old_estimate, d),
                         "Estimate, now": _num(r.new_estimate, d),
                         "95% interval, published": _interval(r.old_ci_low, r.old_ci_high, d),
                         "95% interval, now": _interval(r.new_ci_low, r.new_ci_high, d),
                         "Evidence, published": GRADE_WORDS.get(r.old_grade, r.old_grade or "–"),
                         "Evidence, now": GRADE_WORDS.get(r.new_grade, r.new_grade or "–")})
        out["changes_outcomes"] = markdown_table(pd.DataFrame(rows))
    # all estimates
    if n_est == 0:
        out["changes_estimates"] = ("No other estimate (sensitivity analyses, other estimators and "
                                    "inference methods) has changed either.")
    else:
        e = changes.estimates
        labels = changes.labels
        out["changes_estimates"] = (
            "Across every specification, estimator and inference method, the estimates that changed:\n\n"
            + markdown_table(pd.DataFrame({
                "Outcome": [labels.get(x, x) for x in e["outcome"]],
                "Estimates": e["total"], "Changed": e["changed"], "New": e["added"],
                "No longer estimated": e["removed"]})))
    return out


# --------------------------------------------------------------------------- check-update
def latest_url(src) -> str:
    """Where the newest version of a source is.

    For a GitHub raw URL pinned to a commit, the same path on the repository's
    default branch (``HEAD``); else the URL itself.
    """
    m = re.match(r"^(https://raw\.githubusercontent\.com/[^/]+/[^/]+/)[0-9a-f]{40}(/.*)$", src.url)
    return f"{m.group(1)}HEAD{m.group(2)}" if m else src.url


def check_updates(mirror: str | os.PathLike | None = None, *, use_url: bool | None = None,
                  timeout: float = 30.0) -> pd.DataFrame:
    """For each manifest entry, whether the file in the mirror (or at its URL) is the one recorded.

    ``status`` is ``same``, ``changed`` (different sha256), ``missing`` (not in
    the mirror) or ``unreachable`` (the download failed). With a mirror
    (argument or ``$SOS_DATA_MIRROR``) only the mirror is read; otherwise each
    file is downloaded to a temporary file (``latest_url``).
    """
    mirror = mirror if mirror is not None else os.environ.get("SOS_DATA_MIRROR")
    use_url = (not mirror) if use_url is None else use_url
    rows = []
    for sid, src in load_manifest().items():
        found, where = "", ""
        if not use_url:
            path = Path(mirror) / src.path
            where = str(path)
            if not path.exists():
                status = "missing"
            else:
                found = sha256_of(path)
                status = "same" if found == src.sha256 else "changed"
        else:
            url = rewrite_url(latest_url(src), os.environ.get("SOS_DATA_BASE_URL"))
            where = url
            fd, tmp = tempfile.mkstemp(prefix="sos-check-")
            os.close(fd)
            try:
                with urllib.request.urlopen(url, timeout=timeout) as resp, open(tmp, "wb") as fh:
                    shutil.copyfileobj(resp, fh, 1 << 20)
                found = sha256_of(Path(tmp))
                status = "same" if found == src.sha256 else "changed"
            except Exception:  # network, HTTP or TLS error: one word for the table
                status = "unreachable"
            finally:
                os.unlink(tmp)
        rows.append(dict(id=sid, status=status, recorded=src.sha256[:12], found=found[:12],
                         where=where))
    return pd.DataFrame(rows, columns=["id", "status", "recorded", "found", "where"])
