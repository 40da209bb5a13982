"""The Gradio chat app: builds the page, wires its events, launches it. The engine is in `agent/`,
the page's parts (the chat function, view, pacing, Stop, guard, CSS and script) in `ui/`.

    python app.py [--host 0.0.0.0] [--port 7860] [--share] [--offline] [--mcp-server]

Importing this module does nothing but define functions: `main()` reads the settings, builds the
demo and sets the module-level `demo` before it launches, which is where `gradio app.py` (reload
mode) looks for it (reload mode re-runs this file, and so `main()`, in its watcher thread).
"""

from __future__ import annotations

import argparse
import functools
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gradio as gr
from langchain_core.language_models import BaseChatModel

from agent import ARITHMETIC, McpServers, ServerSettings, Settings, Toolbox, preload, start_configured
from store import Limits, database_url
from ui import page
from ui.approval import ApprovalPanel, SessionApprovals
from ui.chat import backend_line, chat_function
from ui.chatbot import PreparedChatbot
from ui.gradio_seams import default_address, keep_no_queue_analytics, watch_only_project_code
from ui.guard import TurnsOutsideTheQueue, busy_message, is_busy
from ui.heap import settle_after_start
from ui.lifecycle import RESTARTING, Lifecycle, catch_stop_signals, lifecycle_options, serve_until_signal
from ui.live_turn import LiveTurnChatInterface
from ui.mcp_server import MCP_PATH, TOOL_NAME, AgentMcpServer
from ui.pacing import UpdateBudget
from ui.page import serve_options
from ui.saved import SavedConversations, SessionConversation
from ui.saved_panel import SavedPanel
from ui.stopping import StopSignals, stop_by_signal
from ui.tools_panel import tools_markdown, tools_title


