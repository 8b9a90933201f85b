"""Seeded synthetic SSDA903 returns for tests and benchmarks (never for the report).

``generate_903(n_children, las, years, seed, kinship_share_by_la=None)`` returns
``(header, episodes)`` in exactly the schema of
:func:`analysis.childlevel.readers.read_903_header` /
:func:`~analysis.childlevel.readers.read_903_episodes` (one row per child or
episode per LA-year return, ``source_file`` ``synthetic/<la>_<year>_...csv``,
``row`` the line that row would have in that file).

How the records are made: each child enters care once, on a day uniform
between 1 April three years before the first year and 31 March of the last,
aged 0-17, in one LA (uniform over ``las``); the period of care has
1 + Geometric episodes (mean about 2.4, at most 12), each lasting
1 + Exponential(mean 200) days and starting the day the previous one ended
(REC ``X1``); the last ends the period of care with an E-code (E43/E44 for
special guardianship before 2019, E45-E48 from 2019, as the code lists
change), unless it is still running on 31 March of the last year (open).
An episode appears in every return year it touches; in a return whose year
ends before the episode does, DEC, REC and REASON_PLACE_CHANGE are blank
(open at that year end), as LAs return them.

Placement: with probability ``k`` a kinship foster placement with a relative or
friend (U1-U3), else with probability ``0.70 - k`` (at least 0.05) another foster
placement (U4-U6), else one of the other placement codes (children's homes
K2, placed with parents P1, independent living H5, adoption A3-A6...). ``k`` is
``kinship_share_by_la[la]`` - a number, or ``{year: number}`` for a share that
changes over time (years missing from the dict use ``default_kinship``) - by
the return year in which the episode starts; LAs not in the dict, or no dict,
use ``default_kinship`` (0.17). Since placement type is drawn independently of
episode length, the share of children in U1-U3 at 31 March is close to ``k``.
Postcodes are ``ZZ99`` pseudo-postcodes; child ids are ``S`` + a number.

``cin_census_xml`` / ``write_cin_xml`` write hand-made CIN census records (dicts)
as an XML return in the DfE schema's layout, for tests that need exact values.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

KINSHIP = ("U1", "U2", "U3")
OTHER_FOSTER = ("U4", "U5", "U6")
_OTHER_PLACE = {"K2": .26, "P1": .16, "R1": .06, "H5": .07, "P2": .06, "K1": .03, "A3": .02,
                "A4": .02, "A5": .03, "A6": .04, "Z1": .05, "R5": .04, "R2": .02, "R3": .02,
                "S1": .02, "T4": .02, "T0": .01, "T1": .01, "T2": .01, "T3": .01}
_RNE = {"P": .55, "L": .20, "T": .15, "B": .07, "U": .03}
_LS = {"C2": .60, "V2": .15, "C1": .12, "E1": .05, "D1": .03, "J2": .03, "L2": .02}
_CIN = {"N1": .63, "N5": .14, "N4": .08, "N8": .07, "N2": .03, "N3": .03, "N6": .019, "N7": .001}
_REC_END = {"E13": .20, "E4A": .10, "E41": .10, "E11": .13, "E12": .02, "SGO": .12, "E8": .12,
            "E15": .04, "E16": .03, "E17": .04, "E5": .03, "E9": .02, "E3": .02, "E7": .02, "E2": .01}
_SGO_OLD = ("E43", "E44")
_SGO_NEW = ("E45", "E46", "E47", "E48")
_RPC = ("CARPL", "CLOSE", "ALLEG", "STAND", "APPRR", "CREQB", "CREQO", "CHILD", "LAREQ", "PLACE",
        "OTHER")
_ETHNIC = {"WBRI": .72, "WOTH": .05, "MWBC": .04, "MOTH": .04, "BAFR": .04, "AOTH": .03,
           "BCRB": .02, "APKN": .02, "OOTH": .02, "MWAS": .01, "MWBA": .01, "NOBT": .0}
DEFAULT_KINSHIP = 0.17
HEADER_CODES = ("sex", "ethnic", "mother")
EPISODE_CODES = ("rne", "ls", "cin", "place", "place_provider", "rec", "reason_place_change")


def _pick(rng, table: dict, n: int) -> np.ndarray:
    keys = np.array(list(table), dtype=object)
    p = np.array(list(table.values()), dtype=float)
    return keys[rng.choice(len(keys), size=n, p=p / p.sum())]


def _share_by_la(la: np.ndarray, year: np.ndarray, by_la: dict | None, default: float) -> np.ndarray:
    """A probability per record, by LA (and optionally year).

    ``by_la[la]`` is a number, or ``{year: number}`` with ``default`` for
    years it lacks; ``default`` applies to LAs not in ``by_la``.
    """
    out = np.full(len(la), float(default))
    for key, v in (by_la or {}).items():
        sel = la == str(key)
        if not sel.any():
            continue
        if isinstance(v, dict):
            out[sel] = [float(v.get(int(y), default)) for y in year[sel]]
        else:
            out[sel] = float(v)
    return out


def _return_year(d: np.ndarray) -> np.ndarray:
    """DfE reporting year (ending 31 March) of each date."""
    s = pd.DatetimeIndex(d)
    return (s.year + (s.month >= 4)).to_numpy()


def generate_903(n_children: int, las, years, seed: int,
                 kinship_share_by_la: dict | None = None, *, default_kinship: float = DEFAULT_KINSHIP,
                 id_start: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Synthetic SSDA903 header and episodes; deterministic for ``seed``. See module docstring."""
    rng = np.random.default_rng(seed)
    las = [str(x) for x in las]
    years = sorted({int(y) for y in years})
    y0, y1 = years[0], years[-1]
    n = int(n_children)
    day = np.timedelta64(1, "D")
    first = np.datetime64(f"{y0 - 3}-04-01")
    stop = np.datetime64(f"{y1}-03-31")
    la_of = rng.integers(0, len(las), n)
    entry = first + rng.integers(0, int((stop - first) / day) + 1, n) * day
    dob = entry - rng.integers(0, 17 * 365, n) * day
    sex = np.where(rng.random(n) < 0.55, "1", "2")
    ethnic = _pick(rng, _ETHNIC, n)
    upn = np.char.add("A", rng.integers(10**11, 10**12, n).astype(str))
    upn = np.char.add(upn, "0")

    n_ep = np.minimum(rng.geometric(1 / 2.4, n), 12)
    total = int(n_ep.sum())
    child = np.repeat(np.arange(n), n_ep)
    starts = np.cumsum(n_ep) - n_ep
    k = np.arange(total) - np.repeat(starts, n_ep)
    dur = (1 + rng.exponential(200, total)).astype(np.int64)
    cs = np.cumsum(dur)
    before = cs - dur - np.repeat(cs[starts] - dur[starts], n_ep)   # days before this episode
    decom = entry[child] + before * day
    dec = decom + dur * day
    last = k == n_ep[child] - 1
    keep = decom <= stop
    is_open = dec > stop
    # draw every attribute for every episode first, so results do not depend on filtering
    u = rng.random(total)
    kin = _share_by_la(np.array(las, dtype=object)[la_of[child]], _return_year(decom),
                       kinship_share_by_la, default_kinship)
    kin = np.clip(kin, 0, 0.65)
    place = np.where(u < kin, rng.choice(np.array(KINSHIP, dtype=object), total, p=[.35, .02, .63]),
                     np.where(u < np.maximum(0.70, kin + 0.05),
                              rng.choice(np.array(OTHER_FOSTER, dtype=object), total, p=[.30, .02, .68]),
                              _pick(rng, _OTHER_PLACE, total)))
    foster = np.isin(place, KINSHIP + OTHER_FOSTER)
    prov = np.where(foster, np.where(rng.random(total) < .7, "PR1", "PR4"),
                    np.where(np.isin(place, ["K2", "K1", "H5", "R1", "R2", "R5", "S1"]),
                             rng.choice(np.array(["PR4", "PR1", "PR2"], dtype=object), total,
                                        p=[.6, .3, .1]), None)).astype(object)
    rne = np.where(k == 0, "S", _pick(rng, _RNE, total)).astype(object)
    ls = _pick(rng, _LS, total)
    cin = _pick(rng, _CIN, total)
    rec_end = _pick(rng, _REC_END, total)
    sgo_old = rng.choice(np.array(_SGO_OLD, dtype=object), total)
    sgo_new = rng.choice(np.array(_SGO_NEW, dtype=object), total)
    end_year = _return_year(dec)
    rec_end = np.where(rec_end == "SGO", np.where(end_year < 2019, sgo_old, sgo_new), rec_end)
    rec = np.where(last, rec_end, "X1").astype(object)
    rpc = np.where(~last & (rng.random(total) < .6),
                   rng.choice(np.array(_RPC, dtype=object), total), None).astype(object)
    home = np.char.add("ZZ99 ", rng.integers(1, 10, total).astype(str))
    home = np.char.add(home, np.array(list("ABDEFGHJLNPQRSTUWXYZ"))[rng.integers(0, 20, total)])
    home = np.char.add(home, np.array(list("ABDEFGHJLNPQRSTUWXYZ"))[rng.integers(0, 20, total)])
    pl_post = np.where(rng.random(total) < .5, home, np.char.replace(home, "ZZ99", "ZZ98"))
    urn = np.where(np.isin(place, ["K2", "K1", "R1", "R2", "S1"]),
                   np.char.add("SC", rng.integers(100000, 999999, total).astype(str)), "XXXXXXX")

    # keep the episodes inside the horizon; expand each over the return years it touches
    idx = np.flatnonzero(keep)
    fy = np.maximum(_return_year(decom[idx]), y0)
    ly = np.where(is_open[idx], y1, np.minimum(end_year[idx], y1))
    span = np.maximum(ly - fy + 1, 0)
    rep = np.repeat(idx, span)
    ry = np.repeat(fy, span) + (np.arange(int(span.sum())) - np.repeat(np.cumsum(span) - span, span))
    inyears = np.isin(ry, years)
    rep, ry = rep[inyears], ry[inyears]
    year_end = np.array([np.datetime64(f"{y}-03-31") for y in range(y0, y1 + 1)])[ry - y0]
    ended = ~is_open[rep] & (dec[rep] <= year_end)
    child_ids = np.char.add("S", (id_start + child[rep]).astype(str))
    la_col = np.array(las, dtype=object)[la_of[child[rep]]]
    ep = pd.DataFrame({
        "la": pd.array(la_col, dtype="str"),
        "year": ry.astype(np.int64),
        "child": pd.array(child_ids, dtype="str"),
        "decom": decom[rep].astype("datetime64[s]"),
        "rne": rne[rep], "ls": ls[rep], "cin": cin[rep], "place": place[rep],
        "place_provider": prov[rep],
        "dec": np.where(ended, dec[rep], np.datetime64("NaT")).astype("datetime64[s]"),
        "rec": np.where(ended, rec[rep], None), "reason_place_change": np.where(ended, rpc[rep], None),
        "home_post": pd.array(home[rep], dtype="str"), "pl_post": pd.array(pl_post[rep], dtype="str"),
        "urn": pd.array(urn[rep], dtype="str"),
        "_child_num": child[rep],
    })
    ep = ep.sort_values(["la", "year", "_child_num", "decom"], kind="stable").reset_index(drop=True)
    for c in EPISODE_CODES:
        ep[c] = ep[c].astype("category")
    ep["decom_unparsed"] = pd.Series(np.nan, index=ep.index, dtype="str")
    ep["dec_unparsed"] = pd.Series(np.nan, index=ep.index, dtype="str")
    ep["source_file"] = ("synthetic/" + ep["la"] + "_" + ep["year"].astype(str) + "_episodes.csv"
                         ).astype("category")
    ep["row"] = (ep.groupby(["la", "year"], sort=False).cumcount() + 2).astype(np.int64)
    cnum = ep.pop("_child_num").to_numpy()

    hd = pd.DataFrame({"la": ep["la"], "year": ep["year"], "child": ep["child"], "_c": cnum})
    hd = hd.drop_duplicates(["la", "year", "child"]).reset_index(drop=True)
    c = hd.pop("_c").to_numpy()
    hd["sex"] = pd.Categorical(sex[c])
    hd["dob"] = dob[c].astype("datetime64[s]")
    hd["ethnic"] = pd.Categorical(ethnic[c])
    hd["upn"] = pd.array(upn[c], dtype="str")
    hd["mother"] = pd.Categorical([np.nan] * len(hd))
    hd["mc_dob"] = np.full(len(hd), np.datetime64("NaT"), "datetime64[s]")
    hd["dob_unparsed"] = pd.Series(np.nan, index=hd.index, dtype="str")
    hd["mc_dob_unparsed"] = pd.Series(np.nan, index=hd.index, dtype="str")
    hd["source_file"] = ("synthetic/" + hd["la"] + "_" + hd["year"].astype(str) + "_header.csv"
                         ).astype("category")
    hd["row"] = (hd.groupby(["la", "year"], sort=False).cumcount() + 2).astype(np.int64)
    return hd, ep


