"""Figures of the report: one function per figure type, each returning a Figure.

House style: the UK Government Analysis Function's matplotlib style and
colour-blind-safe palettes from ``afcharts``. Captions are set by the chapters;
figures carry axis labels and legends, facet labels on small multiples, and an
active title (the chart's main message, generated from the estimates) only where
the caller passes one (:func:`trend_plot`).

Colours carry the same meaning throughout the book:

* pilots (treated LAs): :data:`PILOT_COLOUR`, dark blue, solid line, filled
  circles;
* matched comparators: :data:`COMPARATOR_COLOUR`, orange, dashed line, open
  squares;
* the donor pool / other LAs: light grey, dotted, no markers.

Dark blue and orange are the Analysis Function "duo" palette; they also differ
in lightness, and the line styles and markers differ too, so every figure
reads when printed in greyscale.
"""
from __future__ import annotations

import json
import textwrap
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from afcharts.af_colours import get_af_colours
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, RegularPolygon

from analysis.book.figure_memo import memoised
from analysis.ingest.geography import _lookups, la_register

#: Analysis Function categorical palette (colour-blind safe, in order of use).
CATEGORICAL = get_af_colours("categorical")
#: Sequential palette, dark to light.
SEQUENTIAL = get_af_colours("sequential")
_DUO = get_af_colours("duo")
_FOCUS = get_af_colours("focus")

#: Pilots (treated LAs) in every figure: Analysis Function dark blue.
PILOT_COLOUR: str = _DUO[0]
#: Matched comparators in every figure: Analysis Function orange.
COMPARATOR_COLOUR: str = _DUO[1]
#: Context (donor pool, other LAs, non-highlighted estimates): focus grey.
CONTEXT_GREY: str = _FOCUS[1]
#: Dark grey for reference lines and annotations.
DARK_GREY: str = CATEGORICAL[4]
#: Turquoise: the second colour of a figure without pilots and comparators.
SECOND_COLOUR: str = CATEGORICAL[1]

#: Line style of each group of :func:`trend_plot` (and :func:`pilot_profile_plot`).
GROUP_STYLES: dict[str, dict] = {
    "pilots": dict(color=PILOT_COLOUR, linestyle="-", marker="o", markersize=5,
                   markerfacecolor=PILOT_COLOUR, linewidth=2, zorder=4),
    "comparators": dict(color=COMPARATOR_COLOUR, linestyle="--", marker="s", markersize=5,
                        markerfacecolor="white", markeredgewidth=1.5, linewidth=2, zorder=3),
    "donor pool": dict(color=CONTEXT_GREY, linestyle=":", marker=None, linewidth=2, zorder=2),
}
#: Legend labels of the counterfactual and the estimate of :func:`trend_plot`.
COUNTERFACTUAL_LABEL = "Pilots had they changed as their comparators did"
ESTIMATE_BAND_LABEL = "That path plus the estimated effect (95% interval)"
#: Default legend label of each group of :func:`trend_plot`.
GROUP_LABELS: dict[str, str] = {"pilots": "Pilot LAs", "comparators": "Matched comparators",
                                "donor pool": "All eligible LAs"}

#: Fill, hatch and hatch colour of each role of :func:`hex_map`, in legend
#: order. Lightness and hatching differ as well as hue, so the roles stay
#: apart in greyscale: pilots dark, comparators mid-tone and solid, similar
#: models mid-tone cross-hatched, excluded LAs light grey with dark hatching.
ROLE_STYLES: dict[str, dict] = {
    "pilot": dict(facecolor=PILOT_COLOUR, hatch=None, hatchcolor="white", label="Pilot LA"),
    "comparator": dict(facecolor=COMPARATOR_COLOUR, hatch=None, hatchcolor="white",
                       label="Matched comparator"),
    "similar_model": dict(facecolor=CATEGORICAL[5], hatch="xxx", hatchcolor="white",
                          label="Similar practice model (in the donor pool, not matched)"),
    "other_sos": dict(facecolor=CONTEXT_GREY, hatch="////", hatchcolor=DARK_GREY,
                      label="Excluded: other Signs of Safety programme"),
    "boundary_changed": dict(facecolor=CONTEXT_GREY, hatch="....", hatchcolor=DARK_GREY,
                             label="Excluded: boundary changed"),
    "excluded": dict(facecolor=CONTEXT_GREY, hatch=None, hatchcolor=DARK_GREY,
                     label="Excluded: other reason"),
    "other": dict(facecolor="#EDEDED", hatch=None, hatchcolor="white",
                  label="Other LA (donor pool, not matched)"),
}
#: Priority of roles when one hex stands for several register LAs (highest first).
_ROLE_PRIORITY = list(ROLE_STYLES)

#: Hexes of the 2020 hexjson whose area later changed, and the register LAs
#: (predecessors or successors) drawn in them when the hex's own code has no
#: role. Source: ``boundary_note`` of ``data/local_authorities.csv``.
HEX_AREA_LINKS: dict[str, list[str]] = {
    "E10000006": ["E06000063", "E06000064"],               # Cumbria -> Cumberland, W&F (2023)
    "E10000021": ["E06000061", "E06000062"],               # Northamptonshire -> N, W Northants (2021)
    "E06000058": ["E06000028", "E06000029", "E10000009"],  # BCP <- Bournemouth, Poole, Dorset CC (2019)
    "E06000059": ["E10000009"],                            # Dorset UA <- Dorset county (2019)
}

YEAR_LABEL = "Reporting year (ending 31 March)"
_MAIN_WIDTH = 7.0   # inches: fits the book's text column and an A4 PDF page


@contextmanager
def house_style():
    """Apply the Analysis Function style inside a ``with`` block."""
    with plt.style.context("afcharts.afcharts"):
        with plt.rc_context({"figure.dpi": 110, "savefig.dpi": 150, "font.size": 10,
                             "axes.titlesize": 10, "axes.labelsize": 10,
                             "xtick.labelsize": 9, "ytick.labelsize": 9,
                             "legend.fontsize": 9, "svg.fonttype": "none",
                             "savefig.bbox": "tight"}):
            yield


def _enable_notebook_display() -> None:
    """Let a notebook show a returned Figure as a PNG.

    The figures here are not tracked by pyplot (see :func:`_new_figure`), so
    the inline backend never registers IPython's PNG formatter on its own;
    without it a chapter cell ending in a figure prints ``<Figure size ...>``.
    Does nothing outside an IPython kernel.
    """
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython ships with the book's stack
        return
    ip = get_ipython()
    if ip is None or not hasattr(ip, "kernel"):
        return
    from IPython.core.pylabtools import select_figure_formats

    select_figure_formats(ip, {"png"}, dpi=150)


_enable_notebook_display()


def _new_figure(figsize: tuple[float, float]) -> Figure:
    """A Figure with an Agg canvas that pyplot does not track.

    Chapters make dozens of figures; pyplot-managed ones would stay open
    (and warn after twenty) and could be shown twice in a notebook.
    """
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def _subplots(nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float], **kw):
    """``plt.subplots`` on an untracked :func:`_new_figure`."""
    fig = _new_figure(figsize)
    return fig, fig.subplots(nrows, ncols, **kw)


