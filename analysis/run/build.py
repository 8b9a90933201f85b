"""Content-keyed, safe rebuilds: data -> results -> book, each redone only when its inputs change.

``python -m analysis build`` (what ``make report`` runs) does three steps:

1. **Panel** (``data/processed/``). Key: every manifest entry (id, path, release,
   release date, sha256 as recorded, each file verified against it in the cache),
   ``data/measure_definitions.csv``, ``data/local_authorities.csv``,
   ``data/reference/*``, the source of every module of ``analysis/`` the panel
   build imports (found by reading the imports, :func:`code_closure`) and the
   versions of Python and the numerical libraries.
2. **Results** (``results/``). Key: the bytes of ``panel.csv``, the study design
   file, the data files above, the source of the study runner's modules and the
   library versions. Within a changed step, each run (outcome x specification)
   is cached under a key of the panel columns it reads
   (:func:`analysis.run.study.run_columns`) and the same files, so a data change that
   touches one outcome re-runs that outcome only (:class:`RunCache`).
3. **Book** (``_build/html``). Key: everything the chapters read (``results/``,
   ``data/processed/``, the published edition, the data files, the manifest) plus
   the chapters, ``_config.yml``, ``_toc.yml``, ``references.bib``, ``_static/``,
   ``Makefile``, ``pyproject.toml`` and all of ``analysis/``. It is the "anything
   changed at all?" gate: unchanged, no build at all. Changed, Sphinx runs with the
   environment of the last build (``_build/.doctrees``, ``_build/jupyter_execute``)
   and re-reads, so re-executes, only the chapters whose **own** key changed
   (:mod:`analysis.book.chapter_keys`): the chapter's source; the source of the
   ``analysis`` modules its code cells import, and of theirs (:func:`code_closure`);
   the content of every file its kernel opened for reading when it last executed
   (``results/*.csv``, ``data/processed/*.csv``, ``data/*``, ``results/published/*``,
   recorded by an audit hook, :mod:`analysis.book.chapter_reads`) and the names in
   the folders it listed; the names of the files in the processed and results
   folders; the library versions. The other chapters keep their doctrees and
   outputs. ``--force`` builds clean, every chapter executing.

Each step stores its key beside its outputs (``data/processed/.key``,
``results/.key``, ``_build/html/.build-key``), written last, after the outputs.

The book is built safely (:func:`build_book`): Sphinx writes every page into a
fresh staging folder next to ``_build/html`` (the doctrees and executed outputs
are copied aside first); only a build that succeeds with no warning replaces
``_build/html`` (rename aside, rename in, delete the old one). A failed build
restores the previous doctrees and execution outputs, leaves ``_build/html``
untouched, exits non-zero and names its log, ``_build/logs/build-<timestamp>.log``.
The doctrees and ``_build/jupyter_execute`` stay where ``make pdf`` (singlehtml)
expects them, so it reuses the executed chapters.
"""
from __future__ import annotations

import ast
import compileall
import contextlib
import datetime as dt
import fcntl
import functools
import hashlib
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable

from analysis.childlevel.pipeline import add_child_level, input_files, read_and_validate
from analysis.core.errors import DataError
from analysis.core.files import write_bytes_atomically
from analysis.core.paths import (
    BUILD_DIR,
    DATA_DIR,
    DESIGN_PATH,
    HTML_DIR,
    PACKAGE_DIR,
    PROCESSED_DIR,
    RESULTS_DIR,
    ROOT,
)
from analysis.ingest import panel as panel_module
from analysis.ingest.sources import fetch, load_manifest, sha256_of
from analysis.run.slices import write_measure_slices
from analysis.run.study import run_columns, run_study, write_results

KEY_FILE = ".key"
BOOK_KEY_FILE = ".build-key"
#: Files and folders of the book itself (besides ``analysis/`` and the data).
BOOK_FILES = ("_config.yml", "_toc.yml", "references.bib", "Makefile", "pyproject.toml",
              "CITATION.cff")
BOOK_DIRS = ("chapters", "_static")
#: Libraries whose version can change a number.
LIBRARIES = ("numpy", "pandas", "scipy", "statsmodels", "pyarrow", "openpyxl", "odfpy",
             "pyreadr", "pyyaml", "matplotlib", "afcharts", "jupyter-book", "sphinx", "myst-nb",
             "holidays")
#: Outputs that must exist for a step to count as done.
PANEL_OUTPUTS = ("panel.csv", "measures.csv", "coverage.csv")
RESULT_OUTPUTS = ("estimates.csv", "evidence.csv", "event_study.csv", "group_time.csv", "power.csv",
                  "honest_did.csv", "pilot_effects.csv", "sdid_weights.csv", "contrasts.csv",
                  "matched_pairs.csv", "balance.csv", "trends.csv", "notes.csv", "outcomes.csv")


# --------------------------------------------------------------------------- hashing
def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: Path) -> str:
    """Hex sha256 of the file at ``path``."""
    return sha256_of(path)


def digest(obj: Any) -> str:
    """sha256 of a JSON-able object in canonical form."""
    return sha256_bytes(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode("utf-8"))


def _rel(path: Path) -> str:
    path = Path(path).resolve()
    try:
        return path.relative_to(ROOT).as_posix()
    except ValueError:
        return path.as_posix()


