"""The agent loop, and the entry points the UI and the tests use: `agent_turn` and `run_agent`.

One turn: stream the model's reply (its chunks reach the request's handler as
they arrive), merge the chunks, run every tool call of the step concurrently,
feed one `ToolMessage` per call back, and repeat until `final_answer` or the
step limit. The executor keeps no state between turns: history comes in as a
parameter.

`agent_turn` runs the turn as a task and hands out its handler (whose queue the
caller reads); `run_agent` wraps it as an async iterator of events. When the
consumer stops (Stop button, closed tab, an exception), leaving `agent_turn`
cancels the task and waits for it, so nothing keeps running for a user who has gone.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.runnables import Runnable
from pydantic import ValidationError

from agent.callbacks import QueueCallbackHandler, tool_call_id
from agent.errors import IncompleteReply, failure_for, retry_delay
from agent.events import AgentEvent, Failed, Finished, Retrying, StepEnded, ToolResult
from agent.models import Settings, build_model
from agent.tools import FINAL_ANSWER, TOOLS_BY_NAME

SYSTEM_PROMPT = (
    "You are a careful assistant that answers with the help of tools. Do every calculation "
    "with a tool, never in your head. Calls that do not depend on each other's results "
    "belong in the same step, as parallel tool calls. When you know the answer, call "
    "`final_answer` with a short answer for the user (Markdown is fine) and the names of "
    "the tools you used. If a tool returns an error, explain it to the user in your answer."
)
TOOL_TIMEOUT_S = 30.0
_NO_CHUNKS = "No generation chunks were returned"  # LangChain's ValueError for an empty stream
_CONTROL_CHARACTERS = re.compile(
    r"\x1b\[[0-9;?]*[ -/]*[@-~]|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"
)  # ANSI codes too


@dataclass(frozen=True, slots=True)
class PlannedCall:
    """One tool call of a merged reply; `problem` is set when its arguments are unusable."""

    call_id: str
    name: str
    args: dict[str, Any]
    raw_args: str
    problem: str | None = None


_running_turns: set[asyncio.Task[None]] = set()


def running_turns() -> int:
    """How many turns are running in this process right now (for health checks and tests)."""
    return len(_running_turns)


@asynccontextmanager
async def agent_turn(
    question: str,
    history: Sequence[BaseMessage],
    settings: Settings,
    chat_model: BaseChatModel | None = None,
) -> AsyncIterator[QueueCallbackHandler]:
    """Start one turn as a task and give its handler, whose `events()` or
    `batches()` the caller reads. Leaving the block, however it is left (end of
    turn, Stop, closed tab, error), cancels the task and waits for it.

    `chat_model` replaces the model the settings name (tests use scripted ones).
    """
    handler = QueueCallbackHandler()
    turn = asyncio.create_task(run_turn(question, history, settings, handler, chat_model), name="agent-turn")
    _running_turns.add(turn)
    turn.add_done_callback(_running_turns.discard)
    turn.add_done_callback(lambda _: handler.close())
    try:
        yield handler
    finally:
        turn.cancel()
        await asyncio.gather(turn, return_exceptions=True)


async def run_agent(
    question: str,
    history: Sequence[BaseMessage],
    settings: Settings,
    chat_model: BaseChatModel | None = None,
) -> AsyncIterator[AgentEvent]:
    """Run one turn and yield its events; the last one is `Finished` or `Failed`.

    Consume it with `contextlib.aclosing` (or to the end) so that stopping early
    cancels the turn at once.
    """
    async with agent_turn(question, history, settings, chat_model) as handler:
        async for event in handler.events():
            yield event


async def run_turn(
    question: str,
    history: Sequence[BaseMessage],
    settings: Settings,
    handler: QueueCallbackHandler,
    chat_model: BaseChatModel | None = None,
) -> None:
    """The agent loop; every outcome, errors included, ends with an event on `handler`."""
    question = _CONTROL_CHARACTERS.sub("", question).strip()
    if problem := input_problem(question, settings):
        handler.emit(Failed("input", problem))
        return
    try:
        model = build_model(settings, chat_model)
        handler.emit(await _run_steps(model, question, history, settings, handler))
    except Exception as error:
        handler.emit(failure_for(error, settings))


def input_problem(question: str, settings: Settings) -> str | None:
    if not question:
        return "Please type a question."
    if len(question) > settings.max_input_chars:
        return (
            f"Your message is {len(question):,} characters long; the limit is "
            f"{settings.max_input_chars:,} (AGENT_MAX_INPUT_CHARS). Please shorten it."
        )
    return None


async def _run_steps(
    model: Runnable[LanguageModelInput, BaseMessage],
    question: str,
    history: Sequence[BaseMessage],
    settings: Settings,
    handler: QueueCallbackHandler,
) -> Finished | Failed:
    messages: list[BaseMessage] = [
        SystemMessage(SYSTEM_PROMPT),
        *trim_history(history, settings),
        HumanMessage(question),
    ]
    tools_used: list[str] = []
    for step in range(1, settings.max_steps + 1):
        handler.start_step(step)
        reply = await stream_reply(model, messages, handler, step, settings)
        calls = planned_calls(reply, step)
        messages.append(history_message(reply, calls))
        if not calls:
            handler.emit(_step_ended(step, reply))
            return Finished(reply.text, tuple(tools_used))
        results = await asyncio.gather(*(run_tool_call(call, handler) for call in calls))
        messages.extend(results)
        handler.emit(_step_ended(step, reply))
        for result in results:
            if result.status == "success" and result.name not in (FINAL_ANSWER, *tools_used):
                tools_used.append(result.name)
        if final := next((r for r in results if r.name == FINAL_ANSWER and r.status == "success"), None):
            return Finished(final.text, tuple(tools_used))
    return Failed(
        "step_limit",
        f"The agent used all {settings.max_steps} steps (AGENT_MAX_STEPS) without reaching an answer.",
    )


async def stream_reply(
    model: Runnable[LanguageModelInput, BaseMessage],
    messages: list[BaseMessage],
    handler: QueueCallbackHandler,
    step: int,
    settings: Settings,
) -> AIMessageChunk:
    """Stream one model reply into the handler and merge its chunks.

    A request that fails before any chunk arrived (rate limit, server error,
    connection refused) is retried with backoff, within `settings.max_retries`.
    """
    config = {"configurable": {"callbacks": [handler]}}
    attempt = 1
    while True:
        chunks: list[AIMessageChunk] = []
        try:
            async for chunk in model.astream(messages, config=config):
                chunks.append(chunk)
            break
        except ValueError as error:
            if chunks or str(error) != _NO_CHUNKS:
                raise
            raise IncompleteReply("The model sent an empty reply.") from error
        except Exception as error:
            wait_s = None if chunks else retry_delay(error, attempt, settings.max_retries)
            if wait_s is None:
                raise
            attempt += 1
            handler.emit(Retrying(step, attempt, wait_s, failure_for(error, settings).message))
            await asyncio.sleep(wait_s)
    reply = chunks[0] + chunks[1:] if len(chunks) > 1 else chunks[0]
    if not reply.response_metadata.get("finish_reason"):
        raise IncompleteReply("The model's reply was cut off before it finished.")
    return reply


def planned_calls(reply: AIMessageChunk, step: int) -> list[PlannedCall]:
    """The reply's tool calls, with arguments parsed strictly (LangChain's partial
    parser would turn a truncated `{"a": 1, "b` into a valid-looking call)."""
    calls = []
    for position, piece in enumerate(reply.tool_call_chunks):
        index = piece.get("index")
        call_id = tool_call_id(piece.get("id"), step, position if index is None else index)
        name, raw_args = piece.get("name") or "", piece.get("args") or ""
        try:
            args = json.loads(raw_args or "{}")
        except json.JSONDecodeError as error:
            calls.append(
                PlannedCall(call_id, name, {}, raw_args, f"the arguments are not valid JSON ({error.msg})")
            )
            continue
        if not isinstance(args, dict):
            calls.append(PlannedCall(call_id, name, {}, raw_args, "the arguments must be a JSON object"))
            continue
        calls.append(PlannedCall(call_id, name, args, raw_args))
    return calls


def history_message(reply: AIMessageChunk, calls: list[PlannedCall]) -> AIMessage:
    """The reply as it goes back to the model: valid and invalid calls, each with an id."""
    return AIMessage(
        content=reply.content,
        tool_calls=[{"name": c.name, "args": c.args, "id": c.call_id} for c in calls if c.problem is None],
        invalid_tool_calls=[
            {"name": c.name, "args": c.raw_args, "id": c.call_id, "error": c.problem}
            for c in calls
            if c.problem is not None
        ],
        usage_metadata=reply.usage_metadata,
        response_metadata=reply.response_metadata,
    )


async def run_tool_call(call: PlannedCall, handler: QueueCallbackHandler) -> ToolMessage:
    """Run one call; any problem becomes an error result the model can read."""
    started = time.perf_counter()
    output, ok = await _tool_output(call)
    handler.emit(ToolResult(call.call_id, call.name, output, not ok, time.perf_counter() - started))
    return ToolMessage(output, tool_call_id=call.call_id, name=call.name, status="success" if ok else "error")


async def _tool_output(call: PlannedCall) -> tuple[str, bool]:
    tool = TOOLS_BY_NAME.get(call.name)
    if tool is None:
        return (
            f"Error: there is no tool named {call.name!r}; the tools are {', '.join(TOOLS_BY_NAME)}.",
            False,
        )
    if call.problem:
        return f"Error: {call.problem}.", False
    try:
        async with asyncio.timeout(TOOL_TIMEOUT_S):
            return str(await tool.ainvoke(call.args)), True
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'arguments'}: {e['msg']}" for e in error.errors()
        )
        return f"Error: invalid arguments for {call.name}: {problems}.", False
    except TimeoutError:
        return f"Error: {call.name} took longer than {TOOL_TIMEOUT_S:.0f} s and was stopped.", False
    except Exception as error:
        return f"Error: {error}", False


def trim_history(history: Sequence[BaseMessage], settings: Settings) -> list[BaseMessage]:
    """The newest messages that fit in `settings.max_history_chars`."""
    kept: list[BaseMessage] = []
    budget = settings.max_history_chars
    for message in reversed(history):
        budget -= len(message.text)
        if budget < 0:
            break
        kept.append(message)
    return kept[::-1]


def _step_ended(step: int, reply: AIMessageChunk) -> StepEnded:
    usage = reply.usage_metadata or {}
    return StepEnded(step, usage.get("input_tokens", 0), usage.get("output_tokens", 0))