def _require(df: pd.DataFrame, cols: Sequence[str], what: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(f"{what}: input lacks column(s) {', '.join(missing)} "
                         f"(has {', '.join(map(str, df.columns))})")


def _wrap(text: str, width: int) -> str:
    """Wrap ``text`` into lines of at most ``width`` characters, balanced in length."""
    text = str(text)
    if len(text) <= width:
        return text
    n_lines = int(np.ceil(len(text) / width))
    target = int(np.ceil(len(text) / n_lines))
    for w in range(target, width + 1):
        lines = textwrap.wrap(text, w, break_on_hyphens=False)
        if len(lines) <= n_lines:
            return "\n".join(lines)
    return "\n".join(textwrap.wrap(text, width, break_on_hyphens=False))


def _legend_top(fig: Figure, handles, labels=None, *, ncols: int = 3, title: str | None = None) -> None:
    """Figure legend in a band above the axes, left-aligned, then a tight layout below it.

    Falls back to fewer columns (more rows) when the legend would be wider
    than the figure. With ``title``, an active title (the chart's main message,
    bold, left-aligned) goes above the legend, wrapped to the figure's width.
    """
    labels = [h.get_label() for h in handles] if labels is None else list(labels)
    ncols = max(1, min(ncols, len(handles)))
    top = 1.0
    if title:
        text = _wrap(title, int(fig.get_figwidth() * 9.5))
        fig.text(0.0, 1.0, text, ha="left", va="top", fontsize=11, fontweight="bold",
                 gid="title")
        top = 1.0 - (0.22 * (text.count("\n") + 1) + 0.1) / fig.get_figheight()
    while True:
        leg = fig.legend(handles, labels, loc="upper left", bbox_to_anchor=(0.0, top),
                         ncols=ncols, borderaxespad=0.3, handlelength=2.4, columnspacing=1.2)
        width = leg.get_window_extent(fig.canvas.get_renderer()).width / fig.dpi
        if width <= fig.get_figwidth() - 0.05 or ncols == 1:
            break
        leg.remove()
        ncols -= 1
    rows = int(np.ceil(len(handles) / ncols))
    band = (0.27 * rows + 0.12) / fig.get_figheight() + (1.0 - top)
    fig.tight_layout(rect=(0, 0, 1, 1 - band))


def _year_axis(ax, years: Sequence[int]) -> None:
    years = sorted({int(y) for y in years})
    if years:
        step = 1 if len(years) <= 14 else 2
        ax.set_xticks(years[::step])
        ax.set_xlim(years[0] - 0.5, years[-1] + 0.5)
    ax.set_xlabel(YEAR_LABEL)


# ---------------------------------------------------------------- coverage

@memoised
def coverage_heatmap(coverage: pd.DataFrame, labels: dict[str, str] | None = None,
                     measures: list[str] | None = None) -> Figure:
    """Heatmap of the share of LAs with a value, measure by reporting year.

    Parameters
    ----------
    coverage
        ``coverage.csv`` of the panel: measure, year, las_expected, las_with_value.
    labels
        Optional display label per measure.
    measures
        Measures to show, in order (default: all in ``coverage``).
    """
    cov = coverage.copy()
    cov["share"] = cov["las_with_value"] / cov["las_expected"].where(cov["las_expected"] > 0)
    grid = cov.pivot(index="measure", columns="year", values="share")
    if measures is not None:
        grid = grid.reindex([m for m in measures if m in grid.index])
    labels = labels or {}
    cmap = LinearSegmentedColormap.from_list("af_seq", ["#FFFFFF"] + SEQUENTIAL[::-1][:-1] + [SEQUENTIAL[0]])
    # Page width, long labels wrapped, a row height that keeps up to ~18 measures on an A4 page.
    ylabels = [_wrap(labels.get(m, m), 44) for m in grid.index]
    lines = sum(lab.count("\n") + 1 for lab in ylabels)
    with house_style():
        fig, ax = _subplots(figsize=(_MAIN_WIDTH, 0.2 * lines + 0.12 * len(grid) + 1.3))
        im = ax.imshow(grid.to_numpy(dtype=float), aspect="auto", cmap=cmap, vmin=0, vmax=1,
                       interpolation="nearest")
        ax.set_xticks(range(grid.shape[1]), [str(y) for y in grid.columns], rotation=90)
        ax.set_yticks(range(grid.shape[0]), ylabels)
        ax.set_xlabel("Reporting year (ending 31 March)")
        ax.grid(False)
        cbar = fig.colorbar(im, ax=ax, fraction=0.03, pad=0.01)
        cbar.set_label("Share of LAs with a value")
        fig.tight_layout()
    return fig


# ---------------------------------------------------------------- love plot

def balance_variable_label(variable: str, kind: str | None = None,
                           measure_labels: Mapping[str, str] | None = None) -> str:
    """Readable label of a matching variable of :func:`analysis.methods.matching.balance_table`.

    ``<outcome>_level`` -> "Outcome: pre-period mean", ``<outcome>_trend`` ->
    "Outcome: pre-period trend (per year)", ``log_<x>`` -> "<x> (log)",
    ``<x>_missing`` -> "<x> missing", ``region_<code>`` -> "Region: <name>";
    context names are looked up in ``measure_labels`` (e.g. the ``label``
    column of ``measures.csv``), else shown as they are.
    """
    measure_labels = dict(measure_labels or {})
    defaults = {"pop_0_17": "Children aged 0-17", "idaci_score": "IDACI score",
                "people_per_sqkm": "Population density", "ofsted_overall": "Ofsted judgement",
                "imd_score": "IMD score"}

    def name(x: str) -> str:
        return measure_labels.get(x, defaults.get(x, x))

    if kind == "outcome level" or (kind is None and variable.endswith("_level")):
        return "Outcome: pre-period mean"
    if kind == "outcome trend" or (kind is None and variable.endswith("_trend")):
        return "Outcome: pre-period trend (per year)"
    if variable.startswith("region_"):
        code = variable.removeprefix("region_")
        try:
            reg = la_register()
            names = dict(zip(reg["region_code"], reg["region_name"]))
        except Exception:  # pragma: no cover - register always ships with the package
            names = {}
        return f"Region: {names.get(code, code)}"
    if variable.endswith("_missing"):
        return f"{name(variable.removesuffix('_missing'))}: missing"
    if variable.startswith("log_"):
        return f"{name(variable.removeprefix('log_'))} (log)"
    return name(variable)


def love_plot(balance: pd.DataFrame, labels: Mapping[str, str] | None = None,
              threshold: float = 0.1, *, measure_labels: Mapping[str, str] | None = None,
              xlabel: str | None = None, sort: bool = False) -> Figure:
    """Love plot: absolute standardised mean differences before and after matching.

    Parameters
    ----------
    balance : DataFrame
        Either the wide output of :func:`analysis.methods.matching.balance_table`
        (columns ``variable``, ``smd_before``, ``smd_after``; ``kind``
        optional) or its long form from
        :func:`analysis.methods.matching.love_plot_data` (``variable``, ``stage``
        "before"/"after", ``smd`` or ``abs_smd``; ``kind`` optional). Binary
        variables (region, missing indicators) carry the raw difference in
        proportions, as cobalt shows them.
    labels : mapping, optional
        Display label per variable; otherwise :func:`balance_variable_label`.
    threshold : float
        Position of the dashed balance threshold (0.1 strict, 0.25 lenient).
    measure_labels : mapping, optional
        Display names of context measures, passed to :func:`balance_variable_label`.
    xlabel : str, optional
        Axis label (default "Absolute standardised mean difference", with a
        note on binary variables when the input's ``type`` column has any).
    sort : bool
        Order variables by their SMD before matching (largest at top) rather
        than in the order given.

    Returns
    -------
    Figure
        One row per variable; open dark-grey circles before matching, filled
        turquoise diamonds after, a grey segment joining them.
    """
    if "stage" in balance.columns:
        _require(balance, ["variable", "stage"], "love_plot")
        val = balance["abs_smd"] if "abs_smd" in balance.columns else balance["smd"].abs()
        wide = (balance.assign(_v=val).pivot_table(index="variable", columns="stage", values="_v",
                                                   sort=False, dropna=False)
                .reindex(columns=["before", "after"]))
        order = list(dict.fromkeys(balance["variable"]))
        wide = wide.reindex(order)
        kinds = balance.drop_duplicates("variable").set_index("variable")["kind"] \
            if "kind" in balance.columns else pd.Series(dtype=str)
    else:
        _require(balance, ["variable", "smd_before", "smd_after"], "love_plot")
        wide = pd.DataFrame({"before": balance["smd_before"].abs().to_numpy(),
                             "after": balance["smd_after"].abs().to_numpy()},
                            index=balance["variable"].to_numpy())
        kinds = balance.set_index("variable")["kind"] if "kind" in balance.columns else pd.Series(dtype=str)
    if sort:
        wide = wide.sort_values("before", ascending=True, na_position="first")
    else:
        wide = wide.iloc[::-1]          # first variable at the top
    if xlabel is None:
        xlabel = "Absolute standardised mean difference"
        if "type" in balance.columns and balance["type"].eq("binary").any():
            xlabel += "\n(binary variables: absolute difference in proportions)"
    labels = dict(labels or {})
    ylabels = [labels.get(v, balance_variable_label(v, kinds.get(v), measure_labels))
               for v in wide.index]
    n = len(wide)
    y = np.arange(n)
    with house_style():
        fig, ax = _subplots(figsize=(_MAIN_WIDTH, 0.28 * n + 1.3))
        for yi, (b, a) in zip(y, wide[["before", "after"]].to_numpy()):
            if np.isfinite(b) and np.isfinite(a):
                ax.plot([b, a], [yi, yi], color=CONTEXT_GREY, linewidth=1, zorder=1)
        ax.plot(wide["before"].to_numpy(), y, linestyle="none", marker="o", markersize=6,
                markerfacecolor="white", markeredgecolor=DARK_GREY, markeredgewidth=1.3,
                label="Before matching", zorder=3, gid="before")
        ax.plot(wide["after"].to_numpy(), y, linestyle="none", marker="D", markersize=5.5,
                color=SECOND_COLOUR, markeredgecolor=SECOND_COLOUR,
                label="After matching", zorder=4, gid="after")
        ax.axvline(threshold, color=DARK_GREY, linestyle="--", linewidth=1, zorder=2,
                   label=f"Threshold ({threshold:g})", gid="threshold")
        ax.set_yticks(y, ylabels)
        ax.set_ylim(-0.7, n - 0.3)
        finite = wide.to_numpy(dtype=float)
        finite = finite[np.isfinite(finite)]
        xmax = max([threshold, *(finite.tolist() or [0.0])])
        ax.set_xlim(0, xmax * 1.08 + 0.02)
        ax.set_xlabel(xlabel)
        ax.grid(axis="y", visible=False)
        ax.grid(axis="x", visible=True)
        ax.spines["left"].set_visible(False)
        ax.tick_params(axis="y", length=0)
        handles, labs = ax.get_legend_handles_labels()
        _legend_top(fig, handles, labs, ncols=3)
    return fig


# ---------------------------------------------------------------- trends

def trend_plot(trends: pd.DataFrame, *, outcome_label: str, first_treated_years: Sequence[int],
               group_labels: Mapping[str, str] | None = None, show_pool: bool = True,
               onset_labels: Sequence[str] | None = None, show_n: bool = True,
               counterfactual: pd.DataFrame | None = None, estimate: Mapping | None = None,
               title: str | None = None, ax=None) -> Figure:
    """Mean outcome by year for pilots, matched comparators and (faint) the donor pool.

    Parameters
    ----------
    trends : DataFrame
        Output of :func:`analysis.methods.matching.pre_trend_table` over all years:
        ``year``, ``group`` ("pilots", "comparators", optionally "donor
        pool"), ``mean``; ``n_las`` optional (shown in the legend as the
        largest number of LAs in any year).
    outcome_label : str
        y-axis label, with its unit (e.g. "Re-referrals within 12 months (%)").
    first_treated_years : sequence of int
        First treated reporting year(s); a dashed vertical line is drawn
        between the last untreated year and each of them (at ``year - 0.5``).
    group_labels : mapping, optional
        Legend label per group (defaults :data:`GROUP_LABELS`).
    show_pool : bool
        Draw the donor pool line when present.
    onset_labels : sequence of str, optional
        Text beside each vertical line (default "Treatment starts (<year>)";
        empty strings for none).
    show_n : bool
        Add "(n LAs)" to the legend labels when ``n_las`` is given.
    counterfactual : DataFrame, optional
        ``year``, ``mean``: the pilots' path had they changed as their
        comparators did (the difference-in-differences counterfactual: the
        comparators' change from the pre-period added to the pilots'
        pre-period level). Drawn as a dark-blue dotted line without markers.
    estimate : mapping, optional
        ``estimate``, ``ci_low``, ``ci_high`` (the headline estimate and its
        interval) and ``text`` (its label): the counterfactual plus the
        interval is shaded over the counterfactual's years from the first
        treated year, and ``text`` is written in the plot. Needs
        ``counterfactual``.
    title : str, optional
        An active title (the chart's main message), bold above the legend.
    ax : Axes, optional
        Draw into this Axes (for composite figures); its figure is returned.

    Returns
    -------
    Figure
    """
    _require(trends, ["year", "group", "mean"], "trend_plot")
    if estimate is not None and counterfactual is None:
        raise ValueError("trend_plot: an estimate is drawn around the counterfactual; give both")
    labels = {**GROUP_LABELS, **dict(group_labels or {})}
    groups = [g for g in GROUP_STYLES if g in set(trends["group"])
              and (show_pool or g != "donor pool")]
    unknown = sorted(set(trends["group"]) - set(GROUP_STYLES))
    if unknown:
        raise ValueError(f"trend_plot: unknown group(s) {unknown}; expected {list(GROUP_STYLES)}")
    with house_style():
        own_figure = ax is None
        if own_figure:
            fig, ax = _subplots(figsize=(_MAIN_WIDTH, 4.0))
        else:
            fig = ax.figure
        for g in groups[::-1]:     # pilots drawn last, on top
            d = trends.loc[trends["group"] == g].sort_values("year")
            lab = labels.get(g, g)
            if show_n and "n_las" in d.columns and d["n_las"].notna().any():
                lab = f"{lab} ({int(d['n_las'].max())})"
            ax.plot(d["year"].to_numpy(int), d["mean"].to_numpy(float), label=lab, gid=g,
                    **GROUP_STYLES[g])
        extra = []
        if counterfactual is not None:
            _require(counterfactual, ["year", "mean"], "trend_plot(counterfactual=...)")
            cf = counterfactual.sort_values("year")
            (line,) = ax.plot(cf["year"].to_numpy(int), cf["mean"].to_numpy(float), color=PILOT_COLOUR,
                              linestyle=(0, (1, 1.5)), linewidth=2, marker=None, zorder=3,
                              gid="counterfactual", label=COUNTERFACTUAL_LABEL)
            extra.append(line)
            if estimate is not None:
                start = min(int(y) for y in first_treated_years) if len(first_treated_years) else None
                post = cf if start is None else cf[cf["year"] >= start]
                x = post["year"].to_numpy(float)
                base = post["mean"].to_numpy(float)
                band = ax.fill_between(x, base + float(estimate["ci_low"]), base + float(estimate["ci_high"]),
                                       color=PILOT_COLOUR, alpha=0.15, linewidth=0, zorder=1,
                                       gid="estimate", label=ESTIMATE_BAND_LABEL)
                extra.append(band)
                if estimate.get("text"):
                    ax.text(0.99, 0.03, _wrap(estimate["text"], 48), transform=ax.transAxes, ha="right",
                            va="bottom", fontsize=8.5, color=PILOT_COLOUR, zorder=6, gid="estimate_text",
                            bbox=dict(facecolor="white", edgecolor=CONTEXT_GREY, pad=3.0, alpha=0.9))
        _onset_lines(ax, first_treated_years, onset_labels)
        _year_axis(ax, trends["year"])
        ax.set_ylabel(_wrap(outcome_label, 42))
        handles, labs = ax.get_legend_handles_labels()
        groups_h = [(h, lab) for h, lab in zip(handles, labs) if h not in extra][::-1]
        handles = [h for h, _ in groups_h] + extra
        labs = [lab for _, lab in groups_h] + [h.get_label() for h in extra]
        if own_figure:
            _legend_top(fig, handles, labs, ncols=2 if extra else 3, title=title)
        else:
            ax.legend(handles, labs, loc="best", fontsize=8)
            if title:
                ax.set_title(title, loc="left", fontweight="bold")
    return fig


def _onset_lines(ax, years: Sequence[int], labels: Sequence[str] | None) -> None:
    years = sorted({int(y) for y in years})
    if labels is None:
        labels = [f"Treatment starts ({y})" for y in years]
    for i, (y, lab) in enumerate(zip(years, labels)):
        ax.axvline(y - 0.5, color=DARK_GREY, linestyle=(0, (4, 3)), linewidth=1, zorder=1,
                   gid="onset")
        if lab:
            ax.text(y - 0.5, 0.98 - 0.08 * i, f" {lab}", transform=ax.get_xaxis_transform(),
                    ha="left", va="top", fontsize=8, color=DARK_GREY, zorder=6,
                    bbox=dict(facecolor="white", edgecolor="none", pad=1.0, alpha=0.85))


# ---------------------------------------------------------------- event study

@memoised
def event_study_plot(coefs: pd.DataFrame, *,
                     ylabel: str = "Estimated difference from the year before treatment",
                     reference: int = -1, estimate_col: str = "estimate",
                     xlabel: str = "Years since the first treated year (0 = first treated year)",
                     show_n: bool = True, interval_label: str | None = None, ax=None) -> Figure:
    """Event-study coefficients with 95% confidence intervals by event time.

    Parameters
    ----------
    coefs : DataFrame
        Tidy coefficients for one outcome and specification: ``event_time``
        (int), ``estimate`` (or ``estimate_col``, e.g. ``att`` for the
        staggered estimator's ``event_time`` table), ``ci_low``, ``ci_high``;
        optional ``n_obs`` (treated LAs observed at that event time) and
        ``binned`` (end points that pool all earlier / later event times,
        labelled "≤e" / "≥e"). This is
        :attr:`analysis.methods.estimation.EventStudyResult.coefficients` and the
        rows of ``results/event_study.csv`` for one outcome and
        specification. The reference period has estimate 0 and no interval;
        it is drawn (an open square at 0) even if absent from ``coefs``.
    ylabel : str
        y-axis label: name the outcome and its unit, e.g. "Difference in
        re-referrals (percentage points)".
    reference : int
        The omitted event time (default -1).
    estimate_col : str
        Column holding the point estimates.
    xlabel : str
        x-axis label.
    show_n : bool
        When ``n_obs`` is given and varies, print each event time's number of
        treated LAs under its tick label (few LAs = fragile estimate).
    interval_label : str, optional
        Legend entry naming the intervals' method (e.g. "95% interval: wild
        cluster bootstrap"), drawn as an interval bar.
    ax : Axes, optional
        Draw into this Axes; its figure is returned (no figure legend).

    Returns
    -------
    Figure
        Leads (before treatment) as open circles, lags (from the first
        treated year) as filled circles, both dark blue with 95% interval
        bars; the reference year as an open grey square at 0; a horizontal
        line at zero and a dashed vertical line between -1 and 0.
    """
    _require(coefs, ["event_time", estimate_col, "ci_low", "ci_high"], "event_study_plot")
    c = coefs.sort_values("event_time").reset_index(drop=True)
    is_ref = (c["event_time"] == reference) & c["ci_low"].isna()
    est = c.loc[~is_ref]
    pre, post = est.loc[est["event_time"] < 0], est.loc[est["event_time"] >= 0]
    with house_style():
        own_figure = ax is None
        if own_figure:
            fig, ax = _subplots(figsize=(_MAIN_WIDTH, 3.9))
        else:
            fig = ax.figure
        ax.axhline(0, color=DARK_GREY, linewidth=1, zorder=1, gid="zero")
        ax.axvline(-0.5, color=DARK_GREY, linestyle=(0, (4, 3)), linewidth=1, zorder=1, gid="onset")
        handles = {}
        for part, filled, lab, gid in [(pre, False, "Before treatment", "leads"),
                                       (post, True, "After treatment starts", "lags")]:
            if part.empty:
                continue
            x = part["event_time"].to_numpy(float)
            yv = part[estimate_col].to_numpy(float)
            yerr = np.vstack([yv - part["ci_low"].to_numpy(float), part["ci_high"].to_numpy(float) - yv])
            h = ax.errorbar(x, yv, yerr=yerr, fmt="o", color=PILOT_COLOUR, ecolor=PILOT_COLOUR,
                            markersize=6, markerfacecolor=PILOT_COLOUR if filled else "white",
                            markeredgewidth=1.5, elinewidth=1.5, capsize=3, label=lab, zorder=3,
                            gid=gid)
            handles[gid] = h
        (handles["reference"],) = ax.plot(
            [reference], [0.0], linestyle="none", marker="s", markersize=6, markerfacecolor="white",
            markeredgecolor=DARK_GREY, markeredgewidth=1.5, zorder=4,
            label=f"Reference year ({reference}) = 0".replace("-", "−"), gid="reference")
        times = sorted(set(c["event_time"].astype(int)) | {reference})
        ticklabels = [str(t) for t in times]
        if "binned" in c.columns:
            binned = set(c.loc[c["binned"].fillna(False).astype(bool), "event_time"].astype(int))
            ticklabels = [("≤" if t < 0 else "≥") + str(t) if t in binned else str(t) for t in times]
        ticklabels = [t.replace("-", "−") for t in ticklabels]
        if show_n and "n_obs" in c.columns and c["n_obs"].nunique() > 1:
            n_of = dict(zip(c["event_time"].astype(int), c["n_obs"]))
            ticklabels = [f"{lab}\n({int(n_of[t])})" if t in n_of and pd.notna(n_of[t]) else lab
                          for lab, t in zip(ticklabels, times)]
            xlabel = f"{xlabel}\n(in brackets: number of pilot LAs observed)"
        ax.set_xticks(times, ticklabels)
        ax.set_xlim(times[0] - 0.6, times[-1] + 0.6)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(_wrap(ylabel, 42))
        ax.text(-0.5, 0.98, " Treatment starts", transform=ax.get_xaxis_transform(), ha="left",
                va="top", fontsize=8, color=DARK_GREY, zorder=6,
                bbox=dict(facecolor="white", edgecolor="none", pad=1.0, alpha=0.85))
        if interval_label:
            handles["interval"] = Line2D([], [], color=PILOT_COLOUR, marker="|", markersize=14,
                                         markeredgewidth=1.5, linestyle="none", label=interval_label)
        order = [k for k in ("leads", "reference", "lags", "interval") if k in handles]
        labs = [handles[k].get_label() for k in order]
        if own_figure:
            _legend_top(fig, [handles[k] for k in order], labs, ncols=2 if interval_label else 3)
        else:
            ax.legend([handles[k] for k in order], labs, loc="best", fontsize=8)
    return fig


# ---------------------------------------------------------------- power curve

@memoised
def power_curve_plot(power: pd.DataFrame, *, mde: float, unit: str = "", sesoi: float | None = None,
                     target: float = 0.8) -> Figure:
    """Power curve: the share of studies like this one that would find an effect, by its size.

    Parameters
    ----------
    power : DataFrame
        Rows of ``results/power.csv`` for one outcome: ``effect`` (the true
        effect, in the outcome's unit) and ``power`` (0-1: the share of
        repeated studies of this design whose test at the 5% level would
        reject no effect).
    mde : float
        The minimum detectable effect (the effect found with ``target`` power),
        marked with a dashed vertical line and a point on the curve.
    unit : str
        Unit of the effect, for the x-axis label (e.g. "percentage points").
    sesoi : float, optional
        The smallest effect size of interest, marked with a dotted vertical line.
    target : float
        The power the MDE is defined by (drawn as a horizontal reference line).

    Returns
    -------
    Figure
        One dark-blue line with points; the y-axis in per cent.
    """
    _require(power, ["effect", "power"], "power_curve_plot")
    d = power.sort_values("effect")
    x, y = d["effect"].to_numpy(float), 100 * d["power"].to_numpy(float)
    with house_style():
        fig, ax = _subplots(figsize=(_MAIN_WIDTH, 3.6))
        (curve,) = ax.plot(x, y, color=PILOT_COLOUR, marker="o", markersize=4, linewidth=2, zorder=3,
                           gid="power", label="Share of studies that would find the effect")
        ax.axhline(100 * target, color=DARK_GREY, linewidth=1, linestyle=(0, (4, 3)), zorder=1,
                   gid="target")
        handles = [curve]
        if np.isfinite(mde):
            (m,) = ax.plot([mde, mde], [0, 100 * target], color=PILOT_COLOUR, linestyle=(0, (4, 3)),
                           linewidth=1.5, zorder=2, gid="mde",
                           label=f"Minimum detectable effect ({_num(mde)}), found {100 * target:.0f}% of the time")
            ax.plot([mde], [100 * target], marker="D", markersize=7, color=PILOT_COLOUR, zorder=4,
                    linestyle="none")
            handles.append(m)
        if sesoi is not None and np.isfinite(sesoi):
            (s_,) = ax.plot([sesoi, sesoi], [0, 100], color=COMPARATOR_COLOUR, linestyle=(0, (1, 1.5)),
                            linewidth=2, zorder=2, gid="sesoi",
                            label=f"Smallest effect of interest ({_num(sesoi)})")
            handles.append(s_)
        ax.set_ylim(0, 102)
        ax.set_xlim(0, float(np.nanmax(x)) * 1.02 if len(x) else 1)
        ax.set_ylabel("Share of studies that would\nfind an effect this large (%)")
        ax.set_xlabel(f"True effect of Signs of Safety (size, {unit})" if unit else
                      "True effect of Signs of Safety (size)")
        _legend_top(fig, handles, ncols=1)
    return fig


def _num(x: float) -> str:
    """A number for a figure label: two significant decimals, a proper minus sign."""
    return (f"{x:.2f}" if abs(x) < 10 else f"{x:.1f}").replace("-", "−")


# ---------------------------------------------------------------- HonestDiD

@memoised
def honest_did_plot(honest: pd.DataFrame, *, unit: str = "", breakdown: float | None = None) -> Figure:
    """Robust intervals when parallel trends may fail (Rambachan and Roth's HonestDiD).

    Parameters
    ----------
    honest : DataFrame
        Rows of ``results/honest_did.csv`` for one outcome: ``method``
        ("relative_magnitudes" and/or "smoothness"), ``M`` and the robust
        interval ``ci_low``, ``ci_high``.
    unit : str
        Unit of the effect, for the y-axis label.
    breakdown : float, optional
        The breakdown value of M-bar (the smallest violation, relative to the
        pre-period's, at which the interval first includes zero), marked with a
        dashed vertical line when finite.

    Returns
    -------
    Figure
        One panel per method, each with its own y scale: an interval bar for each
        value of M (M = 0 is exact parallel trends), and a line at zero.
    """
    _require(honest, ["method", "M", "ci_low", "ci_high"], "honest_did_plot")
    titles = {"relative_magnitudes": ("Relative magnitudes",
                                      "M̄: largest violation after the start, relative\nto the largest one before it"),
              "smoothness": ("Smoothness",
                             f"M: how far the trend may bend each year{f' ({unit})' if unit else ''}")}
    methods = [m for m in titles if m in set(honest["method"])]
    if not methods:
        raise ValueError("honest_did_plot: no rows of a known method "
                         f"({', '.join(titles)}); got {sorted(set(honest['method']))}")
    with house_style():
        fig, axes = _subplots(1, len(methods), figsize=(_MAIN_WIDTH, 3.8), squeeze=False)
        colours = {"relative_magnitudes": PILOT_COLOUR, "smoothness": SECOND_COLOUR}
        for ax, method in zip(axes[0], methods):
            d = honest[(honest["method"] == method) & honest["ci_low"].notna()].sort_values("M")
            x = d["M"].to_numpy(float)
            lo, hi = d["ci_low"].to_numpy(float), d["ci_high"].to_numpy(float)
            mid = (lo + hi) / 2
            ax.errorbar(x, mid, yerr=np.vstack([mid - lo, hi - mid]), fmt="none", ecolor=colours[method],
                        elinewidth=2.5, capsize=4, zorder=3, gid=method)
            ax.axhline(0, color=DARK_GREY, linewidth=1, zorder=1, gid="zero")
            if method == "relative_magnitudes" and breakdown is not None and np.isfinite(breakdown):
                ax.axvline(breakdown, color=DARK_GREY, linestyle=(0, (4, 3)), linewidth=1, gid="breakdown")
                ax.text(breakdown, 0.98, f" Breakdown ({_num(breakdown)})", transform=ax.get_xaxis_transform(),
                        ha="left", va="top", fontsize=8, color=DARK_GREY)
            ax.set_title(titles[method][0], loc="left", fontsize=10)
            ax.set_xlabel(_wrap(titles[method][1].replace("\n", " "), 36))
            if len(x) > 1:
                pad = 0.06 * (x.max() - x.min())
                ax.set_xlim(x.min() - pad, x.max() + pad)
                step = 1 if len(x) <= 5 else 2
                ax.set_xticks(x[::step], [f"{v:.3g}" for v in x[::step]])
        axes[0][0].set_ylabel(_wrap(f"Effect, robust 95% interval{f' ({unit})' if unit else ''}", 36))
        for ax in axes[0][1:]:
            ax.set_ylabel(_wrap(f"Robust 95% interval{f' ({unit})' if unit else ''}", 36))
        fig.tight_layout()
    return fig


# ---------------------------------------------------------------- forest plot

def forest_plot(estimates: pd.DataFrame, *, label_col: str = "specification",
                group_col: str | None = "outcome", main: str = "main",
                spec_col: str = "specification",
                row_labels: Mapping[str, str] | None = None,
                group_labels: Mapping[str, str] | None = None,
                estimator: str | None = None, inference: str | None = None,
                xlabel: str = "Estimated effect (95% confidence interval)",
                ncols: int | None = None, sharex: bool = False) -> Figure:
    """Forest plot: estimates with 95% intervals, one row per specification.

    Parameters
    ----------
    estimates : DataFrame
        Rows of ``results/estimates.csv``: ``outcome``, ``specification``,
        ``estimate``, ``ci_low``, ``ci_high``; if it holds several
        ``estimator`` / ``inference`` rows per outcome and specification,
        choose one with ``estimator`` and ``inference``.
    label_col : str
        Column giving each row's label (mapped through ``row_labels``).
    group_col : str or None
        Column defining facets (one panel per value, each with its own
        x-axis, since outcomes differ in unit); ``None`` for one panel.
    main : str
        Value of ``spec_col`` of the main specification, highlighted in dark
        blue with filled diamonds; the other rows are grey open circles.
    spec_col : str
        Column holding the specification key.
    row_labels, group_labels : mapping, optional
        Display labels of the rows and of the facets (e.g. outcome labels
        with units).
    estimator, inference : str, optional
        Keep only these values of the ``estimator`` / ``inference`` columns.
    xlabel : str
        Label of the x-axis (the bottom panels).
    ncols : int, optional
        Facet columns (default 1 for up to 3 groups, else 2).
    sharex : bool
        One x scale for all panels (only when outcomes share a unit).

    Returns
    -------
    Figure
        Rows in the order of first appearance, main specification at the top.
    """
    _require(estimates, ["estimate", "ci_low", "ci_high", label_col, spec_col], "forest_plot")
    est = estimates.copy()
    if estimator is not None:
        _require(est, ["estimator"], "forest_plot(estimator=...)")
        est = est.loc[est["estimator"] == estimator]
    if inference is not None:
        _require(est, ["inference"], "forest_plot(inference=...)")
        est = est.loc[est["inference"] == inference]
    if est.empty:
        raise ValueError("forest_plot: no rows to plot (check estimator/inference filters)")
    if group_col is None:
        est = est.assign(_group="")
        group_col = "_group"
    else:
        _require(est, [group_col], "forest_plot")
    keys = [group_col, label_col]
    dup = est.duplicated(keys)
    if dup.any():
        raise ValueError(f"forest_plot: several rows per {group_col} and {label_col} "
                         f"(e.g. {tuple(est.loc[dup, keys].iloc[0])}); filter by estimator/inference")
    row_labels = dict(row_labels or {})
    group_labels = dict(group_labels or {})
    groups = list(dict.fromkeys(est[group_col]))
    rows = list(dict.fromkeys(est[label_col]))
    mains = set(est.loc[est[spec_col] == main, label_col])
    rows = [r for r in rows if r in mains] + [r for r in rows if r not in mains]
    ng = len(groups)
    ncols = ncols or (1 if ng <= 3 else 2)
    nrows_f = int(np.ceil(ng / ncols))
    n_rows = len(rows)
    panel_h = 0.24 * n_rows + 0.75
    with house_style():
        fig, axes = _subplots(nrows_f, ncols, figsize=(_MAIN_WIDTH if ncols == 1 else 9.0,
                                                          panel_h * nrows_f + 0.6),
                                 sharey=True, sharex=sharex, squeeze=False)
        y_of = {r: n_rows - 1 - i for i, r in enumerate(rows)}
        for k, g in enumerate(groups):
            ax = axes[k // ncols][k % ncols]
            d = est.loc[est[group_col] == g]
            for is_main, sub in d.groupby(d[spec_col] == main):
                y = sub[label_col].map(y_of).to_numpy(float)
                x = sub["estimate"].to_numpy(float)
                xerr = np.vstack([x - sub["ci_low"].to_numpy(float), sub["ci_high"].to_numpy(float) - x])
                ax.errorbar(x, y, xerr=xerr, fmt="D" if is_main else "o",
                            color=PILOT_COLOUR if is_main else DARK_GREY,
                            markerfacecolor=PILOT_COLOUR if is_main else "white",
                            markersize=6 if is_main else 5, markeredgewidth=1.3,
                            elinewidth=2.2 if is_main else 1.2, capsize=0, zorder=3,
                            gid="main" if is_main else "other")
            ax.axvline(0, color=DARK_GREY, linewidth=1, zorder=1, gid="zero")
            ax.set_yticks(list(y_of.values()), [_wrap(row_labels.get(r, r), 38) for r in y_of])
            ax.set_ylim(-0.7, n_rows - 0.3)
            ax.grid(axis="y", visible=False)
            ax.grid(axis="x", visible=True)
            ax.tick_params(axis="y", length=0)
            if g != "":
                ax.set_title(_wrap(group_labels.get(g, g), 55 if ncols == 1 else 48), loc="left",
                             fontsize=9.5)
            if k // ncols == nrows_f - 1 or k + ncols >= ng:
                ax.set_xlabel(xlabel)
            lo, hi = ax.get_xlim()
            span = max(abs(lo), abs(hi))
            if lo > 0:
                ax.set_xlim(left=-0.05 * span)
            if hi < 0:
                ax.set_xlim(right=0.05 * span)
        for k in range(ng, nrows_f * ncols):
            axes[k // ncols][k % ncols].set_visible(False)
        handles = [Line2D([], [], color=PILOT_COLOUR, marker="D", markerfacecolor=PILOT_COLOUR,
                          linewidth=2.2, label="Main specification"),
                   Line2D([], [], color=DARK_GREY, marker="o", markerfacecolor="white",
                          linewidth=1.2, label="Other specifications")]
        fig.legend(handles=handles, loc="upper left", ncols=2, bbox_to_anchor=(0.0, 1.0),
                   borderaxespad=0.2)
        fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / fig.get_figheight()))
    return fig


# ---------------------------------------------------------------- hex map

def load_hexjson(hexjson_path: str | Path) -> pd.DataFrame:
    """The hexes of a HexJSON file: ``id``, ``name``, ``q``, ``r`` (and the layout in ``attrs``).

    Raises
    ------
    ValueError
        Not a HexJSON with ``layout`` and ``hexes``.
    """
    with open(hexjson_path, encoding="utf-8") as fh:
        data = json.load(fh)
    if not isinstance(data, dict) or "hexes" not in data or "layout" not in data:
        raise ValueError(f"{hexjson_path}: not a HexJSON file (needs 'layout' and 'hexes')")
    rows = [dict(id=k, name=v.get("n", v.get("name", k)), q=int(v["q"]), r=int(v["r"]))
            for k, v in data["hexes"].items()]
    df = pd.DataFrame(rows, columns=["id", "name", "q", "r"])
    df.attrs["layout"] = data["layout"]
    return df


def hex_centres(q: np.ndarray, r: np.ndarray, layout: str) -> tuple[np.ndarray, np.ndarray]:
    """Centres of unit-radius hexagons of a HexJSON offset layout.

    ``odd-r``/``even-r``: pointy-topped hexes in rows, odd (even) rows shifted
    half a hex to the right; ``odd-q``/``even-q``: flat-topped hexes in
    columns, odd (even) columns shifted up. HexJSON's ``r`` grows northwards.
    """
    q = np.asarray(q, dtype=float)
    r = np.asarray(r, dtype=float)
    if layout in ("odd-r", "even-r"):
        shift = (np.mod(r, 2) == (1 if layout == "odd-r" else 0)).astype(float) * 0.5
        return np.sqrt(3) * (q + shift), 1.5 * r
    if layout in ("odd-q", "even-q"):
        shift = (np.mod(q, 2) == (1 if layout == "odd-q" else 0)).astype(float) * 0.5
        return 1.5 * q, np.sqrt(3) * (r + shift)
    raise ValueError(f"unknown HexJSON layout {layout!r}")


def hex_map_crosswalk(hexjson_path: str | Path) -> pd.DataFrame:
    """How the hexes of the (2020) hexjson relate to the LA register.

    Returns
    -------
    DataFrame
        One row per English hex and per register LA without a hex of its own:
        ``hex_id``, ``hex_name``, ``la_code`` (register code), ``la_name``,
        ``match``: "same code"; "former code" (the hex uses a code the
        register lists as former, e.g. Buckinghamshire E10000002);
        "drawn in hex" (a predecessor or successor LA drawn in the hex of its
        area, :data:`HEX_AREA_LINKS`); "not on map" (a register LA with no
        hex); "not in register" (a hex whose code is unknown).
    """
    reg = la_register()
    names = dict(zip(reg["la_code"], reg["la_name"]))
    by_ons, _ = _lookups()
    hexes = load_hexjson(hexjson_path)
    hexes = hexes.loc[hexes["id"].str.startswith("E")]
    rows, seen = [], set()
    for hid, hname in zip(hexes["id"], hexes["name"]):
        code = by_ons.get(hid)
        if code is None:
            rows.append(dict(hex_id=hid, hex_name=hname, la_code=None, la_name=None,
                             match="not in register"))
            continue
        seen.add(code)
        rows.append(dict(hex_id=hid, hex_name=hname, la_code=code, la_name=names[code],
                         match="same code" if code == hid else "former code"))
        for linked in HEX_AREA_LINKS.get(hid, []):
            if linked in names:
                seen.add(linked)
                rows.append(dict(hex_id=hid, hex_name=hname, la_code=linked, la_name=names[linked],
                                 match="drawn in hex"))
    for code in reg["la_code"]:
        if code not in seen:
            rows.append(dict(hex_id=None, hex_name=None, la_code=code, la_name=names[code],
                             match="not on map"))
    return pd.DataFrame(rows, columns=["hex_id", "hex_name", "la_code", "la_name", "match"])


def _abbrev(name: str) -> str:
    skip = {"and", "of", "upon", "city", "the", "on", "with", "county", "royal", "borough"}
    words = [w for w in str(name).replace(",", " ").replace("-", " ").split() if w.lower() not in skip]
    if len(words) >= 2:
        return "".join(w[0] for w in words[:3]).upper()
    return (words[0] if words else str(name))[:3].upper()


def hex_map(roles: Mapping[str, str], hexjson_path: str | Path, *,
            role_labels: Mapping[str, str] | None = None,
            label_roles: Sequence[str] = ("pilot",),
            hex_labels: Mapping[str, str] | None = None) -> Figure:
    """Hexagon cartogram of English upper-tier LAs coloured by their role in the study.

    Parameters
    ----------
    roles : mapping
        ``{la_code: role}`` with role one of :data:`ROLE_STYLES`: "pilot",
        "comparator", "similar_model", "other_sos", "boundary_changed",
        "excluded", "other". Codes may be current or former ONS codes.
        LAs without a role are drawn as "other".
    hexjson_path : path
        The HexJSON of upper-tier LAs (manifest id ``hexmap_utla``, 2020
        boundaries). Only English hexes (codes starting "E") are drawn.
    role_labels : mapping, optional
        Legend text per role (defaults in :data:`ROLE_STYLES`).
    label_roles : sequence of str
        Roles whose hexes carry a short label (default the pilots).
    hex_labels : mapping, optional
        ``{la_code: text}`` overriding the automatic abbreviation (initials
        of a multi-word name, else its first three letters).

    Returns
    -------
    Figure
        One hexagon patch per English hex (patch ``gid`` = the hex's code),
        a legend of the roles present, no axes.

    Notes
    -----
    The hexjson predates three boundary changes. A hex takes the role of its
    own LA (codes mapped through the register's former codes, so the 2020
    codes of Buckinghamshire, North Yorkshire and Somerset find their current
    LA); if that LA has no role, the hex takes the highest-priority role of
    the register LAs linked to its area in :data:`HEX_AREA_LINKS` (Cumbria's
    hex shows Cumberland and Westmorland and Furness; Northamptonshire's
    shows North and West Northamptonshire; BCP's and Dorset's show their
    2019 predecessors). :func:`hex_map_crosswalk` lists every link and every
    register LA not on the map.
    """
    by_ons, _ = _lookups()
    unknown = sorted(set(roles.values()) - set(ROLE_STYLES))
    if unknown:
        raise ValueError(f"hex_map: unknown role(s) {unknown}; expected one of {list(ROLE_STYLES)}")
    role_of = {by_ons.get(k, k): v for k, v in roles.items()}
    hexes = load_hexjson(hexjson_path)
    layout = hexes.attrs["layout"]
    hexes = hexes.loc[hexes["id"].str.startswith("E")].reset_index(drop=True)
    x, y = hex_centres(hexes["q"].to_numpy(), hexes["r"].to_numpy(), layout)

    def hex_role(hid: str) -> str:
        code = by_ons.get(hid, hid)
        if code in role_of:
            return role_of[code]
        linked = [role_of[c] for c in HEX_AREA_LINKS.get(hid, []) if c in role_of]
        if linked:
            return min(linked, key=_ROLE_PRIORITY.index)
        return "other"

    hex_roles = [hex_role(h) for h in hexes["id"]]
    labels = {**{k: v["label"] for k, v in ROLE_STYLES.items()}, **dict(role_labels or {})}
    hex_labels = {by_ons.get(k, k): v for k, v in (hex_labels or {}).items()}
    pointy = layout.endswith("-r")
    x0, x1 = x.min() - 1.1, x.max() + 1.1
    y0, y1 = y.min() - 1.2, y.max() + 1.2
    present = [r for r in ROLE_STYLES if r in set(hex_roles)]
    n_leg_rows = int(np.ceil(len(present) / 2))
    legend_h = 0.24 * n_leg_rows + 0.15
    with house_style():
        fig_w = _MAIN_WIDTH
        map_h = fig_w * (y1 - y0) / (x1 - x0)
        fig = _new_figure((fig_w, map_h + legend_h))
        ax = fig.add_axes((0.0, legend_h / (map_h + legend_h), 1.0, map_h / (map_h + legend_h)))
        for hid, name, xi, yi, role in zip(hexes["id"], hexes["name"], x, y, hex_roles):
            st = ROLE_STYLES[role]
            patch = RegularPolygon((xi, yi), numVertices=6, radius=1.0,
                                   orientation=0.0 if pointy else np.pi / 6,
                                   facecolor=st["facecolor"], edgecolor="white", linewidth=0.8,
                                   hatch=st["hatch"], hatchcolor=st["hatchcolor"], gid=hid)
            patch.set_label(name)
            ax.add_patch(patch)
            code = by_ons.get(hid, hid)
            text = hex_labels.get(code) or (_abbrev(name) if role in label_roles else None)
            if text:
                dark = role == "pilot"
                ax.text(xi, yi, text, ha="center", va="center", fontsize=7,
                        color="white" if dark else "black", fontweight="bold", zorder=5)
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        ax.set_aspect("equal")
        ax.axis("off")
        handles = [Patch(facecolor=ROLE_STYLES[r]["facecolor"], hatch=ROLE_STYLES[r]["hatch"],
                         hatchcolor=ROLE_STYLES[r]["hatchcolor"], edgecolor="white",
                         label=labels[r]) for r in present]
        fig.legend(handles=handles, loc="lower left", bbox_to_anchor=(0.0, 0.0), ncols=2,
                   frameon=False, fontsize=8.5, handlelength=1.6, handleheight=1.3,
                   columnspacing=1.5, borderaxespad=0.2)
    return fig


# ---------------------------------------------------------------- per-LA profile

def pilot_profile_plot(panel: pd.DataFrame, la_code: str, comparators: Sequence[str],
                       measures: Sequence[str], labels: Mapping[str, str] | None = None, *,
                       first_treated_year: int | None = None, show_individual: bool = True,
                       years: Sequence[int] | None = None, ncols: int = 2,
                       pilot_label: str | None = None) -> Figure:
    """Small multiples of one pilot's series against its comparators' mean, per measure.

    Parameters
    ----------
    panel : DataFrame
        The LA-year panel (``data/processed/panel.csv``): ``la_code``,
        ``year``, the ``measures`` columns; ``la_name`` optional (legend).
    la_code : str
        The pilot.
    comparators : sequence of str
        Its matched comparators' codes. Their mean in a year is the plain
        mean of those with a value.
    measures : sequence of str
        Panel columns, one panel each.
    labels : mapping, optional
        Panel title per measure (with unit).
    first_treated_year : int, optional
        Draw the treatment-start line before this year.
    show_individual : bool
        Also draw each comparator's own series, thin and faint.
    years : sequence of int, optional
        Years to show (default all years of the panel).
    ncols : int
        Panels per row.
    pilot_label : str, optional
        Legend text for the pilot (default its ``la_name``).

    Returns
    -------
    Figure
    """
    _require(panel, ["la_code", "year", *measures], "pilot_profile_plot")
    labels = dict(labels or {})
    p = panel if years is None else panel.loc[panel["year"].isin(list(years))]
    own = p.loc[p["la_code"] == la_code].sort_values("year")
    if own.empty:
        raise ValueError(f"pilot_profile_plot: {la_code} is not in the panel")
    comp = p.loc[p["la_code"].isin(list(comparators))]
    name = pilot_label or (str(own["la_name"].iloc[-1]) if "la_name" in own.columns else la_code)
    n = len(measures)
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    all_years = sorted(p["year"].unique())
    with house_style():
        fig, axes = _subplots(nrows, ncols, figsize=(_MAIN_WIDTH if ncols <= 2 else 9.0,
                                                        2.6 * nrows + 0.5), squeeze=False)
        for k, m in enumerate(measures):
            ax = axes[k // ncols][k % ncols]
            if show_individual:
                for c, d in comp.groupby("la_code"):
                    d = d.sort_values("year")
                    ax.plot(d["year"], d[m], color=COMPARATOR_COLOUR, alpha=0.35, linewidth=0.8,
                            zorder=1, gid=f"comparator:{c}")
            mean = comp.groupby("year")[m].mean().reindex(all_years)
            ax.plot(mean.index.to_numpy(int), mean.to_numpy(float), gid="comparators",
                    **GROUP_STYLES["comparators"])
            ax.plot(own["year"].to_numpy(int), own[m].to_numpy(float), gid="pilot",
                    **GROUP_STYLES["pilots"])
            if first_treated_year is not None:
                ax.axvline(first_treated_year - 0.5, color=DARK_GREY, linestyle=(0, (4, 3)),
                           linewidth=1, zorder=1, gid="onset")
            ax.set_title(_wrap(labels.get(m, m), 42 if ncols <= 2 else 30), loc="left", fontsize=9)
            step = 2 if len(all_years) > 8 else 1
            ax.set_xticks(all_years[::step])
            ax.set_xlim(all_years[0] - 0.5, all_years[-1] + 0.5)
            ax.tick_params(axis="x", labelsize=8)
            if own[m].isna().all() and (comp[m].isna().all() if len(comp) else True):
                ax.text(0.5, 0.5, "no published values", transform=ax.transAxes, ha="center",
                        va="center", color=DARK_GREY, fontsize=8)
        for k in range(n, nrows * ncols):
            axes[k // ncols][k % ncols].set_visible(False)
        for c in range(ncols):
            last = max(k for k in range(n) if k % ncols == c) if any(k % ncols == c for k in range(n)) else None
            if last is not None:
                axes[last // ncols][c].set_xlabel(YEAR_LABEL, fontsize=8.5)
        handles = [Line2D([], [], label=name, **GROUP_STYLES["pilots"]),
                   Line2D([], [], label=f"Mean of its {len(comparators)} matched comparators",
                          **GROUP_STYLES["comparators"])]
        if show_individual:
            handles.append(Line2D([], [], color=COMPARATOR_COLOUR, alpha=0.35, linewidth=0.8,
                                  label="Each comparator"))
        if first_treated_year is not None:
            handles.append(Line2D([], [], color=DARK_GREY, linestyle=(0, (4, 3)), linewidth=1,
                                  label=f"Treatment starts ({first_treated_year})"))
        fig.legend(handles=handles, loc="upper left", ncols=len(handles) if len(handles) <= 3 else 2,
                   bbox_to_anchor=(0.0, 1.0), borderaxespad=0.2)
        top = 1 - (0.3 if len(handles) <= 3 else 0.55) / fig.get_figheight()
        fig.tight_layout(rect=(0, 0, 1, top))
    return fig


def trend_grid(trends: pd.DataFrame, panels: Sequence[tuple[str, str, Sequence[int]]], *,
               ncols: int = 2) -> Figure:
    """Small multiples of :func:`trend_plot`: one panel per outcome.

    Parameters
    ----------
    trends : DataFrame
        ``results/trends.csv``: ``outcome``, ``year``, ``group``, ``mean``, ``n_las``.
    panels : sequence of (outcome id, axis label, first treated years)
        The outcomes to show, in order.
    ncols : int
        Panels per row.
    """
    n = len(panels)
    nrows = int(np.ceil(n / ncols))
    with house_style():
        fig, axes = _subplots(nrows, ncols, figsize=(5.2 * ncols, 3.6 * nrows))
        flat = np.atleast_1d(axes).ravel()
        for ax, (oid, label, years) in zip(flat, panels):
            trend_plot(trends[trends["outcome"] == oid], outcome_label=_wrap(label, 34),
                       first_treated_years=years, ax=ax, show_n=False, onset_labels=["" for _ in years])
            if ax.get_legend() is not None:
                ax.get_legend().remove()
            ax.tick_params(axis="x", labelrotation=90, labelsize=8)
        for ax in flat[n:]:
            ax.set_visible(False)
        handles, labs = flat[0].get_legend_handles_labels()
        _legend_top(fig, handles, labs, ncols=3)
    return fig
