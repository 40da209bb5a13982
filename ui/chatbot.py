"""A Chatbot that processes each message once and hands Gradio its text messages as ready JSON.

Whenever a Chatbot is an output, Gradio post-processes its whole value: a pydantic
model per message, a dump of them all, then two walks over every node of the result
looking for files to move into its cache (~60 ms for 1,400 messages on a 2-core
machine). For a long conversation that happens on each turn, several times.

`PreparedChatbot` keeps each message's processed form, keyed by the message's JSON,
and returns the messages whose content is only text as `orjson.Fragment`s: JSON
serialised once. The file walks step over a fragment as over any leaf, Gradio writes
every response with orjson, which copies a fragment's bytes as they are, and an
unchanged message is the same fragment, so it diffs as equal. Messages with files
or components take Gradio's usual path.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import gradio as gr
import orjson

MAX_PREPARED = 50_000  # messages kept prepared, across sessions (least recently used go first)

_prepared: OrderedDict[bytes, list[Any]] = OrderedDict()


class PreparedChatbot(gr.Chatbot):
    """`gr.Chatbot` whose value is processed a message at a time, each message once."""

    is_template = True  # the page draws it with Gradio's own Chatbot

    def postprocess(self, value: list | None) -> Any:
        if not value:
            return super().postprocess(value)
        self._check_format(value)
        processed: list[Any] = []
        for message in value:
            processed.extend(self._prepared(message))
        return processed

    def _prepared(self, message: Any) -> list[Any]:
        try:
            key = orjson.dumps([message, self.reasoning_tags])
        except TypeError:  # a component or another object JSON cannot hold
            return super().postprocess([message]).model_dump()
        prepared = _prepared.get(key)
        if prepared is None:
            prepared = [_as_fragment(m) for m in super().postprocess([message]).model_dump()]
            _prepared[key] = prepared
            if len(_prepared) > MAX_PREPARED:
                _prepared.popitem(last=False)
        else:
            _prepared.move_to_end(key)
        return prepared


def _as_fragment(message: dict[str, Any]) -> Any:
    if all(part.get("type") == "text" for part in message.get("content") or []):
        return orjson.Fragment(orjson.dumps(message))
    return message
