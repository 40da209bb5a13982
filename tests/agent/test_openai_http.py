"""The real ChatOpenAI path over real HTTP, against an OpenAI-compatible server on 127.0.0.1.

`llmock` runs that server (one per test session) and injects faults; nothing here
reaches the internet.
"""

import dataclasses
import time

import pytest
from llmock.scenarios import Reply, ToolCall
from pydantic import SecretStr

from agent import Settings
from agent.events import AnswerDelta, Failed, Finished, Retrying, StepEnded, ToolCallStarted, ToolResult
from support.turns import run_turn_events

QUESTION = "what is (2 + 3) * (4 + 5)?"


@pytest.fixture
def settings(llmock) -> Settings:
    return Settings(
        api_key=SecretStr("sk-test-llmock"),
        base_url=llmock.base_url(),
        model="gpt-4.1-mini",
        request_timeout_s=2,
        max_retries=2,
    )


def script_the_arithmetic_agent(llmock) -> None:
    llmock.add(Reply(tool_calls=(ToolCall("add", {"a": 2, "b": 3}), ToolCall("add", {"a": 4, "b": 5}))))
    llmock.call_tool("multiply", {"a": 5, "b": 9})
    llmock.call_tool(
        "final_answer",
        {"answer": "(2 + 3) × (4 + 5) = **45**\n“quoted” ✓", "tools_used": ["add", "multiply"]},
    )


async def test_a_multi_step_turn_with_parallel_calls_over_http(llmock, settings):
    script_the_arithmetic_agent(llmock)
    events = await run_turn_events(QUESTION, settings)

    assert events[-1] == Finished("(2 + 3) × (4 + 5) = **45**\n“quoted” ✓", ("add", "multiply"))
    started = [e for e in events if isinstance(e, ToolCallStarted)]
    assert [(e.name, e.step) for e in started] == [
        ("add", 1),
        ("add", 1),
        ("multiply", 2),
        ("final_answer", 3),
    ]
    assert len({e.call_id for e in started}) == 4 and all(e.call_id.startswith("call_") for e in started)
    assert [r.output for r in events if isinstance(r, ToolResult)][:3] == ["5", "9", "45"]
    assert "".join(e.text for e in events if isinstance(e, AnswerDelta)) == events[-1].answer
    assert all(e.input_tokens > 0 and e.output_tokens > 0 for e in events if isinstance(e, StepEnded))

    first, second, third = (r.body for r in llmock.requests)
    assert first["stream"] is True and first["stream_options"] == {"include_usage": True}
    assert first["tool_choice"] == "required"
    assert [t["function"]["name"] for t in first["tools"]] == [
        "add",
        "subtract",
        "multiply",
        "exponentiate",
        "final_answer",
    ]
    assert first["messages"][-1] == {"role": "user", "content": QUESTION}
    ids = [c["id"] for c in second["messages"][-3]["tool_calls"]]
    assert [(m["role"], m["tool_call_id"], m["content"]) for m in second["messages"][-2:]] == [
        ("tool", ids[0], "5"),
        ("tool", ids[1], "9"),
    ]
    assert third["messages"][-1]["content"] == "45"
    llmock.assert_resilient()


async def test_the_model_name_and_key_of_the_settings_are_used(llmock, settings):
    llmock.call_tool("final_answer", {"answer": "hi", "tools_used": []})
    allowed = dataclasses.replace(settings, models=("gpt-4.1-mini", "my-model"))
    await run_turn_events("hello", allowed.for_request(model="my-model"))
    assert llmock.last_request.model == "my-model"
    assert llmock.last_request.body["max_completion_tokens"] == 1024


async def test_a_rejected_key_fails_at_once_with_a_clear_message(llmock, settings):
    llmock.fail(401, times=None)
    events = await run_turn_events(QUESTION, settings)
    assert events[-1].kind == "auth" and "Check OPENAI_API_KEY" in events[-1].message
    assert "sk-test-llmock" not in events[-1].message
    assert len(llmock.requests) == 1


async def test_a_rate_limit_is_retried_after_the_requested_wait(llmock, settings):
    llmock.rate_limit(times=1, retry_after=0.3)
    script_the_arithmetic_agent(llmock)
    events = await run_turn_events(QUESTION, settings)
    [retry] = [e for e in events if isinstance(e, Retrying)]
    assert retry.attempt == 2 and retry.wait_s == pytest.approx(0.3) and "rate limiting" in retry.reason
    assert "try again" not in retry.reason  # the engine is retrying already
    assert isinstance(events[-1], Finished)
    llmock.assert_resilient()


async def test_a_long_retry_after_fails_now_instead_of_waiting(llmock, settings):
    llmock.rate_limit(times=None, retry_after=120)
    started = time.perf_counter()
    events = await run_turn_events(QUESTION, settings)
    assert time.perf_counter() - started < 2
    assert events[-1].kind == "rate_limit" and "wait 120 s" in events[-1].message


@pytest.mark.slow
async def test_server_errors_are_retried_a_bounded_number_of_times(llmock, settings):
    llmock.fail(500, times=None)
    events = await run_turn_events(QUESTION, settings)
    assert events[-1] == Failed(
        "upstream", "The model server had an error (500): Internal server error. Please try again."
    )
    retries = [e for e in events if isinstance(e, Retrying)]
    assert [e.attempt for e in retries] == [2, 3]
    assert {e.reason for e in retries} == {"The model server had an error (500): Internal server error."}
    assert len(llmock.requests) == 3
    llmock.assert_resilient()


@pytest.mark.slow
async def test_an_unreachable_server_is_a_network_failure():
    settings = Settings(api_key=SecretStr("sk-x"), base_url="http://127.0.0.1:9/v1", max_retries=1)
    events = await run_turn_events(QUESTION, settings)
    assert events[-1].kind == "network" and "Could not reach the model server" in events[-1].message


@pytest.mark.parametrize(
    ("fault", "kind", "message"),
    [
        ("disconnect", "network", "the connection dropped"),
        ("truncate", "upstream", "cut off before it finished"),
        ("corrupt", "upstream", "malformed reply"),
    ],
)
async def test_a_broken_stream_ends_the_turn_with_a_clear_message(llmock, settings, fault, kind, message):
    llmock.call_tool("add", {"a": 2, "b": 3})
    getattr(llmock, fault)(after_chunks=2)
    events = await run_turn_events(QUESTION, settings)
    assert events[-1].kind == kind and message in events[-1].message
    assert len(llmock.requests) == 1


@pytest.mark.slow
async def test_a_stalled_stream_times_out(llmock, settings):
    llmock.stall(after_chunks=2, seconds=10)
    started = time.perf_counter()
    events = await run_turn_events(QUESTION, settings)
    assert time.perf_counter() - started < 4
    assert events[-1].kind == "network" and "timed out" in events[-1].message


@pytest.mark.slow
async def test_a_request_that_times_out_is_retried(llmock, settings):
    llmock.delay(3, times=1)
    events = await run_turn_events(QUESTION, settings)
    [retry] = [e for e in events if isinstance(e, Retrying)]
    assert "timed out" in retry.reason
    assert isinstance(events[-1], Finished)


@pytest.mark.slow
async def test_a_server_that_never_answers_fails_within_the_retry_budget(llmock, settings):
    llmock.delay(3, times=None)
    settings = dataclasses.replace(settings, request_timeout_s=1)
    started = time.perf_counter()
    events = await run_turn_events(QUESTION, settings)
    assert time.perf_counter() - started < 3 * settings.request_timeout_s + 3
    assert events[-1].kind == "network" and "timed out" in events[-1].message


@pytest.mark.parametrize(
    ("kind", "error"), [("malformed_arguments", "not valid JSON"), ("unknown_tool", "no tool named")]
)
async def test_a_broken_tool_call_is_fed_back_and_the_agent_goes_on(llmock, settings, kind, error):
    llmock.break_tool_call(kind)
    events = await run_turn_events(QUESTION, settings)
    [result] = [e for e in events if isinstance(e, ToolResult) and e.is_error]
    assert error in result.output
    assert isinstance(events[-1], Finished) and events[-1].answer
    assert llmock.requests[1].body["messages"][-1]["role"] == "tool"


async def test_a_provider_error_message_is_shown_without_secrets(llmock, settings):
    llmock.fail(404, message="The model `nope` does not exist (key sk-proj-abcdef123456).")
    events = await run_turn_events(QUESTION, settings)
    assert events[-1].kind == "upstream"
    assert "does not exist" in events[-1].message and "sk-proj" not in events[-1].message


async def test_a_too_long_conversation_is_explained(llmock, settings):
    llmock.context_overflow()
    events = await run_turn_events(QUESTION, settings)
    assert events[-1].kind == "input" and "too long" in events[-1].message