def create_app(
    settings: Settings,
    budget: UpdateBudget | None = None,
    concurrency: int = 200,
    chat_model: BaseChatModel | None = None,
    guard: ServerSettings | None = None,
    toolbox: Toolbox = ARITHMETIC,
    saved: SavedConversations | None = None,
    lifecycle: Lifecycle | None = None,
    other_turns: Callable[[str], int] | None = None,
) -> gr.Blocks:
    """The chat UI for these server settings; each request may bring its own key and model.

    `guard` is the server's settings whose limits the guard, the chat and the page enforce
    (the same `ServerSettings` that `main` read; default: the defaults).
    `chat_model` replaces the model the settings name (benchmarks serve scripted ones);
    `toolbox` is what the agent may call (built at start-up); `saved` is where conversations
    are saved (None: nowhere, and no panel of saved conversations); `lifecycle` is the
    process's, which drains it on SIGTERM. `other_turns` counts a client address's turns
    outside the page's queue (the MCP endpoint's), which the page's chat limit counts too.
    """
    guard = guard or ServerSettings()
    lifecycle = lifecycle or Lifecycle()
    stop_signals = StopSignals()
    approvals = SessionApprovals()
    chat = chat_function(
        settings,
        budget or UpdateBudget(),
        guard,
        stop_signals,
        chat_model,
        toolbox,
        approvals,
        saved,
        lifecycle,
    )
    show_backend = functools.partial(backend_line, settings)
    preload(settings)

    def refuse_when_busy(request: gr.Request) -> str | None:
        """A question typed while this client has its share running is refused by the textbox,
        which keeps the text (the guard would refuse it too, less gently); so is one typed
        while the server shuts down."""
        if lifecycle.draining:
            return RESTARTING
        return busy_message(guard) if is_busy(demo, request, guard, other_turns) else None

    with gr.Blocks(title=page.TITLE, fill_height=True, delete_cache=(3600, 3600)) as demo:
        gr.Markdown(f"<h1 style='text-align: center'>{page.TITLE}</h1>", elem_id="app-title")
        gr.Markdown(page.DESCRIPTION, elem_id="app-description")
        with gr.Row(elem_id="backend-row", equal_height=True):
            backend = gr.Markdown(show_backend(settings.model, ""), elem_id="backend-line")
            key_button = gr.Button(
                "🔑 Use your own OpenAI key", size="sm", scale=0, visible=settings.api_key is None
            )
        if toolbox.has_server_tools:
            with gr.Accordion(tools_title(toolbox), open=False, elem_id="tools-panel"):
                gr.Markdown(tools_markdown(toolbox, settings.offline), elem_id="tools-list")
        with gr.Accordion(page.KEY_PANEL, open=False, elem_id="key-panel") as key_panel:
            model_box = gr.Dropdown(
                choices=list(settings.models),
                value=settings.model,
                label="Model",
                allow_custom_value=True,
                info="On the server's key: one of these. With your own key below: any model name (you pay).",
            )
            key_box = gr.Textbox(
                value="",
                type="password",
                label="Your OpenAI API key (optional)",
                info="Used for your requests only; never stored or logged.",
            )
        approval_panel = ApprovalPanel()
        session = gr.State(SessionConversation())
        saved_id_box = gr.Textbox("", visible=False, label="saved conversation")  # the API names one
        with gr.Row(scale=1, elem_id="chat-row"):
            with gr.Column(scale=1, min_width=220, elem_classes=["chat-history"], visible=saved is not None):
                panel = SavedPanel(saved) if saved is not None else None
            with gr.Column(scale=5):
                chat_interface = LiveTurnChatInterface(
                    chat,
                    panel=approval_panel,
                    max_messages=guard.max_chat_messages,
                    max_chars=guard.max_chat_chars,
                    chatbot=PreparedChatbot(
                        label="Agent",
                        scale=1,
                        buttons=["copy", "copy_all"],
                        editable="user",
                        elem_id="agent-chat",
                    ),
                    additional_inputs=[model_box, key_box, session, saved_id_box],
                    page_inputs=[panel.open_id] if panel is not None else [],
                    examples=page.EXAMPLES,
                    api_name="chat",
                    refuse=refuse_when_busy,
                    concurrency_limit=concurrency,
                    fill_height=True,
                )
        if panel is not None:
            panel.wire(demo, chat_interface, session)
        chat_interface.textbox.elem_id = "chat-input"
        hidden: dict[str, Any] = {"queue": False, "api_visibility": "private"}
        gr.on([model_box.change, key_box.change], show_backend, [model_box, key_box], backend, **hidden)
        key_button.click(lambda: gr.Accordion(open=True), None, key_panel, **hidden)
        stop_by_signal(demo, chat_interface, stop_signals)
        approval_panel.wire(approvals)
    # api_open=False: the direct `/gradio_api/run/...` routes would run a turn outside the queue
    # (outside the concurrency limit and the per-client limit); Gradio opens them except on Spaces.
    demo.queue(default_concurrency_limit=concurrency, api_open=False)
    keep_no_queue_analytics(demo)  # for the monitoring dashboard, which the guard refuses
    return demo


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Streaming tool-calling agent with a Gradio chat UI.")
    parser.add_argument("--host", help="address to bind (default: GRADIO_SERVER_NAME or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default: GRADIO_SERVER_PORT or 7860)")
    parser.add_argument("--share", action="store_true", default=None, help="create a public Gradio link")
    parser.add_argument(
        "--offline", action="store_true", help="use the offline arithmetic model even if a key is set"
    )
    parser.add_argument(
        "--mcp-server",
        action="store_true",
        default=None,
        help="also serve this app as an MCP server at /mcp (default: AGENT_MCP_SERVER)",
    )
    parser.add_argument(
        "--mcp-config",
        metavar="PATH",
        help="MCP servers whose tools the agent gets (default: AGENT_MCP_CONFIG)",
    )
    return parser.parse_args(argv)


def read_settings(offline: bool) -> tuple[Settings, ServerSettings]:
    """The settings from the environment; a bad value stops the app with one line saying which and why."""
    try:
        return Settings.from_env(offline=offline), ServerSettings.from_env()
    except ValueError as error:
        raise SystemExit(f"{error}: fix it in the environment or .env, or unset it.") from None


demo: gr.Blocks
"""The demo `main()` serves; set by `main()`, for reload mode."""


