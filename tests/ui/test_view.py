"""The pure events → chat messages adapter."""

import itertools

import gradio as gr
import pytest

from agent.events import (
    AnswerDelta,
    Failed,
    Finished,
    ReasoningDelta,
    Retrying,
    StepEnded,
    StepStarted,
    TextDelta,
    ToolArgsDelta,
    ToolCallStarted,
    ToolResult,
)
from ui.view import TurnView, mark_stopped


def fake_clock(*times: float):
    ticks = iter(times)
    last = [0.0]

    def clock() -> float:
        last[0] = next(ticks, last[0])
        return last[0]

    return clock


def view_after(*events, clock=None) -> TurnView:
    view = TurnView("Offline model (no API key): arithmetic only", **({"clock": clock} if clock else {}))
    for event in events:
        view.apply(event)
    return view


def titles(messages: list[gr.ChatMessage]) -> list[str]:
    return [m.metadata.get("title", "") for m in messages]


def test_a_tool_call_goes_from_pending_with_streaming_arguments_to_done():
    view = view_after(StepStarted(1), ToolCallStarted("c1", "add", 1), ToolArgsDelta("c1", '{"a": 2, '))
    [pending] = view.render()
    assert pending.metadata == {"title": "🛠️ add", "id": "c1", "status": "pending"}
    assert pending.content == 'Arguments:\n```json\n{"a": 2, \n```'

    view.apply(ToolArgsDelta("c1", '"b": 3}'))
    view.apply(ToolResult("c1", "add", "5", False, 0.0123))
    [done] = view.render()
    assert done.metadata == {"title": "🛠️ add → 5", "id": "c1", "status": "done", "duration": 0.0123}
    assert done.content == 'Arguments:\n```json\n{"a": 2, "b": 3}\n```\n\n**Result:** 5'


def test_every_render_builds_new_message_objects():
    view = view_after(ToolCallStarted("c1", "add", 1))
    first = view.render()
    view.apply(ToolArgsDelta("c1", "{"))
    second = view.render()
    assert first[0] is not second[0]
    assert first[0].content != second[0].content


def test_parallel_calls_of_a_step_are_nested_under_a_step_message():
    view = view_after(
        StepStarted(1),
        ToolCallStarted("a", "add", 1),
        ToolCallStarted("b", "add", 1),
        ToolResult("a", "add", "5", False, 0.01),
    )
    step, first, second = view.render()
    assert step.metadata == {
        "title": "⚡ Step 1: 2 tool calls in parallel",
        "id": "step-1",
        "status": "pending",
    }
    assert first.metadata["parent_id"] == second.metadata["parent_id"] == "step-1"
    view.apply(ToolResult("b", "add", "9", False, 0.02))
    assert view.render()[0].metadata["status"] == "done"
    assert view.render()[0].metadata["duration"] == 0.02


def test_single_calls_are_not_nested():
    view = view_after(ToolCallStarted("a", "add", 1), ToolCallStarted("b", "multiply", 2))
    assert all("parent_id" not in m.metadata for m in view.render())


def test_the_answer_grows_as_a_plain_message_and_final_answer_is_not_a_tool_step():
    view = view_after(
        ToolCallStarted("a", "add", 1),
        ToolResult("a", "add", "4", False, 0.01),
        ToolCallStarted("f", "final_answer", 2),
        ToolArgsDelta("f", '{"answer": "It'),
        AnswerDelta("It"),
    )
    assert [m.content for m in view.render()][1:] == ["It"]
    view.apply(AnswerDelta(" is 4."))
    view.apply(ToolResult("f", "final_answer", "It is 4.", False, 0.0))
    _, answer = view.render()
    assert answer.content == "It is 4." and not answer.metadata


def test_text_before_tool_calls_stays_a_separate_message():
    view = view_after(
        AnswerDelta("Let me add."),
        ToolCallStarted("a", "add", 1),
        ToolCallStarted("f", "final_answer", 1),
        AnswerDelta("4"),
    )
    assert [m.content for m in view.render() if not m.metadata] == ["Let me add.", "4"]


def test_a_failed_final_answer_is_shown_as_a_tool_error():
    view = view_after(
        ToolCallStarted("f", "final_answer", 1), ToolResult("f", "final_answer", "Error: bad args", True, 0.0)
    )
    [error] = view.render()
    assert error.metadata["title"] == "🛠️ final_answer → error"
    assert "**Error:** bad args" in error.content


def test_a_finished_turn_ends_with_a_footer_of_its_cost():
    clock = fake_clock(100.0, 100.25, 101.5)
    view = view_after(
        StepStarted(1),
        ToolCallStarted("a", "add", 1),
        ToolResult("a", "add", "4", False, 0.01),
        StepEnded(1, 100, 20),
        StepStarted(2),
        ToolCallStarted("f", "final_answer", 2),
        AnswerDelta("4"),
        StepEnded(2, 130, 15),
        Finished("4", ("add",)),
        clock=clock,
    )
    footer = view.render()[-1]
    assert footer.metadata == {
        "title": "📊 2 steps · 1 tool call · 230 tokens in · 35 out · first token 0.25 s · total 1.50 s",
        "status": "done",
    }
    assert footer.content == "Answered by: Offline model (no API key): arithmetic only"


