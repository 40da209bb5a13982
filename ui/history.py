"""Gradio chat history → LangChain messages, for the next turn.

Only what the user typed and the answers they read go back to the model: tool
steps (messages with a metadata title), notes and footers (a metadata id) are
left out. The
browser sends content as blocks (`[{"type": "text", "text": ...}]`), the API
as plain strings; both are read.
"""

from __future__ import annotations

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
