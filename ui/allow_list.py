"""Everything a client may ask of the app: routes with their methods, and function ids per route.

Gradio mounts many routes (monitoring, uploads, a file proxy, reload streams,
MCP, vibe editing...) and reads its request bodies with lax pydantic models
(`"fn_index": "7"` runs function 7). The guard (`ui.guard`) lets through only
what is listed here and refuses the rest with 404, so a route or an encoding
nobody thought of is closed by default.

The list is built from the app's own config when the server starts:

- the **page**: its HTML, config, assets and theme, the API description, its
  heartbeat and event streams, `/gradio_api/file=` for local files only (never a
  URL, which Gradio would fetch server-side);
- **queued functions** (`/gradio_api/queue/join`) and **unqueued functions**
  (`/gradio_api/run/predict`), by id, each only on its own route; the public API
  names on `/gradio_api/call/<name>`;
- the reload stream only in reload mode, the login routes only with `auth`;
- routes the app adds when a feature is on (`extra_routes`: the MCP endpoint,
  `ui.mcp_server`), which Gradio never sees.

Bodies are read with Gradio's own request model (`PredictBody`), so the id the
guard decides on is the id Gradio will run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import unquote

import gradio as gr
from gradio.data_classes import PredictBody
from pydantic import ValidationError

from ui.gradio_seams import functions

Kind = Literal["page", "join", "predict", "call", "cancel", "file", "stream", "mcp"]
"""What a route does, as far as the guard cares: `join`, `predict` and `call` run functions;
`stream` is a long-lived response (event stream, heartbeat, reload); `mcp` is a message to the
app's MCP server (`ui.mcp_server`), which pays the call budget like a function call."""

READ = frozenset({"GET", "HEAD"})
WRITE = frozenset({"POST"})


@dataclass(frozen=True)
class Route:
    """One route a client may use: its methods and its path, as Starlette matches it."""

    methods: frozenset[str]
    pattern: str
    kind: Kind

    def matches(self, method: str, path: str) -> bool:
        return method in self.methods and _compiled(self.pattern).fullmatch(path) is not None

    def api_name(self, path: str) -> str | None:
        match = _compiled(self.pattern).fullmatch(path)
        return match.groupdict().get("api_name") if match else None

    def session_hash(self, path: str) -> str | None:
        match = _compiled(self.pattern).fullmatch(path)
        return match.groupdict().get("session_hash") if match else None

    def describe(self) -> str:
        return f"{'/'.join(sorted(self.methods))} {self.pattern}"


PAGE_ROUTES = (
    Route(READ, "/", "page"),
    Route(READ, "/config", "page"),
    Route(READ, "/config/", "page"),
    Route(READ, "/theme.css", "page"),
    Route(READ, "/favicon.ico", "page"),
    Route(READ, "/robots.txt", "page"),
    Route(READ, "/manifest.json", "page"),
    Route(READ, "/assets/{path:path}", "page"),
    Route(READ, "/static/{path:path}", "page"),
    Route(READ, "/gradio_api/info", "page"),
    Route(READ, "/gradio_api/info/", "page"),
    Route(READ, "/gradio_api/startup-events", "page"),  # launch() calls it once on itself
    Route(READ, "/gradio_api/file={path:path}", "file"),
    Route(READ, "/gradio_api/heartbeat/{session_hash}", "stream"),
    Route(READ, "/gradio_api/queue/data", "stream"),
    Route(WRITE, "/gradio_api/queue/join", "join"),
    Route(WRITE, "/gradio_api/run/predict", "predict"),
    Route(WRITE, "/gradio_api/cancel", "cancel"),
)
API_ROUTES = (
    Route(WRITE, "/gradio_api/call/{api_name}", "call"),
    Route(WRITE, "/gradio_api/call/v2/{api_name}", "call"),
    Route(READ, "/gradio_api/call/{api_name}/{event_id}", "stream"),
    Route(READ, "/gradio_api/call/v2/{api_name}/{event_id}", "stream"),
)
RELOAD_ROUTES = (Route(READ, "/gradio_api/dev/reload", "stream"),)
LOGIN_ROUTES = (
    Route(WRITE, "/login", "page"),
    Route(WRITE, "/login/", "page"),
    Route(READ, "/logout", "page"),
    Route(READ, "/gradio_api/login_check", "page"),
    Route(READ, "/gradio_api/login_check/", "page"),
)


