"""Reader for DfE's children-looked-after-at-31-March characteristics (.rds), 2021-2025.

DfE's *CSC outcomes and enablers* dashboard ships ``combined_cla_31_march_data.rds``:
the EES table "children looked after at 31 March by characteristics" for
2021-2025 (England, regions, LAs), processed by DfE's analysts. Its ``Placement``
group gives, per area and year, the number of children looked after at 31 March
in each placement type; this module takes **foster placements** from it, the
measure the SFR files gave to 2019 (:mod:`analysis.ingest.readers.sfr_cla`).

What the file does not hold: the split of foster placements into placements
with a relative or friend (kinship) and other foster carers. The ``Placement``
group has nine characteristics only (foster placements; independent and
semi-independent living; other placements; other residential settings; placed
for adoption; placed with parents; residential schools; secure and children's
homes; total). So no ``cla_foster_kinship`` comes from here.

Layout quirks handled:

- every characteristic row is repeated once per ``population_count`` (starting,
  at 31 March, ceasing: a join in DfE's processing); only the "looked after on
  31 March" copy is read, and a second copy per area and year is an error;
- ``old_la_code`` is stored as integer or text; it is read as text;
- LAs that did not exist in a year (Cumberland before 2024, North and West
  Northamptonshire in 2021...) carry ``z`` in every placement row including the
  total; those LA-years are dropped. The Isles of Scilly (no looked after
  children) keeps ``z`` in its placement rows and is kept, flagged suppressed;
- the dashboard keeps only the LAs of today: Northamptonshire (2021) and Cumbria
  (2021-2023) are not in the file, so their foster placements for those years
  are a gap here.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from analysis.core.errors import DataError
from analysis.ingest.geography import current_la_codes, la_register
from analysis.ingest.readers.common import LEVELS, parse_values, require_columns, tidy_frame
from analysis.ingest.sources import fetch as fetch_source
from analysis.ingest.sources import load_manifest

#: Manifest id of the file.
SOURCE_ID = "cla_characteristics_2025"

#: Panel measures produced here: unit, definition, years, source id.
MEASURES: dict[str, dict[str, str]] = {
    "cla_foster": {"unit": "count", "source_id": SOURCE_ID, "years": "2021-2025",
                   "definition": "Children looked after at 31 March in foster placements "
                                 "(all foster placement types)"},
}

#: (cla_group, characteristic) -> measure. The total is read only to find LA-years
#: that did not exist (``z``).
CHARACTERISTICS = {("Placement", "Foster placements"): "cla_foster"}
TOTAL = ("Placement", "Total")
POPULATION = "Children looked after on 31 March each year"
VALUE_COLUMN = "cla_31_march_number"
ID_COLUMNS = ["time_period", "geographic_level", "region_code", "region_name",
              "new_la_code", "old_la_code", "la_name", "population_count",
              "cla_group", "characteristic", VALUE_COLUMN]


def _read_rds(path: Path, file: str) -> pd.DataFrame:
    import pyreadr  # only this reader needs it

    try:
        result = pyreadr.read_r(str(path))
    except Exception as exc:  # pyreadr raises its own types for bad files
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"cannot read R data file: {reason}", file=file) from None
    if len(result) != 1:
        raise DataError(f"expected one data frame in the .rds, found {len(result)}", file=file)
    return next(iter(result.values()))


def _text(s: pd.Series) -> pd.Series:
    """Codes stored as int, float or text -> text without '.0'."""
    out = s.astype(object).where(s.notna(), "")
    return out.map(lambda v: str(int(v)) if isinstance(v, (int, float, np.integer, np.floating))
                   and not isinstance(v, bool) else str(v).strip())


def read_characteristics(path: Path | str, *, source_id: str = SOURCE_ID,
                         file: str | None = None) -> pd.DataFrame:
    """Read foster placements at 31 March from ``combined_cla_31_march_data.rds``.

    Parameters
    ----------
    path
        The ``.rds`` file (or a CSV with the same columns, for tests).
    source_id
        Manifest id written into ``source_id``.
    file
        Name used in error messages (default: the file name).

    Returns
    -------
    pandas.DataFrame
        Tidy rows (:data:`~analysis.ingest.readers.common.TIDY_COLUMNS`) of ``cla_foster``
        for England, regions and LAs, 2021-2025. ``row`` is the 1-based row of
        the R data frame (a CSV's line number for a CSV).

    Raises
    ------
    DataError
        A column is missing; the placement group or foster characteristic is no
        longer there; an area has two rows for a year; a value is neither a
        number nor a suppression token; an LA code is unknown.
    """
    path = Path(path)
    file = file or path.name
    if path.suffix.lower() == ".csv":
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
        offset = 2  # header is line 1
    else:
        df = _read_rds(path, file)
        offset = 1
    require_columns(df, ID_COLUMNS, file)
    df = df.assign(_row=np.arange(len(df)) + offset)
    group, charac = df["cla_group"].fillna(""), df["characteristic"].fillna("")
    wanted = list(CHARACTERISTICS) + [TOTAL]
    for g, c in wanted:
        if not ((group == g) & (charac == c)).any():
            raise DataError(f"characteristic '{c}' of group '{g}' not found "
                            "(renamed in a new release?)", file=file, column="characteristic")
    keep = df["population_count"].eq(POPULATION) & df["geographic_level"].isin(LEVELS.values())
    sel = pd.Series(False, index=df.index)
    for g, c in wanted:
        sel |= (group == g) & (charac == c)
    d = df[keep & sel].copy()
    d["time_period"] = pd.to_numeric(d["time_period"], errors="raise").astype(int)
    d["old_la_code"] = _text(d["old_la_code"])
    d["region_code"] = _text(d["region_code"])
    d["new_la_code"] = _text(d["new_la_code"])

    key = np.where(d["geographic_level"].eq("Local authority"), d["old_la_code"],
                   np.where(d["geographic_level"].eq("Regional"), d["region_code"], "E92000001"))
    d["_key"] = key
    dup = d.duplicated(["_key", "time_period", "cla_group", "characteristic"], keep=False)
    if dup.any():
        r = d[dup].iloc[1]
        raise DataError(f"more than one row for area {r['_key']} in {r['time_period']} "
                        f"({r['characteristic']}): an unknown breakdown?", file=file,
                        column="characteristic", row=int(r["_row"]))

    # Drop LA-years that did not exist: the total itself is 'z' (not applicable).
    is_total = (d["cla_group"] == TOTAL[0]) & (d["characteristic"] == TOTAL[1])
    total = d[is_total].set_index(["_key", "time_period"])[VALUE_COLUMN].astype(str).str.strip()
    gone = set(total[(total.str.lower() == "z")].index)
    d = d[~is_total]
    exists = [(k, t) not in gone for k, t in zip(d["_key"], d["time_period"])]
    d = d[np.asarray(exists, dtype=bool)].reset_index(drop=True)

    value, suppressed, token = parse_values(d[VALUE_COLUMN].astype(str), file=file,
                                            column=VALUE_COLUMN, row_numbers=d["_row"].to_numpy())
    level = d["geographic_level"]
    is_la = level.eq("Local authority").to_numpy()
    area_code = np.where(level.eq("Regional"), d["region_code"], "E92000001").astype(object)
    area_name = np.where(level.eq("Regional"), d["region_name"].fillna(""), "England").astype(object)
    old_code = np.full(len(d), "", dtype=object)
    if is_la.any():
        codes = current_la_codes(d.loc[is_la, "new_la_code"], d.loc[is_la, "old_la_code"],
                                 file=file, column="old_la_code",
                                 row_numbers=d.loc[is_la, "_row"].to_numpy())
        names = dict(zip(la_register()["la_code"], la_register()["la_name"]))
        area_code[is_la] = codes.to_numpy()
        area_name[is_la] = codes.map(names).to_numpy()
        old_code[is_la] = d.loc[is_la, "old_la_code"].to_numpy()
    measure = [CHARACTERISTICS[(g, c)] for g, c in zip(d["cla_group"], d["characteristic"])]
    out = pd.DataFrame({
        "geographic_level": level.to_numpy(), "area_code": area_code, "old_la_code": old_code,
        "area_name": area_name, "year": d["time_period"].to_numpy(), "measure": measure,
        "value": value.to_numpy(), "suppressed": suppressed.to_numpy(), "token": token.to_numpy(),
        "source_id": source_id, "row": d["_row"].to_numpy(),
    })
    return tidy_frame([out])


def read_all(fetch: Callable[[str], Path] | None = None) -> pd.DataFrame:
    """Read the manifest's characteristics file (``cla_characteristics_2025``).

    Parameters
    ----------
    fetch
        ``manifest id -> verified local path``; default :func:`analysis.ingest.sources.fetch`.
    """
    if fetch is None:

        fetch = fetch_source
    path = Path(fetch(SOURCE_ID))
    try:

        file = load_manifest()[SOURCE_ID].path
    except (DataError, KeyError):
        file = path.name
    return read_characteristics(path, source_id=SOURCE_ID, file=file)
