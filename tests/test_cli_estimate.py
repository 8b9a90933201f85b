"""``python -m analysis estimate``: a good run and every kind of bad input."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from analysis.core.paths import ROOT
from analysis.methods.estimation import callaway_santanna, simulate_panel, twfe_did

BASE = ["--outcome", "y", "--unit", "unit", "--time", "year", "--first-treated", "first_treated"]


def _run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "analysis", "estimate", *args], cwd=ROOT,
                          capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture(scope="module")
def panel_csv(tmp_path_factory) -> Path:
    d = simulate_panel(n_units=60, n_periods=9, cohorts={2016: 4, 2018: 4}, effect=0.8, seed=3,
                       missing=0.02)
    d["pop"] = np.repeat(np.linspace(1, 3, 60), 9)
    path = tmp_path_factory.mktemp("cli") / "panel.csv"
    d.drop(columns="effect").to_csv(path, index=False)
    return path


def test_twfe_run_writes_json(panel_csv, tmp_path):
    out = tmp_path / "res.json"
    r = _run(str(panel_csv), *BASE, "--draws", "999", "--seed", "7", "--json", str(out))
    assert r.returncode == 0, r.stderr
    assert "wild bootstrap" in r.stdout and "primary" in r.stdout
    res = json.loads(out.read_text())
    for key in ["estimator", "estimate", "std_error", "ci_low", "ci_high", "p_value",
                "n_units", "n_treated", "inference", "primary_inference"]:
        assert key in res
    assert res["estimator"] == "twfe" and res["primary_inference"] == "wild_bootstrap"
    assert set(res["inference"]) == {"cluster", "wild_bootstrap", "randomization"}
    for block in res["inference"].values():
        assert {"ci_low", "ci_high", "p_value"} <= set(block)
    assert res["n_units"] == 60 and res["n_treated"] == 8
    import pandas as pd
    ref = twfe_did(pd.read_csv(panel_csv), outcome="y", unit="unit", time="year",
                   first_treated="first_treated")
    assert res["estimate"] == pytest.approx(ref.estimate, abs=1e-12)
    assert res["std_error"] == pytest.approx(ref.std_error, abs=1e-12)
    assert res["inference"]["cluster"]["ci_low"] == pytest.approx(ref.ci_low, abs=1e-12)
    wb = res["inference"]["wild_bootstrap"]
    assert (res["ci_low"], res["ci_high"], res["p_value"]) == (wb["ci_low"], wb["ci_high"],
                                                               wb["p_value"])
    assert wb["draws"] == 999 and res["inference"]["randomization"]["draws"] == 999
    assert wb["ci_low"] < res["estimate"] < wb["ci_high"]
    # same seed, same numbers
    out2 = tmp_path / "res2.json"
    _run(str(panel_csv), *BASE, "--draws", "999", "--seed", "7", "--json", str(out2))
    assert json.loads(out2.read_text()) == res


def test_staggered_run_has_group_time_and_event_time(panel_csv, tmp_path):
    out = tmp_path / "st.json"
    r = _run(str(panel_csv), *BASE, "--estimator", "staggered", "--weights", "pop",
             "--draws", "499", "--json", str(out))
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    assert res["estimator"] == "staggered" and res["primary_inference"] == "randomization"
    import pandas as pd
    cs = callaway_santanna(pd.read_csv(panel_csv), outcome="y", unit="unit", time="year",
                           first_treated="first_treated", weights="pop")
    assert res["estimate"] == pytest.approx(cs.overall.estimate, abs=1e-12)
    assert res["std_error"] == pytest.approx(cs.overall.std_error, abs=1e-12)
    assert len(res["group_time"]) == len(cs.group_time) == 2 * 8
    assert set(res["group_time"][0]) == {"group", "time", "att", "se"}
    assert set(res["event_time"][0]) == {"event_time", "att", "se"}
    assert [e["event_time"] for e in res["event_time"]] == list(cs.event_time.event_time)


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "bad.csv"
    p.write_text(text)
    return p


def _panel_text(rows: list[tuple]) -> str:
    return "unit,year,y,first_treated\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n"


GOOD_ROWS = [(u, t, (i + t) % 5 + 0.5, g) for i, (u, g) in enumerate(
    [("A", 2015), ("B", ""), ("C", 0), ("D", "")]) for t in (2013, 2014, 2015, 2016)]


@pytest.mark.parametrize("case, expect", [
    ("missing_file", "file not found"),
    ("missing_column", "column 'first_treated'"),
    ("non_numeric", "row 4: outcome must be numeric, found 'abc'"),
    ("no_treated", "no treated units"),
    ("no_never_treated", "no never-treated units"),
    ("treated_before_panel", "unit A is first treated in 2012, at or before the panel's first period"),
    ("treated_at_start", "unit A is first treated in 2013, at or before the panel's first period"),
])
def test_bad_input_is_one_line_exit_2(case, expect, tmp_path):
    rows = [list(r) for r in GOOD_ROWS]
    text = None
    if case == "missing_file":
        path = tmp_path / "nope.csv"
    else:
        if case == "missing_column":
            text = _panel_text(GOOD_ROWS).replace("first_treated", "start")
        elif case == "non_numeric":
            rows[2][2] = "abc"
        elif case == "no_treated":
            rows = [r[:3] + [""] for r in rows]
        elif case == "no_never_treated":
            rows = [r[:3] + [2015] for r in rows]
        elif case == "treated_before_panel":
            rows = [r[:3] + [2012] if r[0] == "A" else r for r in rows]
        elif case == "treated_at_start":
            rows = [r[:3] + [2013] if r[0] == "A" else r for r in rows]
        path = _write(tmp_path, text if text is not None else _panel_text([tuple(r) for r in rows]))
    r = _run(str(path), *BASE, "--draws", "99")
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert expect in lines[0], lines[0]
    assert str(path.name) in lines[0] or case == "missing_column" and "bad.csv" in lines[0]


def test_estimate_subcommand_is_wired_into_the_main_parser():
    from analysis.cli.commands import build_parser

    args = build_parser().parse_args(["estimate", "x.csv", *BASE])
    assert args.estimator == "twfe" and args.draws is None
