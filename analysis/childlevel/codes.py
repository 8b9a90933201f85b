"""Code lists and field rules for the child-level returns, per collection year.

Where they come from
--------------------
* SSDA903 (children looked after): the liia-tools column specifications
  ``liiatools/spec/s903/SSDA903_schema_<year>.yml`` (tables ``Header`` and
  ``Episodes``; for each column its kind - ``category`` with its codes, ``date``
  with format ``%d/%m/%Y``, ``string``, ``numeric`` - and ``canbeblank``).
* CIN census (children in need): the DfE XML schema as liia-tools keeps it,
  ``liiatools/spec/cin_census/CIN_schema_<year>.xsd`` (each record type's
  elements, ``minOccurs`` and the enumerations of their simple types).

Specs exist for the years **2017 to 2024** (both returns). ``<year>`` is read as
the DfE reporting year ending 31 March of that year. For a year without its own
spec the **nearest earlier** spec is used (2025 and later use 2024); a year
before 2017 has no earlier spec and uses the **earliest** (2017), whose lists
still carry the codes of the mid-2010s (e.g. REC E43/E44 for special
guardianship, later split into E45-E48). :attr:`CodeLists.exact` is False in
both cases and :attr:`CodeLists.spec_year` names the spec applied, so a
validation report can say which list it checked against.

The spec folder is ``$SOS_CHILDLEVEL_SPEC`` if set, else
``$SOS_DATA_MIRROR/SocialFinanceDigitalLabs__liia-tools/liiatools/spec``
(a relative mirror path is taken from the repository root, as CI sets it).
When neither exists (e.g. inside a secure research environment without the
mirror) the lists come from :data:`_SNAPSHOT`, a copy generated from those spec
files by ``python -m analysis.childlevel.codes`` and checked against them by
``tests/test_childlevel_readers.py``. Parsed lists are cached per spec year.
"""
from __future__ import annotations

import functools
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from analysis.core.errors import DataError
from analysis.core.paths import ROOT

SPEC_YEARS = tuple(range(2017, 2025))
S903_TABLES = ("Header", "Episodes")
#: CIN record types: XSD complexType -> element name of the record.
CIN_RECORDS = {
    "childidentifierstype": "ChildIdentifiers",
    "childcharacteristicstype": "ChildCharacteristics",
    "cindetailstype": "CINdetails",
    "assessmentstype": "Assessments",
    "cinplandatesttype": "CINPlanDates",
    "section47type": "Section47",
    "childprotectionplanstype": "ChildProtectionPlans",
}
MIRROR_SUBDIR = "SocialFinanceDigitalLabs__liia-tools/liiatools/spec"
_XS = "{http://www.w3.org/2001/XMLSchema}"


@dataclass(frozen=True)
class Field:
    """Rule for one field: ``kind`` is code/date/bool/int/string."""

    kind: str
    required: bool
    codes: frozenset[str] | None = None


@dataclass(frozen=True)
class CodeLists:
    """The fields of one return for one year, as its spec defines them.

    ``fields`` maps ``"<Table>.<FIELD>"`` (903: ``Episodes.PLACE``; CIN: the
    record element and child element, ``CINdetails.ReferralSource``) to a
    :class:`Field`.
    """

    collection: str        # "903" or "cin"
    year: int              # year asked for
    spec_year: int         # year of the spec applied
    source: str            # spec file name, or "snapshot of <file>"
    fields: dict

    @property
    def exact(self) -> bool:
        """Whether the spec applied is the one for the year asked for."""
        return self.year == self.spec_year

    def field(self, table: str, name: str) -> Field:
        """The :class:`Field` ``<table>.<name>``; ``KeyError`` when the spec has no such field."""
        return self.fields[f"{table}.{name}"]

    def codes(self, table: str, name: str) -> frozenset[str]:
        """The allowed codes of field ``<table>.<name>``.

        Raises
        ------
        KeyError
            When the spec has no such field, or the field has no code list.
        """
        f = self.fields[f"{table}.{name}"]
        if f.codes is None:
            raise KeyError(f"{table}.{name} has no code list")
        return f.codes


