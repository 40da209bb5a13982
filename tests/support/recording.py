"""An ASGI middleware for test servers that keeps what every request carried."""

from __future__ import annotations

import json
from typing import Any


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
