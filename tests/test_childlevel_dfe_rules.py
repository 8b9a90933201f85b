"""DfE's counting rules in child-level mode: children looked after at 31 March.

DfE's looked-after statistics do not count children looked after under an agreed
series of short-term breaks (SSDA903 legal status V3, V4), at 31 March or in any
share of them. Checked on the fake SSDA903 return of DfE's validator project
(data-to-insight/csc-validator-be-903, ``tests/fake_data/episodes.csv``, year ending
31 March 2018) against counts worked out here from the raw CSV with pandas alone,
not with the project's readers or outcome code.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.childlevel import aggregate as A
from analysis.childlevel import outcomes as O
from analysis.childlevel.readers import read_903_episodes
from analysis.core.paths import ROOT

LA = "E09000005"
DAY = pd.Timestamp(2018, 3, 31)


def _fake_episodes() -> Path:
    m = os.environ.get("SOS_DATA_MIRROR")
    if not m:
        pytest.skip("the fake SSDA903 return needs SOS_DATA_MIRROR=../shared/data/sources")
    p = Path(m) if Path(m).is_absolute() else ROOT / m
    f = p / "data-to-insight__csc-validator-be-903" / "tests" / "fake_data" / "episodes.csv"
    if not f.exists():
        pytest.skip(f"no fake SSDA903 return under {p}")
    return f


def _independent(path: Path, exclude: tuple[str, ...]) -> dict[str, int]:
    """Counts at 31 March 2018 from the raw CSV: pandas only, DfE's rule written out.

    Open on 31 March: DECOM on or before it, DEC blank or after it. Episodes under the
    excluded legal statuses are dropped first; a child with two open episodes is counted
    once, with the episode that started last (later line on a tie).
    """
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    decom = pd.to_datetime(raw["DECOM"], format="%d/%m/%Y", errors="coerce")
    dec = pd.to_datetime(raw["DEC"].replace("", None), format="%d/%m/%Y", errors="coerce")
    raw = raw.assign(_decom=decom, _line=np.arange(len(raw)))
    open_ = raw[(decom <= DAY) & (dec.isna() | (dec > DAY)) & ~raw["LS"].str.strip().isin(exclude)]
    last = open_.sort_values(["CHILD", "_decom", "_line"]).drop_duplicates("CHILD", keep="last")
    place = last["PLACE"].str.strip()
    return {"cla": len(last), "foster": int(place.isin([f"U{i}" for i in range(1, 7)]).sum()),
            "kinship": int(place.isin(["U1", "U2", "U3"]).sum()),
            "short_break_open": int(raw.loc[(decom <= DAY) & (dec.isna() | (dec > DAY)), "LS"]
                                    .str.strip().isin(["V3", "V4"]).sum())}


@pytest.fixture(scope="module")
def fake():
    path = _fake_episodes()
    return path, read_903_episodes(path, 2018, la=LA)


def _measures(episodes, **kw) -> pd.Series:
    t = A.tidy_measures(episodes, years=[2018], **kw)
    return t[t["la_code"] == LA].set_index("measure")["value"]


def test_short_breaks_are_not_counted_at_31_march(fake):
    path, episodes = fake
    dfe = _independent(path, exclude=("V3", "V4"))
    every = _independent(path, exclude=())
    # The fake return does hold short breaks open on 31 March: the rule has work to do.
    assert dfe["short_break_open"] == 218
    assert (every["cla"], every["kinship"]) == (1419, 153)        # counting every open episode
    assert (dfe["cla"], dfe["foster"], dfe["kinship"]) == (1201, 282, 130)   # DfE's rule
    got = _measures(episodes)
    assert got["cla_31mar_child"] == dfe["cla"]
    assert got["cla_foster_child"] == dfe["foster"]
    assert got["cla_kinship"] == dfe["kinship"]
    # every share of children looked after at 31 March uses the same population
    assert got["cla_kinship_pct"] == pytest.approx(100 * dfe["kinship"] / dfe["cla"])
    assert got["foster_kinship_pct"] == pytest.approx(100 * dfe["kinship"] / dfe["foster"])


def test_counting_every_episode_reproduces_the_old_figures(fake):
    """Without the rule (``cla_excluded_legal_statuses`` emptied) the count is the old one."""
    path, episodes = fake
    every = _independent(path, exclude=())
    snap = O.kinship_snapshot(episodes, years=[2018], excluded_legal_statuses=())
    assert len(snap) == every["cla"] == 1419
    assert int(snap["kinship"].sum()) == every["kinship"] == 153


def test_a_child_only_on_short_breaks_is_not_looked_after():
    ep = pd.DataFrame({
        "la": LA, "child": ["a", "b", "c", "c"],
        "decom": pd.to_datetime(["2018-03-01", "2018-02-01", "2018-01-10", "2018-03-20"]),
        "dec": pd.to_datetime([None, None, "2018-03-20", None]),
        "rne": ["S", "S", "S", "P"], "ls": ["V3", "C2", "C2", "V4"],
        "place": ["U1", "U2", "U4", "U1"], "rec": [None, None, "X1", None]})
    snap = O.kinship_snapshot(ep, years=[2018]).set_index("child")
    # a: short breaks only; c: on short breaks on 31 March (its care order episode ended)
    assert list(snap.index) == ["b"] and snap.loc["b", "kinship_cla"] == 1
    assert sorted(O.kinship_snapshot(ep, years=[2018], excluded_legal_statuses=())["child"]) \
        == ["a", "b", "c"]


def test_rule_comes_from_the_rules_file_and_is_printed():
    rules = A.load_outcome_rules()
    assert tuple(rules.parameters["cla_excluded_legal_statuses"]) == O.SHORT_BREAK_LEGAL_STATUSES \
        == ("V3", "V4")
    text = rules.table().iloc[0]["Who is counted"]
    assert "other than V3, V4" in text and "short-term breaks" in text
    raw = A.OUTCOME_RULES_PATH.read_text(encoding="utf-8")
    assert "exclude children looked after under an agreed series of short term placements" in raw
    defs = A.measure_definitions().set_index("name")
    assert "V3, V4" in defs.loc["cla_31mar_child", "definition"]
    assert "V3, V4" in defs.loc["cla_kinship_pct", "definition"]


def test_a_changed_list_reaches_the_count(tmp_path):
    import yaml

    doc = yaml.safe_load(A.OUTCOME_RULES_PATH.read_text(encoding="utf-8"))
    doc["parameters"]["cla_excluded_legal_statuses"] = ["V4"]
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    ep = pd.DataFrame({"la": LA, "child": ["a", "b"], "decom": pd.to_datetime(["2018-01-01"] * 2),
                       "dec": pd.NaT, "rne": "S", "ls": ["V3", "V4"], "place": "U1", "rec": None})
    got = A.tidy_measures(ep, years=[2018], rules=A.load_outcome_rules(path))
    assert got.set_index("measure").loc["cla_31mar_child", "value"] == 1     # only V4 dropped