def test_an_answer_that_did_not_stream_is_still_shown():
    view = view_after(Finished("Only at the end.", ()))
    assert view.render()[0].content == "Only at the end."


@pytest.mark.parametrize(
    ("kind", "title"),
    [
        ("auth", "⚠️ API key rejected"),
        ("rate_limit", "⚠️ Rate limited"),
        ("step_limit", "⚠️ Step limit reached"),
        ("network", "⚠️ Connection problem"),
        ("input", "⚠️ Message not accepted"),
    ],
)
def test_a_failure_is_a_clear_message_and_pending_tools_are_closed(kind, title):
    view = view_after(ToolCallStarted("a", "add", 1), Failed(kind, "What happened, in words."))
    tool, error, footer = view.render()
    assert tool.metadata["status"] == "done" and "Not finished" in tool.content
    assert error.metadata["title"] == f"{title}: What happened, in words." and error.content == ""
    assert footer.metadata["title"].startswith("📊")


def test_a_retry_is_announced():
    view = view_after(Retrying(1, 2, 1.5, "Rate limited."))
    assert titles(view.render()) == ["🔁 Rate limited. Retrying in 1.5 s (attempt 2)."]


def test_long_results_are_shortened_in_the_title_only():
    result = "9" * 200
    view = view_after(ToolCallStarted("a", "multiply", 1), ToolResult("a", "multiply", result, False, 0.0))
    [message] = view.render()
    assert len(message.metadata["title"]) < 60 and message.metadata["title"].endswith("…")
    assert result in message.content


def test_any_order_of_events_renders_without_error():
    events = [
        StepStarted(1),
        ToolCallStarted("a", "add", 1),
        ToolArgsDelta("a", "{}"),
        AnswerDelta("x"),
        ToolResult("a", "add", "1", False, 0.0),
        ToolResult("z", "add", "2", True, 0.0),
        StepEnded(1, 1, 1),
    ]
    for order in itertools.permutations(events, 4):
        view_after(*order).render()


def stopped_turn(*assistant):
    return [{"role": "user", "content": [{"type": "text", "text": "q"}], "metadata": None}, *assistant]


def test_mark_stopped_closes_pending_steps_and_marks_the_partial_answer():
    history = stopped_turn(
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "args"}],
            "metadata": {"title": "🛠️ add", "status": "pending"},
        },
        {"role": "assistant", "content": [{"type": "text", "text": "The answ"}], "metadata": None},
    )
    assert mark_stopped(history) is True
    assert history[1]["metadata"]["status"] == "done"
    assert history[2]["content"] == [{"type": "text", "text": "The answ\n\n⏹️ Stopped"}]
    assert mark_stopped(history) is False, "marking twice changes nothing"


def test_mark_stopped_marks_a_pending_tool_step_when_it_is_the_last_message():
    history = stopped_turn(
        {"role": "assistant", "content": "x", "metadata": {"title": "🛠️ add", "status": "pending"}}
    )
    mark_stopped(history)
    assert history[1]["metadata"] == {"title": "🛠️ add · ⏹️ Stopped", "status": "done"}


def test_mark_stopped_leaves_finished_turns_and_empty_chats_alone():
    finished = stopped_turn(
        {"role": "assistant", "content": "4", "metadata": None},
        {"role": "assistant", "content": "", "metadata": {"title": "📊 1 step", "status": "done"}},
    )
    assert mark_stopped(finished) is False and finished[1]["content"] == "4"
    assert mark_stopped([]) is False
    assert mark_stopped(stopped_turn()) is False


def test_text_written_alongside_tool_calls_becomes_a_thought_not_a_second_answer():
    view = view_after(StepStarted(1), TextDelta(1, "Let me work "), TextDelta(1, "that out."))
    [streaming] = view.render()
    assert streaming.content == "Let me work that out." and not streaming.metadata  # could be the answer

    view.apply(ToolCallStarted("c1", "add", 1))
    view.apply(TextDelta(1, " Adding first."))
    thought, _call, more = view.render()
    assert (thought.content, thought.metadata["title"]) == ("Let me work that out.", "💭 Thinking")
    assert more.content == " Adding first." and more.metadata["title"] == "💭 Thinking"
    for event in (
        ToolResult("c1", "add", "5", False, 0.01),
        StepStarted(2),
        ToolCallStarted("f", "final_answer", 2),
        AnswerDelta("It is 5."),
        Finished("It is 5.", ("add",)),
    ):
        view.apply(event)
    answers = [m.content for m in view.render() if not m.metadata]
    assert answers == ["It is 5."]


def test_reasoning_is_a_thought_and_text_of_a_step_without_calls_is_the_answer():
    view = view_after(
        StepStarted(1), ReasoningDelta(1, "2 + 2 is easy."), TextDelta(1, "Four."), Finished("Four.", ())
    )
    thought, answer, _footer = view.render()
    assert thought.metadata == {"title": "💭 Thinking", "status": "done"}
    assert thought.content == "2 + 2 is easy." and answer.content == "Four." and not answer.metadata
