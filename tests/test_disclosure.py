"""Disclosure control: suppression, rounding, rates, the attacker, and the publish check.

All tables here are small, hand-made and synthetic; every expected interval is
worked out in the comments.
"""
from __future__ import annotations

import pandas as pd
import pytest

from analysis.childlevel.disclosure import (
    DisclosureSettings,
    Link,
    Structure,
    TableSpec,
    assert_publishable,
    check_disclosure,
    load_settings,
    protect_rates,
    protect_table,
    protect_tables,
    protected,
    recover_suppressed,
)
from analysis.core.errors import DataError

YEARS = ["2019", "2020", "Total"]
S = DisclosureSettings(threshold=10, protection_level=10)


def la_year(rows: dict[str, list[int]]) -> pd.DataFrame:
    """LA x year counts with a row total column and a Total row (computed here)."""
    df = pd.DataFrame([[la, *v, sum(v)] for la, v in rows.items()],
                      columns=["la", "2019", "2020", "Total"])
    tot = df[["2019", "2020", "Total"]].sum()
    return pd.concat([df, pd.DataFrame([["Total", *tot]], columns=df.columns)], ignore_index=True)


#       2019 2020 Total
# A        4   20    24
# B       30   25    55
# C       40   35    75
# Total   74   80   154
BASE = la_year({"A": [4, 20], "B": [30, 25], "C": [40, 35]})
KW = dict(count_cols=YEARS, row_keys="la", total_row="Total", total_col="Total", settings=S)


def cell(pt, la, col):
    return pt.published.set_index("la").loc[la, col]


# ----------------------------------------------------------------- attack on totals

def test_primary_only_is_recovered_exactly_from_the_row_total():
    naive = protect_table(BASE, secondary=False, **KW)
    assert cell(naive, "A", "2019") == "c"
    assert (naive.mask.sum().sum(), naive.audit["reason"].tolist()) == (1, ["primary"])
    bounds = recover_suppressed(naive)
    # A-2019 = A total - A-2020 = 24 - 20 = 4: interval of width 0
    assert bounds == {("table", "A", "2019"): (4.0, 4.0)}
    assert not protected(bounds[("table", "A", "2019")], S)
    with pytest.raises(DataError, match=r"row A: withheld count can be narrowed to 4\.\.4"):
        assert_publishable(naive)


def test_protected_table_defeats_the_attack():
    pt = protect_table(BASE, **KW)
    # complements: smallest interior cell of each line, totals kept
    assert pt.published.to_dict("list") == {
        "la": ["A", "B", "C", "Total"],
        "2019": ["c", "c", "40", "74"],
        "2020": ["c", "c", "35", "80"],
        "Total": ["24", "55", "75", "154"]}
    assert pt.audit[["row", "column", "reason"]].values.tolist() == [
        ["A", "2019", "primary"], ["A", "2020", "secondary:row"],
        ["B", "2019", "secondary:col"], ["B", "2020", "secondary:row"]]
    bounds = recover_suppressed(pt)
    # with a = A-2019: A-2020 = 24-a, B-2019 = 34-a, B-2020 = 21+a, each >= 1 -> 1 <= a <= 23
    assert bounds[("table", "A", "2019")] == pytest.approx((1.0, 23.0))
    assert bounds[("table", "B", "2020")] == pytest.approx((22.0, 44.0))
    for b in bounds.values():
        assert protected(b, S)
    lo, hi = bounds[("table", "A", "2019")]
    assert hi >= 10 and hi - lo >= 10
    # integer programming finds the same bounds here
    assert recover_suppressed(pt, integer=True)[("table", "A", "2019")] == pytest.approx((1, 23))
    assert check_disclosure(pt) == []
    assert_publishable(pt)


def test_withheld_cells_are_c_never_zero_and_the_key_explains_c():
    pt = protect_table(BASE, **KW)
    shown = pt.published[YEARS].to_numpy()[pt.mask.to_numpy()]
    assert set(shown) == {"c"}
    assert pt.key_text.startswith("c = confidential")


