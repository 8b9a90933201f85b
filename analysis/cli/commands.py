"""Command line: ``python -m analysis {fetch,data,results,build,publish,check-update,estimate}``.

Bad input ends in one line on stderr naming file, column and row, and a
non-zero exit status; never a traceback.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from analysis.cli.estimate import add_estimate_parser
from analysis.core.errors import DataError
from analysis.ingest.sources import fetch_all
from analysis.run.editions import check_updates, load_edition, long_date, publish


def _cmd_fetch(args: argparse.Namespace) -> None:
    paths = fetch_all(progress=True)
    print(f"{len(paths)} source files verified in the cache")


def _steps():
    """The build steps (:mod:`analysis.run.build`), imported when a step runs.

    Not with the parser: the book's rebuild appendix prints this parser's help, and
    the study's estimators would add most of a second to that chapter (and to ``--help``).
    """
    from analysis.run import build

    return build


def _cmd_data(args: argparse.Namespace) -> None:
    built, written = _steps().ensure_panel(out_dir=args.out, force=args.force,
                                  child_level_dir=args.child_level, strict=args.strict)
    for p in written:
        print(f"wrote {p}")


def _cmd_results(args: argparse.Namespace) -> None:
    built, written = _steps().ensure_results(out_dir=args.out, workers=args.workers, force=args.force)
    for p in written:
        print(f"wrote {p}")


def _cmd_build(args: argparse.Namespace) -> int:
    return _steps().build_all(force=args.force, workers=args.workers)


def _cmd_publish(args: argparse.Namespace) -> None:
    _steps().ensure_panel()
    _steps().ensure_results()
    folder = publish()
    ed = load_edition(folder)
    print(f"published the edition of {long_date(ed.date)} into {folder} "
          "(estimates.csv, evidence.csv, edition.json): commit that folder")


def _cmd_check_update(args: argparse.Namespace) -> int:
    use_url = args.url or not (args.mirror or os.environ.get("SOS_DATA_MIRROR"))
    table = check_updates(mirror=args.mirror, use_url=use_url)
    print(table[["id", "status", "recorded", "found"]].to_string(index=False))
    counts = ", ".join(f"{n} {s}" for s, n in table["status"].value_counts().items())
    print(f"{counts} (against {'the URLs' if use_url else 'the mirror'})")
    return 1 if args.exit_code and (table["status"] != "same").any() else 0


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m analysis``: every sub-command with its options and help."""
    parser = argparse.ArgumentParser(prog="python -m analysis", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("fetch", help="fetch and verify every source file into data/raw/").set_defaults(func=_cmd_fetch)
    p_data = sub.add_parser("data", help="build data/processed/panel.csv and measures.csv")
    p_data.add_argument("--out", type=Path, default=None,
                        help="output folder (default data/processed)")
    p_data.add_argument("--force", action="store_true",
                        help="rebuild even when the inputs are unchanged (key in OUT/.key)")
    p_data.add_argument("--child-level", metavar="DIR", default=None,
                        help="child-level mode: read SSDA903/CIN extracts under DIR "
                        "(default $SOS_CHILDLEVEL_DIR; see analysis/childlevel/pipeline.py)")
    p_data.add_argument("--strict", action="store_true",
                        help="child-level mode: stop at the first invalid record")
    p_data.set_defaults(func=_cmd_data)
    p_res = sub.add_parser("results", help="run the study: write results/estimates.csv and companions")
    p_res.add_argument("--out", type=Path, default=None, help="output folder (default results/)")
    p_res.add_argument("--workers", type=int, default=None,
                       help="processes (default: number of cores, at most 4)")
    p_res.add_argument("--force", action="store_true",
                       help="recompute every run even when its inputs are unchanged")
    p_res.set_defaults(func=_cmd_results)
    p_build = sub.add_parser("build", help="data -> results -> book (_build/html), each step only "
                             "when its inputs changed; the book is swapped in only if it builds")
    p_build.add_argument("--force", action="store_true", help="redo every step")
    p_build.add_argument("--workers", type=int, default=None, help="processes for the study")
    p_build.set_defaults(func=_cmd_build)
    sub.add_parser("publish", help="make the current results the published edition "
                   "(results/published/)").set_defaults(func=_cmd_publish)
    p_chk = sub.add_parser("check-update", help="which manifest files differ in the mirror or "
                           "at their URL from the recorded sha256")
    p_chk.add_argument("--mirror", default=None, help="mirror folder (default $SOS_DATA_MIRROR)")
    p_chk.add_argument("--url", action="store_true", help="check the URLs even when a mirror is set")
    p_chk.add_argument("--exit-code", action="store_true",
                       help="exit 1 when any file is not the recorded one")
    p_chk.set_defaults(func=_cmd_check_update)
    add_estimate_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; bad input gives one line on stderr and exit status 2."""
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

