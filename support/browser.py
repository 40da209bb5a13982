"""Driving the page in Debian's headless Chromium (Playwright's own browser download does not work here)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 900}


def require_chromium() -> None:
    """Skip the test where Chromium is missing; fail instead when REQUIRE_BROWSER is set (CI)."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("REQUIRE_BROWSER"):
            pytest.fail(f"Chromium not found at {CHROMIUM} (apt-get install -y chromium)")
        pytest.skip("Chromium is not installed (apt-get install -y chromium fonts-noto-color-emoji)")


def ask(page, question: str) -> float:
    """Type `question` in the chat's textbox and press Enter; when it was sent (perf_counter)."""
    box = page.get_by_role("textbox").first
    box.fill(question)
    started = time.perf_counter()
    box.press("Enter")
    return started
