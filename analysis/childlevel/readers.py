"""Readers and validation for child-level returns: SSDA903 (CSV) and CIN census (XML).

Everything here keeps every record. Readers parse what they can and keep what
they cannot (as ``<field>_unparsed`` text); :func:`validate_903` and
:func:`validate_cin` report each problem by rule, child, field and file row;
``strict=True`` raises a one-line :class:`~analysis.core.errors.DataError` naming
file, column and row of the first problem instead. No row is ever dropped.

SSDA903 (children looked after), one CSV per LA per year as LAs return them
--------------------------------------------------------------------------
``read_903_header(path, year=None, la=None) -> DataFrame``
    ``la, year, child, sex, dob, ethnic, upn, mother, mc_dob,
    dob_unparsed, mc_dob_unparsed, <extra columns>, source_file, row``
``read_903_episodes(path, year=None, la=None) -> DataFrame``
    ``la, year, child, decom, rne, ls, cin, place, place_provider, dec, rec,
    reason_place_change, home_post, pl_post, urn, decom_unparsed,
    dec_unparsed, <extra columns>, source_file, row``

dtypes: ``la``, ``child``, ``upn``, postcodes, ``urn``, ``source_file`` are
strings (``str``, NaN when blank); code fields (``sex``, ``ethnic``, ``mother``,
``rne``, ``ls``, ``cin``, ``place``, ``place_provider``, ``rec``,
``reason_place_change``) are ``category`` holding the file's text (trimmed;
NaN when blank; invalid codes are kept as they are, for validation to report);
dates are ``datetime64[s]`` (NaT when blank *or* unparsable: then
``<date>_unparsed`` holds the raw text, else NaN); ``year`` and ``row`` are
int64. ``dec`` is NaT for an episode still open at the end of the return's
year. ``row`` is the line in the file (line 1 is the column header).
Column names in the file are matched case-insensitively after trimming;
columns the spec does not know (e.g. ``UASC``, ``DUC``) are kept, lower-cased,
as text. ``CHILD``, ``SEX`` and ``DOB`` (header) and ``CHILD``, ``DECOM`` and
``PLACE`` (episodes) must exist or the reader raises :class:`DataError`; other
spec columns that are absent are added as blank and listed in
``df.attrs["missing_columns"]`` (validation reports them, rule
``missing_column``).

Dates are read as ``%d/%m/%Y`` (the return's format) and, failing that, as
ISO ``%Y-%m-%d`` (liia-tools' cleaned files). Impossible dates (31/02/2016)
are unparsable.

*Which LA and year.* The 903 file does not name its LA. ``la`` (any code you
choose: ONS ``E09000005`` or DfE ``202``) is taken from the argument; else from
a column ``LA`` in the file (combined files, as liia-tools writes them); else
from the file name: an ONS code (``E09000005_episodes.csv``), or else a single
three-digit DfE code bounded by non-digits (``202_header_2019.csv``; ``903`` is
never taken for one). ``year`` (DfE reporting year ending 31 March) is taken
from the argument, else from a ``YEAR`` column. Neither found: DataError.

CIN census, XML per the DfE schema (one file per LA per year)
-------------------------------------------------------------
``read_cin_census(path, year=None, la=None) -> dict[str, DataFrame]`` with keys

* ``children``: ``la, year, child (LAchildID), upn, former_upn, upn_unknown,
  sex (GenderCurrent, or Sex in files from 2024), dob (PersonBirthDate),
  expected_dob, death_date, ethnicity, disabilities ("HAND;HEAR")``
* ``referrals`` (one per CINdetails; also under the key ``cin_details``):
  ``la, year, child, referral_id, cin_referral_date, referral_source,
  primary_need, cin_closure_date, reason_for_closure, date_of_initial_cpc,
  referral_nfa (boolean, NA if blank/unparsable)``
* ``assessments``: ``la, year, child, referral_id,
  assessment_actual_start_date, assessment_internal_review_date,
  assessment_authorisation_date, factors ("2A;2B", "" when none)``
* ``cin_plans``: ``la, year, child, referral_id, cin_plan_start_date,
  cin_plan_end_date``
* ``s47``: ``la, year, child, referral_id, s47_actual_start_date,
  initial_cpc_target, icpc_date (DateOfInitialCPC), icpc_not_required (boolean)``
* ``cpp``: ``la, year, child, referral_id, cpp_start_date, cpp_end_date,
  initial_category_of_abuse, latest_category_of_abuse,
  number_of_previous_cpp (Int64), review_dates ("2023-02-15;...")``
* ``header``: one row ``collection, header_year, reference_date, lea, source_file``

each (but ``header``) ending ``source_file, row``; ``row`` is the line of the
record's opening tag (``<Child>``, ``<CINdetails>``, ``<Assessments>``...).
``referral_id`` is the line of the ``<CINdetails>`` the record belongs to: with
``source_file`` it joins assessments, s47, plans and CPPs to their referral.
Dates are ISO ``YYYY-MM-DD`` as ``datetime64[s]`` with ``<col>_unparsed`` as for
the 903; codes are text (``str``). ``la`` is the argument, else the header's
``<LEA>`` (DfE code); ``year`` the argument, else the year of the header's
``<ReferenceDate>``. The XML is streamed (``xml.parsers.expat``, the standard
library's parser under ElementTree, used directly because it reports the line
of each element) and one ``<Child>`` at a time is held in memory.

Validation
----------
``validate_903(header, episodes, year=None, strict=False)`` and
``validate_cin(tables, year=None, strict=False)`` return
``DataFrame[rule, child, field, value, file, row, message, la, year]``
(``child`` "" when missing; ``field`` is the file's own field name, e.g.
``PLACE`` or ``CINreferralDate``), sorted by file and row. Code lists and
required fields come from :mod:`analysis.childlevel.codes` for each row's
``year`` (``year=`` overrides). Rules:

``missing_column``  a spec column absent from the 903 file (row 1)
``required``        a field the spec says cannot be blank is blank
``code``            a value not in the year's code list (each factor/disability too)
``date``            a date that does not parse (also ``bool``/``int`` for those kinds)
``dec_before_decom`` 903: DEC earlier than DECOM
``overlap``         903: an episode starts before the child's previous episode
                    ended, or after an open one (same LA, year, child)
``after_year_end``  a date after 31 March of the return's year (903 DECOM/DEC;
                    CIN dates but ExpectedPersonBirthDate)
``duplicate_child`` a child twice in the 903 header or in the CIN census
``no_header``       903: an episode's child is not in that LA-year's header
``end_before_start`` CIN: closure before referral, authorisation before start
                    of assessment, CPP end before start, plan end before start
"""
from __future__ import annotations

