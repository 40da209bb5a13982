"""`ReplyAssembler`: one streamed model reply, put together chunk by chunk.

This is the only place that reads `AIMessageChunk.tool_call_chunks`. The executor
feeds it each chunk of the stream it reads: the events it returns go to the live
display at once, and the reply it assembles is what runs, so what the user sees
being called is what runs.

OpenAI-compatible servers stream tool calls in many shapes, and LangChain's
`AIMessageChunk.__add__` only handles OpenAI's own. The rules here cover the
ones seen in the wild (`tests/agent/dialects.py` has a fixture for each):

- a piece with a **new id** starts a call, whatever its `index` (Ollama and SGLang
  send every parallel call at index 0); a piece repeating a **known id** continues
  that call (LiteLLM repeats ids on every delta);
- a piece **without an id** continues the latest call at its `index`; with no
  `index` at all (Gemini, old Ollama) it continues the current call unless it
  brings a different name, or a whole new JSON object after a complete one;
- names are never concatenated (llama.cpp and LiteLLM repeat the name on every
  delta; LM Studio sends `""` on continuations);
- arguments that repeat, in full, what a call already has (a trailing summary
  chunk) are not appended again;
- usage is taken as the largest reported, never summed (Gemini and Together
  repeat it); the finish reason is the last one reported.

Call ids are the provider's when it sends usable ones; otherwise (none, empty,
or already used earlier in the turn — SGLang restarts at "0" every reply) a
generated 9-character alphanumeric id, which Mistral-family templates require.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jiter
from langchain_core.messages import AIMessageChunk

from agent.events import (
    AgentEvent,
    AnswerDelta,
    ReasoningDelta,
    TextDelta,
    ToolArgsDelta,
    ToolCallStarted,
)
from agent.tools import FINAL_ANSWER

REASONING = "reasoning_content"
"""`additional_kwargs` key for a provider's reasoning text (DeepSeek, vLLM, Ollama `reasoning`)."""
TOOL_CALL_EXTRAS = "tool_call_extras"
"""`additional_kwargs` key for provider fields of tool calls that must go back unchanged
(Gemini's `extra_content` thought signatures): per chunk, a list aligned with its
`tool_call_chunks`; on an assembled message, a dict by call id."""


def new_call_id() -> str:
    """Nine alphanumeric characters: accepted by every chat template we know."""
    return uuid.uuid4().hex[:9]


@dataclass(slots=True)
class AssembledCall:
    """One tool call as streamed so far."""

    call_id: str
    provider_id: str
    index: int | None
    name: str = ""
    arguments: str = ""
    extras: dict[str, Any] = field(default_factory=dict)
    started: bool = False
    answer_shown: str = ""


@dataclass(slots=True)
class Reply:
    """What one model reply said: text, reasoning, tool calls, usage and how it ended."""

    text: str = ""
    reasoning: str = ""
    calls: list[AssembledCall] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    usage_reported: bool = False
    finish_reason: str | None = None
    chunks: int = 0
    response_metadata: dict[str, Any] = field(default_factory=dict)


