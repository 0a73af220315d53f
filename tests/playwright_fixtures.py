"""Headless Chromium for the browser tests, driven by Playwright's sync API.

One browser per test session (the tests that use it run last), launched from the machine's own Chromium (Debian's
``/usr/bin/chromium``, or ``$SENTRA_CHROMIUM``) through ``executable_path``: Playwright's browser
download is never used, so ``playwright install`` is never needed. Each test opens pages in
fresh contexts of its own (cookies, storage, viewport) with ``pages.open(url, width=...)``;
uncaught page errors and console errors are collected per page (``pages.errors(page)``).

Without Chromium or the ``playwright`` package the browser tests skip, saying which is missing;
in CI (``CI`` set to anything but ``false``/``0``) they fail instead: CI must run them.

Screenshots are PNG files in the test's ``tmp_path``; :func:`png_region_stats` decodes one in
the browser (an ``<img>`` drawn on a canvas) so that a test can look at its pixels.
"""

from __future__ import annotations

import base64
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--disable-dev-shm-usage"]
"""The machine's network is closed: Chromium must not try its background connections."""
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def unavailable(reason: str) -> NoReturn:
    """Skip the browser tests locally; fail them in CI, where they must run."""
    if in_ci():
        pytest.fail(f"browser tests cannot run in CI: {reason}", pytrace=False)
    pytest.skip(reason)


def find_chromium() -> str | None:
    """``$SENTRA_CHROMIUM``, else Debian's ``chromium`` (or ``chromium-browser``) on PATH, else
    ``/usr/bin/chromium``; ``None`` when none is there."""
    given = os.environ.get("SENTRA_CHROMIUM")
    if given:
        return given if os.access(given, os.X_OK) else None
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests that use the browser run last, in their order. Playwright's sync API keeps an
    event loop running in the main thread while it is started, so ``asyncio.run`` would fail in
    any test run after the first browser test and before the session ends."""
    items.sort(key=lambda item: "browser" in getattr(item, "fixturenames", ()))


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """The session's headless Chromium (scrollbars shown, as a user sees them)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed: pip install -e '.[test]'")
    executable = find_chromium()
    if executable is None:
        unavailable("chromium is not installed: apt-get install chromium "
                    "(or set SENTRA_CHROMIUM to a Chromium binary)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable, args=CHROMIUM_FLAGS, headless=True,
            ignore_default_args=["--hide-scrollbars"], timeout=60_000)
        try:
            yield launched
        finally:
            launched.close()


class Pages:
    """Pages of one test, each in a context of its own, all closed when the test ends."""

    def __init__(self, browser: Browser) -> None:
        self.browser = browser
        self.contexts: list[BrowserContext] = []
        self._errors: dict[int, list[str]] = {}

    def open(self, url: str | None = None, *, width: int = 1400, height: int = 1000,
             javascript: bool = True, downloads: bool = False, wait: str = "load") -> Page:
        context = self.browser.new_context(viewport={"width": width, "height": height},
                                           java_script_enabled=javascript,
                                           accept_downloads=downloads, locale="en-US",
                                           timezone_id="UTC")
        context.set_default_timeout(10_000)
        self.contexts.append(context)
        page = context.new_page()
        errors = self._errors.setdefault(id(page), [])
        page.on("pageerror", lambda error: errors.append(f"page error: {error}"))
        page.on("console", lambda message: errors.append(f"console: {message.text}")
                if message.type == "error" else None)
        if url is not None:
            page.goto(url, wait_until=wait)  # type: ignore[arg-type]
        return page

    def errors(self, page: Page) -> list[str]:
        return list(self._errors.get(id(page), []))

    def close(self) -> None:
        for context in self.contexts:
            for page in context.pages:   # requests a test held unanswered are dropped first
                page.unroute_all(behavior="ignoreErrors")
            context.close()


@pytest.fixture
def pages(browser: Browser) -> Iterator[Pages]:
    opened = Pages(browser)
    try:
        yield opened
    finally:
        opened.close()


def screenshot(page: Page, path: Path, **options: Any) -> bytes:
    """Save a screenshot of ``page`` (or of ``options["element"]``) and check it is a PNG."""
    element = options.pop("element", None)
    data = (element or page).screenshot(path=str(path), **options)
    assert data[:8] == PNG_MAGIC, path
    return bytes(data)


def png_region_stats(pages: Pages, png: bytes, x: int, y: int, width: int, height: int,
                     ) -> dict[str, float]:
    """Pixels of a region of a PNG, decoded by the browser: image size, mean luminance (0-255)
    and the number of distinct colours in the region."""
    page = pages.open(width=200, height=200)
    encoded = base64.b64encode(png).decode("ascii")
    return dict(page.evaluate("""async ([data, x, y, w, h]) => {
        const image = new Image();
        image.src = "data:image/png;base64," + data;
        await image.decode();
        const canvas = document.createElement("canvas");
        canvas.width = image.width; canvas.height = image.height;
        const context = canvas.getContext("2d");
        context.drawImage(image, 0, 0);
        const pixels = context.getImageData(x, y, w, h).data;
        let sum = 0; const colours = new Set();
        for (let i = 0; i < pixels.length; i += 4) {
          sum += 0.2126 * pixels[i] + 0.7152 * pixels[i + 1] + 0.0722 * pixels[i + 2];
          colours.add((pixels[i] << 16) | (pixels[i + 1] << 8) | pixels[i + 2]);
        }
        return {width: image.width, height: image.height, luma: sum / (pixels.length / 4),
                colours: colours.size};
    }""", [encoded, x, y, width, height]))


OVERLAPS = """(selector) => {
  const boxes = [...document.querySelectorAll(selector)].filter((e) => e.offsetParent !== null)
    .map((e) => [e.id || e.className || e.tagName, e.getBoundingClientRect()]);
  const found = [];
  for (let i = 0; i < boxes.length; i += 1) for (let j = i + 1; j < boxes.length; j += 1) {
    const [a, r] = boxes[i], [b, s] = boxes[j];
    const w = Math.min(r.right, s.right) - Math.max(r.left, s.left);
    const h = Math.min(r.bottom, s.bottom) - Math.max(r.top, s.top);
    if (w > 0.5 && h > 0.5) found.push([a, b]);
  }
  return found;
}"""
"""Pairs of visible elements matching the selector whose boxes intersect."""

BROKEN_WORDS = """(selector) => {
  const top = (node, start, end) => { const range = document.createRange();
    range.setStart(node, start); range.setEnd(node, end);
    const rects = [...range.getClientRects()].filter((r) => r.width > 0);
    return rects.length ? Math.round(rects[0].top) : null; };
  const broken = [];
  for (const element of document.querySelectorAll(selector)) {
    const walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (const match of node.textContent.matchAll(/\\S+/g)) {
        const start = match.index, word = match[0];
        if (top(node, start, start + 1) === top(node, start + word.length - 1, start + word.length)) continue;
        for (let i = 1; i < word.length; i += 1) {
          const before = top(node, start + i - 1, start + i), here = top(node, start + i, start + i + 1);
          if (before !== here && word[i - 1] !== "-") { broken.push(word); break; }
        }
      }
    }
  }
  return broken;
}"""
"""Words (runs without white space) inside the selected elements that the browser broke across
lines anywhere but after a hyphen: an identifier (which has no hyphen) broken mid-word."""