def files_digest(paths: Iterable[Path]) -> dict[str, str]:
    """``{relative path: sha256}`` of existing files (folders walked, hidden files skipped)."""
    out: dict[str, str] = {}
    for p in paths:
        p = Path(p)
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                rel_parts = f.relative_to(p).parts
                if f.is_file() and not any(part.startswith(".") or part == "__pycache__"
                                           for part in rel_parts):
                    out[_rel(f)] = file_sha256(f)
        elif p.is_file():
            out[_rel(p)] = file_sha256(p)
    return out


def library_versions() -> dict[str, str]:
    """Installed version of Python and of each of :data:`LIBRARIES` (``""`` when not installed)."""
    return dict(_library_versions())


@functools.lru_cache(maxsize=1)
def _library_versions() -> tuple[tuple[str, str], ...]:
    # read once per process: every step's key asks, and the installed versions do not change
    from importlib.metadata import PackageNotFoundError, version

    out = [("python", sys.version.split()[0])]
    for name in LIBRARIES:
        try:
            out.append((name, version(name)))
        except PackageNotFoundError:
            out.append((name, ""))
    return tuple(out)


# --------------------------------------------------------------------------- code closure
def _module_file(name: str) -> Path | None:
    """File of module ``analysis.x.y`` inside the package, or None."""
    parts = name.split(".")
    if parts[0] != "analysis":
        return None
    base = ROOT.joinpath(*parts)
    if (base / "__init__.py").exists():
        return base / "__init__.py"
    if base.with_suffix(".py").exists():
        return base.with_suffix(".py")
    return None


#: What each version of a module imports: ``(path, module, mtime_ns, size) -> modules``
#: (:func:`_imports`). The book build keeps it in its Sphinx environment from one
#: build to the next (:func:`known_imports`, :func:`seed_imports`).
_IMPORTS: dict[tuple[str, str, int, int], frozenset[str]] = {}


def _imports(path: Path, module: str) -> frozenset[str]:
    """Modules of the package that ``path`` imports anywhere (also inside functions).

    Parsed once per version of the file (the book's keys ask for many closures).
    """
    st = path.stat()
    key = (str(path), module, st.st_mtime_ns, st.st_size)
    if key not in _IMPORTS:
        _IMPORTS[key] = _imports_of(path, module)
    return _IMPORTS[key]


def known_imports() -> dict[tuple[str, str, int, int], frozenset[str]]:
    """The imports parsed so far of the files as they are now (see :data:`_IMPORTS`), to keep for the next build."""
    def current(key: tuple[str, str, int, int]) -> bool:
        try:
            st = os.stat(key[0])
        except OSError:
            return False
        return (st.st_mtime_ns, st.st_size) == key[2:]

    return {k: v for k, v in _IMPORTS.items() if current(k)}


def seed_imports(known: dict[tuple[str, str, int, int], frozenset[str]]) -> None:
    """Take the imports a previous build parsed; an entry counts only for the same file version."""
    _IMPORTS.update(known)


def _imports_of(path: Path, module: str) -> frozenset[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_pkg = path.name == "__init__.py"
    package = module if is_pkg else module.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "analysis")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base.split(".")[0] != "analysis":
                continue
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)  # submodules, when they are
    return frozenset(found)


def code_closure(*modules: str) -> list[Path]:
    """Source files of ``modules`` and of every package module they import, transitively.

    Imports are read from the source (``ast``), including those inside
    functions, so the set is a superset of what a run can execute. Parent
    packages (``analysis/__init__.py``) are included, as importing runs them.
    """
    seen: dict[str, Path] = {}
    stack = [m if m.startswith("analysis") else f"analysis.{m}" for m in modules]
    while stack:
        name = stack.pop()
        parts = name.split(".")
        for i in range(1, len(parts) + 1):  # the module and its parent packages
            sub = ".".join(parts[:i])
            if sub in seen:
                continue
            f = _module_file(sub)
            if f is None:
                continue
            seen[sub] = f
            stack.extend(_imports(f, sub))
    return sorted(set(seen.values()))


def code_digest(*modules: str) -> dict[str, str]:
    """``{relative path: sha256}`` of the source files of :func:`code_closure`."""
    return files_digest(code_closure(*modules))


# --------------------------------------------------------------------------- keys
def data_files() -> list[Path]:
    """Project data files (not downloaded) that readers and the design loader read."""
    return [DATA_DIR / "measure_definitions.csv", DATA_DIR / "local_authorities.csv",
            DATA_DIR / "validation.yaml", DATA_DIR / "reference"]


def verified_manifest() -> list[dict[str, str]]:
    """Every manifest entry as recorded, after verifying (and if needed fetching) its file.

    Raises :class:`DataError` when a file cannot be fetched or does not match its sha256.
    """
    manifest = load_manifest()
    rows = []
    for sid, src in manifest.items():
        fetch(src)  # verifies the cached copy's sha256 (or fetches and verifies)
        rows.append(dict(id=sid, path=src.path, release=src.release,
                         release_date=src.release_date, sha256=src.sha256))
    return rows


