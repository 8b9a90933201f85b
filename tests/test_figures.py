"""Figures: each function returns a non-empty Figure that plots exactly its input.

Small synthetic inputs only (the real-data figures are made by the chapters);
the hex map is also drawn from the real hexjson of the data mirror
(integration).
"""
from __future__ import annotations

import json

import matplotlib.colors as mcolors
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from analysis.book import figures
from analysis.book.figures import (
    COMPARATOR_COLOUR,
    PILOT_COLOUR,
    ROLE_STYLES,
    event_study_plot,
    forest_plot,
    hex_map,
    hex_map_crosswalk,
    love_plot,
    pilot_profile_plot,
    trend_plot,
)
from analysis.ingest.geography import la_register


def _rgb(c) -> tuple[float, float, float]:
    return tuple(np.round(mcolors.to_rgb(c), 4))


def _luminance(c) -> float:
    r, g, b = mcolors.to_rgb(c)
    return 0.299 * r + 0.587 * g + 0.114 * b


def _not_empty(fig: Figure) -> None:
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert axes, "figure has no visible axes"
    for ax in axes:
        n = len(ax.lines) + len(ax.patches) + len(ax.collections) + len(ax.images)
        assert n > 0, "an axes has nothing drawn"


def _line(ax, gid: str):
    found = [ln for ln in ax.get_lines() if ln.get_gid() == gid]
    assert len(found) == 1, f"expected one line {gid!r}, found {len(found)}"
    return found[0]


def _errorbar(ax, label: str):
    found = [c for c in ax.containers if c.get_label() == label]
    assert len(found) == 1, f"expected one errorbar {label!r}"
    return found[0]


def _bar_extents(container) -> np.ndarray:
    """(n, 2, 2) array of the error-bar segments [[x0, y0], [x1, y1]]."""
    return np.array(container.lines[2][0].get_segments())


# ------------------------------------------------------------------ palette

def test_palette_pilots_and_comparators_distinct_in_colour_and_greyscale():
    assert _rgb(PILOT_COLOUR) != _rgb(COMPARATOR_COLOUR)
    assert abs(_luminance(PILOT_COLOUR) - _luminance(COMPARATOR_COLOUR)) > 0.25
    assert len({_rgb(c) for c in figures.CATEGORICAL}) == len(figures.CATEGORICAL)
    # the trend styles differ in line style and marker too, not only colour
    p, c = figures.GROUP_STYLES["pilots"], figures.GROUP_STYLES["comparators"]
    assert p["linestyle"] != c["linestyle"] and p["marker"] != c["marker"]


def test_role_styles_distinct():
    keys = {(_rgb(s["facecolor"]), s["hatch"]) for s in ROLE_STYLES.values()}
    assert len(keys) == len(ROLE_STYLES)
    assert _rgb(ROLE_STYLES["pilot"]["facecolor"]) == _rgb(PILOT_COLOUR)
    assert _rgb(ROLE_STYLES["comparator"]["facecolor"]) == _rgb(COMPARATOR_COLOUR)


# ------------------------------------------------------------------ love plot

def _balance() -> pd.DataFrame:
    return pd.DataFrame({
        "variable": ["y_level", "y_trend", "log_pop_0_17", "idaci_score", "region_E12000001"],
        "kind": ["outcome level", "outcome trend", "context", "context", "region"],
        "type": ["continuous"] * 4 + ["binary"],
        "smd_before": [0.9, -0.45, 0.3, -0.05, 0.2],
        "smd_after": [0.05, 0.12, -0.02, 0.01, np.nan],
    })


