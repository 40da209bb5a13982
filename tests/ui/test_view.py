"""The pure events → chat messages adapter."""

import itertools

import gradio as gr
import pytest

from agent.events import (
    AnswerDelta,
    ApprovalDecided,
    ApprovalRequested,
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
from ui.view import (
    APPROVAL_ID,
    FAILURE_ID,
    FOOTER_ID,
    RETRY_ID,
    STOPPED_ID,
    TurnView,
    seconds,
)


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
        ToolCallStarted("f", "final_answer", 2, gives_answer=True),
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
        ToolCallStarted("f", "final_answer", 1, gives_answer=True),
        AnswerDelta("4"),
    )
    assert [m.content for m in view.render() if not m.metadata] == ["Let me add.", "4"]


def test_a_failed_final_answer_is_shown_as_a_tool_error():
    view = view_after(
        ToolCallStarted("f", "final_answer", 1, gives_answer=True),
        ToolResult("f", "final_answer", "Error: bad args", True, 0.0),
    )
    [error] = view.render()
    assert error.metadata["title"] == "🛠️ final_answer → error"
    assert "**Error:** bad args" in error.content


def timed_view(*timed_events) -> TurnView:
    """A view fed `(seconds, event)` pairs, its clock reading each event's time."""
    now = [0.0]
    view = TurnView("Offline model (no API key): arithmetic only", clock=lambda: now[0])
    for at, event in timed_events:
        now[0] = at
        view.apply(event)
    return view


def test_a_finished_turn_ends_with_a_plain_footer_that_opens_to_a_timeline():
    view = timed_view(
        (0.0, StepStarted(1)),
        (0.25, ToolCallStarted("a", "add", 1)),
        (0.5, ToolArgsDelta("a", "{}")),
        (0.75, ToolResult("a", "add", "4", False, 0.25)),
        (0.75, StepEnded(1, 100, 20)),
        (0.75, StepStarted(2)),
        (1.0, ToolCallStarted("f", "final_answer", 2, gives_answer=True)),
        (1.25, AnswerDelta("4")),
        (1.5, StepEnded(2, 130, 15)),
        (1.5, Finished("4", ("add",))),
    )
    footer = view.render()[-1]
    assert footer.metadata == {"id": FOOTER_ID}, "not a titled message: no stray loading bubble after it"
    assert footer.content.startswith(
        "<details><summary>📊 2 steps · 1 tool call · 230 tokens in · 35 out · first token 250 ms · "
        "total 1.50 s</summary>"
    )
    assert "Answered by: Offline model (no API key): arithmetic only" in footer.content
    assert view.timeline().splitlines()[1:] == [
        "1 model  " + "█" * 12 + " " * 24 + "  500 ms",
        "  add    " + " " * 12 + "██████" + " " * 18 + "  250 ms",
        "2 model  " + " " * 18 + "█" * 12 + " " * 6 + "  500 ms",
    ]


def test_parallel_tool_calls_overlap_on_the_timeline():
    view = timed_view(
        (0.0, StepStarted(1)),
        (0.1, ToolCallStarted("a", "add", 1)),
        (0.2, ToolCallStarted("b", "add", 1)),
        (0.4, ToolResult("a", "add", "5", False, 0.1)),
        (0.4, ToolResult("b", "add", "9", False, 0.1)),
        (0.4, Finished("14", ("add",))),
    )
    first, second = view.timeline().splitlines()[2:]
    assert first.strip() == second.strip() and first.startswith("  add"), "same start, same length"


def test_seconds_read_as_milliseconds_under_one_second():
    assert [seconds(s) for s in (0.0004, 0.0123, 0.25, 1.5)] == ["0.4 ms", "12 ms", "250 ms", "1.50 s"]


def test_an_answer_that_did_not_stream_is_still_shown_with_its_footer():
    view = view_after(StepStarted(1), Finished("Only at the end.", ()))
    answer, footer = view.render()
    assert answer.content == "Only at the end."
    assert "📊 1 step · 0 tool calls" in footer.content, "a server that reports no usage still gets one"


@pytest.mark.parametrize(
    ("kind", "title"),
    [
        ("auth", "⚠️ API key rejected"),
        ("rate_limit", "⚠️ Rate limited"),
        ("step_limit", "⚠️ Step limit reached"),
        ("network", "⚠️ Connection problem"),
    ],
)
def test_a_failure_is_a_one_line_note_and_pending_tools_are_closed(kind, title):
    view = view_after(ToolCallStarted("a", "add", 1), Failed(kind, "What happened, in words."))
    tool, error, footer = view.render()
    assert tool.metadata["status"] == "done" and "Not finished" in tool.content
    assert error.content == f"{title}: What happened, in words."
    assert error.metadata == {"id": FAILURE_ID}, "no title: nothing to expand"
    assert footer.metadata == {"id": FOOTER_ID}


def test_refused_input_gets_its_note_and_no_footer():
    view = view_after(Failed("input", "Your message is too long."))
    [note] = view.render()
    assert note.content == "⚠️ Message not accepted: Your message is too long."


def test_a_turn_that_failed_before_doing_anything_has_no_empty_footer():
    [note] = view_after(StepStarted(1), Failed("network", "Could not reach the model server.")).render()
    assert note.metadata == {"id": FAILURE_ID}


def test_retries_are_one_line_updated_in_place():
    view = view_after(Retrying(1, 2, 0.6, "Could not reach the model server."))
    [note] = view.render()
    assert note.content == "🔁 Could not reach the model server. Retrying in 0.6 s (attempt 2)."
    assert note.metadata == {"id": RETRY_ID}
    view.apply(Retrying(1, 3, 1.2, "Could not reach the model server."))
    assert [m.content for m in view.render()] == [
        "🔁 Could not reach the model server. Retrying in 1.2 s (attempt 3)."
    ]
    view.apply(Failed("network", "Could not reach the model server. Please try again."))
    assert [m.content for m in view.render()] == [
        "⚠️ Connection problem (3 attempts): Could not reach the model server. Please try again."
    ]


def test_a_retry_that_worked_says_so():
    view = view_after(Retrying(1, 2, 0.6, "Model server error."), AnswerDelta("4"))
    view.apply(Finished("4", ()))
    assert view.render()[0].content == "🔁 Model server error. It worked on attempt 2."


def test_stop_marks_the_turn_visibly_at_its_end_with_a_footer_whatever_ran():
    view = view_after(
        StepStarted(1),
        ToolCallStarted("a", "add", 1),
        ToolCallStarted("b", "add", 1),
        ToolResult("a", "add", "5", False, 0.01),
    )
    view.stop()
    *_, second, stopped, footer = view.render()
    assert second.metadata["status"] == "done" and "Not finished" in second.content
    assert stopped.content == "⏹️ Stopped in step 1; 1 tool call did not finish."
    assert stopped.metadata == {"id": STOPPED_ID}
    assert "📊 1 step · 2 tool calls" in footer.content


def test_no_ended_turn_ends_on_a_done_message():
    """Gradio's Chatbot shows a stray "•••" bubble after a group ending on a "done" message."""
    ended = [
        view_after(
            ToolCallStarted("a", "add", 1), ToolResult("a", "add", "1", False, 0.0), Finished("1", ())
        ),
        view_after(ToolCallStarted("a", "add", 1), Failed("network", "x")),
        view_after(Failed("input", "x")),
        view_after(ToolCallStarted("a", "add", 1)),
    ]
    ended[-1].stop()
    for view in ended:
        assert view.render()[-1].metadata.get("status") is None


@pytest.mark.parametrize(
    ("name", "arguments", "output", "title"),
    [
        (
            "exponentiate",
            '{"base": 3, "exponent": -1}',
            "0.3333333333333333",
            "🛠️ exponentiate → 0.333333333333 (1 ÷ 3)",
        ),
        ("multiply", '{"a": 0.1, "b": 3}', "0.30000000000000004", "🛠️ multiply → 0.3"),
        ("add", '{"a": 2, "b": 3}', "5", "🛠️ add → 5"),
    ],
)
def test_titles_round_results_for_display_and_the_body_keeps_them_exact(name, arguments, output, title):
    view = view_after(
        ToolCallStarted("a", name, 1),
        ToolArgsDelta("a", arguments),
        ToolResult("a", name, output, False, 0.0),
    )
    [message] = view.render()
    assert message.metadata["title"] == title
    assert message.content.endswith(f"**Result:** {output}")


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
        ToolCallStarted("f", "final_answer", 2, gives_answer=True),
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


# -- approvals --------------------------------------------------------------------------

WRITE_ARGS = '{"filename": "notes.txt", "text": "hello"}'


def waiting_view(clock=None) -> TurnView:
    return view_after(
        StepStarted(1),
        ToolCallStarted("w1", "write_file", 1),
        ToolArgsDelta("w1", '{"filename": "no'),
        ApprovalRequested("w1", "write_file", WRITE_ARGS, 1),
        clock=clock,
    )


def test_a_call_waiting_for_approval_shows_its_complete_arguments_and_its_call_id():
    [waiting] = waiting_view().render()
    assert waiting.metadata == {
        "title": "⏸️ Waiting for your approval: tool(write_file)",
        "id": APPROVAL_ID,
        "log": "w1",
        "status": "pending",
    }
    assert waiting.content == f"Arguments:\n```json\n{WRITE_ARGS}\n```"


def test_an_approved_call_is_a_tool_step_again_that_says_it_was_approved():
    view = waiting_view()
    view.apply(ApprovalDecided("w1", "write_file", True, "", "person", 3.25))
    view.apply(ToolResult("w1", "write_file", "wrote 5 characters", False, 0.01))
    [done] = view.render()
    assert done.metadata == {
        "title": "🛠️ write_file → wrote 5 characters",
        "id": "w1",
        "status": "done",
        "duration": 0.01,
    }
    assert "✅ Approved by you after 3.25 s." in done.content
    assert done.content.endswith("**Result:** wrote 5 characters")


@pytest.mark.parametrize(
    ("decision", "line"),
    [
        (
            ApprovalDecided("w1", "write_file", False, "wrong <b>folder</b>", "person", 2.0),
            "✋ **Denied** by you after 2.00 s: wrong <b>folder</b>. It did not run.",
        ),
        (
            ApprovalDecided("w1", "write_file", False, "", "person", 2.0),
            "✋ **Denied** by you after 2.00 s (no reason given). It did not run.",
        ),
        (
            ApprovalDecided(
                "w1",
                "write_file",
                False,
                "no decision within 300 s (AGENT_APPROVAL_TIMEOUT_S)",
                "timeout",
                300.0,
            ),
            "✋ **Denied**: no decision within 300 s (AGENT_APPROVAL_TIMEOUT_S). It did not run.",
        ),
    ],
)
def test_a_denied_call_says_who_denied_it_and_why_and_shows_no_result(decision, line):
    view = waiting_view()
    view.apply(decision)
    view.apply(ToolResult("w1", "write_file", "Declined: ...", True, 0.0))
    [denied] = view.render()
    assert denied.metadata == {"title": "🛠️ write_file → denied", "id": "w1", "status": "done"}
    assert denied.content == f"Arguments:\n```json\n{WRITE_ARGS}\n```\n\n{line}"


def test_stop_while_a_call_waits_says_it_did_not_run():
    view = waiting_view()
    view.stop()
    call, stopped, footer = view.render()
    assert call.metadata["title"] == "🛠️ write_file → not run" and call.metadata["status"] == "done"
    assert "did not run" in call.content or "Not run" in call.content
    assert stopped.content == "⏹️ Stopped in step 1; write_file waited for your approval and did not run."
    assert footer.metadata == {"id": FOOTER_ID}


