"""Print the largest derived-minus-published difference of every derived rate and share.

Usage: python benchmarks/splice_check.py [PROCESSED_DIR]

Reads ``definitions.csv`` written by ``python -m analysis data`` (default folder:
``$SOS_PROCESSED_DIR`` or ``data/processed``). For each measure with
``derived_from`` in ``data/measure_definitions.csv`` and each year where DfE
also publishes the figure: the difference of largest size (derived minus
published) and its LA; then the LA-years where the published figure fills a gap.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from analysis.core.paths import PROCESSED_DIR  # noqa: E402


def main() -> int:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else PROCESSED_DIR
    path = folder / "definitions.csv"
    if not path.exists():
        print(f"{path} not found: run `python -m analysis data` first", file=sys.stderr)
        return 2
    d = pd.read_csv(path)
    both = d[d["n_both"] > 0]
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print("Largest derived-minus-published difference (unit of the measure), by year:")
        print(both.pivot(index="measure", columns="year", values="max_diff").round(2).to_string())
        print("\nLA of that difference:")
        print(both.pivot(index="measure", columns="year", values="max_diff_la").fillna("").to_string())
        print("\nMean difference over the LAs with both:")
        print(both.pivot(index="measure", columns="year", values="mean_diff").round(2).to_string())
        fills = d[d["n_used_published"] > 0][["measure", "year", "n_used_published", "n_used_derived"]]
        print("\nLA-years where the published figure fills a gap (no count):")
        print(fills.to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
