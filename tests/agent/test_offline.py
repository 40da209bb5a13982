"""The offline model, played end to end through the executor: questions in, plans and answers out."""

import time

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage

from agent import Settings
from agent.events import AnswerDelta, Failed, Finished, ToolCallStarted, ToolResult
from agent.offline import OfflineArithmeticModel, reading
from agent.offline import model as offline_model
from agent.offline.model import argument_chunk, next_reply, pieces, stream_chunks
from support.turns import run_turn_events

A = ("add",)
M = ("multiply",)
E = ("exponentiate",)
S = ("subtract",)

# question, answer value, tool calls per step (each step's calls run in parallel)
QUESTIONS = [
    ("what is 10 plus 10", "20", [A]),
    ("what is (2 + 3) * (4 + 5)?", "45", [("add", "add"), M]),
    ("2 to the power of 10", "1024", [E]),
    ("2 + 3 * 4", "14", [M, A]),
    ("(2 + 3) * 4", "20", [A, M]),
    ("10 - 4 - 3", "3", [A, S]),
    ("2 ^ 3 ^ 2", "512", [E, E]),
    ("-2 ^ 2", "-4", [E, S]),
    ("(-2) ^ 2", "4", [E]),
    ("3.5 * -2", "-7", [M]),
    ("0.1 + 0.2", "0.3", [A]),
    ("10 / 4", "2.5", [E, M]),
    ("1 + 2 + 3 + 4 + 5 + 6 + 7 + 8", "36", [A * 4, A * 2, A]),
    ("what is 7 times 6?", "42", [M]),
    ("12 divided by 3", "4", [E, M]),
    ("9 minus 12", "-3", [S]),
    ("five plus seven", "12", [A]),
    ("twenty-one times two", "42", [M]),
    ("two hundred fifty-one plus nine", "260", [A]),
    ("square root of 16 plus 9", "13", [E, A]),
    ("sqrt(16 + 9)", "5", [A, E]),
    ("5 squared", "25", [E]),
    ("3 cubed minus 7", "20", [E, S]),
    ("2(3 + 4)", "14", [A, M]),
    ("1,000 x 3", "3000", [M]),
    ("multiply 6 by 7", "42", [M]),
    ("subtract 3 from 10", "7", [S]),
    ("add 2.5 and 2.5", "5", [A]),
    ("2 ** 8", "256", [E]),
    ("6 × 7 ÷ 2", "21", [("multiply", "exponentiate"), M]),
    ("(1 + 2) * (3 + 4) * (5 + 6)", "231", [A * 3, M, M]),
    ("((((1 + 1))))", "2", [A]),
    ("1e3 + 1", "1001", [A]),
    ("-(2 + 3)", "-5", [A, S]),
    ("2 - -3", "5", [S]),
    ("100 / 8 / 5", "2.5", [M, E, M]),
    ("0.5 ^ -2", "4", [E]),
    ("1 / 3", "0.333333333333", [E, M]),
    ("(1.5 + 2.5) * (10 - 4) / 3", "8", [("add", "subtract", "exponentiate"), M, M]),
    ("What's 2+2? Thanks!", "4", [A]),
]


def tool_steps(events) -> list[tuple[str, ...]]:
    steps: dict[int, list[str]] = {}
    for event in events:
        if isinstance(event, ToolCallStarted) and event.name != "final_answer":
            steps.setdefault(event.step, []).append(event.name)
    return [tuple(names) for _, names in sorted(steps.items())]


def test_the_table_is_large_enough():
    assert len(QUESTIONS) >= 30


@pytest.mark.parametrize(("question", "value", "steps"), QUESTIONS, ids=[q for q, _, _ in QUESTIONS])
async def test_offline_model_plans_and_answers(question, value, steps, offline_settings):
    events = await run_turn_events(question, offline_settings)
    finished = events[-1]
    assert isinstance(finished, Finished), finished
    assert finished.answer.endswith(f"= **{value}**")
    assert tool_steps(events) == steps
    assert "".join(e.text for e in events if isinstance(e, AnswerDelta)) == finished.answer
    assert not [e for e in events if isinstance(e, ToolResult) and e.is_error]