# ------------------------------------------------------------ writing as returns

_EP_ORDER = ["CHILD", "DECOM", "RNE", "LS", "CIN", "PLACE", "PLACE_PROVIDER", "DEC", "REC",
             "REASON_PLACE_CHANGE", "HOME_POST", "PL_POST", "URN"]
_HD_ORDER = ["CHILD", "SEX", "DOB", "ETHNIC", "UPN", "MOTHER", "MC_DOB"]


def to_return_table(df: pd.DataFrame, *, with_la_year: bool = False) -> pa.Table:
    """A reader-schema frame back in the return's CSV layout (upper-case, dd/mm/YYYY)."""
    order = _EP_ORDER if "decom" in df.columns else _HD_ORDER
    cols, names = [], []
    if with_la_year:
        cols += [pa.array(df["la"].astype(object).to_numpy(), pa.string()),
                 pa.array(df["year"].astype(str).to_numpy(), pa.string())]
        names += ["LA", "YEAR"]
    for name in order:
        s = df[name.lower()]
        if pd.api.types.is_datetime64_any_dtype(s):
            arr = pc.strftime(pa.array(s.to_numpy(), pa.timestamp("s")), format="%d/%m/%Y")
        else:
            arr = pa.array(s.astype(object).where(s.notna(), None).to_numpy(), pa.string())
        cols.append(arr)
        names.append(name)
    return pa.table(cols, names=names)


