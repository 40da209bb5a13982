"""The tools a turn may call: one `Toolbox`, built once at start-up and passed to each turn.

The arithmetic tools and `final_answer` (`agent.tools`) are always there; tools
from MCP servers (`agent.mcp`) join them. Each tool has a source: `"built-in"`,
or the name of the MCP server it came from. Two tools may not share a name (the
model calls tools by name): a clash is resolved when the toolbox is built, the
same way every time, and logged: built-in tools keep their names, and a later
server's tool is renamed `<server>_<tool>` (then `<server>_<tool>_2`, ...).

A tool's `metadata` may carry `timeout_s` (the executor's per-call limit for it)
and `approval` (`"always"` or `"never"`; absent means never).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool

from agent.tools import TOOLS

log = logging.getLogger(__name__)

BUILT_IN = "built-in"


@dataclass(frozen=True)
class ServerDown:
    """An MCP server whose tools are missing, and why, in one line for people."""

    name: str
    reason: str


@dataclass(frozen=True)
class Toolbox:
    """The tools a turn may call, by name, with where each came from and which servers are down."""

    tools: tuple[BaseTool, ...] = tuple(TOOLS)
    sources: Mapping[str, str] = field(default_factory=dict)
    """Tool name → its source (`BUILT_IN` or an MCP server's name); built-in when absent."""
    down: tuple[ServerDown, ...] = ()

    def __post_init__(self) -> None:
        names = [tool.name for tool in self.tools]
        if len(set(names)) != len(names):
            raise ValueError(f"two tools share a name: {sorted(n for n in names if names.count(n) > 1)}")
        object.__setattr__(self, "_by_name", {tool.name: tool for tool in self.tools})

    @classmethod
    def combine(
        cls, server_tools: Mapping[str, Sequence[BaseTool]], down: Iterable[ServerDown] = ()
    ) -> Toolbox:
        """The built-in tools plus each server's (in the mapping's order), clashes renamed."""
        tools = list(TOOLS)
        sources = {tool.name: BUILT_IN for tool in tools}
        for server, offered in server_tools.items():
            for tool in offered:
                name = _free_name(tool.name, server, sources)
                if name != tool.name:
                    log.warning(
                        "MCP server %r: tool %r is also offered by %s; the model sees it as %r",
                        server,
                        tool.name,
                        sources[tool.name],
                        name,
                    )
                    tool = tool.model_copy(update={"name": name})
                tools.append(tool)
                sources[name] = server
        return cls(tuple(tools), sources, tuple(down))

    @functools.cached_property
    def schemas(self) -> tuple[dict[str, Any], ...]:
        """The tools as the model is told of them (OpenAI's tool format), converted once per
        toolbox rather than for each turn: binding these is binding the tools."""
        return tuple(convert_to_openai_tool(tool) for tool in self.tools)

    def get(self, name: str) -> BaseTool | None:
        return self._by_name.get(name)  # type: ignore[attr-defined]

    @property
    def names(self) -> list[str]:
        return [tool.name for tool in self.tools]

    def source(self, name: str) -> str:
        return self.sources.get(name, BUILT_IN)

    def by_source(self) -> dict[str, list[str]]:
        """Tool names grouped by source, built-in first, in the toolbox's order."""
        grouped: dict[str, list[str]] = {}
        for tool in self.tools:
            grouped.setdefault(self.source(tool.name), []).append(tool.name)
        return grouped

    @property
    def has_server_tools(self) -> bool:
        return any(source != BUILT_IN for source in self.sources.values()) or bool(self.down)


def _free_name(name: str, server: str, taken: Mapping[str, str]) -> str:
    if name not in taken:
        return name
    candidate = f"{server}_{name}"
    number = 2
    while candidate in taken:
        candidate = f"{server}_{name}_{number}"
        number += 1
    return candidate


ARITHMETIC = Toolbox()
"""The built-in tools alone: what a turn gets when no toolbox is given."""
