"""Approving tool calls in a real headless Chromium, as a person does it.

The app talks to a real OpenAI-compatible server (llmock) that calls `write_file`, a tool
that needs approval and writes into a temporary directory. `SAVE_SCREENSHOTS=docs`
refreshes docs/approval.png (a call waiting) and docs/denied.png (a denied call).
"""

import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from llmock.pytest_plugin import LLMock
from llmock.scenarios import Reply, ToolCall
from llmock.testing import LLMockServer
from pydantic import SecretStr

import app
from agent import Settings, Toolbox
from agent.tools import TOOLS
from support.acting_tools import file_writer
from support.browser import DESKTOP, ask
from support.servers import MANY_VISITORS, launch
from support.turns import running_turns

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WAITING = "⏸️ Waiting for your approval: tool(write_file)"
READ_S = 0.6
"""How long the person reads the call before pressing a button (a press within 0.4 s of the
call appearing is taken for a double click meant for the call before, and ignored)."""


@pytest.fixture(scope="module")
def model_server() -> Iterator[LLMockServer]:
    with LLMockServer() as server:
        yield server


@pytest.fixture
def model(model_server) -> LLMock:
    return LLMock(model_server).reset()


def acting_app(server: LLMockServer, folder: Path, approval_timeout_s: float) -> tuple:
    settings = Settings(
        api_key=SecretStr("sk-test-server"),
        base_url=server.base_url(),
        model="gpt-4.1-mini",
        approval_timeout_s=approval_timeout_s,
    )
    demo = app.create_app(
        settings, concurrency=8, guard=MANY_VISITORS, toolbox=Toolbox((*TOOLS, file_writer(folder)))
    )
    return demo, launch(demo, MANY_VISITORS)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("written")


@pytest.fixture(scope="module")
def served(model_server, folder) -> Iterator[str]:
    demo, url = acting_app(model_server, folder, approval_timeout_s=120)
    yield url
    demo.close()


@pytest.fixture
def page(visitor, served):
    page = visitor.new_page()
    page.goto(served)
    return page


def will_write(model: LLMock, *files: tuple[str, str], answer: str) -> None:
    """The model's next turn: write these (name, text) files in one step, then answer."""
    calls = tuple(ToolCall("write_file", {"filename": name, "text": text}) for name, text in files)
    model.add(Reply(tool_calls=calls))
    model.call_tool("final_answer", {"answer": answer, "tools_used": ["write_file"]})


def panel_shows(page, filename: str) -> None:
    """The Approve / Deny panel shows the call that writes `filename`; the person reads it."""
    panel = page.locator("#approval-panel")
    panel.get_by_text(WAITING).wait_for(timeout=15_000)
    panel.locator("#approval-call").get_by_text(filename).wait_for(timeout=5_000)
    page.wait_for_timeout(READ_S * 1000)


def save_screenshot(page, name: str) -> None:
    if folder := os.environ.get("SAVE_SCREENSHOTS"):
        page.wait_for_timeout(500)
        page.screenshot(path=Path(folder) / name)


