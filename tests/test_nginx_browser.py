"""The page in Chromium through `python -m deploy.workers` (nginx in front of two workers): it loads
with nothing blocked, and a worker that goes away mid-answer never leaves a silent cut."""

import json
import os
import shutil
import signal
import sys
import urllib.request
from collections.abc import Iterator

import psutil
import pytest
from playwright.sync_api import expect

from deploy.processes import PROJECT_ROOT, ServedProcess
from support.browser import ask
from support.servers import MANY_VISITORS_ENV, app_environment, free_ports
from ui.lifecycle import CUT_SHORT

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.timeout(300),  # cold starts of two workers and a restart, on a loaded machine
    pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed"),
]

QUESTION = "what is 1 + 2 + 3 + 4 + 5 + 6 + 7 + 8"
ANSWER = "= 36"
FOLLOW_UP = "times 2"
FOLLOW_UP_ANSWER = "36 * 2 ="  # the model saw the first turn
LOST_LINE = "⚠️ The connection to the server was lost; your question is back in the box — send it again."
STREAMING = 120_000  # ms: the first step shows while a cold worker warms up on a loaded machine


class Launcher:
    """`python -m deploy.workers` with two workers, its nginx's URL and its workers' ports."""

    def __init__(self, process: ServedProcess, port: int) -> None:
        self.process = process
        self.url = f"http://127.0.0.1:{port}/"
        self.worker_ports = [port + 1, port + 2]

    def busy_worker(self) -> int:
        """The port of the worker running a turn (the tests run one page at a time)."""
        for port in self.worker_ports:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as response:
                if json.load(response)["turns"]:
                    return port
        raise AssertionError("no worker is running a turn")

    def worker_pid(self, port: int) -> int:
        for child in psutil.Process(self.process.process.pid).children():
            if f"--port {port}" in " ".join(child.cmdline()):
                return child.pid
        raise AssertionError(f"no worker on :{port}")


@pytest.fixture(scope="module")
def launcher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Launcher]:
    port = free_ports(3)  # nginx's and its two workers'
    env = app_environment(
        **MANY_VISITORS_ENV,
        AGENT_SHUTDOWN_GRACE_S="3",
        AGENT_OFFLINE_TOKEN_DELAY_MS="150",  # answers take seconds: a signal lands mid-answer
        AGENT_DATA_DIR=str(tmp_path_factory.mktemp("data")),
    )
    process = ServedProcess([sys.executable, "-m", "deploy.workers", "--port", str(port)], env, PROJECT_ROOT)
    try:
        process.wait_for("workers behind nginx at", timeout=180)
        yield Launcher(process, port)
    finally:
        process.stop(timeout=30)


@pytest.fixture
def page(visitor, launcher):
    return visitor.new_page()


def test_the_page_its_assets_and_icons_load_through_nginx_with_nothing_blocked(page, launcher):
    page.add_init_script(
        "window.violations = [];"
        "document.addEventListener('securitypolicyviolation',"
        " (e) => window.violations.push(e.violatedDirective + ' ' + e.blockedURI));"
    )
    problems: list[str] = []
    page.on("console", lambda m: m.type == "error" and problems.append(f"console: {m.text}"))
    page.on("requestfailed", lambda r: problems.append(f"failed: {r.url} {r.failure}"))
    page.on("response", lambda r: r.status >= 400 and problems.append(f"{r.status}: {r.url}"))

    page.goto(launcher.url)
    expect(page.locator("#new-chat")).to_be_visible(timeout=60_000)
    page.wait_for_function("document.images.length && [...document.images].every((i) => i.complete)")

    images = page.evaluate(
        "[...document.images].map((i) => [i.src.slice(0, 60), i.complete, i.naturalWidth])"
    )
    assert images and all(complete and width > 0 for _, complete, width in images), images
    assert page.evaluate("window.violations") == []
    assert problems == []
    assert page.evaluate("document.baseURI") == launcher.url  # the root keeps nginx's port ($http_host)


def test_a_worker_restarted_gracefully_mid_answer_ends_the_answer_with_a_word(page, launcher):
    page.goto(launcher.url)
    ask(page, QUESTION)
    page.get_by_text("🛠️ add").first.wait_for(timeout=STREAMING)
    port = launcher.busy_worker()
    old_pid = launcher.worker_pid(port)
    os.kill(old_pid, signal.SIGTERM)  # what a rolling restart sends the worker

    chat = page.locator("#agent-chat")
    expect(chat).to_contain_text("📊", timeout=60_000)  # the turn's footer: it ended
    text = chat.inner_text()
    assert ANSWER in text or CUT_SHORT in text, text[-500:]
    launcher.process.wait_for(rf"worker :{port} exited with code 0; starting it again", timeout=60)
    launcher.process.wait_for(rf"worker :{port} is ready", timeout=180)
    assert page.get_by_text("Connection to the server was lost").count() == 0


def test_a_killed_worker_mid_answer_leaves_one_line_and_the_question_in_the_box(page, launcher):
    page.goto(launcher.url)
    ask(page, QUESTION)
    page.get_by_text("🛠️ add").first.wait_for(timeout=STREAMING)
    port = launcher.busy_worker()
    os.kill(launcher.worker_pid(port), signal.SIGKILL)

    expect(page.locator("#connection-lost")).to_have_text(LOST_LINE, timeout=120_000)
    expect(page.locator("#chat-input textarea")).to_have_value(QUESTION)
    assert page.get_by_text("Connection to the server was lost. Attempting").count() == 0
    assert page.locator("#agent-chat .message-row").count() == 0  # its first turn: nothing was saved

    page.locator("#chat-input textarea").press("Enter")  # sent again, on a worker that serves
    expect(page.locator("#agent-chat")).to_contain_text(ANSWER, timeout=120_000)
    expect(page.locator("#connection-lost")).to_have_count(0)


def test_a_killed_worker_mid_follow_up_comes_back_to_its_conversation(page, launcher):
    page.goto(launcher.url)
    ask(page, QUESTION)
    chat = page.locator("#agent-chat")
    expect(chat).to_contain_text(ANSWER, timeout=STREAMING)
    expect(page.locator("#saved-list tbody tr")).to_have_count(1, timeout=60_000)
    ask(page, FOLLOW_UP)
    page.get_by_text("🛠️ multiply").first.wait_for(timeout=STREAMING)
    os.kill(launcher.worker_pid(launcher.busy_worker()), signal.SIGKILL)

    expect(page.locator("#connection-lost")).to_have_text(LOST_LINE, timeout=120_000)
    expect(chat).to_contain_text(QUESTION, timeout=60_000)  # the saved first turn, opened again
    expect(chat).to_contain_text(ANSWER)
    expect(page.locator("#chat-input textarea")).to_have_value(FOLLOW_UP)

    page.locator("#chat-input textarea").press("Enter")  # sent again: the same conversation goes on
    expect(chat).to_contain_text(FOLLOW_UP_ANSWER, timeout=120_000)
    expect(page.locator("#saved-list tbody tr")).to_have_count(1, timeout=60_000)
    expect(page.locator("#saved-list tbody tr")).to_have_text(QUESTION)
