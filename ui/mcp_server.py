"""This app as an MCP server (opt-in: `--mcp-server` / `AGENT_MCP_SERVER=1`): one tool, `ask_agent`.

Another agent (Claude Desktop, Cursor, a script with the `mcp` SDK) calls
`ask_agent` with a question; the question runs as one full turn of this app's
agent (the same engine, tools, MCP tools and step limit as the page, on the
server's model) and the call returns the final answer as text, with the tool
steps as structured content. Each call is a conversation of its own.

Gradio's own MCP support (`launch(mcp_server=True)`) is written for mcp 1.x and
fails on the mcp 2.x this app needs ("'Server' object has no attribute
'call_tool'"), so the endpoint is the official SDK's `MCPServer` over Streamable
HTTP, **stateless** (each POST stands alone: no session to keep, any worker
behind the proxy can answer it), served at `MCP_PATH` on the page's own port:

- the guard admits `POST MCP_PATH` only when the server is on (`routes`), with
  the limits of every other client: the body cap, the per-address call budget,
  and the per-address chat limit, which counts the page's turns and these
  together (`turns_of`);
- on the server's key, only the models of its allow-list (`AGENT_MODELS`) run;
- a tool call that needs a person's approval is declined: nobody can click
  Approve over MCP (`agent.NobodyToAsk`);
- the SDK's session manager runs in the app's lifespan; each turn is one of the
  lifecycle's, so SIGTERM drains it like a page's turn (and cuts it after the grace).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Annotated, Any

import gradio as gr
from langchain_core.language_models import BaseChatModel
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field
from starlette.middleware import Middleware

from agent import (
    ARITHMETIC,
    BUILT_IN,
    FINAL_ANSWER,
    ModelNotAllowed,
    NobodyToAsk,
    ServerSettings,
    Settings,
    Toolbox,
    agent_turn,
    backend_label,
    needs_approval,
)
from agent.events import Failed, Finished, ToolArgsDelta, ToolCallStarted, ToolResult
from ui.allow_list import WRITE, Route
from ui.guard import (
    ASGIApp,
    Receive,
    Scope,
    Send,
    TurnsOutsideTheQueue,
    busy_message,
    client_address,
    turn_functions,
    turns_of,
)
from ui.lifecycle import CUT_SHORT, RESTARTING, SHUTDOWN_REASON, Lifecycle
from ui.stopping import until_set

MCP_PATH = "/mcp"
TOOL_NAME = "ask_agent"
VIA_MCP = f"mcp {TOOL_NAME}"
"""How the turn's log line names a question asked here."""
NO_APPROVER = "it needs a person's approval, which nobody can give over MCP; ask in the app's page instead"
MAX_STEP_OUTPUT_CHARS = 2_000
"""A tool step's output as the structured content carries it (the model read it whole)."""

_client: ContextVar[str] = ContextVar("mcp_client", default="unknown")
"""The address of the client whose MCP request is being answered (set by `McpEndpoint`)."""


class ToolStep(BaseModel):
    """One tool call the agent made while answering."""

    tool: str
    arguments: str = Field(description="The call's JSON arguments, as the model wrote them.")
    output: str = Field(description=f"What the tool returned (cut at {MAX_STEP_OUTPUT_CHARS:,} characters).")
    is_error: bool


class AgentAnswer(BaseModel):
    """The structured content of an answer."""

    answer: str
    model: str = Field(description="The backend and model that answered.")
    tools_used: list[str]
    steps: list[ToolStep]


