"""A small Chrome DevTools Protocol client for the browser tests, standard library only.

``Chromium`` launches headless Chromium with ``--remote-debugging-port=0``, reads the DevTools
websocket address from its stderr ("DevTools listening on ws://..."), speaks CDP over a minimal
RFC 6455 websocket client (masked client frames, text frames, fragmented messages, 16- and 64-bit
lengths, ping/pong, close) and drives one page through a flattened target session::

    with Chromium() as browser:
        page = browser.new_page()
        page.navigate(url)
        page.wait_for("document.querySelector('table') !== null", timeout=5)
        page.screenshot(tmp_path / "page.png")

Nothing waits without a deadline: every read on the socket has a timeout, and a watchdog kills
the browser (its whole process group) after ``lifetime`` seconds, so a test can fail but never
hang. ``close()`` (also run by ``with`` and ``__del__``) ends the browser even when a test failed.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self
from urllib.parse import urlsplit

# ----------------------------------------------------------------------------- chromium

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--no-default-browser-check", "--mute-audio",
         "--remote-debugging-port=0")


def find_chromium() -> str | None:
    """Debian's `chromium` (or `chromium-browser`), or None when it is not installed."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


CHROMIUM = find_chromium()
SKIP_REASON = "chromium is not installed (apt-get install chromium; .ci/run installs it)"


class BrowserError(RuntimeError):
    """The browser or the protocol failed (a CDP error, a dead process, a closed socket)."""


class JavaScriptError(BrowserError):
    """An expression given to ``Page.evaluate`` threw."""


# ----------------------------------------------------------------------------- websocket

OP_CONTINUATION, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA
_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_MESSAGE = 256 * 1024 * 1024  # a full-page screenshot is a few MB of base64


@dataclass(frozen=True)
class Frame:
    fin: bool
    opcode: int
    payload: bytes
    masked: bool = False


