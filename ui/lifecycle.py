"""One app process's life: serving until SIGTERM or SIGINT, then draining without losing a turn.

On the signal the process stops taking new turns (a new question is answered at
once with `RESTARTING`, and `/healthz` says `draining` with a 503 so a proxy or
launcher sends nobody new). A page load, and a call of Gradio's API from a page
session this process does not serve (a new page, a new API client), get a 503
with `RESTARTING`: nginx (`proxy_next_upstream http_503`) sends them on to a
worker that is not draining. The sessions it serves keep their streams. It lets the running turns finish for up to the grace
period (`AGENT_SHUTDOWN_GRACE_S`), then ends the rest through the Stop path: each
cut turn shows `CUT_SHORT` and its footer, and its log line says
`"reason": "shutdown"`. Then the closers registered with `on_shutdown` run (the
conversation store, MCP servers) and the process exits with code 0. A second
signal ends the grace at once.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import re
import signal
import threading
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs

import gradio as gr

from ui.gradio_seams import serves_session

RESTARTING = "🔄 The server is restarting; try again in a moment."
CUT_SHORT = "⏹️ The server is restarting; this answer was cut short."
SHUTDOWN_REASON = "shutdown"
HEALTH_PATH = "/healthz"
GRADIO_API = "/gradio_api/"
HEARTBEAT = re.compile(r"/gradio_api/heartbeat/([^/]+)$")
"""Gradio's per-page stream that stays open as long as the page: not a response that carries updates."""
MAX_SESSION_BODY = 10 * 2**20
"""A longer body is not read for its session while draining: it is sent elsewhere (nginx's cap)."""
ENDING_S = 10.0
"""How long cut turns get to write their last update, log line and saved turn."""

log = logging.getLogger(__name__)
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class Lifecycle:
    """Whether this process takes new turns, the turns it runs, and how it ends them."""

    def __init__(self, grace_s: float = 20.0) -> None:
        self.grace_s = grace_s
        self.draining = False
        """No new turns: a shutdown has begun."""
        self.cutting = False
        """The grace is over: running turns are being stopped."""
        self.loop: asyncio.AbstractEventLoop | None = None
        self._running: set[asyncio.Event] = set()
        self.requests = 0
        """HTTP requests being answered (event streams included), for the last updates to leave."""
        self._changed = asyncio.Event()
        self._grace_over = asyncio.Event()
        self._closers: list[Callable[[], Awaitable[object]]] = []

    @property
    def running(self) -> int:
        return len(self._running)

    def on_shutdown(self, close: Callable[[], Awaitable[object]]) -> None:
        """Await `close()` at shutdown, after the last turn ended (in the order registered)."""
        self._closers.append(close)

    @contextmanager
    def turn(self, stop: asyncio.Event) -> Iterator[None]:
        """A running turn, which a shutdown past its grace ends by setting `stop`."""
        self._running.add(stop)
        if self.cutting:
            stop.set()
        try:
            yield
        finally:
            self._running.discard(stop)
            self._changed.set()

    def end_grace(self) -> None:
        """Cut the running turns now instead of at the end of the grace (a second signal)."""
        self._grace_over.set()

    async def drain(self) -> int:
        """Stop taking turns, give the running ones the grace, cut the rest, run the closers.
        Returns how many turns were cut."""
        self.draining = True
        log.warning("Shutting down: %d turns running, waiting up to %g s", self.running, self.grace_s)
        grace_over = asyncio.ensure_future(self._grace_over.wait())
        try:
            await asyncio.wait_for(self._until_idle(grace_over), self.grace_s)
        except TimeoutError:
            pass
        finally:
            grace_over.cancel()
        cut = self.running
        self.cutting = True
        for stop in list(self._running):
            stop.set()
        if cut:
            log.warning("Grace over: ending %d turns", cut)
        try:
            await asyncio.wait_for(self._until_idle(), ENDING_S)
        except TimeoutError:
            log.error(
                "%d turns and %d requests did not end within %g s", self.running, self.requests, ENDING_S
            )
        for close in self._closers:
            try:
                await close()
            except Exception:
                log.exception("A shutdown closer failed: %r", close)
        return cut

    @contextmanager
    def request(self) -> Iterator[None]:
        """An HTTP request being answered."""
        self.requests += 1
        try:
            yield
        finally:
            self.requests -= 1
            self._changed.set()

    async def _until_idle(self, give_up: asyncio.Future[Any] | None = None) -> None:
        """Until no turn runs; without `give_up`, also until every response (each event stream
        carrying a turn's last update) has been sent."""
        while (self._running or (give_up is None and self.requests)) and not (give_up and give_up.done()):
            self._changed.clear()
            changed = asyncio.ensure_future(self._changed.wait())
            await asyncio.wait(
                {changed, *([give_up] if give_up else [])}, return_when=asyncio.FIRST_COMPLETED
            )
            changed.cancel()


