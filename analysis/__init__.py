"""Open, rebuildable matched difference-in-differences evaluation of Signs of Safety.

Data flows one way through the modules: ``sources`` (manifest and fetch) ->
``readers`` (one official format each, to a tidy long table) -> ``panel``
(validated LA-year panel) -> ``matching`` -> ``estimation`` -> ``evidence`` ->
figures and tables read by the book's chapters.
"""
import os
from pathlib import Path

# One BLAS thread: on this 2-core machine OpenBLAS threading slowed the small
# dense solves of the estimators 20-50x when other processes were running.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

#: Repository root (the folder holding ``pyproject.toml``).
ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "data"
