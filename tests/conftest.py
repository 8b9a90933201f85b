"""Shared test fixtures; the suite is hermetic.

Before the package is imported, the generated-output folders
(``SOS_PROCESSED_DIR``, ``SOS_RESULTS_DIR``, ``SOS_BUILD_DIR``; see
:mod:`analysis.core.paths`) are pointed at one temporary folder per test process,
so no test reads or writes the checkout's ``data/processed/``, ``results/`` or
``_build/`` (``results/published/``, committed, is read in place). What tests need
from the real data is built once per session into that folder by the fixtures
:func:`real_panel` and :func:`real_results`. The data cache (``data/raw/`` or
``$SOS_DATA_CACHE``) is shared, as a cache.

Tests of the built book, the PDF and the site (marker ``book``) read the checkout's
``_build/``: they run in ``make check-book`` after ``make report`` and ``make pdf``
(``.ci/run``), which sets ``SOS_CHECK_BOOK=1`` so the folders are left as they are.

Integration tests read the real published files through
:func:`analysis.ingest.sources.fetch` (cache, else ``$SOS_DATA_MIRROR``). They are
skipped, with that reason, only when neither is available.
"""
from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures"

if os.environ.get("SOS_CHECK_BOOK") != "1":
    _SESSION_DIR = Path(tempfile.mkdtemp(prefix="sos-tests-"))
    os.environ["SOS_PROCESSED_DIR"] = str(_SESSION_DIR / "processed")
    os.environ["SOS_RESULTS_DIR"] = str(_SESSION_DIR / "results")
    os.environ["SOS_BUILD_DIR"] = str(_SESSION_DIR / "_build")
else:
    _SESSION_DIR = None

from analysis.core import paths  # noqa: E402  (after the folders above are set)
from analysis.ingest.sources import fetch, load_manifest  # noqa: E402

# Test files that take more than about 10 s each on this 2-core machine (measured with
# ``--durations=0``: child-level pipeline 89 s, CIN study 67 s, study 32 s, appendices 29 s,
# editions 36 s, build 27 s, ...; the first of study, appendices and front to run also
# computes the session's real results, about 60 s). Under ``--dist loadfile`` xdist hands
# out files by number of tests, so a long file with few tests could start last and leave
# one worker idle; starting the longest first (the usual longest-processing-time rule)
# lets the two workers finish together. The order of the other files, and of the tests
# in every file, stays shuffled.
LONGEST_FIRST = (
    "tests/test_childlevel_pipeline.py",
    "tests/test_childlevel_cin_study.py",
    "tests/test_study.py",
    "tests/test_editions.py",
    "tests/test_appendices.py",
    "tests/test_build.py",
    "tests/test_inference.py",
    "tests/test_cli_estimate.py",
    "tests/test_bad_input.py",
    "tests/test_chapter_keys.py",
    "tests/test_childlevel_inputs.py",
    "tests/test_estimation.py",
)


def pytest_xdist_make_scheduler(config, log):
    """``--dist loadfile`` with the longest files handed out first (see LONGEST_FIRST)."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling  # only under pytest-xdist

    class LongestFirst(LoadFileScheduling):
        def _assign_work_unit(self, node):
            for scope in reversed(LONGEST_FIRST):  # each found one moves to the front
                if scope in self.workqueue:
                    self.workqueue.move_to_end(scope, last=False)
            super()._assign_work_unit(node)

    return LongestFirst(config, log)


def pytest_sessionfinish(session, exitstatus):
    if _SESSION_DIR is not None:
        shutil.rmtree(_SESSION_DIR, ignore_errors=True)


def _data_available() -> bool:
    if os.environ.get("SOS_DATA_MIRROR"):
        return True
    return all(s.cached_path.exists() for s in load_manifest().values())


def require_book_or_skip(ok: bool, why: str) -> None:
    """Skip a test of the built book, PDF or site when ``ok`` is false; fail instead under
    ``SOS_REQUIRE_BOOK=1`` (``make check-book``, where a missing book is an error)."""
    if ok:
        return
    if os.environ.get("SOS_REQUIRE_BOOK") == "1":
        pytest.fail(f"{why} (SOS_REQUIRE_BOOK=1)")
    pytest.skip(why)


def require_real_data() -> None:
    if not _data_available():
        pytest.skip("real data not available: set SOS_DATA_MIRROR=../shared/data/sources")


@pytest.fixture(scope="session")
def real_source():
    """Return a function ``id -> verified Path`` of a real source file."""
    require_real_data()
    manifest = load_manifest()
    return lambda sid: fetch(manifest[sid])


def _built_once(name: str, target: Path, build: Callable[[Path], None], tmp_path_factory) -> None:
    """Build ``name`` into ``target``; with pytest-xdist, one worker builds it and the others copy it.

    Each worker keeps its own output folders (tests may write into them); what is
    built is shared through pytest's base temporary folder, under a file lock, so
    two workers never build the same thing twice.
    """
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        build(target)
        return
    shared = tmp_path_factory.getbasetemp().parent / f"shared-{name}"
    with open(shared.parent / f"shared-{name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        if not (shared / ".complete").exists():
            build(shared)
            (shared / ".complete").touch()
    shutil.copytree(shared, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".complete"))


@pytest.fixture(scope="session", autouse=True)
def shared_reader_cache(tmp_path_factory) -> Path:
    """One readers' cache (``SOS_READER_CACHE``) for every panel build of the session.

    Shared by the pytest-xdist workers (pytest's base temporary folder), so each real
    file is parsed once per session; a build from changed files re-reads those only.
    """
    folder = tmp_path_factory.getbasetemp().parent / "readers"
    os.environ["SOS_READER_CACHE"] = str(folder)
    return folder


def public_build():
    """The public data stage in memory (:func:`analysis.ingest.panel.build_panel`), its readers
    from the session's readers' cache."""
    from analysis.ingest.panel import build_panel  # after the folders are set (see above)
    from analysis.run.build import ReaderCache, reader_cache_dir

    require_real_data()
    return build_panel(reader_cache=ReaderCache(reader_cache_dir(paths.PROCESSED_DIR)))


@pytest.fixture(scope="session")
def real_panel(tmp_path_factory) -> Path:
    """The real panel, built once per session into the session's processed folder."""
    require_real_data()
    from analysis.run.build import ensure_panel  # after the folders are set (see above)

    _built_once("processed", paths.PROCESSED_DIR, lambda d: ensure_panel(d, echo=lambda *a: None),
                tmp_path_factory)
    assert paths.PROCESSED_DIR.is_relative_to(_SESSION_DIR or paths.PROCESSED_DIR)
    return paths.PROCESSED_DIR


@pytest.fixture(scope="session")
def real_results(real_panel, tmp_path_factory) -> Path:
    """The study's results on the real panel, computed once per session."""
    from analysis.run.build import ensure_results

    _built_once("results", paths.RESULTS_DIR,
                lambda d: ensure_results(real_panel, d, echo=lambda *a: None, progress=False),
                tmp_path_factory)
    return paths.RESULTS_DIR


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES
