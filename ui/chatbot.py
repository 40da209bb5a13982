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

Its text is HTML rendered here (`ui.render`): the page renders no Markdown and runs
its own sanitiser only. Answers, thoughts, tool steps and notes are Markdown without
raw HTML, the footer is our own markup, questions and titles are shown as typed. The
page sends that HTML back as the conversation: `preprocess` turns it into the text
it was rendered from. In the live turn, the message the model is still writing
(the answer or a thought) is shown as written until it lands in the conversation,
so a growing answer is not parsed again on every update.

`UNCHANGED` is a value for a streaming output that leaves the Chatbot as it is, at
the cost of any small value: it reaches the page as `{"__type__": "update"}`, an
update with no property, which the page ignores. (`gr.skip()` does the same for
the page, but the server then builds a new Chatbot and its config on every update.)
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr
import orjson

from ui import gradio_seams as seams
from ui.gradio_seams import UNCHANGED
from ui.render import markdown_html, source_of, text_html
from ui.view import FOOTER_ID

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
    """`gr.Chatbot` whose value is processed a message at a time, each message once, and shown as
    HTML rendered by this server."""

    is_template = True  # the page draws it with Gradio's own Chatbot
    shows_writing_as_written = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("render_markdown", False)
        kwargs.setdefault("latex_delimiters", [])
        super().__init__(*args, **kwargs)

    # Gradio builds the page's config from the parameters `__init__` names: name Chatbot's.
    __init__.__signature__ = inspect.signature(gr.Chatbot.__init__)  # type: ignore[attr-defined]

    @classmethod
    def for_live_turn(cls, **kwargs: Any) -> PreparedChatbot:
        """The live turn's Chatbot: its last message, while the model writes it, is shown as written.
        (Not a subclass: the page draws a template by its direct base's name.)"""
        chatbot = cls(**kwargs)
        chatbot.shows_writing_as_written = True
        return chatbot

    def preprocess(self, payload: Any) -> list[dict[str, Any]]:
        """The conversation the page sent, as the text it was rendered from."""
        messages = super().preprocess(payload)
        for message in messages:
            for part in message["content"]:
                if part.get("type") == "text":
                    part["text"] = source_of(part["text"])
            if (metadata := message.get("metadata")) and metadata.get("title"):
                metadata["title"] = source_of(metadata["title"])
        return messages  # type: ignore[return-value]

    def postprocess(self, value: list | None) -> Any:
        return self.postprocessing()(value)

    def postprocessing(self) -> Callable[[list | None], Any]:
        """`postprocess` for the values of one stream (a turn's updates), in turn: a message that is
        the very object it was in the previous value, in the same place as to being written, is
        prepared as it was then without being looked at again (a streamed message is never changed
        in place once yielded: `ui.view`)."""
        previous: dict[int, tuple[Any, bool, list[Any]]] = {}

        def postprocess(value: list | None) -> Any:
            nonlocal previous
            if value is UNCHANGED:
                return value
            if not value:
                return super(PreparedChatbot, self).postprocess(value)
            self._check_format(value)
            processed: list[Any] = []
            kept: dict[int, tuple[Any, bool, list[Any]]] = {}
            last = len(value) - 1
            for position, message in enumerate(value):
                being_written = (
                    self.shows_writing_as_written and position == last and _is_written_by_model(message)
                )
                entry = previous.get(id(message))
                if entry is None or entry[0] is not message or entry[1] != being_written:
                    entry = (message, being_written, self._prepared(message, being_written))
                kept[id(message)] = entry
                processed.extend(entry[2])
            previous = kept
            return processed

        return postprocess

    def _prepared(self, message: Any, being_written: bool) -> list[Any]:
        try:
            key = hashlib.blake2b(
                orjson.dumps([message, self.reasoning_tags, being_written]), digest_size=16
            ).digest()
        except TypeError:  # a component or another object JSON cannot hold
            return [_shown(m, being_written) for m in super().postprocess([message]).model_dump()]
        prepared = _prepared.get(key)
        if prepared is None:
            shown = [_shown(m, being_written) for m in super().postprocess([message]).model_dump()]
            prepared = _prepare(shown)
            _prepared.put(key, prepared)
        return prepared.messages


def _is_written_by_model(message: Any) -> bool:
    """An answer or a thought: model text that grows as it streams (tool steps and notes have ids)."""
    metadata = (message.get("metadata") if isinstance(message, dict) else message.metadata) or {}
    role = message.get("role") if isinstance(message, dict) else message.role
    return role == "assistant" and not metadata.get("id")


def _shown(message: dict[str, Any], being_written: bool) -> dict[str, Any]:
    """A processed message with its text and title as the HTML the page shows."""
    metadata = message.get("metadata") or {}
    if message.get("role") == "user" or being_written:
        render = text_html
    elif metadata.get("id") == FOOTER_ID:
        render = functools.partial(markdown_html, own_markup=True)
    else:
        render = markdown_html
    for part in message.get("content") or []:
        if part.get("type") == "text":
            part["text"] = render(part["text"])
    if metadata.get("title"):
        metadata["title"] = text_html(metadata["title"])
    return message


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
