"""The page around the chat: its texts, and the CSS (`page.css`) and scripts (`page.js`, and
`connection.js`, which keeps an unanswered question across a lost connection) it loads.

Gradio 6 takes the CSS and the head at launch, so `serve_options` hands them over
with the guard's options. The script goes in a `<script>` in the head: it runs
under the Content-Security-Policy (`ui.guard`), where a component's `js_on_load`,
compiled with `new Function`, would not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr
from starlette.middleware import Middleware

from agent import ServerSettings
from ui.guard import guard_options
from ui.live_turn import LIVE_TURN_CSS
from ui.mcp_server import AgentMcpServer
from ui.owner import OwnerCookie

TITLE = "🧮 Streaming tool-calling agent"
DESCRIPTION = (
    "Ask an arithmetic question and watch the agent work: each tool call appears as the model "
    "decides it, its arguments stream in, it flips to done with its result, and the answer types "
    "itself out."
)
EXAMPLES = [
    ["What is (2 + 3) * (4 + 5)?"],
    ["What is 1 + 2 + 3 + 4 + 5 + 6 + 7 + 8?"],
    ["2 to the power of 10, minus 24"],
    ["(1.5 + 2.5) * (10 - 4) / 3"],
    ["What is the square root of 144 plus 3 cubed?"],
]
KEY_PANEL = "🔑 Model and API key"

HERE = Path(__file__).parent
CSS = (HERE / "page.css").read_text()
HEAD = "".join(f"<script>{(HERE / name).read_text()}</script>" for name in ("page.js", "connection.js"))


def serve_options(
    demo: gr.Blocks, guard: ServerSettings, mcp: AgentMcpServer | None = None
) -> dict[str, Any]:
    """What `demo.launch()` needs besides the address: the guard's protections, the owner cookie
    of saved conversations, the page's CSS and script; with `mcp`, the app's MCP endpoint."""
    if mcp is None:
        options = guard_options(demo, guard)
    else:
        options = guard_options(demo, guard, mcp.routes, mcp.turns_of)
    options["app_kwargs"]["middleware"].append(
        Middleware(OwnerCookie, trust_proxy_headers=guard.trust_proxy_headers)
    )
    options = {**options, "css": CSS + LIVE_TURN_CSS, "head": HEAD}
    return options if mcp is None else mcp.launch_options(options)
