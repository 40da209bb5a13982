"""What stands in front of Gradio when the app is on a public link (an ASGI middleware).

- **Default deny**: only the routes, methods and function ids of the app's
  allow-list (`ui.allow_list`) reach Gradio; anything else answers 404.

- **Fair share per client**: at most `max_chats_per_client` chat turns per client
  address, queued or running (the page's and the API's, and questions asked over
  MCP: `other_turns`). One more is answered at once with HTTP 429 and a
  message the page shows; it never enters Gradio's queue, so it holds no queue
  or concurrency slot. Session hashes cost nothing to mint, so the limit is per
  address: the connection's, or the last `X-Forwarded-For` entry (the one the
  trusted proxy appended) when `trust_proxy_headers` is on.
- **Calls per client**: every function call costs from a per-address budget
  (`max_calls_per_s`, with a burst of a few seconds' worth); one that sends a
  conversation costs more with its length, and that conversation is cut to
  the chat's limits (`max_chat_messages`, `max_chat_chars`) before Gradio
  validates or keeps it. Unqueued calls skip the queue and its limits; this
  bounds them.
- **Open streams per client**: event streams and heartbeats from one address are
  capped (`max_streams_per_client`), and a stream that has sent nothing but
  keep-alives for `stream_idle_s` (a heartbeat: whose session made no call for
  that long) is closed as if the client had left.
- **Request size**: bodies over `max_request_bytes` are refused with 413 before
  Gradio reads them.
- **No deep links**: `/gradio_api/deep_link` is not on the allow-list (it would
  write any session's component values, a typed API key included, to disk and
  serve them to whoever has the link), and `?deep_link=` is dropped from every request.
- **Rendering that stays on this origin**: a Content-Security-Policy on every
  response lets images, fonts, media, styles, frames, fetches and form posts
  reach only this origin (plus `data:`/`blob:` where Gradio uses them).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode

import gradio as gr

from agent import ServerSettings
from ui.allow_list import AllowList, Call, Route
from ui.budgets import CallBudget, LastSeen, OpenStreams
from ui.gradio_seams import (
    check_logins_on_the_loop,
    functions,
    match_hot_routes_first,
    noting_disconnects,
    queued_requests,
    read_disconnects_from_the_response,
)
from ui.safety import bounded_chat

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def content_security_policy(frame_ancestors: str) -> str:
    """The policy on every response; `frame_ancestors` says which sites may frame the page."""
    return "; ".join([*_POLICY, f"frame-ancestors {frame_ancestors}"])


_POLICY = (
    "default-src 'self'",
    "script-src 'self' 'unsafe-inline'",  # Gradio's page starts with inline scripts
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "font-src 'self' data:",
    "media-src 'self' data: blob:",
    "connect-src 'self'",
    "frame-src 'self'",
    "worker-src 'self' blob:",
    "form-action 'self'",
    "base-uri 'self'",
    "object-src 'none'",
)
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
CALL_KINDS = frozenset({"join", "predict", "call"})
PAID_KINDS = CALL_KINDS | {"mcp"}
"""Requests that cost from the call budget: function calls, and messages to the MCP server."""
MESSAGES_PER_CALL = 20
"""A call that sends a conversation costs one more call per this many messages (Gradio
validates each message: the cost grows with them)."""
CALL_BURST_S = 6
"""Seconds of calls a client may save up: a page's turn with a long conversation makes a burst."""


def busy_message(settings: ServerSettings) -> str:
    n = settings.max_chats_per_client
    return (
        f"You already have {n} question{'s' * (n != 1)} running from your address "
        f"(AGENT_MAX_CHATS_PER_CLIENT). Wait for one to finish, or stop it, then ask again."
    )


def too_many_streams_message(settings: ServerSettings) -> str:
    return (
        f"Too many open connections from your address (AGENT_MAX_STREAMS_PER_CLIENT: "
        f"{settings.max_streams_per_client}). Close a few tabs of this app, then reload."
    )


