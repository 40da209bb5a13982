"""The offline model: a real chat model that plays the agent for arithmetic, with no network.

It is used when no API key is set (or when asked for). Each call reads the
conversation like an LLM would: the last user message is the question, the
tool calls and results after it are the work done so far. It then answers with
the next step: all operations that can run now as parallel tool calls, or
`final_answer` once the result is known. Anything that is not arithmetic gets an
honest answer saying what this model is and how to switch to a real one.

It streams exactly like OpenAI: tool name and id first, then the JSON arguments
in small pieces as `tool_call_chunks`, one piece every `token_delay_ms`.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool

from agent.arithmetic import (
    NotArithmetic,
    Num,
    Question,
    evaluate,
    parse_question,
    ready_operations,
    substitute_results,
    tool_arguments,
)
from agent.tools import FINAL_ANSWER, Number, display_number

MODEL_NAME = "offline-arithmetic"

INTRODUCTION = (
    "I'm the **offline model**: this app is running without an OpenAI API key, so I can only do "
    "arithmetic with the add, subtract, multiply and exponentiate tools. {reason} "
    "Try “what is (2 + 3) * (4 + 5)?”, “2 to the power of 10” or “10 plus 10”. "
    "To chat with a real model, start the app with `OPENAI_API_KEY` set, or paste your own key "
    "under 🔑 Model and API key."
)

NOT_ANSWERS = ("I'm the **offline model**", "I could not compute", "I lost track", "I would need the")
"""How this model's replies that carry no result begin."""

_PIECE = re.compile(r"\s*[\w.]+|\s*[^\w\s]|\s+")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[+-]?\d+)?")
_SHOWN_RESULT = re.compile(rf"= \*\*({_NUMBER.pattern})\*\*\s*$")


def pieces(text: str) -> list[str]:
    """Split text into token-sized pieces that join back to it exactly."""
    return _PIECE.findall(text)


class OfflineArithmeticModel(BaseChatModel):
    """Plans arithmetic as tool calls, one step per call; streams like OpenAI."""

    token_delay_ms: float = 20.0
    model_name: str = MODEL_NAME

    @property
    def _llm_type(self) -> str:
        return MODEL_NAME

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], tool_choice=tool_choice, **kwargs)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        reply = next_reply(messages, _tool_names(kwargs))
        return ChatResult(generations=[ChatGeneration(message=reply)])

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        reply = next_reply(messages, _tool_names(kwargs))
        delay_s = self.token_delay_ms / 1000
        chunks = stream_chunks(reply)
        input_tokens = sum(len(pieces(m.text)) for m in messages)
        for position, chunk in enumerate(chunks):
            if position == len(chunks) - 1:
                chunk.usage_metadata = {
                    "input_tokens": input_tokens,
                    "output_tokens": len(chunks),
                    "total_tokens": input_tokens + len(chunks),
                }
            yield ChatGenerationChunk(message=chunk)
            if delay_s and position < len(chunks) - 1:
                await asyncio.sleep(delay_s)


def _tool_names(kwargs: dict[str, Any]) -> set[str]:
    return {tool["function"]["name"] for tool in kwargs.get("tools") or []}


def stream_chunks(reply: AIMessage) -> list[AIMessageChunk]:
    """The reply as OpenAI streams it: text pieces, then each call's name and argument pieces."""
    chunks = [AIMessageChunk(content=piece) for piece in pieces(reply.text)]
    for index, call in enumerate(reply.tool_calls):
        chunks.append(
            AIMessageChunk(
                content="",
                tool_call_chunks=[{"name": call["name"], "args": "", "id": call["id"], "index": index}],
            )
        )
        chunks.extend(
            AIMessageChunk(
                content="", tool_call_chunks=[{"name": None, "args": piece, "id": None, "index": index}]
            )
            for piece in pieces(json.dumps(call["args"], ensure_ascii=False))
        )
    finish_reason = "tool_calls" if reply.tool_calls else "stop"
    chunks.append(
        AIMessageChunk(
            content="",
            response_metadata={"finish_reason": finish_reason, "model_name": MODEL_NAME},
            chunk_position="last",
        )
    )
    return chunks


