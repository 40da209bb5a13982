"""This app as an MCP server: another agent asks it questions with the `mcp` SDK's client, over
Streamable HTTP, against the app served on 127.0.0.1 with its guard (each test from its own
loopback address, as a visitor of its own).
"""

import asyncio
import json
import logging
import re
import shutil
import time
from collections.abc import Iterator

import httpx
import pytest
from mcp import MCPError
from pydantic import SecretStr

import app
from agent import ServerSettings, Settings, Toolbox
from agent.tools import TOOLS
from deploy.workers import serve
from support.acting_tools import file_writer
from support.gradio_http import GradioChatClient
from support.mcp_clients import mcp_client
from support.scripted_openai import ScriptedOpenAI, answer_reply, tool_calls_reply
from support.servers import MANY_VISITORS_ENV, app_environment, free_port, launch, shut_down
from ui.guard import TurnsOutsideTheQueue, busy_message, turn_functions, turns_of
from ui.lifecycle import CUT_SHORT, Lifecycle
from ui.mcp_server import MCP_PATH, TOOL_NAME, VIA_MCP, AgentMcpServer

pytestmark = pytest.mark.slow

LONG_QUESTION = " + ".join(["1"] * 40)  # about 4 s at 20 ms a token
GUARD = ServerSettings(max_chats_per_client=2, max_request_bytes=50_000, max_calls_per_s=10)


def text_of(result) -> str:
    return "".join(block.text for block in result.content)


@pytest.fixture(scope="module")
def offline_app() -> Iterator[tuple[str, AgentMcpServer]]:
    """The offline app at 20 ms a token with its MCP server on, a guard with two chats per address."""
    settings, lifecycle, turns = Settings(offline_token_delay_ms=20), Lifecycle(), TurnsOutsideTheQueue()
    demo = app.create_app(settings, concurrency=20, guard=GUARD, lifecycle=lifecycle, other_turns=turns)
    server = AgentMcpServer(demo, settings, Toolbox(), GUARD, lifecycle, turns=turns)
    url = launch(demo, GUARD, lifecycle, mcp=server, max_threads=40)
    yield url.rstrip("/"), server
    shut_down(demo, lifecycle)


@pytest.fixture(scope="module")
def offline_url(offline_app) -> str:
    return offline_app[0] + MCP_PATH


async def test_another_agent_finds_one_tool_that_says_what_it_does(offline_url):
    async with mcp_client(offline_url, "127.0.0.2") as client:
        [tool] = (await client.list_tools()).tools
    assert tool.name == TOOL_NAME
    assert "add, subtract, multiply, exponentiate" in tool.description
    assert "Each call is a new conversation" in tool.description
    assert tool.input_schema["required"] == ["question"]
    assert set(tool.output_schema["properties"]) == {"answer", "model", "tools_used", "steps"}
    assert tool.annotations.read_only_hint is True


@pytest.mark.parametrize("mode", ["auto", "legacy"], ids=["2026-protocol", "handshake-protocol"])
async def test_a_question_gets_the_agents_answer_and_its_tool_steps(offline_url, mode):
    async with mcp_client(offline_url, "127.0.0.2", mode) as client:
        result = await client.call_tool(TOOL_NAME, {"question": "what is 2 + 3"})
    assert not result.is_error
    assert text_of(result) == "2 + 3 = **5**"
    assert result.structured_content == {
        "answer": "2 + 3 = **5**",
        "model": "Offline model (no API key): arithmetic only",
        "tools_used": ["add"],
        "steps": [{"tool": "add", "arguments": '{"a": 2, "b": 3}', "output": "5", "is_error": False}],
    }


async def test_a_caller_that_asks_for_progress_hears_of_each_tool_step_as_it_ends(offline_url):
    heard: list[tuple[float, str | None]] = []

    async def progress(done: float, total: float | None, message: str | None) -> None:
        heard.append((done, message))

    async with mcp_client(offline_url, "127.0.0.2") as client:
        result = await client.call_tool(
            TOOL_NAME, {"question": "what is (2 + 3) * 4"}, progress_callback=progress
        )
    assert text_of(result) == "(2 + 3) * 4 = **20**"
    assert heard == [(1, 'add {"a": 2, "b": 3} → 5'), (2, 'multiply {"a": 5, "b": 4} → 20')]


