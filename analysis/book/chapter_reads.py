"""What a chapter reads: an audit hook in the chapter's kernel records it.

The book build (:mod:`analysis.book.chapter_keys`) starts each chapter's kernel
with an IPython startup file that calls :func:`record_reads`: from then on, every
file the kernel opens for reading and every folder it lists, under the checkout,
the processed and results folders, the data cache and the mirror (not
``analysis/``, ``_build/``, ``.venv``, ``.git``), and every ``analysis`` module it
imports, is appended to the file named by ``$SOS_CHAPTER_READS``. This module
imports nothing heavy: it runs before the chapter's first cell.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from analysis.core.paths import BUILD_DIR, PACKAGE_DIR, PROCESSED_DIR, RESULTS_DIR, ROOT
from analysis.ingest.sources import cache_dir

#: Environment variable naming the file a chapter's kernel appends its reads to.
READS_VAR = "SOS_CHAPTER_READS"
#: The IPython startup file of the build's kernels.
STARTUP = ("import analysis.book.chapter_reads as _sos_chapter_reads\n"
           "_sos_chapter_reads.record_reads()\n"
           "del _sos_chapter_reads\n")


def tracked_roots() -> tuple[list[str], list[str]]:
    """``(roots, excluded)``: folders whose files count as a chapter's inputs, and exceptions.

    Roots: the checkout, the processed and results folders, the data cache and
    the mirror. Excluded: ``analysis/`` (code, covered by the import closure),
    the build folder, ``.venv`` and ``.git``.
    """
    roots = [ROOT, PROCESSED_DIR, RESULTS_DIR, cache_dir()]
    mirror = os.environ.get("SOS_DATA_MIRROR")
    if mirror:
        roots.append(Path(mirror) if Path(mirror).is_absolute() else ROOT / mirror)
    excluded = [PACKAGE_DIR, BUILD_DIR, ROOT / ".venv", ROOT / ".git"]
    norm = lambda ps: sorted({os.path.abspath(p) for p in ps})  # noqa: E731
    return norm(roots), norm(excluded)


def _under(path: str, folders: list[str]) -> bool:
    return any(path == f or path.startswith(f + os.sep) for f in folders)


def is_tracked(path: str, roots: list[str], excluded: list[str]) -> bool:
    """Whether ``path`` (absolute) is an input a chapter's key should cover."""
    if not _under(path, roots) or _under(path, excluded):
        return False
    return "__pycache__" not in path and not path.endswith((".py", ".pyc"))


def record_reads(target: str | None = None) -> bool:
    """Record, in this process, every tracked file opened for reading and folder listed.

    Appends lines ``file<TAB>path``, ``folder<TAB>path`` and ``module<TAB>name``
    to ``target`` (default ``$SOS_CHAPTER_READS``; without either, does nothing and
    returns False). Installed by the IPython startup file of the book build's kernels.
    """
    target = target or os.environ.get(READS_VAR)
    if not target:
        return False
    roots, excluded = tracked_roots()
    fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    seen: set[tuple[str, str]] = set()
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

    def hook(event: str, args: tuple) -> None:
        if event not in ("open", "os.scandir", "os.listdir", "import"):
            return
        try:
            if event == "import":
                name = args[0]
                if isinstance(name, str) and name.split(".")[0] == "analysis":
                    kind, item = "module", name
                else:
                    return
            else:
                path = args[0]
                if path is None or isinstance(path, int):
                    return
                if event == "open":
                    mode, flags = args[1], args[2]
                    if isinstance(mode, str):
                        if any(c in mode for c in "wax+"):
                            return
                    elif isinstance(flags, int) and flags & write_flags:
                        return
                kind = "file" if event == "open" else "folder"
                item = os.path.abspath(os.fsdecode(path))
                if not is_tracked(item, roots, excluded):
                    return
                if kind == "folder" and item in {os.path.abspath(p) for p in sys.path if isinstance(p, str)}:
                    return  # the import system scanning sys.path, not the chapter reading
            if (kind, item) in seen:
                return
            seen.add((kind, item))
            os.write(fd, f"{kind}\t{item}\n".encode("utf-8", "surrogateescape"))
        except Exception:  # never let the record break a chapter
            return

    sys.addaudithook(hook)
    return True


def parse_reads(text: str) -> dict[str, list[str]]:
    """The lines :func:`record_reads` wrote, as ``{"files": [...], "folders": [...], "modules": [...]}``."""
    out: dict[str, set[str]] = {"files": set(), "folders": set(), "modules": set()}
    for line in text.splitlines():
        kind, _, item = line.partition("\t")
        if item and kind in ("file", "folder", "module"):
            out[kind + "s"].add(item)
    return {k: sorted(v) for k, v in out.items()}
