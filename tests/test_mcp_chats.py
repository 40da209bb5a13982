"""MCP tool calls in chats, the way a user meets them: an error, a time-out, a server that crashes,
Stop during a call, twenty chats calling one server at once.

The app is served in this process with real MCP servers from PyPI (`mcp-server-time` and
`mcp-server-fetch`, the fetch server reading a local page that answers as slowly as a test asks),
and a scripted OpenAI-compatible model that calls the tool the question names.
"""

import json
import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from gradio_client import Client
from pydantic import SecretStr

from agent import McpServers, Settings
from support.browser import ask as ask_in_page
from support.mcp_servers import fetch_server, reference_server, server_processes, slow_site, write_config
from support.scripted_openai import ScriptedReply, answer_reply, tool_calls_reply
from support.servers import MANY_VISITORS, launch
from support.turns import running_turns

pytestmark = pytest.mark.slow
FETCH_TIMEOUT_S = 10
"""Room for a restarted fetch server's first call, which is slow on a loaded machine."""


def model_turn(body: dict) -> ScriptedReply:
    """The scripted model: `fetch <url>` or `time in <zone>` calls that tool; a tool result is answered."""
    last = body["messages"][-1]
    if last["role"] == "tool":
        said = " ".join(last["content"].removeprefix("```json").replace("```", "").split())
        return answer_reply(f"The tool said: {said[:200]}")
    question = last["content"] if isinstance(last["content"], str) else last["content"][0]["text"]
    if question.startswith("fetch "):
        return tool_calls_reply(("fetch", {"url": question.removeprefix("fetch "), "raw": True}))
    return tool_calls_reply(("get_current_time", {"timezone": question.removeprefix("time in ")}))


@pytest.fixture(scope="module")
def site():
    with slow_site() as url:
        yield url


@pytest.fixture(scope="module")
def served(scripted_openai_server, tmp_path_factory):
    script = scripted_openai_server.new_script()
    script.responder = model_turn
    config = write_config(
        tmp_path_factory.mktemp("mcp"),
        {"time": reference_server("time"), "fetch": fetch_server(timeout_s=FETCH_TIMEOUT_S)},
    )
    import app
    from agent.mcp import read_config

    servers, toolbox = McpServers.start(read_config(config, {}))
    settings = Settings(api_key=SecretStr("sk-test"), base_url=script.base_url, max_retries=0)
    demo = app.create_app(settings, concurrency=100, guard=MANY_VISITORS, toolbox=toolbox)
    url = launch(demo, MANY_VISITORS, max_threads=100)
    yield url, servers
    demo.close()
    servers.close()
    scripted_openai_server.drop(script)


def ask(url: str, question: str) -> list[dict]:
    return Client(url, verbose=False).predict(question, api_name="/chat")


def tool_step(reply: list[dict]) -> dict:
    [step] = [m for m in reply if (m.get("metadata") or {}).get("title", "").startswith("🛠️")]
    return step


def test_an_error_result_is_shown_as_the_tool_s_error_and_fed_back_to_the_model(served):
    url, _ = served
    reply = ask(url, "time in Mars/Olympus")
    step = tool_step(reply)
    assert step["metadata"]["title"] == "🛠️ get_current_time → error"
    assert "**Error:** Error executing tool get_current_time: Invalid timezone" in step["content"]
    assert [m for m in reply if not m.get("metadata")][-1]["content"].startswith(
        "The tool said: Error: Error executing tool get_current_time"
    )


def test_a_call_past_the_server_s_timeout_is_stopped_with_a_clear_error(served, site):
    url, servers = served
    started = time.perf_counter()
    reply = ask(url, f"fetch {site}/?wait=30")
    assert time.perf_counter() - started < FETCH_TIMEOUT_S + 8
    assert (
        f"**Error:** fetch took longer than {FETCH_TIMEOUT_S} s and was stopped."
        in tool_step(reply)["content"]
    )
    assert servers.calls_in_flight() == 0


def test_stop_during_a_call_cancels_it_and_the_server_keeps_serving(served, site):
    url, servers = served
    client = Client(url, verbose=False)
    job = client.submit(f"fetch {site}/?wait=30", api_name="/chat")
    deadline = time.monotonic() + 20
    while servers.calls_in_flight() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert servers.calls_in_flight() == 1
    job.cancel()
    deadline = time.monotonic() + 3
    while (servers.calls_in_flight() or running_turns()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert servers.calls_in_flight() == 0 and running_turns() == 0
    assert "still here" in tool_step(ask(url, f"fetch {site}/?text=still+here"))["content"]


def test_a_server_that_crashes_during_a_call_fails_it_clearly_and_the_next_chat_gets_a_new_one(served, site):
    url, servers = served
    before = servers.generation("fetch")
    results: list[list[dict]] = []
    chat = threading.Thread(target=lambda: results.append(ask(url, f"fetch {site}/?wait=30")))
    chat.start()
    deadline = time.monotonic() + 20
    while servers.calls_in_flight() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    [process] = server_processes("mcp_server_fetch")
    process.kill()
    chat.join(20)
    step = tool_step(results[0])
    assert step["metadata"]["title"] == "🛠️ fetch → error"
    assert (
        "the MCP server 'fetch' stopped during this call; it will be restarted for the next call"
        in step["content"]
    )
    assert "back again" in tool_step(ask(url, f"fetch {site}/?text=back+again"))["content"]
    assert servers.generation("fetch") == before + 1


def test_twenty_chats_call_one_server_at_once(served, site):
    url, servers = served
    before = servers.generation("fetch")

    def chat(number: int) -> str:
        return tool_step(ask(url, f"fetch {site}/?wait=1&text=page{number}"))["content"]

    started = time.perf_counter()
    with ThreadPoolExecutor(20) as pool:
        contents = list(pool.map(chat, range(20)))
    took = time.perf_counter() - started
    assert all(re.search(rf"\bpage{number}\b", content) for number, content in enumerate(contents))
    assert took < 40, (
        f"20 chats took {took:.1f} s"
    )  # one second each; seconds of Gradio clients on a busy machine
    assert servers.generation("fetch") == before and len(server_processes("mcp_server_fetch")) == 1
    print(json.dumps({"twenty_chats_s": round(took, 2)}))


@pytest.mark.browser
def test_the_page_lists_the_mcp_tools_and_shows_an_mcp_tool_step(served, visitor, tmp_path):
    """`SAVE_SCREENSHOTS=docs` refreshes docs/mcp-tool.png for the README."""
    url, _ = served
    page = visitor.new_page()
    page.goto(url)
    page.get_by_text("🧰 Tools: 8 (5 built-in, 3 from 2 MCP servers)").click()
    page.get_by_text("MCP server time:").wait_for()
    ask_in_page(page, "time in Asia/Tokyo")
    step = page.get_by_text('🛠️ get_current_time → { "timezone": "Asia/Tokyo"')
    step.wait_for(timeout=20_000)
    step.click()
    page.get_by_text("The tool said:").wait_for(timeout=20_000)
    page.locator("code", has_text='"datetime":').first.wait_for()
    page.wait_for_timeout(500)  # let the expand animation finish
    page.screenshot(path=tmp_path / "mcp-tool.png")
    if folder := os.environ.get("SAVE_SCREENSHOTS"):
        page.screenshot(path=Path(folder) / "mcp-tool.png")
