"""The agent loop with scripted models: steps, tool results, errors and cancellation."""

import asyncio
import contextlib
import time

import pytest
from langchain_core.messages import AIMessageChunk, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool

from agent import Settings, run_agent
from agent.channel import EventChannel
from agent.events import (
    AnswerDelta,
    Failed,
    Finished,
    StepEnded,
    StepStarted,
    TextDelta,
    ToolCallStarted,
    ToolResult,
)
from agent.executor import trim_history
from agent.reply import ReplyAssembler
from agent.toolbox import Toolbox
from agent.tools import TOOLS
from support.fakes import Chunks, Hang, Raise, ScriptedChatModel, answer, call, calls
from support.turns import collect, run_turn_events

SETTINGS = Settings(offline_token_delay_ms=0, max_steps=4)


def results(events) -> list[ToolResult]:
    return [e for e in events if isinstance(e, ToolResult)]


@pytest.fixture
def slow_tool() -> Toolbox:
    @tool
    async def slow(seconds: float) -> str:
        """Wait, then say so."""
        await asyncio.sleep(seconds)
        return f"waited {seconds}"

    return Toolbox((*TOOLS, slow))


@pytest.fixture
def failing_tool() -> Toolbox:
    @tool
    async def explode() -> str:
        """Always fails."""
        raise RuntimeError("the tool broke")

    return Toolbox((*TOOLS, explode))


async def test_a_multi_step_turn_feeds_tool_results_back_and_finishes():
    model = ScriptedChatModel(
        script=[
            calls(call("add", "c1", a=2, b=3), call("add", "c2", a=4, b=5)),
            calls(call("multiply", "c3", a=5, b=9)),
            answer("It is 45.", "add", "multiply"),
        ]
    )
    events = await run_turn_events("what is (2+3)*(4+5)?", SETTINGS, chat_model=model)
    assert events[-1] == Finished("It is 45.", ("add", "multiply"))
    assert [(r.call_id, r.output) for r in results(events)] == [
        ("c1", "5"),
        ("c2", "9"),
        ("c3", "45"),
        (results(events)[-1].call_id, "It is 45."),
    ]
    assert [e.step for e in events if isinstance(e, StepEnded)] == [1, 2, 3]
    second_request = model.seen[1]
    assert isinstance(second_request[0], SystemMessage)
    assert [(m.tool_call_id, m.text) for m in second_request if isinstance(m, ToolMessage)] == [
        ("c1", "5"),
        ("c2", "9"),
    ]


async def test_history_comes_before_the_question():
    model = ScriptedChatModel(script=[answer("ok")])
    history = [HumanMessage("earlier"), HumanMessage("and more")]
    await run_turn_events("now", SETTINGS, history, chat_model=model)
    assert [m.text for m in model.seen[0][1:]] == ["earlier", "and more", "now"]


async def test_tool_calls_of_one_step_run_concurrently(slow_tool):
    model = ScriptedChatModel(
        script=[
            calls(*(call("slow", f"s{i}", seconds=1.0) for i in range(4))),
            answer("done"),
        ]
    )
    started = time.perf_counter()
    events = await run_turn_events("wait", SETTINGS, chat_model=model, toolbox=slow_tool)
    assert time.perf_counter() - started < 3, "one after another they would take 4 s"
    assert [r.output for r in results(events)][:4] == ["waited 1.0"] * 4
    assert all(r.duration_s >= 0.29 for r in results(events)[:4])


async def test_malformed_arguments_become_an_error_the_model_can_read():
    broken = Chunks(
        [
            AIMessageChunk(
                content="", tool_call_chunks=[{"name": "add", "args": '{"a": 1, "b', "id": "bad", "index": 0}]
            ),
            AIMessageChunk(content="", response_metadata={"finish_reason": "tool_calls"}),
        ]
    )
    model = ScriptedChatModel(script=[broken, answer("sorry")])
    events = await run_turn_events("q", SETTINGS, chat_model=model)
    [error] = [r for r in results(events) if r.is_error]
    assert error.call_id == "bad" and "not valid JSON" in error.output
    fed_back = [m for m in model.seen[1] if isinstance(m, ToolMessage)]
    assert fed_back[0].status == "error" and "not valid JSON" in fed_back[0].text
    assert model.seen[1][-2].invalid_tool_calls[0]["id"] == "bad"
    assert events[-1] == Finished("sorry", ())


@pytest.mark.parametrize(
    ("bad_call", "message"),
    [
        (call("divide", "x", a=1, b=2), "there is no tool named 'divide'"),
        (call("add", "x", a="two", b=2), "invalid arguments for add: a"),
        (call("add", "x", a=1), "invalid arguments for add: b: Field required"),
        (call("exponentiate", "x", base=10, exponent=10**10), "digits; the limit is 1,000"),
        (call("explode", "x"), "Error: the tool broke"),
    ],
)
async def test_tool_problems_are_reported_not_raised(bad_call, message, failing_tool):
    model = ScriptedChatModel(script=[calls(bad_call), answer("I could not do it.")])
    events = await run_turn_events("q", SETTINGS, chat_model=model, toolbox=failing_tool)
    [error] = [r for r in results(events) if r.is_error]
    assert message in error.output
    assert events[-1] == Finished("I could not do it.", ())


async def test_the_step_limit_ends_the_turn_with_a_clear_event():
    model = ScriptedChatModel(script=[calls(call("add", "", a=1, b=1))])
    events = await run_turn_events("loop", Settings(max_steps=3), chat_model=model)
    assert events[-1] == Failed(
        "step_limit", "The agent used all 3 steps (AGENT_MAX_STEPS) without reaching an answer."
    )
    assert [e.step for e in events if isinstance(e, StepStarted)] == [1, 2, 3]


async def test_a_plain_content_reply_streams_as_the_answer():
    from langchain_core.messages import AIMessage

    model = ScriptedChatModel(script=[AIMessage("Four, without tools.")])
    events = await run_turn_events("2+2", SETTINGS, chat_model=model)
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Four, without tools."
    assert events[-1] == Finished("Four, without tools.", ())


async def test_final_answer_streams_before_the_turn_finishes():
    model = ScriptedChatModel(script=[answer("The answer is **42**.\nDone.")], token_delay_ms=1)
    events = await run_turn_events("q", SETTINGS, chat_model=model)
    deltas = [e for e in events if isinstance(e, AnswerDelta)]
    assert len(deltas) > 5
    assert "".join(d.text for d in deltas) == "The answer is **42**.\nDone."
    assert events.index(deltas[-1]) < events.index(events[-1])


@pytest.mark.parametrize(
    ("script", "kind"),
    [
        ([Raise(RuntimeError("boom"))], "internal"),
        ([Raise(RuntimeError("boom"), reply=calls(call("add", "c", a=1, b=2)), after_chunks=3)], "internal"),
        (
            [
                Chunks(
                    [
                        AIMessageChunk(
                            content="",
                            tool_call_chunks=[{"name": "add", "args": '{"a"', "id": "c", "index": 0}],
                        )
                    ]
                )
            ],
            "upstream",
        ),
        ([Chunks([])], "upstream"),
    ],
    ids=["raises", "raises-mid-stream", "cut-off", "empty"],
)
async def test_every_model_failure_ends_the_turn_with_a_failed_event(script, kind):
    events = await run_turn_events("q", SETTINGS, chat_model=ScriptedChatModel(script=script))
    assert isinstance(events[-1], Failed) and events[-1].kind == kind
    assert "Traceback" not in events[-1].message


@pytest.mark.parametrize(
    ("question", "message"),
    [
        ("", "Please type a question."),
        (" \n\t ", "Please type a question."),
        ("\x00\x07", "Please type a question."),
        ("9" * 5000, "5,000 characters long; the limit is 4,000"),
    ],
)
async def test_bad_input_is_refused_before_any_model_call(question, message):
    model = ScriptedChatModel(script=[answer("never")])
    events = await run_turn_events(question, SETTINGS, chat_model=model)
    assert events == [Failed("input", events[-1].message)]
    assert message in events[-1].message
    assert model.seen == []


async def test_control_characters_are_removed_and_emoji_kept():
    model = ScriptedChatModel(script=[answer("ok")])
    await run_turn_events("2\x00 + 2 🎉\x1b[31m", SETTINGS, chat_model=model)
    assert model.seen[0][-1].text == "2 + 2 🎉"


async def test_cancelling_the_consumer_cancels_the_turn_and_leaves_no_task():
    model = ScriptedChatModel(script=[Hang()])
    baseline = asyncio.all_tasks()
    received = []

    async def consume():
        async for event in run_agent("q", [], SETTINGS, model):
            received.append(event)

    consumer = asyncio.create_task(consume())
    await asyncio.sleep(0.1)
    assert any(t.get_name() == "agent-turn" for t in asyncio.all_tasks())
    consumer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await consumer
    assert asyncio.all_tasks() - baseline == set()
    assert received == [StepStarted(1)]


async def test_stopping_during_a_tool_cancels_the_tool_at_once(slow_tool):
    model = ScriptedChatModel(script=[calls(call("slow", "s", seconds=30)), answer("never")])
    baseline = asyncio.all_tasks()
    events = run_agent("q", [], SETTINGS, model, toolbox=slow_tool)
    async for event in events:
        if isinstance(event, ToolCallStarted):
            break
    await asyncio.sleep(0.05)
    started = time.perf_counter()
    await events.aclose()
    assert time.perf_counter() - started < 0.5
    assert asyncio.all_tasks() - baseline == set()


async def test_an_unexpected_crash_of_the_turn_ends_with_a_failure_the_user_sees(monkeypatch, caplog):
    async def crash(*args, **kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr("agent.executor.ObservedTurn.start", crash)
    events = await collect(run_agent("q", [], SETTINGS), timeout=2)
    assert events == [
        Failed("internal", "Something went wrong inside the agent (RuntimeError). Please try again.")
    ]
    assert "An agent turn crashed" in caplog.text


def test_history_is_trimmed_to_the_newest_messages_that_fit():
    history = [HumanMessage("a" * 10), HumanMessage("b" * 10), HumanMessage("c" * 10)]
    kept = trim_history(history, Settings(max_history_chars=25))
    assert [m.text for m in kept] == ["b" * 10, "c" * 10]


async def test_a_stream_that_swallows_the_grace_deadline_still_ends_the_reply():
    """Under load a library inside the stream can swallow the grace deadline's cancellation
    and yield once more; the deadline is then expiring and cannot be moved."""
    from agent.executor import FINISHED_GRACE_S, _read_reply

    async def stream():
        yield AIMessageChunk(
            content="4",
            response_metadata={"finish_reason": "stop"},
            usage_metadata={"input_tokens": 3, "output_tokens": 1, "total_tokens": 4},
        )
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(FINISHED_GRACE_S * 20)
        yield AIMessageChunk(content="")  # a keep-alive after the deadline fired

    reply = await asyncio.wait_for(_read_reply(stream(), ReplyAssembler(1, set()), EventChannel()), timeout=5)
    assert (reply.text, reply.finish_reason) == ("4", "stop")
