"""Per-chapter keys: a chapter re-executes only when its own inputs change.

A Sphinx extension (listed under ``sphinx: extra_extensions`` in ``_config.yml``).
The book build keeps its Sphinx environment (``_build/.doctrees``) and executed
outputs (``_build/jupyter_execute``) from one build to the next, so Sphinx re-reads,
and myst-nb (``execute_notebooks: force``) re-executes, only the chapters it finds
outdated. Sphinx alone looks at the chapter's own source file; this extension adds,
on ``env-get-outdated``, every chapter whose **key** changed since the environment
last read it. A chapter's key (:func:`chapter_key`) covers:

- its source file;
- the source of every module of ``analysis/`` its code cells import, and of the
  modules those import (:func:`analysis.run.build.code_closure`), plus any
  ``analysis`` module its kernel imported at run time;
- every file its kernel opened for reading under the checkout, the processed and
  results folders and the data cache (``results/*.csv``, ``data/processed/*.csv``,
  ``data/*``, ``results/published/*``, raw files ...), by content, and the names in
  every such folder it listed; recorded when it last executed (below);
- the names of the files in the processed and results folders (a chapter may
  look for a file without opening it), the locations of those folders and the
  library versions.

The files a chapter reads are not declared anywhere: they are recorded while it
executes. Each chapter's kernel starts with an IPython startup file (the build
points ``IPYTHONDIR`` at a temporary profile) that installs an audit hook
(:func:`analysis.book.chapter_reads.record_reads`, :func:`sys.addaudithook`): every file opened for reading
and every folder listed under those roots is appended to a per-chapter list,
which the extension stores in the Sphinx environment with the key
(``doctree-read``). The record is thus exact and maintains itself: a chapter that
starts reading another table records it the next time it runs.

Code of ``analysis/`` is covered by the import closure, not by the record, and
files under ``_build/`` are not recorded (the build writes them).

The extension also sets up how the chapters execute: their kernels are forked
from a server that has imported their libraries (:mod:`analysis.book.kernel_fork`),
their figures come from the figure store when their data are unchanged
(:mod:`analysis.book.figure_memo`), they are read one per batch, slowest first
(:func:`reading_order`), and three waits of the libraries are shortened
(:func:`_quick_kernel_handshake`, :func:`_cache_bibtex_plugins`, the imports kept
in the environment).
"""
from __future__ import annotations

import ast
import functools
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import sphinx.builders
from sphinx.util.build_phase import BuildPhase

from analysis.book import figure_memo, kernel_fork
from analysis.book.chapter_reads import READS_VAR, STARTUP, parse_reads
from analysis.core.paths import BUILD_DIR, PROCESSED_DIR, RESULTS_DIR, ROOT
from analysis.run.build import (
    Key,
    changed_parts,
    code_closure,
    file_sha256,
    known_imports,
    library_versions,
    seed_imports,
)

# --------------------------------------------------------------------------- the key
_CELL = re.compile(r"^(`{3,}|~{3,})\{code-cell\}[^\n]*\n(.*?)^\1", re.S | re.M)
_IMPORT = re.compile(r"^\s*(?:from\s+(analysis[\w.]*)\s+import\s+\(?([\w\s,]+)|import\s+(analysis[\w.]*))",
                     re.M)


def _cell_code(body: str) -> str:
    lines = body.splitlines()
    if lines and lines[0].strip() == "---":  # YAML options block
        end = next((i for i, ln in enumerate(lines[1:], 1) if ln.strip() == "---"), 0)
        lines = lines[end + 1:]
    while lines and lines[0].startswith(":"):  # short options (":tags: [...]")
        lines = lines[1:]
    return "\n".join("" if ln.lstrip().startswith(("%", "!")) else ln for ln in lines)


def imported_modules(text: str) -> set[str]:
    """``analysis`` modules the code cells of a MyST notebook import (and names that may be modules)."""
    found: set[str] = set()
    for m in _CELL.finditer(text):
        code = _cell_code(m.group(2))
        try:
            tree = ast.parse(code)
        except SyntaxError:  # fall back to reading the import lines
            for frm, names, imp in _IMPORT.findall(code):
                if imp:
                    found.add(imp)
                else:
                    found.add(frm)
                    found.update(f"{frm}.{n.split()[0]}" for n in names.split(",") if n.strip())
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name.split(".")[0] == "analysis")
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "analysis":
                found.add(node.module)
                found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