def mask_bytes(payload: bytes, key: bytes) -> bytes:
    """XOR with the 4-byte key (its own inverse), fast for large payloads."""
    if len(key) != 4:
        raise ValueError("a masking key has 4 bytes")
    if not payload:
        return b""
    repeated = (key * (len(payload) // 4 + 1))[: len(payload)]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(repeated, "little")).to_bytes(
        len(payload), "little")


def encode_frame(opcode: int, payload: bytes, *, fin: bool = True, mask: bool = True,
                 mask_key: bytes | None = None) -> bytes:
    """One frame; clients mask every frame (RFC 6455 5.3), servers never do."""
    if opcode >= 0x8 and (len(payload) > 125 or not fin):
        raise ValueError("control frames are short and never fragmented")
    head = bytearray([(0x80 if fin else 0) | opcode])
    bit = 0x80 if mask else 0
    size = len(payload)
    if size <= 125:
        head.append(bit | size)
    elif size <= 0xFFFF:
        head.append(bit | 126)
        head += struct.pack("!H", size)
    else:
        head.append(bit | 127)
        head += struct.pack("!Q", size)
    if not mask:
        return bytes(head) + payload
    key = os.urandom(4) if mask_key is None else mask_key
    return bytes(head) + key + mask_bytes(payload, key)


def read_frame(read_exact: Callable[[int], bytes]) -> Frame:
    """One frame from ``read_exact(n)`` (which returns exactly n bytes or raises)."""
    first, second = read_exact(2)
    if first & 0x70:
        raise BrowserError("websocket frame with reserved bits set (no extension was agreed)")
    fin, opcode = bool(first & 0x80), first & 0x0F
    masked, size = bool(second & 0x80), second & 0x7F
    if size == 126:
        (size,) = struct.unpack("!H", read_exact(2))
    elif size == 127:
        (size,) = struct.unpack("!Q", read_exact(8))
    if size > MAX_MESSAGE:
        raise BrowserError(f"websocket frame of {size} bytes is too large")
    key = read_exact(4) if masked else b""
    payload = read_exact(size) if size else b""
    if masked:
        payload = mask_bytes(payload, key)
    return Frame(fin, opcode, payload, masked)


def decode_frame(data: bytes) -> tuple[Frame, int]:
    """The first frame of ``data`` and the number of bytes it took."""
    offset = 0

    def take(n: int) -> bytes:
        nonlocal offset
        if offset + n > len(data):
            raise EOFError("incomplete frame")
        chunk = data[offset:offset + n]
        offset += n
        return chunk

    frame = read_frame(take)
    return frame, offset


class WebSocket:
    """A blocking RFC 6455 client for ``ws://`` URLs: text messages, pings answered, close."""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        parts = urlsplit(url)
        if parts.scheme != "ws" or not parts.hostname:
            raise ValueError(f"not a ws:// URL: {url}")
        self.url = url
        self.sock = socket.create_connection((parts.hostname, parts.port or 80), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buffer = bytearray()
        self.closed = False
        try:
            self._handshake(parts, timeout)
        except BaseException:
            self.sock.close()
            raise

    @classmethod
    def from_socket(cls, sock: socket.socket) -> WebSocket:
        """A client over an already open socket, without a handshake (for tests)."""
        self = cls.__new__(cls)
        self.url, self.sock, self._buffer, self.closed = "", sock, bytearray(), False
        return self

    def _handshake(self, parts: Any, timeout: float) -> None:
        key = base64.b64encode(os.urandom(16)).decode()
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host = parts.hostname + (f":{parts.port}" if parts.port else "")
        request = (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
                   f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                   "Sec-WebSocket-Version: 13\r\n\r\n")
        self.sock.sendall(request.encode("ascii"))
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self._buffer:
            self._fill(deadline)
        head, _, rest = bytes(self._buffer).partition(b"\r\n\r\n")
        self._buffer = bytearray(rest)
        lines = head.decode("latin-1").split("\r\n")
        if not re.match(r"HTTP/1\.1 101\b", lines[0]):
            raise BrowserError(f"websocket handshake refused: {lines[0]}")
        headers = {k.strip().lower(): v.strip()
                   for k, _, v in (line.partition(":") for line in lines[1:])}
        accept = base64.b64encode(hashlib.sha1((key + _GUID).encode()).digest()).decode()
        if headers.get("sec-websocket-accept") != accept:
            raise BrowserError("websocket handshake: wrong Sec-WebSocket-Accept")

    def _fill(self, deadline: float | None) -> None:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("websocket read timed out")
            self.sock.settimeout(remaining)
        else:
            self.sock.settimeout(None)
        try:
            chunk = self.sock.recv(1 << 20)
        except TimeoutError as error:
            raise TimeoutError("websocket read timed out") from error
        if not chunk:
            self.closed = True
            raise BrowserError("websocket closed by the browser")
        self._buffer += chunk

    def _reader(self, deadline: float | None) -> Callable[[int], bytes]:
        def read_exact(n: int) -> bytes:
            while len(self._buffer) < n:
                self._fill(deadline)
            chunk = bytes(self._buffer[:n])
            del self._buffer[:n]
            return chunk
        return read_exact

    def send_frame(self, opcode: int, payload: bytes, *, fin: bool = True) -> None:
        self.sock.settimeout(10)
        self.sock.sendall(encode_frame(opcode, payload, fin=fin))

    def send_text(self, text: str) -> None:
        self.send_frame(OP_TEXT, text.encode("utf-8"))

    def recv_message(self, timeout: float | None = 10.0) -> tuple[int, bytes]:
        """The next data message (opcode, payload), reassembling fragments; pings answered.

        Waits at most ``timeout`` seconds for the whole message (None: no limit)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        read_exact = self._reader(deadline)
        opcode: int | None = None
        parts: list[bytes] = []
        size = 0
        while True:
            frame = read_frame(read_exact)
            if frame.opcode == OP_PING:
                self.send_frame(OP_PONG, frame.payload)
                continue
            if frame.opcode == OP_PONG:
                continue
            if frame.opcode == OP_CLOSE:
                with contextlib.suppress(OSError):
                    self.send_frame(OP_CLOSE, frame.payload[:2])
                self.closed = True
                code = struct.unpack("!H", frame.payload[:2])[0] if len(frame.payload) >= 2 else 1005
                raise BrowserError(f"websocket closed by the browser (code {code})")
            if frame.opcode == OP_CONTINUATION:
                if opcode is None:
                    raise BrowserError("continuation frame without a message to continue")
            elif frame.opcode in (OP_TEXT, OP_BINARY):
                if opcode is not None:
                    raise BrowserError("new message before the previous one ended")
                opcode = frame.opcode
            else:
                raise BrowserError(f"unknown websocket opcode {frame.opcode:#x}")
            parts.append(frame.payload)
            size += len(frame.payload)
            if size > MAX_MESSAGE:
                raise BrowserError("websocket message too large")
            if frame.fin:
                return opcode, b"".join(parts)

    def recv_text(self, timeout: float | None = 10.0) -> str:
        opcode, payload = self.recv_message(timeout)
        if opcode != OP_TEXT:
            raise BrowserError("expected a text message")
        return payload.decode("utf-8")

    def close(self) -> None:
        if not self.closed:
            with contextlib.suppress(OSError):
                self.send_frame(OP_CLOSE, struct.pack("!H", 1000))
        self.closed = True
        with contextlib.suppress(OSError):
            self.sock.close()


# ----------------------------------------------------------------------------- CDP

class Connection:
    """CDP over one websocket: commands answered by id, events kept per session for waiters."""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self.ws = WebSocket(url, timeout=timeout)
        self.timeout = timeout
        self._next = 0
        self.events: list[dict[str, Any]] = []
        self.on_event: list[Callable[[dict[str, Any]], None]] = []

    def send(self, method: str, params: dict[str, Any] | None = None, *,
             session: str | None = None, timeout: float | None = None) -> dict[str, Any]:
        self._next += 1
        ident = self._next
        message: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        self.ws.send_text(json.dumps(message))
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            reply = self._receive(deadline, f"the answer to {method}")
            if reply.get("id") == ident:
                if "error" in reply:
                    error = reply["error"]
                    raise BrowserError(f"{method}: {error.get('message')} {error.get('data', '')}")
                return dict(reply.get("result", {}))

    def _receive(self, deadline: float, what: str) -> dict[str, Any]:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no {what} in time")
        try:
            message = json.loads(self.ws.recv_text(remaining))
        except TimeoutError as error:
            raise TimeoutError(f"no {what} in time") from error
        if "method" in message and "id" not in message:
            self.events.append(message)
            for handler in list(self.on_event):
                handler(message)
        return dict(message)

    def wait_event(self, method: str, *, session: str | None = None, timeout: float = 10.0,
                   since: int = 0, predicate: Callable[[dict[str, Any]], bool] | None = None
                   ) -> dict[str, Any]:
        """The first event ``method`` (of ``session``) received at index >= ``since``."""
        deadline = time.monotonic() + timeout
        seen = since
        while True:
            for event in self.events[seen:]:
                if (event["method"] == method and event.get("sessionId") == session
                        and (predicate is None or predicate(event.get("params", {})))):
                    return event
            seen = len(self.events)
            self._receive(deadline, f"{method} event")

    def close(self) -> None:
        self.ws.close()


class Page:
    """One tab, attached with a flattened session: navigation, scripts, input, screenshots."""

    def __init__(self, connection: Connection, target: str, session: str) -> None:
        self.connection, self.target, self.session = connection, target, session
        self.dialogs: list[dict[str, Any]] = []
        self.console: list[str] = []
        self.errors: list[str] = []
        self.prompt_text = ""
        connection.on_event.append(self._event)
        self.send("Page.enable")
        self.send("Runtime.enable")

    def send(self, method: str, params: dict[str, Any] | None = None, *,
             timeout: float | None = None) -> dict[str, Any]:
        return self.connection.send(method, params, session=self.session, timeout=timeout)

    def _event(self, event: dict[str, Any]) -> None:
        if event.get("sessionId") != self.session:
            return
        params = event.get("params", {})
        method = event["method"]
        if method == "Page.javascriptDialogOpening":
            # a real alert/confirm/prompt would block every script: answer it so nothing hangs
            self.dialogs.append(params)
            message = {"id": -len(self.dialogs), "sessionId": self.session,
                       "method": "Page.handleJavaScriptDialog",
                       "params": {"accept": True, "promptText": self.prompt_text}}
            self.connection.ws.send_text(json.dumps(message))
        elif method == "Runtime.consoleAPICalled":
            text = " ".join(str(arg.get("value", arg.get("description", "")))
                            for arg in params.get("args", []))
            self.console.append(f"{params.get('type')}: {text}")
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            self.errors.append(str(details.get("exception", {}).get("description")
                                   or details.get("text")))

    # -- navigation and scripts

    def navigate(self, url: str, *, timeout: float = 15.0, wait: str = "load") -> None:
        """Go to ``url`` and wait for its load event (``wait="none"``: do not wait)."""
        since = len(self.connection.events)
        result = self.send("Page.navigate", {"url": url}, timeout=timeout)
        if result.get("errorText"):
            raise BrowserError(f"navigation to {url} failed: {result['errorText']}")
        if wait == "load":
            self.connection.wait_event("Page.loadEventFired", session=self.session,
                                       timeout=timeout, since=since)

    def evaluate(self, expression: str, *, timeout: float = 10.0, await_promise: bool = True
                 ) -> Any:
        """The value of a JavaScript expression (promises awaited, result returned by value)."""
        result = self.send("Runtime.evaluate", {
            "expression": expression, "awaitPromise": await_promise, "returnByValue": True,
            "userGesture": True, "timeout": int(timeout * 1000)}, timeout=timeout + 2)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            description = details.get("exception", {}).get("description") or details.get("text")
            raise JavaScriptError(f"{expression!r} threw: {description}")
        value = result.get("result", {})
        return value.get("value")

    def wait_for(self, expression: str, *, timeout: float = 10.0, interval: float = 0.1,
                 message: str | None = None) -> Any:
        """Poll ``expression`` until it is truthy and return its value; TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while True:
            remaining = deadline - time.monotonic()
            try:
                last = self.evaluate(expression, timeout=max(0.5, min(5.0, remaining)))
            except BrowserError as error:  # it threw, or the page navigated meanwhile
                if self.connection.ws.closed:
                    raise
                last = error
            else:
                if last:
                    return last
            if time.monotonic() + interval > deadline:
                hint = f" ({message})" if message else ""
                errors = f"; page errors: {self.errors[-3:]}" if self.errors else ""
                raise TimeoutError(f"timed out after {timeout}s waiting for {expression!r}{hint};"
                                   f" last value {last!r}{errors}")
            time.sleep(interval)

    # -- input

    def click(self, selector: str, *, timeout: float = 5.0) -> None:
        """A real mouse click in the middle of the first element matching ``selector``."""
        rect = self.wait_for(
            f"""(() => {{ const e = document.querySelector({json.dumps(selector)});
                 if (!e) return null; e.scrollIntoView({{block: 'center'}});
                 const r = e.getBoundingClientRect();
                 return r.width > 0 && r.height > 0 ? {{x: r.x + r.width / 2, y: r.y + r.height / 2}}
                                                    : null; }})()""",
            timeout=timeout, message=f"a visible {selector}")
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            params = {"type": kind, "x": rect["x"], "y": rect["y"]}
            if kind != "mouseMoved":
                params.update(button="left", clickCount=1)
            self.send("Input.dispatchMouseEvent", params)

    def focus(self, selector: str, *, timeout: float = 5.0) -> None:
        self.wait_for(f"""(() => {{ const e = document.querySelector({json.dumps(selector)});
                           if (!e) return false; e.focus(); return document.activeElement === e;
                           }})()""", timeout=timeout, message=f"focus on {selector}")

    def insert_text(self, text: str) -> None:
        """Text typed into the focused element, as an input method would commit it."""
        self.send("Input.insertText", {"text": text})

    def type_text(self, text: str) -> None:
        """Text typed into the focused element: inserted, its last character a real key press
        (pages that listen for `keyup`, as Material's search box does, see the typing)."""
        if len(text) > 1:
            self.insert_text(text[:-1])
        if text:
            self.press(text[-1])

    _KEYS: ClassVar[dict[str, tuple[int, str, str]]] = {"Enter": (13, "Enter", "\r"), "Escape": (27, "Escape", ""),
             "Tab": (9, "Tab", ""), "Backspace": (8, "Backspace", ""),
             "ArrowDown": (40, "ArrowDown", ""), "ArrowUp": (38, "ArrowUp", "")}

    def press(self, key: str) -> None:
        """One key press (keyDown, keyUp) of a named key or a single character."""
        if key in self._KEYS:
            code, name, text = self._KEYS[key]
        elif len(key) == 1:
            name = f"Key{key.upper()}" if key.isalpha() else f"Digit{key}" if key.isdigit() else ""
            code, text = (ord(key.upper()) if key.isalnum() and key.isascii() else 0), key
        else:
            raise ValueError(f"unknown key {key!r}")
        down = {"type": "keyDown", "key": key, "code": name, "windowsVirtualKeyCode": code,
                "nativeVirtualKeyCode": code}
        if text:
            down["text"] = text
        self.send("Input.dispatchKeyEvent", down)
        self.send("Input.dispatchKeyEvent", {"type": "keyUp", "key": key, "code": name,
                                             "windowsVirtualKeyCode": code,
                                             "nativeVirtualKeyCode": code})

    # -- output

    def screenshot(self, path: str | os.PathLike[str], *, full_page: bool = False) -> Path:
        """A PNG of the viewport (or of the whole page) written to ``path``."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            params["captureBeyondViewport"] = True
            metrics = self.send("Page.getLayoutMetrics")
            size = metrics.get("cssContentSize") or metrics["contentSize"]
            params["clip"] = {"x": 0, "y": 0, "width": size["width"],
                              "height": min(size["height"], 10_000), "scale": 1}
        data = self.send("Page.captureScreenshot", params, timeout=20)["data"]
        target = Path(path)
        target.write_bytes(base64.b64decode(data))
        return target


class Chromium:
    """Headless Chromium with a DevTools connection; always ``close()`` it (or use ``with``)."""

    def __init__(self, executable: str | None = None, *, width: int = 1280, height: int = 900,
                 timeout: float = 15.0, lifetime: float = 120.0,
                 extra_flags: tuple[str, ...] = ()) -> None:
        executable = executable or CHROMIUM
        if executable is None:
            raise BrowserError(SKIP_REASON)
        self.profile = Path(tempfile.mkdtemp(prefix="sentra-chromium-"))
        self.log_path = self.profile.parent / (self.profile.name + ".stderr")
        self.connection: Connection | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self._closed = threading.Event()
        command = [executable, *FLAGS, f"--user-data-dir={self.profile}",
                   f"--window-size={width},{height}", *extra_flags, "about:blank"]
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in close()
        try:
            self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL,
                                            stdout=subprocess.DEVNULL, stderr=self._log,
                                            start_new_session=True)
            self._watchdog = threading.Timer(lifetime, self._kill)
            self._watchdog.daemon = True
            self._watchdog.start()
            self.ws_url = self._devtools_url(timeout)
            self.connection = Connection(self.ws_url, timeout=timeout)
        except BaseException:
            self.close()
            raise

    def _devtools_url(self, timeout: float) -> str:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(rb"DevTools listening on (ws://\S+)", self.log_path.read_bytes())
            if found:
                return found.group(1).decode()
            if self.process.poll() is not None:
                raise BrowserError(f"chromium exited with {self.process.returncode}: "
                                   f"{self.stderr()[-2000:]}")
            time.sleep(0.05)
        raise BrowserError(f"chromium printed no DevTools address in {timeout}s: "
                           f"{self.stderr()[-2000:]}")

    def stderr(self) -> str:
        try:
            return self.log_path.read_text("utf-8", errors="replace")
        except OSError:
            return ""

    def new_page(self, url: str = "about:blank") -> Page:
        assert self.connection is not None
        target = self.connection.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.connection.send("Target.attachToTarget",
                                       {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self.connection, target, session)
        if url != "about:blank":
            page.navigate(url)
        return page

    def _kill(self) -> None:
        """SIGKILL to the browser's process group (it was started in a session of its own)."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)

    def close(self) -> None:
        """Browser.close, then SIGTERM/SIGKILL if it lingers; the temp profile removed."""
        if self._closed.is_set():
            return
        self._closed.set()
        watchdog = getattr(self, "_watchdog", None)
        if watchdog is not None:
            watchdog.cancel()
        if self.connection is not None:
            with contextlib.suppress(Exception):
                self.connection.ws.send_text(json.dumps({"id": 0, "method": "Browser.close"}))
            self.connection.close()
        process = self.process
        if process is not None and process.poll() is None:
            try:
                process.wait(timeout=3)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=3)
                except subprocess.TimeoutExpired:
                    self._kill()
        if process is not None:
            # helpers (renderer, zygote) left in the group after the browser exited
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            self._log.close()
        shutil.rmtree(self.profile, ignore_errors=True)
        with contextlib.suppress(OSError):
            self.log_path.unlink()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()


@contextlib.contextmanager
def open_page(url: str | None = None, **options: Any) -> Iterator[Page]:
    """A fresh browser with one page (at ``url`` when given), closed afterwards whatever happens."""
    with Chromium(**options) as browser:
        page = browser.new_page()
        if url is not None:
            page.navigate(url)
        yield page
