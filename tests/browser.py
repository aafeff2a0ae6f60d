"""Shared set-up for the headless-Chromium tests (Debian's chromium, driven by playwright)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

CHROMIUM = Path("/usr/bin/chromium")

# WebGL without a GPU: ANGLE on SwiftShader; --enable-unsafe-swiftshader is required since
# Chrome 137 for the software fallback. The networking flags keep Chromium from calling home on
# this machine's closed network.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--autoplay-policy=no-user-gesture-required",
    "--mute-audio",
]


def require_chromium() -> None:
    """Skip the calling test module without Chromium, unless CI demands the browser."""
    if CHROMIUM.exists():
        return
    if os.environ.get("ARENA_REQUIRE_BROWSER") == "1":
        pytest.fail("ARENA_REQUIRE_BROWSER=1 but /usr/bin/chromium is missing", pytrace=False)
    pytest.skip("headless chromium not installed at /usr/bin/chromium", allow_module_level=True)


def watch_page(page: Any) -> list[str]:
    """Collect what a healthy page never does: JS errors, console errors, requests to another
    host, 4xx/5xx answers. Tests assert the returned list is empty at the end."""
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on(
        "console",
        lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None,
    )

    def check_host(request: Any) -> None:
        host = urlparse(request.url).hostname
        if request.url.startswith(("http:", "https:")) and host not in ("localhost", "127.0.0.1"):
            problems.append(f"request to another host: {request.url}")

    page.on("request", check_host)
    page.on(
        "response",
        lambda r: problems.append(f"HTTP {r.status} for {r.url}") if r.status >= 400 else None,
    )
    return problems


@contextmanager
def chromium() -> Iterator[Any]:
    """Debian's headless Chromium under playwright (never a downloaded browser build)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()