@dataclass
class Key:
    """A step's key and the parts it was made from (kept to say what changed)."""

    value: str
    parts: dict[str, Any]

    @classmethod
    def of(cls, parts: dict[str, Any]) -> "Key":
        """The key whose value is the :func:`digest` of ``parts``."""
        return cls(digest(parts), parts)


def panel_key(manifest_rows: list[dict[str, str]] | None = None, *,
              child_level_dir: Path | None = None, strict: bool = False) -> Key:
    """Key of ``python -m analysis data``: what the panel depends on.

    In child-level mode (``child_level_dir``) the key also holds the sha256 of
    every child-level input file, the disclosure settings, the strictness and
    the child-level code; without it the key is the public one, unchanged.
    """
    rows = verified_manifest() if manifest_rows is None else manifest_rows
    parts = {"step": "panel", "sources": rows, "files": files_digest(data_files()),
             "code": code_digest("ingest.panel"), "libraries": library_versions()}
    if child_level_dir is not None:

        folder = Path(child_level_dir).resolve()
        parts["child_level"] = {
            "files": {f.relative_to(folder).as_posix(): file_sha256(f) for f in input_files(folder)},
            "disclosure": files_digest([DATA_DIR / "disclosure.yaml"]), "strict": strict,
            "rules": files_digest([DATA_DIR / "childlevel_outcomes.yaml"]),
            "code": code_digest("childlevel.pipeline")}
    return Key.of(parts)


def results_key(panel_path: Path, design_path: Path, outcomes: list[str] | None = None,
                specifications: list[str] | None = None) -> Key:
    """Key of ``python -m analysis results``: what the results depend on.

    The panel's bytes, the design, the code (and, in child-level mode, the
    child-level counts beside the panel; for a trial run of some specifications
    only, their names).
    """
    parts = {"step": "results", "panel": file_sha256(panel_path),
             "design": file_sha256(design_path), "files": files_digest(data_files()),
             "code": code_digest("run.study"), "libraries": library_versions(),
             "outcomes": sorted(outcomes) if outcomes else None}
    counts = Path(panel_path).parent / "childlevel_counts.csv"
    if counts.exists():  # absent in public mode, so the public key is unchanged
        parts["childlevel_counts"] = file_sha256(counts)
    if specifications is not None:  # absent for a full run, so its key is unchanged
        parts["specifications"] = sorted(specifications)
    return Key.of(parts)


def book_key(manifest_rows: list[dict[str, str]] | None = None) -> Key:
    """Key of the book: everything its chapters read, and the book's own sources."""
    rows = verified_manifest() if manifest_rows is None else manifest_rows
    return Key.of({
        "step": "book", "sources": rows,
        "results": files_digest([RESULTS_DIR / n for n in RESULT_OUTPUTS]),
        "published": files_digest([RESULTS_DIR / "published"]),
        "processed": files_digest(sorted(Path(PROCESSED_DIR).glob("*.csv"))),
        # the method chapter prints the child-level rules and the disclosure rules
        "data": files_digest([*data_files(), DESIGN_PATH, DATA_DIR / "childlevel_outcomes.yaml",
                              DATA_DIR / "disclosure.yaml", DATA_DIR / "simulations"]),
        "book": files_digest([ROOT / f for f in BOOK_FILES] + [ROOT / d for d in BOOK_DIRS]),
        "code": files_digest([PACKAGE_DIR]),
        "libraries": library_versions(),
    })


def read_stamp(path: Path) -> dict[str, Any]:
    """The key file at ``path`` as a dict (empty when missing or unreadable)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def write_stamp(path: Path, key: Key, **extra: Any) -> None:
    """Write a key file atomically (temporary file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"key": key.value, "built": dt.datetime.now().isoformat(timespec="seconds"),
            **extra, "parts": key.parts}
    fd, tmp = tempfile.mkstemp(prefix=".key-", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1, sort_keys=True)
    os.replace(tmp, path)


def changed_parts(old: dict[str, Any], new: Key) -> list[str]:
    """Readable list of what differs between a stored stamp and a new key."""
    before = old.get("parts") or {}
    out = []
    for name, value in new.parts.items():
        prev = before.get(name)
        if prev == value:
            continue
        if isinstance(value, dict) and isinstance(prev, dict):
            diff = sorted(k for k in set(value) | set(prev) if value.get(k) != prev.get(k))
            out.append(f"{name} ({', '.join(diff[:4])}{', ...' if len(diff) > 4 else ''})")
        elif name == "sources" and isinstance(prev, list):
            p = {r["id"]: r for r in prev}
            diff = sorted(r["id"] for r in value if p.get(r["id"]) != r)
            diff += sorted(set(p) - {r["id"] for r in value})
            out.append(f"data files ({', '.join(diff)})")
        else:
            out.append(name)
    return out


def _up_to_date(out_dir: Path, key: Key, outputs: Iterable[str], stamp: str = KEY_FILE) -> bool:
    return (read_stamp(out_dir / stamp).get("key") == key.value
            and all((out_dir / n).exists() for n in outputs))


