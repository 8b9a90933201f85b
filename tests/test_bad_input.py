"""Bad input to `python -m analysis data`: one clear line, exit 2, nothing overwritten.

Each case copies the real mirror (symlinks), alters the children-in-need
referrals file (C1) the way a broken or re-released file would be altered, and
points a copy of the manifest at it (updating the sha256 when the case is about
content rather than integrity).
"""
from __future__ import annotations

import csv
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from analysis.core.paths import ROOT
from analysis.ingest.sources import MANIFEST_PATH, load_manifest

pytestmark = pytest.mark.integration

C1 = "cin_c1"


def _brent_2025(lines: list[str]) -> int:
    return next(i for i, line in enumerate(lines) if line.startswith("2025,") and ",304,E09000005," in line)


def _rename_column(lines):
    lines[0] = lines[0].replace("rereferral_percent", "rereferral_pc")
    return lines, "rereferral_percent", None


def _duplicate_row(lines):
    i = _brent_2025(lines)
    lines.insert(i + 1, lines[i])
    return lines, "duplicate", f"row {i + 2}"


def _unknown_token(lines):
    i = _brent_2025(lines)
    header = lines[0].split(",")
    cells = lines[i].split(",")
    cells[header.index("rereferral_percent")] = "abc"
    lines[i] = ",".join(cells)
    return lines, "'abc'", f"row {i + 1}"


def _unknown_la(lines):
    i = _brent_2025(lines)
    lines[i] = lines[i].replace(",304,E09000005,", ",999,E09999999,")
    return lines, "unknown LA code", f"row {i + 1}"


def _pct_over_100(lines):
    i = _brent_2025(lines)
    header = lines[0].split(",")
    cells = lines[i].split(",")
    cells[header.index("rereferral_percent")] = "150.2"
    lines[i] = ",".join(cells)
    return lines, "outside 0-100", f"row {i + 1}"


def _setup(tmp_path: Path, real_source, edit=None, *, keep_sha=False, drop=False, truncate=False):
    manifest = load_manifest()
    mirror = tmp_path / "mirror"
    for src in manifest.values():
        dest = mirror / src.path
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(real_source(src.id), dest)
    target = mirror / manifest[C1].path
    expect = None
    rows = list(csv.DictReader(open(MANIFEST_PATH, newline="", encoding="utf-8")))
    if drop or truncate or edit:
        text = target.read_bytes()
        target.unlink()
        if truncate:
            target.write_bytes(text[: len(text) // 2])
        elif edit:
            lines = text.decode("utf-8").split("\n")
            lines, *expect = edit(lines)
            target.write_bytes("\n".join(lines).encode("utf-8"))
            if not keep_sha:
                for r in rows:
                    if r["id"] == C1:
                        r["sha256"] = hashlib.sha256(target.read_bytes()).hexdigest()
    manifest_copy = tmp_path / "manifest.csv"
    with open(manifest_copy, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0].keys()), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    out = tmp_path / "out"
    out.mkdir()
    (out / "panel.csv").write_text("last good panel\n")
    env = {**os.environ, "SOS_DATA_MIRROR": str(mirror), "SOS_DATA_CACHE": str(tmp_path / "cache"),
           "SOS_DATA_MANIFEST": str(manifest_copy), "SOS_DATA_BASE_URL": "http://127.0.0.1:9"}
    return env, out, manifest[C1].path, expect


def _run(env, out):
    return subprocess.run([sys.executable, "-m", "analysis", "data", "--out", str(out)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)


def _assert_clean_failure(proc, out, *needles):
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.strip().splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    for n in needles:
        if n:
            assert n in errors[0], errors[0]
    assert (out / "panel.csv").read_text() == "last good panel\n"
    assert sorted(p.name for p in out.iterdir()) == ["panel.csv"]


def test_missing_file(tmp_path, real_source):
    env, out, path, _ = _setup(tmp_path, real_source, drop=True)
    (Path(env["SOS_DATA_MIRROR"]) / path).unlink(missing_ok=True)
    _assert_clean_failure(_run(env, out), out, path, "could not download")


def test_checksum_mismatch(tmp_path, real_source):
    env, out, path, _ = _setup(tmp_path, real_source, edit=_pct_over_100, keep_sha=True)
    _assert_clean_failure(_run(env, out), out, path, "checksum mismatch")


def test_truncated_file(tmp_path, real_source):
    env, out, path, _ = _setup(tmp_path, real_source, truncate=True)
    _assert_clean_failure(_run(env, out), out, path, "checksum mismatch")


@pytest.mark.parametrize("edit", [_rename_column, _duplicate_row, _unknown_token, _unknown_la, _pct_over_100],
                         ids=["renamed-column", "duplicate-la-year", "unknown-token", "unknown-la", "pct-over-100"])
def test_content_errors_name_file_column_row(tmp_path, real_source, edit):
    env, out, path, expect = _setup(tmp_path, real_source, edit=edit)
    _assert_clean_failure(_run(env, out), out, path, *expect)