@pytest.mark.parametrize("long", [False, True])
def test_love_plot_points_are_absolute_smds(long):
    from analysis.methods.matching import love_plot_data

    bal = _balance()
    data = love_plot_data(bal) if long else bal
    fig = love_plot(data, threshold=0.25)
    assert isinstance(fig, Figure)
    _not_empty(fig)
    ax = fig.axes[0]
    n = len(bal)
    before, after = _line(ax, "before"), _line(ax, "after")
    # first variable at the top: variable i is drawn at y = n - 1 - i
    y = np.asarray(before.get_ydata(), float)
    order = (n - 1 - y).astype(int)
    np.testing.assert_allclose(np.asarray(before.get_xdata(), float),
                               bal["smd_before"].abs().to_numpy()[order])
    np.testing.assert_allclose(np.asarray(after.get_xdata(), float),
                               bal["smd_after"].abs().to_numpy()[order], equal_nan=True)
    thr = _line(ax, "threshold")
    assert set(np.asarray(thr.get_xdata(), float)) == {0.25}
    assert thr.get_linestyle() == "--"
    labels = [t.get_text() for t in ax.get_yticklabels()][::-1]
    assert labels[0] == "Outcome: pre-period mean"
    assert labels[2] == "Children aged 0-17 (log)"
    assert labels[4] == "Region: North East"
    assert not any(ax.get_title(loc) for loc in ("left", "center", "right"))


def test_love_plot_custom_labels_and_missing_column():
    fig = love_plot(_balance(), labels={"idaci_score": "Deprivation"}, threshold=0.1)
    assert "Deprivation" in [t.get_text() for t in fig.axes[0].get_yticklabels()]
    with pytest.raises(ValueError, match="smd_after"):
        love_plot(_balance().drop(columns="smd_after"))


# ------------------------------------------------------------------ trends

def _trends() -> pd.DataFrame:
    years = list(range(2013, 2020))
    rows = []
    for g, base in [("pilots", 10.0), ("comparators", 11.0), ("donor pool", 14.0)]:
        for i, y in enumerate(years):
            rows.append(dict(year=y, group=g, mean=base + 0.5 * i + (0.3 if g == "pilots" else 0),
                             n_las={"pilots": 10, "comparators": 20, "donor pool": 120}[g]))
    return pd.DataFrame(rows)


def test_trend_plot_lines_equal_input():
    t = _trends()
    fig = trend_plot(t, outcome_label="Re-referrals (%)", first_treated_years=[2015, 2018])
    assert isinstance(fig, Figure)
    _not_empty(fig)
    ax = fig.axes[0]
    for g in ["pilots", "comparators", "donor pool"]:
        ln = _line(ax, g)
        d = t.loc[t["group"] == g].sort_values("year")
        np.testing.assert_array_equal(ln.get_xdata(), d["year"].to_numpy())
        np.testing.assert_allclose(ln.get_ydata(), d["mean"].to_numpy())
    assert _rgb(_line(ax, "pilots").get_color()) == _rgb(PILOT_COLOUR)
    assert _rgb(_line(ax, "comparators").get_color()) == _rgb(COMPARATOR_COLOUR)
    onsets = sorted(float(ln.get_xdata()[0]) for ln in ax.get_lines() if ln.get_gid() == "onset")
    assert onsets == [2014.5, 2017.5]
    assert ax.get_ylabel() == "Re-referrals (%)"
    assert "Reporting year" in ax.get_xlabel()
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend[0] == "Pilot LAs (10)"
    assert not any(ax.get_title(loc) for loc in ("left", "center", "right"))


def test_trend_plot_without_pool_and_bad_group():
    t = _trends()
    fig = trend_plot(t, outcome_label="x", first_treated_years=[2015], show_pool=False)
    assert "donor pool" not in {ln.get_gid() for ln in fig.axes[0].get_lines()}
    with pytest.raises(ValueError, match="unknown group"):
        trend_plot(t.assign(group="treated"), outcome_label="x", first_treated_years=[2015])


# ------------------------------------------------------------------ event study

def _coefs() -> pd.DataFrame:
    ev = [-3, -2, -1, 0, 1, 2]
    est = [0.4, -0.2, 0.0, -1.0, -1.5, -2.0]
    half = [1.0, 0.9, np.nan, 1.1, 1.3, 1.6]
    return pd.DataFrame({"event_time": ev, "estimate": est,
                         "ci_low": [e - h for e, h in zip(est, half)],
                         "ci_high": [e + h for e, h in zip(est, half)],
                         "n_obs": [1, 10, 10, 10, 10, 9],
                         "binned": [True, False, False, False, False, False]})


