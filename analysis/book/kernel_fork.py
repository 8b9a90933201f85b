"""Chapter kernels forked from a process that has already imported the kernel's libraries.

Every chapter executes in a kernel of its own (myst-nb, nbclient), and a fresh
kernel process spends about 1.3 s importing ipykernel, pandas and matplotlib
before the chapter's first cell runs: with twenty chapters that is most of an
incremental build. During a book build (:mod:`analysis.book.chapter_keys`) a
**fork server** imports them once; the build's kernelspec ``python3`` starts
:func:`launch` instead of ``ipykernel_launcher``, which asks the server for a
kernel: the server forks, and the child becomes the kernel (``IPKernelApp``) with
the launcher's arguments, environment, working folder and standard streams.
Each chapter still has a process of its own, started from a state in which no
cell has run and no ``analysis`` module is imported (so the chapter's reads and
imports are recorded as before, :mod:`analysis.book.chapter_reads`).

The launcher stays alive while its kernel runs, as the process jupyter_client
manages: a signal it receives is passed on to the kernel, and when the launcher
dies the kernel ends too (it watches the connection to the launcher). Without a
server (``SOS_KERNEL_FORKSERVER`` unset or not answering) the launcher becomes
an ordinary ``ipykernel_launcher``.

This module imports only the standard library at the top: the launcher is a
Python process of its own and must start in a few milliseconds.
"""
from __future__ import annotations

import array
import json
import os
import signal
import socket
import sys
import threading
import time

#: Environment variable naming the fork server's socket.
SERVER_VAR = "SOS_KERNEL_FORKSERVER"
#: What the server imports before it forks (what every chapter kernel imports).
PRELOAD = ("ipykernel.kernelapp", "ipykernel.ipkernel", "ipykernel.zmqshell", "ipykernel.debugger", "IPython",
           "IPython.core.history", "numpy", "pandas", "matplotlib.pyplot", "matplotlib_inline.backend_inline",
           "yaml")
_FDS = (0, 1, 2)
#: Seconds a launcher waits for the server's socket to appear (the server has just been started).
START_WAIT = 2.0


def kernelspec(folder: str, python: str = sys.executable) -> str:
    """Write a kernelspec ``python3`` that starts :func:`launch` into ``folder/kernels``; return its folder.

    Point ``JUPYTER_PATH`` at ``folder`` so that kernels named ``python3`` start through the server.
    """
    spec = os.path.join(folder, "kernels", "python3")
    os.makedirs(spec, exist_ok=True)
    with open(os.path.join(spec, "kernel.json"), "w", encoding="utf-8") as fh:
        json.dump({"argv": [python, "-m", "analysis.book.kernel_fork", "launch", "-f", "{connection_file}"],
                   "display_name": "Python 3", "language": "python",
                   "metadata": {"debugger": False}}, fh)
    return spec


