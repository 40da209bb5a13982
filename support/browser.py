"""Driving the page in Debian's headless Chromium (Playwright's own browser download does not work here):
one browser for a whole test session (`chromium`), a context of its own for each visitor, and what a
person does on the page: ask, wait for the answer, start a new chat, read the saved panel."""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import expect

from support.servers import free_port

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

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
PHONE = {"width": 390, "height": 844}


def require_chromium() -> None:
    """Skip the test where Chromium is missing; fail instead when REQUIRE_BROWSER is set (CI)."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("REQUIRE_BROWSER"):
            pytest.fail(f"Chromium not found at {CHROMIUM} (apt-get install -y chromium)")
        pytest.skip("Chromium is not installed (apt-get install -y chromium fonts-noto-color-emoji)")


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    """Headless Chromium, closed (with its Playwright driver) on leaving.

    Playwright's sync API marks its own event loop as the thread's running loop between calls, so
    no asyncio loop can run in this thread while the browser is open (tests/conftest.py runs the
    modules that use it after all others)."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def ask(page: Page, question: str) -> float:
    """Type `question` in the chat's message box and press Enter; when it was sent (perf_counter)."""
    box = page.locator("#chat-input textarea")
    box.fill(question)
    started = time.perf_counter()
    box.press("Enter")
    return started


def answered(page: Page, text: str, timeout_s: float = 30) -> None:
    """Until `text` shows on the page (the answer being waited for)."""
    page.get_by_text(text).first.wait_for(timeout=timeout_s * 1000)


def new_chat(page: Page, timeout_s: float = 30) -> None:
    """Once the turn on screen has ended (its save included: the message box is editable again),
    press New chat and wait until the chat is empty: a question typed before the server has
    started the new conversation still belongs to the one on screen. (Pressed while a turn is still
    being saved, New chat is undone by that save, which files the turn as a conversation of its own.)"""
    expect(page.locator("#chat-input textarea")).to_be_editable(timeout=timeout_s * 1000)
    page.get_by_role("button", name="New chat").click()
    page.locator("#agent-chat [data-testid=user]").first.wait_for(state="detached", timeout=timeout_s * 1000)


def saved_titles(page: Page) -> list[str]:
    """The titles the saved-conversations panel lists, newest first."""
    return [row.strip() for row in page.locator("#saved-list tbody tr").all_inner_texts()]


def wait_for_titles(page: Page, expected: list[str], timeout_s: float = 30, prefix: bool = False) -> None:
    """Until the panel lists `expected` (with `prefix`: first), newest first."""

    def listed() -> list[str]:
        titles = saved_titles(page)
        return titles[: len(expected)] if prefix else titles

    deadline = time.monotonic() + timeout_s
    while (titles := listed()) != expected and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    assert titles == expected, (
        f"the saved panel lists {saved_titles(page)}, not {expected} (after {timeout_s} s)"
    )


@contextlib.contextmanager
def request_recorder() -> Iterator[tuple[str, list[str]]]:
    """An HTTP server on another port of 127.0.0.1 that notes every request it receives (a page
    that leaks would fetch it): its base URL and the `METHOD path` lines received so far."""
    received: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            received.append(f"{self.command} {self.path}")
            self.send_response(204)
            self.end_headers()

        do_POST = do_GET

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
