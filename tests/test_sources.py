"""Fetching source files: cache, mirror, download, checksums, clear errors."""
from __future__ import annotations

import hashlib
import http.server
import os
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from analysis.core.errors import DataError
from analysis.core.paths import ROOT
from analysis.ingest.sources import Source, fetch, load_manifest, rewrite_url, sha256_of

PAYLOAD = b"time_period,value\n2025,1\n"


def _source(tmp_path: Path, payload: bytes = PAYLOAD,
            url: str = "https://example.org/owner/repo/abc/data/file.csv") -> Source:
    return Source(id="toy", path="owner__repo/data/file.csv", title="toy", publisher="DfE",
                  release="2025", licence="OGL-UK-3.0", url=url,
                  sha256=hashlib.sha256(payload).hexdigest(), bytes=len(payload))


@pytest.fixture
def env(tmp_path, monkeypatch):
    cache, mirror = tmp_path / "cache", tmp_path / "mirror"
    cache.mkdir(), mirror.mkdir()
    monkeypatch.setenv("SOS_DATA_CACHE", str(cache))
    monkeypatch.setenv("SOS_DATA_MIRROR", str(mirror))
    monkeypatch.delenv("SOS_DATA_BASE_URL", raising=False)
    return cache, mirror


def test_manifest_lists_every_file_with_url_and_sha256():
    manifest = load_manifest()
    assert len(manifest) >= 50
    for src in manifest.values():
        assert len(src.sha256) == 64 and src.url.startswith("https://")
        assert src.licence == "OGL-UK-3.0"
    # Ids the readers rely on.
    for sid in ("cin_c1", "cin_b1", "cpp_d3", "lait_2025", "lait_2024", "ons_pop_0_17"):
        assert sid in manifest


def test_mirror_copy_is_verified_and_cached(tmp_path, env):
    cache, mirror = env
    src = _source(tmp_path)
    (mirror / src.path).parent.mkdir(parents=True)
    (mirror / src.path).write_bytes(PAYLOAD)
    path = fetch(src)
    assert path == cache / src.path and path.read_bytes() == PAYLOAD
    # A second fetch uses the cache even when the mirror has gone.
    (mirror / src.path).unlink()
    assert fetch(src).read_bytes() == PAYLOAD


def test_missing_everywhere_is_one_line_error(tmp_path, env, monkeypatch):
    monkeypatch.setenv("SOS_DATA_BASE_URL", "http://127.0.0.1:9")  # discard port: refused
    src = _source(tmp_path)
    with pytest.raises(DataError) as err:
        fetch(src)
    msg = str(err.value)
    assert "\n" not in msg and src.path in msg and "could not download" in msg


def test_checksum_mismatch_keeps_good_cache(tmp_path, env):
    cache, mirror = env
    src = _source(tmp_path)
    (cache / src.path).parent.mkdir(parents=True)
    (cache / src.path).write_bytes(PAYLOAD)
    # The manifest now expects other bytes (a new release), the mirror holds bad ones.
    newer = replace(src, sha256=hashlib.sha256(b"new release").hexdigest())
    (mirror / src.path).parent.mkdir(parents=True)
    (mirror / src.path).write_bytes(b"corrupted")
    with pytest.raises(DataError, match="checksum mismatch"):
        fetch(newer)
    assert (cache / src.path).read_bytes() == PAYLOAD
    assert not [p for p in (cache / src.path).parent.iterdir() if p.name.startswith(".part-")]


def test_truncated_mirror_file_is_rejected(tmp_path, env):
    cache, mirror = env
    src = _source(tmp_path)
    (mirror / src.path).parent.mkdir(parents=True)
    (mirror / src.path).write_bytes(PAYLOAD[:10])
    with pytest.raises(DataError, match="checksum mismatch") as err:
        fetch(src)
    assert src.path in str(err.value)
    assert not (cache / src.path).exists()


def test_rewrite_url_replaces_scheme_and_host():
    url = "https://raw.githubusercontent.com/o/r/abc/data-raw/x.csv"
    assert rewrite_url(url, "http://127.0.0.1:8000") == "http://127.0.0.1:8000/o/r/abc/data-raw/x.csv"
    assert rewrite_url(url, "http://127.0.0.1:8000/base/") == "http://127.0.0.1:8000/base/o/r/abc/data-raw/x.csv"
    assert rewrite_url(url, None) == url


class _Server:
    """A local HTTP server on 127.0.0.1 serving files laid out by URL path."""

    def __init__(self, root: Path, corrupt: bool = False):
        root_str = str(root)

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *a, **kw):
                super().__init__(*a, directory=root_str, **kw)

            def log_message(self, *a):  # keep test output clean
                pass

            def copyfile(self, source, outputfile):
                data = source.read()
                outputfile.write(data[::-1] if corrupt else data)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def _served_copy(tmp_path: Path, sources: list[Source], real_source) -> Path:
    """Copy real mirror files into a folder laid out like their URLs' paths."""
    root = tmp_path / "www"
    for src in sources:
        dest = root / urlsplit(src.url).path.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(real_source(src.id).read_bytes())
    return root


@pytest.mark.integration
def test_download_from_local_server(tmp_path, monkeypatch, real_source):
    manifest = load_manifest()
    sources = [manifest["idaci_2019"], manifest["imd_2019"]]
    root = _served_copy(tmp_path, sources, real_source)
    cache = tmp_path / "cache"
    monkeypatch.setenv("SOS_DATA_CACHE", str(cache))
    monkeypatch.delenv("SOS_DATA_MIRROR", raising=False)
    with _Server(root) as server:
        monkeypatch.setenv("SOS_DATA_BASE_URL", server.url)
        for src in sources:
            path = fetch(src)
            assert path == cache / src.path
            assert sha256_of(path) == src.sha256


@pytest.mark.integration
def test_server_returning_wrong_bytes_is_rejected(tmp_path, monkeypatch, real_source):
    src = load_manifest()["idaci_2019"]
    root = _served_copy(tmp_path, [src], real_source)
    cache = tmp_path / "cache"
    monkeypatch.setenv("SOS_DATA_CACHE", str(cache))
    monkeypatch.delenv("SOS_DATA_MIRROR", raising=False)
    with _Server(root, corrupt=True) as server:
        monkeypatch.setenv("SOS_DATA_BASE_URL", server.url)
        with pytest.raises(DataError, match="checksum mismatch") as err:
            fetch(src)
    assert src.path in str(err.value)
    assert not (cache / src.path).exists()


def test_cli_fetch_failure_is_one_line_no_traceback(tmp_path):
    env = {**os.environ, "SOS_DATA_CACHE": str(tmp_path / "cache"),
           "SOS_DATA_MIRROR": str(tmp_path / "empty"), "SOS_DATA_BASE_URL": "http://127.0.0.1:9"}
    (tmp_path / "empty").mkdir()
    proc = subprocess.run([sys.executable, "-m", "analysis", "fetch"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "could not download" in errors[0]