import re
import xml.parsers.expat
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from analysis.childlevel import codes as _codes
from analysis.core.errors import DataError, relative_path

HEADER_FIELDS = {"CHILD": "id", "SEX": "code", "DOB": "date", "ETHNIC": "code",
                 "UPN": "string", "MOTHER": "code", "MC_DOB": "date"}
EPISODE_FIELDS = {"CHILD": "id", "DECOM": "date", "RNE": "code", "LS": "code", "CIN": "code",
                  "PLACE": "code", "PLACE_PROVIDER": "code", "DEC": "date", "REC": "code",
                  "REASON_PLACE_CHANGE": "code", "HOME_POST": "string", "PL_POST": "string",
                  "URN": "string"}
HEADER_REQUIRED = ("CHILD", "SEX", "DOB")
EPISODE_REQUIRED = ("CHILD", "DECOM", "PLACE")
DATE_FORMATS_903 = ("%d/%m/%Y", "%Y-%m-%d")
REPORT_COLUMNS = ["rule", "child", "field", "value", "file", "row", "message", "la", "year"]

_ONS = re.compile(r"(?<![A-Za-z0-9])([EW]\d{8})(?!\d)")
_DFE = re.compile(r"(?<!\d)(\d{3})(?!\d)")


# ------------------------------------------------------------------ helpers

def la_from_name(path: str | Path) -> str | None:
    """The LA code in a file name (ONS code, else one three-digit DfE code), or None."""
    name = Path(path).name
    ons = set(_ONS.findall(name))
    if len(ons) == 1:
        return ons.pop()
    dfe = {c for c in _DFE.findall(_ONS.sub(" ", name)) if c != "903"}
    if len(dfe) == 1 and not ons:
        return dfe.pop()
    return None


def _read_csv_text(path: Path, file: str) -> pa.Table:
    """Every column as text; blank cells null; names trimmed and upper-cased."""
    if not Path(path).exists():
        raise DataError("file not found", file=file)
    if Path(path).stat().st_size == 0:
        raise DataError("file is empty", file=file)
    encodings = ("utf8", "latin-1")
    for enc in encodings:
        try:
            names = pacsv.open_csv(path, read_options=pacsv.ReadOptions(encoding=enc)).schema.names
            table = pacsv.read_csv(
                path,
                read_options=pacsv.ReadOptions(encoding=enc, block_size=8 << 20),
                convert_options=pacsv.ConvertOptions(
                    column_types={n: pa.string() for n in names},
                    strings_can_be_null=True, null_values=[""], quoted_strings_can_be_null=True))
            break
        except pa.ArrowInvalid as exc:
            msg = str(exc).splitlines()[0]
            if "Empty CSV" in msg:
                raise DataError("file is empty", file=file) from None
            if enc == encodings[-1] or "UTF8" not in msg.upper():
                raise DataError(f"cannot parse CSV: {msg}", file=file) from None
    return table.rename_columns([str(n).strip().upper() for n in table.column_names])


def _trimmed(col):
    col = pc.utf8_trim_whitespace(col)
    return pc.if_else(pc.equal(col, ""), pa.scalar(None, pa.string()), col)


