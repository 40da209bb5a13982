"""Every OpenAI-compatible server dialect in `tests/agent/dialects.py`, through the real engine.

Each dialect's replay is served over real HTTP on 127.0.0.1 to the real
`ChatOpenAI`, and the turn is checked the way a user would judge it: the answer,
exactly the two tool calls with their arguments, a display that agrees with what
ran, the server's own token count in the footer, and a next request the server
would accept. Then the request fallbacks, the provider's reasons in errors, a
reply that never closes, and the chat API.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
from pydantic import SecretStr

from agent import Settings
from agent.events import (
    AgentEvent,
    AnswerDelta,
    Failed,
    Finished,
    ReasoningDelta,
    StepEnded,
    TextDelta,
    ToolArgsDelta,
    ToolCallStarted,
    ToolResult,
)
from support.gradio_http import GradioChatClient
from support.scripted_openai import (
    DONE,
    HttpError,
    Script,
    ScriptedOpenAI,
    SseStream,
)
from support.scripted_openai import (
    events as sse_events,
)
from support.servers import free_port
from support.turns import run_turn_events
from tests.agent.dialects import (
    ADD_ARGS,
    ANSWER,
    DIALECTS,
    FINAL_ARGS,
    MISTRAL_STREAM_OPTIONS_422,
    MULTIPLY_ARGS,
    QUESTION,
    RESULTS,
    STEP2_USAGE,
    TOOLS_USED,
    Dialect,
    chunk,
    openai,
)
from ui.view import FOOTER_ID

ARGS_BY_NAME = {"add": ADD_ARGS, "multiply": MULTIPLY_ARGS, "final_answer": FINAL_ARGS}
GENERATED_ID = re.compile(r"^[A-Za-z0-9]{9}$")
KEEP_ALIVE_BOUND_S = 3.0


def settings_for(script: Script, model: str, **changes: Any) -> Settings:
    settings = Settings(
        api_key=SecretStr("sk-test-dialect"),
        base_url=script.base_url,
        model=model,
        request_timeout_s=5,
        max_retries=0,
    )
    return replace(settings, **changes)


@dataclass
class DialectTurn:
    """One dialect's turn: what the engine emitted and what the server was asked."""

    dialect: Dialect
    events: list[AgentEvent]
    script: Script

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    @property
    def outcome(self) -> AgentEvent:
        return self.events[-1]

    def step1_calls(self) -> list[ToolResult]:
        return [r for r in self.of(ToolResult) if r.name != "final_answer"]


@pytest.fixture(scope="module", params=list(DIALECTS))
async def turn(request, scripted_openai_server: ScriptedOpenAI) -> AsyncIterator[DialectTurn]:
    """The two-step question asked once per dialect (every test below reads the same turn)."""
    dialect = DIALECTS[request.param]()
    script = scripted_openai_server.new_script().add(*dialect.script)
    turn_events = await run_turn_events(QUESTION, settings_for(script, dialect.model))
    yield DialectTurn(dialect, turn_events, script)
    scripted_openai_server.drop(script)


# -- what the user sees ---------------------------------------------------------------------


def test_the_turn_ends_with_the_final_answer(turn):
    assert turn.outcome == Finished(ANSWER, TOOLS_USED)


def test_exactly_the_two_tool_calls_run_with_their_arguments(turn):
    ran = turn.step1_calls()
    assert sorted((r.name, r.output, r.is_error) for r in ran) == [
        ("add", RESULTS["add"], False),
        ("multiply", RESULTS["multiply"], False),
    ], f"tool results: {turn.of(ToolResult)}; outcome: {turn.outcome}"
    assert len({r.call_id for r in ran}) == 2
    assert len(turn.of(ToolResult)) - len(ran) <= 1  # the final_answer call, unless the reply was content


def test_the_answer_streams_as_it_arrives(turn):
    if turn.dialect.answers_in_content:
        assert TextDelta is not None, "agent.events.TextDelta is not there yet"
        assert "".join(e.text for e in turn.of(TextDelta) if e.step == 2) == ANSWER
    else:
        assert "".join(e.text for e in turn.of(AnswerDelta)) == ANSWER


def test_the_display_shows_the_calls_that_ran_with_their_arguments(turn):
    started = turn.of(ToolCallStarted)
    assert len({s.call_id for s in started}) == len(started), f"a call id shown twice in one turn: {started}"
    executed = {r.call_id: r.name for r in turn.of(ToolResult)}
    assert {s.call_id: s.name for s in started} == executed, f"shown {started}, ran {executed}"
    for call_id, name in executed.items():
        shown = "".join(d.text for d in turn.of(ToolArgsDelta) if d.call_id == call_id)
        assert json.loads(shown) == ARGS_BY_NAME[name], f"{name} was shown with arguments {shown!r}"


def test_the_footer_counts_the_servers_usage_once(turn):
    ended = turn.of(StepEnded)
    assert (sum(e.input_tokens for e in ended), sum(e.output_tokens for e in ended)) == turn.dialect.usage


def test_the_next_request_gives_the_server_back_what_it_needs(turn):
    assert len(turn.script.requests) == len(turn.dialect.script), f"outcome: {turn.outcome}"
    messages = turn.script.bodies[-1]["messages"]
    [position] = [i for i, m in enumerate(messages) if m["role"] == "assistant" and m.get("tool_calls")]
    assistant, results = messages[position], messages[position + 1 :]
    calls = {c["function"]["name"]: c for c in assistant["tool_calls"]}
    assert sorted(calls) == ["add", "multiply"]
    assert {n: json.loads(c["function"]["arguments"]) for n, c in calls.items()} == {
        "add": ADD_ARGS,
        "multiply": MULTIPLY_ARGS,
    }
    ids = [calls["add"]["id"], calls["multiply"]["id"]]
    assert len(set(ids)) == 2 and all(ids)
    assert {(m["role"], m["tool_call_id"], m["content"]) for m in results} == {
        ("tool", ids[0], RESULTS["add"]),
        ("tool", ids[1], RESULTS["multiply"]),
    }
    if turn.dialect.call_ids is None:
        assert all(GENERATED_ID.match(i) for i in ids), f"generated ids {ids} are not 9 alphanumerics"
    elif turn.dialect.ids_sent_back:
        assert tuple(ids) == turn.dialect.call_ids
    if turn.dialect.reasoning_sent_back:
        assert assistant.get("reasoning_content") == turn.dialect.reasoning
    for name, signature in zip(("add", "multiply"), turn.dialect.signatures, strict=True):
        if signature is not None:
            assert calls[name].get("extra_content") == {"google": {"thought_signature": signature}}


def test_a_refused_request_field_is_dropped_on_the_retry(turn):
    bodies = turn.script.bodies
    if "tool_choice" in turn.dialect.falls_back:
        assert bodies[0]["tool_choice"] == "required"
        assert [b["tool_choice"] for b in bodies[1:]] == ["auto"] * (len(bodies) - 1)
    if "stream_options" in turn.dialect.falls_back:
        assert bodies[0]["stream_options"] == {"include_usage": True}
        assert not any("stream_options" in b for b in bodies[1:])
    if not turn.dialect.falls_back:
        assert all(b["tool_choice"] == "required" for b in bodies)
        assert all(b["stream_options"] == {"include_usage": True} for b in bodies)


def test_text_beside_tool_calls_is_a_thought_not_the_answer(turn):
    assert TextDelta is not None, "agent.events.TextDelta is not there yet"
    thought = "".join(e.text for e in turn.of(TextDelta) if e.step == 1)
    assert thought == turn.dialect.thought
    if turn.dialect.thought:
        assert turn.dialect.thought not in "".join(e.text for e in turn.of(AnswerDelta))


def test_reasoning_is_shown_as_reasoning_not_as_text(turn):
    assert ReasoningDelta is not None, "agent.events.ReasoningDelta is not there yet"
    assert "".join(e.text for e in turn.of(ReasoningDelta) if e.step == 1) == turn.dialect.reasoning
    if turn.dialect.reasoning:
        shown = [e.text for e in turn.events if isinstance(e, AnswerDelta | TextDelta)]
        assert not any(turn.dialect.reasoning in text for text in shown)


# -- fallbacks remembered, and operator settings ---------------------------------------------


@pytest.mark.parametrize("name", ["deepseek", "mistral"])
async def test_a_second_turn_goes_straight_to_the_fallback(scripted_openai, name):
    dialect = DIALECTS[name]()
    settings = settings_for(scripted_openai, dialect.model)
    scripted_openai.add(*dialect.script)
    await run_turn_events(QUESTION, settings)
    first_turn = len(scripted_openai.requests)
    scripted_openai.add(*dialect.replies)
    second = await run_turn_events(QUESTION, settings)
    assert second[-1] == Finished(ANSWER, TOOLS_USED)
    bodies = scripted_openai.bodies[first_turn:]
    assert len(bodies) == 2
    if "tool_choice" in dialect.falls_back:
        assert all(b["tool_choice"] == "auto" for b in bodies)
    if "stream_options" in dialect.falls_back:
        assert not any("stream_options" in b for b in bodies)


async def test_the_fallback_is_remembered_per_model(scripted_openai):
    dialect = DIALECTS["deepseek"]()
    scripted_openai.add(*dialect.script)
    await run_turn_events(QUESTION, settings_for(scripted_openai, dialect.model))
    asked = len(scripted_openai.requests)
    scripted_openai.add(*openai().replies)
    await run_turn_events(QUESTION, settings_for(scripted_openai, "another-model"))
    assert scripted_openai.bodies[asked]["tool_choice"] == "required"


VLLM_OLD_TOOL_CHOICE_400 = {
    "object": "error",
    "message": "[{'type': 'value_error', 'loc': ('body',), 'msg': 'Value error, `tool_choice` must either "
    'be a named tool, "auto", or "none".\'}]',
    "type": "BadRequestError",
    "param": None,
    "code": 400,
}
OPENROUTER_TOOL_CHOICE_404 = {
    "error": {"message": "No endpoints found that support the provided 'tool_choice' value.", "code": 404}
}
TOOL_CHOICE_422 = {
    "detail": [
        {"type": "literal_error", "loc": ["body", "tool_choice"], "msg": "Input should be 'auto' or 'none'"}
    ]
}


@pytest.mark.parametrize(
    ("status", "body"),
    [(400, VLLM_OLD_TOOL_CHOICE_400), (404, OPENROUTER_TOOL_CHOICE_404), (422, TOOL_CHOICE_422)],
    ids=["400-vllm-11700", "404-openrouter-zed-36094", "422-pydantic"],
)
async def test_a_refused_tool_choice_is_retried_with_auto(scripted_openai, status, body):
    scripted_openai.add(HttpError(status, body), *openai().replies)
    turn_events = await run_turn_events(QUESTION, settings_for(scripted_openai, "gpt-4.1-mini"))
    assert turn_events[-1] == Finished(ANSWER, TOOLS_USED)
    assert [b["tool_choice"] for b in scripted_openai.bodies] == ["required", "auto", "auto"]


STREAM_OPTIONS_400 = [
    {
        "type": "extra_forbidden",
        "loc": ["body", "stream_options"],
        "msg": "Extra inputs are not permitted",
        "input": {"include_usage": True},
    }
]


@pytest.mark.parametrize(
    ("status", "body"),
    [(422, MISTRAL_STREAM_OPTIONS_422), (400, STREAM_OPTIONS_400)],
    ids=["422", "400-list"],
)
async def test_a_refused_stream_options_is_retried_without_it(scripted_openai, status, body):
    scripted_openai.add(HttpError(status, body), *openai().replies)
    turn_events = await run_turn_events(QUESTION, settings_for(scripted_openai, "gpt-4.1-mini"))
    assert turn_events[-1] == Finished(ANSWER, TOOLS_USED)
    assert ["stream_options" in b for b in scripted_openai.bodies] == [True, False, False]


async def test_an_operator_can_skip_the_probes(scripted_openai):
    scripted_openai.add(*openai().replies)
    settings = settings_for(scripted_openai, "gpt-4.1-mini", tool_choice="auto", stream_usage=False)
    turn_events = await run_turn_events(QUESTION, settings)
    assert turn_events[-1] == Finished(ANSWER, TOOLS_USED)
    assert all(b["tool_choice"] == "auto" and "stream_options" not in b for b in scripted_openai.bodies)


# -- errors say the provider's reason --------------------------------------------------------

MODEL = "gpt-4.1-mini"


def in_stream(error: dict[str, Any], **choice: Any) -> SseStream:
    first = chunk({"role": "assistant", "content": ""}, model=MODEL)
    body = {**chunk(**choice, model=MODEL), "error": error} if choice else {"error": error}
    return SseStream((*sse_events(first, body), DONE, ""))


ERRORS = {
    "422 with an object message": (
        HttpError(
            422,
            MISTRAL_STREAM_OPTIONS_422
            | {
                "message": {
                    "detail": [
                        {
                            "type": "extra_forbidden",
                            "loc": ["body", "messages", 0, "user", "name"],
                            "msg": "Extra inputs are not permitted",
                        }
                    ]
                }
            },
        ),
        "Extra inputs are not permitted",
    ),
    "a JSON-list body (Gemini)": (
        HttpError(
            400,
            [
                {
                    "error": {
                        "code": 400,
                        "message": "Function call is missing a thought_signature in functionCall parts.",
                        "status": "INVALID_ARGUMENT",
                    }
                }
            ],
        ),
        "missing a thought_signature",
    ),
    "a 502 text body": (
        HttpError(
            502, "upstream connect error or disconnect/reset before headers. reset reason: connection failure"
        ),
        "upstream connect error",
    ),
    "a 500 for tools with streaming": (
        HttpError(500, {"error": {"message": "Cannot use tools with stream", "type": "server_error"}}),
        "Cannot use tools with stream",
    ),
    "an in-stream error with finish_reason error (OpenRouter)": (
        in_stream(
            {"code": "server_error", "message": "Provider disconnected unexpectedly"},
            delta={"content": ""},
            finish_reason="error",
        ),
        "Provider disconnected unexpectedly",
    ),
    "an in-stream tool_use_failed (Groq)": (
        in_stream(
            {
                "message": "Failed to call a function. Please adjust your prompt. See 'failed_generation' for more details.",
                "type": "invalid_request_error",
                "code": "tool_use_failed",
                "failed_generation": '<function=add>{"a": 2, "b": 3}</function>',
            }
        ),
        "Failed to call a function",
    ),
}


@pytest.mark.parametrize(("reply", "reason"), ERRORS.values(), ids=ERRORS.keys())
async def test_an_error_shows_the_providers_reason(scripted_openai, reply, reason):
    scripted_openai.add(reply)
    turn_events = await run_turn_events(QUESTION, settings_for(scripted_openai, MODEL))
    failed = turn_events[-1]
    assert isinstance(failed, Failed) and failed.kind != "internal", failed
    assert reason in failed.message


async def test_a_server_that_cannot_stream_tools_is_named_in_the_message(scripted_openai):
    reply, reason = ERRORS["a 500 for tools with streaming"]
    scripted_openai.add(reply)
    turn_events = await run_turn_events(QUESTION, settings_for(scripted_openai, MODEL))
    server = scripted_openai.base_url.removeprefix("http://").split("/")[0]
    assert reason in turn_events[-1].message and server in turn_events[-1].message


# -- a finished reply that never closes ------------------------------------------------------


async def test_a_finished_reply_that_never_closes_ends_the_step_at_once(scripted_openai):
    """deepseek-ai discussion #6959: after the finish chunk only `: keep-alive` comments come."""
    step1, step2 = openai().replies
    never_closes = SseStream(tuple(line for line in step1.lines if line != DONE), hold_open_s=30)
    scripted_openai.add(never_closes, step2)
    started = time.perf_counter()
    turn_events = await run_turn_events(QUESTION, settings_for(scripted_openai, MODEL))
    assert turn_events[-1] == Finished(ANSWER, TOOLS_USED)
    assert time.perf_counter() - started < KEEP_ALIVE_BOUND_S
    closed = await asyncio.to_thread(scripted_openai.streams_ended[0].wait, KEEP_ALIVE_BOUND_S)
    assert closed, "the finished reply's connection was left open"


async def test_a_finish_chunk_without_the_asked_usage_still_ends_when_the_stream_closes(scripted_openai):
    step1, step2 = openai().replies
    finish_only = SseStream(tuple(line for line in step1.lines if '"choices": []' not in line))
    scripted_openai.add(finish_only, step2)
    turn_events = await run_turn_events(QUESTION, settings_for(scripted_openai, MODEL))
    assert turn_events[-1] == Finished(ANSWER, TOOLS_USED)
    ended = [e for e in turn_events if isinstance(e, StepEnded)]
    assert [(e.input_tokens, e.output_tokens) for e in ended] == [(0, 0), STEP2_USAGE]


# -- through the chat API --------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ollama", "gemini-split"])
async def test_the_chat_api_shows_the_answer_and_the_servers_usage(scripted_openai, name):
    import app

    dialect = DIALECTS[name]()
    scripted_openai.add(*dialect.script)
    demo = app.create_app(settings_for(scripted_openai, dialect.model), concurrency=4)
    port = free_port()
    demo.launch(server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        async with GradioChatClient(f"http://127.0.0.1:{port}") as client:
            stream = await asyncio.wait_for(client.ask(QUESTION, model=dialect.model), 30)
    finally:
        demo.close()
    titles = [(m.get("metadata") or {}).get("title", "") for m in stream.messages]
    answer = "".join(
        m["content"] for m in stream.messages if m["role"] == "assistant" and not m.get("metadata")
    )
    assert stream.completed and not any(t.startswith("⚠️") for t in titles), titles
    assert answer == ANSWER
    assert sum("🛠️ add → 5" in t for t in titles) == 1 and sum("🛠️ multiply → 20" in t for t in titles) == 1
    input_tokens, output_tokens = dialect.usage
    [footer] = [m["content"] for m in stream.messages if (m.get("metadata") or {}).get("id") == FOOTER_ID]
    assert f"{input_tokens:,} tokens in · {output_tokens:,} out" in footer, footer
