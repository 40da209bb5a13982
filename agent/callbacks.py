"""`QueueCallbackHandler`: one request's model callbacks, as events on its own channel.

The model streams `AIMessageChunk`s and LangChain hands each to
`on_llm_new_token`. The handler feeds them to the step's `ReplyAssembler`,
which turns them into events (text, reasoning, tool calls starting and their
arguments streaming in, the final answer as it grows) and keeps the assembled
reply that the executor then runs.
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import AsyncCallbackHandler
from langchain_core.messages import AIMessageChunk
from langchain_core.outputs import ChatGenerationChunk, GenerationChunk
from typing_extensions import override

from agent.channel import EventChannel
from agent.events import StepStarted
from agent.reply import Reply, ReplyAssembler


class QueueCallbackHandler(AsyncCallbackHandler):
    """Translates one request's model chunks into events on its channel."""

    raise_error = True
    run_inline = True

    def __init__(self, channel: EventChannel) -> None:
        self.channel = channel
        self._step = 0
        self._call_ids: set[str] = set()
        self._assembler = ReplyAssembler(0, self._call_ids)

    @property
    def reply(self) -> Reply:
        """The reply of the current model call, as assembled so far."""
        return self._assembler.reply

    def start_step(self, step: int) -> None:
        self._step = step
        self._assembler = ReplyAssembler(step, self._call_ids)
        self.channel.emit(StepStarted(step))

    @override
    async def on_chat_model_start(self, serialized: dict[str, Any], messages: Any, **kwargs: Any) -> None:
        """A model call (or a retry of one) begins: assemble its reply from scratch."""
        self._assembler = ReplyAssembler(self._step, self._call_ids)

    @override
    async def on_llm_new_token(
        self,
        token: str | list[str | dict[str, Any]],
        *,
        chunk: GenerationChunk | ChatGenerationChunk | None = None,
        **kwargs: Any,
    ) -> None:
        """One streamed chunk: its events go out at once."""
        if isinstance(chunk, ChatGenerationChunk) and isinstance(chunk.message, AIMessageChunk):
            for event in self._assembler.add(chunk.message):
                self.channel.emit(event)