@pytest.mark.parametrize(
    ("question", "error"),
    [
        ("   ", "Please type a question."),
        (
            "1 + " * 1500 + "1",
            "characters long; the limit is 4,000 (AGENT_MAX_INPUT_CHARS). Please shorten it.",
        ),
    ],
    ids=["empty", "too-long"],
)
async def test_a_question_the_agent_cannot_take_is_an_error_result_saying_why(offline_url, question, error):
    async with mcp_client(offline_url, "127.0.0.3") as client:
        result = await client.call_tool(TOOL_NAME, {"question": question})
    assert result.is_error and result.structured_content is None
    assert error in text_of(result)


async def test_a_question_without_text_is_refused_by_the_tools_schema(offline_url):
    async with mcp_client(offline_url, "127.0.0.3") as client:
        result = await client.call_tool(TOOL_NAME, {"question": 42})
    assert result.is_error and "question" in text_of(result)


async def wait_until(condition, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_a_third_question_from_one_address_is_refused_while_two_run_and_the_page_shares_the_limit(
    offline_app,
):
    base, server = offline_app
    async with mcp_client(base + MCP_PATH, "127.0.0.4") as client:
        running = [
            asyncio.ensure_future(client.call_tool(TOOL_NAME, {"question": LONG_QUESTION})) for _ in "ab"
        ]
        await wait_until(lambda: server.turns_of("127.0.0.4") == 2)
        third = await client.call_tool(TOOL_NAME, {"question": "what is 1 + 1"})
        async with GradioChatClient(base, local_address="127.0.0.4") as page:
            on_the_page = await page.ask("what is 1 + 1")
            typed = await page.call_unqueued("_clear_and_save_textbox", ["what is 1 + 1"], "mcp-busy-page")
        async with mcp_client(base + MCP_PATH, "127.0.0.5") as elsewhere:
            other_address = await elsewhere.call_tool(TOOL_NAME, {"question": "what is 1 + 1"})
        answers = await asyncio.gather(*running)
        after = await client.call_tool(TOOL_NAME, {"question": "what is 1 + 1"})
    assert third.is_error and text_of(third) == busy_message(GUARD)
    assert on_the_page.refused and on_the_page.error == busy_message(GUARD)
    assert typed.json()["error"] == [{"is_valid": False, "message": busy_message(GUARD)}], (
        "the textbox keeps the question and says why"
    )
    assert text_of(other_address) == "1 + 1 = **2**"
    assert [text_of(answer).endswith("**40**") for answer in answers] == [True, True]
    assert text_of(after) == "1 + 1 = **2**", "finished questions give their slots back"


async def test_the_turns_log_line_says_the_question_came_over_mcp(offline_url, caplog):
    caplog.set_level(logging.INFO, logger="agent.turns")
    async with mcp_client(offline_url, "127.0.0.9") as client:
        await client.call_tool(TOOL_NAME, {"question": "what is 2 + 2"})
    [line] = [json.loads(r.getMessage()) for r in caplog.records if r.name == "agent.turns"]
    assert (line["via"], line["outcome"]) == (VIA_MCP, "finished") == ("mcp ask_agent", "finished")


async def test_a_question_over_mcp_is_refused_while_the_page_has_two_answers_running(offline_app):
    base, server = offline_app
    blocks = server.blocks

    def page_turns() -> int:
        return turns_of(blocks, turn_functions(blocks), "127.0.0.8", trust_proxy_headers=False)

    async with GradioChatClient(base, local_address="127.0.0.8") as page:
        running = [asyncio.ensure_future(page.ask(LONG_QUESTION)) for _ in "ab"]
        await wait_until(lambda: page_turns() == 2)
        async with mcp_client(base + MCP_PATH, "127.0.0.8") as client:
            refused = await client.call_tool(TOOL_NAME, {"question": "what is 1 + 1"})
        streams = await asyncio.gather(*running)
    assert refused.is_error and text_of(refused) == busy_message(GUARD)
    assert all(stream.completed for stream in streams), [stream.error for stream in streams]


async def test_a_body_over_the_cap_is_refused_before_it_is_read(offline_url):
    big = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": TOOL_NAME}}
    big["params"]["arguments"] = {"question": "x" * 60_000}
    async with httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(local_address="127.0.0.6")) as http:
        response = await http.post(
            offline_url, json=big, headers={"Accept": "application/json, text/event-stream"}
        )
    assert response.status_code == 413
    assert "AGENT_MAX_REQUEST_BYTES" in response.json()["detail"]