def wait_until(condition, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_approve_runs_the_call_and_the_turn_goes_on(page, model, folder):
    will_write(model, ("approved.txt", "hello"), answer="I wrote **approved.txt**.")
    ask(page, "Write hello to approved.txt")
    panel_shows(page, "approved.txt")
    live = page.locator("#live-turn")
    assert live.get_by_text(WAITING).is_visible(), "the call waits in the chat too, its arguments shown"
    assert page.get_by_role("button", name="Approve").is_visible()
    assert page.get_by_role("button", name="Deny").is_visible()
    assert not (folder / "approved.txt").exists()
    save_screenshot(page, "approval.png")

    page.get_by_role("button", name="Approve").click()
    page.get_by_text("I wrote approved.txt.").wait_for(timeout=15_000)
    assert (folder / "approved.txt").read_text() == "hello"
    assert page.get_by_text("🛠️ write_file → wrote 5 characters to approved.txt").is_visible()
    page.get_by_text("of it waiting for your approval").wait_for(timeout=5_000)
    assert not page.locator("#approval-panel").is_visible()


def test_deny_with_a_reason_tells_the_model_and_nothing_is_written(page, model, folder):
    will_write(model, ("denied.txt", "secret"), answer="Understood: I did not write denied.txt.")
    ask(page, "Write secret to denied.txt")
    panel_shows(page, "denied.txt")
    page.locator("#approval-reason textarea").fill("not in that folder, please")
    page.get_by_role("button", name="Deny").click()

    page.get_by_text("Understood: I did not write denied.txt.").wait_for(timeout=15_000)
    assert not (folder / "denied.txt").exists()
    step = page.get_by_text("🛠️ write_file → denied")
    assert step.is_visible()
    step.click()  # open the step
    page.get_by_text("not in that folder, please").wait_for(timeout=5_000)
    told = [m for m in model.requests[-1].body["messages"] if m["role"] == "tool"]
    assert "not in that folder, please" in told[0]["content"]
    assert page.locator("#approval-reason textarea").input_value() == "", "the box is cleared"
    save_screenshot(page, "denied.png")


def test_parallel_calls_are_decided_one_by_one_differently(page, model, folder):
    will_write(model, ("one.txt", "1"), ("two.txt", "2"), answer="Wrote one.txt; two.txt was declined.")
    ask(page, "Write 1 to one.txt and 2 to two.txt")
    panel_shows(page, "one.txt")
    page.get_by_role("button", name="Approve").click()
    panel_shows(page, "two.txt")
    assert (folder / "one.txt").read_text() == "1", "an approved call runs at once"
    page.get_by_role("button", name="Deny").click()

    page.get_by_text("Wrote one.txt; two.txt was declined.").wait_for(timeout=15_000)
    assert not (folder / "two.txt").exists()
    page.get_by_text("⚡ Step 1: 2 tool calls in parallel").click()  # open the step
    page.get_by_text("🛠️ write_file → wrote 1 characters to one.txt").wait_for(timeout=5_000)
    assert page.get_by_text("🛠️ write_file → denied").is_visible()


def test_no_decision_in_time_denies_the_call_and_says_so(browser, folder):
    # Its own model server: langchain-openai shares one HTTP client per base URL in a process, and
    # this second app serves on another event loop than the module's app, which used it first.
    with LLMockServer() as own_server:
        demo, url = acting_app(own_server, folder, approval_timeout_s=6)
        page = browser.new_page(viewport=DESKTOP)
        try:
            page.goto(url)
            will_write(LLMock(own_server).reset(), ("late.txt", "x"), answer="Nobody approved late.txt.")
            ask(page, "Write x to late.txt")
            page.locator("#approval-panel").get_by_text(WAITING).wait_for(timeout=15_000)
            page.get_by_text("Nobody approved late.txt.").wait_for(timeout=15_000)
            page.get_by_text("🛠️ write_file → denied").click()
            page.get_by_text("no decision within 6 s (AGENT_APPROVAL_TIMEOUT_S)").wait_for(timeout=5_000)
            assert not (folder / "late.txt").exists()
            assert not page.locator("#approval-panel").is_visible()
        finally:
            page.close()
            demo.close()


def test_stop_while_a_call_waits_ends_the_turn_with_the_stop_line_and_footer(page, model, folder, caplog):
    will_write(model, ("stopped.txt", "x"), answer="never shown")
    with caplog.at_level(logging.INFO, logger="agent.turns"):
        ask(page, "Write x to stopped.txt")
        panel_shows(page, "stopped.txt")
        page.locator(".stop-button").click()
        page.get_by_text(
            "⏹️ Stopped in step 1; write_file waited for your approval and did not run."
        ).wait_for(timeout=10_000)
        page.get_by_text("📊 1 step · ").wait_for(timeout=5_000)
        wait_until(lambda: running_turns() == 0)
    assert not (folder / "stopped.txt").exists()
    assert not page.locator("#approval-panel").is_visible()
    assert page.get_by_text("🛠️ write_file → not run").is_visible()
    [line] = [r.turn for r in caplog.records if r.name == "agent.turns"]
    assert [(d["approved"], d["by"]) for d in line["approvals"]] == [(False, "stop")]


def test_reload_while_a_call_waits_denies_and_cancels_it(page, model, folder, caplog):
    will_write(model, ("reloaded.txt", "x"), answer="never shown")
    with caplog.at_level(logging.INFO, logger="agent.turns"):
        ask(page, "Write x to reloaded.txt")
        panel_shows(page, "reloaded.txt")
        page.reload()
        wait_until(lambda: running_turns() == 0, timeout_s=30)  # Gradio looks for a gone page every 10 s
    assert not (folder / "reloaded.txt").exists()
    [line] = [r.turn for r in caplog.records if r.name == "agent.turns"]
    assert line["outcome"] == "cancelled"
    assert [(d["approved"], d["by"]) for d in line["approvals"]] == [(False, "closed")]
    page.locator("#chat-input textarea").wait_for(timeout=10_000)
    assert not page.locator("#approval-panel").is_visible()