def saved_conversations(server: ServerSettings) -> SavedConversations:
    """Where conversations are saved: AGENT_DATABASE_URL, or SQLite under AGENT_DATA_DIR (opened on first use)."""
    configured = server.database_url.get_secret_value() if server.database_url else None
    limits = Limits(server.max_saved_conversations, server.max_saved_bytes, server.retention_days)
    return SavedConversations(database_url(server.data_dir, configured), limits, server.max_chat_messages)


def main(argv: Sequence[str] | None = None) -> None:
    """Read the flags and the environment, build the demo and serve it until interrupted."""
    global demo
    args = parse_args(argv)
    settings, server = read_settings(offline=args.offline)
    lifecycle = Lifecycle(server.shutdown_grace_s)
    watch_only_project_code(Path(__file__))
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("agent").setLevel(logging.INFO)  # one line per turn, for operators
    logging.getLogger("ui.pacing").setLevel(logging.INFO)  # the frame, when load changes it
    mcp_servers, toolbox = start_configured(args.mcp_config or server.mcp_config)  # closed at exit
    saved = saved_conversations(server)
    mcp_turns = TurnsOutsideTheQueue()  # the page's chat limit counts the MCP endpoint's questions
    lifecycle.on_shutdown(saved.aclose)  # after the last turn (and its save) ended
    # A local name as well as the global: reload mode re-runs this file in its thread, rebinding the global.
    demo = app = create_app(
        settings,
        UpdateBudget.from_server(server),
        server.concurrency,
        guard=server,
        toolbox=toolbox,
        saved=saved,
        lifecycle=lifecycle,
        other_turns=mcp_turns,
    )
    share = (server.share if args.share is None else args.share) and not server.on_spaces
    serve_mcp = server.mcp_server if args.mcp_server is None else args.mcp_server
    mcp = AgentMcpServer(app, settings, toolbox, server, lifecycle, turns=mcp_turns) if serve_mcp else None
    try:
        app.launch(
            **lifecycle_options(serve_options(app, server, mcp), lifecycle),
            server_name=args.host,  # None: Gradio reads GRADIO_SERVER_NAME and GRADIO_SERVER_PORT itself
            server_port=args.port,
            share=share,  # never on Hugging Face Spaces, which serves the app itself
            max_threads=max(40, server.concurrency),
            state_session_capacity=server.max_sessions,
            prevent_thread_lock=True,
            quiet=True,  # Gradio's hints name `launch()` arguments; ours name this app's flags
        )
    except OSError:  # Gradio's "Cannot find empty port in range", with a traceback
        raise SystemExit(_port_problem(args.host, args.port)) from None
    if app.local_url is None:  # reload mode's watcher runs this file again; the server already runs
        return
    signalled = catch_stop_signals(lifecycle)  # before anyone learns the address
    print(f"* Running on local URL:  {app.protocol}://{app.server_name}:{app.server_port}", flush=True)
    if mcp is not None:
        print(
            f"* MCP server (tool {TOOL_NAME!r}): {app.protocol}://{app.server_name}:{app.server_port}{MCP_PATH}",
            flush=True,
        )
    if not share:
        print("* For a public link, start it with --share (it needs internet access).", flush=True)
    elif not app.share_url:
        print(
            "No public link: Gradio could not open its share tunnel (it downloads a tunnel binary and "
            f"connects to Gradio's share server, which needs internet access). Still serving at {app.local_url}",
            flush=True,
        )
    settle_after_start()  # start-up's objects leave the garbage collector's scans
    try:
        # the turns end before the tools' servers close
        exit_code = serve_until_signal(app, lifecycle, signalled)
    finally:
        _close(mcp_servers)
    raise SystemExit(exit_code)


def _close(mcp_servers: McpServers | None) -> None:
    """Close the MCP sessions and stop their stdio servers (at exit they are closed anyway)."""
    if mcp_servers is not None:
        mcp_servers.close()


def _port_problem(host: str | None, port: int | None) -> str:
    default_host, default_port = default_address()
    port = port or default_port
    host = host or default_host
    return (
        f"Cannot serve on {host}:{port}: the port is in use (or {host} is not an address of this machine). "
        f"Stop what uses it, or choose another port: python app.py --port {port + 1}"
    )


if __name__ == "__main__":
    main()
