"""One MCP server's connection: opened once, kept, reopened on the next call after it drops.

Everything here runs on the MCP loop (`agent.mcp.servers`). The `mcp.Client` is entered and left
by one task that holds it (anyio's task groups must be left by the task that entered them); calls
from other tasks share its session. When the server process exits or the connection drops, the
holding task ends; the call that was running gets `ServerLost`, and the next call opens a new
connection (a new process for a stdio server).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from typing import Any

import httpx2
import mcp.types as types
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CONNECTION_CLOSED

from agent.mcp.config import ServerConfig
from agent.mcp.seams import connection_closed

log = logging.getLogger(__name__)

CLOSE_TIMEOUT_S = 5.0
"""How long closing a connection may take (a stdio server is then killed by the SDK)."""


class ServerLost(Exception):
    """The server went away during a call; the next call reconnects."""


class CallTimedOut(Exception):
    """A call took longer than the server's `timeout_s` (a reconnect before it does not count)."""


class McpConnection:
    """A kept connection to one server; `open()` once, `call()` many times, `close()` at the end."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self._client: Client | None = None
        self._holder: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()
        self._lock = asyncio.Lock()
        self.generation = 0
        """How many times the connection was opened (1 after start-up)."""
        self.in_flight = 0
        """Calls sent and not yet answered, failed or cancelled."""

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def connected(self) -> bool:
        return self._client is not None and self._holder is not None and not self._holder.done()

    async def open(self) -> list[types.Tool]:
        """Connect and list the server's tools, within the server's time-out."""
        async with self._lock:
            return await self._open()

    async def call(self, tool: str, arguments: dict[str, Any]) -> types.CallToolResult:
        """Call `tool`; reconnect first if the connection dropped since the last call.

        A connection that dropped while idle is reopened before the call; one that drops during
        the call raises `ServerLost` (the call may have run, so it is not repeated).
        """
        async with self._lock:
            if self._client is not None and connection_closed(self._client):
                self._drop()
            if not self.connected:
                if self.generation:
                    log.warning("MCP server %r: reconnecting (the connection was lost)", self.name)
                await self._open()
            client = self._client
        assert client is not None
        self.in_flight += 1
        try:
            async with asyncio.timeout(self.config.timeout_s):
                return await client.call_tool(tool, arguments)
        except TimeoutError:
            raise CallTimedOut(f"took longer than {self.config.timeout_s:g} s and was stopped") from None
        except MCPError as error:
            if error.error.code != CONNECTION_CLOSED:
                raise
            self._drop()
            raise ServerLost(
                f"the MCP server {self.name!r} stopped during this call; it will be restarted for the next call"
            ) from error
        finally:
            self.in_flight -= 1

    async def close(self) -> None:
        self._closing.set()
        if self._holder is not None and not self._holder.done():
            await asyncio.wait({self._holder}, timeout=CLOSE_TIMEOUT_S + 1)
            self._holder.cancel()
            await asyncio.gather(self._holder, return_exceptions=True)

    async def _open(self) -> list[types.Tool]:
        self._closing = asyncio.Event()
        opened: asyncio.Future[list[types.Tool]] = asyncio.get_running_loop().create_future()
        self._holder = asyncio.create_task(self._hold(opened), name=f"mcp-{self.name}")
        try:
            async with asyncio.timeout(self.config.startup_timeout_s):
                tools = await asyncio.shield(opened)
        except BaseException:
            self._closing.set()
            opened.cancel()
            self._holder.cancel()
            await asyncio.gather(self._holder, return_exceptions=True)
            raise
        self.generation += 1
        return tools

    async def _hold(self, opened: asyncio.Future[list[types.Tool]]) -> None:
        """Enter the client, list the tools, keep the connection until closing (or until it drops)."""
        closing = self._closing
        client: Client | None = None
        try:
            async with Client(self._transport(), raise_exceptions=False) as client:
                tools = await _all_tools(client)
                self._client = client
                if not opened.done():
                    opened.set_result(tools)
                await closing.wait()
        except BaseException as error:  # anyio raises groups; the connection is gone either way
            if not opened.done():
                opened.set_exception(error if isinstance(error, Exception) else ConnectionError(str(error)))
            elif not closing.is_set():
                log.warning("MCP server %r: the connection dropped (%s)", self.name, _reason(error))
            if isinstance(error, asyncio.CancelledError):
                raise
        finally:
            if self._client is client:
                self._client = None

    def _transport(self) -> Any:
        config = self.config
        if config.transport == "stdio":
            return StdioServerParameters(
                command=config.command, args=list(config.args), env=dict(config.env) or None, cwd=config.cwd
            )
        if config.transport == "sse":
            return sse_client(config.url, headers=dict(config.headers))
        http = httpx2.AsyncClient(headers=dict(config.headers), timeout=httpx2.Timeout(30, read=300))
        return streamable_http_client(config.url, http_client=http)

    def _drop(self) -> None:
        """Forget a connection that is gone; its holder leaves the client (reaping a stdio process)."""
        self._client = None
        self._closing.set()


async def _all_tools(client: Client) -> list[types.Tool]:
    tools: list[types.Tool] = []
    cursor: str | None = None
    for _ in range(100):  # a server whose pages never end cannot hang start-up
        page = await client.list_tools(cursor=cursor)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if not cursor:
            break
    return tools


def start_problem(config: ServerConfig, error: BaseException) -> str:
    """Why a server did not start, in one line that says what to fix."""
    if isinstance(error, TimeoutError):
        return f'it did not answer within {config.timeout_s:g} s (raise "timeout_s" if it is slow to start)'
    if config.transport == "stdio":
        if shutil.which(config.command) is None and "/" not in config.command:
            return f'the command {config.command!r} was not found (install it, or fix "command")'
        return f"`{config.where}` did not start as an MCP server ({_reason(error)})"
    return f"{config.where} could not be reached ({_reason(error)})"


def _reason(error: BaseException) -> str:
    """The innermost message of an error (anyio wraps errors in groups)."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    if error.__cause__ is not None and not str(error):
        error = error.__cause__
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {text}"[:200] if text else type(error).__name__
