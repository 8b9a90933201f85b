"""Helpers every reader shares: column checks, suppression tokens, the tidy frame."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.core.errors import DataError

#: Columns of the tidy long table every reader returns.
TIDY_COLUMNS = [
    "geographic_level",  # "Local authority", "Regional" or "National"
    "area_code",         # ONS nine-character code as in the file (LA, region or country)
    "old_la_code",       # DfE three-digit LA code as string, "" when not an LA row
    "area_name",
    "year",              # DfE reporting year ending 31 March (int)
    "measure",           # panel measure name, e.g. "rereferral_pct"
    "value",             # float, NaN when suppressed or missing
    "suppressed",        # True when the file held a suppression token
    "token",             # the raw token when suppressed ("c", "x", "[z]"...), else ""
    "source_id",         # manifest id of the file
    "row",               # line number in the file (for error messages), -1 if unknown
]

#: DfE/ONS suppression and special-value tokens (compared lower-case, brackets stripped).
SUPPRESSION_TOKENS = frozenset({"c", "x", "z", "k", "u", "low", "-", ":", "..", ".", "*", "n/a", "na", "~"})

LEVELS = {"local authority": "Local authority", "regional": "Regional", "national": "National"}

_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def require_columns(df: pd.DataFrame, columns: list[str] | tuple[str, ...], file: str) -> None:
    """Raise a :class:`DataError` naming the first expected column that is absent."""
    for col in columns:
        if col not in df.columns:
            near = [c for c in df.columns if c.lower().replace("_", "") == col.lower().replace("_", "")]
            hint = f"found '{near[0]}' instead" if near else "was it renamed in a new release?"
            raise DataError("expected column is missing", file=file, column=col, hint=hint)


def parse_values(raw: pd.Series, *, file: str, column: str,
                 row_numbers: pd.Series | np.ndarray | None = None
                 ) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Parse a column of published values into numbers and suppression flags.

    Parameters
    ----------
    raw
        Column as read (strings or numbers).
    file, column
        Named in the error message.
    row_numbers
        The file's own line number for each element, for error messages;
        default ``position + 2`` (line 1 is a CSV's header).

    Returns
    -------
    value, suppressed, token
        ``value`` is float with NaN for suppressed or blank cells; ``suppressed``
        is True where the cell held a known suppression token; ``token`` keeps
        that token ('' otherwise). Blank cells are missing but not suppressed.

    Raises
    ------
    DataError
        A cell holds neither a number nor a known suppression token.
    """
    if pd.api.types.is_numeric_dtype(raw):
        value = raw.astype(float)
        n = len(raw)
        return (value.reset_index(drop=True), pd.Series(np.zeros(n, bool)),
                pd.Series([""] * n, dtype=object))
    text = raw.astype("string").fillna("").str.strip()
    # Thousands separators appear in a few old releases ("1,234").
    cleaned = text.str.replace(",", "", regex=False)
    is_number = cleaned.str.fullmatch(_NUMBER.pattern).fillna(False).astype(bool)
    blank = cleaned.eq("")
    bare = cleaned.str.lower().str.strip("[]() ")
    is_token = ~is_number & ~blank & bare.isin(SUPPRESSION_TOKENS)
    bad = ~(is_number | blank | is_token)
    if bad.any():
        pos = int(np.flatnonzero(bad.to_numpy())[0])
        row = int(np.asarray(row_numbers)[pos]) if row_numbers is not None else pos + 2
        raise DataError(f"unknown token {text.iloc[pos]!r} in a numeric column "
                        "(not a number nor a known suppression code)",
                        file=file, column=column, row=row)
    value = pd.to_numeric(cleaned.where(is_number), errors="coerce").astype(float)
    token = text.where(is_token, "").astype(object)
    return (value.reset_index(drop=True), is_token.reset_index(drop=True).astype(bool),
            token.reset_index(drop=True))


def read_csv_text(path: Path, file: str) -> pd.DataFrame:
    """Read a published CSV with every column as text (so tokens survive).

    Raises :class:`DataError` on an empty, truncated or undecodable file.
    """
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except UnicodeDecodeError:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="latin-1")
    except pd.errors.EmptyDataError:
        raise DataError("file is empty", file=file) from None
    except pd.errors.ParserError as exc:
        raise DataError(f"cannot parse CSV: {str(exc).splitlines()[0]}", file=file) from None
    df.columns = [str(c).strip() for c in df.columns]
    return df


def tidy_frame(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate reader parts into the tidy schema with stable dtypes."""
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in TIDY_COLUMNS})
    parts = [p if "row" in p.columns else p.assign(row=-1) for p in parts]
    out = pd.concat([p[TIDY_COLUMNS] for p in parts], ignore_index=True)
    out["row"] = out["row"].fillna(-1).astype(int)
    out["year"] = out["year"].astype(int)
    out["value"] = out["value"].astype(float)
    out["suppressed"] = out["suppressed"].astype(bool)
    for c in ("geographic_level", "area_code", "old_la_code", "area_name", "measure", "token", "source_id"):
        out[c] = out[c].fillna("").astype(str)
    return out


def melt_measures(df: pd.DataFrame, columns: dict[str, str], *, file: str, source_id: str,
                  year: pd.Series, level: pd.Series, area_code: pd.Series,
                  old_la_code: pd.Series, area_name: pd.Series,
                  row_numbers: pd.Series | None = None) -> pd.DataFrame:
    """Turn wide value columns into tidy rows.

    ``columns`` maps a column in the file to the panel measure name. The other
    series give, per file row, the identifying fields. ``row_numbers`` (file
    row number per frame row) makes error messages point at the right line.
    """
    require_columns(df, list(columns), file)
    parts = []
    rows = row_numbers if row_numbers is not None else pd.Series(np.arange(len(df)) + 2)
    for col, measure in columns.items():
        raw = df[col].reset_index(drop=True)
        value, suppressed, token = parse_values(raw, file=file, column=col,
                                                row_numbers=np.asarray(rows))
        parts.append(pd.DataFrame({
            "geographic_level": level.reset_index(drop=True),
            "area_code": area_code.reset_index(drop=True),
            "old_la_code": old_la_code.reset_index(drop=True),
            "area_name": area_name.reset_index(drop=True),
            "year": year.reset_index(drop=True),
            "measure": measure,
            "value": value,
            "suppressed": suppressed,
            "token": token,
            "source_id": source_id,
            "row": np.asarray(rows, dtype=int),
        }))
    return tidy_frame(parts)