# --------------------------------------------------------------------------- steps
def build_panel_files(out_dir: Path | None = None, progress: bool = True, *,
                      child_level_dir: Path | None = None, strict: bool = False,
                      child_level_inputs=None, reader_cache: ReaderCache | None = None) -> list[Path]:
    """Build the panel and write ``panel.csv``, ``measures.csv`` and companions.

    The readers' tables come from ``reader_cache`` where their files are unchanged
    (default: the :class:`ReaderCache` of ``out_dir``).

    With ``child_level_dir`` the child-level measures are merged in and the
    protected child-level tables written (:mod:`analysis.childlevel.pipeline`).
    The child-level returns are read and validated first
    (:func:`~analysis.childlevel.pipeline.read_and_validate`, unless
    ``child_level_inputs`` holds its result): a bad return stops the stage
    before the public build, and nothing is written.
    """
    if child_level_dir is not None and child_level_inputs is None:
        child_level_inputs = read_and_validate(Path(child_level_dir), strict=strict)
    out_dir = Path(out_dir) if out_dir else PROCESSED_DIR
    # via the module, so tests can replace it
    cache = reader_cache if reader_cache is not None else ReaderCache(reader_cache_dir(out_dir))
    build = panel_module.build_panel(progress=progress, reader_cache=cache)
    if child_level_dir is not None:
        add_child_level(build, Path(child_level_dir), strict=strict, inputs=child_level_inputs)
    written = panel_module.write_atomically(build.files, out_dir)
    write_measure_slices(out_dir)  # each measure's column, for the chapters (analysis.run.slices)
    return written


def ensure_panel(out_dir: Path | None = None, *, force: bool = False, echo=print,
                 child_level_dir: Path | str | None = None,
                 strict: bool = False) -> tuple[bool, list[Path]]:
    """Build the panel unless ``out_dir`` holds one made under the same key.

    ``child_level_dir`` (default ``$SOS_CHILDLEVEL_DIR``; unset: public mode)
    switches on child-level mode (:mod:`analysis.childlevel.pipeline`).
    Returns ``(built, written paths)``.
    """
    out_dir = Path(out_dir or PROCESSED_DIR)
    cl_dir = None
    if child_level_dir is not None or os.environ.get("SOS_CHILDLEVEL_DIR", "").strip():
        from analysis.childlevel.pipeline import childlevel_dir  # imports pandas: only in that mode

        cl_dir = childlevel_dir(child_level_dir)
    key = panel_key(child_level_dir=cl_dir, strict=strict)
    if not force and _up_to_date(out_dir, key, PANEL_OUTPUTS):
        echo(f"panel up to date ({_rel(out_dir)}: inputs unchanged, key {key.value[:12]})")
        return False, []
    old = read_stamp(out_dir / KEY_FILE)
    if old and not force:
        echo("panel inputs changed: " + "; ".join(changed_parts(old, key)))
    cl_inputs = None
    if cl_dir is not None:
        # Read and validate the returns before the public build: a bad one stops the
        # stage here, in a second or two, with out_dir (and its key) untouched.

        cl_inputs = read_and_validate(cl_dir, strict=strict)
    (out_dir / KEY_FILE).unlink(missing_ok=True)
    t0 = time.perf_counter()
    readers = ReaderCache(reader_cache_dir(out_dir), reuse=not force)
    written = build_panel_files(out_dir=out_dir, child_level_dir=cl_dir, strict=strict,
                                child_level_inputs=cl_inputs, reader_cache=readers)
    if cl_dir is None:  # public mode: no child-level table may be left from an earlier build
        for name in ("childlevel_published.csv", "childlevel_validation.csv",
                     "childlevel_counts.csv"):
            (out_dir / name).unlink(missing_ok=True)
    write_stamp(out_dir / KEY_FILE, key)
    if readers.hits + readers.misses:  # none when a test stands in for the public build
        echo(f"{readers.hits} of {readers.hits + readers.misses} source tables unchanged "
             f"(from the readers' cache), {readers.misses} read")
    echo(f"panel built in {time.perf_counter() - t0:.1f} s into {_rel(out_dir)}")
    return True, written


def ensure_results(panel_dir: Path | None = None, out_dir: Path | None = None, *,
                   design_path: Path | None = None, outcomes: list[str] | None = None,
                   workers: int | None = None, force: bool = False, use_run_cache: bool = True,
                   progress: bool = True, echo=print,
                   specifications: list[str] | None = None) -> tuple[bool, list[Path]]:
    """Run the study unless ``out_dir`` holds results made under the same key.

    Within a run of the study, runs whose inputs are unchanged come from the
    run cache ``out_dir/.runs`` (unless ``force`` or not ``use_run_cache``).
    ``outcomes`` and ``specifications`` restrict a trial run (tests); ``main``
    always runs.
    """
    panel_path = Path(panel_dir or PROCESSED_DIR) / "panel.csv"
    out_dir = Path(out_dir or RESULTS_DIR)
    design_path = Path(design_path or DESIGN_PATH)
    if not panel_path.exists():
        raise DataError("no panel: run `python -m analysis data` first", file=_rel(panel_path))
    key = results_key(panel_path, design_path, outcomes, specifications)
    if not force and _up_to_date(out_dir, key, RESULT_OUTPUTS):
        echo(f"results up to date ({_rel(out_dir)}: panel, design and code unchanged, "
             f"key {key.value[:12]})")
        return False, []
    old = read_stamp(out_dir / KEY_FILE)
    if old and not force:
        echo("results inputs changed: " + "; ".join(changed_parts(old, key)))

    cache = RunCache(out_dir / ".runs", design_path, reuse=not force) if use_run_cache else None
    t0 = time.perf_counter()
    results = run_study(panel_path, design_path, workers=workers, progress=progress,
                        outcomes=outcomes, specifications=specifications, cache=cache)
    if cache is not None:
        echo(f"{cache.hits} of {cache.hits + cache.misses} runs unchanged (from the run cache), "
             f"{cache.misses} computed")
    (out_dir / KEY_FILE).unlink(missing_ok=True)
    written = write_results(results, out_dir)
    write_stamp(out_dir / KEY_FILE, key, n_estimates=int(len(results.estimates)))
    echo(f"{len(results.estimates)} estimates in {time.perf_counter() - t0:.1f} s into {_rel(out_dir)}")
    return True, written