def test_event_study_bars_equal_confidence_intervals():
    c = _coefs()
    fig = event_study_plot(c, ylabel="Difference (percentage points)")
    assert isinstance(fig, Figure)
    _not_empty(fig)
    ax = fig.axes[0]
    got = {}
    for label in ["Before treatment", "After treatment starts"]:
        for (x0, y0), (x1, y1) in _bar_extents(_errorbar(ax, label)):
            assert x0 == x1
            got[int(x0)] = (min(y0, y1), max(y0, y1))
    est = c.loc[c["ci_low"].notna()]
    assert sorted(got) == est["event_time"].tolist()
    for _, r in est.iterrows():
        assert got[int(r["event_time"])] == pytest.approx((r["ci_low"], r["ci_high"]))
    # leads are open, lags filled
    lead_line = _errorbar(ax, "Before treatment").lines[0]
    lag_line = _errorbar(ax, "After treatment starts").lines[0]
    assert mcolors.to_hex(lead_line.get_markerfacecolor()) == "#ffffff"
    assert _rgb(lag_line.get_markerfacecolor()) == _rgb(PILOT_COLOUR)
    ref = _line(ax, "reference")
    assert (float(ref.get_xdata()[0]), float(ref.get_ydata()[0])) == (-1.0, 0.0)
    assert set(_line(ax, "zero").get_ydata()) == {0}
    assert set(_line(ax, "onset").get_xdata()) == {-0.5}
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks[0] == "≤−3\n(1)" and ticks[-1] == "2\n(9)"


def test_event_study_reference_drawn_when_absent_and_att_column():
    c = _coefs().query("event_time != -1").rename(columns={"estimate": "att"})
    fig = event_study_plot(c.drop(columns=["n_obs", "binned"]), estimate_col="att")
    ax = fig.axes[0]
    assert float(_line(ax, "reference").get_xdata()[0]) == -1.0
    assert [t.get_text() for t in ax.get_xticklabels()][0] == "−3"
    with pytest.raises(ValueError, match="ci_high"):
        event_study_plot(c.drop(columns="ci_high"), estimate_col="att")


# ------------------------------------------------------------------ forest plot

def _estimates() -> pd.DataFrame:
    rows = []
    for o, scale in [("rereferrals", 1.0), ("cin_rate", 30.0)]:
        for i, s in enumerate(["main", "exclude_similar_models", "k1", "k5"]):
            for inf, widen in [("cluster", 1.0), ("wild_bootstrap", 1.3)]:
                e = scale * (-0.5 + 0.2 * i)
                rows.append(dict(outcome=o, specification=s, estimator="twfe", inference=inf,
                                 estimate=e, ci_low=e - scale * widen, ci_high=e + scale * widen))
    return pd.DataFrame(rows)


def test_forest_plot_rows_equal_input_and_main_highlighted():
    est = _estimates()
    fig = forest_plot(est, inference="cluster",
                      row_labels={"main": "Main", "k1": "k = 1"},
                      group_labels={"rereferrals": "Re-referrals (%)"})
    assert isinstance(fig, Figure)
    _not_empty(fig)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 2
    sub = est.loc[est["inference"] == "cluster"]
    for ax, outcome in zip(axes, ["rereferrals", "cin_rate"]):
        d = sub.loc[sub["outcome"] == outcome]
        segs = np.concatenate([np.array(c.lines[2][0].get_segments()) for c in ax.containers])
        got = sorted((round(min(s[0][0], s[1][0]), 9), round(max(s[0][0], s[1][0]), 9)) for s in segs)
        want = sorted(zip(d["ci_low"].round(9), d["ci_high"].round(9)))
        assert got == want
        main = [c for c in ax.containers if c.lines[0].get_gid() == "main"]
        assert len(main) == 1
        assert _rgb(main[0].lines[0].get_color()) == _rgb(PILOT_COLOUR)
        (x, y), = zip(main[0].lines[0].get_xdata(), main[0].lines[0].get_ydata())
        assert x == pytest.approx(d.loc[d["specification"] == "main", "estimate"].item())
        assert y == max(ax.get_yticks())           # main at the top
        assert set(_line(ax, "zero").get_xdata()) == {0}
    assert axes[0].get_title("left") == "Re-referrals (%)"
    ticks = dict(zip(axes[0].get_yticks(), (t.get_text() for t in axes[0].get_yticklabels())))
    assert ticks[max(ticks)] == "Main" and ticks[min(ticks)] == "k5"