def too_many_calls_message(settings: ServerSettings) -> str:
    return (
        f"Too many requests from your address (AGENT_MAX_CALLS_PER_S: {settings.max_calls_per_s:g} a second). "
        "Wait a few seconds, then try again."
    )


def client_address(forwarded_for: Iterable[str], peer: str | None, trust_proxy_headers: bool) -> str:
    """Who is asking: the last `X-Forwarded-For` entry if proxy headers are trusted, else the peer.

    Only the last entry was written by the proxy in front of us; any earlier one is
    whatever the client sent. (uvicorn already resolves the peer from this header
    when the connection comes from this machine: `FORWARDED_ALLOW_IPS`.)
    """
    if trust_proxy_headers:
        entries = [entry.strip() for value in forwarded_for for entry in value.split(",")]
        if entries and entries[-1]:
            return entries[-1]
    return peer or "unknown"


def turn_functions(blocks: gr.Blocks) -> dict[int, str | None]:
    """The queued functions that stream a chat turn (browser submit, retry, edit, API), by id."""
    return {
        fn_id: fn.api_name
        for fn_id, fn in functions(blocks).items()
        if fn.queue and inspect.isasyncgenfunction(fn.fn)
    }


class PublicGuard:
    """ASGI middleware for a Gradio app on a public link; see the module docstring."""

    def __init__(
        self,
        app: ASGIApp,
        blocks: gr.Blocks,
        settings: ServerSettings,
        extra_routes: Iterable[Route] = (),
        other_turns: Callable[[str], int] | None = None,
    ) -> None:
        """`extra_routes` are the app's own routes beside Gradio's (the MCP endpoint); `other_turns`
        counts a client's turns that do not run in Gradio's queue (asked over MCP)."""
        self.app, self.blocks, self.settings = app, blocks, settings
        functions = turn_functions(blocks)
        self.turn_ids = frozenset(functions)
        self.turn_api_names = frozenset(name for name in functions.values() if name)
        self.joining: Counter[str] = Counter()
        self.allowed = AllowList.of(blocks, extra_routes)
        self.other_turns = other_turns or (lambda client: 0)
        self.policy = content_security_policy(settings.frame_ancestors).encode()
        self.streams = OpenStreams(settings.max_streams_per_client)
        self.seen = LastSeen()
        self.calls = CallBudget(settings.max_calls_per_s, settings.max_calls_per_s * CALL_BURST_S)
        read_disconnects_from_the_response()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":  # the server starts: the routes are all there
            match_hot_routes_first(scope["app"])
            check_logins_on_the_loop(scope["app"])  # after: FastAPI rebuilt its routes' dependencies
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":  # the app serves no websocket
            await send({"type": "websocket.close", "code": 1008})
            return
        send = _with_security_headers(send, self.policy)
        path = _route_path(scope)
        route = self.allowed.route(scope["method"], path)
        if route is None or (route.kind == "file" and not self.allowed.allows_file(path)):
            await _respond(send, 404, "Not Found")
            return
        scope["query_string"] = _without_deep_link(scope.get("query_string", b""))
        if route.kind == "stream":
            await self._stream(scope, receive, send, route.session_hash(path))
            return
        if scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        client = self._client(scope["headers"], scope.get("client"))
        if route.kind in PAID_KINDS and not self.calls.has_credit(client):
            await _respond(send, 429, too_many_calls_message(self.settings))  # before reading the body
            return
        body = await _read_body(scope, receive, self.settings.max_request_bytes)
        if body is None:
            limit = self.settings.max_request_bytes
            await _respond(
                send, 413, f"Request too large: the limit is {limit:,} bytes (AGENT_MAX_REQUEST_BYTES)."
            )
            return
        if route.kind == "mcp" and not self.calls.spend(client, 1):
            await _respond(send, 429, too_many_calls_message(self.settings))
            return
        if route.kind not in CALL_KINDS:
            await self.app(scope, _replay(body, receive), send)
            return
        call = self.allowed.call(route, path, body)
        if call is None:
            await _respond(send, 404, "Not Found")
            return
        if call.body.session_hash:
            self.seen.touch(call.body.session_hash)
        conversations = self._bounded_conversations(call)
        if conversations is None:
            await _respond(send, 422, "Not a conversation: a list of messages with a user or assistant role.")
            return
        starts_turn = self._starts_turn(call)
        if (
            starts_turn
            and self.joining[client] + self._turns_of(client) >= self.settings.max_chats_per_client
        ):
            await _respond(send, 429, busy_message(self.settings))
            return
        if not self.calls.spend(client, 1 + sum(map(len, conversations.values())) / MESSAGES_PER_CALL):
            await _respond(send, 429, too_many_calls_message(self.settings))
            return
        receive = _replay(_with_data(scope, call, conversations) or body, receive)
        if not starts_turn:
            await self.app(scope, receive, send)
            return
        self.joining[client] += 1  # until Gradio has queued it, where `_turns_of` sees it
        try:
            await self.app(scope, receive, send)
        finally:
            self.joining[client] -= 1
            if not self.joining[client]:
                del self.joining[client]

    async def _stream(self, scope: Scope, receive: Receive, send: Send, session: str | None) -> None:
        """A long-lived response: within the client's share of open streams, and closed once idle,
        as if the client had left (Gradio cleans up as it does for a closed tab)."""
        client = self._client(scope["headers"], scope.get("client"))
        if not self.streams.open(client):
            await _respond(send, 429, too_many_streams_message(self.settings))
            return
        started, idle_s = time.monotonic(), self.settings.stream_idle_s
        last_data, closed = started, False

        async def send_until_idle(message: Message) -> None:
            nonlocal last_data, closed
            if closed:
                return
            if message["type"] == "http.response.body" and message.get("more_body"):
                now = time.monotonic()
                if not _is_keepalive(message.get("body", b"")):
                    last_data = now
                elif (self.seen.idle_s(session, last_data) if session else now - last_data) > idle_s:
                    closed = True
                    serving.cancel()
                    return
            await send(message)

        serving = asyncio.ensure_future(self.app(scope, noting_disconnects(scope, receive), send_until_idle))
        try:
            await serving
        except asyncio.CancelledError:
            if not closed:
                raise
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            self.streams.close(client)

    def _bounded_conversations(self, call: Call) -> dict[int, list[Any]] | None:
        """The conversations `call` sends, by position, cut to this server's limits; None if one is
        not a conversation at all."""
        bounded: dict[int, list[Any]] = {}
        for slot in call.chat_slots:
            if slot < len(call.body.data):
                value = bounded_chat(
                    call.body.data[slot], self.settings.max_chat_messages, self.settings.max_chat_chars
                )
                if value is None:
                    return None
                bounded[slot] = value
        return bounded

    def _starts_turn(self, call: Call) -> bool:
        return call.fn_id in self.turn_ids or call.api_name in self.turn_api_names

    def _turns_of(self, client: str) -> int:
        queued = turns_of(self.blocks, self.turn_ids, client, self.settings.trust_proxy_headers)
        return queued + self.other_turns(client)

    def _client(self, headers: Iterable[tuple[bytes, bytes]], peer: tuple[str, int] | None) -> str:
        return _client_of(headers, peer, self.settings.trust_proxy_headers)


