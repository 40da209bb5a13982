"""Who owns a saved conversation: an anonymous visitor's secret id, kept by their browser in a cookie.

`OwnerCookie` (ASGI middleware) gives every client that arrives without a valid
`agent_owner` cookie a new 256-bit id: it sets the cookie on the response and puts it
in the request, so that the very first request already has its owner. The cookie is
HttpOnly (the page's script never sees it) and never appears in a URL or a log. Over
https it is also `Secure; SameSite=None; Partitioned`, so that it works when the app is
shown in another site's iframe (a Hugging Face Space): the browser keeps it for that
embedding only. `owner_of(request)` reads it back inside an event.

The id is a bearer secret: whoever has it sees that visitor's conversations. The store
keeps only its SHA-256.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from http.cookies import SimpleCookie

import gradio as gr
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from store import new_owner_id

COOKIE = "agent_owner"
MAX_AGE_S = 400 * 86_400  # the longest browsers keep a cookie
_VALID = re.compile(r"^[A-Za-z0-9_-]{43}$")


class OwnerCookie:
    """ASGI middleware: every HTTP request carries an owner id; new ones are sent back as a cookie."""

    def __init__(self, app: ASGIApp, trust_proxy_headers: bool = False) -> None:
        self.app = app
        self.trust_proxy_headers = trust_proxy_headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _owner_in(scope["headers"]) is not None:
            await self.app(scope, receive, send)
            return
        owner = new_owner_id()
        scope = {**scope, "headers": _with_cookie(scope["headers"], owner)}
        cookie = _set_cookie(owner, secure=self._over_https(scope)).encode("latin-1")

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (b"set-cookie", cookie)]}
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    def _over_https(self, scope: Scope) -> bool:
        if scope.get("scheme") == "https":
            return True
        forwarded = dict(scope["headers"]).get(b"x-forwarded-proto", b"")
        return self.trust_proxy_headers and forwarded.split(b",")[0].strip() == b"https"


def owner_of(request: gr.Request | None) -> str | None:
    """The owner id the request's cookie carries (the middleware makes sure there is one), or None."""
    if request is None:
        return None
    try:
        cookies = dict(request.cookies)
    except AttributeError:
        return None
    owner = cookies.get(COOKIE)
    return owner if isinstance(owner, str) and _VALID.match(owner) else None


def _owner_in(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name == b"cookie":
            morsel = SimpleCookie(value.decode("latin-1")).get(COOKIE)
            if morsel is not None and _VALID.match(morsel.value):
                return morsel.value
    return None


def _with_cookie(headers: Iterable[tuple[bytes, bytes]], owner: str) -> list[tuple[bytes, bytes]]:
    others = [(name, value) for name, value in headers if name != b"cookie"]
    kept = b"; ".join(value for name, value in headers if name == b"cookie")
    cookie = (kept + b"; " if kept else b"") + f"{COOKIE}={owner}".encode()  # last: parsers keep the last
    return [*others, (b"cookie", cookie)]


def _set_cookie(owner: str, secure: bool) -> str:
    attributes = f"{COOKIE}={owner}; Path=/; Max-Age={MAX_AGE_S}; HttpOnly"
    if secure:
        return attributes + "; Secure; SameSite=None; Partitioned"
    return attributes + "; SameSite=Lax"
