"""Must-show (issue 6): the book built from child-level records finds the planted kinship effect.

A generated child-level dataset (the generator and planted effect of
``tests/test_childlevel_pipeline.py``, with fewer children for speed) goes
through the child-level data stage, the study (the public results plus the
``kinship_care`` outcome on the child-level panel) and ``python -m analysis
build``, all inside a copy of the project in a temporary folder, so neither
``_build/`` nor ``results/`` nor ``data/processed/`` of the project is touched.
The copy's keys are stamped by the copy itself, so its build skips straight to
the book. Then: the build exits 0, the kinship chapter states a graded effect,
:func:`analysis.childlevel.pipeline.publishable_results` passes, and the same
build with a count of four injected into ``childlevel_published.csv`` exits 2
with a one-line error.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import public_build

from analysis.core.paths import ROOT

# A whole book build (about two minutes): run by ``make check-book`` after ``make report``,
# whose public results it starts from.
pytestmark = [pytest.mark.slow, pytest.mark.book, pytest.mark.skipif(
    not os.environ.get("SOS_DATA_MIRROR") and not (ROOT / "data" / "raw").exists(),
    reason="real public data not available: set SOS_DATA_MIRROR")]

N_CHILDREN = 120_000      # about sixty periods of care per LA-year: the planted effect is still clear
COPY_FILES = ("_config.yml", "_toc.yml", "references.bib", "Makefile", "pyproject.toml", "CITATION.cff")
COPY_DIRS = ("analysis", "chapters", "_static")


def _copy_project(dest: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints")
    for f in COPY_FILES:
        shutil.copy2(ROOT / f, dest / f)
    for d in COPY_DIRS:
        shutil.copytree(ROOT / d, dest / d, ignore=ignore)
    shutil.copytree(ROOT / "data", dest / "data", ignore=shutil.ignore_patterns("raw", "processed"))
    (dest / "results").mkdir()
    shutil.copytree(ROOT / "results" / "published", dest / "results" / "published")


def _env(copy: Path, folder: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(copy), "SOS_CHILDLEVEL_DIR": str(folder),
           "SOS_DATA_CACHE": os.environ.get("SOS_DATA_CACHE", str(ROOT / "data" / "raw"))}
    return env


def _project_stamps() -> dict:
    """The project's own keys (what a build there would rewrite), to check it is left alone."""
    paths = [ROOT / "_build" / "html" / ".build-key", ROOT / "results" / ".key",
             ROOT / "data" / "processed" / ".key", ROOT / "data" / "processed" / "panel.csv"]
    return {str(p): (p.stat().st_mtime_ns if p.exists() else None) for p in paths}


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    from test_childlevel_pipeline import SEED, YEARS, _copy, _shares

    from analysis.childlevel.synthetic import generate_903, write_903_csv
    from analysis.design import load_design
    from analysis.run.build import RESULT_OUTPUTS, ensure_panel
    from analysis.run.study import run_study, write_results

    stamps = _project_stamps()
    public = public_build()
    treated = load_design().treated("kinship_care")
    counts = public.panel.groupby("la_code")["year"].nunique()
    las = sorted(counts[counts == counts.max()].index)
    planted, _ = _shares(las, treated, np.random.default_rng(7))
    header, episodes = generate_903(N_CHILDREN, las, YEARS, SEED, planted)
    folder = tmp_path_factory.mktemp("childlevel")
    (folder / "903").mkdir()
    write_903_csv(header, folder / "903" / "header.csv", with_la_year=True)
    write_903_csv(episodes, folder / "903" / "episodes.csv", with_la_year=True)

    copy = tmp_path_factory.mktemp("project")
    _copy_project(copy)
    processed, results = copy / "data" / "processed", copy / "results"
    mp = pytest.MonkeyPatch()
    mp.setattr("analysis.ingest.panel.build_panel", lambda progress=False, **kw: _copy(public))
    try:
        ensure_panel(out_dir=processed, child_level_dir=folder, force=True, echo=lambda *a: None)
    finally:
        mp.undo()
    # The results: the public ones (the public columns of the panel are unchanged)
    # plus the child-level outcome, estimated on the child-level panel.
    kin = tmp_path_factory.mktemp("kinship_results")
    write_results(run_study(panel_path=processed / "panel.csv", outcomes=["kinship_care"],
                            progress=False), kin)
    for name in RESULT_OUTPUTS:
        frames = [pd.read_csv(p) for p in (ROOT / "results" / name, kin / name) if p.exists()]
        pd.concat(frames, ignore_index=True).to_csv(results / name, index=False)
    # Stamp the copy's panel and results with the keys the copy's build computes.
    stamp = ("from pathlib import Path; import os; from analysis.run.build import *; "
             "write_stamp(PROCESSED_DIR / KEY_FILE, "
             "panel_key(child_level_dir=Path(os.environ['SOS_CHILDLEVEL_DIR']))); "
             "write_stamp(RESULTS_DIR / KEY_FILE, results_key(PROCESSED_DIR / 'panel.csv', DESIGN_PATH))")
    subprocess.run([sys.executable, "-c", stamp], cwd=copy, env=_env(copy, folder), check=True)
    r = subprocess.run([sys.executable, "-m", "analysis", "build"], cwd=copy, env=_env(copy, folder),
                       capture_output=True, text=True)
    return dict(copy=copy, folder=folder, run=r, stamps=stamps)


