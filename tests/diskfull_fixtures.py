"""Real full filesystems for the disk-full probes (tests/stores/test_disk_full.py).

A :class:`Disk` is a folder whose writes can be made to fail and then succeed again, the way a
full disk fails them, by one of two real sources (no mock: the kernel refuses the writes):

* ``tmpfs``: a small tmpfs mounted on the folder (root only; the test is skipped, saying why,
  where mounting is not permitted). :meth:`Disk.fill` writes a ballast file until the
  filesystem has no byte left (``ENOSPC``); :meth:`Disk.free` deletes it.
* ``fsize``: no privileges needed. The writing process's ``RLIMIT_FSIZE`` soft limit is set to
  the size of the largest file in the folder, so no file can grow (a write past the limit fails
  with ``EFBIG``; ``SIGXFSZ`` is ignored, as Python ignores it at start), and raised back to
  free it. The limit is a process's: it is set on a child process (:meth:`Disk.preexec`,
  ``prlimit`` on a running one) or inside the probe subprocess that runs the checks.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

BALLAST = ".ballast"
DISK_KINDS = ("tmpfs", "fsize")
TMPFS_SIZE = "4m"
"""Room for a store, its WAL and some thousands of decisions before the ballast goes in."""


class Disk:
    """A folder whose writes fail as on a full disk between :meth:`fill` and :meth:`free`.

    ``pid``: the running process whose writes an ``fsize`` disk limits (0: this one; ``None``,
    as the fixture makes it: none, only the children started with :meth:`preexec`; never the
    test's own process, whose other files would fail too)."""

    def __init__(self, kind: str, path: Path, pid: int | None = None) -> None:
        self.kind = kind
        self.path = path
        self.pid = pid
        self.full = False
        self._edge = 0

    def fill(self, edge: Path | None = None) -> None:
        """From now on, writes that need more room fail. ``edge`` (``fsize``): the file whose
        size is the limit (by default the largest, so that no file can grow; a smaller one
        lets the larger ones be rewritten but not that one grow)."""
        if self.kind == "tmpfs":
            _write_ballast(self.path / BALLAST)
        else:
            self._edge = edge.stat().st_size if edge is not None else max(
                (entry.stat().st_size for entry in self.path.rglob("*") if entry.is_file()),
                default=0)
            self._limit(self._edge)
        self.full = True

    def free(self) -> None:
        """Room again (the ballast deleted; the file-size limit lifted)."""
        if self.kind == "tmpfs":
            (self.path / BALLAST).unlink(missing_ok=True)
        else:
            self._limit(None)
        self.full = False

    def preexec(self) -> None:
        """(In a child process, before it runs the command.) The child writes to this disk as
        it is now: an ``fsize`` disk that is full limits the child too."""
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        if self.kind == "fsize" and self.full:
            _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
            resource.setrlimit(resource.RLIMIT_FSIZE, (self._edge, hard))

    def _limit(self, size: int | None) -> None:
        if self.pid is None:
            return
        _, hard = resource.prlimit(self.pid, resource.RLIMIT_FSIZE)
        resource.prlimit(self.pid, resource.RLIMIT_FSIZE, (hard if size is None else size, hard))

    def files(self) -> dict[str, bytes]:
        """Every file under the folder but the ballast (by path relative to it), with its
        bytes."""
        return {str(entry.relative_to(self.path)): entry.read_bytes()
                for entry in sorted(self.path.rglob("*"))
                if entry.is_file() and entry.name != BALLAST}


def _write_ballast(path: Path) -> None:
    """Write ``path`` until the filesystem refuses another byte."""
    handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for size in (1 << 20, 1 << 16, 1 << 12, 1):
            chunk = b"\0" * size
            with contextlib.suppress(OSError):
                while True:
                    os.write(handle, chunk)
    finally:
        os.close(handle)


@contextlib.contextmanager
def tmpfs(path: Path, size: str = TMPFS_SIZE) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted on ``path`` (made), unmounted after; ``pytest.skip`` where
    mounting is not permitted."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("a full tmpfs needs root to mount it (the fsize source still runs)")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs",
                              str(path)], capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (the fsize source still runs): "
                    f"{mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


@pytest.fixture(params=DISK_KINDS)
def disk(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Disk]:
    """A :class:`Disk` of each kind, empty, with room; freed after the test."""
    kind = request.param
    folder = tmp_path / "disk"
    with contextlib.ExitStack() as stack:
        if kind == "tmpfs":
            stack.enter_context(tmpfs(folder))
        else:
            folder.mkdir()
        yield Disk(kind, folder)