def test_assert_publishable_raises_on_unprotected_count_of_4():
    raw = BASE.astype({c: str for c in YEARS})
    structure = Structure((TableSpec("la_year", YEARS, "la", "Total", "Total"),), settings=S)
    with pytest.raises(DataError, match=r"^not publishable: table la_year, column 2019, row A: "
                                        r"count 4 below threshold 10 published$"):
        assert_publishable({"la_year": raw}, structure)
    problems = check_disclosure({"la_year": raw}, structure)
    assert problems == ["table la_year, column 2019, row A: count 4 below threshold 10 published"]
    pt = protect_table(BASE, name="la_year", **KW)
    assert_publishable({"la_year": pt.published}, structure)


# ----------------------------------------------------------------- linked tables

#            girls            boys            all (= girls + boys)
#       2019 2020 Tot    2019 2020 Tot    2019 2020 Tot
# A        3   12  15      40   45  85      43   57 100
# B       20   18  38      22   26  48      42   44  86
# C       25   30  55      33   31  64      58   61 119
GIRLS = la_year({"A": [3, 12], "B": [20, 18], "C": [25, 30]})
BOYS = la_year({"A": [40, 45], "B": [22, 26], "C": [33, 31]})
ALL = la_year({"A": [43, 57], "B": [42, 44], "C": [58, 61]})
SPECS = [TableSpec(n, YEARS, "la", "Total", "Total") for n in ("girls", "boys", "all")]
SUM = Link.sum("all", ["girls", "boys"])


def test_tables_protected_separately_leak_by_difference():
    sep = {n: protect_table(df, name=n, **KW).published
           for n, df in (("girls", GIRLS), ("boys", BOYS), ("all", ALL))}
    # each table passes on its own ...
    for n in sep:
        assert check_disclosure({n: sep[n]}, Structure((SPECS[["girls", "boys", "all"].index(n)],),
                                                       settings=S)) == []
    # ... but girls A-2019 = all A-2019 - boys A-2019 = 43 - 40 = 3
    joint = Structure(tuple(SPECS), (SUM,), S)
    bounds = recover_suppressed(sep, joint)
    assert bounds[("girls", "A", "2019")] == (3.0, 3.0)
    assert any("girls, column 2019, row A: withheld count can be narrowed to 3..3" in p
               for p in check_disclosure(sep, joint))


def test_linked_tables_are_protected_consistently():
    ps = protect_tables({"girls": GIRLS, "boys": BOYS, "all": ALL}, SPECS, [SUM], settings=S)
    pub = ps.published
    # every cell-by-cell equation all = girls + boys has 0 or >= 2 withheld cells
    for la in "ABC":
        for y in YEARS:
            n = sum(pub[t].set_index("la").loc[la, y] == "c" for t in ("girls", "boys", "all"))
            assert n != 1, (la, y)
    # the cheapest link complement of girls A-2019 (3) is boys A-2019 (40 < 43)
    assert ps["boys"].audit.iloc[0][["row", "column", "reason"]].tolist() == [
        "A", "2019", "secondary:link"]
    for integer in (False, True):
        bounds = recover_suppressed(ps, integer=integer)
        assert all(protected(b, S) for b in bounds.values())
        lo, hi = bounds[("girls", "A", "2019")]
        assert hi >= 10 and hi - lo >= 10
    assert check_disclosure(ps) == []


# full table (A, B, C) and the same table without A: A's row is the difference of the totals
NO_A = la_year({"B": [30, 25], "C": [40, 35]})
SPECS2 = [TableSpec("full", YEARS, "la", "Total", "Total"),
          TableSpec("no_a", YEARS, "la", "Total", "Total")]
SAME = Link.same("full", "no_a")