class Hashes:
    """sha256 of files and the library versions, each found once.

    One build hashes the same tables for many chapters; they do not change while it runs.
    """

    def __init__(self) -> None:
        self.files: dict[str, str] = {}
        self._libraries: dict[str, str] | None = None

    def __call__(self, path: str) -> str:
        """Hex sha256 of the file at ``path`` (``"missing"`` when there is none)."""
        if path not in self.files:
            p = Path(path)
            self.files[path] = file_sha256(p) if p.is_file() else "missing"
        return self.files[path]

    @property
    def libraries(self) -> dict[str, str]:
        """:func:`analysis.run.build.library_versions`, found once."""
        if self._libraries is None:
            self._libraries = library_versions()
        return self._libraries


def _listing(folder: Path | str) -> list[str]:
    try:
        return sorted(n for n in os.listdir(folder) if not n.startswith("."))
    except OSError:
        return ["<missing>"]


def _short(path: str) -> str:
    try:
        return Path(path).relative_to(ROOT).as_posix()
    except ValueError:
        return path


def chapter_key(source: Path, reads: dict[str, list[str]] | None = None, *,
                hashes: Hashes | None = None) -> Key:
    """The key of the chapter at ``source`` that read ``reads`` (see the module docstring).

    ``reads`` is what :func:`parse_reads` returns for the chapter's last
    execution (None or empty: the chapter has not executed yet, or read nothing).
    ``hashes`` reuses file hashes across calls (one build); by default every file is read.
    """
    hashes = hashes or Hashes()
    reads = reads or {}
    source = Path(source)
    text = source.read_text(encoding="utf-8") if source.is_file() else ""
    modules = imported_modules(text) | set(reads.get("modules", []))
    return Key.of({
        "source": hashes(str(source)),
        "code": {_short(str(f)): hashes(str(f)) for f in code_closure(*sorted(modules))} if modules else {},
        "files": {_short(p): hashes(p) for p in reads.get("files", [])},
        "folders": {_short(p): _listing(p) for p in reads.get("folders", [])},
        "outputs": {"processed": [str(PROCESSED_DIR), _listing(PROCESSED_DIR)],
                    "results": [str(RESULTS_DIR), _listing(RESULTS_DIR)]},
        "libraries": hashes.libraries,
    })


# --------------------------------------------------------------------------- Sphinx
#: The figure store's folder inside the build folder (``--force`` empties it).
FIGURE_STORE = ".figures"

def _log():
    from sphinx.util import logging

    return logging.getLogger(__name__)


def _start(app) -> None:
    """builder-inited: a temporary folder for the reads and an IPython profile that records them."""
    tmp = Path(tempfile.mkdtemp(prefix="sos-chapter-reads-"))
    startup = tmp / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-sos-chapter-reads.py").write_text(STARTUP, encoding="utf-8")
    app._sos_reads_dir = tmp
    app._sos_hashes = Hashes()
    app._sos_saved_env = {k: os.environ.get(k) for k in ("IPYTHONDIR", READS_VAR, "JUPYTER_PATH",
                                                         kernel_fork.SERVER_VAR, figure_memo.STORE_VAR)}
    os.environ["IPYTHONDIR"] = str(tmp / "ipython")  # the kernels the build starts inherit it
    # the figure store of the chapters' kernels (analysis.book.figure_memo), kept between builds
    store = Path(os.environ.get(figure_memo.STORE_VAR) or BUILD_DIR / FIGURE_STORE)
    figure_memo.prune(store)
    os.environ[figure_memo.STORE_VAR] = str(store)
    _start_fork_server(app, tmp)


def _start_fork_server(app, tmp: Path) -> None:
    """Chapter kernels forked from a server that has imported their libraries (:mod:`analysis.book.kernel_fork`).

    The build's kernelspec ``python3`` (found first through ``JUPYTER_PATH``) starts
    the launcher; ``SOS_KERNEL_FORK=0`` keeps ordinary kernels.
    """
    app._sos_fork_server = None
    if os.environ.get("SOS_KERNEL_FORK", "1").strip() == "0":
        return
    kernel_fork.kernelspec(str(tmp / "jupyter"))
    socket_path = tmp / "kernels.sock"
    app._sos_fork_server = subprocess.Popen(
        [sys.executable, "-m", "analysis.book.kernel_fork", "serve", str(socket_path)],
        stdin=subprocess.DEVNULL)
    path = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = str(tmp / "jupyter") + (os.pathsep + path if path else "")
    os.environ[kernel_fork.SERVER_VAR] = str(socket_path)


