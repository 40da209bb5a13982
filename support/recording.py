"""Test servers that keep what every request carried: an ASGI middleware, and llmock with it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from llmock.testing import LLMockServer


class RequestRecorder:
    """Appends (Authorization header, JSON body) of every HTTP request to `seen`."""

    def __init__(self, app: Any, seen: list[tuple[str, dict]]) -> None:
        self.app, self.seen = app, seen

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        authorization = dict(scope["headers"]).get(b"authorization", b"").decode()
        body = bytearray()

        async def recording_receive() -> dict:
            message = await receive()
            body.extend(message.get("body", b""))
            if message["type"] == "http.request" and not message.get("more_body"):
                self.seen.append((authorization, json.loads(body or b"{}")))
            return message

        await self.app(scope, recording_receive, send)


def keys_and_models(seen: list[tuple[str, dict]]) -> set[tuple[str, str | None]]:
    """The (Authorization, model) pairs of the recorded requests."""
    return {(authorization, body.get("model")) for authorization, body in seen}


@contextmanager
def recording_llmock() -> Iterator[tuple[LLMockServer, list[tuple[str, dict]]]]:
    """An OpenAI-compatible server on 127.0.0.1 that records (Authorization, body) per request."""
    seen: list[tuple[str, dict]] = []
    server = LLMockServer()
    server.app.add_middleware(RequestRecorder, seen=seen)
    with server:
        yield server, seen