def reader_cache_dir(out_dir: Path) -> Path:
    """Folder of the readers' cache: ``$SOS_READER_CACHE``, else ``<out_dir>/.readers``."""
    return Path(os.environ.get("SOS_READER_CACHE", "").strip() or Path(out_dir) / ".readers")


class ReaderCache:
    """The tidy table of each reader of the panel, pickled under a key of what it read.

    A reader's key: its name; the ids of the manifest (a reader may pick its files
    from them); the manifest entry, sha256 included, of every source it fetched the
    last time it ran (``index.json`` records them); the project data files; the code
    of the data stage (``ingest``, ``core``) and the library versions. Each file is
    still fetched and verified against its sha256 before an entry is used, so a
    corrupt or missing file stops the build as it would without the cache. A data
    update thus re-reads only the files that changed. Entries are written atomically;
    a reader keeps its newest :data:`KEEP` entries. With ``reuse=False`` (``--force``)
    every file is read again and the entries are replaced.
    """

    KEEP = 3

    def __init__(self, folder: Path, reuse: bool = True) -> None:
        self.folder = Path(folder)
        self.reuse = reuse
        self.manifest = load_manifest()
        self.common = digest({"files": files_digest(data_files()), "code": code_digest("ingest.panel"),
                              "libraries": library_versions()})
        self.hits = self.misses = 0

    def _index(self) -> dict[str, list[str]]:
        try:
            return json.loads((self.folder / "index.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def _key(self, name: str, ids: list[str], manifest: dict) -> str:
        return digest({"common": self.common, "reader": name, "manifest": sorted(manifest),
                       "sources": [[sid, asdict(manifest[sid])] if sid in manifest else [sid]
                                   for sid in ids]})

    def __call__(self, name: str, fn, get) -> Any:
        """``fn(get)``, the tidy table of reader ``name``, from the cache when its inputs are unchanged."""
        manifest = self.manifest
        slug = hashlib.sha256(name.encode("utf-8")).hexdigest()[:16]
        ids = self._index().get(name) if self.reuse else None
        if ids is not None:
            for sid in ids:
                get(sid)  # fetch and verify, as the reader itself would
            path = self.folder / f"{slug}-{self._key(name, ids, manifest)}.pkl"
            try:
                table = pickle.loads(path.read_bytes())
                self.hits += 1
                return table
            except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
                pass  # no entry (or an unreadable one): read the files
        fetched: list[str] = []

        def recording(sid: str) -> Path:
            fetched.append(sid)
            return get(sid)

        table = fn(recording)
        self.misses += 1
        ids = list(dict.fromkeys(fetched))
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{slug}-{self._key(name, ids, manifest)}.pkl"
        write_bytes_atomically(path, pickle.dumps(table, protocol=pickle.HIGHEST_PROTOCOL))
        index = self._index()
        index[name] = ids
        write_bytes_atomically(self.folder / "index.json",
                               json.dumps(index, indent=1, sort_keys=True).encode("utf-8"))
        old = sorted(self.folder.glob(f"{slug}-*.pkl"), key=lambda p: p.stat().st_mtime, reverse=True)
        for p in old[self.KEEP:]:
            p.unlink(missing_ok=True)
        return table


class RunCache:
    """Finished runs of the study, pickled under a key of exactly what each run reads.

    A run's key: the outcome, specification and pilot left out; the panel
    columns of :func:`analysis.run.study.run_columns` (which :func:`run_one` is
    restricted to), hashed with their values, dtypes, row index and row order
    (each column hashed once per panel, as many runs read it); the design
    file; the project data files; the study code and the library versions.
    After a save, entries not used by the last run are deleted. With
    ``reuse=False`` nothing is loaded (every run is computed) but the runs are saved.
    """

    def __init__(self, folder: Path, design_path: Path, reuse: bool = True) -> None:
        self.folder = Path(folder)
        self.reuse = reuse
        self.common = digest({"design": file_sha256(design_path), "files": files_digest(data_files()),
                              "code": code_digest("run.study"), "libraries": library_versions()})
        self.hits = self.misses = 0
        self._keys: dict[Any, str] = {}
        self._panel = None
        self._columns: dict[str, bytes] = {}

    def key(self, panel, design, run) -> str:
        """Hex key of one run (see the class docstring for what it covers)."""
        cols = run_columns(design, run)
        h = hashlib.sha256()
        h.update(self.common.encode())
        h.update(json.dumps([run.outcome, run.spec, run.left_out, cols,
                             [str(panel[c].dtype) for c in cols]]).encode())
        for c in cols:
            h.update(self._column_digest(panel, c))
        return h.hexdigest()

    def _column_digest(self, panel, column: str) -> bytes:
        """sha256 of one column's values with the row index, in row order; once per panel and column."""
        import pandas as pd

        if self._panel is not panel:
            self._panel, self._columns = panel, {}
        if column not in self._columns:
            hashed = pd.util.hash_pandas_object(panel[column], index=True).to_numpy()
            self._columns[column] = hashlib.sha256(hashed.tobytes()).digest()
        return self._columns[column]

    def _path(self, key: str) -> Path:
        return self.folder / f"{key}.pkl"

    def load(self, panel, design, runs) -> dict:
        """Cached outputs of ``runs``, ``{run: output}``, for those with a readable entry.

        Records each run's key for :meth:`save` and sets ``hits`` and
        ``misses``; with ``reuse=False`` nothing is loaded.
        """
        out = {}
        for run in runs:
            k = self._keys[run] = self.key(panel, design, run)
            p = self._path(k)
            if self.reuse and p.exists():
                try:
                    with open(p, "rb") as fh:
                        out[run] = pickle.load(fh)
                    continue
                except Exception:  # unreadable entry: recompute it
                    p.unlink(missing_ok=True)
        self.hits, self.misses = len(out), len(runs) - len(out)
        return out

    def save(self, panel, design, outputs: dict) -> None:
        """Pickle ``outputs`` (``{run: output}``) atomically; delete entries whose key :meth:`load` did not record."""
        self.folder.mkdir(parents=True, exist_ok=True)
        for run, out in outputs.items():
            k = self._keys.get(run) or self.key(panel, design, run)
            write_bytes_atomically(self._path(k), pickle.dumps(out, protocol=pickle.HIGHEST_PROTOCOL))
        keep = {f"{k}.pkl" for k in self._keys.values()}
        for p in self.folder.glob("*.pkl"):
            if p.name not in keep:
                p.unlink(missing_ok=True)


# --------------------------------------------------------------------------- the book
@contextlib.contextmanager
def build_lock(build_dir: Path = BUILD_DIR):
    """One book build at a time in this checkout (others wait)."""
    build_dir.mkdir(parents=True, exist_ok=True)
    with open(build_dir / ".lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print("waiting for another book build in this checkout to finish ...", flush=True)
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _sphinx_command(outdir: Path, doctreedir: Path) -> list[str]:
    """The HTML build as the jupyter-book CLI runs it, with our output and doctree folders."""
    return [sys.executable, "-m", "analysis.run.build", "_sphinx", str(outdir), str(doctreedir)]


def book_jobs() -> int:
    """How many chapters the book build reads (and executes) at once.

    ``SOS_BOOK_JOBS`` when set, else one per core this process may use: executing
    the chapters is most of a clean build, and each runs in its own kernel.
    """
    value = os.environ.get("SOS_BOOK_JOBS", "").strip()
    if value:
        try:
            return max(1, int(value))
        except ValueError:
            raise DataError(f"SOS_BOOK_JOBS must be a whole number, not {value!r}") from None
    return max(1, len(os.sched_getaffinity(0)))


def _run_sphinx(outdir: str, doctreedir: str) -> int:
    """Entry of the build subprocess: jupyter-book's own ``build_sphinx`` (``-W --keep-going``)."""
    from jupyter_book.sphinx import build_sphinx

    # The overrides the CLI (`jupyter-book build .`) passes for a book, so that the
    # environment in the doctrees is the one `make pdf`'s CLI build expects and reuses.
    src = Path.cwd().absolute()
    overrides = {"external_toc_path": src.joinpath("_toc.yml").as_posix(),
                 "latex_individualpages": False}
    result = build_sphinx(src, Path(outdir), use_external_toc=True, noconfig=True,
                          path_config=str(src / "_config.yml"), confoverrides=overrides,
                          doctreedir=Path(doctreedir), builder="html",
                          warningiserror=True, keep_going=True, jobs=book_jobs())
    if isinstance(result, Exception):
        print(f"book build failed: {result}", file=sys.stderr)
        return 1
    return int(result or 0)


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def _recover(build_dir: Path) -> None:
    """Tidy what an interrupted build left: restore a site and the environment set aside, drop staging folders.

    A copy of the doctrees and executed outputs in ``.prev-*`` is the last complete
    state (the success path deletes it before the swap), so it replaces whatever an
    interrupted build left half-updated.
    """
    html = build_dir / "html"
    for prev in sorted(build_dir.glob(".prev-*")):
        if not html.exists() and (prev / "html").is_dir():
            os.replace(prev / "html", html)
        for name in (".doctrees", "jupyter_execute"):
            if (prev / name).is_dir():
                _remove(build_dir / name)
                os.replace(prev / name, build_dir / name)
        _remove(prev)
    for stage in build_dir.glob(".html-new-*"):
        _remove(stage)


def safe_swap_build(run_build, *, build_dir: Path = BUILD_DIR, stamp: dict[str, str] | None = None,
                    keep: Iterable[str] = (".doctrees", "jupyter_execute"), reuse: bool = False,
                    log_dir: Path | None = None, echo=print) -> int:
    """Build a site into a staging folder and swap it into ``build_dir/html`` only on success.

    ``run_build(staging: Path, log: file) -> int`` writes the site into ``staging``
    and returns an exit status. The folders in ``keep`` (doctrees, executed
    outputs) are set aside first and restored when the build fails: moved aside
    (the build is clean) or, with ``reuse``, copied aside (the build updates them
    in place, re-reading only outdated chapters; the previous site is then copied
    into ``staging`` first, so that only the re-read chapters' pages are written,
    and :func:`prune_images` drops the images no page shows any more). On failure
    the previous ``html``
    is untouched, the failed outputs are deleted, and the log path is printed; the
    status is returned.
    """
    build_dir = Path(build_dir)
    log_dir = Path(log_dir or build_dir / "logs")
    log_dir.mkdir(parents=True, exist_ok=True)
    build_dir.mkdir(parents=True, exist_ok=True)
    _recover(build_dir)
    ts = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    log_path = log_dir / f"build-{ts}.log"
    staging = build_dir / f".html-new-{ts}"
    prev = build_dir / f".prev-{ts}"
    prev.mkdir()
    for name in keep:
        if (build_dir / name).is_dir() and reuse:
            shutil.copytree(build_dir / name, prev / name, symlinks=True)
        elif (build_dir / name).exists():
            os.replace(build_dir / name, prev / name)
    seeded = reuse and (build_dir / "html").is_dir()
    if seeded:  # Sphinx then writes only the pages of the chapters it reads again
        shutil.copytree(build_dir / "html", staging, symlinks=True)
    t0 = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as log:
        try:
            rc = run_build(staging, log)
        except Exception as exc:  # the builder itself broke: same handling as a failed build
            log.write(f"\n{type(exc).__name__}: {exc}\n")
            rc = 1
    ok = rc == 0 and (staging / "index.html").exists()
    if not ok:
        _remove(staging)
        for name in keep:
            _remove(build_dir / name)
            if (prev / name).exists():
                os.replace(prev / name, build_dir / name)
        _remove(prev)
        echo(f"book build FAILED (exit {rc or 1}) after {time.perf_counter() - t0:.0f} s; "
             f"the previous site in {_rel(build_dir / 'html')} is unchanged.\n"
             f"build log: {log_path}")
        return rc or 1
    if seeded:
        prune_images(staging)
    if stamp is not None:
        (staging / BOOK_KEY_FILE).write_text(json.dumps(stamp, indent=1, sort_keys=True),
                                             encoding="utf-8")
    for name in keep:  # the build's doctrees and outputs are now the ones to keep
        _remove(prev / name)
    html = build_dir / "html"
    if html.exists():
        os.replace(html, prev / "html")
    os.replace(staging, html)
    _remove(prev)
    echo(f"book built in {time.perf_counter() - t0:.0f} s into {_rel(html)} (log: {_rel(log_path)})")
    return 0


def prune_images(site: Path) -> list[str]:
    """Delete the images in ``site/_images`` that no page of ``site`` shows; return their names.

    A site updated in place (only the pages of re-read chapters rewritten) keeps
    the images of the pages' earlier versions; this drops them, so the site holds
    what a clean build would.
    """
    folder = Path(site) / "_images"
    if not folder.is_dir():
        return []
    shown: set[str] = set()
    for page in Path(site).rglob("*.html"):
        shown.update(_IMAGE_REF.findall(page.read_text(encoding="utf-8", errors="replace")))
    gone = sorted(p.name for p in folder.iterdir() if p.is_file() and p.name not in shown)
    for name in gone:
        (folder / name).unlink()
    return gone


_IMAGE_REF = re.compile(r"_images/([^\"'?#\s)<>]+)")


def _tee_subprocess(cmd: list[str], log, echo_output: bool = True) -> int:
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, bufsize=1, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    return _tee(proc, log, echo_output)


def _tee(proc: subprocess.Popen, log, echo_output: bool = True) -> int:
    assert proc.stdout is not None
    for line in proc.stdout:
        log.write(line)
        if echo_output:
            sys.stdout.write(line)
            sys.stdout.flush()
    return proc.wait()


#: Modules the book build imports before Sphinx starts: Sphinx, jupyter-book and the
#: book's extensions (about 2 s). :class:`EarlySphinx` imports them while the data and
#: results steps run; a name missing here is imported when Sphinx loads it.
SPHINX_PRELOAD = ("jupyter_book.sphinx", "sphinx.builders.html", "sphinx.search", "myst_nb",
                  "sphinx_book_theme", "sphinx_togglebutton", "sphinx_copybutton", "sphinx_comments",
                  "sphinxcontrib.bibtex", "sphinx_design", "sphinx_external_toc", "sphinx_multitoc_numbering",
                  "sphinx_jupyterbook_latex", "analysis.book.chapter_keys")


class EarlySphinx:
    """The book build's Sphinx process, started before the data and results steps.

    It imports :data:`SPHINX_PRELOAD` (about 2 s of a one-value rebuild, done on
    the core those single-process steps leave idle) and then waits for the
    folders to build into: :meth:`run` hands them over and returns the exit
    status; :meth:`cancel` ends it unused (the book is up to date, or a step
    failed). Nothing is read from the checkout before :meth:`run`.
    """

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "analysis.run.build", "_sphinx_early"], cwd=ROOT,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def run(self, outdir: Path, doctreedir: Path, log, echo_output: bool = True) -> int:
        """Build into ``outdir`` (as :func:`_run_sphinx`), copying its output to ``log``; the exit status."""
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(f"{outdir}\t{doctreedir}\n")
            self.proc.stdin.close()
        except (BrokenPipeError, OSError):  # it died early: an ordinary Sphinx process says why
            self.proc.wait()
            return _tee_subprocess(_sphinx_command(outdir, doctreedir), log, echo_output)
        return _tee(self.proc, log, echo_output)

    def cancel(self) -> None:
        """End the process unused (idempotent)."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None and not stream.closed:
                stream.close()


def _run_sphinx_early() -> int:
    """Entry of :class:`EarlySphinx`'s process: import, wait for ``OUTDIR<TAB>DOCTREEDIR``, build."""
    import importlib

    for name in SPHINX_PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:  # Sphinx reports a missing extension itself, when it loads it
            pass
    line = sys.stdin.readline().rstrip("\n")
    if not line:
        return 0
    outdir, doctreedir = line.split("\t")
    return _run_sphinx(outdir, doctreedir)


def build_book(*, force: bool = False, quiet: bool = False, echo=print,
               early: EarlySphinx | None = None) -> int:
    """Build ``_build/html`` safely, skipping the build when its key is unchanged.

    When the key changed, the Sphinx environment of the last build is reused, so
    only the chapters whose own key changed execute
    (:mod:`analysis.book.chapter_keys`); ``force`` builds clean, every chapter executing.

    In child-level mode (``childlevel_published.csv`` in ``data/processed``) every
    table the book reads is checked first
    (:func:`analysis.childlevel.pipeline.publishable_results`); a failure raises
    DataError (exit status 2) and nothing is built.

    ``early``: a Sphinx process started before (:class:`EarlySphinx`), used for
    the build and ended when there is none to do.
    """
    if (PROCESSED_DIR / "childlevel_published.csv").exists():
        from analysis.childlevel.pipeline import publishable_results  # imports pandas: only in that mode

        publishable_results(RESULTS_DIR, PROCESSED_DIR)
    key = book_key()
    html = HTML_DIR
    old = read_stamp(html / BOOK_KEY_FILE)
    if not force and old.get("key") == key.value and (html / "index.html").exists():
        echo(f"book up to date (_build/html: chapters and everything they read unchanged, "
             f"key {key.value[:12]})")
        if early is not None:
            early.cancel()
        return 0
    book_jobs()  # a bad SOS_BOOK_JOBS stops here, in one line, not inside the Sphinx process
    if force:  # a clean build draws every figure again (analysis.book.figure_memo)
        _remove(BUILD_DIR / ".figures")
    reuse = not force and (BUILD_DIR / ".doctrees" / "environment.pickle").exists()
    if old and not force:
        echo("book inputs changed: " + "; ".join(changed_parts(old, key)) +
             (" -> only chapters whose own inputs changed execute" if reuse else
              " -> clean build, every chapter executes"))

    def run(staging: Path, log) -> int:
        if early is not None:
            return early.run(staging, BUILD_DIR / ".doctrees", log, echo_output=not quiet)
        return _tee_subprocess(_sphinx_command(staging, BUILD_DIR / ".doctrees"), log,
                               echo_output=not quiet)

    with build_lock():
        stamp = {"key": key.value, "built": dt.datetime.now().isoformat(timespec="seconds"),
                 "parts": key.parts}
        return safe_swap_build(run, stamp=stamp, reuse=reuse, echo=echo)


def compile_package() -> None:
    """Write the package's bytecode (``__pycache__``) where it is missing or older than its source.

    Where the environment forbids writing it on import (``PYTHONDONTWRITEBYTECODE``,
    as on the project's machines), each of a build's processes, every chapter's
    kernel among them, would compile the package from source again (0.12 s a
    kernel); reading it needs no permission. Nothing is written when it is current.
    """
    compileall.compile_dir(str(PACKAGE_DIR), quiet=1)


def build_all(*, force: bool = False, quiet: bool = False, workers: int | None = None) -> int:
    """Data -> results -> book, each step skipped when its key is unchanged."""
    t0 = time.perf_counter()
    compile_package()
    early = EarlySphinx()  # imports Sphinx while the data and results steps run
    try:
        ensure_panel(force=force)
        ensure_results(force=force, workers=workers)
        rc = build_book(force=force, quiet=quiet, early=early)
    finally:
        early.cancel()
    print(f"make report: {time.perf_counter() - t0:.1f} s")
    return rc


def _exit_now(status: int) -> None:
    """End the Sphinx process as soon as its output is flushed.

    The interpreter's own shutdown, after a build that ran kernels, took 0.7 s
    (finalisers of the libraries Sphinx loaded); the build's files are closed by then.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


if __name__ == "__main__" and len(sys.argv) == 4 and sys.argv[1] == "_sphinx":
    _exit_now(_run_sphinx(sys.argv[2], sys.argv[3]))
if __name__ == "__main__" and sys.argv[1:] == ["_sphinx_early"]:
    _exit_now(_run_sphinx_early())