def _declare_parallel_safe(app) -> None:
    """builder-inited: declare two of jupyter-book's extensions safe for parallel reading.

    They do not declare it, so Sphinx would read serially (and warn). Both are:
    sphinx-multitoc-numbering only replaces the section numbering, which Sphinx runs
    in the main process once every chapter is read (env-updated), and
    sphinx-jupyterbook-latex's transforms act under the LaTeX builder only. (At
    builder-inited every extension is loaded, jupyter-book's late ones included.)
    """
    for name in ("sphinx_multitoc_numbering", "sphinx_jupyterbook_latex"):
        extension = app.extensions.get(name)
        if extension is not None and extension.parallel_read_safe is None:
            extension.parallel_read_safe = True


def reading_order(docnames: list[str], seconds: dict[str, float], nproc: int) -> list[list[str]]:
    """The parallel reading's batches: one chapter each, so that the slowest start first.

    ``seconds``: how long each chapter took to read (execute) last time; a chapter
    not read before counts as the slowest. Sphinx's own batching cuts the sorted
    names into a few equal runs, so one reader could get the profiles appendix and
    five more chapters while the other idles. One chapter per batch, longest
    first, keeps both busy to the end (longest-processing-time order). Sphinx
    7.4's ``ParallelTasks`` starts the first ``nproc`` batches as they are added
    and the waiting ones last-added first (``dict.popitem``), so the waiting ones
    are listed shortest first: they then start longest first.
    """
    longest_first = sorted(docnames, key=lambda d: (-seconds.get(d, math.inf), d))
    running, waiting = longest_first[:nproc], longest_first[nproc:]
    return [[d] for d in running + waiting[::-1]]


def _batch_by_chapter(app) -> None:
    """builder-inited: read chapters in :func:`reading_order` (the writing phase keeps Sphinx's batches).

    Sphinx builds its reading batches with ``sphinx.builders.make_chunks``, a
    module-level name with no hook of its own, so it is replaced here, for this
    build process only, by a function that defers to the original outside the
    reading phase.
    """
    original = getattr(sphinx.builders.make_chunks, "__wrapped__", sphinx.builders.make_chunks)

    def make_chunks(arguments, nproc: int, maxbatch: int = 10):
        if app.phase != BuildPhase.READING:
            return original(arguments, nproc, maxbatch)
        seconds = {d: v.get("seconds", math.inf) for d, v in _store(app.env).items()}
        return reading_order(list(arguments), seconds, nproc)

    make_chunks.__wrapped__ = original
    sphinx.builders.make_chunks = make_chunks


def _cache_bibtex_plugins() -> None:
    """Look each pybtex plugin up among the installed packages once per build, not once per citation.

    sphinxcontrib-bibtex asks pybtex for its style plugins at every citation it
    resolves, and pybtex (0.26) scans the metadata of every installed package for
    them each time: 92 citations took 1.5 s, in the serial part of the build. The
    replacement keeps pybtex's order (plugins registered at run time first, then
    the group, then its aliases) and remembers only what the installed packages
    provide, which cannot change during the build.
    """
    import pybtex.plugin as plugin  # the bibliography's library: loaded with sphinxcontrib-bibtex

    if hasattr(plugin._load_entry_point, "__wrapped__"):
        return
    original = plugin._load_entry_point

    @functools.lru_cache(maxsize=None)
    def installed(group: str, name: str):
        for entry_point in plugin.entry_points(group=group, name=name):
            return entry_point.load()
        return None

    def load_entry_point(group, name, use_aliases=False):
        for search_group in ([group, group + ".aliases"] if use_aliases else [group]):
            klass = plugin._RUNTIME_PLUGINS.get(search_group, {}).get(name)
            if klass is None:
                klass = installed(search_group, name)
            if klass is not None:
                return klass
        raise plugin.PluginNotFound(group, name)

    load_entry_point.__wrapped__ = original
    plugin._load_entry_point = load_entry_point


#: How long a new kernel's IOPub channel is listened to, in seconds, before it counts as quiet.
IOPUB_QUIET = 0.02


def _quick_kernel_handshake() -> None:
    """Let a new kernel's client wait 0.02 s, not 0.2 s, for IOPub messages once the kernel answers.

    jupyter_client (8.x) ends ``wait_for_ready`` by listening to IOPub until 0.2 s
    pass without a message (and listens 0.2 s for the first one): idle time at
    every chapter's start, about 0.3 s of the 1 s a short chapter takes. Sooner is
    as safe: the kernel has answered on the shell channel by then, and a late
    status message is one nbclient ignores (it is not the parent of any cell's
    request). Only the waits inside ``wait_for_ready`` of the asynchronous client
    (nbclient's) are shortened.
    """
    from jupyter_client.asynchronous.client import AsyncKernelClient  # loaded with myst-nb (nbclient)

    if hasattr(AsyncKernelClient.wait_for_ready, "__wrapped__"):
        return
    original = AsyncKernelClient.wait_for_ready

    async def wait_for_ready(self, timeout: float | None = None) -> None:
        channel = self.iopub_channel
        listen = channel.get_msg

        async def get_msg(timeout: float | None = None):
            return await listen(timeout=IOPUB_QUIET if timeout is None else min(timeout, IOPUB_QUIET))

        channel.get_msg = get_msg
        try:
            return await original(self, timeout)
        finally:
            del channel.get_msg

    wait_for_ready.__wrapped__ = original
    AsyncKernelClient.wait_for_ready = wait_for_ready


