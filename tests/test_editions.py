"""Editions: a simulated data update end to end, the change log, check-update.

The update tests rebuild the panel and the results (two outcomes, for speed)
from scratch copies of the data: a mirror of symbolic links to the verified
real files, a manifest copy and an empty cache, all in a temporary folder and
named through ``SOS_DATA_MIRROR``, ``SOS_DATA_MANIFEST`` and ``SOS_DATA_CACHE``,
so ``data/raw``, ``data/processed`` and ``results/`` are never touched.

Two updates are simulated against a published baseline edition:

- **one value**: Brent's 2015 re-referral percentage in the C1 file (the
  year Brent, a wave-one pilot, was first treated; C1 is the release used for
  that year) is changed, and the manifest copy records the new sha256;
- **latest year removed**: every 2025 row is dropped from the LAIT 2025
  parquet, the newest release of most measures. For re-referrals the C1 file
  still publishes 2025 (with the same values), so only the measures that LAIT
  alone publishes lose their latest year.
"""
from __future__ import annotations

import csv
import http.server
import io
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pandas as pd
import pytest

from analysis.ingest.sources import MANIFEST_COLUMNS, load_manifest, sha256_of
from analysis.run import build, editions

ROOT = Path(__file__).resolve().parent.parent
OUTCOMES = ["assessment_timeliness", "rereferrals"]
#: The editions' mechanics (keys, comparison, publish) need a few specifications, not all.
SPECIFICATIONS = ["main", "k1", "leave_one_out", "no_covid"]
BRENT = "E09000005"
C1, LAIT = "cin_c1", "lait_2025"


# --------------------------------------------------------------------------- helpers
def write_manifest(path: Path, sources: dict, changes: dict[str, Path] | None = None) -> Path:
    """A manifest copy; ``changes`` gives, per id, the new file whose sha256 and size it records."""
    changes = changes or {}
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=MANIFEST_COLUMNS)
        w.writeheader()
        for sid, s in sources.items():
            row = {c: getattr(s, c) for c in MANIFEST_COLUMNS}
            if sid in changes:
                row.update(sha256=sha256_of(changes[sid]), bytes=changes[sid].stat().st_size)
            w.writerow(row)
    return path


def scratch_mirror(folder: Path, originals: dict[str, Path], sources: dict,
                   replace: dict[str, Path] | None = None) -> Path:
    """A mirror of links to the verified originals, with some files replaced."""
    replace = replace or {}
    for sid, s in sources.items():
        dest = folder / s.path
        dest.parent.mkdir(parents=True, exist_ok=True)
        if sid in replace:
            shutil.copyfile(replace[sid], dest)
        else:
            dest.symlink_to(originals[sid])
    return folder


def edit_c1_value(src: Path, dest: Path, la_code: str, year: int, column: str, value: str) -> str:
    """Copy the C1 CSV with one cell changed; returns the old value."""
    text = src.read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(text)))
    head = rows[0]
    i_year, i_code, i_level, i_col = (head.index("time_period"), head.index("new_la_code"),
                                      head.index("geographic_level"), head.index(column))
    hits = [r for r in rows[1:] if r and r[i_year] == str(year) and r[i_code] == la_code
            and r[i_level] == "Local authority"]
    assert len(hits) == 1, hits
    old = hits[0][i_col]
    hits[0][i_col] = value
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    dest.write_text(out.getvalue(), encoding="utf-8")
    return old


