"""Small, honest test doubles: a chat model that streams a script like OpenAI does."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from pydantic import Field

from agent.offline import OfflineArithmeticModel
from agent.offline.model import stream_chunks


@dataclass
class Raise:
    """Stream `after_chunks` chunks of `reply`, then raise `error`."""

    error: BaseException
    reply: AIMessage = field(default_factory=lambda: AIMessage(content=""))
    after_chunks: int = 0


@dataclass
class Chunks:
    """Stream exactly these chunks (for malformed arguments, cut-off streams...)."""

    chunks: list[AIMessageChunk]


@dataclass
class Hang:
    """Never answer (until cancelled)."""


ScriptItem = AIMessage | Raise | Chunks | Hang


class Progress:
    """Shared by the copies LangChain makes of a configurable model for each request."""

    def __init__(self) -> None:
        self.calls = 0
        self.seen: list[list[BaseMessage]] = []


class ScriptedChatModel(BaseChatModel):
    """Plays `script` one item per model call (the last item repeats); records what it saw."""

    script: list[Any]
    token_delay_ms: float = 0.0
    progress: Progress = Field(default_factory=Progress)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    @property
    def seen(self) -> list[list[BaseMessage]]:
        return self.progress.seen

    bind_tools = OfflineArithmeticModel.bind_tools

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        raise NotImplementedError("the executor always streams")

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        self.progress.seen.append(list(messages))
        item = self.script[min(self.progress.calls, len(self.script) - 1)]
        self.progress.calls += 1
        if isinstance(item, Hang):
            await asyncio.Event().wait()
        chunks = _chunks_of(item)
        for chunk in chunks:
            yield ChatGenerationChunk(message=chunk)
            await asyncio.sleep(self.token_delay_ms / 1000)
        if isinstance(item, Raise):
            raise item.error


def _chunks_of(item: ScriptItem) -> Sequence[AIMessageChunk]:
    if isinstance(item, AIMessage):
        return stream_chunks(item)
    if isinstance(item, Raise):
        return stream_chunks(item.reply)[: item.after_chunks]
    if isinstance(item, Chunks):
        return item.chunks
    return []


def call(name: str, call_id: str = "", **args: Any) -> dict[str, Any]:
    """A tool call for `AIMessage(tool_calls=[...])`."""
    return {"name": name, "args": args, "id": call_id or f"call_{name}_{sorted(args.items())}"}


def calls(*tool_calls: dict[str, Any], content: str = "") -> AIMessage:
    return AIMessage(content=content, tool_calls=list(tool_calls))


def answer(text: str, *tools_used: str) -> AIMessage:
    return calls(call("final_answer", answer=text, tools_used=list(tools_used)))
