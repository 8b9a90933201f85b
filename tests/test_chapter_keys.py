"""Per-chapter keys (:mod:`analysis.book.chapter_keys`, :mod:`analysis.book.chapter_reads`).

- A chapter's key follows its own inputs: a results file chapter A read changes
  A's key and not B's; a module A imports changes A's key; its source changes it.
- The kernel-side record (an audit hook, run in a subprocess: hooks cannot be
  removed) lists the tracked files opened for reading and folders listed, not
  writes, code or files outside the roots.
- The safe swap with ``reuse`` restores the copied doctrees when a build fails
  and keeps the updated ones when it succeeds.
- A two-chapter book built with Sphinx and myst-nb twice: after a change to the
  file one chapter read, only that chapter executes again, and every page is written.

Hermetic: the results folder is the session's temporary one (``tests/conftest.py``).
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from analysis.book import chapter_keys as ck
from analysis.book.chapter_reads import parse_reads
from analysis.core import paths
from analysis.run import build

ROOT = Path(__file__).resolve().parent.parent

NOTEBOOK = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---

# {title}

```{{code-cell}} ipython3
{code}
```
"""


@pytest.fixture
def results_dir():
    folder = paths.RESULTS_DIR / "chapter-keys-test"
    folder.mkdir(parents=True, exist_ok=True)
    assert "sos-tests-" in str(folder)  # never the checkout's results/
    yield folder
    for p in folder.iterdir():
        p.unlink()
    folder.rmdir()


def _chapter(tmp_path: Path, name: str, code: str) -> Path:
    path = tmp_path / f"{name}.md"
    path.write_text(NOTEBOOK.format(title=name, code=code), encoding="utf-8")
    return path


def test_results_file_changes_only_the_key_of_the_chapter_that_read_it(tmp_path, results_dir):
    a_csv, b_csv = results_dir / "a.csv", results_dir / "b.csv"
    a_csv.write_text("x\n1\n")
    b_csv.write_text("x\n2\n")
    a = _chapter(tmp_path, "a", "print(1)")
    b = _chapter(tmp_path, "b", "print(2)")
    reads_a = {"files": [str(a_csv)], "folders": [], "modules": []}
    reads_b = {"files": [str(b_csv)], "folders": [], "modules": []}
    key_a, key_b = ck.chapter_key(a, reads_a), ck.chapter_key(b, reads_b)
    assert ck.chapter_key(a, reads_a).value == key_a.value  # stable

    a_csv.write_text("x\n1.5\n")  # one value revised
    assert ck.chapter_key(a, reads_a).value != key_a.value
    assert ck.chapter_key(b, reads_b).value == key_b.value
    assert build.changed_parts({"parts": key_a.parts}, ck.chapter_key(a, reads_a)) == [
        f"files ({ck._short(str(a_csv))})"]

    a_csv.unlink()  # a file the chapter read has gone: outdated too
    assert ck.chapter_key(a, reads_a).value != key_a.value
    b.write_text(b.read_text() + "\nmore text\n")  # its own source
    assert ck.chapter_key(b, reads_b).value != key_b.value


def test_module_a_chapter_imports_is_in_its_key(tmp_path):
    a = _chapter(tmp_path, "a", "from analysis.book import chapters as report, figures\nreport.fmt(1)")
    b = _chapter(tmp_path, "b", "print('no analysis code')")
    assert ck.imported_modules(a.read_text()) >= {"analysis.book", "analysis.book.chapters",
                                                  "analysis.book.figures"}
    key_a, key_b = ck.chapter_key(a), ck.chapter_key(b)
    # transitively: chapters imports the runner's settings and the grading rule, which
    # imports the errors of core; not the estimators (the chapters read their results)
    assert {"analysis/book/figures.py", "analysis/run/settings.py", "analysis/methods/evidence.py",
            "analysis/core/errors.py"} <= set(key_a.parts["code"])
    assert "analysis/methods/estimation.py" not in key_a.parts["code"]
    assert key_b.parts["code"] == {}

    edited = ck.Hashes()  # analysis/core/errors.py as if edited
    edited.files[str(ROOT / "analysis" / "core" / "errors.py")] = "edited"
    assert ck.chapter_key(a, hashes=edited).value != key_a.value
    assert ck.chapter_key(b, hashes=edited).value == key_b.value

    # a module the kernel imported at run time (not in the cells) counts too
    late = {"files": [], "folders": [], "modules": ["analysis.methods.estimation"]}
    assert "analysis/methods/estimation.py" in ck.chapter_key(b, late).parts["code"]