def write_903_csv(df: pd.DataFrame, path, *, with_la_year: bool = False, append_to=None):
    """Write a frame as an SSDA903 CSV. ``append_to`` (a CSVWriter) streams chunks into one file."""
    table = to_return_table(df, with_la_year=with_la_year)
    if append_to is not None:
        append_to.write_table(table)
        return append_to
    pacsv.write_csv(table, path, write_options=pacsv.WriteOptions(quoting_style="needed"))
    return None


# ------------------------------------------------------------ CIN census XML

#: Element order of each CIN census record, as in the DfE schema (CIN_schema_2017-2024.xsd).
_CIN_ORDER = {
    "ChildIdentifiers": [("LAchildID", "child"), ("UPN", "upn"), ("FormerUPN", "former_upn"),
                         ("UPNunknown", "upn_unknown"), ("PersonBirthDate", "dob"),
                         ("ExpectedPersonBirthDate", "expected_dob"), ("GenderCurrent", "sex"),
                         ("PersonDeathDate", "death_date")],
    "CINdetails": [("CINreferralDate", "cin_referral_date"), ("ReferralSource", "referral_source"),
                   ("PrimaryNeedCode", "primary_need"), ("CINclosureDate", "cin_closure_date"),
                   ("ReasonForClosure", "reason_for_closure"),
                   ("DateOfInitialCPC", "date_of_initial_cpc")],
    "Assessments": [("AssessmentActualStartDate", "assessment_actual_start_date"),
                    ("AssessmentInternalReviewDate", "assessment_internal_review_date"),
                    ("AssessmentAuthorisationDate", "assessment_authorisation_date")],
    "CINPlanDates": [("CINPlanStartDate", "cin_plan_start_date"),
                     ("CINPlanEndDate", "cin_plan_end_date")],
    "Section47": [("S47ActualStartDate", "s47_actual_start_date"),
                  ("InitialCPCtarget", "initial_cpc_target"), ("DateOfInitialCPC", "icpc_date"),
                  ("ICPCnotRequired", "icpc_not_required")],
    "ChildProtectionPlans": [("CPPstartDate", "cpp_start_date"), ("CPPendDate", "cpp_end_date"),
                             ("InitialCategoryOfAbuse", "initial_category_of_abuse"),
                             ("LatestCategoryOfAbuse", "latest_category_of_abuse"),
                             ("NumberOfPreviousCPP", "number_of_previous_cpp")],
}
#: Values written for the schema's required fields when a record does not give them.
_CIN_DEFAULTS = {"sex": "1", "ethnicity": "WBRI", "referral_source": "1A", "primary_need": "N1",
                 "referral_nfa": False, "icpc_not_required": False,
                 "initial_category_of_abuse": "NEG", "latest_category_of_abuse": "NEG",
                 "number_of_previous_cpp": 0}