class AgentMcpServer:
    """The MCP endpoint of one app process: its tool, its route, its middleware and lifespan."""

    def __init__(
        self,
        blocks: gr.Blocks,
        settings: Settings,
        toolbox: Toolbox,
        guard: ServerSettings,
        lifecycle: Lifecycle,
        chat_model: BaseChatModel | None = None,
        turns: TurnsOutsideTheQueue | None = None,
    ) -> None:
        """`turns` counts the questions running here, per address; give the page's check the
        same one (`create_app(other_turns=...)`) so that it counts them too."""
        self.blocks, self.settings, self.toolbox = blocks, settings, toolbox
        self.guard, self.lifecycle, self.chat_model = guard, lifecycle, chat_model
        self.turns = turns or TurnsOutsideTheQueue()
        self._page_turns: frozenset[int] | None = None
        self.mcp = MCPServer(
            "streaming-agent",
            instructions="Ask this agent questions with the ask_agent tool; each call is a new conversation.",
        )
        self.mcp.add_tool(
            self.ask_agent,
            name=TOOL_NAME,
            title="Ask the agent",
            description=tool_description(toolbox, settings),
            annotations=ToolAnnotations(
                read_only_hint=acts_only_with_approval(toolbox), open_world_hint=toolbox.has_server_tools
            ),
        )
        # Builds the session manager this endpoint serves with (the Starlette app around it is not used).
        # The guard decides who may call; Host and Origin are whatever the deployment serves on.
        self.mcp.streamable_http_app(
            streamable_http_path=MCP_PATH,
            stateless_http=True,
            max_request_body_size=guard.max_request_bytes,
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )

    @property
    def routes(self) -> tuple[Route, ...]:
        """What the guard lets through to this endpoint."""
        return (Route(WRITE, MCP_PATH, "mcp"),)

    def turns_of(self, client: str) -> int:
        """This client's turns asked over MCP that are running now."""
        return self.turns(client)

    def launch_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """`demo.launch()` options with this endpoint added: its middleware inside the guard's,
        and the SDK's session manager running for as long as the server does."""
        app_kwargs = dict(options.get("app_kwargs") or {})
        app_kwargs["middleware"] = [*app_kwargs.get("middleware", []), Middleware(McpEndpoint, server=self)]
        app_kwargs["lifespan"] = self.lifespan
        return {**options, "app_kwargs": app_kwargs}

    @asynccontextmanager
    async def lifespan(self, _app: Any) -> AsyncIterator[None]:
        async with self.mcp.session_manager.run():
            yield

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = _client.set(_client_of(scope, self.guard.trust_proxy_headers))
        try:
            await self.mcp.session_manager.handle_request(scope, receive, send)
        finally:
            _client.reset(token)

    async def ask_agent(
        self,
        question: Annotated[
            str, Field(description="The question, in plain language, with everything it needs.")
        ],
        model: Annotated[
            str | None, Field(description="The model to answer with (default: the server's own).")
        ] = None,
        ctx: Context | None = None,
    ) -> Annotated[CallToolResult, AgentAnswer]:
        """One turn of the agent for `question`; an error result says why there is no answer.
        A caller that asked for progress gets one notification per tool step as it ends."""
        client = _client.get()
        if self.lifecycle.draining:
            return error_result(RESTARTING)
        try:
            settings = self.settings.for_request(model=model)
        except ModelNotAllowed:  # its words point to the page's key box, which a caller here does not have
            shown = model if model is None or len(model) <= 40 else model[:40] + "…"
            allowed = ", ".join(self.settings.models)
            return error_result(
                f"The model {shown!r} is not available on this server's key; choose one of: {allowed}."
            )
        if self._page_turns_of(client) + self.turns(client) >= self.guard.max_chats_per_client:
            return error_result(busy_message(self.guard))
        with self.turns.running(client):
            return await self._answer(question, settings, ctx)

    async def _answer(self, question: str, settings: Settings, ctx: Context | None) -> CallToolResult:
        steps = StepRecorder()
        outcome: Finished | Failed | None = None
        with self.lifecycle.turn(stop := asyncio.Event()):
            async with agent_turn(
                question,
                [],
                settings,
                self.chat_model,
                toolbox=self.toolbox,
                approvals=NobodyToAsk(NO_APPROVER),
                via=VIA_MCP,
            ) as turn:
                async for event in until_set(turn.events(), stop):
                    if (step := steps.note(event)) and ctx is not None:
                        await ctx.report_progress(len(steps.steps), message=progress_line(step))
                    if isinstance(event, Finished | Failed):
                        outcome = event
                if outcome is None:  # cut by a shutdown past its grace
                    turn.stop_reason = SHUTDOWN_REASON
        if isinstance(outcome, Finished):
            answer = AgentAnswer(
                answer=outcome.answer,
                model=backend_label(settings),
                tools_used=list(outcome.tools_used),
                steps=steps.steps,
            )
            return CallToolResult(
                content=[TextContent(text=outcome.answer)], structured_content=answer.model_dump()
            )
        return error_result(CUT_SHORT if outcome is None else outcome.message)

    def _page_turns_of(self, client: str) -> int:
        if self._page_turns is None:
            self._page_turns = frozenset(turn_functions(self.blocks))
        return turns_of(self.blocks, self._page_turns, client, self.guard.trust_proxy_headers)