def test_forest_plot_refuses_ambiguous_rows_and_single_panel():
    with pytest.raises(ValueError, match="several rows"):
        forest_plot(_estimates())
    one = _estimates().query("outcome == 'cin_rate' and inference == 'cluster'")
    fig = forest_plot(one, group_col=None)
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 1
    _not_empty(fig)


# ------------------------------------------------------------------ hex map

def _hex_colours(fig: Figure) -> dict[str, tuple]:
    ax = fig.axes[0]
    return {p.get_gid(): _rgb(p.get_facecolor()) for p in ax.patches}


def test_hex_map_fixture(fixtures):
    path = fixtures / "figures" / "tiny.hexjson"
    roles = {"E09000005": "pilot", "E09000004": "pilot", "E06000001": "comparator",
             "E06000060": "similar_model",           # Buckinghamshire, current code
             "E06000063": "boundary_changed",        # Cumberland -> Cumbria's hex
             "E06000002": "other"}
    fig = hex_map(roles, path)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    english = [k for k in json.loads(path.read_text())["hexes"] if k.startswith("E")]
    assert len(ax.patches) == len(english) == 7          # Anglesey (Wales) not drawn
    col = _hex_colours(fig)
    assert col["E09000005"] == col["E09000004"] == _rgb(PILOT_COLOUR)
    assert col["E06000001"] == _rgb(COMPARATOR_COLOUR)
    assert col["E10000002"] == _rgb(ROLE_STYLES["similar_model"]["facecolor"])   # former code
    cumbria = next(p for p in ax.patches if p.get_gid() == "E10000006")
    assert cumbria.get_hatch() == ROLE_STYLES["boundary_changed"]["hatch"]
    assert col["E10000021"] == _rgb(ROLE_STYLES["other"]["facecolor"])           # no role given
    assert not ax.axison
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend[0] == ROLE_STYLES["pilot"]["label"]
    # pilots carry a short label
    assert {"BRE", "BEX"} <= {t.get_text() for t in ax.texts}
    with pytest.raises(ValueError, match="unknown role"):
        hex_map({"E09000005": "treated"}, path)


def test_hex_centres_form_a_tiling():
    """Neighbouring hexes of an odd-r layout are exactly one hex width apart."""
    q = np.array([0, 1, 0, 0])
    r = np.array([0, 0, 1, 2])
    x, y = figures.hex_centres(q, r, "odd-r")
    d = np.hypot(x[:, None] - x, y[:, None] - y)
    assert d[0, 1] == pytest.approx(np.sqrt(3))    # same row
    assert d[0, 2] == pytest.approx(np.sqrt(3))    # odd row shifted right: (0,1) touches (0,0)
    assert d[2, 3] == pytest.approx(np.sqrt(3))
    assert x[2] > x[0] and y[2] > y[0]              # r grows northwards
    with pytest.raises(ValueError):
        figures.hex_centres(q, r, "hexagonal")


@pytest.mark.integration
def test_hex_map_real_hexjson(real_source):
    path = real_source("hexmap_utla")
    hexes = json.loads(path.read_text())["hexes"]
    english = [k for k in hexes if k.startswith("E")]
    pilots = ["E09000005", "E06000023", "E10000018", "E10000019", "E10000020", "E10000029",
              "E09000030", "E08000036", "E10000032", "E06000041", "E09000004"]
    roles = {c: "pilot" for c in pilots} | {"E10000006": "boundary_changed"}
    fig = hex_map(roles, path)
    ax = fig.axes[0]
    assert len(ax.patches) == len(english) == 151
    col = _hex_colours(fig)
    assert all(col[c] == _rgb(PILOT_COLOUR) for c in pilots)
    assert sum(v == _rgb(PILOT_COLOUR) for v in col.values()) == len(pilots)
    # no two hexes overlap
    x, y = figures.hex_centres([hexes[k]["q"] for k in english], [hexes[k]["r"] for k in english],
                               "odd-r")
    d = np.hypot(x[:, None] - x, y[:, None] - y) + np.eye(len(x)) * 9
    assert d.min() == pytest.approx(np.sqrt(3))

    cw = hex_map_crosswalk(path)
    assert not (cw["match"] == "not in register").any()
    assert not (cw["match"] == "not on map").any(), cw.loc[cw["match"] == "not on map"]
    assert set(la_register()["la_code"]) <= set(cw["la_code"])
    former = cw.loc[cw["match"] == "former code"].set_index("hex_id")["la_code"].to_dict()
    assert former == {"E10000002": "E06000060", "E10000023": "E06000065", "E10000027": "E06000066"}