def _reads_file(app, docname: str) -> Path:
    return app._sos_reads_dir / (docname.replace("/", "__") + ".reads")


def _before_read(app, docname: str, source: list[str]) -> None:
    """source-read: the kernel about to execute ``docname`` records into its own file."""
    path = _reads_file(app, docname)
    path.unlink(missing_ok=True)
    os.environ[READS_VAR] = str(path)
    app._sos_read_started = (docname, time.perf_counter())


def _after_read(app, doctree) -> None:
    """doctree-read: store what the chapter read, and its key, in the environment."""
    env = app.env
    docname = env.docname
    path = _reads_file(app, docname)
    reads = parse_reads(path.read_text(encoding="utf-8")) if path.exists() else {}
    os.environ.pop(READS_VAR, None)
    key = chapter_key(Path(env.doc2path(docname)), reads, hashes=app._sos_hashes)
    started = getattr(app, "_sos_read_started", None)
    seconds = time.perf_counter() - started[1] if started and started[0] == docname else math.inf
    _store(env)[docname] = {"key": key.value, "parts": key.parts, "reads": reads, "seconds": seconds}


def _store(env) -> dict[str, dict[str, Any]]:
    if not hasattr(env, "sos_chapter_keys"):
        env.sos_chapter_keys = {}
    return env.sos_chapter_keys


def _outdated(app, env, added, changed, removed) -> list[str]:
    """env-get-outdated: the chapters whose key changed since they were last read."""
    store = _store(env)
    seed_imports(getattr(env, "sos_imports", {}))  # what each module imports, parsed by the last build
    out = []
    for docname in sorted(set(env.found_docs) - set(added) - set(changed) - set(removed)):
        old = store.get(docname)
        key = chapter_key(Path(env.doc2path(docname)), (old or {}).get("reads"),
                          hashes=app._sos_hashes)
        if old is None or old.get("key") != key.value:
            why = "; ".join(changed_parts(old, key)) if old else "no key recorded"
            _log().info(f"chapter {docname} re-executes: {why}")
            out.append(docname)
    env.sos_imports = known_imports()
    n_reread = len(set(added) | set(changed)) + len(out)
    _log().info(f"chapters to read: {n_reread} of {len(env.found_docs)} "
                f"({len(env.found_docs) - n_reread} unchanged, kept from the last build)")
    return out


def _purge(app, env, docname: str) -> None:
    _store(env).pop(docname, None)


def _merge(app, env, docnames, other) -> None:
    """env-merge-info: the keys a parallel reader process stored, for the chapters it read."""
    theirs = _store(other)
    mine = _store(env)
    for docname in docnames:
        if docname in theirs:
            mine[docname] = theirs[docname]


def _finish(app, exception) -> None:
    """build-finished: stop the kernels' fork server, restore the environment variables, drop the temporary folder."""
    server = getattr(app, "_sos_fork_server", None)
    if server is not None:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
    for k, v in getattr(app, "_sos_saved_env", {}).items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    tmp = getattr(app, "_sos_reads_dir", None)
    if tmp is not None:
        shutil.rmtree(tmp, ignore_errors=True)


def setup(app) -> dict[str, Any]:
    """Register the extension (see the module docstring)."""
    app.connect("builder-inited", _start)
    app.connect("env-get-outdated", _outdated)
    app.connect("env-purge-doc", _purge)
    app.connect("source-read", _before_read)
    app.connect("doctree-read", _after_read)
    app.connect("env-merge-info", _merge)
    app.connect("build-finished", _finish)
    app.connect("builder-inited", _declare_parallel_safe)
    app.connect("builder-inited", _batch_by_chapter)
    _cache_bibtex_plugins()
    _quick_kernel_handshake()
    # Parallel reading (`sphinx -j`) forks one process per batch of chapters. The
    # kernels learn which chapter they run through an environment variable
    # (`_before_read`), which each forked reader sets in its own environment, and
    # `_merge` brings each reader's keys back into the main environment.
    return {"version": "1", "env_version": 1, "parallel_read_safe": True,
            "parallel_write_safe": True}