async def test_requests_past_the_call_budget_are_refused(offline_url):
    listing = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    headers = {"Accept": "application/json, text/event-stream"}
    transport = httpx.AsyncHTTPTransport(local_address="127.0.0.7")
    async with httpx.AsyncClient(transport=transport, timeout=60) as http:
        started = time.monotonic()
        responses = await asyncio.gather(
            *(http.post(offline_url, json=listing, headers=headers) for _ in range(150))
        )
        elapsed = time.monotonic() - started
    statuses = [response.status_code for response in responses]
    assert set(statuses) == {200, 429}
    assert statuses.count(200) <= 60 + 10 * elapsed + 1, "a burst of six seconds' worth, then 10 a second"
    refused = next(response for response in responses if response.status_code == 429)
    assert "AGENT_MAX_CALLS_PER_S" in refused.json()["detail"]


async def test_without_the_flag_nothing_answers_at_the_mcp_path(served_app):
    url = served_app.rstrip("/") + MCP_PATH
    async with httpx.AsyncClient() as http:
        post = await http.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        get = await http.get(url)
    assert (post.status_code, get.status_code) == (404, 404)
    with pytest.raises(BaseExceptionGroup) as refused:
        async with mcp_client(url) as client:
            await client.list_tools()
    assert refused.group_contains(MCPError, match="Not Found")


# -- a model on the server's key, scripted ---------------------------------------------------------


@pytest.fixture(scope="module")
def keyed(scripted_openai_server: ScriptedOpenAI, tmp_path_factory):
    """The app on the server's key (two allowed models) with `write_file`, which needs approval."""
    script = scripted_openai_server.new_script()
    folder = tmp_path_factory.mktemp("written")
    settings = Settings(
        api_key=SecretStr("sk-server"),
        base_url=script.base_url,
        model="m-small",
        models=("m-small", "m-large"),
    )
    guard, lifecycle = ServerSettings(), Lifecycle()
    toolbox = Toolbox((*TOOLS, file_writer(folder)))
    demo = app.create_app(settings, concurrency=8, guard=guard, toolbox=toolbox, lifecycle=lifecycle)
    url = launch(demo, guard, lifecycle, mcp=AgentMcpServer(demo, settings, toolbox, guard, lifecycle))
    yield url.rstrip("/") + MCP_PATH, script, folder
    shut_down(demo, lifecycle)
    scripted_openai_server.drop(script)


async def test_a_tool_call_of_the_servers_model_is_a_step_of_the_answer(keyed):
    url, script, _ = keyed
    script.requests.clear()
    script.add(tool_calls_reply(("add", {"a": 2, "b": 3})), answer_reply("It is 5.", "add"))
    async with mcp_client(url) as client:
        result = await client.call_tool(TOOL_NAME, {"question": "what is 2 + 3?", "model": "m-large"})
    assert text_of(result) == "It is 5."
    assert result.structured_content["steps"] == [
        {"tool": "add", "arguments": '{"a": 2, "b": 3}', "output": "5", "is_error": False}
    ]
    assert result.structured_content["tools_used"] == ["add"]
    assert [body["model"] for body in script.bodies] == ["m-large", "m-large"]


async def test_a_model_outside_the_allow_list_is_refused_and_never_asked(keyed):
    url, script, _ = keyed
    script.requests.clear()
    async with mcp_client(url) as client:
        result = await client.call_tool(TOOL_NAME, {"question": "what is 2 + 3?", "model": "o1-pro"})
    assert result.is_error
    assert "'o1-pro' is not available on this server's key; choose one of: m-small, m-large" in text_of(
        result
    )
    assert "key box" not in text_of(result) and "🔑" not in text_of(result), "no key can be sent over MCP"
    assert script.requests == []