def _send(sock: socket.socket, obj: dict, fds: tuple[int, ...] = ()) -> None:
    data = json.dumps(obj).encode("utf-8")
    header = len(data).to_bytes(4, "big")
    if fds:
        sock.sendmsg([header + data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
    else:
        sock.sendall(header + data)


def _recv(sock: socket.socket, nfds: int = 0) -> tuple[dict, list[int]]:
    fds: list[int] = []
    chunks = b""
    size = None
    while size is None or len(chunks) < size + 4:
        if nfds and not fds:
            msg, ancdata, _, _ = sock.recvmsg(65536, socket.CMSG_SPACE(nfds * 4))
            for level, kind, data in ancdata:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    a = array.array("i")
                    a.frombytes(data[: len(data) - (len(data) % a.itemsize)])
                    fds.extend(a)
        else:
            msg = sock.recv(65536)
        if not msg:
            raise ConnectionError("closed")
        chunks += msg
        if size is None and len(chunks) >= 4:
            size = int.from_bytes(chunks[:4], "big")
    return json.loads(chunks[4:size + 4]), fds


# --------------------------------------------------------------------------- server
def serve(path: str) -> None:
    """Listen on the UNIX socket ``path``; fork a kernel for every launcher that connects.

    The socket is bound before the imports, so a launcher that connects early waits
    in the queue. Ends when its parent (the book build) ends.
    """
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(16)
    parent = os.getppid()
    # The kernel's matplotlib backend, set as ipykernel sets it, before matplotlib reads it.
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    # As jupyter_client sets it for a kernel: the debugger's import (ipykernel.debugger)
    # does not warn that Python's frozen modules hide breakpoints.
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    import importlib

    import analysis  # noqa: F401  (its one setting, the BLAS threads, precedes numpy, as in a kernel)

    for name in PRELOAD:
        importlib.import_module(name)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # kernels are reaped by the system
    listener.settimeout(1.0)
    while os.getppid() == parent:
        try:
            conn, _ = listener.accept()
        except socket.timeout:
            continue
        conn.settimeout(None)
        try:
            request, fds = _recv(conn, len(_FDS))
        except (ConnectionError, OSError, ValueError):
            conn.close()
            continue
        pid = os.fork()
        if pid == 0:  # the kernel
            listener.close()
            _become_kernel(conn, request, fds)
        conn.close()
        for fd in fds:
            os.close(fd)


def _become_kernel(conn: socket.socket, request: dict, fds: list[int]) -> None:
    """In the forked child: take the launcher's streams, environment and folder, then run the kernel."""
    code = 1
    try:
        for fd, target in zip(fds, _FDS):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = ["ipykernel_launcher", *request["argv"]]
        if sys.path and sys.path[0] in ("", os.getcwd()):
            sys.path[0] = request["cwd"]  # as `python -m ipykernel_launcher` started in that folder
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        _send(conn, {"pid": os.getpid()})

        def watch() -> None:  # the launcher gone (killed, or ended): so is the kernel
            try:
                conn.recv(1)
            finally:
                os._exit(1)

        threading.Thread(target=watch, daemon=True).start()
        from ipykernel.kernelapp import IPKernelApp

        # The kernel's parent is the server, not the launcher jupyter_client knows: no
        # parent polling (`watch` does that job) and no console banner, as when
        # jupyter_client starts ipykernel_launcher (parent_handle 1 means "none to poll").
        IPKernelApp.launch_instance(argv=["--IPKernelApp.parent_handle=1", *request["argv"]])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0
    except BaseException:  # the kernel failed to start: say why on its stderr
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


# --------------------------------------------------------------------------- launcher
def launch(argv: list[str]) -> int:
    """Start a kernel with ``argv`` (``-f CONNECTION_FILE``) through the server; wait until it ends."""
    path = os.environ.get(SERVER_VAR, "")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        if not path:
            raise OSError("no fork server")
        deadline = time.monotonic() + START_WAIT
        while not os.path.exists(path) and time.monotonic() < deadline:  # the server is starting
            time.sleep(0.02)
        sock.connect(path)
        _send(sock, {"argv": argv, "env": dict(os.environ), "cwd": os.getcwd()}, _FDS)
        reply, _ = _recv(sock)
    except (OSError, ConnectionError, ValueError):
        sock.close()
        os.execv(sys.executable, [sys.executable, "-m", "ipykernel_launcher", *argv])
    pid = int(reply["pid"])

    def forward(signum, frame) -> None:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass
        if signum == signal.SIGTERM:
            sys.exit(0)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(signum, forward)
    while True:  # the kernel closes its end when it exits
        try:
            if not sock.recv(1):
                return 0
        except InterruptedError:
            continue
        except OSError:
            return 0


def main(argv: list[str] | None = None) -> int:
    """``launch -f FILE`` (a kernel, through the server) or ``serve SOCKET`` (the server)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["serve"] and len(argv) == 2:
        serve(argv[1])
        return 0
    if argv[:1] == ["launch"]:
        return launch(argv[1:])
    print("usage: python -m analysis.book.kernel_fork (launch -f CONNECTION_FILE | serve SOCKET)",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
