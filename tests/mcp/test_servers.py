"""The reference MCP servers from PyPI, connected once, called, crashed, cancelled and closed.

These are real servers this project did not write (`mcp-server-time`, `mcp-server-git`,
`mcp-server-fetch`), run as stdio children like a user's config runs them.
"""

import asyncio
import time

import pytest
from langchain_core.tools import ToolException

from agent.mcp import McpServers, start_configured
from support.mcp_servers import (
    fetch_server,
    git_repository,
    reference_server,
    server_processes,
    slow_site,
    write_config,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def site():
    with slow_site() as url:
        yield url


@pytest.fixture(scope="module")
def connected(tmp_path_factory):
    """Three reference servers, a command that does not exist and an address nobody answers."""
    folder = tmp_path_factory.mktemp("mcp")
    repo = git_repository(folder)
    said: list[str] = []
    config = write_config(
        folder,
        {
            "time": reference_server("time", "--local-timezone", "UTC"),
            "git": reference_server("git", "-r", str(repo), tools=["git_status", "git_add", "git_commit"]),
            "fetch": fetch_server(timeout_s=15),
            "missing": {"command": "no-such-mcp-server"},
            "unreachable": {"url": "http://127.0.0.1:9/mcp", "startup_timeout_s": 5},
        },
    )
    servers, toolbox = start_configured(config, {}, said.append)
    yield servers, toolbox, said, repo
    servers.close()


def test_start_up_connects_each_server_once_and_says_which_are_down_in_one_line_each(connected):
    _, toolbox, said, _ = connected
    assert toolbox.by_source() == {
        "built-in": ["add", "subtract", "multiply", "exponentiate", "final_answer"],
        "time": ["get_current_time", "convert_time"],
        "git": ["git_status", "git_commit", "git_add"],  # the allow-list, in the server's order
        "fetch": ["fetch"],
    }
    assert [server.name for server in toolbox.down] == ["missing", "unreachable"]
    assert said == [
        "MCP server 'missing' is not available: the command 'no-such-mcp-server' was not found "
        '(install it, or fix "command"). The app serves without its tools.',
        "MCP server 'unreachable' is not available: http://127.0.0.1:9/mcp could not be reached "
        "(ConnectError: All connection attempts failed). The app serves without its tools.",
    ]
    assert {name: len(server_processes(f"mcp_server_{name}")) for name in ("time", "git", "fetch")} == {
        "time": 1,
        "git": 1,
        "fetch": 1,
    }


def test_approval_comes_from_the_servers_read_only_hints(connected):
    _, toolbox, _, _ = connected
    policies = {name: toolbox.get(name).metadata["approval"] for name in toolbox.names[5:]}
    assert policies["git_status"] == "never" and policies["get_current_time"] == "never"
    assert policies["git_add"] == "always" and policies["git_commit"] == "always"


async def test_a_call_returns_the_server_s_structured_result_as_json(connected):
    _, toolbox, _, _ = connected
    output = await toolbox.get("get_current_time").ainvoke({"timezone": "Asia/Tokyo"})
    assert output.startswith('```json\n{\n  "timezone": "Asia/Tokyo",\n  "datetime": "')


async def test_an_error_result_is_raised_as_the_tool_s_error(connected):
    _, toolbox, _, _ = connected
    with pytest.raises(ToolException, match="Invalid timezone"):
        await toolbox.get("get_current_time").ainvoke({"timezone": "Mars/Olympus"})


async def test_a_tool_that_acts_changes_the_repository(connected):
    _, toolbox, _, repo = connected
    await toolbox.get("git_add").ainvoke({"repo_path": str(repo), "files": ["notes.txt"]})
    status = await toolbox.get("git_status").ainvoke({"repo_path": str(repo)})
    assert "new file:   notes.txt" in status


async def test_twenty_concurrent_calls_share_one_connection(connected, site):
    servers, toolbox, _, _ = connected
    before = servers.generation("fetch")
    started = time.perf_counter()
    outputs = await asyncio.gather(
        *(
            toolbox.get("fetch").ainvoke({"url": f"{site}/?wait=1&text=page{i}", "raw": True})
            for i in range(20)
        )
    )
    assert time.perf_counter() - started < 6  # one second each, side by side
    assert all(f"page{i}" in output for i, output in enumerate(outputs))
    assert servers.generation("fetch") == before and len(server_processes("mcp_server_fetch")) == 1


async def test_cancelling_a_call_in_flight_ends_it_at_once_and_the_server_goes_on(connected, site):
    _, toolbox, _, _ = connected
    call = asyncio.create_task(toolbox.get("fetch").ainvoke({"url": f"{site}/?wait=30", "raw": True}))
    await asyncio.sleep(0.5)
    call.cancel()
    started = time.perf_counter()
    await asyncio.gather(call, return_exceptions=True)
    assert time.perf_counter() - started < 0.5
    assert "after" in await toolbox.get("fetch").ainvoke({"url": f"{site}/?text=after", "raw": True})


async def test_a_server_that_dies_during_a_call_fails_that_call_clearly_and_is_restarted_for_the_next(
    connected, site
):
    servers, toolbox, _, _ = connected
    before = servers.generation("fetch")
    call = asyncio.create_task(toolbox.get("fetch").ainvoke({"url": f"{site}/?wait=30", "raw": True}))
    await asyncio.sleep(0.5)
    [process] = server_processes("mcp_server_fetch")
    process.kill()
    with pytest.raises(
        Exception, match="the MCP server 'fetch' stopped during this call; it will be restarted"
    ):
        await asyncio.wait_for(call, 10)
    assert "again" in await toolbox.get("fetch").ainvoke({"url": f"{site}/?text=again", "raw": True})
    assert servers.generation("fetch") == before + 1
    [restarted] = server_processes("mcp_server_fetch")
    assert restarted.pid != process.pid


async def test_a_server_that_died_while_idle_is_restarted_and_the_call_succeeds(connected):
    servers, toolbox, _, _ = connected
    before = servers.generation("time")
    [process] = server_processes("mcp_server_time")
    process.kill()
    process.wait(5)
    await asyncio.sleep(0.2)  # the SDK reads the end of the stream
    output = await toolbox.get("get_current_time").ainvoke({"timezone": "UTC"})
    assert '"timezone": "UTC"' in output and servers.generation("time") == before + 1


def test_closing_stops_every_server_process(tmp_path):
    def oslo_servers():
        return [p for p in server_processes("mcp_server_time") if "Europe/Oslo" in p.cmdline()]

    oslo = reference_server("time", "--local-timezone", "Europe/Oslo")
    servers, toolbox = start_configured(write_config(tmp_path, {"oslo": oslo, "oslo2": oslo}), {})
    assert len(oslo_servers()) == 2
    assert toolbox.by_source()["oslo2"] == ["oslo2_get_current_time", "oslo2_convert_time"]  # clashes renamed
    started = time.perf_counter()
    servers.close()
    assert time.perf_counter() - started < 10
    servers.close()  # twice is harmless
    assert oslo_servers() == []


def test_nothing_configured_starts_nothing_and_closes_cleanly():
    servers, toolbox = McpServers.start([], say=print)
    assert toolbox.names == ["add", "subtract", "multiply", "exponentiate", "final_answer"]
    servers.close()
    nothing, toolbox = start_configured(None)
    assert nothing is None and toolbox.names == [
        "add",
        "subtract",
        "multiply",
        "exponentiate",
        "final_answer",
    ]
