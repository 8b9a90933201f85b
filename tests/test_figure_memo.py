"""The book build's figure store (:mod:`analysis.book.figure_memo`), in a real kernel.

A stored figure must show exactly what the figure would have shown (the same
PNG bytes); a new argument, or new matplotlib settings, must draw it again.
"""
from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import nbformat
import pandas as pd
from matplotlib.figure import Figure
from nbclient import NotebookClient

from analysis.book import figure_memo, figures

ROOT = Path(__file__).resolve().parent.parent

CELL = textwrap.dedent("""
    import json, os
    from pathlib import Path
    import matplotlib
    import pandas as pd
    os.environ["SOS_FIGURE_CACHE"] = {store!r}
    from analysis.book import figures as F
    from analysis.book.figure_memo import StoredFigure
    fmt = get_ipython().display_formatter.format
    power = pd.DataFrame({{"outcome": "x", "effect_in_mdes": [0.0, 0.5, 1.0, 1.5],
                          "effect": [0.0, 1.0, 2.0, 3.0], "power": [0.05, 0.3, 0.8, 0.97]}})
    plain = fmt(F.power_curve_plot.__wrapped__(power, mde=2.0, unit="pp"))[0]
    miss = F.power_curve_plot(power, mde=2.0, unit="pp")
    hit = F.power_curve_plot(power, mde=2.0, unit="pp")
    n_one = len(list(Path({store!r}).glob("*.pkl")))
    other = F.power_curve_plot(power, mde=2.5, unit="pp")
    with matplotlib.rc_context({{"lines.linewidth": 3.0}}):
        F.power_curve_plot(power, mde=2.0, unit="pp")
    print(json.dumps(dict(
        same_png=plain["image/png"] == fmt(miss)[0]["image/png"] == fmt(hit)[0]["image/png"],
        same_text=plain["text/plain"] == fmt(hit)[0]["text/plain"],
        kinds=[type(miss).__name__, type(hit).__name__],
        other_png_differs=fmt(other)[0]["image/png"] != plain["image/png"],
        n_one=n_one, n_all=len(list(Path({store!r}).glob("*.pkl"))))))
""")


def test_a_stored_figure_shows_what_the_figure_showed(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(CELL.format(store=str(tmp_path / "store")))])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    out = json.loads(nb.cells[0].outputs[0]["text"])
    assert out["same_png"] and out["same_text"]
    assert out["kinds"] == ["StoredFigure", "StoredFigure"]
    assert out["other_png_differs"]
    # one entry for the first call and its repeat; a new argument and new settings each add one
    assert out["n_one"] == 1 and out["n_all"] == 3


def test_outside_a_kernel_a_figure_is_drawn(tmp_path, monkeypatch):
    monkeypatch.setenv(figure_memo.STORE_VAR, str(tmp_path))
    power = pd.DataFrame({"outcome": "x", "effect_in_mdes": [0.0, 1.0], "effect": [0.0, 2.0],
                          "power": [0.05, 0.8]})
    assert isinstance(figures.power_curve_plot(power, mde=2.0), Figure)
    assert list(tmp_path.iterdir()) == []


def test_keys_follow_the_arguments():
    a = pd.DataFrame({"x": [1.0, 2.0]})
    key = figure_memo.figure_key("f", (a,), {"unit": "pp"})
    assert figure_memo.figure_key("f", (a.copy(),), {"unit": "pp"}) == key
    assert figure_memo.figure_key("f", (a.assign(x=[1.0, 2.5]),), {"unit": "pp"}) != key
    assert figure_memo.figure_key("f", (a,), {"unit": "%"}) != key
    assert figure_memo.figure_key("g", (a,), {"unit": "pp"}) != key


def test_prune_keeps_the_most_recently_used(tmp_path):
    for i in range(5):
        (tmp_path / f"{i}.pkl").write_bytes(b"x")
        os.utime(tmp_path / f"{i}.pkl", (i, i))
    assert figure_memo.prune(tmp_path, keep=2) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["3.pkl", "4.pkl"]
    assert figure_memo.prune(tmp_path / "none") == 0