def spec_year(year: int) -> int:
    """The spec year applied to ``year``: itself, the nearest earlier, or 2017."""
    year = int(year)
    earlier = [y for y in SPEC_YEARS if y <= year]
    return max(earlier) if earlier else min(SPEC_YEARS)


def spec_dir() -> Path | None:
    """The liia-tools ``spec`` folder if one is reachable, else None."""
    explicit = os.environ.get("SOS_CHILDLEVEL_SPEC")
    candidates = []
    if explicit:
        candidates.append(Path(explicit))
    mirror = os.environ.get("SOS_DATA_MIRROR")
    if mirror:
        candidates.append(Path(mirror) / MIRROR_SUBDIR)
    for c in candidates:
        c = c if c.is_absolute() else ROOT / c
        if (c / "s903").is_dir() and (c / "cin_census").is_dir():
            return c
    return None


def code_lists_903(year: int, *, use_spec: bool = True) -> CodeLists:
    """Header and Episodes field rules for SSDA903 reporting ``year``."""
    return _lists("903", spec_year(year), use_spec, year)


def code_lists_cin(year: int, *, use_spec: bool = True) -> CodeLists:
    """CIN census field rules for reporting ``year``."""
    return _lists("cin", spec_year(year), use_spec, year)


def _lists(collection: str, sy: int, use_spec: bool, year: int) -> CodeLists:
    d = spec_dir() if use_spec else None
    if d is not None:
        fields, source = _parsed(collection, sy, str(d))
    else:
        fields, source = _from_snapshot(collection, sy)
    return CodeLists(collection, int(year), sy, source, fields)


@functools.lru_cache(maxsize=None)
def _parsed(collection: str, sy: int, folder: str) -> tuple[dict, str]:
    if collection == "903":
        path = Path(folder) / "s903" / f"SSDA903_schema_{sy}.yml"
        return parse_903_spec(path), path.name
    path = Path(folder) / "cin_census" / f"CIN_schema_{sy}.xsd"
    return parse_cin_xsd(path), path.name


def parse_903_spec(path: Path) -> dict[str, Field]:
    """Field rules of the Header and Episodes tables in one liia-tools YAML spec."""
    import yaml

    try:
        spec = yaml.safe_load(Path(path).read_text(encoding="utf-8"))["column_map"]
    except (OSError, KeyError, TypeError, yaml.YAMLError) as exc:
        raise DataError(f"cannot read SSDA903 spec: {exc}".splitlines()[0], file=str(path)) from None
    out: dict[str, Field] = {}
    for table in S903_TABLES:
        for name, rule in spec[table].items():
            required = str(rule.get("canbeblank", "yes")).lower() in ("no", "false")
            if "category" in rule:
                codes = frozenset(str(c["code"]).strip() for c in rule["category"])
                out[f"{table}.{name}"] = Field("code", required, codes)
            elif "date" in rule:
                out[f"{table}.{name}"] = Field("date", required)
            elif "numeric" in rule:
                out[f"{table}.{name}"] = Field("int", required)
            else:
                out[f"{table}.{name}"] = Field("string", required)
    return out


