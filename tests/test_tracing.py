"""Observability: one trace per turn, as a tracer receives it, and one log line per turn.

LangSmith tracing is switched on the way users do it (`LANGSMITH_TRACING=true`,
`LANGSMITH_ENDPOINT`, `LANGSMITH_API_KEY`) and pointed at a stand-in for its ingest
API on 127.0.0.1 (`support/langsmith_standin.py`), which records every byte.
"""

import json
import logging
from contextlib import aclosing
from dataclasses import replace

import pytest
from langchain_core.tracers.base import BaseTracer
from langchain_core.tracers.langchain import wait_for_all_tracers
from langchain_core.tracers.schemas import Run
from llmock.scenarios import Reply, ToolCall
from pydantic import SecretStr

import app
from agent import Settings, run_agent
from agent.events import Failed, Finished, StepStarted, ToolResult
from agent.tracing import CANCELLED, OFFLINE_TAG, TURN_RUN_NAME
from support.fakes import Hang, ScriptedChatModel, answer, call, calls
from support.gradio_http import GradioChatClient
from support.langsmith_standin import LangSmithStandIn, reread_langsmith_environment
from support.servers import free_port
from support.turns import collect, run_turn_events

pytestmark = pytest.mark.slow

QUESTION = "(2 + 3) * (4 + 5)"
OFFLINE = Settings(offline_token_delay_ms=0)
SERVER_KEY = "sk-server-trace-0123456789abcdef"
VISITOR_KEY = "sk-visitor-trace-fedcba9876543210"
ARITHMETIC_TREE = [
    "agent turn [chain]",
    "  step 1 [chain]",
    "    step 1 · OfflineArithmeticModel [llm]",
    "    add [tool]",
    "    add [tool]",
    "  step 2 [chain]",
    "    step 2 · OfflineArithmeticModel [llm]",
    "    multiply [tool]",
    "  step 3 [chain]",
    "    step 3 · OfflineArithmeticModel [llm]",
    "    final_answer [tool]",
]


@pytest.fixture(scope="module", params=["multipart"])
def standin(request):
    with LangSmithStandIn(multipart=request.param == "multipart") as server:
        yield server


@pytest.fixture
def traces(standin, monkeypatch):
    """LangSmith tracing on, sending to the stand-in; what it received, once flushed."""
    monkeypatch.setenv("LANGSMITH_TRACING", "true")
    monkeypatch.setenv("LANGSMITH_ENDPOINT", standin.url)
    monkeypatch.setenv("LANGSMITH_API_KEY", "lsv2_standin_fake_key")
    monkeypatch.setenv("LANGSMITH_PROJECT", "agent-tests")
    monkeypatch.setenv("LANGSMITH_DISABLE_RUN_COMPRESSION", "true")  # readable bytes to search
    reread_langsmith_environment()
    standin.clear()

    def received() -> LangSmithStandIn:
        wait_for_all_tracers()
        return standin

    yield received
    wait_for_all_tracers()
    monkeypatch.undo()
    reread_langsmith_environment()


class RecordingTracer(BaseTracer):
    """Any tracer: keeps each finished root run, with its child runs."""

    def __init__(self) -> None:
        super().__init__()
        self.roots: list[Run] = []

    def _persist_run(self, run: Run) -> None:
        self.roots.append(run)


def without_durations(events: list) -> list:
    return [replace(e, duration_s=0.0) if isinstance(e, ToolResult) else e for e in events]


def shape(run: Run, depth: int = 0) -> list[str]:
    lines = ["  " * depth + f"{run.name} [{run.run_type}]"]
    for child in sorted(run.child_runs, key=lambda r: r.dotted_order):
        lines.extend(shape(child, depth + 1))
    return lines


# -- one trace per turn ------------------------------------------------------------------


async def test_one_question_is_one_trace_with_its_model_and_tool_calls_nested_in_order(traces):
    events = await run_turn_events(QUESTION, OFFLINE)

    received = traces()
    [root] = received.roots()
    assert received.tree(root) == ARITHMETIC_TREE
    assert root["inputs"] == {"question": QUESTION}
    assert root["outputs"] == {"answer": events[-1].answer, "tools_used": ["add", "multiply"]}
    assert not root.get("error") and root["end_time"]
    runs = [root, *received.descendants(root)]
    assert {run["trace_id"] for run in runs} == {root["id"]}
    assert all(run["end_time"] and not run.get("error") for run in runs)
    step_1 = received.children(root)[0]
    llm_run, *tool_runs = received.children(step_1)
    assert [run["inputs"] for run in tool_runs] == [{"a": 2, "b": 3}, {"a": 4, "b": 5}]
    assert [run["outputs"] for run in tool_runs] == [{"output": "5"}, {"output": "9"}]
    assert llm_run["end_time"] <= tool_runs[0]["start_time"]


async def test_the_openai_path_is_one_trace_too(traces, llmock):
    settings = Settings(api_key=SecretStr(SERVER_KEY), base_url=llmock.base_url(), model="gpt-test")
    llmock.add(Reply(tool_calls=(ToolCall("add", {"a": 2, "b": 3}), ToolCall("add", {"a": 4, "b": 5}))))
    llmock.call_tool("multiply", {"a": 5, "b": 9})
    llmock.call_tool("final_answer", {"answer": "45", "tools_used": ["add", "multiply"]})
    assert (await run_turn_events(QUESTION, settings))[-1] == Finished("45", ("add", "multiply"))

    received = traces()
    [root] = received.roots()
    assert received.tree(root) == [
        line.replace("OfflineArithmeticModel", "ChatOpenAI") for line in ARITHMETIC_TREE
    ]
    assert root["extra"]["metadata"]["model"] == "gpt-test" and OFFLINE_TAG not in root["tags"]


@pytest.mark.parametrize("standin", ["batch"], indirect=True)
async def test_the_json_batch_endpoint_gets_the_same_tree(traces):
    await run_turn_events(QUESTION, OFFLINE)

    received = traces()
    [root] = received.roots()
    assert received.tree(root) == ARITHMETIC_TREE
    assert b"POST /runs/batch" in received.received() and b"/runs/multipart" not in received.received()


async def test_two_questions_are_two_traces(traces):
    await run_turn_events(QUESTION, OFFLINE)
    await run_turn_events("what is 2 + 2?", OFFLINE)

    roots = traces().roots()
    assert [root["inputs"]["question"] for root in roots] == [QUESTION, "what is 2 + 2?"]
    assert all(root["name"] == TURN_RUN_NAME for root in roots)


async def test_parallel_tool_calls_are_siblings_under_their_step(traces):
    model = ScriptedChatModel(
        script=[
            calls(call("add", "c1", a=1, b=2), call("multiply", "c2", a=3, b=4), call("add", "c3", a=5, b=6)),
            answer("3, 12 and 11", "add", "multiply"),
        ]
    )
    await run_turn_events("three at once", OFFLINE, chat_model=model)

    received = traces()
    [root] = received.roots()
    step_1, step_2 = received.children(root)
    assert [run["name"] for run in received.children(step_1)] == [
        "step 1 · ScriptedChatModel",
        "add",
        "multiply",
        "add",
    ]
    assert [run["inputs"] for run in received.children(step_1)[1:]] == [
        {"a": 1, "b": 2},
        {"a": 3, "b": 4},
        {"a": 5, "b": 6},
    ]
    assert [run["name"] for run in received.children(step_2)] == [
        "step 2 · ScriptedChatModel",
        "final_answer",
    ]


async def test_any_tracer_passed_in_sees_the_same_tree_and_the_handler_still_gets_every_token_once():
    def scripted() -> ScriptedChatModel:
        return ScriptedChatModel(
            script=[calls(call("add", "c1", a=2, b=3), call("add", "c2", a=4, b=5)), answer("9 and 5", "add")]
        )

    tracer = RecordingTracer()
    untraced = await run_turn_events(QUESTION, OFFLINE, chat_model=scripted())
    traced = await collect(run_agent(QUESTION, [], OFFLINE, scripted(), callbacks=[tracer]))

    assert without_durations(traced) == without_durations(untraced)
    [root] = tracer.roots
    assert shape(root) == [
        "agent turn [chain]",
        "  step 1 [chain]",
        "    step 1 · ScriptedChatModel [llm]",
        "    add [tool]",
        "    add [tool]",
        "  step 2 [chain]",
        "    step 2 · ScriptedChatModel [llm]",
        "    final_answer [tool]",
    ]
    llm_run = root.child_runs[0].child_runs[0]
    assert llm_run.parent_run_id == root.child_runs[0].id


async def test_without_a_tracer_no_run_is_made(monkeypatch):
    started: list[str] = []
    monkeypatch.setattr(BaseTracer, "_start_trace", lambda self, run: started.append(run.name))
    events = await run_turn_events(QUESTION, OFFLINE)
    assert isinstance(events[-1], Finished) and started == []


# -- metadata, secrets, stop and failure -------------------------------------------------


async def test_runs_carry_the_conversation_id_the_model_and_the_backend(traces):
    await collect(run_agent(QUESTION, [], OFFLINE, conversation_id="conversation-1"))

    received = traces()
    [root] = received.roots()
    for run in [root, *received.descendants(root)]:
        metadata = run["extra"]["metadata"]
        assert metadata["thread_id"] == "conversation-1"
        assert metadata["model"] == "offline-arithmetic"
        assert metadata["backend"] == "Offline model (no API key): arithmetic only"
        assert OFFLINE_TAG in run["tags"]


async def test_no_key_reaches_the_tracer(traces, llmock):
    server = Settings(api_key=SecretStr(SERVER_KEY), base_url=llmock.base_url(), model="m", max_retries=0)
    llmock.call_tool("final_answer", {"answer": "Four.", "tools_used": []}, times=2)
    assert isinstance((await run_turn_events("what is 2 + 2?", server))[-1], Finished)
    assert isinstance(
        (await run_turn_events("and 3 + 3?", server.for_request(api_key=VISITOR_KEY)))[-1], Finished
    )
    llmock.fail(401, times=None)
    assert (await run_turn_events("and 4 + 4?", server.for_request(api_key=VISITOR_KEY)))[-1].kind == "auth"

    received = traces()
    assert len(received.roots()) == 3
    assert received.tree(received.roots()[0])[2] == "    step 1 · ChatOpenAI [llm]"
    everything = received.received()
    for key in (SERVER_KEY, VISITOR_KEY):
        assert key.encode() not in everything
        assert key.removeprefix("sk-").encode() not in everything


async def test_a_stopped_turn_ends_its_root_run_as_cancelled(traces):
    model = ScriptedChatModel(script=[calls(call("add", "c1", a=1, b=1)), Hang()])
    async with aclosing(run_agent(QUESTION, [], OFFLINE, model)) as events:
        async for event in events:
            if isinstance(event, StepStarted) and event.step == 2:
                break

    received = traces()
    [root] = received.roots()
    assert "CancelledError" in root["error"] and CANCELLED in root["error"]
    assert not root.get("outputs")
    runs = [root, *received.descendants(root)]
    assert all(run["end_time"] for run in runs), "no run is left open"
    step_1, step_2 = received.children(root)
    assert not step_1.get("error") and "CancelledError" in step_2["error"]


async def test_a_failed_turn_records_the_failure_kind_and_message(traces, llmock):
    settings = Settings(api_key=SecretStr(SERVER_KEY), base_url=llmock.base_url(), model="m", max_retries=0)
    llmock.rate_limit(times=None, retry_after=30)
    events = await run_turn_events(QUESTION, settings)

    failed = events[-1]
    assert isinstance(failed, Failed) and failed.kind == "rate_limit"
    [root] = traces().roots()
    assert f"rate_limit: {failed.message}" in root["error"]
    assert "TurnFailed" in root["error"]


# -- through the chat API ----------------------------------------------------------------


@pytest.fixture
def traced_app(traces):
    demo = app.create_app(OFFLINE, concurrency=10)
    port = free_port()
    demo.launch(server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}"
    demo.close()


async def test_through_the_chat_api_each_question_is_one_trace_grouped_by_session(traces, traced_app):
    async with GradioChatClient(traced_app) as client:
        first = await client.ask(QUESTION, session_hash="session-one")
        second = await client.ask("what is 2 + 2?", session_hash="session-one")
        other = await client.ask("what is 3 + 3?", session_hash="session-two")
    assert first.completed and second.completed and other.completed

    received = traces()
    roots = received.roots()
    assert [root["inputs"]["question"] for root in roots] == [QUESTION, "what is 2 + 2?", "what is 3 + 3?"]
    assert received.tree(roots[0]) == ARITHMETIC_TREE
    threads = [root["extra"]["metadata"]["thread_id"] for root in roots]
    assert threads[0] == threads[1] != threads[2]
    assert not any(session.encode() in received.received() for session in ("session-one", "session-two"))


# -- the log line ------------------------------------------------------------------------


def turn_lines(caplog) -> list[dict]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "agent.turns"]


async def test_each_turn_writes_one_log_line_without_the_question(caplog):
    caplog.set_level(logging.INFO, logger="agent.turns")
    await run_turn_events(QUESTION, OFFLINE, chat_model=None)

    [line] = turn_lines(caplog)
    assert line["outcome"] == "finished"
    assert (line["steps"], line["tool_calls"]) == (3, 3)
    assert line["tokens_in"] > 0 and line["tokens_out"] > 0
    assert 0 < line["first_token_s"] <= line["total_s"]
    assert line["backend"] == "Offline model (no API key): arithmetic only"
    assert line["model"] == "offline-arithmetic"
    assert "question" not in line and "(2 + 3)" not in caplog.text


async def test_the_log_line_says_how_the_question_came(caplog):
    caplog.set_level(logging.INFO, logger="agent.turns")
    async for _event in run_agent("what is 2 + 2", [], OFFLINE, via="mcp ask_agent"):
        pass
    await run_turn_events(QUESTION, OFFLINE, chat_model=None)

    assert [line["via"] for line in turn_lines(caplog)] == ["mcp ask_agent", None]


async def test_the_log_line_has_the_question_only_when_asked_and_never_a_key(caplog, llmock):
    caplog.set_level(logging.INFO, logger="agent.turns")
    settings = Settings(
        api_key=SecretStr(SERVER_KEY), base_url=llmock.base_url(), model=VISITOR_KEY, log_questions=True
    )
    llmock.fail(401, times=None)
    await run_turn_events(QUESTION, settings)

    [line] = turn_lines(caplog)
    assert line["question"] == QUESTION
    assert (line["outcome"], line["failure"]) == ("failed", "auth")
    assert SERVER_KEY not in caplog.text and VISITOR_KEY not in caplog.text


async def test_a_stopped_turn_is_logged_as_cancelled(caplog):
    caplog.set_level(logging.INFO, logger="agent.turns")
    async with aclosing(run_agent(QUESTION, [], OFFLINE, ScriptedChatModel(script=[Hang()]))) as events:
        async for _ in events:
            break

    [line] = turn_lines(caplog)
    assert (line["outcome"], line["steps"], line["first_token_s"]) == ("cancelled", 1, None)
