"""An MCP server's tool as a LangChain tool the executor calls like any other.

The tool's JSON schema goes to the model as it is; the call goes to the server through the kept
connection (`McpServers.call`); the result comes back as text (`agent.mcp.results`), and an
`isError` result is raised as the tool's error, which the executor feeds back to the model.

Its `metadata` says who may run it and how long it may take: `approval` (`"always"` or `"never"`,
resolved from the config's policy and the tool's annotations: under `"auto"` a tool runs without
asking only if it says it is read-only, since per the MCP spec a tool without annotations may act),
`timeout_s` (the executor's bound: a reconnect, then the call; the call itself is held to the
server's `timeout_s` by the connection), and `mcp_server`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import mcp.types as types
from langchain_core.tools import BaseTool, ToolException
from pydantic import ConfigDict, Field

from agent.mcp.config import ServerConfig
from agent.mcp.connection import CallTimedOut
from agent.mcp.results import result_text

CallServer = Callable[[str, str, dict[str, Any]], Awaitable[types.CallToolResult]]
"""(server, tool, arguments) → the server's result."""


class McpTool(BaseTool):
    """One tool of one MCP server."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    server: str
    remote_name: str
    """The tool's name on its server (the model may see it renamed after a clash)."""
    call_server: CallServer = Field(exclude=True)

    def _run(self, *args: Any, **kwargs: Any) -> str:
        raise NotImplementedError("MCP tools run asynchronously (ainvoke)")

    async def _arun(self, **arguments: Any) -> str:
        try:
            result = await self.call_server(self.server, self.remote_name, arguments)
        except CallTimedOut as timed_out:
            raise ToolException(f"{self.name} {timed_out}.") from None
        text = result_text(result)
        if result.is_error:
            raise ToolException(text)
        return text


def approval_for(config: ServerConfig, tool: types.Tool) -> str:
    """`"always"` or `"never"`: the config's policy for this tool, `auto` decided by `readOnlyHint`."""
    policy = config.policy_for(tool.name)
    if policy != "auto":
        return policy
    read_only = tool.annotations is not None and tool.annotations.read_only_hint is True
    return "never" if read_only else "always"


def langchain_tools(config: ServerConfig, listed: list[types.Tool], call_server: CallServer) -> list[McpTool]:
    """The listed tools the config allows (all, without a `tools` list), in the server's order."""
    allowed = set(config.tools) if config.tools is not None else None
    return [
        McpTool(
            name=tool.name,
            description=tool.description or tool.title or tool.name,
            args_schema=tool.input_schema or {"type": "object", "properties": {}},
            server=config.name,
            remote_name=tool.name,
            call_server=call_server,
            metadata={
                "approval": approval_for(config, tool),
                "timeout_s": config.timeout_s,
                "mcp_server": config.name,
            },
        )
        for tool in listed
        if allowed is None or tool.name in allowed
    ]