def test_book_builds_from_child_level_data_and_finds_the_kinship_effect(book):
    r, copy = book["run"], book["copy"]
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-3000:])
    assert "panel up to date" in r.stdout and "results up to date" in r.stdout   # the copy's own keys
    page = (copy / "_build" / "html" / "chapters" / "findings" / "kinship.html").read_text(encoding="utf-8")
    text = re.sub(r"<[^>]+>", " ", page)
    text = re.sub(r"\s+", " ", text)
    assert "Kinship care measured on child-level records." in text
    m = re.search(r"Kinship care measured on child-level records\. There is (.+?) of an effect "
                  r"of Signs of Safety on periods of care", text, flags=re.I)
    assert m, text[:2000]
    assert m.group(1) in {"low strength evidence", "moderate strength evidence", "high strength evidence"}, m.group(1)
    assert "in the direction of" in text
    # the child-level LPM (the evaluation's own model) beside the LA-level estimate
    lpm = re.search(r"A child-level model like the published evaluation['’]s, .+? gives (−|-)(\d+\.\d) percentage "
                    r"points \(95% interval (−|-)\d+\.\d to (−|-)\d+\.\d; p", text)
    assert lpm, text[text.find("Kinship care measured"):][:3000]
    assert 10 < float(lpm.group(2)) < 20
    assert "Child-level linear probability model (LA and year effects)" in text
    # nothing was written into the project itself
    assert _project_stamps() == book["stamps"]


def test_every_table_the_child_level_book_reads_is_publishable(book):
    from analysis.childlevel.pipeline import publishable_results, results_problems

    copy = book["copy"]
    assert results_problems(copy / "results", copy / "data" / "processed") == []
    publishable_results(copy / "results", copy / "data" / "processed")


def test_a_disclosive_published_table_stops_the_build(book):
    copy, folder = book["copy"], book["folder"]
    path = copy / "data" / "processed" / "childlevel_published.csv"
    original = path.read_bytes()
    pub = pd.read_csv(path, dtype=str, keep_default_na=False)
    i = pub.index[pub["numerator"].ne("c")][0]
    pub.loc[i, ["numerator", "value"]] = ["4", "4.0"]
    try:
        pub.to_csv(path, index=False)
        r = subprocess.run([sys.executable, "-m", "analysis", "build"], cwd=copy,
                           env=_env(copy, folder), capture_output=True, text=True)
    finally:
        path.write_bytes(original)
    assert r.returncode == 2, (r.stdout[-2000:], r.stderr[-2000:])
    assert r.stderr.count("\n") == 1, r.stderr
    assert "numerator 4" in r.stderr and "disclosure threshold" in r.stderr, r.stderr