def test_imported_modules_reads_code_cells_only():
    text = NOTEBOOK.format(title="t", code=":tags: [remove-cell]\n%matplotlib inline\n"
                           "from analysis.book import (front,\n    appendices)\nimport analysis.run.editions")
    text += "\nProse that says from analysis.methods import nothing.\n"
    assert ck.imported_modules(text) == {"analysis.book", "analysis.book.front",
                                         "analysis.book.appendices", "analysis.run.editions"}


def test_record_reads_lists_tracked_reads_only(tmp_path, results_dir):
    (results_dir / "estimates.csv").write_text("a\n1\n")
    target = tmp_path / "reads.txt"
    code = textwrap.dedent(f"""
        import os, pathlib, json
        from analysis.book.chapter_reads import record_reads
        assert record_reads({str(target)!r})
        open({str(results_dir / 'estimates.csv')!r}).read()
        pathlib.Path({str(ROOT / 'data' / 'manifest.csv')!r}).read_text()
        os.listdir({str(results_dir)!r})
        open({str(results_dir / 'written.csv')!r}, 'w').write('x')   # a write: not an input
        open({str(ROOT / 'analysis' / 'design.py')!r}).read()          # code: the closure's job
        open(json.__file__).read()                                     # outside the roots
        import analysis.methods.power
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=tmp_path)
    reads = parse_reads(target.read_text())
    assert reads["files"] == sorted([str(results_dir / "estimates.csv"), str(ROOT / "data" / "manifest.csv")])
    assert reads["folders"] == [str(results_dir)]
    assert "analysis.methods.power" in reads["modules"]
    (results_dir / "written.csv").unlink()


def test_record_reads_does_nothing_without_a_target(monkeypatch):
    from analysis.book.chapter_reads import READS_VAR, record_reads

    monkeypatch.delenv(READS_VAR, raising=False)
    assert record_reads() is False


def _site(bd: Path) -> None:
    (bd / "html").mkdir(parents=True)
    (bd / "html" / "index.html").write_text("<p>old</p>")
    (bd / ".doctrees").mkdir()
    (bd / ".doctrees" / "environment.pickle").write_bytes(b"old env")
    (bd / "jupyter_execute").mkdir()
    (bd / "jupyter_execute" / "fig.png").write_bytes(b"old figure")


def test_reuse_build_failure_restores_the_doctrees(tmp_path):
    bd = tmp_path / "_build"
    _site(bd)

    def failing(staging: Path, log) -> int:
        # an incremental build updates the environment in place, then fails
        assert (bd / ".doctrees" / "environment.pickle").read_bytes() == b"old env"
        (bd / ".doctrees" / "environment.pickle").write_bytes(b"half-updated env")
        (bd / "jupyter_execute" / "new.png").write_bytes(b"new")
        return 1

    assert build.safe_swap_build(failing, build_dir=bd, reuse=True, echo=lambda *a: None) != 0
    assert (bd / ".doctrees" / "environment.pickle").read_bytes() == b"old env"
    assert sorted(p.name for p in (bd / "jupyter_execute").iterdir()) == ["fig.png"]
    assert (bd / "html" / "index.html").read_text() == "<p>old</p>"
    assert sorted(p.name for p in bd.iterdir()) == [".doctrees", "html", "jupyter_execute", "logs"]


def test_reuse_build_success_keeps_the_updated_doctrees(tmp_path):
    bd = tmp_path / "_build"
    _site(bd)
    (bd / "html" / "other.html").write_text('<img src="_images/kept.png">')
    (bd / "html" / "_images").mkdir()
    for name in ("kept.png", "old.png"):
        (bd / "html" / "_images" / name).write_bytes(b"png")
    (bd / "html" / "index.html").write_text('<p>old</p><img src="_images/old.png">')

    def good(staging: Path, log) -> int:
        # the build starts from a copy of the last site and rewrites only the re-read pages
        assert sorted(p.name for p in staging.iterdir()) == ["_images", "index.html", "other.html"]
        (bd / ".doctrees" / "environment.pickle").write_bytes(b"updated env")
        (staging / "index.html").write_text("<p>new</p>")
        return 0

    assert build.safe_swap_build(good, build_dir=bd, reuse=True, echo=lambda *a: None) == 0
    assert (bd / ".doctrees" / "environment.pickle").read_bytes() == b"updated env"
    assert (bd / "jupyter_execute" / "fig.png").read_bytes() == b"old figure"  # kept, not cleaned
    assert (bd / "html" / "index.html").read_text() == "<p>new</p>"
    assert (bd / "html" / "other.html").exists()  # a page not rewritten is kept
    # the image only the old index showed is gone; the one another page shows stays
    assert sorted(p.name for p in (bd / "html" / "_images").iterdir()) == ["kept.png"]
    assert sorted(p.name for p in bd.iterdir()) == [".doctrees", "html", "jupyter_execute", "logs"]


def test_prune_images_keeps_what_a_page_shows(tmp_path):
    (tmp_path / "_images").mkdir()
    (tmp_path / "sub").mkdir()
    for name in ("a.png", "b.png", "c.svg"):
        (tmp_path / "_images" / name).write_bytes(b"x")
    (tmp_path / "index.html").write_text('<img src="_images/a.png" alt="">')
    (tmp_path / "sub" / "page.html").write_text("<img src='../_images/c.svg'>")
    assert build.prune_images(tmp_path) == ["b.png"]
    assert sorted(p.name for p in (tmp_path / "_images").iterdir()) == ["a.png", "c.svg"]
    assert build.prune_images(tmp_path / "nothing") == []


def test_reading_order_starts_the_longest_chapters_first():
    seconds = {"a": 1.0, "b": 9.0, "c": 3.0, "d": 0.5, "e": 6.0}
    batches = ck.reading_order(["a", "b", "c", "d", "e", "new"], seconds, nproc=2)
    assert all(len(b) == 1 for b in batches)
    # A chapter not read before counts as the slowest. Sphinx starts the first two
    # batches at once and the waiting ones last-added first: listed shortest first.
    assert [b[0] for b in batches] == ["new", "b", "d", "a", "c", "e"]
    started = [b[0] for b in batches[:2]]
    waiting = [b[0] for b in batches[2:]]
    while waiting:  # what Sphinx 7.4's ParallelTasks does with them (dict.popitem)
        started.append(waiting.pop())
    assert started == ["new", "b", "e", "c", "a", "d"]


def test_reading_batches_are_changed_only_while_reading(monkeypatch):
    import sphinx.builders
    from sphinx.util.build_phase import BuildPhase

    monkeypatch.setattr(sphinx.builders, "make_chunks", sphinx.builders.make_chunks)
    env = SimpleNamespace(sos_chapter_keys={"x": {"seconds": 1.0}, "y": {"seconds": 5.0}, "z": {}})
    app = SimpleNamespace(env=env, phase=BuildPhase.READING)
    ck._batch_by_chapter(app)
    assert sphinx.builders.make_chunks(["x", "y", "z"], 2) == [["z"], ["y"], ["x"]]
    app.phase = BuildPhase.WRITING
    assert sphinx.builders.make_chunks(["x", "y", "z"], 2) == [["x"], ["y"], ["z"]]  # Sphinx's own
    ck._batch_by_chapter(app)  # set up twice (a second build): wraps Sphinx's function, not its own
    app.phase = BuildPhase.READING
    assert sphinx.builders.make_chunks(["x", "y", "z"], 2) == [["z"], ["y"], ["x"]]


def test_interrupted_reuse_build_is_recovered_from_the_copy(tmp_path):
    bd = tmp_path / "_build"
    _site(bd)
    prev = bd / ".prev-20260101-000000"
    prev.mkdir()
    import shutil

    shutil.copytree(bd / ".doctrees", prev / ".doctrees")
    (bd / ".doctrees" / "environment.pickle").write_bytes(b"half-updated env")  # killed mid-build
    build._recover(bd)
    assert (bd / ".doctrees" / "environment.pickle").read_bytes() == b"old env"
    assert not prev.exists()


# --------------------------------------------------------------------------- a tiny book, built twice
CONF = """
extensions = ["myst_nb", "analysis.book.chapter_keys"]
nb_execution_mode = "force"
nb_execution_raise_on_error = True
exclude_patterns = ["_build"]
master_doc = "index"
"""


def _sphinx(src: Path, out: Path, doctrees: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", "-W", "-q", "-d", str(doctrees),
                           str(src), str(out)], env=env, capture_output=True, text=True, cwd=src)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


def test_book_re_executes_only_the_chapter_whose_file_changed(tmp_path, results_dir):
    pytest.importorskip("myst_nb")
    src = tmp_path / "book"
    src.mkdir()
    (src / "conf.py").write_text(CONF)
    (src / "index.md").write_text("# Book\n\n```{toctree}\na\nb\n```\n")
    runs = tmp_path / "runs.log"  # each execution appends its name (outside the tracked roots)
    for name in ("a", "b"):
        (results_dir / f"{name}.csv").write_text(f"value\n{name}-1\n")
        _chapter(src, name, f"open({str(runs)!r}, 'a').write('{name}\\n')\n"
                            f"print(open({str(results_dir / (name + '.csv'))!r}).read().split()[1])")
    doctrees = tmp_path / "doctrees"
    _sphinx(src, tmp_path / "out1", doctrees)
    assert sorted(runs.read_text().split()) == ["a", "b"]

    (results_dir / "a.csv").write_text("value\na-2\n")  # one value revised in a's file
    out = _sphinx(src, tmp_path / "out2", doctrees)  # a fresh output folder, as the build's staging
    assert sorted(runs.read_text().split()) == ["a", "a", "b"], out  # b did not execute again
    pages = {p.name for p in (tmp_path / "out2").glob("*.html")}
    assert {"index.html", "a.html", "b.html"} <= pages  # every page written
    assert "a-2" in (tmp_path / "out2" / "a.html").read_text()
    assert "b-1" in (tmp_path / "out2" / "b.html").read_text()  # b's kept output

    _sphinx(src, tmp_path / "out3", doctrees)  # nothing changed: nothing executes
    assert sorted(runs.read_text().split()) == ["a", "a", "b"]


def test_parallel_readers_bring_back_the_keys_of_their_chapters():
    """Under `sphinx -j`, each reader process sends its environment back; the keys of the
    chapters it read (and only those) join the main environment."""

    main = SimpleNamespace(sos_chapter_keys={"a": {"key": "old-a"}, "c": {"key": "c"}})
    reader = SimpleNamespace(sos_chapter_keys={"a": {"key": "new-a"}, "b": {"key": "b"},
                                               "c": {"key": "stale-c"}})
    ck._merge(None, main, ["a", "b"], reader)
    assert main.sos_chapter_keys == {"a": {"key": "new-a"}, "b": {"key": "b"}, "c": {"key": "c"}}


def test_only_undeclared_extensions_are_declared_parallel_safe():

    exts = {"sphinx_multitoc_numbering": SimpleNamespace(parallel_read_safe=None),
            "sphinx_jupyterbook_latex": SimpleNamespace(parallel_read_safe=False),
            "other": SimpleNamespace(parallel_read_safe=None)}
    ck._declare_parallel_safe(SimpleNamespace(extensions=exts))
    assert exts["sphinx_multitoc_numbering"].parallel_read_safe is True
    assert exts["sphinx_jupyterbook_latex"].parallel_read_safe is False  # a declaration stands
    assert exts["other"].parallel_read_safe is None


def test_book_jobs(monkeypatch):
    monkeypatch.setenv("SOS_BOOK_JOBS", "3")
    assert build.book_jobs() == 3
    monkeypatch.delenv("SOS_BOOK_JOBS")
    assert build.book_jobs() == len(os.sched_getaffinity(0))
    monkeypatch.setenv("SOS_BOOK_JOBS", "two")
    with pytest.raises(build.DataError, match="SOS_BOOK_JOBS"):
        build.book_jobs()


def test_early_sphinx_waits_and_ends_unused():
    """The Sphinx process started before the data steps builds nothing until it is told where."""
    early = build.EarlySphinx()
    time.sleep(0.5)
    assert early.proc.poll() is None  # importing, then waiting for its folders
    early.cancel()
    assert early.proc.returncode is not None
    early.cancel()  # idempotent
    done = subprocess.run([sys.executable, "-m", "analysis.run.build", "_sphinx_early"], cwd=ROOT,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")  # no folders given: nothing built


def test_bibtex_plugins_are_looked_up_once(monkeypatch):
    import pybtex.plugin as plugin

    monkeypatch.setattr(plugin, "_load_entry_point", plugin._load_entry_point)  # restored afterwards
    cases = [("pybtex.style.formatting", None), ("pybtex.style.formatting", "plain"),
             ("pybtex.style.labels", None), ("pybtex.style.names", "plain"), ("pybtex.backends", "latex")]
    before = [plugin.find_plugin(g, n) for g, n in cases]
    ck._cache_bibtex_plugins()
    ck._cache_bibtex_plugins()  # twice: wraps pybtex's function once
    scans = []
    real = plugin.entry_points
    monkeypatch.setattr(plugin, "entry_points", lambda **kw: scans.append(kw) or real(**kw))
    assert [plugin.find_plugin(g, n) for g, n in cases] == before
    n = len(scans)
    assert [plugin.find_plugin(g, n) for g, n in cases] == before
    assert len(scans) == n  # the second round scans no package metadata
    with pytest.raises(plugin.PluginNotFound):
        plugin.find_plugin("pybtex.style.formatting", "no-such-style")


def test_module_imports_are_parsed_once_per_file_version(tmp_path, monkeypatch):
    calls = []
    real = build._imports_of
    monkeypatch.setattr(build, "_imports_of", lambda path, module: calls.append(path) or real(path, module))
    monkeypatch.setattr(build, "_IMPORTS", {})
    src = tmp_path / "m.py"
    src.write_text("from analysis.core import paths\n")
    assert build._imports(src, "analysis.m") == {"analysis.core", "analysis.core.paths"}
    assert build._imports(src, "analysis.m") == {"analysis.core", "analysis.core.paths"} and len(calls) == 1
    kept = build.known_imports()
    monkeypatch.setattr(build, "_IMPORTS", {})
    build.seed_imports(kept)  # the next build, from its environment: no parsing
    assert build._imports(src, "analysis.m") == {"analysis.core", "analysis.core.paths"} and len(calls) == 1
    src.write_text("from analysis.design import load_design\n")  # a new version is parsed again
    os.utime(src, ns=(1, 1))
    assert build._imports(src, "analysis.m") == {"analysis.design", "analysis.design.load_design"}
    assert len(calls) == 2
    assert list(build.known_imports().values()) == [{"analysis.design", "analysis.design.load_design"}]
