"""Helpers the book's chapters call: read built outputs, shape tables for display.

Chapters hold prose and short calls into this module; no analysis happens here,
only reading what the pipeline wrote and arranging it for readers.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pandas as pd

from .panel import PROCESSED_DIR
from .sources import load_manifest
from .errors import DataError


@lru_cache(maxsize=None)
def processed(name: str, folder: Path = PROCESSED_DIR) -> pd.DataFrame:
    """A table written by ``python -m analysis data`` (e.g. ``"coverage"``)."""
    path = Path(folder) / f"{name}.csv"
    if not path.exists():
        raise DataError("not built yet: run `python -m analysis data`", file=str(path))
    return pd.read_csv(path, dtype={"old_la_code": str, "la_code": str}, keep_default_na=True)


def sources_table() -> pd.DataFrame:
    """The manifest as readers see it: publisher, title, release, file, sha256 (short)."""
    rows = [dict(Publisher=s.publisher, Title=s.title, Release=s.release,
                 File=s.path.rsplit("/", 1)[-1], **{"sha256 (first 12)": s.sha256[:12]})
            for s in load_manifest().values()]
    return pd.DataFrame(rows)


def measures_display() -> pd.DataFrame:
    """The data dictionary for the data chapter."""
    m = processed("measures")
    out = m[["label", "name", "unit", "first_year", "last_year", "definition"]].copy()
    out["Years"] = out["first_year"].astype("Int64").astype(str) + "–" + out["last_year"].astype("Int64").astype(str)
    return out.rename(columns={"label": "Measure", "name": "Column", "unit": "Unit",
                               "definition": "Definition"})[["Measure", "Column", "Unit", "Years", "Definition"]]


def suppression_summary() -> pd.DataFrame:
    """Per measure: LA-years published, suppressed, and the share suppressed."""
    cov = processed("coverage")
    labels = processed("measures").set_index("name")["label"]
    g = cov.groupby("measure", sort=False).agg(with_value=("las_with_value", "sum"),
                                               suppressed=("las_suppressed", "sum"))
    g = g[g["suppressed"] > 0]
    g["suppressed %"] = (100 * g["suppressed"] / (g["with_value"] + g["suppressed"])).round(1)
    g.index = [labels.get(i, i) for i in g.index]
    return g.rename(columns={"with_value": "LA-years with a value",
                             "suppressed": "LA-years suppressed"})
