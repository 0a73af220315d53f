"""Finding the files a command works on, reading them within bounds, and writing files so no
reader sees half of one."""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


def find_files(paths: Iterable[str | os.PathLike[str]], suffix: str) -> list[Path]:
    """Files as given, folders searched recursively for `*suffix`, sorted, each once.

    Raises FileNotFoundError naming the first path that does not exist.
    """
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob(f"*{suffix}") if p.is_file()))
        elif path.exists() or path.is_symlink():   # a dangling or looping link: its reader says
            found.append(path)
        else:
            raise FileNotFoundError(f"no such file or folder: {raw}")
    return list(dict.fromkeys(found))


def real_path(path: str | os.PathLike[str]) -> Path:
    """`path` absolute, its symbolic links followed as far as they go: `Path.resolve` without
    its RuntimeError on a link loop (Python before 3.13), which a hostile import, suite or
    folder can hold. Never raises for a path that does not exist or loops."""
    return Path(os.path.realpath(path))


def refuse_overwriting(output: str | os.PathLike[str],
                       inputs: Iterable[str | os.PathLike[str]], what: str) -> None:
    """Raise ValueError (its message says why) when writing `output` would replace one of the
    files the command read (the same file, through symbolic links too): `compile p.sentra -o
    p.sentra` must not replace the policy with its table. `what` names the output."""
    target = real_path(output)
    for given in inputs:
        if real_path(given) == target:
            raise ValueError(f"refusing to write the {what} to {os.fspath(output)}: it is "
                             f"{os.fspath(given)}, an input of this command")


MAX_SOURCE_BYTES = 8 * 1024 * 1024
"""The largest policy or suite file read (larger ones are refused before parsing, SL006)."""

_CHUNK = 1024 * 1024


class NotARegularFile(OSError):
    """A device, FIFO, socket or folder where a regular file is required; ``kind`` says which
    (``a FIFO``)."""

    def __init__(self, kind: str) -> None:
        super().__init__(f"not a regular file ({kind})")
        self.kind = kind


def read_bounded(path: str | os.PathLike[str], limit: int, *,
                 regular_only: bool = False) -> tuple[bytes, int | None]:
    """At most `limit + 1` bytes of the file, and its size when the system knows it.

    Reading one byte past the limit tells a too-large file apart without reading it all, so
    `/dev/zero` or a growing file cannot exhaust memory. With `regular_only`, anything but a
    regular file is refused before a byte is read (a FIFO is opened without blocking, so it
    cannot hang the reader). Raises OSError (IsADirectoryError, NotARegularFile, ...).
    """
    flags = os.O_RDONLY | (getattr(os, "O_NONBLOCK", 0) if regular_only else 0)
    handle = os.open(path, flags)
    try:
        info = os.fstat(handle)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(21, "it is a folder", os.fspath(path))
        regular = stat.S_ISREG(info.st_mode)
        if regular_only and not regular:
            raise NotARegularFile(_kind(info.st_mode))
        chunks: list[bytes] = []
        remaining = limit + 1
        while remaining > 0:
            chunk = os.read(handle, min(_CHUNK, remaining))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
    finally:
        os.close(handle)
    return b"".join(chunks), (info.st_size if regular and info.st_size else None)


def special_kind(path: str | os.PathLike[str]) -> str | None:
    """What `path` (its symbolic links followed) is when it exists and is neither a regular
    file nor a folder (``a FIFO``, ``a device``, ...); None otherwise. Nothing is opened."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    return None if stat.S_ISREG(mode) or stat.S_ISDIR(mode) else _kind(mode)


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a special file"


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text` so readers see the old file or the new one, never half
    (:func:`atomic_output`)."""
    with atomic_output(path) as out:
        out.write(text)


@contextmanager
def atomic_output(path: Path) -> Iterator[IO[str]]:
    """A text stream (UTF-8, line ends as written) that replaces `path` when the block ends
    without an error: readers see the old file or the new one, never half, and a write that
    fails (a full disk) leaves the old file as it was and no temporary file behind.

    The new file is written next to `path`, synced, then renamed over it. It keeps the old
    file's permissions; a new file gets the usual ones (0666 less the umask). A symbolic link
    is written through, as editors do: its target is replaced and the link stays.
    """
    path = real_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