def _text(col) -> pd.Series:
    """Arrow string column -> pandas str series, trimmed, blank -> NaN."""
    return _trimmed(col).to_pandas().astype("str")


def _category(col) -> pd.Series:
    """Arrow string column -> pandas category (trimmed, blank -> NaN)."""
    enc = pc.dictionary_encode(_trimmed(col)).combine_chunks()
    return pd.Series(pd.Categorical.from_codes(
        enc.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int32),
        categories=pd.Index(enc.dictionary.to_pylist(), dtype="str")))


def _arrow_dates(col, formats) -> tuple[pd.Series, pd.Series]:
    """Arrow text dates -> (datetime64[s], raw text where unparsable), parsing each distinct value once."""
    enc = pc.dictionary_encode(_trimmed(col)).combine_chunks()
    codes = enc.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    uniq = pd.Series(enc.dictionary.to_pylist(), dtype=object)
    return _dates_from_codes(codes, uniq, formats, lambda: _text(col))


def _parse_dates(raw: pd.Series, formats: tuple[str, ...]) -> tuple[pd.Series, pd.Series]:
    """Parse text dates; (datetime64[s] with NaT, raw text where it did not parse)."""
    codes, uniq = pd.factorize(raw, use_na_sentinel=True)
    uniq = pd.Series(np.asarray(uniq, dtype=object))
    dates, unparsed = _dates_from_codes(codes, uniq, formats, lambda: raw)
    return dates.set_axis(raw.index), unparsed.set_axis(raw.index)


def _dates_from_codes(codes, uniq, formats, raw_fn):
    n = len(codes)
    parsed = pd.Series(pd.NaT, index=uniq.index, dtype="datetime64[s]")
    todo = pd.Series(True, index=uniq.index)
    for fmt in formats:
        if not todo.any():
            break
        got = pd.to_datetime(uniq[todo], format=fmt, errors="coerce")
        got = got.astype("datetime64[s]")
        ok = got.notna()
        parsed[got.index[ok]] = got[ok]
        todo[got.index[ok]] = False
    values = np.append(parsed.to_numpy(), np.datetime64("NaT", "s"))
    dates = pd.Series(values[codes], dtype="datetime64[s]")     # code -1 -> NaT
    bad_uniq = np.append(todo.to_numpy(), False)
    bad = bad_uniq[codes]
    if not bad.any():
        return dates, pd.Series(np.nan, index=range(n), dtype="str")
    raw = raw_fn().reset_index(drop=True)
    return dates, raw.where(bad).astype("str")


def _resolve_la_year(table: pa.Table, path: Path, file: str, la, year):
    n = table.num_rows
    if la is not None:
        la_col = pd.Series([str(la)] * n, dtype="str")
    elif "LA" in table.column_names:
        la_col = _category(table["LA"])
    else:
        found = la_from_name(path)
        if found is None:
            raise DataError("the LA is not in an SSDA903 file: pass la= or put the LA code "
                            "in the file name", file=file)
        la_col = pd.Series([found] * n, dtype="str")
    if year is not None:
        year_col = np.full(n, int(year), dtype=np.int64)
    elif "YEAR" in table.column_names:
        try:
            y = pd.Series(pc.cast(_trimmed(table["YEAR"]), pa.int64()).to_numpy(zero_copy_only=False))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            y = pd.to_numeric(_text(table["YEAR"]), errors="coerce")
        if y.isna().any():
            pos = int(np.flatnonzero(y.isna().to_numpy())[0])
            raise DataError("YEAR is not a year", file=file, column="YEAR", row=pos + 2)
        year_col = y.to_numpy(dtype=np.int64)
    else:
        raise DataError("no reporting year: pass year= (DfE year ending 31 March)", file=file)
    return la_col, year_col


def _read_903(path, year, la, fields: dict, structural: tuple, kind: str) -> pd.DataFrame:
    path = Path(path)
    file = relative_path(path)
    table = _read_csv_text(path, file)
    names = table.column_names
    for col in structural:
        if col not in names:
            raise DataError(f"expected SSDA903 {kind} column is missing", file=file, column=col,
                            hint=f"columns found: {', '.join(names[:15])}")
    la_col, year_col = _resolve_la_year(table, path, file, la, year)
    n = table.num_rows
    out = {"la": la_col, "year": year_col}
    unparsed = {}
    missing = []
    for name, k in fields.items():
        col = name.lower()
        if name not in names:
            missing.append(name)
            if k == "date":
                out[col] = pd.Series(np.full(n, np.datetime64("NaT"), "datetime64[s]"))
                unparsed[f"{col}_unparsed"] = pd.Series([np.nan] * n, dtype="str")
            elif k == "code":
                out[col] = pd.Series(pd.Categorical([np.nan] * n))
            else:
                out[col] = pd.Series([np.nan] * n, dtype="str")
            continue
        if k == "date":
            out[col], unparsed[f"{col}_unparsed"] = _arrow_dates(table[name], DATE_FORMATS_903)
        elif k == "code":
            out[col] = _category(table[name])
        else:
            out[col] = _text(table[name])
    out.update(unparsed)
    for name in names:
        if name not in fields and name not in ("LA", "YEAR"):
            col = name.lower()
            out[col if col not in out else f"file_{col}"] = _text(table[name])
    out["source_file"] = pd.Series(pd.Categorical([file] * n)) if n else pd.Series([], dtype="str")
    out["row"] = np.arange(2, n + 2, dtype=np.int64)
    df = pd.DataFrame({k: (v.reset_index(drop=True) if isinstance(v, pd.Series) else v)
                       for k, v in out.items()})
    df.attrs["missing_columns"] = missing
    df.attrs["source_file"] = file
    return df