def drop_lait_year(src: Path, dest: Path, year: str) -> int:
    """Copy the LAIT parquet without the rows of ``year``; returns how many were dropped."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(src)
    keep = pc.not_equal(table["Years"], year)
    out = table.filter(keep)
    pq.write_table(out, dest)
    return table.num_rows - out.num_rows


class Scratch:
    """Isolated data for one edition: manifest, mirror, cache and output folders."""

    def __init__(self, root: Path, runs: Path | None = None) -> None:
        self.root = root
        self.runs = runs
        self.manifest = root / "manifest.csv"
        self.mirror = root / "mirror"
        self.cache = root / "cache"
        self.processed = root / "processed"
        self.results = root / "results"

    def env(self) -> dict[str, str]:
        return {"SOS_DATA_MANIFEST": str(self.manifest), "SOS_DATA_MIRROR": str(self.mirror),
                "SOS_DATA_CACHE": str(self.cache)}

    def rebuild(self) -> tuple[bool, bool]:
        """data -> results (two outcomes) under this scratch environment; returns what was built.

        The results step starts from a copy of ``runs``, the baseline's run cache (when
        given), as an update does in place: the runs whose inputs the update leaves
        unchanged come from it, the others are computed.
        """
        if self.runs is not None and not (self.results / build.KEY_FILE).exists():
            shutil.copytree(self.runs, self.results / ".runs", dirs_exist_ok=True)
        self.messages: list[str] = []
        with _env(self.env()):
            built_panel, _ = build.ensure_panel(out_dir=self.processed, echo=lambda *a: None)
            built_results, _ = build.ensure_results(
                panel_dir=self.processed, out_dir=self.results, outcomes=OUTCOMES, workers=2,
                progress=False, echo=self.messages.append, specifications=SPECIFICATIONS)
        return built_panel, built_results

    def computed(self) -> tuple[int, int]:
        """(runs from the run cache, runs computed) in the last results step."""
        for m in self.messages:
            found = re.fullmatch(r"(\d+) of (\d+) runs unchanged \(from the run cache\), (\d+) computed", m)
            if found:
                return int(found[1]), int(found[3])
        raise AssertionError(f"no run-cache line in {self.messages}")

    def compare(self, published: Path) -> editions.Changes:
        with _env(self.env()):
            return editions.compare(self.results, self.processed, published)


class _env:
    def __init__(self, values: dict[str, str]) -> None:
        self.values, self.saved = values, {}

    def __enter__(self):
        for k, v in self.values.items():
            self.saved[k] = os.environ.get(k)
            os.environ[k] = v

    def __exit__(self, *exc):
        for k, v in self.saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="module")
def originals(real_source):
    """``{id: verified path}`` of every real source file, and the real manifest."""
    sources = load_manifest(build.DATA_DIR / "manifest.csv")
    return {sid: real_source(sid) for sid in sources}, sources


@pytest.fixture(scope="module")
def baseline(tmp_path_factory, originals):
    """The baseline edition: built from the real files and published into ``published/``.

    Its results step computes every run; the updates start from its run cache.
    """
    paths, sources = originals
    root = tmp_path_factory.mktemp("baseline")
    s = Scratch(root)
    write_manifest(s.manifest, sources)
    scratch_mirror(s.mirror, paths, sources)
    assert s.rebuild() == (True, True)
    s.first_counts = cached, computed = s.computed()
    assert cached == 0 and computed > 0
    published = root / "published"
    with _env(s.env()):
        editions.publish(s.results, s.processed, published)
    return s, published


def updated(tmp_path_factory, originals, name: str, replace: dict[str, Path], runs: Path) -> Scratch:
    paths, sources = originals
    s = Scratch(tmp_path_factory.mktemp(name), runs)
    write_manifest(s.manifest, sources, replace)
    scratch_mirror(s.mirror, paths, sources, replace)
    assert s.rebuild() == (True, True)
    return s


def estimates(s: Scratch) -> pd.DataFrame:
    return pd.read_csv(s.results / "estimates.csv")


def by_outcome(df: pd.DataFrame, outcome: str) -> pd.DataFrame:
    return df[df["outcome"] == outcome].reset_index(drop=True)


# --------------------------------------------------------------------------- the update tests
@pytest.mark.slow
@pytest.mark.integration
def test_baseline_has_no_changes_and_rebuild_is_skipped(baseline):
    s, published = baseline
    assert s.rebuild() == (False, False)  # same inputs: neither step runs again
    changes = s.compare(published)
    assert changes.none
    text = editions.render(changes)
    assert text["changes_summary"].startswith("No change since the published edition of")
    assert editions.long_date(changes.edition.date) in text["changes_summary"]


@pytest.mark.slow
@pytest.mark.integration
def test_one_value_changed(tmp_path_factory, originals, baseline):
    base, published = baseline
    paths, _ = originals
    work = tmp_path_factory.mktemp("edit")
    c1 = work / "c1.csv"
    old = edit_c1_value(paths[C1], c1, BRENT, 2015, "rereferral_percent", "35.5")
    assert old and old != "35.5"
    s = updated(tmp_path_factory, originals, "one_value", {C1: c1}, base.results / ".runs")
    # the runs of re-referrals are computed again; those of assessment timeliness are not
    cached, computed = s.computed()
    assert 0 < computed < cached + computed == base.first_counts[1]

    # the panel: exactly one value differs
    p0 = pd.read_csv(base.processed / "panel.csv").set_index(["la_code", "year"]).sort_index()
    p1 = pd.read_csv(s.processed / "panel.csv").set_index(["la_code", "year"]).sort_index()
    diff = (p0 != p1) & ~(p0.isna() & p1.isna())
    assert diff.to_numpy().sum() == 1
    assert diff.loc[(BRENT, 2015), "rereferral_pct"]

    # the estimates: re-referrals moved, assessment timeliness (LAIT only) did not
    e0, e1 = estimates(base), estimates(s)
    assert not by_outcome(e0, "rereferrals").equals(by_outcome(e1, "rereferrals"))
    pd.testing.assert_frame_equal(by_outcome(e0, "assessment_timeliness"),
                                  by_outcome(e1, "assessment_timeliness"))

    # the change log names exactly that file and that outcome
    changes = s.compare(published)
    assert changes.changed_files == [C1]
    assert changes.files.iloc[0]["status"] == "changed"
    assert changes.years.empty
    assert changes.changed_outcomes == ["rereferrals"]
    assert set(changes.estimates["outcome"]) == {"rereferrals"}
    row = changes.outcomes.iloc[0]
    assert "estimate" in row["changed"]
    page = editions.render(changes)
    assert f"`{C1}`" in page["changes_files"] and "`lait_2025`" not in page["changes_files"]
    label = row["label"]
    assert label in page["changes_outcomes"]
    assert "Assessments completed" not in page["changes_outcomes"]
    assert page["changes_summary"].startswith("Compared with the published edition of")
    assert "1 data file changed" in page["changes_summary"]


@pytest.mark.slow
@pytest.mark.integration
def test_latest_year_removed(tmp_path_factory, originals, baseline):
    base, published = baseline
    paths, _ = originals
    work = tmp_path_factory.mktemp("drop")
    lait = work / "bds_long_0.parquet"
    assert drop_lait_year(paths[LAIT], lait, "2025") > 0
    s = updated(tmp_path_factory, originals, "latest_year", {LAIT: lait}, base.results / ".runs")

    # the panel: 2025 is gone for what LAIT alone publishes, kept for what C1 also publishes
    p0, p1 = pd.read_csv(base.processed / "panel.csv"), pd.read_csv(s.processed / "panel.csv")
    y0, y1 = p0[p0["year"] == 2025], p1[p1["year"] == 2025]
    assert y0["assessments_45wd_pct"].notna().any() and y1["assessments_45wd_pct"].isna().all()
    assert y1["rereferral_pct"].notna().sum() == y0["rereferral_pct"].notna().sum()

    e0, e1 = estimates(base), estimates(s)
    # assessment timeliness: its 2025 is gone, the estimates move
    assert not by_outcome(e0, "assessment_timeliness").equals(by_outcome(e1, "assessment_timeliness"))
    # re-referrals: C1 still publishes 2025, with the same values, so nothing moves
    pd.testing.assert_frame_equal(by_outcome(e0, "rereferrals"), by_outcome(e1, "rereferrals"))

    changes = s.compare(published)
    assert changes.changed_files == [LAIT]
    assert changes.changed_outcomes == ["assessment_timeliness"]
    years = changes.years.set_index("measure")
    assert years.loc["assessments_45wd_pct", "removed"] == [2025]
    assert years.loc["assessments_45wd_pct", "added"] == []
    assert "rereferral_pct" not in years.index
    page = editions.render(changes)
    assert f"`{LAIT}`" in page["changes_files"] and f"`{C1}`" not in page["changes_files"]
    assert "`assessments_45wd_pct`" in page["changes_years"]
    assert "Referrals that were re-referrals" not in page["changes_outcomes"]


# --------------------------------------------------------------------------- the comparison alone
def _edition(tmp_path: Path, est: pd.DataFrame, ev: pd.DataFrame, coverage: dict | None = None,
             sources: list | None = None) -> Path:
    d = tmp_path / "published"
    d.mkdir()
    est.to_csv(d / "estimates.csv", index=False)
    ev.to_csv(d / "evidence.csv", index=False)
    meta = {"published": "2026-04-01", "sources": sources if sources is not None else
            editions._manifest_rows(), "coverage": coverage or {}}
    (d / "edition.json").write_text(json.dumps(meta))
    return d


def _tables():
    est = pd.DataFrame({"outcome": ["a", "a", "b"], "specification": ["main", "k1", "main"],
                        "estimator": "twfe", "inference": "wild_bootstrap",
                        "estimate": [1.0, 2.0, -3.0], "ci_low": [0.5, 1.0, -4.0],
                        "ci_high": [1.5, 3.0, -2.0], "p_value": [0.01, 0.2, 0.001]})
    ev = pd.DataFrame({"outcome": ["a", "b"], "measure": ["m_a", "m_b"], "label": ["Outcome A", "Outcome B"],
                       "grade": ["low", "moderate"], "estimate": [1.0, -3.0],
                       "ci_low": [0.5, -4.0], "ci_high": [1.5, -2.0]})
    return est, ev


def test_compare_tolerates_float_noise_and_reports_grade_changes(tmp_path):
    est, ev = _tables()
    published = _edition(tmp_path, est, ev)
    cur = tmp_path / "results"
    cur.mkdir()
    noisy_est, new_ev = est.copy(), ev.copy()
    noisy_est["estimate"] += 1e-12            # float noise: not a change
    new_ev.loc[1, "grade"] = "high"           # outcome b: grade only
    new_ev["estimate"] += 1e-12
    noisy_est.to_csv(cur / "estimates.csv", index=False)
    new_ev.to_csv(cur / "evidence.csv", index=False)
    changes = editions.compare(cur, tmp_path / "none", published)
    assert changes.changed_outcomes == ["b"]
    assert changes.outcomes.iloc[0]["changed"] == ["evidence grade"]
    assert changes.estimates.empty
    page = editions.render(changes)
    assert "moderate strength evidence" in page["changes_outcomes"]
    assert "high strength evidence" in page["changes_outcomes"]


def test_compare_shows_small_changes_with_enough_digits(tmp_path):
    est, ev = _tables()
    published = _edition(tmp_path, est, ev)
    cur = tmp_path / "results"
    cur.mkdir()
    est2, ev2 = est.copy(), ev.copy()
    est2.loc[0, "estimate"] = ev2.loc[0, "estimate"] = 1.0004
    est2.loc[1, "specification"] = "k2"       # one estimate gone, one new
    est2.to_csv(cur / "estimates.csv", index=False)
    ev2.to_csv(cur / "evidence.csv", index=False)
    changes = editions.compare(cur, tmp_path / "none", published)
    assert changes.changed_outcomes == ["a"]
    row = changes.estimates.set_index("outcome").loc["a"]
    assert (row["changed"], row["added"], row["removed"]) == (1, 1, 1)
    page = editions.render(changes)
    assert "+1.0000" in page["changes_outcomes"] and "+1.0004" in page["changes_outcomes"]


def test_no_published_edition(tmp_path):
    changes = editions.compare(tmp_path, tmp_path, tmp_path / "nothing")
    assert not changes.published and not changes.none
    assert "No edition of this report has been published yet" in editions.render(changes)["changes_summary"]


def test_publish_writes_edition_atomically(tmp_path):
    est, ev = _tables()
    res = tmp_path / "results"
    res.mkdir()
    est.to_csv(res / "estimates.csv", index=False)
    ev.to_csv(res / "evidence.csv", index=False)
    (res / ".key").write_text(json.dumps({"key": "k", "built": "2026-03-31T10:00:00"}))
    proc = tmp_path / "processed"
    proc.mkdir()
    pd.DataFrame({"measure": ["m_a", "m_a", "m_a"], "year": [2023, 2024, 2025],
                  "las_expected": 3, "las_with_value": [3, 3, 0], "las_suppressed": 0}
                 ).to_csv(proc / "coverage.csv", index=False)
    pub = tmp_path / "published"
    import datetime as dt

    editions.publish(res, proc, pub, today=dt.date(2026, 4, 1))
    meta = json.loads((pub / "edition.json").read_text())
    assert meta["published"] == "2026-04-01" and meta["results_built"] == "2026-03-31T10:00:00"
    assert meta["coverage"]["m_a"]["years"] == [2023, 2024]
    assert {s["id"] for s in meta["sources"]} == set(load_manifest())
    assert (pub / "estimates.csv").read_bytes() == (res / "estimates.csv").read_bytes()
    # publishing again replaces the edition; no temporary folder is left behind
    editions.publish(res, proc, pub, today=dt.date(2026, 5, 1))
    assert json.loads((pub / "edition.json").read_text())["published"] == "2026-05-01"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["processed", "published", "results"]


def test_repository_ships_a_published_edition():
    ed = editions.load_edition()
    assert ed is not None, "results/published/ must hold the published edition (make publish)"
    assert ed.meta["sources"] and all(len(s["sha256"]) == 64 for s in ed.meta["sources"])
    assert set(ed.evidence["outcome"]) <= set(ed.estimates["outcome"])
    ignored = subprocess.run(["git", "check-ignore", "-q", "results/published/edition.json"], cwd=ROOT)
    assert ignored.returncode == 1, "results/published/ must not be git-ignored"


# --------------------------------------------------------------------------- check-update
@pytest.fixture
def small_manifest(tmp_path, monkeypatch):
    """A manifest of three real entries and fake files with their recorded checksums."""
    sources = dict(list(load_manifest(build.DATA_DIR / "manifest.csv").items())[:3])
    files = tmp_path / "files"
    fake = {}
    for sid, s in sources.items():
        p = files / s.path
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(f"contents of {sid}\n")
        fake[sid] = p
    manifest = write_manifest(tmp_path / "manifest.csv", sources, fake)
    monkeypatch.setenv("SOS_DATA_MANIFEST", str(manifest))
    monkeypatch.delenv("SOS_DATA_MIRROR", raising=False)
    return list(sources), sources, fake


def test_check_update_against_a_mirror(tmp_path, small_manifest):
    ids, sources, fake = small_manifest
    mirror = tmp_path / "mirror"
    shutil.copytree(tmp_path / "files", mirror)
    (mirror / sources[ids[1]].path).write_text("a new release\n")
    (mirror / sources[ids[2]].path).unlink()
    table = editions.check_updates(mirror=mirror).set_index("id")
    assert table["status"].to_dict() == {ids[0]: "same", ids[1]: "changed", ids[2]: "missing"}
    proc = subprocess.run([sys.executable, "-m", "analysis", "check-update", "--mirror", str(mirror),
                           "--exit-code"], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ})
    assert proc.returncode == 1, proc.stderr
    lines = {ln.split()[0]: ln.split()[1] for ln in proc.stdout.splitlines()[1:] if ln.split()[0] in ids}
    assert lines == {ids[0]: "same", ids[1]: "changed", ids[2]: "missing"}


def test_check_update_against_urls(tmp_path, small_manifest, monkeypatch):
    """Served over HTTP from the default branch path (``HEAD``) of each GitHub raw URL."""
    ids, sources, fake = small_manifest
    served = tmp_path / "served"
    for i, (sid, s) in enumerate(sources.items()):
        url = editions.latest_url(s)
        assert "/HEAD/" in url, url
        rel = url.split("://", 1)[1].split("/", 1)[1]
        dest = served / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if i == 0:
            shutil.copyfile(fake[sid], dest)
        elif i == 1:
            dest.write_text("revised\n")
        # the third is not served: a 404

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(served), **kw)

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("SOS_DATA_BASE_URL", f"http://127.0.0.1:{server.server_address[1]}")
        table = editions.check_updates(use_url=True, timeout=10).set_index("id")
    finally:
        server.shutdown()
    assert table["status"].to_dict() == {ids[0]: "same", ids[1]: "changed", ids[2]: "unreachable"}