def test_the_footer_and_timeline_keep_waiting_apart_from_working():
    view = timed_view(
        (0.0, StepStarted(1)),
        (0.25, ToolCallStarted("w1", "write_file", 1)),
        (0.5, ApprovalRequested("w1", "write_file", WRITE_ARGS, 1)),
        (3.5, ApprovalDecided("w1", "write_file", True, "", "person", 3.0)),
        (4.0, ToolResult("w1", "write_file", "wrote", False, 0.5)),
        (4.0, StepEnded(1, 10, 10)),
        (4.0, StepStarted(2)),
        (4.5, Finished("done", ("write_file",))),
    )
    footer = view.render()[-1]
    assert "total 4.50 s · 3.00 s of it waiting for your approval</summary>" in footer.content
    rows = view.timeline().splitlines()[1:]
    assert rows[1].startswith("  write_file (waiting)  ") and "░" in rows[1] and "█" not in rows[1]
    assert rows[1].endswith("3.00 s")
    assert rows[2].startswith("  write_file  ") and rows[2].endswith("500 ms")
    assert rows[2].index("█") >= rows[1].rindex("░"), "it worked after it waited"


def test_a_denied_call_has_only_its_wait_on_the_timeline():
    view = timed_view(
        (0.0, StepStarted(1)),
        (0.5, ApprovalRequested("w1", "write_file", WRITE_ARGS, 1)),
        (1.5, ApprovalDecided("w1", "write_file", False, "", "person", 1.0)),
        (1.5, ToolResult("w1", "write_file", "Declined", True, 0.0)),
        (2.0, Finished("ok", ())),
    )
    labels = [
        row.split("  ")[1].strip() if row.startswith("  ") else row.split()[0]
        for row in view.timeline().splitlines()[1:]
    ]
    assert labels == ["1", "write_file (waiting)"]


def test_a_long_tool_result_is_cut_for_display_with_a_note_and_its_fence_closed():
    view = TurnView("backend", clock=lambda: 0.0)
    view.apply(ToolCallStarted("c1", "fetch", 1))
    output = "```json\n" + '{"line": "' + "x" * 9000 + '"}\n```'
    view.apply(ToolResult("c1", "fetch", output, False, 0.1))
    [message] = view.render()
    assert f"of {len(output):,} characters are shown; the model read them all._" in message.content
    assert message.content.count("```") % 2 == 0
    assert len(message.content) < 4500


def test_a_structured_result_s_title_is_its_json_on_one_line():
    view = TurnView("backend", clock=lambda: 0.0)
    view.apply(ToolCallStarted("c1", "get_current_time", 1))
    view.apply(ToolResult("c1", "get_current_time", '```json\n{\n  "timezone": "UTC"\n}\n```', False, 0.1))
    [message] = view.render()
    assert message.metadata["title"] == '🛠️ get_current_time → { "timezone": "UTC" }'


def test_a_message_whose_part_did_not_change_is_the_same_object_and_one_that_changed_is_new():
    view = view_after(
        StepStarted(1), ToolCallStarted("c1", "add", 1), ToolArgsDelta("c1", '{"a": 2, "b": 3}')
    )
    view.apply(ToolCallStarted("c2", "multiply", 1))
    step, first_call, second_call = view.render()
    view.apply(ToolResult("c2", "multiply", "6", False, 0.01))
    step_after, first_after, second_after = view.render()
    assert first_after is first_call
    assert second_after is not second_call and second_after.metadata["status"] == "done"
    assert second_call.metadata["status"] == "pending"  # the message handed over before is left as it was
    assert step_after is step  # its calls are not all done yet
    view.apply(ToolResult("c1", "add", "5", False, 0.02))
    assert view.render()[0].metadata["status"] == "done"


def test_an_approval_decided_gives_the_call_a_new_message():
    view = waiting_view()
    [waiting] = view.render()
    view.apply(ApprovalDecided("w1", "write_file", True, "", "person", 3.25))
    [approved] = view.render()
    assert approved is not waiting and "Approved by you" in approved.content
    assert waiting.metadata["id"] == APPROVAL_ID