def read_903_header(path, year: int | None = None, la: str | None = None) -> pd.DataFrame:
    """Read an SSDA903 header file (one row per child); see the module docstring."""
    return _read_903(path, year, la, HEADER_FIELDS, HEADER_REQUIRED, "header")


def read_903_episodes(path, year: int | None = None, la: str | None = None) -> pd.DataFrame:
    """Read an SSDA903 episodes file (one row per episode); see the module docstring."""
    return _read_903(path, year, la, EPISODE_FIELDS, EPISODE_REQUIRED, "episodes")


# ------------------------------------------------------------------ CIN census

#: table -> (record element, [(xml element, column, kind)]); kind: date/code/bool/int/str/list
CIN_TABLES = {
    "children": ("Child", [
        ("LAchildID", "child", "str"), ("UPN", "upn", "str"), ("FormerUPN", "former_upn", "str"),
        ("UPNunknown", "upn_unknown", "code"), ("GenderCurrent", "sex", "code"),
        ("PersonBirthDate", "dob", "date"), ("ExpectedPersonBirthDate", "expected_dob", "date"),
        ("PersonDeathDate", "death_date", "date"), ("Ethnicity", "ethnicity", "code"),
        ("Disability", "disabilities", "list")]),
    "referrals": ("CINdetails", [
        ("CINreferralDate", "cin_referral_date", "date"), ("ReferralSource", "referral_source", "code"),
        ("PrimaryNeedCode", "primary_need", "code"), ("CINclosureDate", "cin_closure_date", "date"),
        ("ReasonForClosure", "reason_for_closure", "code"),
        ("DateOfInitialCPC", "date_of_initial_cpc", "date"), ("ReferralNFA", "referral_nfa", "bool")]),
    "assessments": ("Assessments", [
        ("AssessmentActualStartDate", "assessment_actual_start_date", "date"),
        ("AssessmentInternalReviewDate", "assessment_internal_review_date", "date"),
        ("AssessmentAuthorisationDate", "assessment_authorisation_date", "date"),
        ("AssessmentFactors", "factors", "list")]),
    "cin_plans": ("CINPlanDates", [
        ("CINPlanStartDate", "cin_plan_start_date", "date"),
        ("CINPlanEndDate", "cin_plan_end_date", "date")]),
    "s47": ("Section47", [
        ("S47ActualStartDate", "s47_actual_start_date", "date"),
        ("InitialCPCtarget", "initial_cpc_target", "date"), ("DateOfInitialCPC", "icpc_date", "date"),
        ("ICPCnotRequired", "icpc_not_required", "bool")]),
    "cpp": ("ChildProtectionPlans", [
        ("CPPstartDate", "cpp_start_date", "date"), ("CPPendDate", "cpp_end_date", "date"),
        ("InitialCategoryOfAbuse", "initial_category_of_abuse", "code"),
        ("LatestCategoryOfAbuse", "latest_category_of_abuse", "code"),
        ("NumberOfPreviousCPP", "number_of_previous_cpp", "int"), ("CPPreviewDate", "review_dates", "list")]),
}
#: XSD record type of each element of ``children`` (its elements sit in two wrappers).
_CHILD_RECORD = {"Ethnicity": "ChildCharacteristics", "Disability": "ChildCharacteristics"}
_TRUE, _FALSE = {"true", "1"}, {"false", "0"}


class _Node:
    __slots__ = ("tag", "line", "text", "kids")

    def __init__(self, tag, line):
        self.tag, self.line, self.text, self.kids = tag, line, [], []

    def first(self, tag):
        for k in self.kids:
            if k.tag == tag:
                return k
        return None

    def value(self, tag):
        k = self.first(tag)
        if k is None:
            return None
        t = "".join(k.text).strip()
        return t if t else None

    def all(self, tag):
        return [k for k in self.kids if k.tag == tag]


