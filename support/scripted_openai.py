"""A scripted OpenAI-compatible server on 127.0.0.1, for replaying what real servers send.

Each test gets its own `Script` (its own base URL, so per-server state the engine
remembers never leaks between tests): a queue of replies to
`POST .../v1/chat/completions`, each either an SSE stream given as the exact raw
lines to send (comments, `data: [DONE]` or not, odd JSON shapes are all the
test's choice) or an HTTP error. Every request is recorded (JSON body and
headers). A request with nothing left in the script gets a 500 saying so.

    script.stream(*events(chunk1, chunk2), DONE)
    script.error(422, {"message": {"detail": "..."}})
    script.requests[0].body["tool_choice"]

The server runs uvicorn in a thread; `serve_scripted_openai()` starts it on a
free port and stops it (held-open streams included) when the block ends.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from support.servers import free_port

DONE = "data: [DONE]"
KEEP_ALIVE = ": keep-alive"
KEEP_ALIVE_EVERY_S = 0.2
STARTUP_TIMEOUT_S = 10.0


def event(payload: Mapping[str, Any] | str) -> list[str]:
    """One SSE event: its `data:` line (a dict is sent as compact JSON) and the blank line after it."""
    data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return [f"data: {data}", ""]


def events(*payloads: Mapping[str, Any] | str) -> list[str]:
    """Several SSE events, each as `event` gives it."""
    return [line for payload in payloads for line in event(payload)]


@dataclass(frozen=True)
class SseStream:
    """A 200 `text/event-stream` reply: `lines` are sent exactly, each followed by `\\n`.

    With `hold_open_s`, the connection then stays open that long (or until the
    client leaves), sending only `: keep-alive` comments, as a server that never
    closes a finished reply does.
    """

    lines: Sequence[str]
    hold_open_s: float = 0.0
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class HttpError:
    """An error reply: a dict or list `body` is sent as JSON, a string as plain text."""

    status: int
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)


ScriptedReply = SseStream | HttpError


def tool_calls_reply(*calls: tuple[str, Mapping[str, Any]], model: str = "scripted-model") -> SseStream:
    """One streamed step, OpenAI's way, that calls these tools (ids `call_1`, `call_2`, ...), with usage."""

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
        return {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": model,
            "choices": [choice],
        }

    deltas = [
        {
            "index": index,
            "id": f"call_{index + 1}",
            "type": "function",
            "function": {"name": name, "arguments": ""},
        }
        for index, (name, _) in enumerate(calls)
    ]
    pieces = [
        {"index": index, "function": {"arguments": json.dumps(args)}} for index, (_, args) in enumerate(calls)
    ]
    usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    return SseStream(
        (
            *event(chunk({"role": "assistant", "content": None, "tool_calls": deltas})),
            *event(chunk({"tool_calls": pieces})),
            *event(chunk({}, "tool_calls")),
            *event(
                {
                    "id": "chatcmpl-1",
                    "object": "chat.completion.chunk",
                    "created": 0,
                    "model": model,
                    "choices": [],
                    "usage": usage,
                }
            ),
            DONE,
            "",
        )
    )


def answer_reply(text: str, *tools_used: str) -> SseStream:
    """One streamed step that gives `text` as the final answer."""
    return tool_calls_reply(("final_answer", {"answer": text, "tools_used": list(tools_used)}))


@dataclass(frozen=True)
class RecordedRequest:
    body: dict[str, Any]
    headers: dict[str, str]


class Script:
    """One test's replies, in order, and the requests they answered."""

    def __init__(self, name: str, base_url: str) -> None:
        self.name = name
        self.base_url = base_url
        self.requests: list[RecordedRequest] = []
        self.replies: deque[ScriptedReply] = deque()
        self.streams_ended: list[threading.Event] = []
        """One per SSE reply served, set once the server stops sending it (done, or the client left)."""
        self.responder: Callable[[dict[str, Any]], ScriptedReply] | None = None
        """Answers a request from its JSON body once `replies` is empty (for many chats at once)."""

    def add(self, *replies: ScriptedReply) -> Script:
        self.replies.extend(replies)
        return self

    def stream(self, *lines: str, hold_open_s: float = 0.0) -> Script:
        return self.add(SseStream(lines, hold_open_s))

    def error(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> Script:
        return self.add(HttpError(status, body, headers or {}))

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [request.body for request in self.requests]


class ScriptedOpenAI:
    """The server: routes `/<script>/v1/chat/completions` to that script."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._scripts: dict[str, Script] = {}
        self._names = itertools.count(1)
        self.app = Starlette(routes=[Route("/{script}/v1/chat/completions", self._answer, methods=["POST"])])

    def new_script(self) -> Script:
        name = f"s{next(self._names)}"
        script = Script(name, f"http://127.0.0.1:{self.port}/{name}/v1")
        self._scripts[name] = script
        return script

    def drop(self, script: Script) -> None:
        self._scripts.pop(script.name, None)

    async def _answer(self, request: Request) -> Response:
        script = self._scripts.get(request.path_params["script"])
        if script is None:
            return PlainTextResponse("no such script", status_code=404)
        body = await request.json()
        script.requests.append(RecordedRequest(body, dict(request.headers)))
        if not script.replies and script.responder is None:
            return PlainTextResponse(
                f"scripted server: no reply left for request {len(script.requests)}", status_code=500
            )
        reply = script.replies.popleft() if script.replies else script.responder(body)  # type: ignore[misc]
        if isinstance(reply, HttpError):
            return _error_response(reply)
        ended = threading.Event()
        script.streams_ended.append(ended)
        return StreamingResponse(
            _sse_body(reply, ended),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache", **reply.headers},
        )


def _error_response(reply: HttpError) -> Response:
    if isinstance(reply.body, str):
        return PlainTextResponse(reply.body, status_code=reply.status, headers=dict(reply.headers))
    return JSONResponse(reply.body, status_code=reply.status, headers=dict(reply.headers))


async def _sse_body(reply: SseStream, ended: threading.Event) -> AsyncIterator[bytes]:
    try:
        for line in reply.lines:
            yield f"{line}\n".encode()
        loop = asyncio.get_running_loop()
        until = loop.time() + reply.hold_open_s
        while loop.time() < until:
            await asyncio.sleep(KEEP_ALIVE_EVERY_S)
            yield f"{KEEP_ALIVE}\n\n".encode()
    finally:
        ended.set()


@contextmanager
def serve_scripted_openai() -> Iterator[ScriptedOpenAI]:
    """The server, running in a thread on a free port until the block ends."""
    server = ScriptedOpenAI(free_port())
    config = uvicorn.Config(
        server.app,
        host="127.0.0.1",
        port=server.port,
        lifespan="off",
        log_level="warning",
        timeout_graceful_shutdown=1,
    )
    uvicorn_server = uvicorn.Server(config)
    thread = threading.Thread(target=uvicorn_server.run, name="scripted-openai", daemon=True)
    thread.start()
    try:
        _wait_until_started(uvicorn_server, thread)
        yield server
    finally:
        uvicorn_server.should_exit = True
        thread.join(timeout=STARTUP_TIMEOUT_S)


def _wait_until_started(server: uvicorn.Server, thread: threading.Thread) -> None:
    """Block the (synchronous) fixture until uvicorn listens; no event loop runs here yet."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the scripted OpenAI server did not start")
        time.sleep(0.01)
