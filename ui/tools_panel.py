"""The "🧰 Tools" panel: what the agent may call, from which server, and which servers are down.

Only names reach the page: why a server is down (its command, its address) is for the operator,
on stderr (`agent.mcp.servers`). A tool that asks for approval before it runs is marked ✋.
"""

from __future__ import annotations

from agent import BUILT_IN, Toolbox, needs_approval

NEEDS_MODEL = (
    "⚠️ The MCP tools need a model: the offline model only plans arithmetic. Set `OPENAI_API_KEY` "
    "(with `OPENAI_BASE_URL` for another OpenAI-compatible server), or use your own key under 🔑."
)


def tools_title(toolbox: Toolbox) -> str:
    """The panel's one-line title: how many tools from how many servers, and any down."""
    grouped = toolbox.by_source()
    servers = [source for source in grouped if source != BUILT_IN]
    count = len(toolbox.tools)
    title = f"🧰 Tools: {count} ({len(grouped.get(BUILT_IN, []))} built-in"
    title += f", {count - len(grouped.get(BUILT_IN, []))} from {len(servers)} MCP server{'s' * (len(servers) != 1)})"
    if toolbox.down:
        names = ", ".join(server.name for server in toolbox.down)
        title += f" · ⚠️ down: {names}"
    return title


def tools_markdown(toolbox: Toolbox, offline: bool) -> str:
    """The panel's body: the tools by source, the servers that are down, and a word when no model can use them."""
    lines = []
    if offline and toolbox.has_server_tools:
        lines += [NEEDS_MODEL, ""]
    for source, names in toolbox.by_source().items():
        shown = ", ".join(_tool(toolbox, name) for name in names)
        label = "Built-in" if source == BUILT_IN else f"MCP server **{source}**"
        lines.append(f"- {label}: {shown}")
    for server in toolbox.down:
        lines.append(
            f"- MCP server **{server.name}**: ⚠️ not available (its tools are missing; see the server's log)"
        )
    if any(_asks(toolbox, name) for name in toolbox.names):
        lines += ["", "✋ asks for your approval before it runs."]
    return "\n".join(lines)


def _tool(toolbox: Toolbox, name: str) -> str:
    return f"`{name}`{' ✋' if _asks(toolbox, name) else ''}"


def _asks(toolbox: Toolbox, name: str) -> bool:
    tool = toolbox.get(name)
    return tool is not None and needs_approval(tool)
