"""Each outcome's rows of the results, and each measure's column of the panel, in a file of its own.

A chapter's key (:mod:`analysis.book.chapter_keys`) covers every file it reads,
by content. A findings chapter shows one outcome, or a few, but the whole of
``results/estimates.csv`` holds every outcome's numbers: read whole, a revised
figure for one outcome re-executes the chapters of all of them. So the results
step also keeps, for every outcome, its rows of the tables a findings chapter
reads (``results/.by_outcome/<outcome>/<table>.pkl``), and the data step each
measure's column of the panel (``data/processed/.by_measure/<measure>.pkl``);
the chapters read these, and re-execute only when their own outcomes' numbers
change.

A slice is exactly what the book gets from the whole table (read by
:func:`read_results_table` or :func:`read_processed_table`, then the rows of one
outcome, their index kept, or the columns ``la_code``, ``year`` and the
measure), pickled so that the column types are those of the whole table: read
from a CSV of its own, a column that is blank for one outcome would read as
another type. The slices are a derived copy; the CSV tables stay the record.
"""
from __future__ import annotations

import os
import pickle
import shutil
import tempfile
from pathlib import Path

import pandas as pd

#: Folder, inside ``results/``, of the per-outcome slices.
OUTCOME_SLICES = ".by_outcome"
#: Folder, inside ``data/processed/``, of the per-measure slices of the panel.
MEASURE_SLICES = ".by_measure"
#: The results tables sliced per outcome: those a findings chapter reads.
OUTCOME_TABLES = ("estimates", "evidence", "event_study", "matched_pairs", "balance", "notes",
                  "power", "honest_did")
#: Columns of the panel that identify a row (every measure's slice holds them).
PANEL_KEYS = ("la_code", "year")


def read_results_table(path: Path) -> pd.DataFrame:
    """A table of ``results/`` as the book reads it."""
    return pd.read_csv(path, keep_default_na=True)


def read_processed_table(path: Path) -> pd.DataFrame:
    """A table of ``data/processed/`` as the book reads it."""
    return pd.read_csv(path, dtype={"old_la_code": str, "la_code": str}, keep_default_na=True)


def _pickle(obj: pd.DataFrame) -> bytes:
    return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


def _replace_folder(folder: Path, files: dict[str, bytes]) -> list[Path]:
    """Make ``folder`` hold exactly ``files`` (relative path -> bytes), swapped in whole."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-slices-", dir=folder.parent))
    try:
        for rel, data in files.items():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).write_bytes(data)
        old = folder.with_name(folder.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if folder.exists():
            os.replace(folder, old)
        os.replace(tmp, folder)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return [folder / rel for rel in files]


def outcome_slice_path(results_dir: Path, outcome: str, table: str) -> Path:
    """Where the results step keeps ``outcome``'s rows of ``table``."""
    return Path(results_dir) / OUTCOME_SLICES / outcome / f"{table}.pkl"


def measure_slice_path(processed_dir: Path, measure: str) -> Path:
    """Where the data step keeps ``measure``'s column of the panel."""
    return Path(processed_dir) / MEASURE_SLICES / f"{measure}.pkl"


def write_outcome_slices(results_dir: Path) -> list[Path]:
    """Write every outcome's rows of :data:`OUTCOME_TABLES` from the CSV tables in ``results_dir``.

    Outcomes are those of ``evidence.csv`` and ``estimates.csv``; a table that is
    absent has no slices (the book then finds none, as it finds no table).
    """
    results_dir = Path(results_dir)
    tables = {t: read_results_table(results_dir / f"{t}.csv") for t in OUTCOME_TABLES
              if (results_dir / f"{t}.csv").exists()}
    outcomes = list(dict.fromkeys(str(o) for t in ("evidence", "estimates") if t in tables
                                  for o in tables[t]["outcome"].dropna()))
    files = {f"{o}/{t}.pkl": _pickle(df[df["outcome"] == o])
             for o in outcomes for t, df in tables.items()}
    return _replace_folder(results_dir / OUTCOME_SLICES, files)


def write_measure_slices(processed_dir: Path) -> list[Path]:
    """Write each measure's column of ``panel.csv`` in ``processed_dir`` (with ``la_code`` and ``year``)."""
    processed_dir = Path(processed_dir)
    panel = read_processed_table(processed_dir / "panel.csv")
    keys = list(PANEL_KEYS)
    numeric = [c for c in panel.columns if c not in keys and pd.api.types.is_numeric_dtype(panel[c])]
    files = {f"{m}.pkl": _pickle(panel[keys + [m]]) for m in numeric}
    return _replace_folder(processed_dir / MEASURE_SLICES, files)


def read_slice(path: Path) -> pd.DataFrame | None:
    """The slice at ``path``, or None when there is none (the caller then reads the whole table)."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return None
    return pickle.loads(data)
