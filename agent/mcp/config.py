"""The MCP config file (`AGENT_MCP_CONFIG` / `--mcp-config`), in the format Claude Desktop, Cursor
and VS Code use:

    {"mcpServers": {
        "time": {"command": "uvx", "args": ["mcp-server-time"], "env": {"TZ": "${TZ}"}},
        "remote": {"url": "https://example.com/mcp", "headers": {"Authorization": "Bearer ${TOKEN}"}}
    }}

A server has either a `command` (stdio) or a `url` (Streamable HTTP; `"type": "sse"` for the older
SSE transport). `${VAR}` in any string is replaced from the environment, so secrets stay out of the
file. Optional per server: `"tools"` (an allow-list of tool names), `"timeout_s"` (per call),
`"startup_timeout_s"` and `"approval"` (`"auto"`, `"always"`, `"never"`, or per tool:
`{"git_status": "never", "*": "always"}`).

A file that cannot be used at all raises `McpConfigError`; a server whose entry cannot be used is
returned as a `ServerProblem`, so the other servers still start.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Transport = Literal["stdio", "http", "sse"]
Policy = Literal["auto", "always", "never"]
POLICIES = ("auto", "always", "never")
DEFAULT_TIMEOUT_S = 30.0
DEFAULT_STARTUP_TIMEOUT_S = 30.0
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SERVER_NAME = re.compile(r"^[A-Za-z0-9_-]{1,40}$")


class McpConfigError(ValueError):
    """The config file cannot be used at all (missing, not JSON, no `mcpServers`)."""


@dataclass(frozen=True)
class ServerConfig:
    """One MCP server, with `${VAR}`s already replaced."""

    name: str
    transport: Transport
    command: str = ""
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    url: str = ""
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    tools: tuple[str, ...] | None = None
    """The tools offered to the model; None: all the server lists."""
    timeout_s: float = DEFAULT_TIMEOUT_S
    """How long one call may take."""
    startup_timeout_s: float = DEFAULT_STARTUP_TIMEOUT_S
    """How long connecting and listing the tools may take."""
    approval: Mapping[str, Policy] = field(default_factory=lambda: {"*": "auto"})
    """Policy by tool name, `*` for the others."""

    def policy_for(self, tool: str) -> Policy:
        return self.approval.get(tool, self.approval.get("*", "auto"))

    @property
    def where(self) -> str:
        """What the server is, for people: its command, or its URL without credentials or query."""
        if self.transport == "stdio":
            return " ".join([self.command, *self.args])[:80]
        return re.sub(r"//[^/@]*@", "//", self.url.split("?")[0])


@dataclass(frozen=True)
class ServerProblem:
    """A server entry that cannot be used, and why (one line)."""

    name: str
    reason: str


def read_config(path: str | Path, env: Mapping[str, str]) -> list[ServerConfig | ServerProblem]:
    """The servers of the config file at `path`, in the file's order."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise McpConfigError(f"cannot read {path}: {error.strerror or error}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise McpConfigError(
            f"{path} is not valid JSON (line {error.lineno}, column {error.colno}: {error.msg})"
        ) from None
    servers = document.get("mcpServers", document.get("servers")) if isinstance(document, dict) else None
    if not isinstance(servers, dict):
        raise McpConfigError(
            f'{path} has no "mcpServers" object (expected {{"mcpServers": {{"name": {{...}}}}}})'
        )
    return [_server(str(name), entry, env) for name, entry in servers.items()]


def _server(name: str, entry: Any, env: Mapping[str, str]) -> ServerConfig | ServerProblem:
    try:
        if not _SERVER_NAME.match(name):
            raise ValueError("a server name may only have letters, digits, '_' and '-' (at most 40)")
        if not isinstance(entry, dict):
            raise ValueError("its entry must be an object")
        entry = _substituted(entry, env)
        return ServerConfig(
            name=name,
            **_transport(entry),
            tools=_tool_list(entry.get("tools")),
            timeout_s=_timeout(entry.get("timeout_s", DEFAULT_TIMEOUT_S), "timeout_s"),
            startup_timeout_s=_timeout(
                entry.get("startup_timeout_s", DEFAULT_STARTUP_TIMEOUT_S), "startup_timeout_s"
            ),
            approval=_approval(entry.get("approval", "auto")),
        )
    except ValueError as error:
        return ServerProblem(name, f"{error}; fix its entry in the MCP config")


def _transport(entry: dict[str, Any]) -> dict[str, Any]:
    kind = str(entry.get("type", "")).lower().replace("_", "-")
    if "command" in entry and "url" in entry:
        raise ValueError('give either "command" (stdio) or "url" (HTTP), not both')
    if "command" in entry:
        command = entry["command"]
        if not isinstance(command, str) or not command.strip():
            raise ValueError('"command" must be a non-empty string')
        return {
            "transport": "stdio",
            "command": command,
            "args": tuple(_strings(entry.get("args", []), "args")),
            "env": _string_map(entry.get("env", {}), "env"),
            "cwd": entry.get("cwd") if isinstance(entry.get("cwd"), str) else None,
        }
    if "url" in entry:
        url = entry["url"]
        if not isinstance(url, str) or not re.match(r"^https?://", url):
            raise ValueError('"url" must be an http:// or https:// address')
        return {
            "transport": "sse" if kind == "sse" else "http",
            "url": url,
            "headers": _string_map(entry.get("headers", {}), "headers"),
        }
    raise ValueError('it needs a "command" (a stdio server) or a "url" (a Streamable HTTP server)')


def _substituted(value: Any, env: Mapping[str, str]) -> Any:
    """`value` with every `${VAR}` in its strings replaced; an unset variable is an error."""
    if isinstance(value, str):

        def variable(match: re.Match[str]) -> str:
            if match[1] not in env:
                raise ValueError(f"it uses ${{{match[1]}}}, which is not set in the environment")
            return env[match[1]]

        return _VARIABLE.sub(variable, value)
    if isinstance(value, list):
        return [_substituted(item, env) for item in value]
    if isinstance(value, dict):
        return {key: _substituted(item, env) for key, item in value.items()}
    return value


def _strings(value: Any, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f'"{what}" must be a list of strings')
    return value


def _string_map(value: Any, what: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(item, str) for item in value.values()):
        raise ValueError(f'"{what}" must be an object of strings')
    return value


def _tool_list(value: Any) -> tuple[str, ...] | None:
    return None if value is None else tuple(_strings(value, "tools"))


def _timeout(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(f'"{what}" must be a number of seconds above 0')
    return float(value)


def _approval(value: Any) -> dict[str, Policy]:
    policies = {"*": value} if isinstance(value, str) else value
    if not isinstance(policies, dict) or any(policy not in POLICIES for policy in policies.values()):
        raise ValueError(
            '"approval" must be "auto", "always" or "never", or an object of those by tool name ("*" for the rest)'
        )
    return {"*": "auto", **policies}