def turns_of(blocks: gr.Blocks, turn_ids: Iterable[int], client: str, trust_proxy_headers: bool) -> int:
    """This client's turns that Gradio has queued or is running (it forgets each one as it ends)."""
    turn_ids = frozenset(turn_ids)
    return sum(
        1
        for fn_id, request in queued_requests(blocks)
        if fn_id in turn_ids
        and _client_of(request.headers.raw, request.scope.get("client"), trust_proxy_headers) == client
    )


class TurnsOutsideTheQueue:
    """The turns each client address is running outside Gradio's queue (questions asked over
    MCP): one count that the MCP endpoint keeps and every check of the chat limit reads."""

    def __init__(self) -> None:
        self._running: Counter[str] = Counter()

    def __call__(self, client: str) -> int:
        return self._running[client]

    @contextmanager
    def running(self, client: str) -> Iterator[None]:
        """`client` runs one more turn for as long as the block does."""
        self._running[client] += 1
        try:
            yield
        finally:
            self._running[client] -= 1
            if not self._running[client]:
                del self._running[client]


def is_busy(
    blocks: gr.Blocks,
    request: gr.Request,
    settings: ServerSettings,
    other_turns: Callable[[str], int] | None = None,
) -> bool:
    """Whether the client behind `request` already has its share of turns queued or running
    (with `other_turns`, those it runs outside the queue)."""
    raw = request.request  # the underlying Starlette request
    client = _client_of(raw.headers.raw, raw.scope.get("client"), settings.trust_proxy_headers)
    queued = turns_of(blocks, turn_functions(blocks), client, settings.trust_proxy_headers)
    return queued + (other_turns(client) if other_turns else 0) >= settings.max_chats_per_client


