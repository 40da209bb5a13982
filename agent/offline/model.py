"""The offline chat model: reads the conversation like an LLM would and takes the agent's next step.

The last user message is the question; the tool results after it are the work
done so far, read in order. The next reply is the plan's next step as parallel
tool calls, or `final_answer` once the result is known. Anything that is not
arithmetic gets an honest answer saying what this model is and how to switch to
a real one.

It streams exactly like OpenAI: tool name and id first, then the JSON arguments
in small pieces as `tool_call_chunks`, one piece every `token_delay_ms`, at its own
pace like a remote server (`TokenPace`).
"""

from __future__ import annotations

import asyncio
import functools
import json
import marshal
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from itertools import chain
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool

from agent.offline.planning import Plan, arguments, evaluate, parse_number, plan, value
from agent.offline.reading import NotArithmetic, read
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


class TokenPace:
    """A remote model's pace: chunk n is due n × delay after the first, whatever the reader does.

    A reader that fell behind (a busy server) gets every chunk already due at once, as it would
    from a socket's buffer, rather than each one a full delay after it read the one before: a
    model does not slow down because its client is busy.
    """

    def __init__(self, delay_ms: float) -> None:
        self.delay_s = delay_ms / 1000
        self.started = time.monotonic()

    def wait_s(self, position: int) -> float:
        """How long until chunk `position` is due (zero or less: it is)."""
        return self.started + position * self.delay_s - time.monotonic()


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
        """The model with `tools`; it calls them as its plan needs. `tool_choice` may say so
        (`auto`, `any`, `required`: then a reply in words is refused when it comes); a named
        tool or `none` is refused here: the plan decides."""
        if tool_choice not in (None, "auto", "any", "required"):
            raise ValueError(
                f"The offline model cannot honour tool_choice={tool_choice!r}: it calls the tools its "
                "plan needs (use 'auto', 'any' or 'required')."
            )
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], tool_choice=tool_choice, **kwargs)

    def with_structured_output(self, schema: Any, *, include_raw: bool = False, **kwargs: Any) -> Any:
        """Refused: the offline model answers arithmetic through its tools, never in a schema."""
        raise NotImplementedError(
            "The offline arithmetic model has no structured output: it answers through its tools "
            "(final_answer). Use a model served over the OpenAI API for with_structured_output."
        )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        chunks = list(self._chunks(messages, kwargs))
        reply = chunks[0]
        for chunk in chunks[1:]:
            reply += chunk
        message = AIMessage(
            content=reply.content,
            tool_calls=reply.tool_calls,
            usage_metadata=reply.usage_metadata,
            response_metadata=reply.response_metadata,
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        pace = TokenPace(self.token_delay_ms)
        for position, chunk in enumerate(self._chunks(messages, kwargs)):
            if (wait_s := pace.wait_s(position)) > 0:
                time.sleep(wait_s)
            yield ChatGenerationChunk(message=chunk)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        pace = TokenPace(self.token_delay_ms)
        for position, chunk in enumerate(self._chunks(messages, kwargs)):
            if (wait_s := pace.wait_s(position)) > 0:
                await asyncio.sleep(wait_s)
            yield ChatGenerationChunk(message=chunk)

    def _chunks(self, messages: list[BaseMessage], kwargs: dict[str, Any]) -> list[AIMessageChunk]:
        """The next reply as streamed chunks, the last one carrying the token usage.

        A reply in words while `tool_choice` demands a tool call is refused rather than sent:
        a caller that forces a tool relies on getting one.
        """
        reply = next_reply(messages, _tool_names(kwargs))
        if not reply.tool_calls and (choice := kwargs.get("tool_choice")) in ("any", "required"):
            raise ValueError(
                f"The offline model cannot honour tool_choice={choice!r} here: it would answer in "
                f"words ({reply.text[:80]!r}…), and {FINAL_ANSWER} is not one of its tools."
            )
        chunks = stream_chunks(reply)
        input_tokens = sum(_token_count(m.text) for m in messages)
        chunks[-1].usage_metadata = {
            "input_tokens": input_tokens,
            "output_tokens": len(chunks),
            "total_tokens": input_tokens + len(chunks),
        }
        return chunks


@functools.lru_cache(maxsize=256)
def _token_count(text: str) -> int:
    """How many tokens `text` counts as. Cached: every model call counts the whole conversation
    again (the system prompt, the history, the results so far), and it rarely changes."""
    return len(pieces(text))


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
            argument_chunk(piece, index) for piece in pieces(json.dumps(call["args"], ensure_ascii=False))
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


def argument_chunk(piece: str, index: int) -> AIMessageChunk:
    """The chunk carrying `piece` of call `index`'s arguments: equal to a newly built one, and
    sharing nothing mutable with any other chunk.

    Building one makes LangChain parse the piece as partial JSON (`tool_calls` or
    `invalid_tool_calls` come from it); the same pieces recur in every reply (`{"`, `":`, ...),
    so each is built once and copied, its mutable fields unmarshalled afresh each time.
    """
    built, mutable_fields = _built_argument_chunk(piece, index)
    chunk = built.model_copy()
    # Through `vars`, not `model_copy(update=...)`: that would also mark the fields as set by
    # the caller, and a tracer's dump of the chunk (`exclude_unset`) would differ.
    vars(chunk).update(marshal.loads(mutable_fields))
    return chunk


@functools.lru_cache(maxsize=1024)
def _built_argument_chunk(piece: str, index: int) -> tuple[AIMessageChunk, bytes]:
    """The chunk as LangChain builds it, and its mutable fields marshalled: a chunk's fields are
    parsed JSON (dicts, lists, strings, numbers, None), which `marshal` copies exactly, deeply,
    and faster than a copy in Python; the bytes never leave this process."""
    built = AIMessageChunk(
        content="", tool_call_chunks=[{"name": None, "args": piece, "id": None, "index": index}]
    )
    return built, marshal.dumps({field: getattr(built, field) for field in MUTABLE_CHUNK_FIELDS})


MUTABLE_CHUNK_FIELDS = (
    "additional_kwargs",
    "response_metadata",
    "tool_calls",
    "invalid_tool_calls",
    "tool_call_chunks",
)
"""The fields of an argument chunk that hold dicts or lists (the rest are strings, None or numbers)."""


def next_reply(messages: Sequence[BaseMessage], tools: set[str]) -> AIMessage:
    """The agent's next move, read from the conversation so far."""
    turn_start = max((i for i, m in enumerate(messages) if isinstance(m, HumanMessage)), default=None)
    if turn_start is None:
        return _final(INTRODUCTION.format(reason=""), [], tools)
    try:
        question = planned(messages[turn_start].text, previous_result(messages[:turn_start]))
    except NotArithmetic as reason:
        return _final(INTRODUCTION.format(reason=str(reason)), [], tools)
    return _next_step(question, messages[turn_start + 1 :], tools)


def _next_step(question: Plan, work: Sequence[BaseMessage], tools: set[str]) -> AIMessage:
    """Read the results of the steps taken so far, in order, then take the next step or answer."""
    taken = [m.tool_calls for m in work if isinstance(m, AIMessage) and m.tool_calls]
    outputs = {m.tool_call_id: m for m in work if isinstance(m, ToolMessage)}
    done = question.steps[: len(taken)]
    done_as_planned = [[c["name"] for c in step] for step in taken] == [
        [c.tool for c in step] for step in done
    ]
    pairs = [(call, outputs.get(made["id"])) for call, made in zip(chain(*done), chain(*taken), strict=False)]
    if not done_as_planned or any(output is None for _, output in pairs):
        return _final(f"I lost track of the steps for {question.expression}; please ask again.", [], tools)
    used = list(dict.fromkeys(call.tool for call, _ in pairs))
    if failed := next((output for _, output in pairs if output.status == "error"), None):
        error = failed.text.removeprefix("Error: ")
        return _final(f"I could not compute {question.expression}: {error}.", used, tools)
    results = {call: parse_number(output.text) for call, output in pairs}
    if len(taken) == len(question.steps):
        answer = display_number(value(question.result, results))
        return _final(f"{question.expression} = **{answer}**", used, tools)
    step = question.steps[len(taken)]
    if missing := sorted({call.tool for call in step} - tools):
        return _final(
            f"I would need the {', '.join(missing)} tool, which this app does not offer.", used, tools
        )
    return AIMessage(
        content="",
        tool_calls=[{"name": c.tool, "args": arguments(c, results), "id": _call_id()} for c in step],
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


MAX_MESSAGES_READ = 40
"""How far back "that" is looked for: every model call reads the history again, computing each
answer's question, so a long (or forged) history would cost the event loop in proportion."""


def previous_result(history: Sequence[BaseMessage]) -> Number | None:
    """What "that" refers to: the exact value of the last answer, read from the oldest of the
    newest `MAX_MESSAGES_READ` messages on.

    Replies that are not answers (this model's introduction or refusals) are
    skipped. An answer of this model shows its value rounded, so the value is
    computed again, exactly, from the question it answered.
    """
    result, question = None, None
    for message in history[-MAX_MESSAGES_READ:]:
        if isinstance(message, HumanMessage):
            question = message.text
        elif isinstance(message, AIMessage) and message.text and not message.text.startswith(NOT_ANSWERS):
            result = _answer_value(message.text, question, result)
            question = None
    return result


def _answer_value(answer: str, question: str | None, previous: Number | None) -> Number | None:
    if shown := _SHOWN_RESULT.search(answer):
        exact = _exact_value(question, previous)
        return exact if exact is not None and display_number(exact) == shown[1] else parse_number(shown[1])
    numbers = _NUMBER.findall(answer)  # another model's answer
    return parse_number(numbers[-1]) if numbers else previous


@functools.lru_cache(maxsize=1024, typed=True)
def planned(question: str, previous: Number | None) -> Plan:
    """The plan for `question` (`previous` is what "that" refers to); raises `NotArithmetic`.

    Cached: every step of a turn is a model call that reads the question again. A plan is
    never changed once made, so turns can share one.
    """
    return plan(read(question, previous))


@functools.lru_cache(maxsize=1024, typed=True)
def _exact_value(question: str | None, previous: Number | None) -> Number | None:
    """The exact value of `question`, if it is arithmetic that computes.

    Cached: every model call reads the whole history again, and it rarely changes.
    """
    if question is None:
        return None
    try:
        return evaluate(planned(question, previous))
    except (NotArithmetic, ValueError, ArithmeticError):
        return None