def test_difference_of_tables_with_one_la_removed():
    sep = {"full": protect_table(BASE, name="full", **KW).published,
           "no_a": protect_table(NO_A, name="no_a", **KW).published}
    joint = Structure(tuple(SPECS2), (SAME,), S)
    # A-2019 = Total-2019 (full) - Total-2019 (no_a) = 74 - 70 = 4
    assert recover_suppressed(sep, joint)[("full", "A", "2019")] == (4.0, 4.0)

    ps = protect_tables({"full": BASE, "no_a": NO_A}, SPECS2, [SAME], settings=S)
    # shared cells are withheld in both tables or in neither
    f, n = (ps[t].published.set_index("la") for t in ("full", "no_a"))
    for la in "BC":
        for y in ("2019", "2020"):
            assert (f.loc[la, y] == "c") == (n.loc[la, y] == "c")
    # two-per-line alone is not enough here: the audit had to withhold a total
    assert "secondary:audit" in set(ps.audit["reason"])
    assert (f.loc["Total", "2019"] == "c") or (n.loc["Total", "2019"] == "c")
    bounds = recover_suppressed(ps)
    lo, hi = bounds[("full", "A", "2019")]
    assert hi >= 10 and hi - lo >= 10
    assert check_disclosure(ps) == []


# ----------------------------------------------------------------- rounding, rates, zeros

def test_rounding_to_base_10_gives_the_right_strings():
    pt = protect_table(BASE, rounding=10, **KW)
    assert pt.published.to_dict("list") == {
        "la": ["A", "B", "C", "Total"],
        "2019": ["c", "c", "40", "70"],      # 74 -> 70
        "2020": ["c", "c", "40", "80"],      # 35 -> 40 (half up), 80 -> 80
        "Total": ["20", "60", "80", "150"]}  # 24 -> 20, 55 -> 60, 75 -> 80, 154 -> 150
    assert check_disclosure(pt) == []
    bad = pt.published.copy()
    bad.loc[2, "2019"] = "43"
    assert any("count 43 not rounded to base 10" in p for p in check_disclosure({"table": bad},
                                                                                pt.structure))


def test_rounding_alone_does_not_protect_a_primary_cell():
    naive = protect_table(BASE, rounding=10, secondary=False, **KW)
    # A-2020 shown 20 -> 15..24 (>= 10), A total shown 20 -> 15..24;
    # A-2019 = total - 2020 in max(1, 15-24) .. 24-15 = 1..9: known to be small
    lo, hi = recover_suppressed(naive)[("table", "A", "2019")]
    assert (lo, hi) == (1.0, 9.0)
    assert not protected((lo, hi), S)


def test_rates_of_withheld_counts_are_withheld():
    df = pd.DataFrame({
        "la": ["A", "B", "C", "D", "E"],
        "children": [50, 60, 8, 0, 4000],
        "kinship": [4, 30, 0, 0, 12]})
    df["pct_kinship"] = 100 * df["kinship"] / df["children"].where(df["children"] > 0)
    pt = protect_table(df, count_cols=["children", "kinship"], row_keys="la",
                       rate_cols={"pct_kinship": ("kinship", "children")}, settings=S)
    assert pt.published.to_dict("list") == {
        "la": ["A", "B", "C", "D", "E"],
        "children": ["50", "60", "c", "0", "4000"],
        "kinship": ["c", "30", "0", "0", "12"],
        # A: numerator withheld; C: denominator withheld; D: 0/0 not applicable;
        # E: 0.3% rounds to 0 but is not 0
        "pct_kinship": ["c", "50", "c", "z", "k"]}
    assert check_disclosure(pt) == []
    leak = pt.published.copy()
    leak.loc[0, "pct_kinship"] = "8"
    assert check_disclosure({"table": leak}, pt.structure) == [
        "table table, column pct_kinship, row A: rate '8' published from a withheld count"]


def test_rate_table_shaped_like_the_counts():
    pt = protect_table(BASE, **KW)
    rates = BASE[YEARS].astype(float) / 2
    out = protect_rates(rates, pt, cols=YEARS, decimals=1)
    assert out["2019"].tolist() == ["c", "c", "20.0", "37.0"]
    assert out["Total"].tolist() == ["12.0", "27.5", "37.5", "77.0"]


