"""A lean client for Gradio's queue protocol (httpx + server-sent events).

`gradio_client` runs a thread and a polling loop per job and burns a core at
about 50 concurrent jobs, so it would measure itself rather than the server.
This client joins the queue and reads the event stream with plain async httpx,
applying Gradio's diffs to rebuild each update, and can do what a browser does
(submit through the chat textbox) or what an API user does (call `/chat`).
"""

from __future__ import annotations

import json
import ssl
import time
import uuid
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

Mode = Literal["api", "browser"]
POOLS = 16
"""httpx looks through every connection of a pool for each request; with hundreds of event streams
open in one pool, that cost the load generator most of a core (200 chats: 3.5 of 6.7 s of its CPU,
more than the server it measured). Each session's requests go to one of several pools."""


@dataclass
class ChatStream:
    """What one streamed chat turn looked like from the client side."""

    session_hash: str
    updates: int = 0
    payload_bytes: int = 0
    first_update_s: float | None = None
    total_s: float = 0.0
    value: Any = None
    completed: bool = False
    cancelled: bool = False
    refused: bool = False
    first_update_bytes: int = 0
    side_bytes: int = 0
    error: str | None = None
    update_times: list[float] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)
    outputs: list[Any] = field(default_factory=list)
    open_conversation: str = ""

    @property
    def messages(self) -> list[dict]:
        return self.value or []

    def refuse(self, reason: str, started: float) -> ChatStream:
        self.refused, self.error = True, reason
        self.total_s = time.perf_counter() - started
        return self


def _refusal(joined: httpx.Response) -> str | None:
    """The server's reason for not queueing a turn (its per-client limit, or a restart: a process
    that is shutting down sends new sessions away), or None if it was queued."""
    if joined.status_code in (429, 503):
        return joined.json()["detail"]
    joined.raise_for_status()
    return None


