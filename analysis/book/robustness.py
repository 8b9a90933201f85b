"""Tables and figures of the robustness pages: sensitivity, every-donor fit, each pilot alone.

Three pages call this module:

* the sensitivity chapter: :func:`spec_rows` and :func:`spec_forest` (one forest
  plot per outcome, every specification with the primary inference's interval),
  :func:`sensitivity_summary`, :func:`prior_use_table`, :func:`leave_one_out_table`
  and :func:`glue_sensitivity` (the counts and readings in words);
* the matching chapter: :func:`sdid_top_weights`, :func:`pre_fit_table`,
  :func:`gap_plot` and :func:`glue_sdid` (synthetic difference-in-differences
  beside the matched comparators);
* the pilot profiles: :func:`pilot_estimates_table`, :func:`placebo_plot` and
  :func:`pilot_noise_markdown` (each pilot's own estimate and how noisy it is).

Everything is read from ``results/`` and ``data/processed/``; the only arithmetic
is arranging it (means of published series, root mean squared gaps), never an
estimate. Intervals are the primary inference's (the wild cluster bootstrap) for
every matched difference-in-differences row; another interval appears only on a
row that names it (the synthetic DiD's placebo interval, the staggered estimator's
analytic one, the cluster-robust interval of a difference between two estimates).
Figures follow :mod:`analysis.book.figures`: the Analysis Function style and
colour-blind-safe palette, pilots in dark blue, comparators in orange.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from analysis.book import figures as F
from analysis.book.chapters import (
    design,
    fmt,
    fmt_p,
    glue_md,
    la_names,
    processed,
    prose_label,
    result,
    unit_of,
)
from analysis.book.figure_memo import memoised

PRIMARY = "wild_bootstrap"

#: Words for the onsets of the design.
ONSET_WORDS = {"wave1": "wave 1", "wave2": "wave 2"}
#: Small numbers in words for running text.
_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
          "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
          "eighteen", "nineteen", "twenty")

#: Rows of a forest plot, in order: (key, group, label). ``sdid`` and ``staggered``
#: are estimators of the main specification, ``leave_one_out`` the range of the
#: leave-one-out runs; every other key is a specification of the design.
ROWS: tuple[tuple[str, str, str], ...] = (
    ("main", "Main", "Matched DiD"),
    ("sdid", "Estimator", "Synthetic DiD, all donors"),
    ("all_donors", "Estimator", "DiD, all donors unmatched"),
    ("staggered", "Estimator", "Staggered (Callaway–Sant'Anna)"),
    ("exclude_similar_models", "Comparators", "No similar-model LAs"),
    ("no_known_sos", "Comparators", "No known Signs of Safety LAs"),
    ("common_comparators", "Comparators", "One comparator set, all outcomes"),
    ("k1", "Comparators", "One comparator per pilot"),
    ("k5", "Comparators", "Five comparators per pilot"),
    ("wave2_onset", "Timing", "Every pilot from wave 2"),
    ("transition_year", "Timing", "First treated year dropped"),
    ("years_0_3", "Timing", "First four years only"),
    ("no_covid", "Timing", "No COVID-19 years"),
    ("programme_period", "Timing", "Programme period only"),
    ("pilots_new_to_sos", "Pilots", "New to Signs of Safety"),
    ("pilots_experienced", "Pilots", "Prior Signs of Safety use"),
    ("leave_one_out", "Pilots", "Leave one out (range)"),
    ("no_anomalies", "Data", "Flagged LA-years left out"),
    ("main_2026_11", "Data", "Main as first published"),
)
_ROW_KEYS = [k for k, _, _ in ROWS]

#: Each row in running text ("the estimate changes sign <prose>").
PROSE = {
    "sdid": "with the synthetic DiD (placebo interval)",
    "all_donors": "against every eligible donor (no matching)",
    "staggered": "with the staggered-adoption estimator (analytic interval)",
    "exclude_similar_models": "without LAs running similar models",
    "no_known_sos": "without LAs known to use Signs of Safety",
    "common_comparators": "with one comparator set for every outcome",
    "no_anomalies": "leaving out the LA-years the anomaly rule flags",
    "main_2026_11": "with the main analysis as first published",
    "wave2_onset": "with every pilot treated from wave 2",
    "transition_year": "leaving out each pilot's first treated year",
    "no_covid": "without the COVID-19 years",
    "programme_period": "over the programme period only",
    "pilots_new_to_sos": "with the pilots new to Signs of Safety only",
    "pilots_experienced": "with the pilots with prior use only",
}

#: How each kind of row's interval is named in figures and tables.
INTERVAL_WORDS = {"wild_bootstrap": "wild bootstrap", "placebo": "placebo (synthetic DiD)",
                  "analytic": "analytic", "cluster": "cluster-robust", "range": "range of estimates"}


def _words(n: int, *others: int) -> str:
    """A count in words up to twenty, else in digits; digits too when any of ``others`` is above twenty."""
    if any(m >= len(_WORDS) for m in others):
        return f"{n:,}"
    return _WORDS[n] if 0 <= n < len(_WORDS) else f"{n:,}"


def _none_of(k: int, n: int) -> str:
    """``"none of the ten"``, ``"two of the ten"`` (a count of a total, in words)."""
    return f"{'none' if k == 0 else _words(k, n)} of the {_words(n, k)}"


def _years(span: str) -> list[int]:
    """Years of a results year span (``"2013-2014"``, ``"2015-2020,2023-2025"``)."""
    out: list[int] = []
    for part in str(span).split(","):
        a, _, b = part.strip().partition("-")
        if a.strip().isdigit():
            out.extend(range(int(a), int(b or a) + 1))
    return out


def run_years(outcome: str) -> tuple[list[int], list[int]]:
    """Pre-years and post-years of an outcome's main analysis, as the results record them.

    Read from the main row of ``estimates.csv`` (so that they match the results
    even when the design file has changed since); the design's years otherwise.
    """
    est = _estimates()
    m = est[(est["outcome"] == outcome) & (est["specification"] == "main") & (est["estimator"] == "twfe")]
    if len(m):
        pre, post = _years(m["pre_years"].iloc[0]), _years(m["post_years"].iloc[0])
        if pre and post:
            return pre, post
    d = design()
    pre = d.pre_years(outcome)
    return pre, [y for y in d.years(outcome) if y > max(pre)]


def _join(items: Sequence[str], last: str = "and") -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + f" {last} " + items[-1]


def _interval(lo: float, hi: float, digits: int = 1) -> str:
    return f"{_num(lo, digits)} to {_num(hi, digits)}"


def _num(x: float, digits: int = 1, signed: bool = False) -> str:
    """:func:`fmt`, but a value that rounds to zero is written without a sign ("0.0", not "−0.0")."""
    if x is not None and np.isfinite(x) and round(abs(x), digits) == 0:
        return fmt(0.0, digits)
    return fmt(x, digits, signed)


def _wrap(text: str, width: int) -> str:
    """Wrap a figure title at spaces only (never inside "re-referrals")."""
    import textwrap

    return "\n".join(textwrap.wrap(str(text), width, break_on_hyphens=False))


def _digits(values: Sequence[float]) -> int:
    """Decimals for a set of numbers: one, or none when they are large (rates per 10,000)."""
    v = np.abs(np.asarray([x for x in values if np.isfinite(x)], float))
    return 0 if v.size and np.nanmedian(v) >= 20 else 1


def _row_text(key: str) -> tuple[str, str]:
    """(label, running text) of a specification row, with numbers read from the design."""
    d = design()
    s = d.specifications.get(key)
    label = dict((k, lab) for k, _, lab in ROWS).get(key, key)
    prose = PROSE.get(key, "")
    if s is not None:
        ch = dict(s.changes or {})
        k = ch.get("k")
        if key.startswith("k") and k:
            label = f"{_words(int(k)).capitalize()} comparator{'s' if k != 1 else ''} per pilot"
            prose = f"with {_words(int(k))} comparator{'s' if k != 1 else ''} per pilot"
        if s.max_event_time is not None:
            n = int(s.max_event_time) + 1
            label = f"First {_words(n)} years only"
            prose = f"over the first {_words(n)} years after onset only"
        if s.last_year is not None and key == "programme_period":
            label = f"Programme period (to {s.last_year})"
            prose = f"over the programme period only (to {s.last_year})"
    if not prose:
        prose = "under “" + (s.description if s is not None else key) + "”"
    return label, prose


def _shorten(text: str, width: int) -> str:
    """Text cut at a word to at most ``width`` characters, with an ellipsis when cut."""
    text = " ".join(str(text).split())
    if len(text) <= width:
        return text
    return text[: width - 1].rsplit(" ", 1)[0] + "…"


def _short_outcome(label: str) -> str:
    return label.split(" (")[0]


def _pilot_name(la_code: str) -> str:
    for p in design().pilots:
        if p.la_code == la_code:
            return p.name
    return la_names().get(la_code, la_code)


def _estimates() -> pd.DataFrame:
    return result("estimates")


def _evidence() -> pd.DataFrame:
    return result("evidence").set_index("outcome")


def _outcomes() -> list:
    """The design's outcomes that have results, in the design's order."""
    ev = _evidence()
    return [o for o in design().outcomes if o.id in ev.index]


def main_onset(outcome: str) -> str:
    """The onset of an outcome's main analysis (``evidence.csv``, else the design)."""
    ev = _evidence()
    if "onset" in ev.columns and outcome in ev.index and isinstance(ev.loc[outcome, "onset"], str):
        return ev.loc[outcome, "onset"]
    return design().outcome(outcome).onset


