"""What part of a conversation is kept: one rule for the engine, the guard and the live turn.

A conversation is kept from its newest message back, for as long as the messages
fit both limits; the first that does not fit, and everything older, is left out.
Each caller brings its own messages, how it measures one, and its own limits:
the executor bounds what the model reads (`max_history_chars`), the guard what a
client may send and the live turn what a session keeps (`AGENT_MAX_CHAT_MESSAGES`,
`AGENT_MAX_CHAT_CHARS`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import TypeVar

Message = TypeVar("Message")


def newest_within(
    newest_first: Iterable[Message],
    size: Callable[[Message], int],
    max_messages: float = math.inf,
    max_chars: float = math.inf,
) -> list[Message]:
    """The newest messages that fit `max_messages` and `max_chars` (their `size`s summed), oldest
    first. `newest_first` is read lazily and no further than the first message that does not fit."""
    kept: list[Message] = []
    chars = 0
    for message in newest_first:
        chars += size(message)
        if len(kept) >= max_messages or chars > max_chars:
            break
        kept.append(message)
    kept.reverse()
    return kept