def test_hex_area_links_point_at_register_codes():
    codes = set(la_register()["la_code"])
    for hex_id, linked in figures.HEX_AREA_LINKS.items():
        assert hex_id in codes and set(linked) <= codes


# ------------------------------------------------------------------ pilot profile

def test_pilot_profile_plot_series_equal_panel():
    years = list(range(2013, 2021))
    rows = []
    for code, name, base in [("P", "Pilotshire", 10), ("C1", "Comp one", 12), ("C2", "Comp two", 16),
                             ("X", "Other", 50)]:
        for i, y in enumerate(years):
            rows.append(dict(la_code=code, la_name=name, year=y, m1=base + i,
                             m2=np.nan if (code == "C2" and y == 2014) else base * 2.0 - i))
    panel = pd.DataFrame(rows)
    fig = pilot_profile_plot(panel, "P", ["C1", "C2"], ["m1", "m2"],
                             {"m1": "Measure one (%)", "m2": "Measure two (rate)"},
                             first_treated_year=2015)
    assert isinstance(fig, Figure)
    _not_empty(fig)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 2
    for ax, m in zip(axes, ["m1", "m2"]):
        pil = _line(ax, "pilot")
        np.testing.assert_allclose(pil.get_ydata(), panel.loc[panel["la_code"] == "P", m])
        comp = _line(ax, "comparators")
        want = panel.loc[panel["la_code"].isin(["C1", "C2"])].groupby("year")[m].mean()
        np.testing.assert_allclose(comp.get_ydata(), want.to_numpy())
        assert {ln.get_gid() for ln in ax.get_lines()} >= {"comparator:C1", "comparator:C2", "onset"}
        assert _rgb(pil.get_color()) == _rgb(PILOT_COLOUR)
        assert _rgb(comp.get_color()) == _rgb(COMPARATOR_COLOUR)
    assert axes[0].get_title("left") == "Measure one (%)"
    assert fig.legends[0].get_texts()[0].get_text() == "Pilotshire"
    with pytest.raises(ValueError, match="not in the panel"):
        pilot_profile_plot(panel, "Z", ["C1"], ["m1"])


def test_figures_are_not_tracked_by_pyplot():
    import matplotlib.pyplot as plt

    before = set(plt.get_fignums())
    trend_plot(_trends(), outcome_label="x", first_treated_years=[2015])
    assert set(plt.get_fignums()) == before


# ------------------------------------------------------------------ trends: counterfactual, estimate, title

def test_trend_plot_counterfactual_estimate_band_and_title():
    t = _trends()
    cf = pd.DataFrame({"year": [2014, 2015, 2016], "mean": [11.0, 11.4, 11.9]})
    est = dict(estimate=0.5, ci_low=-1.0, ci_high=2.0, text="Estimated effect +0.5")
    fig = trend_plot(t, outcome_label="x", first_treated_years=[2015], show_pool=False,
                     counterfactual=cf, estimate=est, title="No clear change in x after Signs of Safety began")
    ax = fig.axes[0]
    line = _line(ax, "counterfactual")
    np.testing.assert_allclose(line.get_ydata(), cf["mean"])
    band = next(c for c in ax.collections if c.get_gid() == "estimate")
    ys = band.get_paths()[0].vertices[:, 1]
    # from the first treated year: counterfactual + ci_low .. counterfactual + ci_high
    assert ys.min() == pytest.approx(11.4 - 1.0) and ys.max() == pytest.approx(11.9 + 2.0)
    assert [x.get_text() for x in ax.texts if x.get_gid() == "estimate_text"] == ["Estimated effect +0.5"]
    assert [x.get_text() for x in fig.texts if x.get_gid() == "title"] == \
        ["No clear change in x after Signs of Safety began"]
    legend = [x.get_text() for x in fig.legends[0].get_texts()]
    assert legend[:2] == ["Pilot LAs (10)", "Matched comparators (20)"]
    assert figures.COUNTERFACTUAL_LABEL in legend and figures.ESTIMATE_BAND_LABEL in legend
    with pytest.raises(ValueError, match="give both"):
        trend_plot(t, outcome_label="x", first_treated_years=[2015], estimate=est)


