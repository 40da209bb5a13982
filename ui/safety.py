"""Text from a model or a tool, made safe to render; and the conversation a session may keep.

The Chatbot renders Markdown with HTML, and its sanitiser keeps tags that make
the viewer's browser fetch other hosts (`<img>`, `<video poster>`, `<form
action>`, inline `style` with `url()`). A model answer, or one steered by a
prompt injection, could use them to send the chat to anyone. So text that
comes from a model or a tool is shown as written: outside code, `<` is escaped
(no HTML reaches the page) and Markdown images lose their `!` (they show as
text); code spans and blocks are left alone, since Markdown never reads HTML
there. Tool arguments go in a fenced block whose fence is longer than any
backtick run inside, so they cannot close it. The page's Content-Security-Policy
(`ui/guard.py`) stops what might still slip through.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, MutableMapping, MutableSequence
from typing import Any

from ui.history import content_text

TRIMMED_TITLE = "✂️ Trimmed to keep the conversation within this server's limits"

_FENCE_OPEN = re.compile(r"^ {0,3}(`{3,}|~{3,})[^\n]*$", re.MULTILINE)
_BACKTICKS = re.compile(r"`+")


def safe_markdown(text: str) -> str:
    """`text` as Markdown that renders no HTML and loads no image."""
    out: list[str] = []
    position = 0
    for start, end in _code_regions(text):
        out.append(_escape(text[position:start]))
        out.append(text[start:end])
        position = end
    out.append(_escape(text[position:]))
    return "".join(out)


def fenced(text: str, info: str = "") -> str:
    """`text` in a fenced code block that nothing inside can close."""
    longest = max((len(run) for run in _BACKTICKS.findall(text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{text}\n{fence}"


def _escape(text: str) -> str:
    return text.replace("<", "&lt;").replace("![", "!\\[")


def _code_regions(text: str) -> Iterator[tuple[int, int]]:
    """(start, end) of each fenced block and code span, in order; an unclosed fence runs to the end."""
    position = 0
    while position < len(text):
        fence = _FENCE_OPEN.search(text, position)
        tick = text.find("`", position)
        if fence and (tick == -1 or fence.start() <= tick):
            marker = fence[1]
            closing = re.compile(rf"^ {{0,3}}{re.escape(marker[0])}{{{len(marker)},}}[ \t]*$", re.MULTILINE)
            close = closing.search(text, fence.end() + 1)
            end = close.end() if close else len(text)
            yield fence.start(), end
            position = end
            continue
        if tick == -1:
            return
        run = _BACKTICKS.match(text, tick)
        assert run is not None
        closing_run = re.compile(rf"(?<!`){run[0]}(?!`)")
        close = closing_run.search(text, run.end())
        if close is None:
            position = run.end()  # a lone backtick run is literal text
            continue
        yield tick, close.end()
        position = close.end()


def trim_history(
    history: MutableSequence[MutableMapping[str, Any]], max_messages: int, max_chars: int
) -> list[dict[str, Any]]:
    """Blank the oldest messages, in place, until the rest fit the limits; a note saying so if any was.

    Gradio keeps what the chat function returns as the session's state, and that
    always includes the history it was given, so the only way to bound a
    session's memory is to shrink the messages themselves. A trimmed message
    keeps its place (the list is Gradio's copy) with a short title instead of
    its content; the model never sees titled messages.
    """
    kept_chars, kept = 0, 0
    trimmed = False
    for message in reversed(history):
        if _is_trimmed(message):
            continue
        size = len(content_text(message.get("content"))) + len(str(message.get("metadata") or ""))
        kept_chars += size
        kept += 1
        if kept > max_messages or kept_chars > max_chars:
            message["content"] = ""
            message["metadata"] = {"title": TRIMMED_TITLE, "status": "done"}
            trimmed = True
    if not trimmed:
        return []
    limits = f"{max_messages:,} messages and {max_chars:,} characters"
    note = (
        f"Older messages were trimmed: a conversation here keeps at most {limits} "
        "(AGENT_MAX_CHAT_MESSAGES, AGENT_MAX_CHAT_CHARS)."
    )
    return [{"role": "assistant", "content": note, "metadata": {"title": TRIMMED_TITLE, "status": "done"}}]


def _is_trimmed(message: MutableMapping[str, Any]) -> bool:
    return (message.get("metadata") or {}).get("title") == TRIMMED_TITLE
