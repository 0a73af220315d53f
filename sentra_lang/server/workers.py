"""``serve --workers N``: N server processes on one port, supervised by the process started.

The supervisor binds the listening socket, then forks N workers. Each worker builds the whole
server itself (the app, its store connections, its event loop) and accepts connections on the
shared socket; the kernel spreads the connections over them. They share the store (a SQLite file
or a PostgreSQL database), which serialises their decisions; the log follower of each worker
sees what the others write (live stream, policy loads), and their ``/metrics`` counters are
summed through a folder they share (sentra_lang.server.metrics).

The supervisor restarts a worker that dies (a crash, a kill) and stops when told to
(``SIGTERM``, ``SIGINT``): it passes the signal on, and each worker finishes its requests
(uvicorn's graceful shutdown). A worker dies with the supervisor (``PR_SET_PDEATHSIG`` on
Linux). When workers keep dying at start (the database went away, say), it gives up and exits 1.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from typing import Any

QUICK_DEATH_SECONDS = 5.0
"""A worker that dies this soon after it was started counts as failing to start."""
MAX_FAILED_STARTS = 3
"""Failed starts in a row after which the supervisor gives up."""
BACKLOG = 2048

MakeApp = Callable[[str], Any]
"""``make_app(shared_folder)``: the ASGI app a worker serves."""


def listen(host: str, port: int) -> socket.socket:
    """The listening socket every worker accepts on."""
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host.strip("[]"), port))
    sock.listen(BACKLOG)
    return sock


class Supervisor:
    """Forks the workers, restarts the ones that die, stops them all on a signal."""

    def __init__(self, make_app: MakeApp, settings: dict[str, Any], workers: int) -> None:
        self.make_app = make_app
        self.settings = settings
        self.workers = workers
        self.children: dict[int, float] = {}
        """Worker process ids, with when each was started."""
        self.stopping = False
        self.failed_starts = 0

    def run(self, sock: socket.socket) -> int:
        shared = tempfile.mkdtemp(prefix="sentra-workers-")
        previous = {number: signal.signal(number, self._stop)
                    for number in (signal.SIGTERM, signal.SIGINT)}
        try:
            for _ in range(self.workers):
                self._fork(sock, shared)
            return self._supervise(sock, shared)
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)
            sock.close()
            shutil.rmtree(shared, ignore_errors=True)

    def _stop(self, number: int, frame: Any) -> None:
        self.stopping = True
        for pid in list(self.children):
            _signal(pid, signal.SIGTERM)

    def _supervise(self, sock: socket.socket, shared: str) -> int:
        while self.children:
            pid, status = os.waitpid(-1, 0)
            started = self.children.pop(pid, None)
            if started is None or self.stopping:
                continue
            quick = time.monotonic() - started < QUICK_DEATH_SECONDS
            self.failed_starts = self.failed_starts + 1 if quick else 0
            print(f"sentra-lang serve: worker {pid} {_how(status)}", file=sys.stderr)
            if self.failed_starts >= MAX_FAILED_STARTS:
                print("sentra-lang serve: error: workers keep dying at start; stopping",
                      file=sys.stderr)
                self._stop(signal.SIGTERM, None)
                continue
            self._fork(sock, shared)
        return 0 if self.failed_starts < MAX_FAILED_STARTS else 1

    def _fork(self, sock: socket.socket, shared: str) -> None:
        pid = os.fork()
        if pid:
            self.children[pid] = time.monotonic()
            return
        code = 1
        try:   # the worker: never returns into the supervisor's code
            for number in (signal.SIGTERM, signal.SIGINT):
                signal.signal(number, signal.SIG_DFL)
            _die_with_parent()
            import uvicorn

            app = self.make_app(shared)
            uvicorn.Server(uvicorn.Config(app, **self.settings)).run(sockets=[sock])
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)


def _signal(pid: int, number: int) -> None:
    with contextlib.suppress(ProcessLookupError):   # it has just exited
        os.kill(pid, number)


def _how(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"was killed by signal {os.WTERMSIG(status)}; starting another"
    return f"exited with status {os.waitstatus_to_exitcode(status)}; starting another"


def _die_with_parent() -> None:
    """Have the kernel send this worker SIGTERM when the supervisor dies (Linux only)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)   # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:   # the supervisor died before prctl: follow it
        os._exit(1)
