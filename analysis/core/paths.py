"""Every folder and file location the pipeline reads and writes, in one place.

The defaults are the checkout's own folders. Three environment variables move
the generated outputs elsewhere (the tests build into a temporary folder, and an
author may keep several builds side by side); the committed inputs
(``data/``, ``results/published/``) never move:

- ``SOS_PROCESSED_DIR``: the validated panel (default ``data/processed/``);
- ``SOS_RESULTS_DIR``: the study's results (default ``results/``);
- ``SOS_BUILD_DIR``: the book build (default ``_build/``).

The data cache has its own variable, ``SOS_DATA_CACHE`` (see
:func:`analysis.ingest.sources.cache_dir`). The values are read when this module is
imported, so a process sets them before it starts (the build runs each chapter
in a kernel that inherits them).
"""
from __future__ import annotations

import os
from pathlib import Path

#: Repository root (the folder holding ``pyproject.toml``).
ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DIR = ROOT / "analysis"
DATA_DIR = ROOT / "data"
REFERENCE_DIR = DATA_DIR / "reference"
DESIGN_PATH = DATA_DIR / "study_design.yaml"
MANIFEST_PATH = DATA_DIR / "manifest.csv"
DEFINITIONS_PATH = DATA_DIR / "measure_definitions.csv"
CHAPTERS_DIR = ROOT / "chapters"


def _env_dir(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).resolve() if value else default


PROCESSED_DIR = _env_dir("SOS_PROCESSED_DIR", DATA_DIR / "processed")
RESULTS_DIR = _env_dir("SOS_RESULTS_DIR", ROOT / "results")
#: The published edition is committed: it stays in the checkout whatever ``SOS_RESULTS_DIR`` says.
PUBLISHED_DIR = ROOT / "results" / "published"
BUILD_DIR = _env_dir("SOS_BUILD_DIR", ROOT / "_build")
HTML_DIR = BUILD_DIR / "html"
LOG_DIR = BUILD_DIR / "logs"
PDF_PATH = BUILD_DIR / "pdf" / "report.pdf"