class StepRecorder:
    """The tool steps of a turn, from its events (the call that gives the answer left out)."""

    def __init__(self) -> None:
        self._calls: dict[str, tuple[str, list[str]]] = {}
        self.steps: list[ToolStep] = []

    def note(self, event: object) -> ToolStep | None:
        """Note `event`; the step it ends, if it ends one."""
        if isinstance(event, ToolCallStarted) and not event.gives_answer:
            self._calls[event.call_id] = (event.name, [])
        elif isinstance(event, ToolArgsDelta) and event.call_id in self._calls:
            self._calls[event.call_id][1].append(event.text)
        elif isinstance(event, ToolResult) and event.call_id in self._calls:
            _, pieces = self._calls.pop(event.call_id)
            output = event.output[:MAX_STEP_OUTPUT_CHARS]
            step = ToolStep(
                tool=event.name, arguments="".join(pieces), output=output, is_error=event.is_error
            )
            self.steps.append(step)
            return step
        return None


class McpEndpoint:
    """ASGI middleware (inside the guard): requests for `MCP_PATH` go to the MCP server."""

    def __init__(self, app: ASGIApp, server: AgentMcpServer) -> None:
        self.app, self.server = app, server

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _path(scope) == MCP_PATH:
            await self.server.handle(scope, receive, send)
            return
        await self.app(scope, receive, send)


def acts_only_with_approval(toolbox: Toolbox) -> bool:
    """Whether every tool that might act needs a person's approval (declined over MCP): then asking
    the agent over MCP changes nothing. Only the arithmetic tools are known not to act."""
    return all(tool.name in ARITHMETIC.names or needs_approval(tool) for tool in toolbox.tools)


def tool_description(toolbox: Toolbox, settings: Settings) -> str:
    """What another agent reads to decide when to call `ask_agent`."""
    tools = [name for name in toolbox.names if name != FINAL_ANSWER]
    servers = sorted({source for source in toolbox.sources.values() if source != BUILT_IN})
    models = ", ".join(settings.models)
    return (
        "Ask this app's agent a question in plain language. It works the answer out step by step "
        f"with its own tools ({', '.join(tools)}"
        + (f"; from MCP servers: {', '.join(servers)}" if servers else "")
        + "), never in its head, and returns its final answer as text; the structured content also "
        "lists every tool call it made. Each call is a new conversation: put everything the "
        "question needs into it. Calls of tools that need a person's approval are declined. "
        f"Models on this server: {models}."
    )


def _path(scope: Scope) -> str:
    path, root = scope["path"], scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def _client_of(scope: Scope, trust_proxy_headers: bool) -> str:
    headers: Iterable[tuple[bytes, bytes]] = scope.get("headers", [])
    forwarded = [value.decode("latin-1") for name, value in headers if name == b"x-forwarded-for"]
    peer = scope.get("client")
    return client_address(forwarded, peer[0] if peer else None, trust_proxy_headers)


def progress_line(step: ToolStep) -> str:
    """A tool step as one short progress message: `add {"a": 2, "b": 3} → 5`."""
    output = " ".join(step.output.split())
    output = output if len(output) <= 200 else output[:199] + "…"
    return f"{step.tool} {step.arguments} → {'error: ' if step.is_error else ''}{output}"


def error_result(message: str) -> CallToolResult:
    """A call that ends without an answer: the message, for the calling agent to read and pass on."""
    return CallToolResult(content=[TextContent(text=message)], is_error=True)