def _spec_onset(outcome: str, spec: str) -> str:
    d = design()
    if spec in d.specifications:
        return d.onset_for(outcome, spec)
    return main_onset(outcome)


def styled(table: pd.DataFrame, nowrap: Sequence[str] = ()):
    """A table for the page: no index, cells aligned at the top, the ``nowrap`` columns on one line.

    Names (an authority) and estimates with their interval ("−4.5 (−10.4 to
    1.3)") read badly when a line breaks inside them, on screen and on paper.
    """
    sty = table.style.hide(axis="index").set_properties(**{"vertical-align": "top"})
    cols = [c for c in nowrap if c in table.columns]
    if cols:
        sty = sty.set_properties(subset=cols, **{"white-space": "nowrap"})
    return sty


def estimate_columns(table: pd.DataFrame) -> list[str]:
    """Columns of a table that hold an estimate, an interval or a count of runs (kept on one line)."""
    keys = ("estimate", "interval", "Difference", "Onset", "Runs", "Same sign", "excludes zero",
            "Weight", "Rank", "RMSE", "Pre-years", "p-value", "Donor LA", "Pilot")
    return [c for c in table.columns if any(k.lower() in str(c).lower() for k in keys)]


# --------------------------------------------------------------------------- sensitivity

def spec_rows(outcome: str, estimates: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every estimate of one outcome as the rows of its forest plot.

    Parameters
    ----------
    outcome : str
        Outcome id.
    estimates : DataFrame, optional
        ``results/estimates.csv`` (default: read).

    Returns
    -------
    DataFrame
        One row per line of the plot, in :data:`ROWS` order (specifications the
        design adds later come last, in a group "Other"): ``key``, ``group``,
        ``label``, ``estimate``, ``ci_low``, ``ci_high``, ``p_value``,
        ``interval`` (a key of :data:`INTERVAL_WORDS`), ``onset``, ``n_treated``,
        ``n_comparison`` and, for the leave-one-out row, ``runs`` (the estimates
        of its runs). Matched DiD rows carry the wild bootstrap interval.
        Specifications not run for the outcome (``notes.csv``) have no row.
    """
    est = _estimates() if estimates is None else estimates
    e = est[est["outcome"] == outcome]
    twfe = e[(e["estimator"] == "twfe") & (e["inference"] == PRIMARY)]
    by_spec = twfe.set_index("specification")
    labels = {k: (g, lab) for k, g, lab in ROWS}
    rows = []

    def add(key, r, interval, onset):
        group = labels.get(key, ("Other", key))[0]
        label = _row_text(key)[0] if key in labels else key
        rows.append(dict(key=key, group=group, label=label, estimate=float(r["estimate"]),
                         ci_low=float(r["ci_low"]), ci_high=float(r["ci_high"]),
                         p_value=float(r["p_value"]), interval=interval, onset=onset,
                         n_treated=r.get("n_treated"), n_comparison=r.get("n_comparison"), runs=None))

    main = main_onset(outcome)
    for key in _ROW_KEYS:
        if key == "sdid":
            s = e[(e["estimator"] == "sdid") & (e["specification"] == "main")]
            if not s.empty:
                add(key, s.iloc[0], "placebo", main)
        elif key == "staggered":
            s = e[(e["estimator"] == "staggered") & (e["inference"] == "analytic")
                  & (e["specification"] == "main")]
            if not s.empty:
                add(key, s.iloc[0], "analytic", main)
        elif key == "leave_one_out":
            loo = twfe[twfe["specification"].str.startswith("leave_one_out:")]
            if not loo.empty:
                v = loo["estimate"].to_numpy(float)
                rows.append(dict(key=key, group="Pilots", label=labels[key][1], estimate=float(np.median(v)),
                                 ci_low=float(v.min()), ci_high=float(v.max()), p_value=np.nan,
                                 interval="range", onset=main, n_treated=np.nan, n_comparison=np.nan,
                                 runs=v))
        elif key in by_spec.index:
            add(key, by_spec.loc[key], PRIMARY, _spec_onset(outcome, key))
    d = design()
    for spec in by_spec.index:
        if spec in labels or spec.startswith("leave_one_out:"):
            continue
        s = d.specifications.get(spec)
        add(spec, by_spec.loc[spec], PRIMARY, _spec_onset(outcome, spec))
        rows[-1]["label"] = _shorten(s.description if s is not None else spec.replace("_", " "), 30)
    return pd.DataFrame(rows, columns=["key", "group", "label", "estimate", "ci_low", "ci_high", "p_value",
                                       "interval", "onset", "n_treated", "n_comparison", "runs"])


#: Marker of each kind of row: (marker, face colour, edge colour, size).
_MARKERS = {
    "main": ("D", F.PILOT_COLOUR, F.PILOT_COLOUR, 7),
    "wild_bootstrap": ("o", "white", F.DARK_GREY, 5.5),
    "placebo": ("s", F.COMPARATOR_COLOUR, F.COMPARATOR_COLOUR, 6),
    "analytic": ("^", F.SECOND_COLOUR, F.SECOND_COLOUR, 6.5),
}


@memoised
def spec_forest(rows: pd.DataFrame, *, unit: str = "", title: str | None = None) -> Figure:
    """Forest plot of one outcome: every specification's estimate and interval.

    Drawn compact (two fit on an A4 page, at full size): no title by default
    (the chapter's caption names the outcome), the group of each row written
    once at the left, thin lines between groups.

    Parameters
    ----------
    rows : DataFrame
        :func:`spec_rows` of one outcome.
    unit : str
        Unit of the estimates (x-axis label).
    title : str, optional
        Bold line above the plot.

    Returns
    -------
    Figure
        One line per row (``gid`` ``row:<key>``), the main analysis on top; the
        estimate and interval of each row written at the right; a column
        naming each row's onset when the rows do not share one (otherwise the
        column heading names the shared onset). Markers tell the interval
        apart: dark-blue diamond for the main analysis and open circles for the
        other matched DiD rows (wild bootstrap), orange squares for the
        synthetic DiD (placebo), turquoise triangles for the staggered
        estimator (analytic); the leave-one-out row is a grey bar spanning its
        runs' estimates, with a tick at each.
    """
    if rows.empty:
        raise ValueError("spec_forest: no rows")
    rows = rows.reset_index(drop=True)
    onsets = list(dict.fromkeys(rows["onset"]))
    mixed = len(onsets) > 1
    n = len(rows)
    digits = _digits(list(rows["estimate"]) + list(rows["ci_low"]) + list(rows["ci_high"]))
    line_h, head_in, bottom_in = 0.18, 0.3 + (0.3 if title else 0.0), 0.74
    height = n * line_h + head_in + bottom_in
    width = F._MAIN_WIDTH
    group_in, label_in, text_in, onset_in = 0.8, 1.85, 1.62, 0.46
    left_in = group_in + label_in
    right_in = 0.1 + text_in + (onset_in if mixed else 0.0)
    plot_in = width - left_in - right_in
    ys = {k: n - 1 - i for i, k in enumerate(rows["key"])}
    with F.house_style():
        fig = F._new_figure((width, height))
        ax = fig.add_axes((left_in / width, bottom_in / height, plot_in / width,
                           n * line_h / height))
        tr = ax.get_yaxis_transform()
        text_x, onset_x = 1 + 0.1 / plot_in, 1 + (0.1 + text_in) / plot_in
        group_x = -left_in / plot_in
        previous = None
        for _, r in rows.iterrows():
            y = ys[r["key"]]
            if r["group"] != previous:
                ax.text(group_x, y, r["group"], transform=tr, ha="left", va="center", fontsize=8,
                        fontweight="bold")
                if previous is not None:
                    ax.plot([group_x, onset_x + (onset_in / plot_in if mixed else 0)], [y + 0.5, y + 0.5],
                            transform=tr, color="#D9D9D9", linewidth=0.7, clip_on=False, zorder=0)
                previous = r["group"]
            main = r["key"] == "main"
            if r["interval"] == "range":
                ax.plot([r["ci_low"], r["ci_high"]], [y, y], color=F.CONTEXT_GREY, linewidth=6,
                        solid_capstyle="butt", zorder=2, gid=f"row:{r['key']}")
                for v in r["runs"]:
                    ax.plot([v, v], [y - 0.25, y + 0.25], color=F.DARK_GREY, linewidth=1, zorder=3)
                text = f"{_num(r['ci_low'], digits)} to {_num(r['ci_high'], digits)}"
            else:
                marker, face, edge, size = _MARKERS["main" if main else r["interval"]
                                                    if r["interval"] in _MARKERS else "wild_bootstrap"]
                ax.plot([r["ci_low"], r["ci_high"]], [y, y], color=F.PILOT_COLOUR if main else F.DARK_GREY,
                        linewidth=1.6 if main else 1.2, zorder=2, gid=f"row:{r['key']}")
                ax.plot([r["estimate"]], [y], marker=marker, markersize=size, markerfacecolor=face,
                        markeredgecolor=edge, markeredgewidth=1.3, linestyle="none", zorder=4)
                text = (f"{_num(r['estimate'], digits, signed=True)} "
                        f"({_interval(r['ci_low'], r['ci_high'], digits)})")
            ax.text(text_x, y, text, transform=tr, ha="left", va="center", fontsize=8,
                    color="black" if main else F.DARK_GREY, fontweight="bold" if main else "normal")
            if mixed:
                ax.text(onset_x, y, ONSET_WORDS.get(r["onset"], r["onset"]), transform=tr, ha="left",
                        va="center", fontsize=8, color=F.DARK_GREY)
        ax.set_yticks(list(ys.values()), [str(x).replace("\n", " ") for x in rows["label"]], fontsize=8.5)
        ax.tick_params(axis="y", length=0)
        ax.set_ylim(-0.6, n - 0.4)
        ax.axvline(0, color=F.DARK_GREY, linewidth=0.8, zorder=1)
        m = rows[rows["key"] == "main"]
        if not m.empty:
            ax.axvline(float(m["estimate"].iloc[0]), color=F.PILOT_COLOUR, linewidth=0.8,
                       linestyle=(0, (2, 2)), zorder=1, alpha=0.7)
        ax.grid(axis="y", visible=False)
        ax.set_xlabel(f"Estimated effect ({unit})" if unit else "Estimated effect", fontsize=8.5)
        ax.tick_params(axis="x", labelsize=8)
        head_y = n - 0.4
        ax.text(text_x, head_y, "Estimate (95% interval)", transform=tr, ha="left", va="bottom",
                fontsize=8, fontweight="bold")
        if mixed:
            ax.text(onset_x, head_y, "Onset", transform=tr, ha="left", va="bottom", fontsize=8,
                    fontweight="bold")
        else:
            ax.text(group_x, head_y, f"Every row: {ONSET_WORDS.get(onsets[0], onsets[0])} onset",
                    transform=tr, ha="left", va="bottom", fontsize=8.5, color=F.DARK_GREY)
        if title:
            fig.text(0.01, 1 - 0.08 / height, title, ha="left", va="top", fontsize=10, fontweight="bold")
        kinds = set(rows["interval"])
        handles = [Line2D([], [], marker="D", color=F.PILOT_COLOUR, markersize=6, linewidth=1.6,
                          label="Main analysis (wild bootstrap)")]
        if (rows["interval"].eq(PRIMARY) & rows["key"].ne("main")).any():
            handles.append(Line2D([], [], marker="o", color=F.DARK_GREY, markerfacecolor="white",
                                  markersize=5.5, linewidth=1.2, label="Other matched DiD (wild bootstrap)"))
        if "placebo" in kinds:
            handles.append(Line2D([], [], marker="s", color=F.DARK_GREY, markerfacecolor=F.COMPARATOR_COLOUR,
                                  markeredgecolor=F.COMPARATOR_COLOUR, markersize=6, linewidth=1.2,
                                  label="Synthetic DiD (placebo)"))
        if "analytic" in kinds:
            handles.append(Line2D([], [], marker="^", color=F.DARK_GREY, markerfacecolor=F.SECOND_COLOUR,
                                  markeredgecolor=F.SECOND_COLOUR, markersize=6.5, linewidth=1.2,
                                  label="Staggered adoption (analytic)"))
        if "range" in kinds:
            handles.append(Patch(facecolor=F.CONTEXT_GREY, edgecolor="none",
                                 label="Leaving out one pilot: range"))
        fig.legend(handles=handles, loc="lower left", bbox_to_anchor=(0.0, 0.0), ncols=3, frameon=False,
                   fontsize=8, handlelength=1.8, columnspacing=1.0, borderaxespad=0.1)
    return fig


def _row_label(rows: pd.DataFrame, key: str) -> str:
    return str(rows.loc[rows["key"] == key, "label"].iloc[0])


def outcome_forest(outcome: str) -> Figure:
    """:func:`spec_forest` of one outcome, titled with its label (what a chapter cell calls)."""
    o = design().outcome(outcome)
    return spec_forest(spec_rows(o.id), unit=unit_of(o.measure))


def specs_run(outcome: str, estimates: pd.DataFrame | None = None) -> dict[str, int]:
    """How many specifications were run for an outcome besides the main analysis.

    Returns
    -------
    dict
        ``named`` (named alternatives), ``leave_one_out`` (runs leaving out one
        pilot), ``total`` (their sum) and ``not_run`` (alternatives of the design
        skipped because they would repeat the main analysis, from ``notes.csv``).
    """
    est = _estimates() if estimates is None else estimates
    t = est[(est["outcome"] == outcome) & (est["estimator"] == "twfe") & (est["inference"] == PRIMARY)]
    specs = set(t["specification"]) - {"main"}
    loo = {s for s in specs if s.startswith("leave_one_out:")}
    notes = result("notes")
    skipped = notes[(notes["outcome"] == outcome) & notes["note"].astype(str).str.startswith("not run")]
    return {"named": len(specs - loo), "leave_one_out": len(loo), "total": len(specs),
            "not_run": int(skipped["specification"].nunique())}


def _excludes_zero(lo: float, hi: float) -> bool:
    return bool(np.isfinite(lo) and np.isfinite(hi) and (lo > 0 or hi < 0))


def sensitivity_summary() -> pd.DataFrame:
    """One row per outcome: how the estimate moves across its specifications.

    Returns
    -------
    DataFrame
        ``Outcome``, ``Onset``, ``Runs`` (specifications besides the main
        analysis), ``Main estimate (95% wild bootstrap interval)``, ``Other
        estimates, smallest to largest``, ``Same sign as the main estimate``
        and ``Interval excludes zero`` (counts over the other matched DiD
        runs, each with its wild bootstrap interval), ``Synthetic DiD (95%
        placebo interval)``.
    """
    est = _estimates()
    rows = []
    for o in _outcomes():
        e = est[(est["outcome"] == o.id) & (est["estimator"] == "twfe") & (est["inference"] == PRIMARY)]
        m = e[e["specification"] == "main"]
        if m.empty:
            continue
        m = m.iloc[0]
        others = e[e["specification"] != "main"]
        allv = [m["estimate"], m["ci_low"], m["ci_high"], *others["estimate"]]
        dg = _digits(allv)
        same = int((np.sign(others["estimate"]) == np.sign(m["estimate"])).sum())
        excl = int(sum(_excludes_zero(a, b) for a, b in zip(others["ci_low"], others["ci_high"])))
        s = est[(est["outcome"] == o.id) & (est["estimator"] == "sdid")]
        rows.append({
            "Outcome": o.label, "Onset": ONSET_WORDS.get(main_onset(o.id), main_onset(o.id)),
            "Runs": len(others),
            "Main estimate (95% wild bootstrap interval)":
                f"{_num(m['estimate'], dg, True)} ({_interval(m['ci_low'], m['ci_high'], dg)})",
            "Other estimates, smallest to largest":
                _interval(others["estimate"].min(), others["estimate"].max(), dg) if len(others) else "–",
            "Same sign as the main estimate": f"{same} of {len(others)}",
            "Interval excludes zero": f"{excl} of {len(others)}",
            "Synthetic DiD (95% placebo interval)":
                (f"{_num(s['estimate'].iloc[0], dg, True)} "
                 f"({_interval(s['ci_low'].iloc[0], s['ci_high'].iloc[0], dg)})") if len(s) else "–",
        })
    return pd.DataFrame(rows)


def prior_use_table() -> pd.DataFrame:
    """Pilots new to Signs of Safety against pilots with prior use, per outcome.

    Each group's estimate carries its wild bootstrap interval; the difference
    between them carries the cluster-robust interval of ``contrasts.csv``
    (conservative when the two estimates share comparators), and the column
    says so.
    """
    est = _estimates()
    con = result("contrasts")
    con = con[con["contrast"] == "prior_use"].set_index("outcome")
    rows = []
    for o in _outcomes():
        if o.id not in con.index:
            continue
        c = con.loc[o.id]
        e = est[(est["outcome"] == o.id) & (est["estimator"] == "twfe") & (est["inference"] == PRIMARY)
                ].set_index("specification")
        cells = {}
        for spec, name in ((c["first"], "Pilots new to Signs of Safety"),
                           (c["second"], "Pilots with prior use")):
            if spec in e.index:
                r = e.loc[spec]
                dg = _digits([r["estimate"], r["ci_low"], r["ci_high"]])
                cells[name] = (f"{_num(r['estimate'], dg, True)} ({_interval(r['ci_low'], r['ci_high'], dg)}); "
                               f"{int(r['n_treated'])} pilots")
            else:
                cells[name] = "–"
        dg = _digits([c["difference"], c["ci_low"], c["ci_high"]])
        rows.append({"Outcome": o.label, **cells,
                     "Difference, new minus prior use (95% cluster-robust interval)":
                         f"{_num(c['difference'], dg, True)} ({_interval(c['ci_low'], c['ci_high'], dg)})",
                     "p-value (cluster-robust)": fmt_p(c["p_value"]).replace("p = ", "").replace("p ", "")})
    return pd.DataFrame(rows)


def leave_one_out_table() -> pd.DataFrame:
    """Per outcome: the estimates leaving out one pilot at a time (wild bootstrap intervals)."""
    est = _estimates()
    rows = []
    for o in _outcomes():
        e = est[(est["outcome"] == o.id) & (est["estimator"] == "twfe") & (est["inference"] == PRIMARY)]
        m = e[e["specification"] == "main"]
        g = e[e["specification"].str.startswith("leave_one_out:")]
        if g.empty or m.empty:
            continue
        m = m.iloc[0]
        dg = _digits(list(g["estimate"]) + [m["estimate"]])
        lo, hi = g.loc[g["estimate"].idxmin()], g.loc[g["estimate"].idxmax()]

        def who(r):
            return _pilot_name(r["specification"].split(":", 1)[1])

        rows.append({"Outcome": o.label, "Runs": len(g),
                     "Smallest estimate (pilot left out)": f"{_num(lo['estimate'], dg, True)} ({who(lo)})",
                     "Largest estimate (pilot left out)": f"{_num(hi['estimate'], dg, True)} ({who(hi)})",
                     "Sign differs from the main estimate":
                         str(int((np.sign(g["estimate"]) != np.sign(m["estimate"])).sum())),
                     "Interval excludes zero":
                         str(int(sum(_excludes_zero(a, b) for a, b in zip(g["ci_low"], g["ci_high"]))))})
    return pd.DataFrame(rows)


def spec_counts_sentence() -> str:
    """How many specifications were run per outcome, in words (generated from the results)."""
    outs = _outcomes()
    runs = {o.id: specs_run(o.id) for o in outs}
    totals = sorted({r["total"] for r in runs.values()})
    named = sorted({r["named"] for r in runs.values()})
    loo = sorted({r["leave_one_out"] for r in runs.values()})
    skipped = [o for o in outs if runs[o.id]["not_run"]]

    def span(v):
        return _words(v[0], *v) if len(v) == 1 else f"from {_words(v[0], *v)} to {_words(v[-1], *v)}"

    who = f"Each of the {_words(len(outs))} outcomes was" if len(outs) > 1 else "The outcome was"
    text = (f"{who} estimated {span(totals)} times besides its "
            f"main analysis: {span(named)} named alternatives and {span(loo)} runs leaving out one "
            f"pilot at a time (one per pilot in the outcome's analysis).")
    if skipped:
        text += (f" For {_join([prose_label(o.label) for o in skipped])}, "
                 f"{'whose main analysis already uses' if len(skipped) == 1 else 'whose main analyses already use'}"
                 " the wave-two onset, that alternative would repeat the main analysis and was not run.")
    ev = _evidence()
    if "n_sensitivity" in ev.columns:
        counted = sorted({int(ev.loc[o.id, "n_sensitivity"]) for o in outs})
        text += (f" The evidence rule's check that the sign holds counts {span(counted)} of these runs: "
                 "the two prior-use subgroups are a comparison between groups of pilots, not a check "
                 "of the main estimate.")
    return text


def sensitivity_reading() -> str:
    """What moves across specifications and what does not, one bullet per outcome (Markdown)."""
    est = _estimates()
    out = []
    for o in _outcomes():
        rows = spec_rows(o.id, est)
        main = rows[rows["key"] == "main"]
        if main.empty:
            continue
        m = main.iloc[0]
        alt = rows[(rows["key"] != "main") & (rows["interval"] != "range")]
        flips = alt[np.sign(alt["estimate"]) != np.sign(m["estimate"])]
        excl = alt[[_excludes_zero(a, b) for a, b in zip(alt["ci_low"], alt["ci_high"])]]
        loo = rows[rows["key"] == "leave_one_out"]
        text = f"**{_short_outcome(o.label)}**: "
        if flips.empty:
            text += f"Every one of the {_words(len(alt))} other estimates has the sign of the main estimate."
        else:
            text += (f"The estimate changes sign in {_none_of(len(flips), len(alt))} other runs: "
                     + _join([_row_text(k)[1] for k in flips["key"]]) + ".")
        if excl.empty:
            text += " No interval excludes zero."
        else:
            text += (f" The interval excludes zero in {_words(len(excl))} run{'s' if len(excl) > 1 else ''}: "
                     + _join([_row_text(k)[1] for k in excl["key"]]) + ".")
        if len(loo):
            runs = loo.iloc[0]["runs"]
            n_flip = int((np.sign(runs) != np.sign(m["estimate"])).sum())
            text += (f" Leaving out one pilot at a time changes the sign in {_none_of(n_flip, len(runs))} "
                     "runs.")
        out.append("- " + text)
    return "\n".join(out)


def estimator_sentence() -> str:
    """How the synthetic DiD and the unmatched all-donor DiD compare with the matched DiD (words)."""
    est = _estimates()
    outs = _outcomes()
    n_sdid = same_sdid = excl_sdid = n_all = same_all = excl_all = 0
    for o in outs:
        rows = spec_rows(o.id, est).set_index("key")
        if "main" not in rows.index:
            continue
        sign = np.sign(rows.loc["main", "estimate"])
        if "sdid" in rows.index:
            r = rows.loc["sdid"]
            n_sdid += 1
            same_sdid += int(np.sign(r["estimate"]) == sign)
            excl_sdid += int(_excludes_zero(r["ci_low"], r["ci_high"]))
        if "all_donors" in rows.index:
            r = rows.loc["all_donors"]
            n_all += 1
            same_all += int(np.sign(r["estimate"]) == sign)
            excl_all += int(_excludes_zero(r["ci_low"], r["ci_high"]))
    parts = []
    if n_sdid:
        parts.append(f"The synthetic difference-in-differences, which weights every eligible donor, "
                     f"has the sign of the matched estimate for {_none_of(same_sdid, n_sdid)} outcomes, "
                     f"and its placebo interval excludes zero for {_none_of(excl_sdid, n_sdid)}.")
    if n_all:
        parts.append(f"The unmatched difference-in-differences against every eligible donor has the "
                     f"sign of the matched estimate for {_none_of(same_all, n_all)} outcomes, "
                     f"and its wild bootstrap interval excludes zero for {_none_of(excl_all, n_all)}.")
    return " ".join(parts)


def prior_use_sentence() -> str:
    """The prior-use contrast in words (generated from ``contrasts.csv``)."""
    con = result("contrasts")
    con = con[con["contrast"] == "prior_use"]
    ids = [o.id for o in _outcomes()]
    con = con[con["outcome"].isin(ids)]
    if con.empty:
        return "The prior-use comparison was not run."
    further = int((con["estimate_first"].abs() > con["estimate_second"].abs()).sum())
    alpha = design().inference.alpha
    sig = con[con["p_value"] < alpha]
    text = (f"For {_none_of(further, len(con))} outcomes the estimate for pilots new to "
            f"Signs of Safety is further from zero than the estimate for pilots with prior use, as it "
            f"would be if prior use had already moved the experienced pilots before the programme. ")
    if sig.empty:
        text += (f"No difference between the two groups has a cluster-robust p-value below {alpha:g}: "
                 "each group holds only a few pilots, so the comparison cannot tell the groups apart.")
    else:
        names = [prose_label(design().outcome(i).label) for i in sig["outcome"]]
        text += (f"The difference has a cluster-robust p-value below {alpha:g} for {_join(names)}, "
                 "with few pilots in each group.")
    return text


def glue_sensitivity() -> None:
    """Glue the sensitivity chapter's sentences (``sens_*`` keys)."""
    glue_md("sens_counts", spec_counts_sentence())
    glue_md("sens_reading", sensitivity_reading())
    glue_md("sens_estimators", estimator_sentence())
    glue_md("sens_prior_use", prior_use_sentence())
    glue_md("sens_alpha_pct", f"{fmt(100 * (1 - design().inference.alpha), 0)}%")


# --------------------------------------------------------------------------- every donor (SDID)

def la_name_lookup() -> dict[str, str]:
    """LA names from the panel (``data/processed/panel.csv``), else the register."""
    names = dict(la_names())
    try:
        p = processed("panel")
        names.update(p.drop_duplicates("la_code", keep="last").set_index("la_code")["la_name"].to_dict())
    except Exception:  # the register always has the names; the panel adds current spellings
        pass
    return names


def sdid_top_weights(outcome: str, n: int = 10) -> pd.DataFrame:
    """The ``n`` donors with the largest synthetic DiD weights for one outcome.

    Returns
    -------
    DataFrame
        ``Rank``, ``Donor LA``, ``Weight (%)``, ``Cumulative (%)`` and
        ``Weight if all were equal (%)`` (the same on every row).
    """
    w = result("sdid_weights")
    w = w[w["outcome"] == outcome].sort_values("weight", ascending=False)
    names = la_name_lookup()
    top = w.head(n)
    equal = 100.0 / len(w) if len(w) else np.nan
    return pd.DataFrame({"Rank": np.arange(1, len(top) + 1),
                         "Donor LA": [names.get(c, c) for c in top["la_code"]],
                         "Weight (%)": [fmt(100 * x, 2) for x in top["weight"]],
                         "Cumulative (%)": [fmt(100 * x, 1) for x in top["weight"].cumsum()],
                         "Weight if all were equal (%)": fmt(equal, 2)})


def _weights_summary(outcome: str) -> dict[str, float]:
    w = result("sdid_weights")
    w = w[(w["outcome"] == outcome)]["weight"].to_numpy(float)
    if w.size == 0:
        return {"n": 0, "positive": 0, "effective": np.nan, "largest": np.nan, "top10": np.nan}
    return {"n": int(w.size), "positive": int((w > 0).sum()), "effective": float(1 / np.sum(w ** 2)),
            "largest": float(w.max()), "top10": float(np.sort(w)[::-1][:10].sum())}


def _gap_series(outcome: str) -> pd.DataFrame:
    """Yearly gaps for the pre-period fit: pilots minus matched comparators, pilots minus SDID donors.

    Returns
    -------
    DataFrame
        Indexed by year: ``matched`` (``trends.csv``: the pilots' mean minus their
        matched comparators' mean) and ``sdid`` (the mean of the pilots in the
        synthetic DiD's balanced panel minus the donors' weighted mean, with the
        weights of ``sdid_weights.csv``); NaN where not available.
    """
    d = design()
    o = d.outcome(outcome)
    pre, post = run_years(outcome)
    years = pre + post
    tr = result("trends")
    tr = tr[tr["outcome"] == outcome].pivot_table(index="year", columns="group", values="mean")
    out = pd.DataFrame(index=pd.Index(years, name="year"))
    if {"pilots", "comparators"} <= set(tr.columns):
        out["matched"] = (tr["pilots"] - tr["comparators"]).reindex(years)
    else:
        out["matched"] = np.nan
    w = result("sdid_weights")
    w = w[w["outcome"] == outcome].set_index("la_code")["weight"]
    out["sdid"] = np.nan
    if len(w):
        panel = processed("panel")
        p = panel[panel["year"].isin(years)]
        wide = p.pivot_table(index="la_code", columns="year", values=o.measure).reindex(columns=years)
        treated = [c for c in d.treated(o) if c in wide.index and wide.loc[c].notna().all()]
        donors = wide.reindex(w.index)
        if treated and donors.notna().all().all():
            out["sdid"] = (wide.loc[treated].mean() - donors.mul(w, axis=0).sum()).to_numpy(float)
    return out


def pre_fit(outcome: str) -> dict[str, float]:
    """Pre-period fit of the matched comparators and of the synthetic DiD donors for one outcome.

    The fit is the root mean squared gap between the pilots' mean and the
    comparison's mean over the pre-years, around its pre-period average: both
    estimators allow a constant difference in level, so a constant gap is a
    perfect fit. For an outcome whose pilots share one onset this is the
    ``pre_rmse`` the synthetic DiD estimator reports.

    Returns
    -------
    dict
        ``matched_rmse``, ``matched_gap`` (the average gap itself),
        ``sdid_rmse``, ``sdid_gap``, ``n_pre``.
    """
    pre = run_years(outcome)[0]
    g = _gap_series(outcome).reindex(pre)
    res = {"n_pre": len(pre)}
    for col in ("matched", "sdid"):
        v = g[col].to_numpy(float)
        ok = np.isfinite(v)
        if ok.sum() == 0:
            res[f"{col}_rmse"] = res[f"{col}_gap"] = np.nan
            continue
        mean = float(v[ok].mean())
        res[f"{col}_gap"] = mean
        res[f"{col}_rmse"] = float(np.sqrt(np.mean((v[ok] - mean) ** 2)))
    return res


def pre_fit_table() -> pd.DataFrame:
    """Per outcome: the matched comparators' and the synthetic DiD's pre-period fit side by side."""
    est = _estimates()
    rows = []
    for o in _outcomes():
        f = pre_fit(o.id)
        ws = _weights_summary(o.id)
        m = est[(est["outcome"] == o.id) & (est["specification"] == "main") & (est["estimator"] == "twfe")
                & (est["inference"] == PRIMARY)]
        pre = run_years(o.id)[0]
        dg = 2
        rows.append({
            "Outcome": o.label,
            "Pre-years": f"{min(pre)}–{max(pre)}" if len(pre) > 1 else str(pre[0]),
            "Matched comparators": str(int(m["n_comparison"].iloc[0])) if len(m) else "–",
            "Matched: pre-period RMSE": fmt(f["matched_rmse"], dg),
            "Synthetic DiD: donors weighted": str(ws["positive"]) if ws["n"] else "–",
            "Synthetic DiD: effective donors": fmt(ws["effective"], 0),
            "Synthetic DiD: pre-period RMSE": fmt(f["sdid_rmse"], dg),
        })
    return pd.DataFrame(rows)


def gap_plot(outcome: str) -> Figure:
    """Pilots minus comparison, year by year: matched comparators and synthetic DiD donors.

    Each gap is drawn net of its pre-period average (the level difference both
    estimators allow), so in the pre-years the lines show the fit (flat at zero
    is a perfect fit) and after the onset they show how the pilots moved away
    from each comparison (the picture behind the estimate, not the estimate).

    Returns
    -------
    Figure
        Lines with ``gid`` ``matched`` (orange, dashed, open squares) and
        ``sdid`` (turquoise, solid, filled circles); a dashed line before each
        first treated year; the pre-years shaded.
    """
    d = design()
    o = d.outcome(outcome)
    g = _gap_series(outcome)
    pre = run_years(outcome)[0]
    unit = unit_of(o.measure)
    firsts = sorted(set(d.treated(o).values()))
    with F.house_style():
        fig, ax = F._subplots(figsize=(F._MAIN_WIDTH, 3.6))
        ax.axvspan(min(pre) - 0.5, max(pre) + 0.5, color="#EDEDED", zorder=0, linewidth=0)
        ax.axhline(0, color=F.DARK_GREY, linewidth=0.8, zorder=1)
        handles = []
        styles = {"matched": dict(color=F.COMPARATOR_COLOUR, linestyle="--", marker="s", markersize=5,
                                  markerfacecolor="white", markeredgewidth=1.5, linewidth=2,
                                  label="Pilots minus their matched comparators"),
                  "sdid": dict(color=F.SECOND_COLOUR, linestyle="-", marker="o", markersize=5, linewidth=2,
                               label="Pilots minus the synthetic DiD's weighted donors")}
        for col in ("matched", "sdid"):
            v = g[col]
            if v.notna().any():
                base = v.reindex(pre).mean()
                (line,) = ax.plot(g.index.to_numpy(int), (v - base).to_numpy(float), gid=col, zorder=3,
                                  **styles[col])
                handles.append(line)
        for y in firsts:
            ax.axvline(y - 0.5, color=F.DARK_GREY, linestyle=(0, (4, 3)), linewidth=1, zorder=1)
        handles.append(Patch(facecolor="#EDEDED", label="Pre-years (the fit)"))
        handles.append(Line2D([], [], color=F.DARK_GREY, linestyle=(0, (4, 3)), linewidth=1,
                              label="Treatment starts (" + ", ".join(str(y) for y in firsts) + ")"))
        F._year_axis(ax, list(g.index))
        ax.set_ylabel(F._wrap(f"Gap less its pre-period average ({unit})" if unit else
                              "Gap less its pre-period average", 34))
        F._legend_top(fig, handles, ncols=2)
    return fig


def trend_panels(outcomes: Sequence[str], *, ncols: int = 2) -> Figure:
    """Small multiples of the yearly means (pilots, matched comparators, donor pool) for a few outcomes.

    Drawn at the width of a printed page (a few panels per figure, so that the
    text stays legible on A4; the matching chapter shows the outcomes in
    several figures rather than one large grid).

    Parameters
    ----------
    outcomes : sequence of str
        Outcome ids, one panel each, in order.
    ncols : int
        Panels per row.

    Returns
    -------
    Figure
        Each panel as :func:`analysis.book.figures.trend_plot` (its ``gid``
        per group), titled with the outcome's label; dashed lines before the
        first treated years; one legend above.
    """
    trends = result("trends")
    d = design()
    outs = [d.outcome(o) for o in outcomes]
    n = len(outs)
    if n == 0:
        raise ValueError("trend_panels: no outcomes to draw")
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    with F.house_style():
        fig, axes = F._subplots(nrows, ncols, figsize=(F._MAIN_WIDTH, 2.55 * nrows + 0.5), squeeze=False)
        flat = axes.ravel()
        for ax, o in zip(flat, outs):
            years = sorted(set(d.treated(o).values()))
            F.trend_plot(trends[trends["outcome"] == o.id], outcome_label="", first_treated_years=years,
                         ax=ax, show_n=False, onset_labels=["" for _ in years])
            if ax.get_legend() is not None:
                ax.get_legend().remove()
            ax.set_title(_wrap(o.label, 44), loc="left", fontsize=9)
            ax.set_ylabel("")
            ax.set_xlabel("")
            ys = sorted(set(trends.loc[trends["outcome"] == o.id, "year"].astype(int)))
            if ys:
                ax.set_xticks(ys[:: 2 if len(ys) > 7 else 1])
            ax.tick_params(axis="both", labelsize=8)
        for ax in flat[n:]:
            ax.set_visible(False)
        for c in range(ncols):
            col = [k for k in range(n) if k % ncols == c]
            if col:
                flat[col[-1]].set_xlabel(F.YEAR_LABEL, fontsize=8.5)
        handles, labels = flat[0].get_legend_handles_labels()
        F._legend_top(fig, handles, labels, ncols=3)
    return fig


def trend_groups(parts: int = 2) -> dict[str, list[str]]:
    """Outcome ids for the matching chapter's trend figures: the primary outcomes, then the others.

    Parameters
    ----------
    parts : int
        Figures the other outcomes are shared across (as evenly as possible).

    Returns
    -------
    dict
        ``primary`` and ``other_1`` ... ``other_<parts>``, in the design's order;
        every outcome with results appears once (a part may be empty only when
        there are fewer other outcomes than parts).
    """
    outs = _outcomes()
    groups = {"primary": [o.id for o in outs if o.primary]}
    other = [o.id for o in outs if not o.primary]
    size = int(np.ceil(len(other) / parts)) if other else 0
    for k in range(parts):
        groups[f"other_{k + 1}"] = other[k * size:(k + 1) * size]
    return groups


def glue_sdid(outcome: str) -> None:
    """Glue the matching chapter's synthetic DiD facts for ``outcome`` (``sdid_*`` keys)."""
    ws = _weights_summary(outcome)
    f = pre_fit(outcome)
    o = design().outcome(outcome)
    unit = unit_of(o.measure)
    glue_md("sdid_n_donors", f"{ws['positive']:,}")
    glue_md("sdid_equal_weight", f"{fmt(100 / ws['n'], 2)}%" if ws["n"] else "not available")
    glue_md("sdid_largest_weight", f"{fmt(100 * ws['largest'], 2)}%")
    glue_md("sdid_top10_share", f"{fmt(100 * ws['top10'], 0)}%")
    glue_md("sdid_effective", fmt(ws["effective"], 0))
    glue_md("sdid_rmse", f"{fmt(f['sdid_rmse'], 2)} {unit}".strip())
    glue_md("matched_rmse", f"{fmt(f['matched_rmse'], 2)} {unit}".strip())
    better = ("closer than" if f["sdid_rmse"] < f["matched_rmse"] else
              "no closer than" if np.isfinite(f["sdid_rmse"]) else "not comparable with")
    glue_md("sdid_fit_compare", better)
    fits = [pre_fit(x.id) for x in _outcomes()]
    n_better = sum(x["sdid_rmse"] < x["matched_rmse"] for x in fits
                   if np.isfinite(x["sdid_rmse"]) and np.isfinite(x["matched_rmse"]))
    n_both = sum(np.isfinite(x["sdid_rmse"]) and np.isfinite(x["matched_rmse"]) for x in fits)
    glue_md("sdid_n_better", f"{_words(n_better)} of the {_words(n_both)}")


# --------------------------------------------------------------------------- each pilot alone

def pilot_effects(la_code: str | None = None) -> pd.DataFrame:
    """``results/pilot_effects.csv`` (one pilot's rows when ``la_code`` is given), placebos parsed.

    ``placebo`` holds each row's donors' placebo estimates as an array.
    """
    pe = result("pilot_effects")
    if la_code is not None:
        pe = pe[pe["la_code"] == la_code]
    pe = pe.copy()
    pe["placebo"] = [np.array([float(x) for x in str(s).split(";") if x not in ("", "nan")])
                     for s in pe["placebo_estimates"].fillna("")]
    return pe


def _primary_outcomes() -> list:
    return [o for o in design().outcomes if o.primary]


def _pooled_width(outcome: str) -> float:
    ev = _evidence()
    if outcome not in ev.index:
        return np.nan
    return float(ev.loc[outcome, "ci_high"] - ev.loc[outcome, "ci_low"])


def _absent_reason(la_code: str, o) -> str:
    d = design()
    if la_code not in d.treated(o):
        onset = d.onset_for(o)
        return f"not treated under this outcome's {ONSET_WORDS.get(onset, onset)} onset"
    return "no own estimate: a year of the measure is missing, and the estimator needs every year"


def pilot_estimates_table(la_code: str) -> pd.DataFrame:
    """A pilot's own synthetic DiD estimate for each primary outcome, with how noisy it is.

    Returns
    -------
    DataFrame
        ``Outcome``, ``First treated year``, ``Estimate``, ``95% placebo
        interval``, ``Interval width (pooled)`` (this pilot's width, and the
        width of the pooled estimate's wild bootstrap interval in brackets),
        ``Rank p-value`` (share of the donors' placebo estimates at least as far
        from zero), ``Pre-period RMSE``; a row without an estimate says why.
    """
    pe = pilot_effects(la_code).set_index("outcome")
    rows = []
    for o in _primary_outcomes():
        if o.id in pe.index:
            r = pe.loc[o.id]
            dg = _digits([r["estimate"], r["ci_low"], r["ci_high"]])
            rows.append({"Outcome": o.label, "First treated year": str(int(r["onset"])),
                         "Estimate": _num(r["estimate"], dg, True),
                         "95% placebo interval": _interval(r["ci_low"], r["ci_high"], dg),
                         "Interval width (pooled)": f"{fmt(r['ci_high'] - r['ci_low'], dg)} "
                                                    f"({fmt(_pooled_width(o.id), dg)})",
                         "Rank p-value": fmt_p(r["p_value"]).replace("p = ", "").replace("p ", ""),
                         "Pre-period RMSE": fmt(r["pre_rmse"], 2)})
        else:
            first = design().treated(o).get(la_code)
            rows.append({"Outcome": o.label, "First treated year": str(first) if first else "–",
                         "Estimate": _absent_reason(la_code, o), "95% placebo interval": "",
                         "Interval width (pooled)": "", "Rank p-value": "", "Pre-period RMSE": ""})
    return pd.DataFrame(rows)


def placebo_plot(la_code: str, *, ncols: int = 2) -> Figure:
    """The donors' placebo estimates for each primary outcome, with the pilot's own estimate marked.

    Parameters
    ----------
    la_code : str
        The pilot.
    ncols : int
        Panels per row (at most).

    Returns
    -------
    Figure
        One panel per primary outcome for which the pilot has an estimate
        (:func:`pilot_estimates_table` says why the others have none): a
        histogram of the donors' placebo estimates (grey), the pilot's estimate
        as a dark-blue line (``gid`` ``estimate:<outcome>``), zero as a thin
        dark line; the panel title gives the rank p-value. Without any
        estimate, one panel saying so.
    """
    pe = pilot_effects(la_code).set_index("outcome")
    outs = [(o.id, o.label, unit_of(o.measure)) for o in _primary_outcomes() if o.id in pe.index]
    rows = {oid: (pe.loc[oid, "placebo"], float(pe.loc[oid, "estimate"]), pe.loc[oid, "p_value"])
            for oid, _, _ in outs}
    return _placebo_figure(rows, outs, _pilot_name(la_code), ncols=ncols)


@memoised
def _placebo_figure(rows: dict, outs: list[tuple[str, str, str]], name: str, *, ncols: int = 2) -> Figure:
    """:func:`placebo_plot` drawn from its data (what the figure store keys on).

    ``rows``: ``{outcome: (placebo estimates, estimate, p-value)}``; ``outs``:
    ``[(outcome, label, unit)]``; ``name``: the pilot's name.
    """
    n = max(len(outs), 1)
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    with F.house_style():
        fig, axes = F._subplots(nrows, ncols, figsize=(F._MAIN_WIDTH, 2.15 * nrows + 0.7), squeeze=False)
        if not outs:
            ax = axes[0][0]
            ax.text(0.5, 0.5, f"{name} has no estimate of its own for the primary outcomes",
                    transform=ax.transAxes, ha="center", va="center", color=F.DARK_GREY)
            ax.set_axis_off()
        for k, (oid, label, unit) in enumerate(outs):
            ax = axes[k // ncols][k % ncols]
            plac, est, p_value = rows[oid]
            lo = float(np.nanmin(np.append(plac, est)))
            hi = float(np.nanmax(np.append(plac, est)))
            pad = 0.05 * (hi - lo or 1.0)
            ax.hist(plac, bins=np.linspace(lo - pad, hi + pad, 26), color=F.CONTEXT_GREY, edgecolor="white",
                    linewidth=0.5, zorder=2)
            ax.axvline(0, color=F.DARK_GREY, linewidth=0.8, zorder=3)
            ax.axvline(est, color=F.PILOT_COLOUR, linewidth=2.4, zorder=4, gid=f"estimate:{oid}")
            p_txt = fmt_p(p_value).replace("p = ", "").replace("p ", "")
            ax.set_title(f"{_wrap(_short_outcome(label), 40)}\nrank p-value {p_txt}", loc="left", fontsize=9)
            ax.set_xlabel(f"Estimate ({unit})" if unit else "Estimate", fontsize=8.5)
            ax.set_ylabel("Donors", fontsize=8.5)
            ax.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=4))
            ax.tick_params(labelsize=8)
        for k in range(len(outs), nrows * ncols):
            if outs:
                axes[k // ncols][k % ncols].set_visible(False)
        if outs:
            handles = [Line2D([], [], color=F.PILOT_COLOUR, linewidth=2.4, label=f"{name}: its own estimate"),
                       Patch(facecolor=F.CONTEXT_GREY,
                             label="Donors' placebo estimates (each donor treated as if it were a pilot)")]
            F._legend_top(fig, handles, ncols=1)
    return fig


def pilot_noise_markdown(la_code: str) -> str:
    """What one pilot's own estimates can and cannot say, with how noisy they are (Markdown)."""
    pe = pilot_effects(la_code).set_index("outcome")
    name = _pilot_name(la_code)
    outs = [o for o in _primary_outcomes() if o.id in pe.index]
    if not outs:
        return (f"{name} has no estimate of its own for the primary outcomes: it is not in the "
                "synthetic difference-in-differences of any of them.")
    ratios, parts = [], []
    for o in outs:
        r = pe.loc[o.id]
        unit = unit_of(o.measure)
        dg = _digits([r["estimate"], r["ci_low"], r["ci_high"]])
        width = float(r["ci_high"] - r["ci_low"])
        pooled = _pooled_width(o.id)
        if np.isfinite(pooled) and pooled > 0:
            ratios.append(width / pooled)
        n_as_far = int(round(float(r["p_value"]) * (1 + int(r["n_placebo"])))) - 1
        parts.append(f"{prose_label(o.label)}: {_num(r['estimate'], dg, True)} {unit} "
                     f"(interval {fmt(width, dg)} {unit} wide; {_none_of(max(n_as_far, 0), int(r['n_placebo']))} "
                     f"donors' placebo estimates are as far from zero; "
                     f"pre-period RMSE {fmt(r['pre_rmse'], 2)} {unit})".replace(" )", ")"))
    text = (f"**{name} on its own.** A synthetic difference-in-differences of {name} alone, against "
            f"every eligible donor, gives one estimate per primary outcome. One authority's estimate "
            f"is noisy: a single authority's year-to-year swings are not averaged out, so ")
    if ratios:
        lo, hi = min(ratios), max(ratios)
        times = (f"about {fmt(lo, 0)} times" if round(lo) == round(hi)
                 else f"between {fmt(lo, 0)} and {fmt(hi, 0)} times")
        text += (f"{name}'s intervals are {times} as wide as those of the pooled estimates in the "
                 "findings chapters. ")
    else:
        text += "its intervals are wide. "
    text += ("The rank p-value compares its estimate with the donors' placebo estimates (each donor "
             "treated as if it were a pilot); the pre-period RMSE says how closely the weighted donors "
             "followed it before the programme, in the measure's unit (the larger it is, the less an "
             "estimate of that size can be told apart from a poor fit). " + "; ".join(
                 p[0].upper() + p[1:] if i == 0 else p for i, p in enumerate(parts)) + ". "
             "Read these as a description of one authority, not as evidence about Signs of Safety: the "
             "pooled estimates are the study's answer.")
    return text
