"""A progress line on stderr for long runs: redrawn in place on a terminal, or (when asked for
with a flag) printed at most once a second. Never written to stdout, so machine formats stay
clean."""

from __future__ import annotations

import time
from typing import TextIO


class ProgressLine:
    def __init__(self, stream: TextIO, *, force: bool = False, interval: float | None = None) -> None:
        self.stream = stream
        self.terminal = stream.isatty()
        self.enabled = force or self.terminal
        self.interval = interval if interval is not None else (0.1 if self.terminal else 1.0)
        self._last = 0.0
        self._shown = False

    def show(self, text: str) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < self.interval:
            return
        self._last = now
        if self.terminal:
            self.stream.write(f"\r{text}\x1b[K")
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
        self._shown = True

    def clear(self) -> None:
        if self._shown and self.terminal:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
        self._shown = False