#       2019 2020 2021 Total
# A        0    3   30    33
# B       15   20   25    60
# C       12   40   50   102
ZEROS = pd.DataFrame({"la": ["A", "B", "C"], "2019": [0, 15, 12], "2020": [3, 20, 40],
                      "2021": [30, 25, 50]})
ZEROS["Total"] = ZEROS[["2019", "2020", "2021"]].sum(axis=1)
ZKW = dict(count_cols=["2019", "2020", "2021", "Total"], row_keys="la", total_col="Total")


def test_zeros_shown_by_default_and_never_used_as_complements():
    pt = protect_table(ZEROS, settings=S, **ZKW)
    row_a = pt.published.iloc[0].tolist()
    assert row_a == ["A", "0", "c", "c", "33"]           # 0 shown; complement is 30, not 0
    assert pt.audit[["column", "reason"]].values.tolist() == [["2020", "primary"],
                                                             ["2021", "secondary:row"]]
    assert check_disclosure(pt) == []


def test_zeros_suppressed_when_the_setting_says_so():
    pt = protect_table(ZEROS, settings=S, suppress_zeros=True, **ZKW)
    # two primaries in row A satisfy two-per-line, but 0 + 3 = 33 - 30 would show both
    # are small (each in 0..3); the attack audit withholds 30 as well: each in 0..33
    assert pt.published.iloc[0].tolist() == ["A", "c", "c", "c", "33"]
    assert pt.audit[["row", "column", "reason"]].values.tolist() == [
        ["A", "2019", "primary"], ["A", "2020", "primary"], ["A", "2021", "secondary:audit"]]
    assert recover_suppressed(pt)[("table", "A", "2020")] == (0.0, 33.0)
    two_per_line_only = protect_table(ZEROS, settings=S, suppress_zeros=True, audit=False, **ZKW)
    assert recover_suppressed(two_per_line_only)[("table", "A", "2020")] == (0.0, 3.0)
    assert check_disclosure(pt) == []
    shown = protect_table(ZEROS, settings=S, **ZKW)
    shown_pub = shown.published
    strict = Structure(shown.structure.specs, settings=DisclosureSettings(suppress_zeros=True))
    assert "table table, column 2019, row A: zero published but zeros are suppressed" in \
        check_disclosure({"table": shown_pub}, strict)


# ----------------------------------------------------------------- hierarchy, determinism, input

def test_hierarchy_of_regions_and_england():
    df = pd.DataFrame({"area": ["A", "B", "North", "C", "D", "South", "England"],
                       "n": [5, 40, 45, 30, 60, 90, 135], "m": [20, 22, 42, 18, 16, 34, 76]})
    df["all"] = df["n"] + df["m"]
    pt = protect_table(df, count_cols=["n", "m", "all"], row_keys="area",
                       row_groups={"North": ["A", "B"], "South": ["C", "D"],
                                   "England": ["North", "South"]},
                       total_col="all", settings=S)
    assert pt.published.set_index("area").loc["A", "n"] == "c"
    assert check_disclosure(pt) == []
    # the North subtotal row (and so England) equations never hold a single withheld cell
    pub = pt.published.set_index("area")
    for col in ("n", "m", "all"):
        assert sum(pub.loc[r, col] == "c" for r in ("A", "B", "North")) != 1


def test_output_is_deterministic():
    a = protect_tables({"girls": GIRLS, "boys": BOYS, "all": ALL}, SPECS, [SUM], settings=S)
    b = protect_tables({"girls": GIRLS.copy(), "boys": BOYS.copy(), "all": ALL.copy()}, SPECS,
                       [SUM], settings=S)
    for n in a.tables:
        pd.testing.assert_frame_equal(a[n].published, b[n].published)
    pd.testing.assert_frame_equal(a.audit, b.audit)


