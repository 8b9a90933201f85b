"""Manifest of source files and their fetch into the local cache.

Each file the analysis reads is listed in ``data/manifest.csv`` with its download
URL and sha256. :func:`fetch` resolves a file from the git-ignored cache
``data/raw/``, else from ``$SOS_DATA_MIRROR/<path>``, else from its URL (with
``$SOS_DATA_BASE_URL`` replacing scheme and host), verifies the checksum on a
temporary copy and only then moves it into the cache, so a good cached copy is
never replaced by a bad one.
"""
from __future__ import annotations

import csv
import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from analysis.core.errors import DataError
from analysis.core.errors import relative_path as _rel
from analysis.core.paths import DATA_DIR, MANIFEST_PATH, ROOT

MANIFEST_COLUMNS = ["id", "path", "title", "publisher", "release", "licence",
                    "url", "sha256", "bytes", "release_date"]


def cache_dir() -> Path:
    """Folder of verified raw files (``$SOS_DATA_CACHE`` or ``data/raw``)."""
    return Path(os.environ.get("SOS_DATA_CACHE", DATA_DIR / "raw"))


@dataclass(frozen=True)
class Source:
    """One manifest entry: a published file pinned by URL and sha256."""

    id: str
    path: str
    title: str
    publisher: str
    release: str
    licence: str
    url: str
    sha256: str
    bytes: int
    release_date: str = ""  # YYYY-MM of publication: where releases overlap, newest wins

    @property
    def cached_path(self) -> Path:
        """Where the verified file lives in :func:`cache_dir`."""
        return cache_dir() / self.path


def manifest_path() -> Path:
    """The manifest in use: ``$SOS_DATA_MANIFEST`` (tests, trial updates) or ``data/manifest.csv``."""
    return Path(os.environ.get("SOS_DATA_MANIFEST", MANIFEST_PATH))


def load_manifest(path: Path | None = None) -> dict[str, Source]:
    """Read the manifest into ``{id: Source}``, checking its columns."""
    path = manifest_path() if path is None else path
    if not path.exists():
        raise DataError("manifest not found", file=_rel(path))
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in MANIFEST_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"missing manifest column(s) {missing}", file=_rel(path))
        out: dict[str, Source] = {}
        for i, row in enumerate(reader, start=2):
            if row["id"] in out:
                raise DataError(f"duplicate id '{row['id']}'", file=_rel(path), row=i)
            try:
                size = int(row["bytes"])
            except ValueError:
                raise DataError(f"bytes is not an integer: {row['bytes']!r}",
                                file=_rel(path), column="bytes", row=i) from None
            out[row["id"]] = Source(**{**{k: row[k].strip() for k in MANIFEST_COLUMNS}, "bytes": size})
    return out


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def rewrite_url(url: str, base_url: str | None) -> str:
    """Replace scheme and host of ``url`` with those of ``base_url`` (keeping its path prefix)."""
    if not base_url:
        return url
    parts, base = urlsplit(url), urlsplit(base_url.rstrip("/"))
    return urlunsplit((base.scheme, base.netloc, base.path + parts.path, parts.query, ""))




def _verify_into_cache(src: Source, tmp: Path, origin: str) -> Path:
    got = sha256_of(tmp)
    if got != src.sha256:
        tmp.unlink(missing_ok=True)
        raise DataError(
            f"checksum mismatch from {origin}: expected sha256 {src.sha256[:12]}..., "
            f"got {got[:12]}...; the cached copy was left as it was",
            file=src.path,
            hint="restore the original file or update the manifest entry if DfE re-released it")
    dest = src.cached_path
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, dest)
    return dest


def _tmp_in_cache(src: Source) -> Path:
    d = src.cached_path.parent
    d.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=".part-", dir=d)
    os.close(fd)
    return Path(name)


def _download(src: Source, url: str, tmp: Path, progress: bool) -> None:
    import pooch  # HTTP download with a progress bar; hash checked by us afterwards

    downloader = pooch.HTTPDownloader(progressbar=progress, timeout=60)
    try:
        downloader(url, str(tmp), None)
    except Exception as exc:  # requests raises many types; one line for the user
        tmp.unlink(missing_ok=True)
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"could not download {url}: {reason}", file=src.path,
                        hint="check the network, or set SOS_DATA_MIRROR to a local copy") from None


def fetch(source: Source | str, *, progress: bool = False,
          manifest: dict[str, Source] | None = None) -> Path:
    """Return the verified cached path of a source, fetching it if needed.

    Parameters
    ----------
    source
        A :class:`Source` or its manifest id.
    progress
        Show a progress bar while downloading.

    Raises
    ------
    DataError
        The file is in neither cache nor mirror and cannot be downloaded, or its
        bytes do not match the manifest's sha256.
    """
    if isinstance(source, str):
        manifest = manifest or load_manifest()
        if source not in manifest:
            raise DataError(f"unknown source id '{source}'", file=_rel(manifest_path()))
        source = manifest[source]
    dest = source.cached_path
    if dest.exists() and sha256_of(dest) == source.sha256:
        return dest
    mirror = os.environ.get("SOS_DATA_MIRROR")
    if mirror:
        # A relative mirror path is taken from the repository root (as CI sets it),
        # so chapters executing in chapters/ find the same files.
        base = Path(mirror) if Path(mirror).is_absolute() else ROOT / mirror
        candidate = base / source.path
        if candidate.exists():
            tmp = _tmp_in_cache(source)
            shutil.copyfile(candidate, tmp)
            return _verify_into_cache(source, tmp, f"mirror {candidate}")
    url = rewrite_url(source.url, os.environ.get("SOS_DATA_BASE_URL"))
    if progress:
        print(f"downloading {source.id} from {url}")
    tmp = _tmp_in_cache(source)
    _download(source, url, tmp, progress)
    return _verify_into_cache(source, tmp, url)


def fetch_all(progress: bool = True) -> dict[str, Path]:
    """Fetch every manifest entry; returns ``{id: cached path}``."""
    manifest = load_manifest()
    return {sid: fetch(src, progress=progress) for sid, src in manifest.items()}
