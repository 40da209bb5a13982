"""A Chatbot that processes each message once and hands Gradio its text messages as ready JSON.

Whenever a Chatbot is an output, Gradio post-processes its whole value: a pydantic
model per message, a dump of them all, then two walks over every node of the result
looking for files to move into its cache: a cost that grows with the conversation,
paid on each turn, several times.

`PreparedChatbot` keeps each message's processed form, keyed by the message's JSON,
and returns the messages whose content is only text as `orjson.Fragment`s: JSON
serialised once. The file walks step over a fragment as over any leaf, Gradio writes
every response with orjson, which copies a fragment's bytes as they are, and an
unchanged message is the same fragment, so it diffs as equal. Messages with files
or components take Gradio's usual path.

`UNCHANGED` is a value for a streaming output that leaves the Chatbot as it is, at
the cost of any small value: it reaches the page as `{"__type__": "update"}`, an
update with no property, which the page ignores. (`gr.skip()` does the same for
the page, but the server then builds a new Chatbot and its config on every update.)
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import gradio as gr
import orjson

from ui import gradio_seams as seams
from ui.gradio_seams import UNCHANGED

seams.allow_copying_json_fragments()
MAX_PREPARED_BYTES = 64 * 2**20  # JSON kept prepared, across sessions (least recently used goes first)


@dataclass
class _Prepared:
    messages: list[Any]
    size: int


class _PreparedMessages:
    """Prepared messages by key, within a byte budget; safe across Gradio's worker threads."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._entries: OrderedDict[bytes, _Prepared] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: bytes) -> _Prepared | None:
        with self._lock:
            prepared = self._entries.get(key)
            if prepared is not None:
                self._entries.move_to_end(key)
            return prepared

    def put(self, key: bytes, prepared: _Prepared) -> None:
        with self._lock:
            if key in self._entries:
                return
            self._entries[key] = prepared
            self.size += prepared.size
            while self.size > self.max_bytes:
                self.size -= self._entries.popitem(last=False)[1].size


_prepared = _PreparedMessages(MAX_PREPARED_BYTES)


class PreparedChatbot(gr.Chatbot):
    """`gr.Chatbot` whose value is processed a message at a time, each message once."""

    is_template = True  # the page draws it with Gradio's own Chatbot

    def postprocess(self, value: list | None) -> Any:
        if value is UNCHANGED:
            return value
        if not value:
            return super().postprocess(value)
        self._check_format(value)
        processed: list[Any] = []
        for message in value:
            processed.extend(self._prepared(message))
        return processed

    def _prepared(self, message: Any) -> list[Any]:
        try:
            key = hashlib.blake2b(orjson.dumps([message, self.reasoning_tags]), digest_size=16).digest()
        except TypeError:  # a component or another object JSON cannot hold
            return super().postprocess([message]).model_dump()
        prepared = _prepared.get(key)
        if prepared is None:
            prepared = _prepare(super().postprocess([message]).model_dump())
            _prepared.put(key, prepared)
        return prepared.messages


def _prepare(messages: list[dict[str, Any]]) -> _Prepared:
    prepared, size = [], 0
    for message in messages:
        if all(part.get("type") == "text" for part in message.get("content") or []):
            data = orjson.dumps(message)
            prepared.append(orjson.Fragment(data))
            size += len(data)
        else:
            prepared.append(message)
    return _Prepared(prepared, size)
