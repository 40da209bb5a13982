"""The chat in a real headless Chromium, as a person uses it: type, press Enter, watch, press Stop."""

import os
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import app
from agent import Settings
from agent.executor import running_turns
from bench.servers import free_port
from tests.conftest import MANY_VISITORS, launch
from tests.fakes import ScriptedChatModel, answer, call, calls
from ui.guard import GuardSettings

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


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("REQUIRE_BROWSER"):
            pytest.fail(f"Chromium not found at {CHROMIUM} (apt-get install -y chromium)")
        pytest.skip("Chromium is not installed (apt-get install -y chromium fonts-noto-color-emoji)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, served_app):
    page = browser.new_page(viewport={"width": 1100, "height": 1000})
    page.goto(served_app)
    yield page
    page.close()


def ask(page, question: str) -> float:
    box = page.get_by_role("textbox").first
    box.fill(question)
    started = time.perf_counter()
    box.press("Enter")
    return started


def test_a_question_shows_tool_steps_then_the_answer(page, tmp_path):
    started = ask(page, "What is (2 + 3) * (4 + 5)?")
    page.get_by_text("🛠️ add").first.wait_for(timeout=10_000)
    first_tool_step_s = time.perf_counter() - started
    page.get_by_text("(2 + 3) * (4 + 5) =").wait_for(timeout=15_000)
    page.get_by_text("📊 3 steps · 3 tool calls").wait_for(timeout=5_000)
    page.get_by_text("⚡ Step 1: 2 tool calls in parallel").click()
    page.get_by_text("🛠️ add → 9").wait_for()
    page.get_by_text("🛠️ multiply → 45").wait_for()
    page.wait_for_timeout(500)  # let the step's expand animation finish before the screenshot
    assert page.locator("strong", has_text="45").count() >= 1
    print(f"first tool step visible after {first_tool_step_s:.2f} s")
    assert first_tool_step_s < 5
    page.screenshot(path=tmp_path / "chat.png")
    if target := os.environ.get("SAVE_SCREENSHOT"):
        page.screenshot(path=target)


def test_the_backend_line_says_which_model_answers(page):
    page.get_by_text("Offline model (no API key): arithmetic only").wait_for()


def test_stop_keeps_the_partial_answer_marks_it_and_cancels_the_work(page):
    ask(page, "hello, who are you?")
    page.get_by_text("I'm the").wait_for(timeout=10_000)
    page.locator(".stop-button").click()
    page.get_by_text("⏹️ Stopped").wait_for(timeout=5_000)
    deadline = time.monotonic() + 2
    while running_turns() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert running_turns() == 0
    partial = page.get_by_text("I'm the").inner_text()
    assert "OPENAI_API_KEY" not in partial, "the answer should have been cut short"

    ask(page, "what is 2 + 2")
    page.get_by_text("2 + 2 =").wait_for(timeout=10_000)
    page.get_by_text("📊 2 steps").wait_for(timeout=5_000)
    assert page.get_by_text("⏹️ Stopped").count() == 1, "the stop mark stays with the stopped turn"


def test_an_example_runs_when_clicked(page):
    page.get_by_text("What is 1 + 2 + 3 + 4 + 5 + 6 + 7 + 8?").click()
    page.get_by_text("= 36").wait_for(timeout=15_000)
    page.get_by_text("⚡ Step 1: 4 tool calls in parallel").wait_for()


def test_retry_runs_the_last_question_again_cleanly(page):
    ask(page, "what is 6 times 7")
    page.get_by_text("📊 2 steps").wait_for(timeout=10_000)
    page.get_by_role("button", name="Retry").click()
    page.get_by_text("📊 2 steps").wait_for(state="detached", timeout=5_000)  # the old turn goes
    page.get_by_text("📊 2 steps").wait_for(timeout=10_000)  # the new one ends
    assert page.get_by_text("6 * 7 =").count() == 1
    assert page.locator("[data-testid=user]").count() == 1


def test_a_key_typed_in_settings_changes_the_backend_line_for_this_page_only(page, browser, served_app):
    page.get_by_text("⚙️ Settings").last.click()
    page.get_by_label("Your OpenAI API key (optional)").fill("sk-test-not-a-real-key")
    page.get_by_text("Backend: OpenAI · gpt-4.1-mini (your key, this session only)").wait_for(timeout=5_000)
    other = browser.new_page()
    other.goto(served_app)
    other.get_by_text("Offline model (no API key): arithmetic only").wait_for()
    assert "sk-test-not-a-real-key" not in other.content()
    other.close()


def test_undo_removes_the_last_turn_from_the_history_the_agent_sees(page):
    ask(page, "what is 2 + 3")
    page.get_by_text("📊 2 steps").wait_for(timeout=10_000)
    ask(page, "what is 10 + 10")
    page.get_by_text("10 + 10 =").wait_for(timeout=10_000)
    page.get_by_text("📊 2 steps").nth(1).wait_for(timeout=10_000)
    page.get_by_role("button", name="Undo").click()
    page.get_by_text("10 + 10 =").wait_for(state="detached", timeout=5_000)
    ask(page, "times 4")
    page.get_by_text("5 * 4 =").wait_for(timeout=10_000)


def test_editing_a_question_reruns_the_conversation_from_there(page):
    ask(page, "what is 2 + 3")
    page.get_by_text("📊 2 steps").wait_for(timeout=10_000)
    page.locator("[data-testid=user]").first.hover()
    page.get_by_role("button", name="Edit").first.click()
    page.locator("textarea").first.fill("what is 7 + 8")
    page.get_by_role("button", name="Submit").click()
    page.get_by_text("7 + 8 =").wait_for(timeout=10_000)
    assert page.get_by_text("2 + 3 =").count() == 0


# -- a public link: nothing rendered reaches another host; a busy client is told so -----------


@pytest.fixture(scope="module")
def listener():
    """An HTTP server on another port of 127.0.0.1 that notes every request it receives."""
    received: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            received.append(f"{self.command} {self.path}")
            self.send_response(204)
            self.end_headers()

        do_POST = do_GET

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()
    thread.join()


def leaking_answer(leak: str) -> str:
    return "\n\n".join(
        [
            "The answer is **4**.",
            f"<img src={leak}/img>",
            f"![chart]({leak}/markdown-image)",
            f'<div style="background:url({leak}/css)">styled</div>',
            f"<video poster={leak}/poster></video>",
            f"<form action={leak}/form method=post><button>Continue</button></form>",
        ]
    )


@pytest.fixture(scope="module")
def leaky_app(listener):
    """A model whose tool arguments and answer try every way of making the browser fetch `leak`."""
    leak, _ = listener
    model = ScriptedChatModel(
        script=[
            calls(call("add", a=f"`<img src={leak}/arguments>` ``` <img src={leak}/fence>", b=1)),
            answer(leaking_answer(leak)),
        ]
    )
    demo = app.create_app(Settings(), chat_model=model, guard=MANY_VISITORS)
    yield launch(demo, MANY_VISITORS)
    demo.close()


def test_a_model_answer_cannot_make_the_browser_fetch_another_host(browser, leaky_app, listener):
    _, received = listener
    received.clear()
    page = browser.new_page()
    page.goto(leaky_app)
    ask(page, "what is 2 + 2")
    page.get_by_text("📊 2 steps").wait_for(timeout=15_000)
    page.get_by_text("🛠️ add → error").click()  # open the tool call: its arguments render too
    page.get_by_text("The answer is").wait_for()
    page.wait_for_timeout(1_000)
    assert page.get_by_text("<img src=").count() >= 1, "the HTML is shown as text"
    assert page.get_by_role("button", name="Continue").count() == 0
    page.close()
    assert received == []


def test_html_that_slips_into_the_page_still_cannot_reach_another_host(page, listener):
    leak, received = listener
    received.clear()
    page.evaluate(
        """(leak) => {
            document.body.insertAdjacentHTML("beforeend", `
                <img src="${leak}/img"><div style="background: url(${leak}/css)">x</div>
                <video poster="${leak}/poster"></video><link rel="stylesheet" href="${leak}/style">
                <form id="leak" action="${leak}/form" method="post"><input name="key" value="sk"></form>`);
            fetch(`${leak}/fetch`).catch(() => {});
            document.getElementById("leak").submit();
        }""",
        leak,
    )
    page.wait_for_timeout(1_500)
    assert received == []


def test_a_client_with_its_share_running_is_told_so_and_keeps_its_text(browser):
    guard = GuardSettings(max_chats_per_client=1)
    demo = app.create_app(Settings(offline_token_delay_ms=30), guard=guard)
    url = launch(demo, guard)
    first, second = browser.new_page(), browser.new_page()
    try:
        first.goto(url)
        second.goto(url)
        ask(first, " + ".join(["1"] * 30))
        first.get_by_text("🛠️ add").first.wait_for(timeout=10_000)
        ask(second, "what is 2 + 2")
        second.get_by_text("You already have 1 question running").wait_for(timeout=5_000)
        assert second.get_by_role("textbox").first.input_value() == "what is 2 + 2"
        first.get_by_text("📊").wait_for(timeout=30_000)
        second.get_by_role("textbox").first.press("Enter")
        second.get_by_text("2 + 2 =").wait_for(timeout=10_000)
    finally:
        first.close()
        second.close()
        demo.close()
