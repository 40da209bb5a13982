"""A person approves or denies a tool call before it runs; the turn waits for them, then goes on."""

import asyncio
import functools
import json
import logging
import sys
from collections.abc import Callable

import pytest
from langchain_core.messages import ToolMessage
from langchain_core.tracers.base import BaseTracer
from langchain_core.tracers.schemas import Run

from agent import Approvals, Decision, Settings, agent_turn, needs_approval
from agent.events import ApprovalDecided, ApprovalRequested, Finished, ToolResult
from agent.toolbox import Toolbox
from agent.tools import TOOLS, requires_approval
from support.acting_tools import file_writer
from support.fakes import ScriptedChatModel, answer, call, calls
from support.turns import running_turns

SETTINGS = Settings(offline_token_delay_ms=0, max_steps=4)
Decide = Callable[[ApprovalRequested], tuple[bool, str] | None]


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """A directory that the `write_file` tool (which needs approval) writes into: this module's
    turns get a toolbox with that tool."""
    toolbox = Toolbox((*TOOLS, file_writer(tmp_path)))
    monkeypatch.setattr(sys.modules[__name__], "agent_turn", functools.partial(agent_turn, toolbox=toolbox))
    return tmp_path


def write(name: str, text: str, call_id: str) -> dict:
    return call("write_file", call_id, filename=name, text=text)


async def turn_with(
    model: ScriptedChatModel,
    decide: Decide,
    approvals: Approvals | None = None,
    settings: Settings = SETTINGS,
    **kwargs,
) -> tuple[list, Approvals]:
    """Run a turn to its end; each call shown for approval gets `decide(request)` (None: no decision)."""
    approvals = approvals or Approvals(timeout_s=5)
    events = []
    async with (
        asyncio.timeout(10),
        agent_turn("do it", [], settings, model, approvals=approvals, **kwargs) as turn,
    ):
        async for event in turn.events():
            events.append(event)
            if isinstance(event, ApprovalRequested) and (decision := decide(event)) is not None:
                assert approvals.decide(event.call_id, *decision) is Decision.DECIDED
    return events, approvals


def of_type(events: list, kind: type) -> list:
    return [event for event in events if isinstance(event, kind)]


def tool_messages(model: ScriptedChatModel, request: int) -> dict[str, str]:
    return {m.tool_call_id: m.text for m in model.seen[request] if isinstance(m, ToolMessage)}


def test_the_arithmetic_tools_never_need_approval_and_a_marked_tool_always_does(tmp_path):
    assert not any(needs_approval(tool) for tool in TOOLS)
    assert needs_approval(file_writer(tmp_path))
    assert file_writer(tmp_path).metadata == {"approval": "always"}


def test_a_tool_whose_policy_is_never_runs_without_asking(tmp_path):
    tool = file_writer(tmp_path)
    tool.metadata = {"approval": "never"}
    assert not needs_approval(tool)
    assert needs_approval(requires_approval(tool))


async def test_an_approved_call_runs_and_the_turn_goes_on(folder):
    model = ScriptedChatModel(
        script=[calls(write("notes.txt", "hello", "w1")), answer("Done: notes.txt says hello.", "write_file")]
    )
    events, _ = await turn_with(model, lambda request: (True, ""))

    [requested] = of_type(events, ApprovalRequested)
    assert requested == ApprovalRequested(
        "w1", "write_file", json.dumps({"filename": "notes.txt", "text": "hello"}), 1
    )
    [decided] = of_type(events, ApprovalDecided)
    assert (decided.call_id, decided.approved, decided.by) == ("w1", True, "person")
    result = next(e for e in events if isinstance(e, ToolResult) and e.call_id == "w1")
    assert events.index(requested) < events.index(decided) < events.index(result)
    assert (result.output, result.is_error) == ("wrote 5 characters to notes.txt", False)
    assert (folder / "notes.txt").read_text() == "hello"
    assert tool_messages(model, 1) == {"w1": "wrote 5 characters to notes.txt"}
    assert events[-1] == Finished("Done: notes.txt says hello.", ("write_file",))


async def test_a_denied_call_does_not_run_and_the_model_reads_the_reason(folder):
    model = ScriptedChatModel(
        script=[calls(write("notes.txt", "hello", "w1")), answer("I did not write it.")]
    )
    events, _ = await turn_with(model, lambda request: (False, "not in that folder"))

    assert not (folder / "notes.txt").exists()
    [decided] = of_type(events, ApprovalDecided)
    assert (decided.approved, decided.reason, decided.by) == (False, "not in that folder", "person")
    [result] = [e for e in of_type(events, ToolResult) if e.call_id == "w1"]
    assert result.is_error
    told = tool_messages(model, 1)["w1"]
    assert "did not approve" in told and "did not run" in told and "not in that folder" in told
    assert events[-1] == Finished("I did not write it.", ())


async def test_no_model_call_runs_while_a_call_waits_and_no_other_time_out_fires(folder):
    model = ScriptedChatModel(script=[calls(write("a.txt", "a", "w1")), answer("ok")])
    approvals = Approvals(timeout_s=30)
    settings = Settings(offline_token_delay_ms=0, request_timeout_s=1)
    async with agent_turn("do it", [], settings, model, approvals=approvals) as turn:
        events = turn.events()
        async with asyncio.timeout(5):
            while not isinstance(await anext(events), ApprovalRequested):
                pass
        await asyncio.sleep(1.5)  # longer than the model's request time-out
        assert model.progress.calls == 1
        assert approvals.waiting is not None and approvals.waiting.call_id == "w1"
        approvals.decide("w1", True)
        rest = [event async for event in events]
    assert model.progress.calls == 2
    assert rest[-1] == Finished("ok", ("write_file",))
    [decided] = of_type(rest, ApprovalDecided)
    assert decided.waited_s >= 1.5


async def test_parallel_calls_are_decided_one_by_one_and_only_the_approved_ones_run(folder):
    model = ScriptedChatModel(
        script=[
            calls(write("a.txt", "A", "w1"), call("add", "c1", a=1, b=2), write("b.txt", "B", "w2")),
            answer("Wrote a.txt; b.txt was declined."),
        ]
    )
    approvals = Approvals(timeout_s=5)
    events = []
    async with asyncio.timeout(10), agent_turn("do it", [], SETTINGS, model, approvals=approvals) as turn:
        async for event in turn.events():
            events.append(event)
            if isinstance(event, ToolResult) and event.call_id == "c1":
                assert approvals.waiting.call_id == "w1", "the add ran while w1 waited; w2 is not shown yet"
                approvals.decide("w1", True)
            elif isinstance(event, ApprovalRequested) and event.call_id == "w2":
                approvals.decide("w2", False, "keep b out")

    requested = [events.index(e) for e in of_type(events, ApprovalRequested)]
    decided = [events.index(e) for e in of_type(events, ApprovalDecided)]
    assert requested[0] < decided[0] < requested[1] < decided[1], (
        "the second is shown once the first is decided"
    )
    assert [e.call_id for e in of_type(events, ApprovalRequested)] == ["w1", "w2"]
    assert (folder / "a.txt").read_text() == "A"
    assert not (folder / "b.txt").exists()
    told = tool_messages(model, 1)
    assert told["c1"] == "3" and told["w1"].startswith("wrote") and "keep b out" in told["w2"]


async def test_no_decision_in_time_denies_the_call_and_says_why(folder):
    model = ScriptedChatModel(script=[calls(write("late.txt", "x", "w1")), answer("Nobody approved it.")])
    settings = Settings(offline_token_delay_ms=0, approval_timeout_s=0.3)
    events, approvals = await turn_with(
        model, lambda request: None, approvals=Approvals(0.3), settings=settings
    )

    [decided] = of_type(events, ApprovalDecided)
    assert (decided.approved, decided.by) == (False, "timeout")
    assert 0.3 <= decided.waited_s < 2
    assert "AGENT_APPROVAL_TIMEOUT_S" in tool_messages(model, 1)["w1"]
    assert not (folder / "late.txt").exists()
    assert events[-1] == Finished("Nobody approved it.", ())
    assert approvals.decide("w1", True) is Decision.TURN_FINISHED


async def test_a_turn_without_an_approvals_desk_times_out_on_the_settings_time_out(folder):
    model = ScriptedChatModel(script=[calls(write("late.txt", "x", "w1")), answer("Nobody approved it.")])
    settings = Settings(offline_token_delay_ms=0, approval_timeout_s=0.2)
    async with asyncio.timeout(5), agent_turn("do it", [], settings, model) as turn:
        events = [event async for event in turn.events()]
    [decided] = of_type(events, ApprovalDecided)
    assert (decided.approved, decided.by) == (False, "timeout")


async def test_a_decision_arrives_once_for_a_waiting_call_of_this_turn_only(folder):
    model = ScriptedChatModel(script=[calls(write("a.txt", "a", "w1")), answer("ok")])
    verdicts = []

    def decide(request: ApprovalRequested) -> None:
        verdicts.append(approvals.decide("someone-elses-call", True))
        verdicts.append(approvals.decide(request.call_id, True))
        verdicts.append(approvals.decide(request.call_id, False, "changed my mind"))  # a double click

    approvals = Approvals(timeout_s=5)
    events, _ = await turn_with(model, decide, approvals=approvals)

    assert verdicts == [Decision.UNKNOWN_CALL, Decision.DECIDED, Decision.ALREADY_DECIDED]
    assert [d.approved for d in of_type(events, ApprovalDecided)] == [True]
    assert (folder / "a.txt").exists()
    assert approvals.decide("w1", False) is Decision.TURN_FINISHED


async def test_a_reason_is_one_bounded_line_of_text(folder):
    model = ScriptedChatModel(script=[calls(write("a.txt", "a", "w1")), answer("ok")])
    events, _ = await turn_with(model, lambda request: (False, "  no\x1b[31m thanks\x00" + "!" * 2000))
    [decided] = of_type(events, ApprovalDecided)
    assert decided.reason.startswith("no[31m thanks!") and len(decided.reason) == 500


async def test_leaving_the_turn_while_a_call_waits_denies_it_and_leaves_no_task(folder):
    model = ScriptedChatModel(script=[calls(write("a.txt", "a", "w1")), answer("ok")])
    approvals = Approvals(timeout_s=30)
    before = asyncio.all_tasks()
    async with agent_turn("do it", [], SETTINGS, model, approvals=approvals) as turn:
        async with asyncio.timeout(5):
            async for event in turn.events():
                if isinstance(event, ApprovalRequested):
                    break
        assert running_turns() == 1
    assert running_turns() == 0
    assert asyncio.all_tasks() == before
    assert not (folder / "a.txt").exists()
    assert model.progress.calls == 1
    assert approvals.decide("w1", True) is Decision.TURN_FINISHED


async def test_stop_while_a_call_waits_is_recorded_as_stop_in_the_log_line(folder, caplog):
    model = ScriptedChatModel(script=[calls(write("a.txt", "a", "w1")), answer("ok")])
    approvals = Approvals(timeout_s=30)
    with caplog.at_level(logging.INFO, logger="agent.turns"):
        async with agent_turn("do it", [], SETTINGS, model, approvals=approvals) as turn:
            async with asyncio.timeout(5):
                async for event in turn.events():
                    if isinstance(event, ApprovalRequested):
                        break
            await asyncio.sleep(0.2)
            approvals.end("stop")
    [line] = [r.turn for r in caplog.records if r.name == "agent.turns"]
    assert line["outcome"] == "cancelled"
    [decision] = line["approvals"]
    assert decision["tool"] == "write_file" and decision["approved"] is False and decision["by"] == "stop"
    assert decision["waited_s"] >= 0.2 and line["waiting_s"] == decision["waited_s"]
    assert not (folder / "a.txt").exists()


async def test_the_log_line_keeps_waiting_apart_and_reasons_out_unless_asked(folder, caplog):
    model = ScriptedChatModel(script=[calls(write("a.txt", "a", "w1")), answer("ok")])
    with caplog.at_level(logging.INFO, logger="agent.turns"):
        await turn_with(model, lambda request: (False, "private reason"))
    [line] = [r.turn for r in caplog.records if r.name == "agent.turns"]
    assert line["outcome"] == "finished"
    assert line["approvals"] == [
        {"tool": "write_file", "approved": False, "by": "person", "waited_s": line["waiting_s"]}
    ]
    assert "private reason" not in caplog.text


class RecordingTracer(BaseTracer):
    def __init__(self) -> None:
        super().__init__()
        self.roots: list[Run] = []

    def _persist_run(self, run: Run) -> None:
        self.roots.append(run)


def shape(run: Run, depth: int = 0) -> list[str]:
    lines = ["  " * depth + run.name]
    for child in sorted(run.child_runs, key=lambda r: r.dotted_order):
        lines.extend(shape(child, depth + 1))
    return lines


async def test_the_trace_shows_the_wait_apart_from_the_call(folder):
    model = ScriptedChatModel(
        script=[calls(write("a.txt", "a", "w1"), write("b.txt", "b", "w2")), answer("ok", "write_file")]
    )
    tracer = RecordingTracer()
    await turn_with(model, lambda request: (request.call_id == "w1", "no"), callbacks=[tracer])

    [root] = tracer.roots
    assert shape(root) == [
        "agent turn",
        "  step 1",
        "    step 1 · ScriptedChatModel",
        "    approval · write_file",
        "    approval · write_file",
        "    write_file",
        "  step 2",
        "    step 2 · ScriptedChatModel",
        "    final_answer",
    ]
    waits = [run for run in root.child_runs[0].child_runs if run.name.startswith("approval")]
    assert [(run.outputs["approved"], run.outputs["by"]) for run in waits] == [
        (True, "person"),
        (False, "person"),
    ]
    [ran] = [run for run in root.child_runs[0].child_runs if run.name == "write_file"]
    assert waits[0].end_time <= ran.start_time, "the call ran after its wait ended"


def test_the_time_out_is_read_from_the_environment():
    assert Settings.from_env({}).approval_timeout_s == 300
    assert Settings.from_env({"AGENT_APPROVAL_TIMEOUT_S": "12.5"}).approval_timeout_s == 12.5
    with pytest.raises(ValueError, match="AGENT_APPROVAL_TIMEOUT_S"):
        Settings.from_env({"AGENT_APPROVAL_TIMEOUT_S": "0"})
