"""Figures drawn again only when what they show changed (the book build's figure store).

A chapter re-executes when any file it read changed, and then draws every figure
again: after one revised value, the sensitivity chapter redraws the forest plots
of all twelve outcomes, eleven of them unchanged. Drawing and rendering a figure
is about 0.4 s, most of a figure-heavy chapter. A drawing function decorated with
:func:`memoised` and given its data as arguments (nothing read inside) is, during
a book build, looked up in a store first: the key is its arguments, the source of
every module of ``analysis/book/`` and the versions of the libraries that draw
and show it, with matplotlib's settings at the call. A hit returns a
:class:`StoredFigure`, which shows exactly what the figure showed (the same
MIME bundle, so the same PNG bytes); a miss draws, keeps the bundle and returns
the stored form too.

The store is ``$SOS_FIGURE_CACHE`` (the book build sets it to
``_build/.figures``; ``--force`` empties it). Without it, or outside an IPython
kernel, a decorated function just returns its Figure (tests, scripts).
"""
from __future__ import annotations

import functools
import hashlib
import os
import pickle
import sys
from pathlib import Path
from typing import Any, Callable

from analysis.core.files import write_bytes_atomically

#: Environment variable naming the figure store.
STORE_VAR = "SOS_FIGURE_CACHE"
#: Libraries whose versions are part of every key (they draw, style and show the figure).
LIBRARIES = ("matplotlib", "afcharts", "ipython", "matplotlib-inline", "numpy", "pandas", "pillow")
_BOOK_DIR = Path(__file__).resolve().parent


class StoredFigure:
    """A figure as a notebook shows it: its MIME bundle (PNG and text), without the Figure."""

    def __init__(self, data: dict[str, Any], metadata: dict[str, Any]) -> None:
        self.data = data
        self.metadata = metadata

    def _repr_mimebundle_(self, include=None, exclude=None):
        return self.data, self.metadata

    def __repr__(self) -> str:
        return str(self.data.get("text/plain", "<figure>"))


@functools.lru_cache(maxsize=1)
def _environment_digest() -> str:
    """The book's code and the drawing libraries' versions (once per kernel)."""
    from importlib.metadata import PackageNotFoundError, version

    h = hashlib.sha256()
    for path in sorted(_BOOK_DIR.glob("*.py")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    for name in LIBRARIES:
        try:
            h.update(f"{name}={version(name)}".encode())
        except PackageNotFoundError:
            h.update(f"{name}=".encode())
    h.update(sys.version.encode())
    return h.hexdigest()


def _shell():
    ip = sys.modules.get("IPython")
    shell = ip.get_ipython() if ip is not None else None
    return shell if shell is not None and hasattr(shell, "kernel") else None


def _is_artist(value: Any) -> bool:
    from matplotlib.artist import Artist

    return isinstance(value, Artist)


def figure_key(name: str, args: tuple, kwargs: dict) -> str:
    """Hex key of one call of the drawing function ``name`` (see the module docstring)."""
    import matplotlib

    h = hashlib.sha256(_environment_digest().encode())
    h.update(name.encode())
    h.update(pickle.dumps((args, sorted(kwargs.items())), protocol=5))
    h.update(repr(sorted(matplotlib.rcParams.items())).encode())
    return h.hexdigest()


def memoised(draw: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a drawing function whose figure depends on its arguments only (see the module docstring)."""

    @functools.wraps(draw)
    def wrapper(*args, **kwargs):
        folder = os.environ.get(STORE_VAR, "").strip()
        shell = _shell() if folder else None
        if shell is None or any(_is_artist(v) for v in (*args, *kwargs.values())):
            return draw(*args, **kwargs)  # no store, or drawing into a figure of the caller's
        path = Path(folder) / f"{figure_key(f'{draw.__module__}.{draw.__qualname__}', args, kwargs)}.pkl"
        try:
            data, metadata = pickle.loads(path.read_bytes())
            os.utime(path)  # kept longest when used most recently
            return StoredFigure(data, metadata)
        except (OSError, EOFError, pickle.UnpicklingError, ValueError):
            pass
        data, metadata = shell.display_formatter.format(draw(*args, **kwargs))
        try:
            write_bytes_atomically(path, pickle.dumps((data, metadata), protocol=5))
        except OSError:  # the store only saves time: a folder it cannot write fails no chapter
            pass
        return StoredFigure(data, metadata)

    wrapper.__wrapped__ = draw
    return wrapper


def prune(folder: Path, keep: int = 400) -> int:
    """Delete all but the ``keep`` most recently used figures of the store; return how many went."""
    entries = sorted(Path(folder).glob("*.pkl"), key=lambda p: p.stat().st_mtime, reverse=True) \
        if Path(folder).is_dir() else []
    for p in entries[keep:]:
        p.unlink(missing_ok=True)
    return max(0, len(entries) - keep)