def next_reply(messages: Sequence[BaseMessage], tools: set[str]) -> AIMessage:
    """The agent's next move, read from the conversation so far."""
    turn_start = max((i for i, m in enumerate(messages) if isinstance(m, HumanMessage)), default=None)
    if turn_start is None:
        return _final(INTRODUCTION.format(reason=""), [], tools)
    previous = _previous_result(messages[:turn_start])
    try:
        question = parse_question(messages[turn_start].text, previous)
    except NotArithmetic as reason:
        return _final(INTRODUCTION.format(reason=str(reason)), [], tools)
    return _continue(question, messages[turn_start + 1 :], tools)


def _continue(question: Question, work: Sequence[BaseMessage], tools: set[str]) -> AIMessage:
    """Replay the steps already taken on the plan, then take the next one."""
    tree = question.tree
    results = {m.tool_call_id: m for m in work if isinstance(m, ToolMessage)}
    used: list[str] = []
    for step in (m for m in work if isinstance(m, AIMessage) and m.tool_calls):
        ready = ready_operations(tree)
        calls = step.tool_calls
        if [c["name"] for c in calls] != [op.tool for op in ready] or any(
            c["id"] not in results for c in calls
        ):
            return _final(
                f"I lost track of the steps for {question.expression}; please ask again.", used, tools
            )
        for call in calls:
            if results[call["id"]].status == "error":
                error = results[call["id"]].text.removeprefix("Error: ")
                return _final(f"I could not compute {question.expression}: {error}.", used, tools)
        used.extend(c["name"] for c in calls if c["name"] not in used)
        tree = substitute_results(tree, (_parse_number(results[c["id"]].text) for c in calls))
    if isinstance(tree, Num):
        return _final(f"{question.expression} = **{display_number(tree.value)}**", used, tools)
    ready = ready_operations(tree)
    missing = sorted({op.tool for op in ready} - tools)
    if missing:
        return _final(
            f"I would need the {', '.join(missing)} tool, which this app does not offer.", used, tools
        )
    return AIMessage(
        content="",
        tool_calls=[{"name": op.tool, "args": tool_arguments(op), "id": _call_id()} for op in ready],
    )


def _final(answer: str, tools_used: list[str], tools: set[str]) -> AIMessage:
    if FINAL_ANSWER not in tools:
        return AIMessage(content=answer)
    return AIMessage(
        content="",
        tool_calls=[
            {"name": FINAL_ANSWER, "args": {"answer": answer, "tools_used": tools_used}, "id": _call_id()}
        ],
    )


def _call_id() -> str:
    return f"call_{uuid.uuid4().hex[:20]}"


def _parse_number(text: str) -> Number:
    return float(text) if any(c in text for c in ".e") else int(text)


def _previous_result(history: Sequence[BaseMessage]) -> Number | None:
    """What "that" refers to: the exact value of the last answer.

    Replies that are not answers (this model's introduction or refusals) are
    skipped. An answer of this model shows its value rounded, so the value is
    computed again, exactly, from the question it answered.
    """
    for index in reversed(range(len(history))):
        reply = history[index]
        if not isinstance(reply, AIMessage) or not reply.text or reply.text.startswith(NOT_ANSWERS):
            continue
        if shown := _SHOWN_RESULT.search(reply.text):
            exact = _exact_answer(history[:index])
            if exact is not None and display_number(exact) == shown[1]:
                return exact
            return _parse_number(shown[1])
        if numbers := _NUMBER.findall(reply.text):  # another model's answer
            return _parse_number(numbers[-1])
    return None


def _exact_answer(history: Sequence[BaseMessage]) -> Number | None:
    """The exact value of the last question in `history`, if it is arithmetic that computes."""
    if not history or not isinstance(history[-1], HumanMessage):
        return None
    try:
        question = parse_question(history[-1].text, _previous_result(history[:-1]))
        return evaluate(question.tree)
    except (NotArithmetic, ValueError, ArithmeticError):
        return None
