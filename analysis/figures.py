"""Figures of the report: one function per figure type, each returning a Figure.

House style: the UK Government Analysis Function's matplotlib style and
colour-blind-safe palettes from ``afcharts``. Titles are set by the chapters'
captions, so figures carry axis labels and legends only.
"""
from __future__ import annotations

from contextlib import contextmanager

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from afcharts.af_colours import get_af_colours  # noqa: E402
from matplotlib.colors import LinearSegmentedColormap  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

#: Analysis Function categorical palette (colour-blind safe, in order of use).
CATEGORICAL = get_af_colours("categorical")
#: Sequential palette, dark to light.
SEQUENTIAL = get_af_colours("sequential")


@contextmanager
def house_style():
    """Apply the Analysis Function style inside a ``with`` block."""
    with plt.style.context("afcharts.afcharts"):
        with plt.rc_context({"figure.dpi": 110, "savefig.dpi": 150, "font.size": 10,
                             "axes.titlesize": 11, "svg.fonttype": "none"}):
            yield


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
    with house_style():
        fig, ax = plt.subplots(figsize=(9, 0.32 * len(grid) + 1.4))
        im = ax.imshow(grid.to_numpy(dtype=float), aspect="auto", cmap=cmap, vmin=0, vmax=1,
                       interpolation="nearest")
        ax.set_xticks(range(grid.shape[1]), [str(y) for y in grid.columns], rotation=90)
        ax.set_yticks(range(grid.shape[0]), [labels.get(m, m) for m in grid.index])
        ax.set_xlabel("Reporting year (ending 31 March)")
        ax.grid(False)
        cbar = fig.colorbar(im, ax=ax, fraction=0.03, pad=0.01)
        cbar.set_label("Share of LAs with a value")
        fig.tight_layout()
    return fig