class GradioChatClient:
    """One client for many concurrent chat turns against a Gradio app's `/chat` (or its textbox)."""

    def __init__(
        self,
        base_url: str,
        *,
        local_address: str | None = None,
        headers: dict[str, str] | None = None,
        affinity_cookie: str | None = None,
    ) -> None:
        """`local_address` (e.g. 127.0.0.2) makes the server see this client as another address.
        With `affinity_cookie`, each session is a browser of its own for the proxy's routing
        cookie of that name: it sends none at first, then the value the proxy's last response
        set (nginx names the worker that answered); so for the app's owner cookie (one visitor
        per session, whose saved conversations it can reopen)."""
        self.base_url = base_url.rstrip("/")
        self.affinity_cookie = affinity_cookie
        verify = ssl.create_default_context()  # one for all pools: making one per pool costs start-up time
        self._pools = [
            httpx.AsyncClient(
                timeout=httpx.Timeout(60, connect=10),
                limits=httpx.Limits(max_connections=None),
                verify=verify,
                transport=httpx.AsyncHTTPTransport(local_address=local_address, verify=verify)
                if local_address
                else None,
                headers=headers,
            )
            for _ in range(POOLS)
        ]
        self._fn: dict[str, int] = {}
        self._jars: dict[str, dict[str, str]] = {}
        """With `affinity_cookie`, each session's own cookies (the proxy's route, the app's owner id)."""

    @property
    def http(self) -> httpx.AsyncClient:
        """A pool for requests outside any session."""
        return self._pools[0]

    def _http(self, session_hash: str) -> httpx.AsyncClient:
        """The pool that carries this session's requests."""
        return self._pools[zlib.crc32(session_hash.encode()) % len(self._pools)]

    async def __aenter__(self) -> GradioChatClient:
        config = (await self.http.get(f"{self.base_url}/config")).json()
        self._fn = {d["api_name"]: d["id"] for d in config["dependencies"] if d.get("api_name")}
        return self

    async def __aexit__(self, *exc: object) -> None:
        for pool in self._pools:
            await pool.aclose()

    async def ask(
        self,
        question: str,
        *,
        mode: Mode = "api",
        session_hash: str | None = None,
        model: str = "",  # the server's default
        api_key: str = "",
        cancel_after_updates: int | None = None,
        disconnect: bool = False,
        keep_raw: bool = False,
        chatbot: list[dict] | None = None,
        open_conversation: str | None = None,
    ) -> ChatStream:
        """Stream one turn. With `cancel_after_updates`, stop after that many updates:
        as the Stop button does, or by dropping the connection (`disconnect`) as a
        closed tab does. `keep_raw` keeps every event line the server sent.

        With `chatbot` (the conversation the page shows), the browser path makes every
        call a page's submit makes: the user message is appended to the chatbot before
        the turn, and the chat state is synchronised after it; the bytes those
        calls receive are counted in `side_bytes`. With `open_conversation` too (the id the
        page holds in `#open-conversation`, which its turn sends), it also makes the call the
        chat's change makes (the panel read again): `stream.open_conversation` is the id the page
        holds after the turn."""
        stream = ChatStream(session_hash or uuid.uuid4().hex)
        started = time.perf_counter()
        # The queue protocol wants a value for every input, State ones too (Gradio uses the
        # session's own): the history, and the conversation id after the key.
        if mode == "browser":
            if refusal := await self._send_question(question, stream.session_hash):
                return stream.refuse(refusal, started)
            if chatbot is not None:
                shown = await self._predict(
                    "_append_message_to_history", [None, chatbot], stream.session_hash, stream
                )
                stream.value = shown["data"][0]
            data = [None, None, model, api_key, None, "", open_conversation or ""]
            fn_index, data, output = self._fn["_submit_fn"], data, 1
        else:
            fn_index, data, output = self._fn["chat"], [question, None, model, api_key, None, ""], 0
        joined = await self._join(fn_index, data, stream.session_hash)
        if refusal := _refusal(joined):
            return stream.refuse(refusal, started)
        event_id = joined.json()["event_id"]
        async with self._event_stream(stream.session_hash) as response:
            async for line in response.aiter_lines():
                if keep_raw:
                    stream.raw.append(line)
                if not line.startswith("data:"):
                    continue
                message = json.loads(line[5:])
                if message.get("event_id") not in (None, event_id):
                    continue
                kind = message.get("msg")
                if kind in ("process_generating", "process_completed"):
                    self._apply(stream, message, output, started, len(line))
                if kind == "process_completed":
                    stream.completed = message.get("success", True)
                    if not stream.completed:
                        stream.error = str(message.get("output", {}).get("error"))
                    break
                if cancel_after_updates is not None and stream.updates >= cancel_after_updates:
                    if not disconnect:
                        await self.cancel(stream.session_hash, fn_index, event_id)
                    stream.cancelled = True
                    break
        stream.total_s = time.perf_counter() - started
        if chatbot is not None and mode == "browser" and stream.completed:
            await self._predict("lambda", [stream.value, None], stream.session_hash, stream)
            if open_conversation is not None:
                panel = await self._predict("_same_page", [None, None], stream.session_hash, stream)
                opened = panel["data"][-1]
                stream.open_conversation = opened if isinstance(opened, str) else open_conversation
        return stream

    async def show(self, session_hash: str, chatbot: list[dict]) -> None:
        """Put `chatbot` in a session's chat as a page does after a turn (ChatInterface's copy of
        its chat into the session; its second input is the session's State: Gradio uses its own)."""
        await self._predict("lambda", [chatbot, None], session_hash)

    async def _send_question(self, question: str, session_hash: str) -> str | None:
        """The textbox's first step, an unqueued call; the server's reason if it refused the question."""
        sent = await self.call_unqueued("_clear_and_save_textbox", [question], session_hash)
        if sent.status_code == 503:  # a process shutting down sends new sessions away
            return sent.json()["detail"]
        if sent.status_code == 500 and (verdicts := sent.json().get("error")):
            return next(v["message"] for v in verdicts if not v["is_valid"])
        sent.raise_for_status()
        return None

    async def _join(self, fn_index: int, data: list[Any], session_hash: str) -> httpx.Response:
        return await self._routed(
            session_hash,
            "POST",
            f"{self.base_url}/gradio_api/queue/join",
            headers=self._headers(session_hash),
            json={
                "data": data,
                "fn_index": fn_index,
                "session_hash": session_hash,
                "event_data": None,
                "trigger_id": None,
            },
        )

    @asynccontextmanager
    async def _event_stream(self, session_hash: str) -> AsyncIterator[httpx.Response]:
        """The session's event stream. Opening it is tried twice: under a burst, a pooled
        keep-alive connection the server has just closed fails before any response, and
        opening a session's stream again is harmless."""
        http = self._http(session_hash)
        request = http.build_request(
            "GET",
            f"{self.base_url}/gradio_api/queue/data",
            params={"session_hash": session_hash},
            headers=self._headers(session_hash),
        )
        try:
            response = await http.send(request, stream=True)
        except (httpx.ReadError, httpx.RemoteProtocolError):
            response = await http.send(request, stream=True)
        self._keep_route(session_hash, response)
        try:
            yield response
        finally:
            await response.aclose()

    async def cancel(self, session_hash: str, fn_index: int, event_id: str) -> None:
        """Stop a turn, as the Stop button does. Sent again once if the kept-alive connection it went
        out on was closed by the server meanwhile (a browser does the same; a cancel is idempotent)."""
        body = {"session_hash": session_hash, "fn_index": fn_index, "event_id": event_id}
        url, headers = f"{self.base_url}/gradio_api/cancel", self._headers(session_hash)
        try:
            await self._routed(session_hash, "POST", url, headers=headers, json=body)
        except (httpx.ReadError, httpx.RemoteProtocolError):
            await self._routed(session_hash, "POST", url, headers=headers, json=body)

    async def get_text(self, path: str) -> str:
        return (await self.http.get(f"{self.base_url}{path}")).text

    async def _predict(
        self, api_name: str, data: list[Any], session_hash: str, stream: ChatStream | None = None
    ) -> Any:
        response = await self.call_unqueued(api_name, data, session_hash)
        response.raise_for_status()
        if stream is not None:
            stream.side_bytes += len(response.content)
        return response.json()

    async def call_unqueued(self, api_name: str, data: list[Any], session_hash: str) -> httpx.Response:
        """An unqueued call, as a page makes it (the panel's refresh, a state copy)."""
        return await self._routed(
            session_hash,
            "POST",
            f"{self.base_url}/gradio_api/run/predict",
            headers=self._headers(session_hash),
            json={
                "data": data,
                "fn_index": self._fn[api_name],
                "session_hash": session_hash,
                "event_data": None,
                "trigger_id": None,
            },
        )

    async def _routed(self, session_hash: str, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """A request of the session, with its affinity cookie; the cookie the response sets is kept."""
        response = await self._http(session_hash).request(method, url, **kwargs)
        self._keep_route(session_hash, response)
        return response

    def set_route(self, session_hash: str, value: str) -> None:
        """The affinity cookie the session sends from now on, as if the proxy had set it before."""
        self._jars.setdefault(session_hash, {})[str(self.affinity_cookie)] = value

    def _headers(self, session_hash: str) -> dict[str, str]:
        """The session's own cookie header (never the pool's jar, which its other sessions share):
        the affinity cookie (empty until the proxy sets it) and any other cookie set for the session."""
        if not self.affinity_cookie:
            return {}
        jar = {self.affinity_cookie: "", **self._jars.get(session_hash, {})}
        return {"Cookie": "; ".join(f"{name}={value}" for name, value in jar.items())}

    def _keep_route(self, session_hash: str, response: httpx.Response) -> None:
        if self.affinity_cookie:
            for header in response.headers.get_list("set-cookie"):
                name, _, rest = header.partition("=")
                self._jars.setdefault(session_hash, {})[name.strip()] = rest.split(";", 1)[0].strip()

    @staticmethod
    def _apply(stream: ChatStream, message: dict, output: int, started: float, size: int) -> None:
        data = (message.get("output") or {}).get("data")
        if data is None:
            return
        now = time.perf_counter() - started
        stream.first_update_s = stream.first_update_s if stream.first_update_s is not None else now
        stream.update_times.append(now)
        stream.updates += 1
        stream.payload_bytes += size
        stream.first_update_bytes = stream.first_update_bytes or size
        if message.get("msg") == "process_generating" and stream.outputs:
            stream.outputs = [patched(old, new) for old, new in zip(stream.outputs, data, strict=True)]
        else:
            stream.outputs = list(data)
        if isinstance(stream.outputs[output], list):
            stream.value = stream.outputs[output]


async def ask_or_fail(client: GradioChatClient, question: str, **kwargs: Any) -> ChatStream:
    """`client.ask`, where a turn the server could not take counts as a failed stream."""
    try:
        return await client.ask(question, **kwargs)
    except httpx.HTTPError as error:
        return ChatStream(kwargs.get("session_hash") or "", error=repr(error))


def patched(value: Any, diff: list) -> Any:
    """`value` with Gradio's `diff` applied, in place.

    `gradio_client.utils.apply_diff` deep-copies the whole value first; with a long
    conversation in it, that made this client, not the server, the bottleneck.
    """
    for action, path, change in diff:
        if not path:
            value = change if action == "replace" else value + change
            continue
        *parents, last = path
        target = value
        for key in parents:
            target = target[key]
        if action == "replace":
            target[last] = change
        elif action == "append":
            target[last] += change
        elif action == "add" and isinstance(target, list):
            target.insert(int(last), change)
        elif action == "add":
            target[last] = change
        elif action == "delete":
            del target[int(last) if isinstance(target, list) else last]
    return value
