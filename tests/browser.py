"""Shared set-up for the headless-Chromium tests (Debian's chromium, driven by playwright)."""

from __future__ import annotations

import os
from pathlib import Path

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
