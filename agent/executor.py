"""The agent loop and its one entry, `agent_turn` (`run_agent` is the same turn as an iterator).

One turn: stream the model's reply (each chunk the stream yields goes to the step's
`ReplyAssembler`, whose events go out as they arrive; the assembled reply is what
the stream's reading returns), run every tool call of the assembled reply concurrently, feed one `ToolMessage` per call back, and repeat
until `final_answer`, a reply without tool calls, or the step limit. A call whose
tool needs a person's approval waits for it (`agent.approval`) before it runs; a
denied call is fed back as declined. The executor keeps no state between turns:
history comes in as a parameter.

Each turn is observed (`agent.tracing`): one root run with its steps, model
calls and tool calls nested, for whatever tracer the caller or the environment
configures, and one log line.

`agent_turn` runs the turn as a task and hands out its `EventChannel`;
`run_agent` wraps it as an async iterator of events. When the consumer stops
(Stop button, closed tab, an exception), leaving `agent_turn` cancels the task
and waits for it, so nothing keeps running for a user who has gone.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from langchain_core.callbacks import Callbacks
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.runnables import RunnableConfig
from pydantic import ValidationError

from agent.approval import Approvals, CallToApprove, declined_output, needs_approval
from agent.bounds import newest_within
from agent.channel import EventChannel
from agent.errors import (
    IncompleteReply,
    crashed,
    failure_for,
    out_of_steps,
    refused_input,
    request_fallback,
    retry_delay,
)
from agent.events import (
    AgentEvent,
    ApprovalDecided,
    Failed,
    Finished,
    Retrying,
    StepEnded,
    StepStarted,
    ToolResult,
)
from agent.figures import RecordingChannel
from agent.models import TurnModel
from agent.reply import REASONING, TOOL_CALL_EXTRAS, Reply, ReplyAssembler
from agent.settings import Settings
from agent.toolbox import ARITHMETIC, Toolbox
from agent.tools import FINAL_ANSWER
from agent.tracing import ObservedTurn, StepTrace

log = logging.getLogger(__name__)

SYSTEM_PROMPT = (
    "You are a careful assistant that answers with the help of tools. Do every calculation "
    "with a tool, never in your head. Calls that do not depend on each other's results "
    "belong in the same step, as parallel tool calls. When you know the answer, call "
    "`final_answer` with a short answer for the user (Markdown is fine) and the names of "
    "the tools you used. If a tool returns an error, explain it to the user in your answer."
)
TURN_TASK_NAME = "agent-turn"
"""The name of each turn's task (what a test or a debugger looks for among a loop's tasks)."""
TOOL_TIMEOUT_S = 30.0
FINISHED_GRACE_S = 0.1
"""After the finish reason and usage, how long a reply's stream may take to close."""
USAGE_GRACE_S = 1.0
"""After the finish reason without usage, how long to wait for the usage chunk."""
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


@dataclass(frozen=True, slots=True)
class TurnRequest:
    """What one turn is asked: the question, the conversation so far, and how to answer.

    `chat_model` replaces the model the settings name (tests use scripted ones).
    `toolbox` is what the model may call (built once at start-up; by default the
    arithmetic tools). `callbacks` (e.g. a tracer) see the turn as one run with its steps, model and
    tool calls nested; `conversation_id` groups one conversation's turns in a
    tracer (see `agent.tracing`). `approvals` receives the decisions on calls that
    need a person's approval (by default nobody decides: they time out, denied).
    `via` says how the question came (e.g. "page", "api", "mcp ask_agent"), for the log line.
    """

    question: str
    history: Sequence[BaseMessage]
    settings: Settings
    chat_model: BaseChatModel | None = None
    callbacks: Callbacks = None
    conversation_id: str | None = None
    approvals: Approvals | None = None
    toolbox: Toolbox = ARITHMETIC
    via: str | None = None


@asynccontextmanager
async def agent_turn(
    question: str,
    history: Sequence[BaseMessage],
    settings: Settings,
    chat_model: BaseChatModel | None = None,
    *,
    callbacks: Callbacks = None,
    conversation_id: str | None = None,
    approvals: Approvals | None = None,
    toolbox: Toolbox = ARITHMETIC,
    via: str | None = None,
) -> AsyncIterator[RecordingChannel]:
    """Start one turn as a task and give its event channel, whose `events()` or
    `next_batch()` the caller reads. Leaving the block, however it is left (end of
    turn, Stop, closed tab, error), denies a call still waiting for approval (as
    closed, unless the caller ended `approvals` first), cancels the task and waits for it.

    The arguments are those of `TurnRequest`.
    """
    question = _CONTROL_CHARACTERS.sub("", question).strip()
    approvals = approvals or Approvals(settings.approval_timeout_s)
    request = TurnRequest(
        question, history, settings, chat_model, callbacks, conversation_id, approvals, toolbox, via
    )
    channel = RecordingChannel()
    turn = asyncio.create_task(_run_turn(request, channel), name=TURN_TASK_NAME)
    turn.add_done_callback(lambda task: _end_channel(task, channel))
    try:
        yield channel
    finally:
        approvals.end("closed")
        turn.cancel()
        await asyncio.gather(turn, return_exceptions=True)


async def run_agent(
    question: str,
    history: Sequence[BaseMessage],
    settings: Settings,
    chat_model: BaseChatModel | None = None,
    *,
    callbacks: Callbacks = None,
    conversation_id: str | None = None,
    approvals: Approvals | None = None,
    toolbox: Toolbox = ARITHMETIC,
    via: str | None = None,
) -> AsyncIterator[AgentEvent]:
    """`agent_turn` as an async iterator of events; the last one is `Finished` or `Failed`.

    Consume it with `contextlib.aclosing` (or to the end) so that stopping early
    cancels the turn at once.
    """
    async with agent_turn(
        question,
        history,
        settings,
        chat_model,
        callbacks=callbacks,
        conversation_id=conversation_id,
        approvals=approvals,
        toolbox=toolbox,
        via=via,
    ) as channel:
        async for event in channel.events():
            yield event


def _end_channel(turn: asyncio.Task[None], channel: RecordingChannel) -> None:
    """Close the turn's channel; a turn that crashed (a bug, not a model failure) says so first."""
    if not turn.cancelled() and (error := turn.exception()) is not None:
        log.error("An agent turn crashed", exc_info=(type(error), error, error.__traceback__))
        channel.emit(crashed(error).failed(channel.figures.end()))
    channel.close()


async def _run_turn(request: TurnRequest, channel: RecordingChannel) -> None:
    """The agent loop, traced and logged; every outcome, errors included, ends with an
    event on `channel` (after the turn's trace and log line, so they are complete when
    the consumer sees the end)."""
    observed = await ObservedTurn.start(
        request.question,
        request.settings,
        channel.figures,
        chat_model=request.chat_model,
        callbacks=request.callbacks,
        conversation_id=request.conversation_id,
        via=request.via,
    )
    try:
        if problem := input_problem(request.question, request.settings):
            outcome: Finished | Failed = refused_input(problem).failed()
        else:
            outcome = await _run_steps(request, channel, observed)
    except asyncio.CancelledError:
        channel.figures.end()
        await observed.cancelled(channel.stop_reason)
        raise
    except Exception as error:
        failure = failure_for(error, request.settings)
        if failure.kind == "internal":
            log.error("Unexpected error in an agent turn", exc_info=(type(error), error, error.__traceback__))
        outcome = failure.failed()
    outcome = dataclasses.replace(outcome, figures=channel.figures.end())
    await observed.finish(outcome)
    channel.emit(outcome)


def input_problem(question: str, settings: Settings) -> str | None:
    if not question:
        return "Please type a question."
    if len(question) > settings.max_input_chars:
        return (
            f"Your message is {len(question):,} characters long; the limit is "
            f"{settings.max_input_chars:,} (AGENT_MAX_INPUT_CHARS). Please shorten it."
        )
    return None


async def _run_steps(request: TurnRequest, channel: EventChannel, turn: ObservedTurn) -> Finished | Failed:
    model = TurnModel(request.settings, request.chat_model, request.toolbox.schemas)
    settings = model.settings
    approvals = request.approvals or Approvals(settings.approval_timeout_s)
    messages: list[BaseMessage] = [
        SystemMessage(SYSTEM_PROMPT),
        *trim_history(request.history, settings),
        HumanMessage(request.question),
    ]
    tools_used: list[str] = []
    call_ids: set[str] = set()  # every call id of the turn: a step never reuses one
    for step in range(1, settings.max_steps + 1):
        async with turn.step(step) as traced:
            channel.emit(StepStarted(step))
            replies = (ReplyAssembler(step, call_ids) for _attempt in itertools.count())
            reply = await stream_reply(model, messages, channel, replies, traced.model_config())
            calls = planned_calls(reply)
            messages.append(history_message(reply, calls))
            if not calls:
                channel.emit(_step_ended(step, reply))
                return Finished(reply.text, tuple(tools_used))
            results = await _run_tool_calls(calls, request.toolbox, channel, traced, approvals)
        messages.extend(results)
        channel.emit(_step_ended(step, reply))
        for result in results:
            if result.status == "success" and result.name not in (FINAL_ANSWER, *tools_used):
                tools_used.append(result.name)
        if final := next((r for r in results if r.name == FINAL_ANSWER and r.status == "success"), None):
            return Finished(final.text, tuple(tools_used))
    return out_of_steps(settings.max_steps).failed()


