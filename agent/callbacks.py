"""`QueueCallbackHandler`: one request's model callbacks, as events on its own queue.

The model streams `AIMessageChunk`s; LangChain hands each to `on_llm_new_token`.
The handler turns them into events: answer text, tool calls starting (read from
`tool_call_chunks`, whose `index` keeps parallel calls apart) and their
arguments streaming in. The answer inside `final_answer`'s JSON arguments is
decoded as it grows, so it streams like plain text. The executor adds its own
events (`emit`) and the consumer reads them all with `events()`, which awaits
the queue and ends at the turn's last event or when the producer is gone.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import jiter
from langchain_core.callbacks import AsyncCallbackHandler
from langchain_core.messages import AIMessageChunk, ToolCallChunk
from langchain_core.outputs import ChatGenerationChunk, GenerationChunk

from agent.events import (
    AgentEvent,
    AnswerDelta,
    Failed,
    Finished,
    StepStarted,
    ToolArgsDelta,
    ToolCallStarted,
)
from agent.tools import FINAL_ANSWER


def tool_call_id(provider_id: str | None, step: int, index: int) -> str:
    """The call's id from the provider, or a stable one for servers that send none."""
    return provider_id or f"call_{step}_{index}"


@dataclass(slots=True)
class _StreamingCall:
    call_id: str
    name: str
    arguments: str = ""
    answer_shown: str = ""


class _Closed:
    """Queued when the producer is gone, so the consumer never waits forever."""


_CLOSED = _Closed()


def _until_end(queued: list[AgentEvent | _Closed]) -> tuple[list[AgentEvent], bool]:
    """The events up to the turn's end, and whether it ended."""
    batch: list[AgentEvent] = []
    for event in queued:
        if isinstance(event, _Closed):
            return batch, True
        batch.append(event)
        if isinstance(event, Finished | Failed):
            return batch, True
    return batch, False


class QueueCallbackHandler(AsyncCallbackHandler):
    """Feeds one request's events into one `asyncio.Queue`; never shared between requests."""

    raise_error = True
    run_inline = True

    def __init__(self) -> None:
        self._queue: asyncio.Queue[AgentEvent | _Closed] = asyncio.Queue()
        self._step = 0
        self._calls: dict[int, _StreamingCall] = {}

    def emit(self, event: AgentEvent) -> None:
        self._queue.put_nowait(event)

    def close(self) -> None:
        """No more events will come (the producer finished, failed or was cancelled)."""
        self._queue.put_nowait(_CLOSED)

    def start_step(self, step: int) -> None:
        self._step = step
        self.emit(StepStarted(step))

    async def events(self) -> AsyncIterator[AgentEvent]:
        """Every event of the turn, ending after `Finished`/`Failed` or at `close()`."""
        while True:
            event = await self._queue.get()
            if isinstance(event, _Closed):
                return
            yield event
            if isinstance(event, Finished | Failed):
                return

    async def batches(self, frame_s: Callable[[], float]) -> AsyncIterator[list[AgentEvent]]:
        """The same events in groups, for a display that should not update per token.

        The first event after a quiet spell comes at once; then at most one group
        per `frame_s()` seconds, holding every event that arrived meanwhile.
        """
        loop = asyncio.get_running_loop()
        while True:
            queued = [await self._queue.get()]
            while not self._queue.empty():
                queued.append(self._queue.get_nowait())
            batch, ended = _until_end(queued)
            if batch:
                sent_at = loop.time()
                yield batch
                if not ended:
                    await asyncio.sleep(max(0.0, sent_at + frame_s() - loop.time()))
            if ended:
                return

    async def on_chat_model_start(self, serialized: dict[str, Any], messages: Any, **kwargs: Any) -> None:
        self._calls = {}

    async def on_llm_new_token(
        self,
        token: str | list[str | dict[str, Any]],
        *,
        chunk: GenerationChunk | ChatGenerationChunk | None = None,
        **kwargs: Any,
    ) -> None:
        if not isinstance(chunk, ChatGenerationChunk) or not isinstance(chunk.message, AIMessageChunk):
            return
        message = chunk.message
        if text := message.text:
            self.emit(AnswerDelta(text))
        for piece in message.tool_call_chunks:
            self._on_tool_call_chunk(piece)

    def _on_tool_call_chunk(self, piece: ToolCallChunk) -> None:
        index = piece.get("index")
        if index is None:
            starts_call = bool(piece.get("id") or piece.get("name")) or not self._calls
            index = len(self._calls) if starts_call else max(self._calls)
        call = self._calls.get(index)
        if call is None:
            call = _StreamingCall(tool_call_id(piece.get("id"), self._step, index), piece.get("name") or "")
            self._calls[index] = call
            self.emit(ToolCallStarted(call.call_id, call.name, self._step))
        if arguments := piece.get("args"):
            self.emit(ToolArgsDelta(call.call_id, arguments))
            if call.name == FINAL_ANSWER:
                self._stream_answer(call, arguments)

    def _stream_answer(self, call: _StreamingCall, arguments: str) -> None:
        """Decode `{"answer": "...` as it grows and emit the new text, escapes resolved."""
        call.arguments += arguments
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
            self.emit(AnswerDelta(answer[len(call.answer_shown) :]))
            call.answer_shown = answer
