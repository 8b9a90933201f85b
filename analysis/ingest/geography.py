"""The register of English local authorities and the mapping of their codes.

``data/local_authorities.csv`` lists every upper-tier LA that appears in the
DfE children's social care releases 2012-2025: the current ONS nine-character
code, the DfE three-digit code, former ONS codes used for the same area (code
changes without boundary change: Buckinghamshire 2020, North Yorkshire and
Somerset 2023), and a ``boundary_changed`` flag for LAs whose area changed
inside the window (Dorset/BCP 2019, Northamptonshire 2021, Cumbria 2023).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from analysis.core.errors import DataError
from analysis.core.paths import DATA_DIR

REGISTER_PATH = DATA_DIR / "local_authorities.csv"


@lru_cache(maxsize=1)
def la_register() -> pd.DataFrame:
    """The LA register, one row per LA, indexed by nothing (``la_code`` unique)."""
    reg = pd.read_csv(REGISTER_PATH, dtype=str, keep_default_na=False)
    reg["boundary_changed"] = reg["boundary_changed"].eq("True")
    reg["first_year"] = reg["first_year"].astype(int)
    reg["last_year"] = reg["last_year"].astype(int)
    return reg


@lru_cache(maxsize=1)
def _lookups() -> tuple[dict[str, str], dict[str, str]]:
    reg = la_register()
    by_ons: dict[str, str] = {}
    for code, former in zip(reg["la_code"], reg["former_codes"]):
        by_ons[code] = code
        for f in filter(None, former.split(";")):
            by_ons[f] = code
    by_dfe = dict(zip(reg["old_la_code"], reg["la_code"]))
    return by_ons, by_dfe


def la_code_lookup() -> dict[str, str]:
    """Every code of the register mapped to the LA's current ONS code.

    The codes are current and former ONS codes and DfE three-digit codes.
    """
    by_ons, by_dfe = _lookups()
    return {**{str(k): v for k, v in by_dfe.items()}, **by_ons}


def current_la_codes(ons_codes: pd.Series | None, dfe_codes: pd.Series | None, *,
                     file: str, column: str,
                     row_numbers: np.ndarray | pd.Series | None = None) -> pd.Series:
    """Map LA codes found in a file to the current ONS code of the register.

    The DfE three-digit code is used where given (stable across the ONS code
    changes), else the ONS code (current or former).

    Raises
    ------
    DataError
        A code is in neither form in the register: names file, column and row.
    """
    by_ons, by_dfe = _lookups()
    if dfe_codes is not None:
        dfe = dfe_codes.astype(str).str.strip().str.replace(r"\.0$", "", regex=True)
        mapped = dfe.map(by_dfe)
        if ons_codes is not None:
            mapped = mapped.fillna(ons_codes.astype(str).str.strip().map(by_ons))
        source = dfe
    else:
        source = ons_codes.astype(str).str.strip()
        mapped = source.map(by_ons)
    bad = mapped.isna().to_numpy()
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        row = int(np.asarray(row_numbers)[pos]) if row_numbers is not None else pos + 2
        raise DataError(f"unknown LA code {source.iloc[pos]!r} (not in data/local_authorities.csv)",
                        file=file, column=column, row=row)
    return mapped.astype(str)