async def test_a_call_that_needs_approval_is_declined_and_the_model_is_told_why(keyed):
    url, script, folder = keyed
    script.requests.clear()
    script.add(
        tool_calls_reply(("write_file", {"filename": "note.txt", "text": "hi"})),
        answer_reply("I could not write the file: it needs a person's approval."),
    )
    async with mcp_client(url) as client:
        [tool] = (await client.list_tools()).tools
        result = await client.call_tool(TOOL_NAME, {"question": "write hi to note.txt"})
    assert tool.annotations.read_only_hint is True, "the one tool that acts is never run over MCP"
    [step] = result.structured_content["steps"]
    assert step["tool"] == "write_file" and step["is_error"]
    assert step["output"].startswith("Declined: this call did not run (it needs a person's approval")
    assert not (folder / "note.txt").exists()
    told = [m for m in script.bodies[1]["messages"] if m["role"] == "tool"]
    assert told[0]["content"] == step["output"]


# -- the app process: the flag, SIGTERM --------------------------------------------------------------


def served_with_flag(start_app, grace_s: float, *flags: str, **env: str):
    port = free_port()
    environment = app_environment(
        **{"AGENT_SHUTDOWN_GRACE_S": str(grace_s), "AGENT_OFFLINE_TOKEN_DELAY_MS": "20", **env}
    )
    served = start_app("--port", str(port), *flags, env=environment)
    url = served.wait_for_url(timeout=90).rstrip("/")
    return served, url


async def ask_until_signal(served, url: str) -> tuple[object, httpx.Response]:
    """A long question over MCP; SIGTERM to the app once its turn runs."""
    async with mcp_client(url + MCP_PATH) as client, httpx.AsyncClient() as http:
        asking = asyncio.ensure_future(client.call_tool(TOOL_NAME, {"question": LONG_QUESTION}))
        for _ in range(600):
            if (await http.get(f"{url}/healthz")).json()["turns"] == 1:
                break
            await asyncio.sleep(0.05)
        served.terminate()
        await asyncio.sleep(0.3)
        late = await client.call_tool(TOOL_NAME, {"question": "what is 1 + 1"})
        return await asyncio.wait_for(asking, 120), late


async def test_the_flag_serves_it_and_sigterm_lets_a_running_question_finish(start_app):
    served, url = served_with_flag(start_app, 60, "--mcp-server")
    served.wait_for(re.escape(f"* MCP server (tool '{TOOL_NAME}'): {url}{MCP_PATH}"))
    answer, late = await ask_until_signal(served, url)
    assert text_of(answer).endswith("**40**")
    assert late.is_error and "restarting" in text_of(late)
    assert served.process.wait(timeout=60) == 0
    assert "Traceback" not in served.output and "Task was destroyed" not in served.output
    lines = [json.loads(line) for line in re.findall(r"agent\.turns (\{.*\})", served.output)]
    assert [line["outcome"] for line in lines] == ["finished"]


async def test_past_the_grace_a_running_question_ends_with_an_error_result(start_app):
    served, url = served_with_flag(start_app, 0.5, AGENT_MCP_SERVER="1", AGENT_OFFLINE_TOKEN_DELAY_MS="300")
    answer, _ = await ask_until_signal(served, url)
    assert answer.is_error and text_of(answer) == CUT_SHORT
    assert served.process.wait(timeout=60) == 0
    assert "1 turns cut short" in served.output
    assert "Traceback" not in served.output and "Task was destroyed" not in served.output


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed")
async def test_behind_nginx_any_worker_answers_each_request_without_affinity():
    """Stateless: each request of a client (no affinity cookie) goes to whichever worker nginx picks."""
    env = app_environment(AGENT_MCP_SERVER="1", **MANY_VISITORS_ENV)
    with serve(2, free_port(), env=env, worker_ports=[free_port(), free_port()]) as running:

        async def ask(n: int) -> str:
            async with mcp_client(running.url + MCP_PATH) as client:
                return text_of(await client.call_tool(TOOL_NAME, {"question": f"what is {n} + 1"}))

        answers = await asyncio.gather(*(ask(n) for n in range(16)))
        assert answers == [f"{n} + 1 = **{n + 1}**" for n in range(16)]
        for worker in running.processes:  # 16 questions spread at random: each worker answered some
            worker.wait_for('"outcome": "finished"', timeout=5)
