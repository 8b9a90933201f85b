"""Command line: ``python -m analysis {fetch,data,results,estimate,...}``.

Bad input ends in one line on stderr naming file, column and row, and a
non-zero exit status; never a traceback.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .errors import DataError


def _cmd_fetch(args: argparse.Namespace) -> None:
    from .sources import fetch_all

    paths = fetch_all(progress=True)
    print(f"{len(paths)} source files verified in the cache")


def _cmd_data(args: argparse.Namespace) -> None:
    from .panel import build_panel_files

    t0 = time.perf_counter()
    written = build_panel_files(out_dir=args.out)
    for p in written:
        print(f"wrote {p}")
    print(f"panel built in {time.perf_counter() - t0:.1f} s")


def _cmd_results(args: argparse.Namespace) -> None:
    from .study import run_study, write_results

    t0 = time.perf_counter()
    print("running every outcome x specification of data/study_design.yaml")
    results = run_study(workers=args.workers)
    for p in write_results(results, args.out):
        print(f"wrote {p}")
    n = len(results.estimates)
    print(f"{n} estimates in {time.perf_counter() - t0:.1f} s")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m analysis", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("fetch", help="fetch and verify every source file into data/raw/").set_defaults(func=_cmd_fetch)
    p_data = sub.add_parser("data", help="build data/processed/panel.csv and measures.csv")
    p_data.add_argument("--out", type=Path, default=None,
                        help="output folder (default data/processed)")
    p_data.set_defaults(func=_cmd_data)
    p_res = sub.add_parser("results", help="run the study: write results/estimates.csv and companions")
    p_res.add_argument("--out", type=Path, default=None, help="output folder (default results/)")
    p_res.add_argument("--workers", type=int, default=None,
                       help="processes (default: number of cores, at most 4)")
    p_res.set_defaults(func=_cmd_results)
    from .cli_estimate import add_estimate_parser

    add_estimate_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        rc = args.func(args)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