@dataclass(frozen=True)
class Call:
    """A request to run a function, as Gradio will read it (`body`), and its JSON (`raw`)."""

    fn_id: int | None
    api_name: str | None
    body: PredictBody
    raw: dict[str, Any]
    chat_slots: tuple[int, ...] = ()
    """Positions in `body.data` of conversations the client sends (a Chatbot's value)."""


@dataclass(frozen=True)
class AllowList:
    """The routes and function ids this app answers; anything else is refused."""

    routes: tuple[Route, ...]
    queued: frozenset[int]
    unqueued: frozenset[int]
    api_names: frozenset[str]
    chat_slots: Mapping[int, tuple[int, ...]] = field(default_factory=dict)

    @classmethod
    def of(cls, blocks: gr.Blocks, extra_routes: Iterable[Route] = ()) -> AllowList:
        """The allow-list of `blocks` as it is served now (reload mode and `auth` included)."""
        fns = {fn_id: fn for fn_id, fn in functions(blocks).items() if fn.fn is not None}
        api_names = frozenset(
            fn.api_name for fn in fns.values() if fn.api_visibility == "public" and fn.api_name
        )
        routes = [*PAGE_ROUTES, *(API_ROUTES if api_names else ())]
        routes += [*(RELOAD_ROUTES if blocks.dev_mode else ()), *(LOGIN_ROUTES if blocks.auth else ())]
        return cls(
            routes=(*routes, *extra_routes),
            queued=frozenset(fn_id for fn_id, fn in fns.items() if fn.queue),
            unqueued=frozenset(fn_id for fn_id, fn in fns.items() if not fn.queue),
            api_names=api_names,
            chat_slots={
                fn_id: slots
                for fn_id, fn in fns.items()
                if (slots := tuple(i for i, b in enumerate(fn.inputs) if _is_client_chat(b)))
            },
        )

    def route(self, method: str, path: str) -> Route | None:
        """The route `method path` is allowed on, or None."""
        return next((route for route in self.routes if route.matches(method, path)), None)

    def call(self, route: Route, path: str, body: bytes) -> Call | None:
        """The function call `body` asks for on `route`, if this app allows it there; else None."""
        read = read_predict_body(body)
        if read is None:
            return None
        raw, parsed = read
        if route.kind == "call":
            name = route.api_name(path)
            return Call(None, name, parsed, raw) if name in self.api_names else None
        allowed = self.queued if route.kind == "join" else self.unqueued
        if parsed.fn_index not in allowed:
            return None
        return Call(parsed.fn_index, None, parsed, raw, self.chat_slots.get(parsed.fn_index, ()))

    def allows_file(self, path: str) -> bool:
        """`/gradio_api/file=` for a file on this machine only: never a URL Gradio would fetch."""
        target = unquote(path.partition("file=")[2])
        return target.startswith("/") and not target.startswith("//") and "://" not in target

    def describe(self) -> list[str]:
        """The allow-list, one line per entry, for people and for the test that prints it."""
        lines = [route.describe() for route in self.routes]
        lines.append(f"queued fn ids (POST /gradio_api/queue/join): {sorted(self.queued)}")
        lines.append(f"unqueued fn ids (POST /gradio_api/run/predict): {sorted(self.unqueued)}")
        lines.append(f"API names (POST /gradio_api/call/<name>): {sorted(self.api_names)}")
        return lines


def read_predict_body(body: bytes) -> tuple[dict[str, Any], PredictBody] | None:
    """`body` read as Gradio reads a call (JSON, then its pydantic model, in Python mode), with
    its JSON; None if Gradio would refuse it."""
    try:
        raw = json.loads(body)
        return raw, PredictBody.model_validate(raw)
    except (ValueError, ValidationError, RecursionError):
        return None


def _is_client_chat(block: Any) -> bool:
    """A conversation the page sends with the call (a State's value stays on the server)."""
    return isinstance(block, gr.Chatbot) and not block.stateful


_patterns: dict[str, re.Pattern[str]] = {}


def _compiled(pattern: str) -> re.Pattern[str]:
    """A Starlette path pattern as a regex: `{name}` is one segment, `{name:path}` the rest."""
    if pattern not in _patterns:
        regex = re.escape(pattern)
        regex = re.sub(r"\\\{(\w+):path\\\}", r"(?P<\1>.*)", regex)
        regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", regex)
        _patterns[pattern] = re.compile(regex)
    return _patterns[pattern]
