"""Gradio chat history → LangChain messages, for the next turn; the id that groups a conversation's turns.

Only what the user typed and the answers they read go back to the model: tool
steps (messages with a metadata title), notes and footers (a metadata id) are
left out. The
browser sends content as blocks (`[{"type": "text", "text": ...}]`), the API
as plain strings; both are read.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage


def to_langchain(history: Iterable[Mapping[str, Any]]) -> list[BaseMessage]:
    messages: list[BaseMessage] = []
    for message in history:
        metadata = message.get("metadata") or {}
        if metadata.get("title") or metadata.get("id"):
            continue
        text = content_text(message.get("content"))
        if not text:
            continue
        if message.get("role") == "user":
            messages.append(HumanMessage(text))
        elif message.get("role") == "assistant":
            messages.append(AIMessage(text))
    return messages


def content_text(content: Any) -> str:
    """The text of a message's content: a string, a text block, or a list of them."""
    if isinstance(content, str):
        return content
    if isinstance(content, Mapping):
        return content.get("text", "") if content.get("type", "text") == "text" else ""
    if isinstance(content, list):
        return "".join(content_text(part) for part in content)
    return ""


class ConversationId:
    """A random id for one session's conversation, so that a tracer can group its turns.

    Gradio gives each session a deep copy of a `gr.State`'s initial value, and a
    copy of this is a fresh id: every browser tab and API client gets its own,
    with no load event. Never Gradio's session hash, which is a bearer secret.
    """

    def __init__(self) -> None:
        self.value = secrets.token_hex(8)

    def __deepcopy__(self, memo: dict[int, Any]) -> ConversationId:
        return ConversationId()