async def stream_reply(
    model: TurnModel,
    messages: list[BaseMessage],
    channel: EventChannel,
    assemblers: Iterator[ReplyAssembler],
    config: RunnableConfig | None = None,
) -> Reply:
    """Stream one model reply, its events going out on `channel` as its chunks arrive; return it.

    Each request (a retry is a new one) assembles its reply in the next of `assemblers`.
    `config` is the step's (the tracer's parent run, if any).

    A request that fails before any chunk arrived is retried: at once without a
    parameter the server refused (remembered for next time), or after a backoff
    for a rate limit, a server error or a dropped connection, within
    `max_retries`.
    """
    attempt = 1
    while True:
        assembler = next(assemblers)
        try:
            reply = await _read_reply(model.runnable.astream(messages, config=config), assembler, channel)
            break
        except ValueError as error:
            if assembler.reply.chunks or str(error) != _NO_CHUNKS:
                raise
            raise IncompleteReply("The model sent an empty reply.") from error
        except Exception as error:
            if assembler.reply.chunks:
                raise
            if change := request_fallback(error, model.settings):
                model.fall_back(change)
                continue
            failure = failure_for(error, model.settings)
            wait_s = retry_delay(error, failure, attempt, model.settings.max_retries)
            if wait_s is None:
                raise
            attempt += 1
            channel.emit(Retrying(assembler.step, attempt, wait_s, failure.reason))
            await asyncio.sleep(wait_s)
    if not reply.finish_reason:
        raise IncompleteReply("The model's reply was cut off before it finished.")
    if not reply.calls and not reply.text:
        raise IncompleteReply("The model sent an empty reply.")
    return reply


async def _read_reply(
    stream: AsyncIterator[BaseMessage], assembler: ReplyAssembler, channel: EventChannel
) -> Reply:
    """The reply the stream's chunks assemble, read until the stream ends, or until a short
    grace after the reply is complete; each chunk's events go out on `channel` at once.

    Some servers keep the connection open after the finish chunk, sending only
    keep-alive comments; waiting for them to close would time out an answer that
    has already arrived. After the finish reason, the stream gets a moment to
    close (longer while the usage chunk may still come); then it is closed.
    """
    loop = asyncio.get_running_loop()
    try:
        async with aclosing(stream), asyncio.timeout(None) as deadline:
            async for chunk in stream:
                if isinstance(chunk, AIMessageChunk):
                    for event in assembler.add(chunk):
                        channel.emit(event)
                if assembler.reply.finish_reason and not deadline.expired():
                    # Once expiring, the deadline can no longer move: the stream is about to close.
                    grace_s = FINISHED_GRACE_S if assembler.reply.usage_reported else USAGE_GRACE_S
                    deadline.reschedule(loop.time() + grace_s)
    except TimeoutError:
        if not deadline.expired():
            raise
    return assembler.reply


def planned_calls(reply: Reply) -> list[PlannedCall]:
    """The reply's tool calls, with arguments parsed strictly (LangChain's partial
    parser would turn a truncated `{"a": 1, "b` into a valid-looking call)."""
    calls = []
    for call in reply.calls:
        try:
            args = json.loads(call.arguments or "{}")
        except json.JSONDecodeError as error:
            problem = f"the arguments are not valid JSON ({error.msg})"
            calls.append(PlannedCall(call.call_id, call.name, {}, call.arguments, problem))
            continue
        if not isinstance(args, dict):
            problem = "the arguments must be a JSON object"
            calls.append(PlannedCall(call.call_id, call.name, {}, call.arguments, problem))
            continue
        calls.append(PlannedCall(call.call_id, call.name, args, call.arguments))
    return calls