def _iter_nodes(path: Path, file: str, on_header, on_child) -> None:
    """Stream the XML: call ``on_header(node)`` and ``on_child(node)`` as they close."""
    p = xml.parsers.expat.ParserCreate()
    stack: list[_Node] = []

    def start(tag, attrs):
        node = _Node(tag, p.CurrentLineNumber)
        if stack and len(stack) >= 2 and stack[1].tag in ("Children", "Header") or len(stack) > 2:
            stack[-1].kids.append(node)
        stack.append(node)

    def end(tag):
        node = stack.pop()
        if tag == "Child":
            on_child(node)
        elif tag == "Header":
            on_header(node)

    def chars(data):
        if stack:
            stack[-1].text.append(data)

    p.StartElementHandler, p.EndElementHandler, p.CharacterDataHandler = start, end, chars
    p.buffer_text = True
    try:
        with open(path, "rb") as fh:
            p.ParseFile(fh)
    except FileNotFoundError:
        raise DataError("file not found", file=file) from None
    except xml.parsers.expat.ExpatError as exc:
        raise DataError(f"malformed XML: {xml.parsers.expat.ErrorString(exc.code)}",
                        file=file, row=exc.lineno) from None


def read_cin_census(path, year: int | None = None, la: str | None = None) -> dict[str, pd.DataFrame]:
    """Read a CIN census XML file into tables; see the module docstring."""
    path = Path(path)
    file = relative_path(path)
    rows = {t: [] for t in CIN_TABLES}
    head: dict = {}

    def on_header(node):
        cd = node.first("CollectionDetails") or _Node("", 0)
        src = node.first("Source") or _Node("", 0)
        head.update(collection=cd.value("Collection"), header_year=cd.value("Year"),
                    reference_date=cd.value("ReferenceDate"), lea=src.value("LEA"))

    def on_child(node):
        ids = node.first("ChildIdentifiers") or _Node("", node.line)
        chars = node.first("ChildCharacteristics") or _Node("", node.line)
        child = ids.value("LAchildID")
        dis = chars.first("Disabilities")
        sex = ids.value("GenderCurrent")
        rows["children"].append({
            "child": child, "upn": ids.value("UPN"), "former_upn": ids.value("FormerUPN"),
            "upn_unknown": ids.value("UPNunknown"),
            "sex": sex if sex is not None else ids.value("Sex"),
            "dob": ids.value("PersonBirthDate"), "expected_dob": ids.value("ExpectedPersonBirthDate"),
            "death_date": ids.value("PersonDeathDate"), "ethnicity": chars.value("Ethnicity"),
            "disabilities": _joined(dis, "Disability"), "row": node.line})
        for det in node.all("CINdetails"):
            rid = det.line
            rows["referrals"].append({"child": child, "referral_id": rid, "row": det.line,
                                      **{c: det.value(e) for e, c, _ in CIN_TABLES["referrals"][1]}})
            for a in det.all("Assessments"):
                rows["assessments"].append({
                    "child": child, "referral_id": rid, "row": a.line,
                    "assessment_actual_start_date": a.value("AssessmentActualStartDate"),
                    "assessment_internal_review_date": a.value("AssessmentInternalReviewDate"),
                    "assessment_authorisation_date": a.value("AssessmentAuthorisationDate"),
                    "factors": _joined(a.first("FactorsIdentifiedAtAssessment"), "AssessmentFactors")})
            for table in ("cin_plans", "s47"):
                record, spec = CIN_TABLES[table]
                for r in det.all(record):
                    rows[table].append({"child": child, "referral_id": rid, "row": r.line,
                                        **{c: r.value(e) for e, c, _ in spec}})
            for r in det.all("ChildProtectionPlans"):
                rec = {"child": child, "referral_id": rid, "row": r.line,
                       **{c: r.value(e) for e, c, k in CIN_TABLES["cpp"][1] if k != "list"}}
                rec["review_dates"] = _joined(r.first("Reviews"), "CPPreviewDate")
                rows["cpp"].append(rec)

    _iter_nodes(path, file, on_header, on_child)
    if la is None:
        la = head.get("lea")
    if year is None:
        ref = head.get("reference_date") or ""
        if not re.match(r"^\d{4}-", ref):
            raise DataError("no reporting year: pass year= (no ReferenceDate in the header)", file=file)
        year = int(ref[:4])
    out = {}
    for table, (_, spec) in CIN_TABLES.items():
        out[table] = _cin_frame(rows[table], spec, table, la, int(year), file)
    out["cin_details"] = out["referrals"]
    out["header"] = pd.DataFrame([{**{k: head.get(k) for k in
                                      ("collection", "header_year", "reference_date", "lea")},
                                   "source_file": file}])
    return out


def _joined(node, tag) -> str | None:
    if node is None:
        return None
    return ";".join("".join(k.text).strip() for k in node.all(tag))