def test_event_study_interval_label_in_legend():
    fig = event_study_plot(_coefs(), interval_label="95% interval: wild cluster bootstrap")
    legend = [x.get_text() for x in fig.legends[0].get_texts()]
    assert legend[-1] == "95% interval: wild cluster bootstrap"


# ------------------------------------------------------------------ power curve, HonestDiD

def _power() -> pd.DataFrame:
    m = np.round(np.arange(0, 2.01, 0.25), 2)
    return pd.DataFrame({"outcome": "x", "effect_in_mdes": m, "effect": 4.0 * m,
                         "power": np.clip(0.05 + 0.75 * m, 0, 1)})


def test_power_curve_plots_its_input_with_mde_and_sesoi():
    p = _power()
    fig = figures.power_curve_plot(p, mde=4.0, unit="percentage points", sesoi=1.3)
    assert isinstance(fig, Figure)
    _not_empty(fig)
    ax = fig.axes[0]
    curve = _line(ax, "power")
    np.testing.assert_allclose(curve.get_xdata(), p["effect"])
    np.testing.assert_allclose(curve.get_ydata(), 100 * p["power"])
    assert set(_line(ax, "mde").get_xdata()) == {4.0}
    assert set(_line(ax, "sesoi").get_xdata()) == {1.3}
    assert set(_line(ax, "target").get_ydata()) == {80.0}
    assert _rgb(curve.get_color()) == _rgb(PILOT_COLOUR)
    assert "percentage points" in ax.get_xlabel()
    legend = [x.get_text() for x in fig.legends[0].get_texts()]
    assert legend[1].startswith("Minimum detectable effect (4.00)")
    with pytest.raises(ValueError, match="power"):
        figures.power_curve_plot(p.drop(columns="power"), mde=4.0)


def _honest() -> pd.DataFrame:
    rows = [dict(method=m, M=x, ci_low=-1 - 3 * x, ci_high=2 + 3 * x)
            for m in ("relative_magnitudes", "smoothness") for x in (0.0, 0.5, 1.0, 1.5)]
    return pd.DataFrame(rows)


def test_honest_did_plot_bars_equal_intervals():
    h = _honest()
    fig = figures.honest_did_plot(h, unit="points", breakdown=0.7)
    axes = fig.axes
    assert [ax.get_title("left") for ax in axes] == ["Relative magnitudes", "Smoothness"]
    for ax, method in zip(axes, ["relative_magnitudes", "smoothness"]):
        d = h[h["method"] == method]
        (bars,) = ax.containers
        segs = np.array(bars.lines[2][0].get_segments())
        got = sorted((s[0][0], min(s[0][1], s[1][1]), max(s[0][1], s[1][1])) for s in segs)
        want = sorted(zip(d["M"], d["ci_low"], d["ci_high"]))
        np.testing.assert_allclose(np.array(got), np.array(want))
        assert set(_line(ax, "zero").get_ydata()) == {0}
    assert set(_line(axes[0], "breakdown").get_xdata()) == {0.7}
    assert not [ln for ln in axes[1].get_lines() if ln.get_gid() == "breakdown"]
    one = figures.honest_did_plot(h[h["method"] == "smoothness"])
    assert len(one.axes) == 1
    with pytest.raises(ValueError, match="known method"):
        figures.honest_did_plot(h.assign(method="other"))