def _xml_value(v) -> str:
    from xml.sax.saxutils import escape

    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (pd.Timestamp, np.datetime64)) or hasattr(v, "isoformat"):
        return pd.Timestamp(v).strftime("%Y-%m-%d")
    return escape(str(v))


def _xml_fields(rec: dict, order, indent: str) -> list[str]:
    out = []
    for element, key in order:
        v = rec.get(key, _CIN_DEFAULTS.get(key))
        if v is not None:
            out.append(f"{indent}<{element}>{_xml_value(v)}</{element}>")
    return out


def _xml_list(values, wrapper: str, element: str, indent: str) -> list[str]:
    if values is None:
        return []
    if not values:
        return [f"{indent}<{wrapper}/>"]
    return ([f"{indent}<{wrapper}>"] + [f"{indent}  <{element}>{_xml_value(v)}</{element}>"
                                         for v in values] + [f"{indent}</{wrapper}>"])


def cin_census_xml(children: list[dict], *, lea: str | None = None, year: int | None = None) -> str:
    """A CIN census return as XML text, in the DfE schema's layout (one ``<Child>`` per dict).

    Each child is a dict with the column names of
    :func:`analysis.childlevel.readers.read_cin_census` (``child``, ``sex``, ``dob``,
    ``ethnicity``, ``disabilities`` as a list, ...) and ``referrals``: a list of
    dicts (``cin_referral_date``, ``cin_closure_date``, ``reason_for_closure``,
    ``referral_nfa``, ...) each with optional lists ``assessments`` (``factors``
    a list), ``cin_plans``, ``s47`` and ``cpp`` (``review_dates`` a list).
    Dates may be strings (written as given, so invalid ones can be planted),
    ``datetime.date`` or Timestamps; booleans are written ``true``/``false``.
    Fields the schema requires but a record leaves out get a valid value
    (:data:`_CIN_DEFAULTS`); ``None`` or absent optional fields are left out.
    ``<Header>`` holds ``<LEA>`` and, for ``year``, ``<Year>`` and
    ``<ReferenceDate>`` (31 March); with neither there is no ``<Header>`` (the
    schema allows it: the LA and year must then come from the file's folders).
    """
    lines = ["<?xml version='1.0' encoding='utf-8'?>", "<Message>"]
    if lea is not None or year is not None:
        lines.append("  <Header>")
        if year is not None:
            lines += ["    <CollectionDetails>", "      <Collection>CIN</Collection>",
                      f"      <Year>{int(year)}</Year>",
                      f"      <ReferenceDate>{int(year)}-03-31</ReferenceDate>",
                      "    </CollectionDetails>"]
        if lea is not None:
            lines += ["    <Source>", "      <SourceLevel>L</SourceLevel>",
                      f"      <LEA>{_xml_value(lea)}</LEA>", "    </Source>"]
        lines.append("  </Header>")
    lines.append("  <Children>")
    for ch in children:
        lines += ["    <Child>", "      <ChildIdentifiers>"]
        lines += _xml_fields(ch, _CIN_ORDER["ChildIdentifiers"], "        ")
        lines += ["      </ChildIdentifiers>", "      <ChildCharacteristics>"]
        lines += _xml_fields(ch, [("Ethnicity", "ethnicity")], "        ")
        lines += _xml_list(ch.get("disabilities"), "Disabilities", "Disability", "        ")
        lines.append("      </ChildCharacteristics>")
        for ref in ch.get("referrals", []):
            ind = "        "
            lines.append("      <CINdetails>")
            lines += _xml_fields(ref, _CIN_ORDER["CINdetails"], ind)
            for a in ref.get("assessments", []):
                lines.append(f"{ind}<Assessments>")
                lines += _xml_fields(a, _CIN_ORDER["Assessments"], ind + "  ")
                lines += _xml_list(a.get("factors"), "FactorsIdentifiedAtAssessment",
                                   "AssessmentFactors", ind + "  ")
                lines.append(f"{ind}</Assessments>")
            for table, record in (("cin_plans", "CINPlanDates"), ("s47", "Section47")):
                for r in ref.get(table, []):
                    lines += ([f"{ind}<{record}>"] + _xml_fields(r, _CIN_ORDER[record], ind + "  ")
                              + [f"{ind}</{record}>"])
            lines += _xml_fields(ref, [("ReferralNFA", "referral_nfa")], ind)
            for c in ref.get("cpp", []):
                lines.append(f"{ind}<ChildProtectionPlans>")
                lines += _xml_fields(c, _CIN_ORDER["ChildProtectionPlans"], ind + "  ")
                lines += _xml_list(c.get("review_dates"), "Reviews", "CPPreviewDate", ind + "  ")
                lines.append(f"{ind}</ChildProtectionPlans>")
            lines.append("      </CINdetails>")
        lines.append("    </Child>")
    lines += ["  </Children>", "</Message>", ""]
    return "\n".join(lines)


