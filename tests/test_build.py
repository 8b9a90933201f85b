"""Content-keyed steps, safe book builds, deterministic results.

- The code closure behind each key follows the imports (a reader change
  rebuilds the panel; a chapter helper change does not rerun the study).
- :func:`analysis.run.build.safe_swap_build` keeps the previous site byte-identical
  when a build fails (a stubbed build, failing or raising), swaps a good one in,
  and recovers from an interrupted swap.
- A corrupted input makes ``python -m analysis data`` and ``python -m analysis
  build`` exit non-zero with one line naming the file, leaving earlier outputs
  and ``_build/html`` byte-identical.
- Two clean result runs are byte-identical, and so is a run assembled from the
  run cache.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections import namedtuple
from pathlib import Path

import pandas as pd
import pytest

from analysis.core import files
from analysis.design import DESIGN_PATH
from analysis.run import build

ROOT = Path(__file__).resolve().parent.parent
OUTCOMES = ["repeat_plans", "sw_turnover"]
#: Byte-identity of the results files is checked on these specifications: every kind of run
#: (matched, leave-one-out, unmatched, common comparators).
SPECS = ["main", "k1", "leave_one_out", "all_donors", "common_comparators"]


def tree_digest(folder: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every file under ``folder`` (hidden ones too)."""
    out = {}
    for p in sorted(Path(folder).rglob("*")):
        if p.is_file():
            out[p.relative_to(folder).as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


# --------------------------------------------------------------------------- keys
def test_code_closure_follows_imports():
    panel = {p.relative_to(ROOT).as_posix() for p in build.code_closure("ingest.panel")}
    assert {"analysis/__init__.py", "analysis/ingest/panel.py", "analysis/ingest/sources.py",
            "analysis/ingest/readers/lait.py", "analysis/ingest/readers/common.py",
            "analysis/core/paths.py"} <= panel
    # nothing downstream of the panel: not the methods, the design, the study or the book
    assert not any(f.startswith(("analysis/methods/", "analysis/run/", "analysis/book/", "analysis/cli/"))
                   for f in panel), panel
    assert "analysis/design.py" not in panel
    study = {p.relative_to(ROOT).as_posix() for p in build.code_closure("run.study")}
    assert {"analysis/run/study.py", "analysis/methods/matching.py", "analysis/methods/estimation.py",
            "analysis/methods/inference.py", "analysis/methods/evidence.py", "analysis/design.py"} <= study
    assert panel <= study  # the study imports the panel module (load_panel)
    assert not any(f.startswith("analysis/book/") for f in study)


def test_grading_rule_edit_leaves_panel_key_and_reader_edit_changes_it(tmp_path, monkeypatch):
    """Each step's key covers the code it runs and nothing downstream (issue 11)."""
    import shutil

    copy = tmp_path / "analysis"
    shutil.copytree(ROOT / "analysis", copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(build, "ROOT", tmp_path)
    before_panel = build.code_digest("ingest.panel")
    before_study = build.code_digest("run.study")
    evidence = copy / "methods" / "evidence.py"
    evidence.write_text(evidence.read_text() + "\n# an edit of the grading rule\n")
    assert build.code_digest("ingest.panel") == before_panel
    assert build.code_digest("run.study") != before_study
    reader = copy / "ingest" / "readers" / "lait.py"
    reader.write_text(reader.read_text() + "\n# an edit of a reader\n")
    assert build.code_digest("ingest.panel") != before_panel


def test_default_folders_agree_with_the_pipeline():
    from analysis import design
    from analysis.core import paths
    from analysis.ingest import panel
    from analysis.run import study

    assert build.PROCESSED_DIR == panel.PROCESSED_DIR == paths.PROCESSED_DIR
    assert build.RESULTS_DIR == study.RESULTS_DIR == paths.RESULTS_DIR
    assert build.DESIGN_PATH == design.DESIGN_PATH == paths.DESIGN_PATH


# --------------------------------------------------------------------------- safe swap
def _site(build_dir: Path) -> None:
    (build_dir / "html" / "chapters").mkdir(parents=True)
    (build_dir / "html" / "index.html").write_text("<p>the good edition</p>")
    (build_dir / "html" / "chapters" / "a.html").write_text("<p>chapter</p>")
    (build_dir / "html" / ".build-key").write_text('{"key": "old"}')
    (build_dir / ".doctrees").mkdir()
    (build_dir / ".doctrees" / "environment.pickle").write_bytes(b"old env")
    (build_dir / "jupyter_execute").mkdir()
    (build_dir / "jupyter_execute" / "fig.png").write_bytes(b"old figure")


@pytest.mark.parametrize("failure", ["exit", "raise", "no index"])
def test_failed_build_leaves_previous_site_byte_identical(tmp_path, failure, capsys):
    bd = tmp_path / "_build"
    _site(bd)
    before = tree_digest(bd)

    def failing(staging: Path, log) -> int:
        # a build that got part of the way: new doctrees, outputs and pages, then failed
        (bd / ".doctrees").mkdir()
        (bd / ".doctrees" / "environment.pickle").write_bytes(b"half-built env")
        staging.mkdir()
        (staging / "chapters").mkdir()
        (staging / "chapters" / "a.html").write_text("<p>broken</p>")
        log.write("Traceback: a chapter failed\n")
        if failure == "raise":
            raise RuntimeError("the builder crashed")
        if failure == "exit":
            (staging / "index.html").write_text("<p>partial</p>")
            return 1
        return 0  # "succeeded" without writing index.html: still a failure

    rc = build.safe_swap_build(failing, build_dir=bd, stamp={"key": "new"})
    assert rc != 0
    assert tree_digest(bd / "html") == {k[5:]: v for k, v in before.items() if k.startswith("html/")}
    after = {k: v for k, v in tree_digest(bd).items() if not k.startswith("logs/")}
    assert after == before  # doctrees and executed outputs restored too
    assert sorted(p.name for p in bd.iterdir()) == [".doctrees", "html", "jupyter_execute", "logs"]
    out = capsys.readouterr().out
    logs = list((bd / "logs").glob("build-*.log"))
    assert len(logs) == 1 and str(logs[0]) in out
    assert "unchanged" in out
    assert "failed" in logs[0].read_text() or "crashed" in logs[0].read_text()


def test_good_build_is_swapped_in(tmp_path):
    bd = tmp_path / "_build"
    _site(bd)

    def good(staging: Path, log) -> int:
        (bd / ".doctrees").mkdir()
        (bd / ".doctrees" / "environment.pickle").write_bytes(b"new env")
        staging.mkdir()
        (staging / "index.html").write_text("<p>the new edition</p>")
        return 0

    assert build.safe_swap_build(good, build_dir=bd, stamp={"key": "new"}) == 0
    assert (bd / "html" / "index.html").read_text() == "<p>the new edition</p>"
    assert not (bd / "html" / "chapters").exists()  # nothing of the old site lingers
    assert json.loads((bd / "html" / ".build-key").read_text())["key"] == "new"
    assert (bd / ".doctrees" / "environment.pickle").read_bytes() == b"new env"
    assert not (bd / "jupyter_execute").exists()  # a clean build: old outputs gone
    assert sorted(p.name for p in bd.iterdir()) == [".doctrees", "html", "logs"]


def test_interrupted_swap_is_recovered(tmp_path):
    bd = tmp_path / "_build"
    _site(bd)
    prev = bd / ".prev-20260101-000000"
    prev.mkdir()
    os.replace(bd / "html", prev / "html")  # killed between the two renames
    (bd / ".html-new-20260101-000000").mkdir()
    build._recover(bd)
    assert (bd / "html" / "index.html").read_text() == "<p>the good edition</p>"
    assert not prev.exists() and not (bd / ".html-new-20260101-000000").exists()


# --------------------------------------------------------------------------- corrupted input, real commands
@pytest.fixture
def corrupt_env(tmp_path, real_source):
    """A mirror whose C1 file is corrupted (one byte), an empty cache and the real manifest."""
    from analysis.ingest.sources import load_manifest

    sources = load_manifest(build.DATA_DIR / "manifest.csv")
    mirror = tmp_path / "mirror"
    for sid, s in sources.items():
        dest = mirror / s.path
        dest.parent.mkdir(parents=True, exist_ok=True)
        if sid == "cin_c1":
            data = bytearray(real_source(sid).read_bytes())
            data[-2] = ord("7") if data[-2] != ord("7") else ord("8")
            dest.write_bytes(bytes(data))
        else:
            dest.symlink_to(real_source(sid))
    env = {**os.environ, "SOS_DATA_MIRROR": str(mirror), "SOS_DATA_CACHE": str(tmp_path / "cache"),
           "SOS_DATA_MANIFEST": str(build.DATA_DIR / "manifest.csv")}
    return env, sources["cin_c1"].path


@pytest.mark.integration
def test_data_with_corrupted_input_fails_and_keeps_outputs(tmp_path, corrupt_env):
    env, bad_path = corrupt_env
    out = tmp_path / "processed"
    out.mkdir()
    for name in ("panel.csv", "measures.csv", "coverage.csv"):
        (out / name).write_text(f"the last good {name}\n")
    before = tree_digest(out)
    proc = subprocess.run([sys.executable, "-m", "analysis", "data", "--out", str(out)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "checksum mismatch" in proc.stderr and bad_path in proc.stderr
    assert "Traceback" not in proc.stderr
    assert tree_digest(out) == before


@pytest.mark.integration
def test_build_with_corrupted_input_exits_nonzero_and_keeps_site(corrupt_env):
    """The real `python -m analysis build` on the real checkout: stops before touching anything."""
    env, bad_path = corrupt_env
    html = build.HTML_DIR
    watched = [html, build.PROCESSED_DIR, build.RESULTS_DIR]
    for folder in watched:  # a last good output in each (the session's folders, not the checkout's)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "last-good.txt").write_text(f"last good {folder.name}\n")
    before = [tree_digest(p) if p.exists() else None for p in watched]
    proc = subprocess.run([sys.executable, "-m", "analysis", "build"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert bad_path in proc.stderr
    assert [tree_digest(p) if p.exists() else None for p in watched] == before


# --------------------------------------------------------------------------- determinism
@pytest.fixture(scope="module")
def panel_dir(tmp_path_factory, real_panel):
    """A copy of the session's real panel (conftest builds it once)."""
    out = tmp_path_factory.mktemp("panel")
    shutil.copyfile(real_panel / "panel.csv", out / "panel.csv")
    return out


@pytest.mark.slow
@pytest.mark.integration
def test_two_clean_result_runs_are_byte_identical(tmp_path, panel_dir, real_results):
    """Two clean runs (two worker processes, then one) give the same bytes in every results
    file, and the same lines of ``estimates.csv`` as the session's whole study (every
    outcome at once): an estimate depends neither on the workers nor on what ran beside it."""
    runs = {}
    for name, workers in (("first", 2), ("second", 1)):
        out = tmp_path / name
        built, _ = build.ensure_results(panel_dir=panel_dir, out_dir=out, outcomes=OUTCOMES,
                                        workers=workers, use_run_cache=name == "first",
                                        progress=False, echo=lambda *a: None, specifications=SPECS)
        assert built
        runs[name] = out
    files = build.RESULT_OUTPUTS
    for f in files:
        assert (runs["first"] / f).read_bytes() == (runs["second"] / f).read_bytes(), f

    head, *mine = (runs["second"] / "estimates.csv").read_text(encoding="utf-8").splitlines()
    pairs = {tuple(r.split(",")[:2]) for r in mine}
    assert {o for o, _ in pairs} == set(OUTCOMES) and len(pairs) > len(SPECS)  # leave-one-out labels
    whole_head, *whole = (real_results / "estimates.csv").read_text(encoding="utf-8").splitlines()
    assert whole_head == head
    assert [r for r in whole if tuple(r.split(",")[:2]) in pairs] == mine
    # a third run assembled entirely from the run cache of the first: the same bytes
    (runs["first"] / build.KEY_FILE).unlink()
    before = {f: (runs["first"] / f).read_bytes() for f in files}
    msgs = []
    build.ensure_results(panel_dir=panel_dir, out_dir=runs["first"], outcomes=OUTCOMES,
                         progress=False, echo=msgs.append, specifications=SPECS)
    assert any(m.startswith(f"{len(list((runs['first'] / '.runs').glob('*.pkl')))} of ") and
               m.endswith(" 0 computed") for m in msgs), msgs
    assert {f: (runs["first"] / f).read_bytes() for f in files} == before
    # unchanged inputs: the step is skipped
    assert build.ensure_results(panel_dir=panel_dir, out_dir=runs["first"], outcomes=OUTCOMES,
                                progress=False, echo=lambda *a: None, specifications=SPECS)[0] is False


def test_book_key_follows_the_rules_the_method_chapter_prints(tmp_path, monkeypatch):
    """The method chapter prints data/childlevel_outcomes.yaml and data/disclosure.yaml:
    a change to either must rebuild the book."""
    import shutil

    import analysis.run.build as B

    data = tmp_path / "data"
    shutil.copytree(B.DATA_DIR, data, ignore=shutil.ignore_patterns("raw", "processed"))
    monkeypatch.setattr(B, "DATA_DIR", data)
    before = B.book_key(manifest_rows=[]).value
    assert B.book_key(manifest_rows=[]).value == before
    for name in ("childlevel_outcomes.yaml", "disclosure.yaml"):
        path = data / name
        path.write_text(path.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
        after = B.book_key(manifest_rows=[]).value
        assert after != before, name
        before = after


# --------------------------------------------------------------------------- the readers' cache
def test_readers_cache_reads_a_file_again_only_when_it_changed(tmp_path, monkeypatch):
    """A reader runs again only when a file it read (its manifest row) changed; every file is
    still fetched and verified on a hit; an unrelated change leaves the entry in use."""
    import dataclasses

    import pandas as pd

    from analysis.ingest.sources import load_manifest

    real = load_manifest()
    a, b = sorted(real)[:2]
    manifest = dict(real)
    monkeypatch.setattr(build, "load_manifest", lambda: manifest)
    calls, fetched = [], []

    def get(sid):
        fetched.append(sid)
        return tmp_path / sid

    def reader(f):
        calls.append("read")
        f(a)
        return pd.DataFrame({"value": [len(calls)]})

    def run():
        return build.ReaderCache(tmp_path / "readers")("reader", reader, get)

    assert run()["value"].tolist() == [1]
    assert run()["value"].tolist() == [1] and calls == ["read"]  # from the cache
    assert fetched == [a, a]  # the hit fetched (and so verified) the file it stands for
    manifest[b] = dataclasses.replace(manifest[b], sha256="0" * 64)  # a file it does not read
    assert run()["value"].tolist() == [1] and calls == ["read"]
    manifest[a] = dataclasses.replace(manifest[a], sha256="1" * 64)  # a new release of its file
    assert run()["value"].tolist() == [2] and calls == ["read", "read"]
    manifest.pop(b)  # the manifest's ids changed: a reader may pick its files from them
    assert run()["value"].tolist() == [3]
    assert len(list((tmp_path / "readers").glob("*.pkl"))) == build.ReaderCache.KEEP
    forced = build.ReaderCache(tmp_path / "readers", reuse=False)  # --force: read every file again
    assert forced("reader", reader, get)["value"].tolist() == [4] and (forced.hits, forced.misses) == (0, 1)
    assert run()["value"].tolist() == [4]  # the forced read replaced the entry


def test_readers_cache_stops_on_a_corrupt_file(tmp_path, monkeypatch):
    import pandas as pd

    from analysis.core.errors import DataError

    def get(sid):
        raise DataError("sha256 mismatch", file=f"data/raw/{sid}")

    cache = build.ReaderCache(tmp_path / "readers")
    (tmp_path / "readers").mkdir()
    sid = sorted(cache.manifest)[0]
    (tmp_path / "readers" / "index.json").write_text(json.dumps({"reader": [sid]}))
    with pytest.raises(DataError, match="sha256 mismatch"):
        cache("reader", lambda f: pd.DataFrame(), get)


def test_run_cache_key_follows_the_columns_a_run_reads(tmp_path, monkeypatch):
    """A run's key changes with a value, the type or the order of a column it reads, and only then."""
    run = namedtuple("Run", "outcome spec left_out cols")
    monkeypatch.setattr(build, "run_columns", lambda design, r: r.cols)
    cache = build.RunCache(tmp_path, DESIGN_PATH)
    panel = pd.DataFrame({"la_code": ["E1", "E2", "E3"], "year": [2020, 2020, 2020],
                          "a": [1.0, 2.0, 3.0], "b": [4.0, 5.0, 6.0]})
    ra, rb = run("x", "main", None, ["la_code", "year", "a"]), run("y", "main", None, ["la_code", "year", "b"])
    ka, kb = cache.key(panel, None, ra), cache.key(panel, None, rb)
    assert ka != kb and cache.key(panel, None, ra) == ka
    assert cache.key(panel, None, run("x", "k1", None, ra.cols)) != ka  # another specification
    revised = panel.assign(a=[1.0, 2.5, 3.0])
    assert cache.key(revised, None, ra) != ka and cache.key(revised, None, rb) == kb
    assert cache.key(panel.iloc[::-1], None, rb) != kb  # row order
    assert cache.key(panel.astype({"b": "float32"}), None, rb) != kb  # column type
    assert cache.key(panel.copy(), None, ra) == ka  # same values in another frame: same key


def test_atomic_writer_leaves_nothing_half_written(tmp_path, monkeypatch):
    target = tmp_path / "sub" / "entry.pkl"
    files.write_bytes_atomically(target, b"first")
    assert target.read_bytes() == b"first"

    def broken(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(files.os, "replace", broken)
    with pytest.raises(OSError, match="disk full"):
        files.write_bytes_atomically(target, b"second")
    assert target.read_bytes() == b"first"  # the old entry stays whole
    assert sorted(p.name for p in target.parent.iterdir()) == ["entry.pkl"]  # no temporary file left