def parse_cin_xsd(path: Path) -> dict[str, Field]:
    """Field rules of the CIN record types in one DfE CIN census XSD."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        raise DataError(f"cannot read CIN schema: {exc}", file=str(path)) from None
    simple = {}
    for st in root.iter(f"{_XS}simpleType"):
        name = st.get("name")
        enums = [e.get("value") for e in st.iter(f"{_XS}enumeration")]
        if name and enums:
            simple[name] = frozenset(enums)
    out: dict[str, Field] = {}

    def add(record: str, el: ET.Element, parent_required: bool) -> None:
        name = el.get("name")
        required = parent_required and el.get("minOccurs", "1") != "0"
        typ = el.get("type")
        if typ in CIN_RECORDS:      # a nested record (Assessments...): its own entry
            return
        inner = el.find(f"{_XS}complexType")
        if inner is not None:       # a wrapper such as Disabilities, Reviews
            for sub in inner.iter(f"{_XS}element"):
                add(record, sub, False)
            return
        if typ == "yesnotype":
            out[f"{record}.{name}"] = Field("bool", required)
        elif typ in simple:
            out[f"{record}.{name}"] = Field("code", required, simple[typ])
        elif typ == "xs:date":
            out[f"{record}.{name}"] = Field("date", required)
        elif typ in ("xs:positiveInteger", "xs:integer", "xs:nonNegativeInteger"):
            out[f"{record}.{name}"] = Field("int", required)
        else:
            out[f"{record}.{name}"] = Field("string", required)

    for ct in root.findall(f"{_XS}complexType"):
        record = CIN_RECORDS.get(ct.get("name") or "")
        if record is None:
            continue
        seq = ct.find(f"{_XS}sequence")
        for el in (seq if seq is not None else []):
            if el.tag == f"{_XS}element":
                add(record, el, True)
    return out


# ---------------------------------------------------------------- snapshot

def _from_snapshot(collection: str, sy: int) -> tuple[dict, str]:
    versions = _SNAPSHOT[collection]
    v = max(y for y in versions if y <= sy) if any(y <= sy for y in versions) else min(versions)
    fields = {k: Field(kind, req, frozenset(codes) if codes is not None else None)
              for k, (kind, req, codes) in versions[v].items()}
    name = f"SSDA903_schema_{sy}.yml" if collection == "903" else f"CIN_schema_{sy}.xsd"
    return fields, f"snapshot of {name}"


def build_snapshot(folder: Path) -> dict:
    """Snapshot of every spec year, keeping only the years whose rules change."""
    snap: dict = {}
    for collection in ("903", "cin"):
        snap[collection] = {}
        last = None
        for y in SPEC_YEARS:
            fields, _ = _parsed(collection, y, str(folder))
            plain = {k: (f.kind, f.required, tuple(sorted(f.codes)) if f.codes is not None else None)
                     for k, f in sorted(fields.items())}
            if plain != last:
                snap[collection][y] = plain
                last = plain
    return snap


if __name__ == "__main__":  # pragma: no cover - regenerates the snapshot below
    import pprint
    folder = spec_dir()
    if folder is None:
        raise SystemExit("set SOS_DATA_MIRROR or SOS_CHILDLEVEL_SPEC")
    print("_SNAPSHOT = " + pprint.pformat(build_snapshot(folder), width=100, compact=True))


#: Generated by `python -m analysis.childlevel.codes` from the liia-tools specs; one entry per
#: spec year whose rules differ from the year before (later years reuse it).
_SNAPSHOT = {'903': {2017: {'Episodes.CHILD': ('string', True, None),
                'Episodes.CIN': ('code', True, ('N1', 'N2', 'N3', 'N4', 'N5', 'N6', 'N7', 'N8')),
                'Episodes.DEC': ('date', False, None),
                'Episodes.DECOM': ('date', True, None),
                'Episodes.HOME_POST': ('string', False, None),
                'Episodes.LS': ('code', True,
                                ('C1', 'C2', 'D1', 'E1', 'J1', 'J2', 'J3', 'L1', 'L2', 'L3', 'V2',
                                 'V3', 'V4')),
                'Episodes.PLACE': ('code', True,
                                   ('A3', 'A4', 'A5', 'A6', 'H5', 'K1', 'K2', 'P1', 'P2', 'P3',
                                    'R1', 'R2', 'R3', 'R5', 'S1', 'T0', 'T1', 'T2', 'T3', 'T4',
                                    'U1', 'U2', 'U3', 'U4', 'U5', 'U6', 'Z1')),
                'Episodes.PLACE_PROVIDER': ('code', False,
                                            ('PR0', 'PR1', 'PR2', 'PR3', 'PR4', 'PR5')),
                'Episodes.PL_POST': ('string', False, None),
                'Episodes.REASON_PLACE_CHANGE': ('code', False,
                                                 ('ALLEG', 'APPRR', 'CARPL', 'CHILD', 'CLOSE',
                                                  'CREQB', 'CREQO', 'LAREQ', 'OTHER', 'PLACE',
                                                  'STAND')),
                'Episodes.REC': ('code', False,
                                 ('E11', 'E12', 'E13', 'E14', 'E15', 'E16', 'E17', 'E2', 'E3',
                                  'E41', 'E43', 'E44', 'E4A', 'E4B', 'E5', 'E6', 'E7', 'E8', 'E9',
                                  'X1')),
                'Episodes.RNE': ('code', True, ('B', 'L', 'P', 'S', 'T', 'U')),
                'Episodes.URN': ('string', False, None),
                'Header.CHILD': ('string', True, None),
                'Header.DOB': ('date', True, None),
                'Header.ETHNIC': ('code', True,
                                  ('ABAN', 'AIND', 'AOTH', 'APKN', 'BAFR', 'BCRB', 'BOTH', 'CHNE',
                                   'MOTH', 'MWAS', 'MWBA', 'MWBC', 'NOBT', 'OOTH', 'REFU', 'WBRI',
                                   'WIRI', 'WIRT', 'WOTH', 'WROM')),
                'Header.MC_DOB': ('date', False, None),
                'Header.MOTHER': ('code', False, ('0', '1')),
                'Header.SEX': ('code', True, ('1', '2')),
                'Header.UPN': ('string', True, None)},
         2019: {'Episodes.CHILD': ('string', True, None),
                'Episodes.CIN': ('code', True, ('N1', 'N2', 'N3', 'N4', 'N5', 'N6', 'N7', 'N8')),
                'Episodes.DEC': ('date', False, None),
                'Episodes.DECOM': ('date', True, None),
                'Episodes.HOME_POST': ('string', False, None),
                'Episodes.LS': ('code', True,
                                ('C1', 'C2', 'D1', 'E1', 'J1', 'J2', 'J3', 'L1', 'L2', 'L3', 'V2',
                                 'V3', 'V4')),
                'Episodes.PLACE': ('code', True,
                                   ('A3', 'A4', 'A5', 'A6', 'H5', 'K1', 'K2', 'P1', 'P2', 'P3',
                                    'R1', 'R2', 'R3', 'R5', 'S1', 'T0', 'T1', 'T2', 'T3', 'T4',
                                    'U1', 'U2', 'U3', 'U4', 'U5', 'U6', 'Z1')),
                'Episodes.PLACE_PROVIDER': ('code', False,
                                            ('PR0', 'PR1', 'PR2', 'PR3', 'PR4', 'PR5')),
                'Episodes.PL_POST': ('string', False, None),
                'Episodes.REASON_PLACE_CHANGE': ('code', False,
                                                 ('ALLEG', 'APPRR', 'CARPL', 'CHILD', 'CLOSE',
                                                  'CREQB', 'CREQO', 'CUSTOD', 'LAREQ', 'OTHER',
                                                  'PLACE', 'STAND')),
                'Episodes.REC': ('code', False,
                                 ('E11', 'E12', 'E13', 'E14', 'E15', 'E16', 'E17', 'E2', 'E3',
                                  'E41', 'E45', 'E46', 'E47', 'E48', 'E4A', 'E4B', 'E5', 'E6', 'E7',
                                  'E8', 'E9', 'X1')),
                'Episodes.RNE': ('code', True, ('B', 'L', 'P', 'S', 'T', 'U')),
                'Episodes.URN': ('string', False, None),
                'Header.CHILD': ('string', True, None),
                'Header.DOB': ('date', True, None),
                'Header.ETHNIC': ('code', True,
                                  ('ABAN', 'AIND', 'AOTH', 'APKN', 'BAFR', 'BCRB', 'BOTH', 'CHNE',
                                   'MOTH', 'MWAS', 'MWBA', 'MWBC', 'NOBT', 'OOTH', 'REFU', 'WBRI',
                                   'WIRI', 'WIRT', 'WOTH', 'WROM')),
                'Header.MC_DOB': ('date', False, None),
                'Header.MOTHER': ('code', False, ('0', '1')),
                'Header.SEX': ('code', True, ('1', '2')),
                'Header.UPN': ('string', True, None)}},
 'cin': {2017: {'Assessments.AssessmentActualStartDate': ('date', True, None),
                'Assessments.AssessmentAuthorisationDate': ('date', False, None),
                'Assessments.AssessmentFactors': ('code', False,
                                                  ('10A', '11A', '12A', '13A', '14A', '15A', '16A',
                                                   '17A', '18A', '19A', '1A', '1B', '1C', '20',
                                                   '21', '22A', '23A', '2A', '2B', '2C', '3A', '3B',
                                                   '3C', '4A', '4B', '4C', '5A', '5B', '5C', '6A',
                                                   '6B', '6C', '7A', '8B', '8C', '8D', '8E', '8F',
                                                   '9A')),
                'Assessments.AssessmentInternalReviewDate': ('date', False, None),
                'CINdetails.CINclosureDate': ('date', False, None),
                'CINdetails.CINreferralDate': ('date', True, None),
                'CINdetails.DateOfInitialCPC': ('date', False, None),
                'CINdetails.PrimaryNeedCode': ('code', False,
                                               ('N0', 'N1', 'N2', 'N3', 'N4', 'N5', 'N6', 'N7',
                                                'N8', 'N9')),
                'CINdetails.ReasonForClosure': ('code', False,
                                                ('RC1', 'RC2', 'RC3', 'RC4', 'RC5', 'RC6', 'RC7',
                                                 'RC8')),
                'CINdetails.ReferralNFA': ('bool', True, None),
                'CINdetails.ReferralSource': ('code', True,
                                              ('10', '1A', '1B', '1C', '1D', '2A', '2B', '3A', '3B',
                                               '3C', '3D', '3E', '3F', '4', '5A', '5B', '5C', '6',
                                               '7', '8', '9')),
                'ChildCharacteristics.Disability': ('code', False,
                                                    ('AUT', 'BEH', 'COMM', 'CON', 'DDA', 'HAND',
                                                     'HEAR', 'INC', 'LD', 'MOB', 'NONE', 'PC',
                                                     'VIS')),
                'ChildCharacteristics.Ethnicity': ('code', True,
                                                   ('ABAN', 'AIND', 'AOTH', 'APKN', 'BAFR', 'BCRB',
                                                    'BOTH', 'CHNE', 'MOTH', 'MWAS', 'MWBA', 'MWBC',
                                                    'NOBT', 'OOTH', 'REFU', 'WBRI', 'WIRI', 'WIRT',
                                                    'WOTH', 'WROM')),
                'ChildIdentifiers.ExpectedPersonBirthDate': ('date', False, None),
                'ChildIdentifiers.FormerUPN': ('string', False, None),
                'ChildIdentifiers.GenderCurrent': ('code', True, ('0', '1', '2', '9')),
                'ChildIdentifiers.LAchildID': ('string', True, None),
                'ChildIdentifiers.PersonBirthDate': ('date', False, None),
                'ChildIdentifiers.PersonDeathDate': ('date', False, None),
                'ChildIdentifiers.UPN': ('string', False, None),
                'ChildIdentifiers.UPNunknown': ('code', False,
                                                ('UN1', 'UN2', 'UN3', 'UN4', 'UN5', 'UN6', 'UN7')),
                'ChildProtectionPlans.CPPendDate': ('date', False, None),
                'ChildProtectionPlans.CPPreviewDate': ('date', False, None),
                'ChildProtectionPlans.CPPstartDate': ('date', True, None),
                'ChildProtectionPlans.InitialCategoryOfAbuse': ('code', True,
                                                                ('EMO', 'MUL', 'NEG', 'PHY',
                                                                 'SAB')),
                'ChildProtectionPlans.LatestCategoryOfAbuse': ('code', True,
                                                               ('EMO', 'MUL', 'NEG', 'PHY', 'SAB')),
                'ChildProtectionPlans.NumberOfPreviousCPP': ('int', True, None),
                'Section47.DateOfInitialCPC': ('date', False, None),
                'Section47.ICPCnotRequired': ('bool', True, None),
                'Section47.InitialCPCtarget': ('date', False, None),
                'Section47.S47ActualStartDate': ('date', True, None)},
         2021: {'Assessments.AssessmentActualStartDate': ('date', True, None),
                'Assessments.AssessmentAuthorisationDate': ('date', False, None),
                'Assessments.AssessmentFactors': ('code', False,
                                                  ('10A', '11A', '12A', '13A', '14A', '15A', '16A',
                                                   '17A', '18B', '18C', '19B', '19C', '1A', '1B',
                                                   '1C', '20', '21', '22A', '23A', '2A', '2B', '2C',
                                                   '3A', '3B', '3C', '4A', '4B', '4C', '5A', '5B',
                                                   '5C', '6A', '6B', '6C', '7A', '8B', '8C', '8D',
                                                   '8E', '8F', '9A')),
                'Assessments.AssessmentInternalReviewDate': ('date', False, None),
                'CINdetails.CINclosureDate': ('date', False, None),
                'CINdetails.CINreferralDate': ('date', True, None),
                'CINdetails.DateOfInitialCPC': ('date', False, None),
                'CINdetails.PrimaryNeedCode': ('code', False,
                                               ('N0', 'N1', 'N2', 'N3', 'N4', 'N5', 'N6', 'N7',
                                                'N8', 'N9')),
                'CINdetails.ReasonForClosure': ('code', False,
                                                ('RC1', 'RC2', 'RC3', 'RC4', 'RC5', 'RC6', 'RC7',
                                                 'RC8')),
                'CINdetails.ReferralNFA': ('bool', True, None),
                'CINdetails.ReferralSource': ('code', True,
                                              ('10', '1A', '1B', '1C', '1D', '2A', '2B', '3A', '3B',
                                               '3C', '3D', '3E', '3F', '4', '5A', '5B', '5C', '6',
                                               '7', '8', '9')),
                'ChildCharacteristics.Disability': ('code', False,
                                                    ('AUT', 'BEH', 'COMM', 'CON', 'DDA', 'HAND',
                                                     'HEAR', 'INC', 'LD', 'MOB', 'NONE', 'PC',
                                                     'VIS')),
                'ChildCharacteristics.Ethnicity': ('code', True,
                                                   ('ABAN', 'AIND', 'AOTH', 'APKN', 'BAFR', 'BCRB',
                                                    'BOTH', 'CHNE', 'MOTH', 'MWAS', 'MWBA', 'MWBC',
                                                    'NOBT', 'OOTH', 'REFU', 'WBRI', 'WIRI', 'WIRT',
                                                    'WOTH', 'WROM')),
                'ChildIdentifiers.ExpectedPersonBirthDate': ('date', False, None),
                'ChildIdentifiers.FormerUPN': ('string', False, None),
                'ChildIdentifiers.GenderCurrent': ('code', True, ('0', '1', '2', '9')),
                'ChildIdentifiers.LAchildID': ('string', True, None),
                'ChildIdentifiers.PersonBirthDate': ('date', False, None),
                'ChildIdentifiers.PersonDeathDate': ('date', False, None),
                'ChildIdentifiers.UPN': ('string', False, None),
                'ChildIdentifiers.UPNunknown': ('code', False,
                                                ('UN1', 'UN2', 'UN3', 'UN4', 'UN5', 'UN6', 'UN7')),
                'ChildProtectionPlans.CPPendDate': ('date', False, None),
                'ChildProtectionPlans.CPPreviewDate': ('date', False, None),
                'ChildProtectionPlans.CPPstartDate': ('date', True, None),
                'ChildProtectionPlans.InitialCategoryOfAbuse': ('code', True,
                                                                ('EMO', 'MUL', 'NEG', 'PHY',
                                                                 'SAB')),
                'ChildProtectionPlans.LatestCategoryOfAbuse': ('code', True,
                                                               ('EMO', 'MUL', 'NEG', 'PHY', 'SAB')),
                'ChildProtectionPlans.NumberOfPreviousCPP': ('int', True, None),
                'Section47.DateOfInitialCPC': ('date', False, None),
                'Section47.ICPCnotRequired': ('bool', True, None),
                'Section47.InitialCPCtarget': ('date', False, None),
                'Section47.S47ActualStartDate': ('date', True, None)},
         2022: {'Assessments.AssessmentActualStartDate': ('date', True, None),
                'Assessments.AssessmentAuthorisationDate': ('date', False, None),
                'Assessments.AssessmentFactors': ('code', False,
                                                  ('10A', '11A', '12A', '13A', '14A', '15A', '16A',
                                                   '17A', '18B', '18C', '19B', '19C', '1A', '1B',
                                                   '1C', '20', '21', '22A', '23A', '24A', '2A',
                                                   '2B', '2C', '3A', '3B', '3C', '4A', '4B', '4C',
                                                   '5A', '5B', '5C', '6A', '6B', '6C', '7A', '8B',
                                                   '8C', '8D', '8E', '8F', '9A')),
                'Assessments.AssessmentInternalReviewDate': ('date', False, None),
                'CINPlanDates.CINPlanEndDate': ('date', False, None),
                'CINPlanDates.CINPlanStartDate': ('date', True, None),
                'CINdetails.CINclosureDate': ('date', False, None),
                'CINdetails.CINreferralDate': ('date', True, None),
                'CINdetails.DateOfInitialCPC': ('date', False, None),
                'CINdetails.PrimaryNeedCode': ('code', False,
                                               ('N0', 'N1', 'N2', 'N3', 'N4', 'N5', 'N6', 'N7',
                                                'N8', 'N9')),
                'CINdetails.ReasonForClosure': ('code', False,
                                                ('RC1', 'RC2', 'RC3', 'RC4', 'RC5', 'RC6', 'RC7',
                                                 'RC8')),
                'CINdetails.ReferralNFA': ('bool', True, None),
                'CINdetails.ReferralSource': ('code', True,
                                              ('10', '1A', '1B', '1C', '1D', '2A', '2B', '3A', '3B',
                                               '3C', '3D', '3E', '3F', '4', '5A', '5B', '5C', '6',
                                               '7', '8', '9')),
                'ChildCharacteristics.Disability': ('code', False,
                                                    ('AUT', 'BEH', 'COMM', 'CON', 'DDA', 'HAND',
                                                     'HEAR', 'INC', 'LD', 'MOB', 'NONE', 'PC',
                                                     'VIS')),
                'ChildCharacteristics.Ethnicity': ('code', True,
                                                   ('ABAN', 'AIND', 'AOTH', 'APKN', 'BAFR', 'BCRB',
                                                    'BOTH', 'CHNE', 'MOTH', 'MWAS', 'MWBA', 'MWBC',
                                                    'NOBT', 'OOTH', 'REFU', 'WBRI', 'WIRI', 'WIRT',
                                                    'WOTH', 'WROM')),
                'ChildIdentifiers.ExpectedPersonBirthDate': ('date', False, None),
                'ChildIdentifiers.FormerUPN': ('string', False, None),
                'ChildIdentifiers.GenderCurrent': ('code', True, ('0', '1', '2', '9')),
                'ChildIdentifiers.LAchildID': ('string', True, None),
                'ChildIdentifiers.PersonBirthDate': ('date', False, None),
                'ChildIdentifiers.PersonDeathDate': ('date', False, None),
                'ChildIdentifiers.UPN': ('string', False, None),
                'ChildIdentifiers.UPNunknown': ('code', False,
                                                ('UN1', 'UN2', 'UN3', 'UN4', 'UN5', 'UN6', 'UN7')),
                'ChildProtectionPlans.CPPendDate': ('date', False, None),
                'ChildProtectionPlans.CPPreviewDate': ('date', False, None),
                'ChildProtectionPlans.CPPstartDate': ('date', True, None),
                'ChildProtectionPlans.InitialCategoryOfAbuse': ('code', True,
                                                                ('EMO', 'MUL', 'NEG', 'PHY',
                                                                 'SAB')),
                'ChildProtectionPlans.LatestCategoryOfAbuse': ('code', True,
                                                               ('EMO', 'MUL', 'NEG', 'PHY', 'SAB')),
                'ChildProtectionPlans.NumberOfPreviousCPP': ('int', True, None),
                'Section47.DateOfInitialCPC': ('date', False, None),
                'Section47.ICPCnotRequired': ('bool', True, None),
                'Section47.InitialCPCtarget': ('date', False, None),
                'Section47.S47ActualStartDate': ('date', True, None)},
         2023: {'Assessments.AssessmentActualStartDate': ('date', True, None),
                'Assessments.AssessmentAuthorisationDate': ('date', False, None),
                'Assessments.AssessmentFactors': ('code', False,
                                                  ('10A', '11A', '12A', '13A', '14A', '15A', '16A',
                                                   '17A', '18B', '18C', '19B', '19C', '1A', '1B',
                                                   '1C', '20', '21', '22A', '23A', '24A', '2A',
                                                   '2B', '2C', '3A', '3B', '3C', '4A', '4B', '4C',
                                                   '5A', '5B', '5C', '6A', '6B', '6C', '7A', '8B',
                                                   '8C', '8D', '8E', '8F', '9A')),
                'Assessments.AssessmentInternalReviewDate': ('date', False, None),
                'CINPlanDates.CINPlanEndDate': ('date', False, None),
                'CINPlanDates.CINPlanStartDate': ('date', True, None),
                'CINdetails.CINclosureDate': ('date', False, None),
                'CINdetails.CINreferralDate': ('date', True, None),
                'CINdetails.DateOfInitialCPC': ('date', False, None),
                'CINdetails.PrimaryNeedCode': ('code', False,
                                               ('N0', 'N1', 'N2', 'N3', 'N4', 'N5', 'N6', 'N7',
                                                'N8', 'N9')),
                'CINdetails.ReasonForClosure': ('code', False,
                                                ('RC1', 'RC2', 'RC3', 'RC4', 'RC5', 'RC6', 'RC7',
                                                 'RC8', 'RC9')),
                'CINdetails.ReferralNFA': ('bool', True, None),
                'CINdetails.ReferralSource': ('code', True,
                                              ('10', '1A', '1B', '1C', '1D', '2A', '2B', '3A', '3B',
                                               '3C', '3D', '3E', '3F', '4', '5A', '5B', '5C', '5D',
                                               '6', '7', '8', '9')),
                'ChildCharacteristics.Disability': ('code', False,
                                                    ('AUT', 'BEH', 'COMM', 'CON', 'DDA', 'HAND',
                                                     'HEAR', 'INC', 'LD', 'MOB', 'NONE', 'PC',
                                                     'VIS')),
                'ChildCharacteristics.Ethnicity': ('code', True,
                                                   ('ABAN', 'AIND', 'AOTH', 'APKN', 'BAFR', 'BCRB',
                                                    'BOTH', 'CHNE', 'MOTH', 'MWAS', 'MWBA', 'MWBC',
                                                    'NOBT', 'OOTH', 'REFU', 'WBRI', 'WIRI', 'WIRT',
                                                    'WOTH', 'WROM')),
                'ChildIdentifiers.ExpectedPersonBirthDate': ('date', False, None),
                'ChildIdentifiers.FormerUPN': ('string', False, None),
                'ChildIdentifiers.GenderCurrent': ('code', True, ('0', '1', '2', '9')),
                'ChildIdentifiers.LAchildID': ('string', True, None),
                'ChildIdentifiers.PersonBirthDate': ('date', False, None),
                'ChildIdentifiers.PersonDeathDate': ('date', False, None),
                'ChildIdentifiers.UPN': ('string', False, None),
                'ChildIdentifiers.UPNunknown': ('code', False,
                                                ('UN1', 'UN2', 'UN3', 'UN4', 'UN5', 'UN6', 'UN7')),
                'ChildProtectionPlans.CPPendDate': ('date', False, None),
                'ChildProtectionPlans.CPPreviewDate': ('date', False, None),
                'ChildProtectionPlans.CPPstartDate': ('date', True, None),
                'ChildProtectionPlans.InitialCategoryOfAbuse': ('code', True,
                                                                ('EMO', 'MUL', 'NEG', 'PHY',
                                                                 'SAB')),
                'ChildProtectionPlans.LatestCategoryOfAbuse': ('code', True,
                                                               ('EMO', 'MUL', 'NEG', 'PHY', 'SAB')),
                'ChildProtectionPlans.NumberOfPreviousCPP': ('int', True, None),
                'Section47.DateOfInitialCPC': ('date', False, None),
                'Section47.ICPCnotRequired': ('bool', True, None),
                'Section47.InitialCPCtarget': ('date', False, None),
                'Section47.S47ActualStartDate': ('date', True, None)}}}