def write_cin_xml(children: list[dict], path, *, lea: str | None = None,
                  year: int | None = None) -> None:
    """Write :func:`cin_census_xml` to ``path`` (folders made as needed)."""
    from pathlib import Path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(cin_census_xml(children, lea=lea, year=year), encoding="utf-8")


# --------------------------------------------------------------------------- CIN census
def generate_cin(n_children: int, las, years, seed: int,
                 nfa_rereferral_by_la: dict | None = None, *,
                 default_nfa_rereferral: float = 0.20, max_referrals: int = 6) -> dict:
    """Synthetic CIN census returns (referrals, assessments, s47, cpp); deterministic for ``seed``.

    Each child (uniform over ``las``) is first referred on a day uniform between
    1 April two years before the first year and 31 March of the last, then
    again, up to ``max_referrals`` times: a referral is closed with no further
    action (NFA) with probability 0.45, after 3-40 days, else after 30-300
    days. After an NFA closure the child is referred again within 1-182 days
    with probability ``p`` (``nfa_rereferral_by_la[la]``, a number or ``{year:
    number}`` by the reporting year of the closure, else
    ``default_nfa_rereferral``); otherwise the next referral comes 60 days plus
    an exponential gap (mean 700 days) after the closure. Every random number
    is drawn before ``p`` is applied, so the same seed with other shares gives
    the same children, differing only where a planted re-referral changed the
    chain (a counterfactual world for tests).

    A referral that is not NFA gets an assessment (start 0-4 days after the
    referral, authorised 5-90 days later) and, with probability 0.15, a
    section 47 enquiry and a child protection plan (conference and plan start
    10-60 days after the referral). As in LAs' returns, a referral is in the
    return of every reporting year it is open in, with its closure blank in a
    return whose year ends before the closure, and its assessments, enquiries
    and plans as they stood at that year end; ``referral_id`` is the line of
    the referral in its return, as the reader gives it. Tables have the
    reader's columns (:func:`analysis.childlevel.readers.read_cin_census`) used
    by the outcome definitions.
    """
    rng = np.random.default_rng(seed)
    years = sorted({int(y) for y in years})
    y0, y1 = years[0], years[-1]
    las = list(las)
    start, end = np.datetime64(f"{y0 - 2}-04-01"), np.datetime64(f"{y1}-03-31")
    span = int((end - start) / np.timedelta64(1, "D"))
    n, m = int(n_children), int(max_referrals)
    la = np.array(las, dtype=object)[rng.integers(0, len(las), n)]
    first = start + rng.integers(0, span + 1, n).astype("timedelta64[D]")
    # every random number up front (n x m), so that shares change nothing else
    u_nfa, u_plant, u_cpp = rng.random((n, m)), rng.random((n, m)), rng.random((n, m))
    nfa_days, open_days = rng.integers(3, 41, (n, m)), rng.integers(30, 301, (n, m))
    plant_gap = rng.integers(1, 183, (n, m))
    other_gap = 60 + rng.exponential(700, (n, m)).astype(np.int64)
    a_start, a_len = rng.integers(0, 5, (n, m)), rng.integers(5, 91, (n, m))
    cpp_gap = rng.integers(10, 61, (n, m))

    rows, date = [], first.copy()
    for k in range(m):
        idx = np.flatnonzero(date <= end)
        if not len(idx):
            break
        d = date[idx]
        nfa = u_nfa[idx, k] < 0.45
        closure = d + np.where(nfa, nfa_days[idx, k], open_days[idx, k]).astype("timedelta64[D]")
        p = _share_by_la(la[idx], _return_year(closure), nfa_rereferral_by_la, default_nfa_rereferral)
        planted = nfa & (u_plant[idx, k] < p)
        nxt = closure + np.where(planted, plant_gap[idx, k], other_gap[idx, k]).astype("timedelta64[D]")
        rows.append(pd.DataFrame({
            "la": la[idx], "child": idx, "k": k, "cin_referral_date": d, "cin_closure_date": closure,
            "referral_nfa": nfa,
            "assessment_actual_start_date": np.where(
                nfa, np.datetime64("NaT"), d + a_start[idx, k].astype("timedelta64[D]")),
            "assessment_len": a_len[idx, k],
            "cpp_start_date": np.where(~nfa & (u_cpp[idx, k] < 0.15),
                                       d + cpp_gap[idx, k].astype("timedelta64[D]"), np.datetime64("NaT")),
        }))
        date[idx] = nxt
    ref = pd.concat(rows, ignore_index=True)
    for c in ("cin_referral_date", "cin_closure_date", "assessment_actual_start_date", "cpp_start_date"):
        ref[c] = pd.to_datetime(ref[c]).astype("datetime64[s]")
    ref["assessment_authorisation_date"] = (ref["assessment_actual_start_date"]
                                            + pd.to_timedelta(ref["assessment_len"], unit="D"))
    ref["child"] = "N" + ref["child"].astype(str)
    # one copy per return year the referral is open in (closure after the data: open)
    first_y = np.maximum(_return_year(ref["cin_referral_date"].to_numpy()), y0)
    last_y = np.minimum(_return_year(ref["cin_closure_date"].to_numpy()), y1)
    ref = ref[last_y >= first_y].reset_index(drop=True)
    first_y, last_y = first_y[last_y >= first_y], last_y[last_y >= first_y]
    rep = np.repeat(np.arange(len(ref)), last_y - first_y + 1)
    ry = first_y[rep] + (np.arange(len(rep)) - np.repeat(np.cumsum(last_y - first_y + 1)
                                                        - (last_y - first_y + 1), last_y - first_y + 1))
    cop = ref.iloc[rep].reset_index(drop=True)
    cop["year"] = ry.astype(np.int64)
    year_end = pd.to_datetime(cop["year"].astype(str) + "-03-31")
    for c in ("cin_closure_date", "assessment_authorisation_date"):
        cop[c] = cop[c].where(cop[c] <= year_end)
    for c in ("assessment_actual_start_date", "cpp_start_date"):
        cop[c] = cop[c].where(cop[c] <= year_end)
    cop = cop.sort_values(["la", "year", "child", "cin_referral_date"], kind="stable").reset_index(drop=True)
    cop["referral_id"] = (cop.groupby(["la", "year"], sort=False).cumcount() + 2).astype(np.int64)
    cop["source_file"] = "synthetic/" + cop["la"] + "_" + cop["year"].astype(str) + "_cin.xml"
    cop["reason_for_closure"] = np.where(cop["cin_closure_date"].notna(),
                                         np.where(cop["referral_nfa"], "RC8", "RC1"), None)
    cop["row"] = cop["referral_id"]
    keys = ["la", "year", "child", "referral_id"]
    referrals = cop[keys + ["cin_referral_date", "cin_closure_date", "reason_for_closure",
                            "referral_nfa", "source_file", "row"]]
    a = cop[cop["assessment_actual_start_date"].notna()]
    assessments = a[keys + ["assessment_actual_start_date", "assessment_authorisation_date",
                            "source_file", "row"]].reset_index(drop=True)
    c = cop[cop["cpp_start_date"].notna()]
    cpp = c[keys + ["cpp_start_date", "source_file", "row"]].assign(
        cpp_end_date=pd.NaT).reset_index(drop=True)
    s47 = c[keys + ["source_file", "row"]].assign(
        s47_actual_start_date=c["cpp_start_date"] - pd.Timedelta(days=7),
        icpc_date=c["cpp_start_date"]).reset_index(drop=True)
    return {"referrals": referrals.reset_index(drop=True), "assessments": assessments,
            "s47": s47, "cpp": cpp}