def _cin_frame(rows: list[dict], spec, table: str, la, year: int, file: str) -> pd.DataFrame:
    cols = [c for _, c, _ in spec]
    keyed = ["child"] if table == "children" else ["child", "referral_id"]
    df = pd.DataFrame(rows, columns=[*keyed, *[c for c in cols if c not in keyed], "row"])
    n = len(df)
    front = pd.DataFrame({"la": pd.Series([None if la is None else str(la)] * n, dtype="str"),
                          "year": np.full(n, year, dtype=np.int64)})
    df = pd.concat([front, df], axis=1)
    df["child"] = df["child"].astype("str")
    if "referral_id" in df:
        df["referral_id"] = df["referral_id"].astype(np.int64)
    unparsed = {}
    for _, col, kind in spec:
        if col == "child":
            continue
        raw = df[col].astype("str")
        if kind == "date":
            df[col], unparsed[f"{col}_unparsed"] = _parse_dates(raw, ("%Y-%m-%d",))
        elif kind == "bool":
            low = raw.str.lower()
            df[col] = pd.array(np.where(low.isin(_TRUE), True, np.where(low.isin(_FALSE), False, None)),
                               dtype="boolean")
            df.loc[raw.isna(), col] = pd.NA
            unparsed[f"{col}_unparsed"] = raw.where(raw.notna() & ~low.isin(_TRUE | _FALSE)).astype("str")
        elif kind == "int":
            num = pd.to_numeric(raw, errors="coerce")
            ok = num.notna() & (num == num.round())
            df[col] = num.where(ok).astype("Int64")
            unparsed[f"{col}_unparsed"] = raw.where(raw.notna() & ~ok).astype("str")
        else:
            df[col] = raw
    for k, v in unparsed.items():
        df[k] = v
    df["source_file"] = file
    df["row"] = df.pop("row").astype(np.int64)
    return df


# ------------------------------------------------------------------ validation

def _report(parts: list[pd.DataFrame], strict: bool) -> pd.DataFrame:
    parts = [p for p in parts if len(p)]
    if not parts:
        out = pd.DataFrame({c: pd.Series(dtype="int64" if c in ("row", "year") else "str")
                            for c in REPORT_COLUMNS})
    else:
        out = pd.concat([p[REPORT_COLUMNS] for p in parts], ignore_index=True)
        for c in ("rule", "child", "field", "value", "file", "message", "la"):
            out[c] = out[c].astype("str").fillna("")
        out["row"] = out["row"].astype(np.int64)
        out["year"] = out["year"].astype(np.int64)
        out = out.sort_values(["file", "row", "field", "rule"], kind="stable").reset_index(drop=True)
    if strict and len(out):
        first = out.iloc[0]
        raise DataError(f"{first['rule']}: {first['message']}", file=first["file"],
                        column=first["field"], row=int(first["row"]))
    return out


def _problems(df: pd.DataFrame, mask, rule: str, field: str, value, message) -> pd.DataFrame:
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return pd.DataFrame(columns=REPORT_COLUMNS)
    sub = df.loc[mask]
    if callable(value):
        value = value(sub)
    val = value.loc[sub.index] if isinstance(value, pd.Series) else pd.Series(value, index=sub.index)
    val = val.astype(object).where(val.notna(), "").astype(str)
    msg = message(val) if callable(message) else pd.Series(message, index=sub.index)
    return pd.DataFrame({
        "rule": rule, "child": sub["child"].astype(object).where(sub["child"].notna(), ""),
        "field": field, "value": val, "file": sub["source_file"].astype(str),
        "row": sub["row"].to_numpy(), "message": msg, "la": sub["la"].astype(object),
        "year": sub["year"].to_numpy()})


def _year_groups(df: pd.DataFrame, year, lists_fn):
    """(year label, code lists, rows) for each set of years whose rules are identical."""
    if year is not None:
        yield int(year), lists_fn(int(year)), df
        return
    years = sorted(int(y) for y in pd.unique(df["year"]))
    groups: dict = {}
    for y in years:
        lists = lists_fn(y)
        key = tuple(sorted(lists.fields.items()))
        groups.setdefault(key, []).append((y, lists))
    for members in groups.values():
        ys = [y for y, _ in members]
        lists = members[-1][1]
        if len(groups) == 1:
            yield ys[-1], lists, df
        else:
            yield ys[-1], lists, df[df["year"].isin(ys).to_numpy()]


def _row_year_end(d: pd.DataFrame, year) -> np.ndarray:
    if year is not None:
        return np.full(len(d), _year_end(int(year)))
    y = d["year"].to_numpy()
    ends = {int(v): _year_end(int(v)) for v in pd.unique(y)}
    out = np.empty(len(d), dtype="datetime64[s]")
    for v, end in ends.items():
        out[y == v] = end
    return out


def _keys(df: pd.DataFrame, cols) -> np.ndarray:
    return pd.util.hash_pandas_object(df[cols].astype(
        {c: object for c in cols if c != "year"}), index=False).to_numpy()


