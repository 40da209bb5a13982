"""The conversation a session may keep, and what the model may be told it said.

How text from a model or a tool is shown (one Markdown parser, no raw HTML, an
allow-list sanitiser) is `ui.render`'s part.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

from agent import newest_within
from ui.history import content_text

TRIMMED_TITLE = "✂️ Trimmed to keep the conversation within this server's limits"


class Trimmed(NamedTuple):
    """A conversation within the limits: `messages` (a new list) and the note to show, if any."""

    messages: list[dict[str, Any]]
    notes: list[dict[str, Any]]


def trim_history(history: Sequence[dict[str, Any]], max_messages: int, max_chars: int) -> Trimmed:
    """`history` with its oldest messages trimmed until the rest fit the limits, as a new list,
    and a note saying so if any was; `history` itself and its messages are left as they are.

    What is kept is decided by `newest_within`, the engine's one rule, over the messages
    not trimmed yet. A trimmed message keeps its place, as a short title without its
    content: the saved conversation counts a page's messages by position (`ui.saved`).
    The model never sees titled messages.
    """
    untrimmed = [message for message in history if not _is_trimmed(message)]
    kept = newest_within(reversed(untrimmed), message_size, max_messages, max_chars)
    if len(kept) == len(untrimmed):
        return Trimmed(list(history), [])
    to_trim = len(untrimmed) - len(kept)
    messages = []
    for message in history:
        if to_trim and not _is_trimmed(message):
            to_trim -= 1
            message = _placeholder(message)
        messages.append(message)
    limits = f"{max_messages:,} messages and {max_chars:,} characters"
    note = (
        f"Older messages were trimmed: a conversation here keeps at most {limits} "
        "(AGENT_MAX_CHAT_MESSAGES, AGENT_MAX_CHAT_CHARS)."
    )
    return Trimmed(messages, [{"role": "assistant", "content": note, "metadata": _trimmed_metadata()}])


def _placeholder(message: Mapping[str, Any]) -> dict[str, Any]:
    return {"role": message.get("role"), "content": "", "metadata": _trimmed_metadata()}


def _trimmed_metadata() -> dict[str, Any]:
    return {"title": TRIMMED_TITLE, "status": "done"}


def message_size(message: Mapping[str, Any]) -> int:
    """What a chat message counts toward `AGENT_MAX_CHAT_CHARS`: its text and its metadata."""
    return len(content_text(message.get("content"))) + len(str(message.get("metadata") or ""))


MAX_BLOCKS_PER_MESSAGE = 16
"""Content blocks a sent message may have (the page sends its content as a list of blocks, one
per message; Gradio refuses any other shape)."""


def bounded_chat(value: Any, max_messages: int, max_chars: int) -> list[Any] | None:
    """A conversation a client sent, cut to what this server keeps: its newest messages within
    `max_messages` and `max_chars` (older ones dropped whole, by `newest_within`). None if it is
    not a conversation.

    Runs before Gradio validates the value (a pydantic model per message and part: that
    validation, not the bytes, is what a long forged conversation costs). For the same
    reason each part after a message's first counts as at least a message's share of
    `max_chars` (`max_chars / max_messages`): the page sends one part per message, and
    400 messages of 16 tiny parts would otherwise keep 6,400 parts (3.5 MB) in a session.
    """
    if value is None:
        return []
    if not isinstance(value, list):
        return None
    share = max(max_chars // max_messages, 1)

    def sent_size(message: Mapping[str, Any]) -> int:
        return message_size(message) + share * (len(message["content"]) - 1)

    try:
        return newest_within(_checked(reversed(value)), sent_size, max_messages, max_chars)
    except _NotAConversation:
        return None


class _NotAConversation(ValueError):
    """A sent value holds something other than chat messages."""


def _checked(messages: Iterable[Any]) -> Iterator[Any]:
    for message in messages:
        if not _is_message(message):
            raise _NotAConversation
        yield message


def _is_message(message: Any) -> bool:
    if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
        return False
    content = message.get("content")
    return isinstance(content, list) and len(content) <= MAX_BLOCKS_PER_MESSAGE


class ProducedAnswers:
    """The answers this server produced, as digests: what the model may be told it said.

    A conversation comes back from the page (and from any client) as a value the
    client chose, so an assistant message in it may be words this server never
    produced. Before a turn, assistant messages whose digest is not here are left
    out of what the model receives. One record for the process, not per session:
    a client could only replay an answer it already saw (its own, or one it knows
    word for word), which it could have had produced in its own session anyway;
    and a conversation that moves between sessions (a reloaded page, a saved chat)
    keeps its context. Least recently used digests go first past `max_answers`.
    """

    def __init__(self, max_answers: int = 200_000) -> None:
        self.max_answers = max_answers
        self._digests: OrderedDict[bytes, None] = OrderedDict()
        self._lock = threading.Lock()

    def record(self, text: str) -> None:
        """`text` is an answer this server produced (or loaded from its own store)."""
        digest = _digest(text)
        with self._lock:
            self._digests[digest] = None
            self._digests.move_to_end(digest)
            while len(self._digests) > self.max_answers:
                self._digests.popitem(last=False)

    def vouches_for(self, text: str) -> bool:
        digest = _digest(text)
        with self._lock:
            if digest not in self._digests:
                return False
            self._digests.move_to_end(digest)
            return True

    def vouched(self, history: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        """`history` without the answers this server did not produce (tool steps and notes stay:
        the model never sees them)."""
        return [message for message in history if not self._is_forged(message)]

    def _is_forged(self, message: Mapping[str, Any]) -> bool:
        text = answer_text(message)
        return bool(text) and not self.vouches_for(text)


PRODUCED = ProducedAnswers()
"""The process's record: the chat records each answer it produced; whatever loads a
conversation from this server's own store may record that conversation's answers too."""


def answer_text(message: Mapping[str, Any]) -> str:
    """The text of an answer the model would receive back ("" for questions, tool steps, notes)."""
    metadata = message.get("metadata") or {}
    if message.get("role") != "assistant" or metadata.get("title") or metadata.get("id"):
        return ""
    return content_text(message.get("content"))


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def _is_trimmed(message: Mapping[str, Any]) -> bool:
    return (message.get("metadata") or {}).get("title") == TRIMMED_TITLE