class ReplyAssembler:
    """Feed it one reply's chunks with `add`; each call returns the events they make."""

    def __init__(self, step: int, taken_ids: set[str]) -> None:
        self.step = step
        self.reply = Reply()
        self._taken_ids = taken_ids  # every call id used so far in the turn

    def add(self, chunk: AIMessageChunk) -> list[AgentEvent]:
        # Called for every chunk of every reply: empty fields are skipped before any lookup.
        events: list[AgentEvent] = []
        reply = self.reply
        reply.chunks += 1
        if chunk.usage_metadata or chunk.response_metadata:
            self._note_metadata(chunk)
        provider_fields = chunk.additional_kwargs
        if provider_fields and (reasoning := provider_fields.get(REASONING)):
            reply.reasoning += reasoning
            events.append(ReasoningDelta(self.step, reasoning))
        content = chunk.content
        if text := (content if isinstance(content, str) else str(chunk.text)):
            reply.text += text
            events.append(TextDelta(self.step, text))
        if pieces := chunk.tool_call_chunks:
            extras = (provider_fields.get(TOOL_CALL_EXTRAS) if provider_fields else None) or []
            for position, piece in enumerate(pieces):
                extra = extras[position] if position < len(extras) else None
                events.extend(self._add_piece(piece, extra))
        return events

    def _note_metadata(self, chunk: AIMessageChunk) -> None:
        if usage := chunk.usage_metadata:
            self.reply.usage_reported = True
            self.reply.input_tokens = max(self.reply.input_tokens, usage.get("input_tokens") or 0)
            self.reply.output_tokens = max(self.reply.output_tokens, usage.get("output_tokens") or 0)
        metadata = chunk.response_metadata
        if finish_reason := metadata.get("finish_reason"):
            self.reply.finish_reason = finish_reason
        for key in ("model_name", "system_fingerprint"):
            if value := metadata.get(key):
                self.reply.response_metadata[key] = value

    def _add_piece(self, piece: Mapping[str, Any], extra: Mapping[str, Any] | None) -> Iterable[AgentEvent]:
        provider_id = piece.get("id") or ""
        name = piece.get("name") or ""
        arguments = piece.get("args") or ""
        index = piece.get("index")
        call = self._call_for(provider_id, name, arguments, index)
        if call is None:
            call = self._start_call(provider_id, index)
        if extra:
            call.extras.update(extra)
        if name and not call.name:
            call.name = name
        return self._extend(call, arguments)

    def _call_for(
        self, provider_id: str, name: str, arguments: str, index: int | None
    ) -> AssembledCall | None:
        """The call this piece continues, or None if it starts a new one."""
        calls = self.reply.calls
        if provider_id:
            return next((c for c in calls if c.provider_id == provider_id), None)
        if index is None:
            current = calls[-1] if calls else None
        else:
            current = next((c for c in reversed(calls) if c.index == index), None)
        if current is None or (name and current.name and name != current.name):
            return None
        new_object = arguments.lstrip().startswith("{") and arguments != current.arguments
        if new_object and _complete_json(current.arguments):
            return None
        return current

    def _start_call(self, provider_id: str, index: int | None) -> AssembledCall:
        call_id = provider_id if provider_id and provider_id not in self._taken_ids else new_call_id()
        self._taken_ids.add(call_id)
        call = AssembledCall(call_id, provider_id, index)
        self.reply.calls.append(call)
        return call

    def _extend(self, call: AssembledCall, arguments: str) -> Iterable[AgentEvent]:
        """Add the piece's arguments to the call; start showing it once its name is known."""
        new_text = _new_text(call.arguments, arguments)
        call.arguments += new_text
        if not call.name:
            return
        if not call.started:
            call.started = True
            yield ToolCallStarted(call.call_id, call.name, self.step, call.name == FINAL_ANSWER)
            new_text = call.arguments  # everything held back while the name was unknown
        if new_text:
            yield ToolArgsDelta(call.call_id, new_text)
            if call.name == FINAL_ANSWER:
                yield from _answer_delta(call)


def _new_text(current: str, arguments: str) -> str:
    """The part of `arguments` that extends `current`: a full repeat adds nothing."""
    if not arguments or arguments == current:
        return ""
    if current and arguments.startswith(current) and _complete_json(arguments):
        return arguments[len(current) :]  # a summary that repeats the call in full
    if _complete_json(current):
        return ""  # nothing can follow a complete object
    return arguments


def _answer_delta(call: AssembledCall) -> Iterable[AnswerDelta]:
    """Decode `{"answer": "...` as it grows and yield the new text, escapes resolved."""
    try:
        decoded = jiter.from_json(call.arguments.encode(), partial_mode="trailing-strings")
    except ValueError:
        return
    answer = decoded.get("answer") if isinstance(decoded, dict) else None
    if (
        isinstance(answer, str)
        and len(answer) > len(call.answer_shown)
        and answer.startswith(call.answer_shown)
    ):
        yield AnswerDelta(answer[len(call.answer_shown) :])
        call.answer_shown = answer


def _complete_json(text: str) -> bool:
    """Whether `text` is a whole JSON object. Checked on every argument piece, so the cheap
    test comes first: a partial object cannot end with its closing brace."""
    if not text.rstrip().endswith("}"):
        return False
    try:
        json.loads(text)
    except ValueError:
        return False
    return True