def _field_checks(df, table, fields, year, lists, parts, missing=()):
    """Required / code / date checks for one table of one year."""
    for name, kind in fields:
        col = name.lower() if lists.collection == "903" else kind[1]
        kind_ = kind if lists.collection == "903" else kind[0]
        key = f"{table}.{name}" if lists.collection == "903" else kind[2]
        rule = lists.fields.get(key)
        if rule is None or col not in df.columns:
            continue
        if name in missing:
            parts.append(pd.DataFrame([{
                "rule": "missing_column", "child": "", "field": name, "value": "",
                "file": df.attrs.get("source_file", str(df["source_file"].iloc[0]) if len(df) else ""),
                "row": 1, "message": f"the spec ({lists.source}) has column {name}; the file does not",
                "la": str(df["la"].iloc[0]) if len(df) else "", "year": year}]))
            continue
        values = df[col]
        unparsed = df.get(f"{col}_unparsed")
        blank = values.isna().to_numpy()
        if unparsed is not None:
            bad = unparsed.notna().to_numpy()
            blank = blank & ~bad
            if bad.any():
                what = {"date": "date", "bool": "true/false value", "int": "whole number"}.get(kind_, kind_)
                parts.append(_problems(df, bad, kind_, name, unparsed,
                                       lambda v, n=name, w=what: f"{n} " + v.map(repr) + f" is not a valid {w}"))
        if rule.required and blank.any():
            parts.append(_problems(df, blank, "required", name, "",
                                   f"{name} is blank but required by {lists.source}"))
        if rule.codes is not None and kind_ in ("code", "list"):
            allowed = rule.codes
            if kind_ == "list":
                exploded = values.dropna().str.split(";").explode()
                exploded = exploded[exploded.notna() & (exploded != "")]
                bad_idx = exploded[~exploded.isin(allowed)]
                if len(bad_idx):
                    sub = df.loc[bad_idx.index]
                    sub = sub.assign(_v=bad_idx.to_numpy()) if len(sub) == len(bad_idx) else sub
                    mask = np.zeros(len(df), bool)
                    pos = df.index.get_indexer(bad_idx.index.unique())
                    mask[pos] = True
                    bad_vals = bad_idx.groupby(level=0).agg(";".join)
                    parts.append(_problems(df, mask, "code", name, bad_vals.reindex(df.index),
                                           lambda v, n=name: f"{n} " + v.map(repr) +
                                           f" is not in the code list of {lists.source}"))
            else:
                if isinstance(values.dtype, pd.CategoricalDtype):
                    cats = values.cat.categories
                    bad_cats = [c for c in cats if c not in allowed]
                    bad = values.isin(bad_cats).to_numpy() if bad_cats else np.zeros(len(df), bool)
                else:
                    bad = (values.notna() & ~values.isin(allowed)).to_numpy()
                if bad.any():
                    parts.append(_problems(df, bad, "code", name, values.astype(object),
                                           lambda v, n=name: f"{n} " + v.map(repr) +
                                           f" is not in the code list of {lists.source}"))


def _year_end(year: int) -> np.datetime64:
    return np.datetime64(f"{year}-03-31", "s")


def validate_903(header: pd.DataFrame, episodes: pd.DataFrame, year: int | None = None,
                 *, strict: bool = False) -> pd.DataFrame:
    """Report invalid SSDA903 header and episode records; see the module docstring."""
    parts: list[pd.DataFrame] = []
    for y, lists, h in _year_groups(header, year, _codes.code_lists_903):
        _field_checks(h, "Header", list(HEADER_FIELDS.items()), y, lists, parts,
                      header.attrs.get("missing_columns", ()))
        dup = h["child"].notna() & h.duplicated(["la", "year", "child"], keep="first")
        parts.append(_problems(h, dup, "duplicate_child", "CHILD", h["child"],
                               "CHILD appears more than once in the header"))
    for y, lists, e in _year_groups(episodes, year, _codes.code_lists_903):
        _field_checks(e, "Episodes", list(EPISODE_FIELDS.items()), y, lists, parts,
                      episodes.attrs.get("missing_columns", ()))
        fmt = lambda s: s.dt.strftime("%d/%m/%Y").fillna("")  # noqa: E731
        bad = (e["dec"] < e["decom"]).to_numpy()
        parts.append(_problems(e, bad, "dec_before_decom", "DEC", lambda sub: fmt(sub["dec"]),
                               lambda v: "DEC " + v + " is before DECOM " + fmt(e["decom"][bad]).to_numpy()))
        end = _row_year_end(e, year)
        for name in ("DECOM", "DEC"):
            late = (e[name.lower()].to_numpy() > end)
            parts.append(_problems(e, late, "after_year_end", name, lambda sub, c=name.lower(): fmt(sub[c]),
                                   lambda v, n=name, yy=e["year"][late].astype(str).to_numpy():
                                   f"{n} " + v + " is after 31/03/" + yy + ", the end of the return's year"))
        # overlap: order each child's episodes by start
        ok = e["child"].notna() & e["decom"].notna()
        s = e.loc[ok, ["decom", "dec", "dec_unparsed", "row"]]
        s["_k"] = _keys(e.loc[ok], ["la", "year", "child"])
        s = s.sort_values(["_k", "decom", "row"], kind="stable")
        k = s["_k"].to_numpy()
        same = k[1:] == k[:-1]
        prev_dec = s["dec"].to_numpy()[:-1]
        prev_open = np.isnat(prev_dec) & s["dec_unparsed"].isna().to_numpy()[:-1]
        with np.errstate(invalid="ignore"):
            cross = ~np.isnat(prev_dec) & (prev_dec > s["decom"].to_numpy()[1:])
        over = same & (prev_open | cross)
        if over.any():
            idx = s.index[1:][over]
            mask = e.index.isin(idx)
            prev_rows = pd.Series(s["row"].to_numpy()[:-1][over], index=idx).reindex(e.index[mask])
            parts.append(_problems(e, mask, "overlap", "DECOM", lambda sub: fmt(sub["decom"]),
                                   lambda v: "episode starting " + v + " overlaps the child's episode in row "
                                   + prev_rows.astype(str).to_numpy()))
    # episodes whose child has no header row (same LA and year)
    if len(episodes) and len(header):
        cols = ["la", "year", "child"]
        orphan = ~np.isin(_keys(episodes, cols), _keys(header, cols)) & episodes["child"].notna().to_numpy()
        parts.append(_problems(episodes, orphan, "no_header", "CHILD", episodes["child"],
                               "the episode's CHILD has no row in the header for this LA and year"))
    return _report(parts, strict)