class HealthCheck:
    """ASGI middleware, outermost: `GET /healthz` answers 200 `ready` or 503 `draining`, with the
    number of running turns; everything else goes on to the app, except, while draining, requests
    of page sessions this process does not serve (503 `RESTARTING`). It also notes the server's
    loop, and counts the requests being answered (not the heartbeats, which last as long as a page)."""

    def __init__(self, app: ASGIApp, lifecycle: Lifecycle) -> None:
        self.app = app
        self.lifecycle = lifecycle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.lifecycle.loop = asyncio.get_running_loop()
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] != HEALTH_PATH:
            if self.lifecycle.draining:
                served, receive = await _served_here(scope, receive)
                if not served:
                    await _respond(send, 503, {"detail": RESTARTING}, head=scope["method"] == "HEAD")
                    return
            if HEARTBEAT.match(scope["path"]):
                await self.app(scope, receive, send)
                return
            with self.lifecycle.request():
                await self.app(scope, receive, send)
            return
        if scope["method"] not in ("GET", "HEAD"):
            await _respond(send, 405, {"detail": "Method Not Allowed"}, head=False)
            return
        lifecycle = self.lifecycle
        status = {"status": "draining" if lifecycle.draining else "ready", "turns": lifecycle.running}
        await _respond(send, 503 if lifecycle.draining else 200, status, head=scope["method"] == "HEAD")


async def _served_here(scope: Scope, receive: Receive) -> tuple[bool, Receive]:
    """Whether a draining process still answers the request, and a `receive` that gives its body
    again: not a page load, and a call of Gradio's API only from a page session this process
    serves (named in the query, the heartbeat's path or a JSON body). The rest (a page's assets
    and config, the MCP endpoint) is the same on every process and is answered."""
    if scope["path"] == "/":
        return False, receive
    if not scope["path"].startswith(GRADIO_API):
        return True, receive
    if session := _session_in_url(scope):
        return serves_session(scope["app"], session), receive
    if scope["method"] != "POST":
        return False, receive
    chunks, size, more = [], 0, True
    while more and size <= MAX_SESSION_BODY:
        message = await receive()
        if message["type"] != "http.request":
            return False, receive
        chunks.append(message)
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    if more:
        return False, receive
    try:
        session = json.loads(b"".join(m.get("body", b"") for m in chunks)).get("session_hash")
    except (ValueError, AttributeError):
        session = None
    replayed = iter(chunks)

    async def receive_again() -> Message:
        return next(replayed, None) or await receive()

    return isinstance(session, str) and serves_session(scope["app"], session), receive_again


def _session_in_url(scope: Scope) -> str | None:
    if match := HEARTBEAT.match(scope["path"]):
        return match[1]
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    return query.get("session_hash", [None])[0]


def lifecycle_options(options: dict[str, Any], lifecycle: Lifecycle) -> dict[str, Any]:
    """`demo.launch()` options with the health check in front of every other middleware."""
    from starlette.middleware import Middleware

    app_kwargs = dict(options.get("app_kwargs") or {})
    app_kwargs["middleware"] = [
        Middleware(HealthCheck, lifecycle=lifecycle),
        *app_kwargs.get("middleware", []),
    ]
    return {**options, "app_kwargs": app_kwargs}


def catch_stop_signals(lifecycle: Lifecycle) -> threading.Event:
    """SIGTERM and SIGINT set the returned event from now on (a second one ends the grace at once).
    Called before the page's address is printed: a signal sent as soon as it is (a supervisor, a test)
    would otherwise meet Python's default handler and end the process with no drain."""
    signalled = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        if signalled.is_set() and lifecycle.loop is not None:
            lifecycle.loop.call_soon_threadsafe(lifecycle.end_grace)
        signalled.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    return signalled


def serve_until_signal(blocks: gr.Blocks, lifecycle: Lifecycle, signalled: threading.Event) -> int:
    """Block until `signalled` (`catch_stop_signals`), drain `lifecycle`, close the server; the exit code.

    Replaces `blocks.block_thread()`, which ends on Ctrl-C only and cuts every stream. The process
    is to exit next: the objects it holds are frozen out of the garbage collector, whose full
    collections while the interpreter tears its modules down took seconds (the whole heap of
    Gradio, LangChain and their dependencies, scanned several times) after `* Stopped`.
    """
    while not signalled.wait(0.5):
        if not blocks.is_running:
            return 1
    if lifecycle.loop is not None:
        cut = asyncio.run_coroutine_threadsafe(lifecycle.drain(), lifecycle.loop).result()
        print(f"* Stopped: {cut} turns cut short after the grace of {lifecycle.grace_s:g} s.", flush=True)
    blocks.close(verbose=False)
    gc.freeze()
    return 0


async def _respond(send: Send, status: int, body: dict[str, Any], head: bool) -> None:
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    headers.append((b"cache-control", b"no-store"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else data})
