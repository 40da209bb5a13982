"""MCP tools through the whole app: `python app.py --mcp-config ...` with real MCP servers from PyPI,
and a scripted OpenAI-compatible model that calls their tools."""

import re
import signal

import httpx
import psutil
import pytest
from gradio_client import Client

from support.mcp_servers import reference_server, server_processes, write_config
from support.scripted_openai import answer_reply, tool_calls_reply
from support.servers import app_environment, free_port

pytestmark = pytest.mark.slow


def ask(url: str, question: str) -> list[dict]:
    return Client(url, verbose=False).predict(question, api_name="/chat")


def tool_steps(reply: list[dict]) -> list[dict]:
    return [m for m in reply if (m.get("metadata") or {}).get("title", "").startswith("🛠️")]


def test_the_model_calls_an_mcp_tool_and_the_chat_shows_its_step(start_app, scripted_openai, tmp_path):
    config = write_config(tmp_path, {"time": reference_server("time", "--local-timezone", "UTC")})
    scripted_openai.add(
        tool_calls_reply(("get_current_time", {"timezone": "Asia/Tokyo"})),
        answer_reply("It is morning in Tokyo.", "get_current_time"),
    )
    env = app_environment(OPENAI_API_KEY="sk-test", OPENAI_BASE_URL=scripted_openai.base_url)
    app = start_app("--port", str(free_port()), "--mcp-config", str(config), env=env)
    url = app.wait_for_url()
    assert "🧰 Tools: 7 (5 built-in, 2 from 1 MCP server)" in httpx.get(url).text

    reply = ask(url, "What time is it in Tokyo?")

    [step] = tool_steps(reply)
    assert step["metadata"]["title"].startswith('🛠️ get_current_time → { "timezone": "Asia/Tokyo",')
    assert step["metadata"]["status"] == "done"
    assert re.search(r'"timezone": "Asia/Tokyo",\s+"datetime": "\d{4}-', step["content"])
    assert [m for m in reply if not m.get("metadata")][-1]["content"] == "It is morning in Tokyo."
    offered = {tool["function"]["name"] for tool in scripted_openai.bodies[0]["tools"]}
    assert {"add", "final_answer", "get_current_time", "convert_time"} <= offered
    [fed_back] = [m for m in scripted_openai.bodies[1]["messages"] if m["role"] == "tool"]
    assert '"timezone": "Asia/Tokyo"' in fed_back["content"]

    app.stop()
    assert server_processes("mcp_server_time") == []  # the app's stdio server went with it


def test_servers_that_do_not_start_are_one_line_each_and_the_app_serves_without_them(start_app, tmp_path):
    config = write_config(
        tmp_path,
        {
            "time": reference_server("time"),
            "missing": {"command": "no-such-mcp-server"},
            "unreachable": {"url": "http://127.0.0.1:9/mcp"},
        },
    )
    app = start_app("--port", str(free_port()), env=app_environment(AGENT_MCP_CONFIG=str(config)))
    url = app.wait_for_url()
    lines = [line for line in app.output.splitlines() if "is not available" in line]
    assert lines == [
        "MCP server 'missing' is not available: the command 'no-such-mcp-server' was not found "
        '(install it, or fix "command"). The app serves without its tools.',
        "MCP server 'unreachable' is not available: http://127.0.0.1:9/mcp could not be reached "
        "(ConnectError: All connection attempts failed). The app serves without its tools.",
    ]
    page = httpx.get(url).text
    assert "🧰 Tools: 7 (5 built-in, 2 from 1 MCP server) · ⚠️ down: missing, unreachable" in page
    assert "The MCP tools need a model" in page  # no key: the offline model plans arithmetic only
    assert "no-such-mcp-server" not in page  # why a server is down is for the operator's log
    reply = ask(url, "what is 2 + 2")
    assert [m["content"] for m in reply if not m["metadata"]] == ["2 + 2 = **4**"]


def test_a_config_file_that_is_not_json_is_one_line_and_the_app_serves(start_app, tmp_path):
    config = tmp_path / "mcp.json"
    config.write_text('{"mcpServers": {"time": {"command": "uvx",}}}')
    app = start_app("--port", str(free_port()), "--mcp-config", str(config))
    url = app.wait_for_url()
    [line] = [line for line in app.output.splitlines() if line.startswith("MCP config not used")]
    assert line == (
        f"MCP config not used: {config} is not valid JSON (line 1, column 43: Expecting property name "
        "enclosed in double quotes). The app serves without MCP tools."
    )
    assert "🧰 Tools" not in httpx.get(url).text


def test_sigterm_to_the_app_alone_closes_its_mcp_servers(start_app, tmp_path):
    config = write_config(tmp_path, {"time": reference_server("time", "--local-timezone", "Europe/Rome")})
    app = start_app("--port", str(free_port()), "--mcp-config", str(config))
    app.wait_for_url()
    [server] = [p for p in server_processes("mcp_server_time") if "Europe/Rome" in p.cmdline()]
    app.process.send_signal(signal.SIGTERM)  # the app's process only, not its group
    assert app.process.wait(30) == 0
    assert not server.is_running() or server.status() == psutil.STATUS_ZOMBIE