def test_bad_input_is_refused():
    bad = BASE.copy()
    bad.loc[0, "Total"] = 25
    with pytest.raises(DataError, match=r"^table table, column Total, row Total: "
                                        r"total 154 is not the sum of its parts \(155\)$"):
        protect_table(bad, **KW)
    neg = BASE.copy()
    neg.loc[1, "2019"] = -1
    with pytest.raises(DataError, match=r"column 2019, row B: a count must be a whole number"):
        protect_table(neg, **KW)
    with pytest.raises(DataError, match=r"^table no_a, column 2019, row B: "
                                        r"31 but the same cell is 30 in another table$"):
        other = la_year({"B": [31, 25], "C": [40, 35]})
        protect_tables({"full": BASE, "no_a": other}, SPECS2, [SAME], settings=S)


def test_settings_file_matches_the_defaults_and_refuses_unknown_keys(tmp_path):
    st = load_settings()
    dfe = {"national": 10, "regional": 10, "local_authority": None}
    assert (st.threshold, st.protection_level, st.suppress_zeros, st.rounding) == (10, 10, False, dfe)
    assert DisclosureSettings().rounding == dfe
    assert (st.rounding_for("national"), st.rounding_for("Regional"),
            st.rounding_for("Local authority"), st.rounding_for(None)) == (10, 10, None, None)
    assert st.is_count("n_children") and st.is_rate("pct_kinship") and not st.is_count("la_code")
    p = tmp_path / "d.yaml"
    p.write_text("threshold: 10\nthreshhold: 5\n")
    with pytest.raises(DataError, match="unknown key 'threshhold'"):
        load_settings(p)


def test_rounding_setting_by_level_scalar_and_refusals(tmp_path):
    p = tmp_path / "d.yaml"
    p.write_text("rounding: 5\n")                     # one base for every level (as before)
    st = load_settings(p)
    assert st.rounding == 5 and st.rounding_for("national") == st.rounding_for(None) == 5
    p.write_text("rounding:\n  national: 100\n")     # levels left out are unrounded
    assert load_settings(p).rounding == {"national": 100, "regional": None, "local_authority": None}
    p.write_text("rounding: null\n")
    assert load_settings(p).rounding_for("national") is None
    for text, message in [("rounding:\n  county: 10\n", "rounding: unknown level 'county'"),
                          ("rounding:\n  national: 0\n", "rounding of national must be null or"),
                          ("rounding: ten\n", "rounding must be null, a whole number, or a mapping"),
                          ("rounding: 2.5\n", "rounding must be null, a whole number, or a mapping")]:
        p.write_text(text)
        with pytest.raises(DataError, match=message):
            load_settings(p)
    with pytest.raises(DataError, match="unknown geographic level 'county'"):
        DisclosureSettings().rounding_for("county")


def test_rounding_by_the_level_of_each_row():
    # England row rounded to 10, LA rows unrounded; the level comes from a column.
    df = pd.DataFrame({"area": ["A", "B", "C", "England"], "level": ["Local authority"] * 3 + ["National"],
                       "n": [12, 23, 41, 76], "m": [30, 35, 40, 105]})
    df["all"] = df["n"] + df["m"]
    spec = TableSpec("t", ("n", "m", "all"), "area", total_row="England", total_col="all",
                     level_col="level")
    pt = protect_tables({"t": df}, [spec], settings=DisclosureSettings())["t"]
    pub = pt.published.set_index("area")
    assert pub.loc["England", ["n", "m", "all"]].tolist() == ["80", "110", "180"]   # 76, 105, 181
    assert pub.loc["A", ["n", "m", "all"]].tolist() == ["12", "30", "42"]           # unrounded
    assert check_disclosure(pt) == []
    bad = pt.published.copy()
    bad.loc[bad["area"] == "England", "n"] = "76"
    assert any("count 76 not rounded to base 10" in p for p in check_disclosure({"t": bad}, pt.structure))
    bad = pt.published.copy()
    bad.loc[0, "level"] = "county"
    assert any("unknown geographic level 'county'" in p for p in check_disclosure({"t": bad}, pt.structure))


def test_protection_criterion():
    assert not protected((4, 4), S)          # exact
    assert not protected((1, 9), S)          # known to be small
    assert not protected((5, 12), S)         # reaches 10 but only 7 wide
    assert protected((1, 23), S)
    assert protected((12, 15), S)            # known to be >= threshold: nothing small disclosed