def _client_of(headers: Iterable[tuple[bytes, bytes]], peer: tuple[str, int] | None, trust: bool) -> str:
    forwarded = [value.decode("latin-1") for name, value in headers if name == b"x-forwarded-for"]
    return client_address(forwarded, peer[0] if peer else None, trust)


def guard_options(
    blocks: gr.Blocks,
    settings: ServerSettings,
    extra_routes: Iterable[Route] = (),
    other_turns: Callable[[str], int] | None = None,
) -> dict[str, Any]:
    """What `blocks.launch(...)` needs for the guard: the middleware, and no file uploads
    (the app takes none; `/gradio_api/upload` would otherwise keep any file it is sent).
    `extra_routes` and `other_turns` are `PublicGuard`'s."""
    from starlette.middleware import Middleware

    guard = Middleware(
        PublicGuard,
        blocks=blocks,
        settings=settings,
        extra_routes=tuple(extra_routes),
        other_turns=other_turns,
    )
    return {"app_kwargs": {"middleware": [guard]}, "max_file_size": 0}


def _with_data(scope: Scope, call: Call, conversations: dict[int, list[Any]]) -> bytes | None:
    """The call's body with its conversations cut to their bounded versions (and the request's
    length to match), or None if none was cut."""
    data = list(call.raw["data"])
    cut = [slot for slot, kept in conversations.items() if len(kept) != len(data[slot] or ())]
    if not cut:
        return None
    for slot in cut:
        data[slot] = conversations[slot]
    body = json.dumps({**call.raw, "data": data}).encode()
    headers = [(k, v) for k, v in scope["headers"] if k != b"content-length"]
    scope["headers"] = [*headers, (b"content-length", str(len(body)).encode())]
    return body


def _is_keepalive(chunk: bytes) -> bool:
    """A chunk that only says the stream is alive: Gradio's heartbeat route and queue heartbeats."""
    return chunk.startswith(b"data: ALIVE") or b'"msg":"heartbeat"' in chunk[:40]


def _route_path(scope: Scope) -> str:
    """The path Starlette routes on: the request's path without the app's root path."""
    path, root = scope["path"], scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def _with_security_headers(send: Send, policy: bytes) -> Send:
    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [
                *message.get("headers", []),
                (b"content-security-policy", policy),
                (b"x-content-type-options", b"nosniff"),
            ]
        await send(message)

    return send_with_headers


def _without_deep_link(query: bytes) -> bytes:
    if b"deep_link" not in query:
        return query
    pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
    return urlencode([(k, v) for k, v in pairs if k != "deep_link"]).encode("latin-1")


async def _read_body(scope: Scope, receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None as soon as it is known to exceed `limit`."""
    declared = dict(scope["headers"]).get(b"content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        return None
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return bytes(body)  # the client left; the app will see the disconnect
        body.extend(message.get("body", b""))
        if len(body) > limit:
            return None
        if not message.get("more_body"):
            return bytes(body)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _respond(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