# read through Python's own expression grammar: its precedence, signs and literals
MORE_QUESTIONS = [
    ("2**3**2", "512", [E, E]),
    ("-2**2", "-4", [E, S]),
    ("- - 3 + 1", "4", [A]),
    ("2 ^ -1", "0.5", [E]),
    ("(2)(3)", "6", [M]),
    ("seven point five times two", "15", [M]),
    ("three point one four times two", "6.28", [M]),
    ("one thousand two hundred and five minus five", "1200", [S]),
    ("(1 + 2) + 3", "6", [A, A]),
    ("007 + 1", "8", [A]),
]


@pytest.mark.parametrize(
    ("question", "value", "steps"), MORE_QUESTIONS, ids=[q for q, _, _ in MORE_QUESTIONS]
)
async def test_python_grammar_decides_precedence_and_signs(question, value, steps, offline_settings):
    events = await run_turn_events(question, offline_settings)
    assert events[-1].answer.endswith(f"= **{value}**")
    assert tool_steps(events) == steps


async def test_a_division_by_zero_found_mid_plan_is_explained(offline_settings):
    events = await run_turn_events("5 / (2 - 2)", offline_settings)
    assert tool_steps(events) == [S, E]
    assert events[-1].answer == (
        "I could not compute 5 / (2 - 2): 0 cannot be raised to a negative power (that is a division by zero)."
    )


async def test_a_power_too_large_for_the_tools_is_refused_with_its_size(offline_settings):
    events = await run_turn_events("2 ^ 5000", offline_settings)
    assert events[-1].answer == (
        "I could not compute 2 ^ 5000: 2 ** 5000 would have about 1,505 digits; the limit is 1,000."
    )


async def test_a_number_too_large_for_a_float_is_refused_before_any_tool_runs(offline_settings):
    events = await run_turn_events("1e999 + 1", offline_settings)
    assert "A number in the question is too large for the tools." in events[-1].answer
    assert tool_steps(events) == []


@pytest.mark.parametrize(
    "question",
    [
        "what is the capital of France?",
        "__import__('os').system('rm -rf /')",
        "2 +",
        "(2 + 3",
        "what is 2 % 3",
    ],
)
async def test_what_is_not_arithmetic_gets_the_same_honest_introduction(question, offline_settings):
    events = await run_turn_events(question, offline_settings)
    assert events[-1].answer.startswith("I'm the **offline model**")
    assert "can only do arithmetic" in events[-1].answer
    assert tool_steps(events) == []


@pytest.fixture
def never_parsed(monkeypatch):
    """Fails the test if the question reaches Python's parser: what is too big is refused before."""

    def parse(*args, **kwargs):
        raise AssertionError("the question was parsed before it was refused")

    monkeypatch.setattr(reading.ast, "parse", parse)


async def test_a_long_run_of_signs_is_refused_before_it_is_parsed(offline_settings, never_parsed):
    events = await run_turn_events("- " * 1900 + "1", offline_settings)
    assert "more than 128 operators" in events[-1].answer


async def test_a_long_chain_of_follow_ups_is_read_without_recursion(offline_settings):
    history = [HumanMessage("1 + 1"), AIMessage("1 + 1 = **2**")]
    for value in range(2, 1200):
        history += [HumanMessage("plus 1"), AIMessage(f"{value} + 1 = **{value + 1}**")]
    events = await run_turn_events("plus 1", offline_settings, history)
    assert events[-1].answer == "1200 + 1 = **1201**"


def test_steps_that_do_not_match_the_plan_end_the_turn_honestly():
    work = [
        HumanMessage("2 + 3"),
        AIMessage("", tool_calls=[{"name": "multiply", "args": {"a": 2, "b": 3}, "id": "call_1"}]),
        ToolMessage("6", tool_call_id="call_1"),
    ]
    reply = next_reply(work, {"add", "multiply"})
    assert reply.text == "I lost track of the steps for 2 + 3; please ask again."


@pytest.mark.parametrize("question", ["hello", "who are you?", "write me a poem", "what is 5?"])
async def test_anything_but_arithmetic_gets_an_honest_introduction(question, offline_settings):
    events = await run_turn_events(question, offline_settings)
    assert isinstance(events[-1], Finished)
    assert "offline model" in events[-1].answer
    assert "OPENAI_API_KEY" in events[-1].answer
    assert tool_steps(events) == []


async def test_operations_without_a_tool_are_named(offline_settings):
    events = await run_turn_events("what is log 100?", offline_settings)
    assert "no tool for “log”" in events[-1].answer


async def test_division_by_zero_is_explained(offline_settings):
    events = await run_turn_events("what is 1 / 0", offline_settings)
    errors = [e for e in events if isinstance(e, ToolResult) and e.is_error]
    assert [e.name for e in errors] == ["exponentiate"]
    assert events[-1].answer.startswith("I could not compute 1 / 0: 0 cannot be raised to a negative power")


async def test_an_exponent_bomb_is_refused_from_its_estimated_size(offline_settings):
    # Computing 10 ^ 10 ^ 10 would never end: that this test ends shows it was not computed.
    events = await run_turn_events("what is 10 ^ 10 ^ 10?", offline_settings)
    assert "digits; the limit is 1,000" in events[-1].answer


async def test_deep_nesting_is_refused_before_it_is_parsed(never_parsed):
    events = await run_turn_events(
        "(" * 3000 + "1 + 1" + ")" * 3000, Settings(offline_token_delay_ms=0, max_input_chars=10_000)
    )
    assert "nested more than" in events[-1].answer


@pytest.mark.parametrize(
    ("follow_up", "value"),
    [
        ("times 4", "20"),
        ("multiply that by 3", "15"),
        ("what is the result plus 1?", "6"),
        ("that squared", "25"),
        ("minus 3", "2"),
        ("what is 2 + 3, times 4", "20"),
    ],
)
async def test_follow_up_questions_use_the_previous_answer(follow_up, value, offline_settings):
    history = [HumanMessage("what is 2 + 3?"), AIMessage("2 + 3 = **5**")]
    events = await run_turn_events(follow_up, offline_settings, history)
    assert events[-1].answer.endswith(f"= **{value}**")


async def test_a_reference_without_history_is_explained(offline_settings):
    events = await run_turn_events("times 4", offline_settings)
    assert "no earlier result" in events[-1].answer


def test_pieces_join_back_to_the_text():
    text = '{"answer": "(2 + 3) * 4 = **20** — ok\\n", "tools_used": ["add"]}'
    assert "".join(pieces(text)) == text
    assert len(pieces(text)) > 10


def test_stream_chunks_look_like_openai_tool_call_deltas():
    reply = next_reply([HumanMessage("(2 + 3) * (4 + 5)")], {"add", "multiply", "final_answer"})
    chunks = stream_chunks(reply)
    headers = [c.tool_call_chunks[0] for c in chunks if c.tool_call_chunks and c.tool_call_chunks[0]["name"]]
    assert [(h["name"], h["index"], h["args"]) for h in headers] == [("add", 0, ""), ("add", 1, "")]
    assert all(h["id"].startswith("call_") for h in headers)
    merged = chunks[0] + chunks[1:]
    assert [c["args"] for c in merged.tool_calls] == [{"a": 2, "b": 3}, {"a": 4, "b": 5}]
    assert merged.response_metadata["finish_reason"] == "tool_calls"


@pytest.mark.parametrize(
    "arguments",
    [
        '{"a": 2, "b": 3}',
        '{"a": -1.5e+20, "b": 0.1}',
        '{"answer": "(2 + 3) * 4 = **20** \u2014 \\"ok\\"\\n", "tools_used": ["add", "multiply"]}',
        '{"nested": {"list": [1, {"x": null}], "t": true}}',
    ],
)
def test_argument_chunks_equal_the_ones_langchain_builds(arguments):
    """The offline model's argument chunks are copies of ones built once: each must be what
    LangChain's own validation makes of the piece (its partial-JSON `tool_calls`), field for field."""
    for index in (0, 1):
        for piece in pieces(arguments):
            chunk = argument_chunk(piece, index)
            built = AIMessageChunk(
                content="", tool_call_chunks=[{"name": None, "args": piece, "id": None, "index": index}]
            )
            assert chunk.__dict__ == built.__dict__
            assert chunk.model_fields_set == built.model_fields_set


def test_argument_chunks_share_nothing_mutable():
    piece = '{"a": {"b'
    first = argument_chunk(piece, 0)
    assert first.tool_calls[0]["args"] == {"a": {}}
    first.tool_calls[0]["args"]["a"]["changed"] = True
    first.tool_call_chunks[0]["args"] = "changed"
    first.additional_kwargs["changed"] = True
    first.response_metadata["changed"] = True
    second = argument_chunk(piece, 0)
    built = AIMessageChunk(
        content="", tool_call_chunks=[{"name": None, "args": piece, "id": None, "index": 0}]
    )
    assert second.__dict__ == built.__dict__


def test_without_final_answer_bound_the_answer_is_plain_content():
    reply = next_reply([HumanMessage("what is 7 times 6")], {"multiply"})
    assert reply.tool_calls[0]["name"] == "multiply"
    reply = next_reply([HumanMessage("hi")], {"multiply"})
    assert not reply.tool_calls and "offline model" in reply.text


@pytest.mark.slow
async def test_the_offline_model_streams_at_the_configured_pace():
    model = OfflineArithmeticModel(token_delay_ms=10)
    bound = model.bind_tools([])
    started = time.perf_counter()
    chunks = [c async for c in bound.astream([HumanMessage("hello")])]
    elapsed = time.perf_counter() - started
    assert len(chunks) > 20
    assert elapsed >= (len(chunks) - 2) * 0.010 * 0.9


async def test_a_reader_that_fell_behind_gets_the_chunks_already_due_at_once(monkeypatch):
    """A busy server (here: the loop blocked for ten chunks' time) does not slow the model down:
    the chunks due meanwhile come without another wait, as from a socket's buffer."""
    waits: list[float] = []
    real_sleep = offline_model.asyncio.sleep

    async def recorded_sleep(seconds: float) -> None:
        waits.append(seconds)
        await real_sleep(seconds)

    monkeypatch.setattr(offline_model.asyncio, "sleep", recorded_sleep)
    stream = OfflineArithmeticModel(token_delay_ms=20).bind_tools([]).astream([HumanMessage("hello")])
    await anext(stream)
    time.sleep(0.2)  # the server is busy: the loop runs nothing else meanwhile
    waits_per_chunk = [len(waits) async for _ in stream]
    # (Counted across the loop: other tasks' sleeps too, but none can run while the stream does not wait.)
    assert len(set(waits_per_chunk[:5])) == 1
    assert waits_per_chunk[-1] > waits_per_chunk[0]  # the later chunks come at the model's pace again


def test_sync_invoke_gives_the_same_plan():
    reply = OfflineArithmeticModel().bind_tools([]).invoke([HumanMessage("hello")])
    assert "offline model" in reply.text


async def test_a_failed_turn_is_never_reported_as_an_offline_answer(offline_settings):
    events = await run_turn_events("   ", offline_settings)
    assert isinstance(events[-1], Failed) and events[-1].kind == "input"


async def test_a_follow_up_after_a_refusal_uses_the_last_answer_not_the_refusal(offline_settings):
    history = [HumanMessage("2 + 3"), AIMessage("2 + 3 = **5**")]
    refused = await run_turn_events("what's 15% of 200", offline_settings, history)
    history += [HumanMessage("what's 15% of 200"), AIMessage(refused[-1].answer)]
    events = await run_turn_events("times 4", offline_settings, history)
    assert events[-1].answer == "5 * 4 = **20**"


async def test_a_follow_up_uses_the_exact_value_not_the_rounded_one(offline_settings):
    history = [HumanMessage("1 / 3"), AIMessage("1 / 3 = **0.333333333333**")]
    events = await run_turn_events("times 3", offline_settings, history)
    assert events[-1].answer == "0.333333333333 * 3 = **1**"
    multiply = next(e for e in events if isinstance(e, ToolResult) and e.name == "multiply")
    assert multiply.output == "1"


async def test_a_follow_up_to_another_models_answer_takes_its_last_number(offline_settings):
    history = [HumanMessage("how many legs do 3 spiders have?"), AIMessage("They have 24 legs.")]
    events = await run_turn_events("plus 1", offline_settings, history)
    assert events[-1].answer == "24 + 1 = **25**"