#: per CIN table, (xml element, (kind, column, spec key)) for the field checks.
def _cin_fields(table: str):
    record, spec = CIN_TABLES[table]
    out = []
    for el, col, kind in spec:
        if table == "children":
            rec = _CHILD_RECORD.get(el, "ChildIdentifiers")
        else:
            rec = record
        out.append((el, (kind, col, f"{rec}.{el}")))
    return out


_ORDER_RULES = {
    "referrals": [("cin_closure_date", "cin_referral_date", "CINclosureDate", "CINreferralDate")],
    "assessments": [("assessment_authorisation_date", "assessment_actual_start_date",
                     "AssessmentAuthorisationDate", "AssessmentActualStartDate")],
    "cin_plans": [("cin_plan_end_date", "cin_plan_start_date", "CINPlanEndDate", "CINPlanStartDate")],
    "cpp": [("cpp_end_date", "cpp_start_date", "CPPendDate", "CPPstartDate")],
}


def validate_cin(tables: dict[str, pd.DataFrame], year: int | None = None,
                 *, strict: bool = False) -> pd.DataFrame:
    """Report invalid CIN census records; see the module docstring."""
    parts: list[pd.DataFrame] = []
    fmt = lambda s: s.dt.strftime("%Y-%m-%d").fillna("")  # noqa: E731
    for table in CIN_TABLES:
        df = tables.get(table)
        if df is None or not len(df):
            continue
        for y, lists, d in _year_groups(df, year, _codes.code_lists_cin):
            _field_checks(d, table, _cin_fields(table), y, lists, parts)
            if table == "cpp":   # review dates are a list of dates
                rv = d["review_dates"].dropna().str.split(";").explode()
                rv = rv[rv.notna() & (rv != "")]
                bad_rv = rv[pd.to_datetime(rv, format="%Y-%m-%d", errors="coerce").isna()]
                if len(bad_rv):
                    vals = bad_rv.groupby(level=0).agg(";".join).reindex(d.index)
                    parts.append(_problems(d, vals.notna(), "date", "CPPreviewDate", vals,
                                           lambda v: "CPPreviewDate " + v.map(repr) + " is not a valid date"))
            for end_col, start_col, end_name, start_name in _ORDER_RULES.get(table, []):
                bad = (d[end_col] < d[start_col]).to_numpy()
                parts.append(_problems(d, bad, "end_before_start", end_name, lambda sub, c=end_col: fmt(sub[c]),
                                       lambda v, s=fmt(d[start_col])[bad].to_numpy(), sn=start_name, en=end_name:
                                       f"{en} " + v + f" is before {sn} " + s))
            end = _row_year_end(d, year)
            for el, col, kind in CIN_TABLES[table][1]:
                if kind != "date" or col == "expected_dob":
                    continue
                late = d[col].to_numpy() > end
                parts.append(_problems(d, late, "after_year_end", el, lambda sub, c=col: fmt(sub[c]),
                                       lambda v, n=el, yy=d["year"][late].astype(str).to_numpy():
                                       f"{n} " + v + " is after 31/03/" + yy + ", the census end"))
            if table == "children":
                dup = d["child"].notna() & d.duplicated(["la", "year", "child"], keep="first")
                parts.append(_problems(d, dup, "duplicate_child", "LAchildID", d["child"],
                                       "LAchildID appears in more than one <Child>"))
    return _report(parts, strict)
