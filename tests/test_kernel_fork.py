"""Chapter kernels forked from a server (:mod:`analysis.book.kernel_fork`).

A real kernel through a real server: each kernel is a process of its own, forked
from the server, with the launcher's folder, environment and streams; an error in
a cell still fails the notebook; a kernel ends with its launcher; without a
server the launcher is an ordinary kernel.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest
from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from analysis.book import chapter_keys, kernel_fork

ROOT = Path(__file__).resolve().parent.parent


def _notebook(*sources: str):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def _run(nb, cwd: Path):
    NotebookClient(nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    return [o.get("text", "") for c in nb.cells for o in c.outputs]


@pytest.fixture
def server(tmp_path, monkeypatch):
    """A fork server and the kernelspec that uses it, as the book build sets them up."""
    kernel_fork.kernelspec(str(tmp_path / "jupyter"))
    sock = tmp_path / "k.sock"
    proc = subprocess.Popen([sys.executable, "-m", "analysis.book.kernel_fork", "serve", str(sock)],
                            cwd=ROOT)
    deadline = time.monotonic() + 60
    while not sock.exists() and time.monotonic() < deadline:  # listening (a build starts it seconds ahead)
        time.sleep(0.05)
    assert sock.exists()
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv(kernel_fork.SERVER_VAR, str(sock))
    yield proc
    proc.terminate()
    proc.wait(timeout=10)


def test_kernels_are_forked_from_the_server(server, tmp_path, monkeypatch):
    monkeypatch.setenv("SOS_TEST_MARK", "from the launcher")
    work = tmp_path / "chapter"
    work.mkdir()
    seen = []
    for _ in range(2):
        out = _run(_notebook("import os, sys\n"
                             "print(os.getpid(), os.getppid(), os.getcwd(), os.environ['SOS_TEST_MARK'])\n",
                             "print('analysis.book.chapters' in sys.modules, 'pandas' in sys.modules)"), work)
        pid, ppid, cwd, mark = out[0].split(maxsplit=3)
        seen.append(int(pid))
        assert int(ppid) == server.pid  # forked from the server
        assert cwd == str(work) and mark.strip() == "from the launcher"
        # pandas came with the fork; no module of the package was imported before the chapter's cells
        assert out[1].split() == ["False", "True"]
    assert len(set(seen)) == 2 and server.pid not in seen  # a process of its own per notebook


def test_an_error_in_a_cell_still_fails_the_notebook(server, tmp_path):
    with pytest.raises(CellExecutionError, match="ZeroDivisionError"):
        _run(_notebook("1 / 0"), tmp_path)


def test_a_kernel_ends_with_its_launcher(server):
    replies: list[dict] = []
    km = KernelManager(kernel_name="python3")
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        reply = kc.execute_interactive("import os; print(os.getpid())", timeout=30,
                                       output_hook=lambda msg: replies.append(msg))
        assert reply["content"]["status"] == "ok"
    finally:
        kc.stop_channels()
    pid = int(next(m["content"]["text"] for m in replies if m["msg_type"] == "stream"))
    km.provisioner.process.kill()  # the launcher dies without a word
    km.provisioner.process.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.1)
    assert not _alive(pid)
    km.cleanup_resources()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_without_a_server_the_launcher_is_an_ordinary_kernel(tmp_path, monkeypatch):
    kernel_fork.kernelspec(str(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv(kernel_fork.SERVER_VAR, str(tmp_path / "no-server.sock"))
    out = _run(_notebook("import os, sys; print(os.getppid(), sys.argv[0].endswith('ipykernel_launcher.py'))"),
               tmp_path)
    ppid, launcher = out[0].split()
    assert int(ppid) == os.getpid() and launcher == "True"  # the launcher became the kernel (exec)


def test_the_build_can_keep_ordinary_kernels(tmp_path, monkeypatch):
    """``SOS_KERNEL_FORK=0``: no server, and the kernelspec is not replaced."""
    monkeypatch.setenv("SOS_KERNEL_FORK", "0")
    monkeypatch.delenv("JUPYTER_PATH", raising=False)
    app = SimpleNamespace()
    chapter_keys._start_fork_server(app, tmp_path)
    assert app._sos_fork_server is None
    assert "JUPYTER_PATH" not in os.environ and not (tmp_path / "jupyter").exists()


def test_the_quick_handshake_still_gets_every_output(server, tmp_path, monkeypatch):
    """With the shorter IOPub waits (``chapter_keys._quick_kernel_handshake``) no output is lost."""
    monkeypatch.setattr(AsyncKernelClient, "wait_for_ready", AsyncKernelClient.wait_for_ready)
    chapter_keys._quick_kernel_handshake()
    chapter_keys._quick_kernel_handshake()  # once only
    assert not hasattr(AsyncKernelClient.wait_for_ready.__wrapped__, "__wrapped__")
    for _ in range(3):
        out = _run(_notebook("print('first')", "import sys; print('second', file=sys.stdout)", "print(6 * 7)"),
                   tmp_path)
        assert out == ["first\n", "second\n", "42\n"]