def history_message(reply: Reply, calls: list[PlannedCall]) -> AIMessage:
    """The reply as it goes back to the model: valid and invalid calls, each with an id,
    and the provider fields some servers require back (reasoning, thought signatures)."""
    provider_fields: dict[str, Any] = {}
    if reply.reasoning:
        provider_fields[REASONING] = reply.reasoning
    if extras := {call.call_id: call.extras for call in reply.calls if call.extras}:
        provider_fields[TOOL_CALL_EXTRAS] = extras
    return AIMessage(
        content=reply.text,
        tool_calls=[{"name": c.name, "args": c.args, "id": c.call_id} for c in calls if c.problem is None],
        invalid_tool_calls=[
            {"name": c.name, "args": c.raw_args, "id": c.call_id, "error": c.problem}
            for c in calls
            if c.problem is not None
        ],
        additional_kwargs=provider_fields,
        usage_metadata={
            "input_tokens": reply.input_tokens,
            "output_tokens": reply.output_tokens,
            "total_tokens": reply.input_tokens + reply.output_tokens,
        },
        response_metadata={**reply.response_metadata, "finish_reason": reply.finish_reason},
    )


async def _run_tool_calls(
    calls: list[PlannedCall],
    toolbox: Toolbox,
    channel: EventChannel,
    step: StepTrace,
    approvals: Approvals,
) -> list[ToolMessage]:
    """Run a step's calls concurrently (siblings under the step's run in a trace)."""
    results = await asyncio.gather(
        *(_run_tool_call(call, toolbox, channel, step, approvals) for call in calls)
    )
    step.note_results(results)
    return results


async def _run_tool_call(
    call: PlannedCall, toolbox: Toolbox, channel: EventChannel, step: StepTrace, approvals: Approvals
) -> ToolMessage:
    """Run one call from `toolbox`; any problem becomes an error result the model can read.

    A call whose tool needs approval first waits for the person's decision; a denied
    call does not run, and the model reads that it was declined.
    """
    tool = toolbox.get(call.name)
    if tool is not None and call.problem is None and needs_approval(tool):
        decision = await _approval(call, channel, approvals, step)
        if not decision.approved:
            output = declined_output(decision)
            channel.emit(ToolResult(call.call_id, call.name, output, True, 0.0))
            return ToolMessage(output, tool_call_id=call.call_id, name=call.name, status="error")
    started = time.perf_counter()
    output, ok = await _tool_output(call, step.tool_config(), toolbox)
    channel.emit(ToolResult(call.call_id, call.name, output, not ok, time.perf_counter() - started))
    return ToolMessage(output, tool_call_id=call.call_id, name=call.name, status="success" if ok else "error")


async def _approval(
    call: PlannedCall, channel: EventChannel, approvals: Approvals, step: StepTrace
) -> ApprovalDecided:
    """The person's decision on `call`; in a trace the wait is a run of its own, beside the tool's."""
    async with step.waiting_for_approval(call.name, call.raw_args) as record:
        decision = await approvals.ask(
            CallToApprove(call.call_id, call.name, call.raw_args, step.step), channel
        )
        record(decision)
    return decision


async def _tool_output(
    call: PlannedCall, config: RunnableConfig | None, toolbox: Toolbox
) -> tuple[str, bool]:
    tool = toolbox.get(call.name)
    if tool is None:
        return (
            f"Error: there is no tool named {call.name!r}; the tools are {', '.join(toolbox.names)}.",
            False,
        )
    if call.problem:
        return f"Error: {call.problem}.", False
    timeout_s = (tool.metadata or {}).get("timeout_s", TOOL_TIMEOUT_S)
    try:
        async with asyncio.timeout(timeout_s):
            return str(await tool.ainvoke(call.args, config)), True
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'arguments'}: {e['msg']}" for e in error.errors()
        )
        return f"Error: invalid arguments for {call.name}: {problems}.", False
    except TimeoutError:
        return f"Error: {call.name} took longer than {timeout_s:g} s and was stopped.", False
    except Exception as error:
        return f"Error: {error}", False


def trim_history(history: Sequence[BaseMessage], settings: Settings) -> list[BaseMessage]:
    """The newest messages that fit in `settings.max_history_chars`."""
    return newest_within(
        reversed(history), lambda message: len(message.text), max_chars=settings.max_history_chars
    )


def _step_ended(step: int, reply: Reply) -> StepEnded:
    return StepEnded(step, reply.input_tokens, reply.output_tokens)
