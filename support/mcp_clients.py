"""Calling this app's MCP server as another agent would: `mcp.Client` over Streamable HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx2
from mcp import Client
from mcp.client.client import ConnectMode
from mcp.client.streamable_http import streamable_http_client


@asynccontextmanager
async def mcp_client(
    url: str, local_address: str | None = None, mode: ConnectMode = "auto"
) -> AsyncIterator[Client]:
    """A connected client of the MCP server at `url`, from `local_address` (another visitor is
    another loopback address: 127.0.0.2, ...); `mode="legacy"` speaks the handshake-era protocol
    (2025 revisions) as today's desktop clients do."""
    transport = httpx2.AsyncHTTPTransport(local_address=local_address) if local_address else None
    async with (
        httpx2.AsyncClient(transport=transport, timeout=httpx2.Timeout(30, read=300)) as http,
        Client(streamable_http_client(url, http_client=http), mode=mode) as client,
    ):
        yield client
