"""Shared test fixtures.

Integration tests read the real published files through :func:`analysis.sources.fetch`
(cache ``data/raw/``, else ``$SOS_DATA_MIRROR``). They are skipped only when neither
is available; ``.ci/run`` sets the mirror so they always run in CI.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


def _data_available() -> bool:
    from analysis.sources import load_manifest

    if os.environ.get("SOS_DATA_MIRROR"):
        return True
    return all(s.cached_path.exists() for s in load_manifest().values())


@pytest.fixture(scope="session")
def real_source():
    """Return a function ``id -> verified Path`` of a real source file."""
    if not _data_available():
        pytest.skip("real data not available: set SOS_DATA_MIRROR=../shared/data/sources")
    from analysis.sources import fetch, load_manifest

    manifest = load_manifest()
    return lambda sid: fetch(manifest[sid])


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES
