"""Reader for the DfE Local Authority Interactive Tool (LAIT) long parquet.

LAIT (``bds_long_0.parquet``) holds about 300 LA measures in one long table
with seven text columns: ``Short Desc`` (the measure code), ``Data item``
(a label, filled on the first row of each measure only), ``Years``,
``LA and Regions`` (area name), ``Values``, ``LA Number`` (DfE three-digit LA
code, a float; 970 = England, 980-990 = regions) and ``Region``.

What we found in the two releases in the manifest (``lait_2025``: 2016-2025,
``lait_2024``: 2015-2024) and rely on here:

- **Years.** Every measure read here gives ``Years`` as four digits, and year
  Y is the DfE reporting year ending 31 March Y for children's social care
  measures: LAIT ``ReReferral`` equals C1 ``rereferral_percent`` of the same
  ``time_period`` for every LA-year where both are published (1,503 of 1,503
  in LAIT 2025, 1,499 of 1,499 in LAIT 2024) and for no shift of one year;
  the same holds for referrals, NFA %, CPP starts and second-plan % against
  C1/D3. Exceptions, kept as LAIT labels them: workforce measures (year =
  census at 30 September Y, equal to the CSWW file's ``time_period`` Y) and
  free school meals (January school census of year Y, inside reporting year Y).
  Other ``Years`` forms ("2016-17", "2015/16", "(Rev)") exist for other
  measures; meeting one in a measure read here is an error, not a guess.
- **Values** are text: numbers with binary noise ("76.100000000000009"),
  rounded here to 8 decimals; ``-`` marks suppressed or unavailable cells
  (``..`` once in the 2024 release). LA-years of LAs that did not exist (e.g.
  Northamptonshire after 2021) are present with ``-``.
- **Joint workforce returns**: Kingston upon Thames and Richmond upon Thames,
  and North and West Northamptonshire, carry the same workforce value each.
- Both releases are returned with their own ``source_id``; which one wins per
  LA-year is the panel's decision. The 2025 release revises 2023 and 2024
  rates (new ONS population estimates), so they differ from the 2024 release.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.core.errors import DataError, relative_path
from analysis.ingest.geography import current_la_codes
from analysis.ingest.readers.common import parse_values, read_csv_text, require_columns, tidy_frame
from analysis.ingest.readers.ees import _resolve

#: Parquet columns the reader needs (``Data item`` and ``Region`` are not read).
PARQUET_COLUMNS = ["Short Desc", "Years", "LA and Regions", "Values", "LA Number"]

#: LAIT's area numbers for England and regions -> (geographic_level, ONS code).
AREA_NUMBERS: dict[int, tuple[str, str]] = {
    970: ("National", "E92000001"),
    980: ("Regional", "E12000001"),  # North East
    981: ("Regional", "E12000002"),  # North West
    982: ("Regional", "E12000003"),  # Yorkshire and the Humber
    983: ("Regional", "E12000004"),  # East Midlands
    984: ("Regional", "E12000005"),  # West Midlands
    985: ("Regional", "E12000006"),  # East of England
    986: ("Regional", "E12000007"),  # London
    987: ("Regional", "E13000001"),  # Inner London
    988: ("Regional", "E13000002"),  # Outer London
    989: ("Regional", "E12000008"),  # South East
    990: ("Regional", "E12000009"),  # South West
}

#: LAIT measure code -> panel measure. ``axis``: the dictionary ``y_axis_name``
#: values accepted (lower case), so a change of unit in a new release is caught.
#: ``optional``: the code may be absent from a release (it is new in 2025).
#: Where LAIT publishes the same figure as an EES file the name is the same
#: (checked equal on the overlap), so the panel can choose between releases.
LAIT_MEASURES: dict[str, dict] = {
    "Continue_Assess_Comp": dict(
        measure="assessments_45wd_pct", unit="%", axis=("% completed to time",),
        definition="Percentage of continuous (single) assessments completed in the year "
                   "that were completed within 45 working days of the referral"),
    "Section_47": dict(
        measure="s47_rate_per10k", unit="rate per 10,000 children", axis=("rate per 10,000",),
        definition="Section 47 enquiries (Children Act 1989) starting in the year per 10,000 "
                   "children aged 0-17"),
    "ISCP_Conf": dict(
        measure="icpc_rate_per10k", unit="rate per 10,000 children", axis=("rate per 10,000",),
        definition="Initial child protection conferences in the year per 10,000 children "
                   "aged 0-17"),
    "ReReferral": dict(
        measure="rereferral_pct", unit="%", axis=("% of referrals",),
        definition="Percentage of referrals within 12 months of a previous referral (= C1)"),
    "CIN_Refferals_NFA": dict(
        measure="nfa_pct", unit="%", axis=("% of referrals",),
        definition="Percentage of referrals closed with no further action (= C1)"),
    "CPP_Total_NumRef": dict(
        measure="referrals", unit="count", axis=("number of children",),
        definition="Referrals to children's social care in the year (= C1)"),
    "CPP_Total_Rateper10,000": dict(
        measure="referral_rate_per10k", unit="rate per 10,000 children", axis=("rate per 10,000",),
        definition="Referrals to children's social care in the year per 10,000 children"),
    "CIN": dict(
        measure="cin_rate_per10k", unit="rate per 10,000 children", axis=("rate per 10,000",),
        definition="Children in need at 31 March per 10,000 children aged 0-17"),
    "CPP_rate": dict(
        measure="cpp_31mar_rate_per10k", unit="rate per 10,000 children",
        axis=("rate per 10,000",),
        definition="Children subject of a child protection plan at 31 March per 10,000 "
                   "children aged 0-17"),
    "CPP_Abuse": dict(
        measure="cpp_starts", unit="count", axis=("number of cpp",),
        definition="Child protection plans starting in the year (= D3 CPP_start, despite "
                   "the code's name)"),
    "CPP_Abuse_Rate": dict(
        measure="cpp_starts_rate_per10k", unit="rate per 10,000 children",
        axis=("rate per 10,000",),
        definition="Child protection plans starting in the year per 10,000 children aged 0-17"),
    "PrevRegCPR": dict(
        measure="cpp_second_subsequent_pct", unit="%", axis=("% previously plans",),
        definition="Percentage of child protection plans starting in the year that were a "
                   "second or subsequent plan (= D3)"),
    "ReRegCPR": dict(
        measure="cpp_second_subsequent", unit="count", axis=("number plans",),
        definition="Child protection plans starting in the year that were a second or "
                   "subsequent plan (= D3)"),
    "LAC": dict(
        measure="cla_rate_per10k", unit="rate per 10,000 children", axis=("rate per 10,000",),
        definition="Children looked after at 31 March per 10,000 children aged 0-17"),
    "LACnum": dict(
        measure="cla_31mar", unit="count",
        axis=("number of children looked after", "number of looked after children"),
        definition="Children looked after at 31 March"),
    "LACnum_Start": dict(
        measure="cla_starts", unit="count",
        axis=("number of children looked after", "number of looked after children"),
        definition="Children who started to be looked after in the year"),
    "LAC_Start_Rate": dict(
        measure="cla_starts_rate_per10k", unit="rate per 10,000 children",
        axis=("rate per 10,000",),
        definition="Children starting to be looked after in the year per 10,000 children"),
    "LACceased": dict(
        measure="cla_ceased", unit="count",
        axis=("number of children looked after", "number of looked after children"),
        definition="Children who ceased to be looked after in the year"),
    "LAC_Cease_Rate": dict(
        measure="cla_ceased_rate_per10k", unit="rate per 10,000 children",
        axis=("rate per 10,000",),
        definition="Children ceasing to be looked after in the year per 10,000 children"),
    "LAC_ceased_SGO": dict(
        measure="cla_ceased_sgo", unit="count", axis=("number ceased",),
        definition="Children who ceased to be looked after in the year because of a special "
                   "guardianship order (a count; the percentage is LAC_ceased_SGO%)"),
    "LAC_ceased_SGO%": dict(
        measure="cla_ceased_sgo_pct", unit="%", axis=("% ceased",), optional=True,
        definition="Percentage of children ceasing to be looked after in the year who left "
                   "through a special guardianship order (whole percent; LAIT 2025 only, "
                   "2020-2025)"),
    "LAC_SGO_FFC_Rel%": dict(
        measure="sgo_relative_former_foster_carer_pct", unit="% of SGO exits",
        axis=("% sgos", "% ceased"),
        definition="Percentage of SGO exits where the special guardian was the former "
                   "foster carer and a relative or friend"),
    "LAC_SGO_Car_Rel%": dict(
        measure="sgo_relative_other_carer_pct", unit="% of SGO exits",
        axis=("% sgos", "% ceased"),
        definition="Percentage of SGO exits where the special guardian was a relative or "
                   "friend other than a former foster carer"),
    "LAC_Foster_Placements": dict(
        measure="cla_foster_pct", unit="%",
        axis=("% children looked after", "% looked after children"),
        definition="Percentage of children looked after at 31 March placed in foster care"),
    "PriFSM": dict(
        measure="fsm_primary_pct", unit="%", axis=("% of pupils",),
        definition="Percentage of pupils in state-funded primary schools eligible for free "
                   "school meals (January school census of the year)"),
    "SecFSM": dict(
        measure="fsm_secondary_pct", unit="%", axis=("% of pupils",),
        definition="Percentage of pupils in state-funded secondary schools eligible for free "
                   "school meals (January school census of the year)"),
    "Work_Force_TO_Rate": dict(
        measure="sw_turnover_pct", unit="%", axis=("turnover rate",),
        definition="Children and family social worker turnover rate (FTE) in the year to "
                   "30 September (= CSWW turnover_rate_fte)"),
    "Work_Force_Agecy_Rate": dict(
        measure="sw_agency_pct", unit="%", axis=("% agency staff",),
        definition="Agency worker rate (FTE) at 30 September (= CSWW agency_rate_fte)"),
    "Work_Force_Vac_Rate": dict(
        measure="sw_vacancy_pct", unit="%", axis=("% vacancies",),
        definition="Social worker vacancy rate (FTE) at 30 September"),
    "Work_Force_AvgNumCase_SW": dict(
        measure="sw_caseload_per_fte", unit="cases per FTE", axis=("case load",),
        definition="Average caseload per FTE case-holding children and family social worker "
                   "at 30 September"),
    "CareApplications": dict(
        measure="care_applications_rate_per10k", unit="rate per 10,000 children",
        axis=("rate per 10,000",),
        definition="Cafcass care applications in the year per 10,000 children"),
}

_YEAR4 = re.compile(r"^\d{4}$")


def read_lait_dictionary(path: Path | str) -> pd.DataFrame:
    """Read the LAIT data dictionary (``lait_data_dictionary.csv``).

    Parameters
    ----------
    path
        The CSV file.

    Returns
    -------
    pandas.DataFrame
        The dictionary, all columns as text; at least ``Measure_short``,
        ``Measure``, ``y_axis_name``, ``Description``.

    Raises
    ------
    DataError
        The file cannot be read or lacks one of those columns.
    """
    path = Path(path)
    file = relative_path(path)
    df = read_csv_text(path, file)
    require_columns(df, ["Measure_short", "Measure", "y_axis_name", "Description"], file)
    return df


def check_dictionary(dictionary: pd.DataFrame, codes: list[str], *, file: str) -> None:
    """Check that each measure code is defined with the unit the reader assumes.

    Parameters
    ----------
    dictionary
        As returned by :func:`read_lait_dictionary`.
    codes
        LAIT measure codes to check (keys of :data:`LAIT_MEASURES`).
    file
        Dictionary file name for error messages.

    Raises
    ------
    DataError
        A code is missing from the dictionary, or its ``y_axis_name`` is not
        one the reader accepts (the unit may have changed).
    """
    short = dictionary["Measure_short"].str.strip()
    for code in codes:
        hit = np.flatnonzero(short.eq(code).to_numpy())
        spec = LAIT_MEASURES[code]
        if not len(hit):
            if spec.get("optional"):
                continue
            raise DataError(f"measure code {code!r} is not in the dictionary",
                            file=file, column="Measure_short")
        axis = str(dictionary["y_axis_name"].iloc[hit[0]]).strip()
        if axis.lower() not in spec["axis"]:
            raise DataError(f"unit of {code!r} is {axis!r}, expected one of {list(spec['axis'])} "
                            f"for measure {spec['measure']}", file=file, column="y_axis_name",
                            row=int(hit[0]) + 2)


def _read_selected(path: Path, file: str, codes: list[str]) -> pd.DataFrame:
    """Rows of the selected measure codes, with their 1-based row in the parquet."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        names = pq.read_schema(path).names
        require_columns(pd.DataFrame(columns=names), PARQUET_COLUMNS, file)
        table = pq.read_table(path, columns=PARQUET_COLUMNS)
    except DataError:
        raise
    except Exception as exc:  # pyarrow raises several types for a damaged file
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"cannot read parquet: {reason}", file=file) from None
    code = pc.utf8_trim_whitespace(table["Short Desc"].cast(pa.string()))
    idx = pc.indices_nonzero(pc.is_in(code, value_set=pa.array(codes, pa.string())))
    sub = table.take(idx).to_pandas()
    sub["Short Desc"] = sub["Short Desc"].str.strip()
    sub["_row"] = idx.to_numpy() + 1
    return sub


def read_lait(path: Path | str, source_id: str, *, codes: list[str] | None = None,
              dictionary: Path | str | None = None) -> pd.DataFrame:
    """Read the LAIT long parquet into the tidy long table.

    Parameters
    ----------
    path
        ``bds_long_0.parquet``.
    source_id
        Manifest id (``lait_2025`` or ``lait_2024``), written to ``source_id``.
    codes
        LAIT measure codes to read (default: all of :data:`LAIT_MEASURES`).
    dictionary
        The release's ``lait_data_dictionary.csv``; when given, each code's
        unit is checked against it first (:func:`check_dictionary`).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`~analysis.ingest.readers.common.TIDY_COLUMNS`; ``year`` as LAIT
        labels it (reporting year ending 31 March for CSC measures, see the
        module docstring); ``row`` is the 1-based row of the parquet table.

    Raises
    ------
    DataError
        A parquet column or a non-optional measure code is missing, a
        ``Years`` value is not a four-digit year, a value is neither a number
        nor a suppression token, an area number is unknown, or an area-year
        appears twice for one measure. Messages name file, column and row.
    """
    path = Path(path)
    file = relative_path(path)
    codes = list(codes) if codes is not None else list(LAIT_MEASURES)
    unknown = [c for c in codes if c not in LAIT_MEASURES]
    if unknown:
        raise ValueError(f"no panel measure defined for LAIT code(s) {unknown}")
    if dictionary is not None:
        check_dictionary(read_lait_dictionary(dictionary), codes, file=relative_path(dictionary))

    df = _read_selected(path, file, codes)
    present = set(df["Short Desc"])
    for c in codes:
        if c not in present and not LAIT_MEASURES[c].get("optional"):
            raise DataError(f"measure code {c!r} not found", file=file, column="Short Desc",
                            hint="was it renamed in a new release? see the data dictionary")
    rows = df["_row"].to_numpy()

    years = df["Years"].astype(str).str.strip()
    bad = ~years.str.fullmatch(_YEAR4.pattern).fillna(False).astype(bool).to_numpy()
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise DataError(f"Years {years.iloc[pos]!r} of {df['Short Desc'].iloc[pos]!r} is not a "
                        "four-digit reporting year", file=file, column="Years", row=int(rows[pos]))
    year = years.astype(int)

    number = pd.to_numeric(df["LA Number"], errors="coerce")
    bad = (number.isna() | (number != number.round())).to_numpy()
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise DataError(f"LA Number {df['LA Number'].iloc[pos]!r} is not a whole number",
                        file=file, column="LA Number", row=int(rows[pos]))
    number = number.astype(int)
    is_area = number.isin(list(AREA_NUMBERS))
    level = pd.Series("Local authority", index=df.index, dtype=object)
    area = pd.Series("", index=df.index, dtype=object)
    level[is_area] = number[is_area].map(lambda n: AREA_NUMBERS[n][0])
    area[is_area] = number[is_area].map(lambda n: AREA_NUMBERS[n][1])
    is_la = ~is_area
    dfe = number.astype(str)
    if is_la.any():
        area[is_la] = current_la_codes(None, dfe[is_la], file=file, column="LA Number",
                                       row_numbers=rows[is_la.to_numpy()]).to_numpy()

    key = pd.DataFrame({"c": df["Short Desc"], "y": year, "n": number})
    dup = key.duplicated().to_numpy()
    if dup.any():
        pos = int(np.flatnonzero(dup)[0])
        raise DataError(f"duplicate rows for {df['Short Desc'].iloc[pos]} {year.iloc[pos]} "
                        f"LA Number {number.iloc[pos]}", file=file, column="Short Desc",
                        row=int(rows[pos]))

    value, suppressed, token = parse_values(df["Values"], file=file, column="Values",
                                            row_numbers=rows)
    # Values were written as binary floats ("76.100000000000009"): round the noise away.
    value = value.round(8)
    out = pd.DataFrame({
        "geographic_level": level.to_numpy(),
        "area_code": area.to_numpy(),
        "old_la_code": dfe.where(is_la, "").to_numpy(),
        "area_name": df["LA and Regions"].astype(str).str.strip().to_numpy(),
        "year": year.to_numpy(),
        "measure": df["Short Desc"].map(lambda c: LAIT_MEASURES[c]["measure"]).to_numpy(),
        "value": value.to_numpy(),
        "suppressed": suppressed.to_numpy(),
        "token": token.to_numpy(),
        "source_id": source_id,
        "row": rows,
    })
    return tidy_frame([out.sort_values("row", kind="stable")])


def read_lait_release(source_id: str = "lait_2025") -> pd.DataFrame:
    """Fetch one LAIT release and its dictionary from the manifest and read it.

    Parameters
    ----------
    source_id
        ``lait_2025`` or ``lait_2024``; the dictionary is ``<source_id>_dictionary``.

    Returns
    -------
    pandas.DataFrame
        As :func:`read_lait`, units checked against the release's dictionary.
    """
    return read_lait(_resolve(None, source_id), source_id,
                     dictionary=_resolve(None, f"{source_id}_dictionary"))


def read_lait_all() -> pd.DataFrame:
    """Both LAIT releases, each with its own ``source_id`` (the panel picks per LA-year).

    Returns
    -------
    pandas.DataFrame
        Tidy long table of ``lait_2025`` and ``lait_2024``.
    """
    return tidy_frame([read_lait_release("lait_2025"), read_lait_release("lait_2024")])
