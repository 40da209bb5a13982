"""The configured MCP servers of one app process: connected once at start-up, kept, closed at the end.

The connections live on an event loop of their own, in one thread (the MCP loop): they are opened
before the web server starts (so the page and the model know every tool), and nothing the MCP
client does can block the loop that serves the chats. A call from a chat hops to the MCP loop and
back; cancelling the chat's task (Stop, a closed tab) cancels the call on the MCP loop.

    servers, toolbox = McpServers.start(read_config(path, env))
    ...
    await servers.aclose()   # or servers.close() from a thread without a loop

A server that does not start is reported with one line on stderr naming it and saying what to
fix; the app serves without its tools (`Toolbox.down` lists it for the page).
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import logging
import sys
import threading
from collections.abc import Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import mcp.types as types

from agent.mcp.config import McpConfigError, ServerConfig, ServerProblem, read_config
from agent.mcp.connection import McpConnection, start_problem
from agent.mcp.tools import langchain_tools
from agent.settings import read_environment
from agent.toolbox import ServerDown, Toolbox

log = logging.getLogger(__name__)

T = TypeVar("T")
STARTUP_SLACK_S = 5.0
"""Start-up waits for the slowest server's `startup_timeout_s` plus this."""


def say_on_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class McpServers:
    """The MCP connections of this process, on their own loop; `start` builds them with the toolbox."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="mcp-loop", daemon=True)
        self._thread.start()
        self._connections: dict[str, McpConnection] = {}
        self._closed = False
        atexit.register(self.close)

    @classmethod
    def start(
        cls, entries: Sequence[ServerConfig | ServerProblem], say: Callable[[str], None] = say_on_stderr
    ) -> tuple[McpServers, Toolbox]:
        """Connect every configured server at once; the toolbox has the tools of those that started."""
        servers = cls()
        down = [ServerDown(entry.name, entry.reason) for entry in entries if isinstance(entry, ServerProblem)]
        configs = [entry for entry in entries if isinstance(entry, ServerConfig)]
        limit = max((config.startup_timeout_s for config in configs), default=0) + STARTUP_SLACK_S
        opened = servers._wait(servers._open_all(configs), limit)
        server_tools = {}
        for config, outcome in zip(configs, opened, strict=True):
            if isinstance(outcome, BaseException):
                down.append(ServerDown(config.name, start_problem(config, outcome)))
            else:
                server_tools[config.name] = langchain_tools(config, outcome, servers.call)
                log.info(
                    "MCP server %r: %d tools (%s)", config.name, len(server_tools[config.name]), config.where
                )
        for server in down:
            say(
                f"MCP server {server.name!r} is not available: {server.reason}. The app serves without its tools."
            )
        return servers, Toolbox.combine(server_tools, down)

    async def call(self, server: str, tool: str, arguments: dict[str, Any]) -> types.CallToolResult:
        """Call `tool` on `server` from any event loop (the chat's); cancelling this cancels the call."""
        return await self._on_mcp_loop(self._connections[server].call(tool, arguments))

    def calls_in_flight(self) -> int:
        """Calls sent to any server and not yet answered (Stop and time-outs bring it back to 0)."""
        return sum(connection.in_flight for connection in self._connections.values())

    def generation(self, server: str) -> int:
        """How many times `server`'s connection was opened (1 until it is reconnected)."""
        return self._connections[server].generation

    async def aclose(self) -> None:
        """Close every session and stop every stdio server (for the app's shutdown)."""
        await asyncio.get_running_loop().run_in_executor(None, self.close)

    def close(self) -> None:
        """`aclose` for a thread without an event loop; a second call does nothing."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        try:
            self._wait(self._close_all(), 15.0)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5.0)
            if not self._thread.is_alive():
                self._loop.close()

    async def _open_all(self, configs: Sequence[ServerConfig]) -> list[list[types.Tool] | BaseException]:
        for config in configs:
            self._connections[config.name] = McpConnection(config)
        return await asyncio.gather(
            *(self._connections[config.name].open() for config in configs), return_exceptions=True
        )

    async def _close_all(self) -> None:
        await asyncio.gather(*(connection.close() for connection in self._connections.values()))

    def _on_mcp_loop(self, coroutine: Coroutine[Any, Any, T]) -> asyncio.Future[T]:
        return asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, self._loop))

    def _wait(self, coroutine: Coroutine[Any, Any, T], timeout_s: float) -> T:
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result(timeout_s)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise


def start_configured(
    path: str | Path | None, env: Mapping[str, str] | None = None, say: Callable[[str], None] = say_on_stderr
) -> tuple[McpServers | None, Toolbox]:
    """The servers of the config file at `path` (none when `path` is None) and the toolbox with
    their tools; a file that cannot be used is reported in one line, and the app serves without it.

    `${VAR}`s come from `env` (default: the environment over `.env`)."""
    if not path:
        return None, Toolbox()
    try:
        entries = read_config(path, read_environment() if env is None else env)
    except McpConfigError as error:
        say(f"MCP config not used: {error}. The app serves without MCP tools.")
        return None, Toolbox()
    return McpServers.start(entries, say)
