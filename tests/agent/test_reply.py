"""ReplyAssembler: each way servers split tool calls, assembled into the calls that were meant.

These are chunk-level cases; `test_dialects.py` runs the same shapes over real HTTP.
"""

import json
import re
from typing import Any

import pytest
from langchain_core.messages import AIMessageChunk

from agent.events import AnswerDelta, ReasoningDelta, TextDelta, ToolArgsDelta, ToolCallStarted
from agent.offline.model import pieces
from agent.reply import REASONING, TOOL_CALL_EXTRAS, ReplyAssembler

ADD = '{"a": 2, "b": 3}'
MULTIPLY = '{"a": 4, "b": 5}'


def piece(name: str | None = None, args: Any = "", call_id: str | None = None, index: int | None = 0):
    return {"name": name, "args": args, "id": call_id, "index": index}


def chunk(*pieces: dict, **kwargs: Any) -> AIMessageChunk:
    return AIMessageChunk(content=kwargs.pop("content", ""), tool_call_chunks=list(pieces), **kwargs)


def assemble(*chunks: AIMessageChunk, taken: set[str] | None = None) -> tuple[ReplyAssembler, list]:
    assembler = ReplyAssembler(1, taken if taken is not None else set())
    events = [event for c in chunks for event in assembler.add(c)]
    return assembler, events


def calls_of(assembler: ReplyAssembler) -> list[tuple[str, dict]]:
    return [(c.name, json.loads(c.arguments)) for c in assembler.reply.calls]


def split(text: str, size: int = 4) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


EXPECTED = [("add", {"a": 2, "b": 3}), ("multiply", {"a": 4, "b": 5})]

SHAPES = {
    "openai: header then argument pieces, by index": [
        chunk(piece("add", "", "call_1", 0)),
        *(chunk(piece(None, p, None, 0)) for p in split(ADD)),
        chunk(piece("multiply", "", "call_2", 1)),
        *(chunk(piece(None, p, None, 1)) for p in split(MULTIPLY)),
    ],
    "ollama today: every call at index 0 with its own id": [
        chunk(piece("add", ADD, "call_a", 0)),
        chunk(piece("multiply", MULTIPLY, "call_b", 0)),
    ],
    "old ollama and gemini: no index, whole calls": [
        chunk(piece("add", ADD, None, None)),
        chunk(piece("multiply", MULTIPLY, None, None)),
    ],
    "gemini: no index, arguments split over id-less pieces": [
        chunk(piece("add", ADD[:7], "g1", None)),
        chunk(piece(None, ADD[7:], None, None)),
        chunk(piece("multiply", MULTIPLY[:5], "g2", None)),
        chunk(piece(None, MULTIPLY[5:], None, None)),
    ],
    "llama.cpp and litellm: name (and id) repeated on every delta": [
        *(chunk(piece("add", p, "call_x", 0)) for p in split(ADD)),
        *(chunk(piece("multiply", p, "call_y", 1)) for p in split(MULTIPLY)),
    ],
    "llama.cpp: name repeated, no ids": [
        *(chunk(piece("add", p, None, 0)) for p in split(ADD)),
        *(chunk(piece("multiply", p, None, 1)) for p in split(MULTIPLY)),
    ],
    "lm studio: empty ids and empty names on continuations": [
        chunk(piece("add", "", "", 0)),
        *(chunk(piece("", p, "", 0)) for p in split(ADD)),
        chunk(piece("multiply", "", "", 1)),
        *(chunk(piece("", p, "", 1)) for p in split(MULTIPLY)),
    ],
    "vllm: id-less continuation goes to the latest call at that index": [
        chunk(piece("add", ADD, "v1", 0)),
        chunk(piece("multiply", MULTIPLY[:6], "v2", 0)),
        chunk(piece(None, MULTIPLY[6:], None, 0)),
    ],
    "litellm: a trailing summary chunk repeats each call in full": [
        chunk(piece("add", ADD[:6], "s1", 0)),
        chunk(piece(None, ADD[6:], None, 0)),
        chunk(piece("multiply", MULTIPLY, "s2", 1)),
        chunk(piece("add", ADD, "s1", 0), piece("multiply", MULTIPLY, "s2", 1)),
    ],
    "same tool twice at index 0 without ids": [
        chunk(piece("add", ADD, None, 0)),
        chunk(piece("add", '{"a": 7, "b": 8}', None, 0)),
    ],
}


@pytest.mark.parametrize("shape", SHAPES)
def test_every_server_shape_assembles_the_calls_that_were_meant(shape):
    assembler, events = assemble(*SHAPES[shape])
    expected = EXPECTED if "twice" not in shape else [EXPECTED[0], ("add", {"a": 7, "b": 8})]
    assert calls_of(assembler) == expected
    started = [e for e in events if isinstance(e, ToolCallStarted)]
    assert [(e.call_id, e.name) for e in started] == [(c.call_id, c.name) for c in assembler.reply.calls]
    for call in assembler.reply.calls:  # what the display shows is what runs
        shown = "".join(e.text for e in events if isinstance(e, ToolArgsDelta) and e.call_id == call.call_id)
        assert shown == call.arguments
    assert len({c.call_id for c in assembler.reply.calls}) == len(assembler.reply.calls)


def test_missing_ids_are_generated_as_nine_alphanumerics():
    assembler, _ = assemble(*SHAPES["old ollama and gemini: no index, whole calls"])
    assert all(re.fullmatch(r"[A-Za-z0-9]{9}", c.call_id) for c in assembler.reply.calls)


def test_an_id_used_earlier_in_the_turn_is_replaced_so_steps_never_share_one():
    taken: set[str] = set()
    first, _ = assemble(chunk(piece("add", ADD, "0", 0)), taken=taken)
    second, _ = assemble(chunk(piece("multiply", MULTIPLY, "0", 0)), taken=taken)
    assert first.reply.calls[0].call_id == "0"
    assert second.reply.calls[0].call_id != "0" and second.reply.calls[0].provider_id == "0"


def test_a_call_is_shown_only_once_its_name_is_known():
    _, events = assemble(chunk(piece(None, '{"a": 2', "late", 0)), chunk(piece("add", ', "b": 3}', None, 0)))
    assert events == [ToolCallStarted("late", "add", 1), ToolArgsDelta("late", ADD)]


def test_usage_repeated_or_cumulative_is_never_summed():
    usage = {"input_tokens": 30, "output_tokens": 5, "total_tokens": 35}
    assembler, _ = assemble(
        chunk(content="a", usage_metadata={"input_tokens": 30, "output_tokens": 1, "total_tokens": 31}),
        chunk(content="b", usage_metadata=usage),
        chunk(usage_metadata=usage, response_metadata={"finish_reason": "stop"}),
    )
    reply = assembler.reply
    assert (reply.input_tokens, reply.output_tokens, reply.usage_reported) == (30, 5, True)
    assert reply.finish_reason == "stop" and reply.text == "ab"


def test_reasoning_and_text_are_events_of_their_step_and_kept_on_the_reply():
    assembler, events = assemble(
        chunk(additional_kwargs={REASONING: "Two sums. "}),
        chunk(content="Let me work that out."),
        chunk(piece("add", ADD, "c1", 0)),
    )
    assert events[:2] == [ReasoningDelta(1, "Two sums. "), TextDelta(1, "Let me work that out.")]
    assert assembler.reply.reasoning == "Two sums. " and assembler.reply.text == "Let me work that out."


def test_provider_fields_of_a_call_are_kept_for_sending_back():
    signature = {"extra_content": {"google": {"thought_signature": "c2ln"}}}
    assembler, _ = assemble(
        chunk(piece("add", ADD, "g1", None), additional_kwargs={TOOL_CALL_EXTRAS: [signature]}),
    )
    assert assembler.reply.calls[0].extras == signature


def test_parallel_tool_calls_stay_apart_by_index():
    assembler, events = assemble(
        chunk(piece("add", call_id="call_a")),
        chunk(piece(args='{"a": 2, ')),
        chunk(piece("add", call_id="call_b", index=1)),
        chunk(piece(args='{"a": 4, "b": 5}', index=1)),
        chunk(piece(args='"b": 3}')),
    )
    assert events == [
        ToolCallStarted("call_a", "add", 1),
        ToolArgsDelta("call_a", '{"a": 2, '),
        ToolCallStarted("call_b", "add", 1),
        ToolArgsDelta("call_b", '{"a": 4, "b": 5}'),
        ToolArgsDelta("call_a", '"b": 3}'),
    ]
    assert [(c.call_id, c.arguments) for c in assembler.reply.calls] == [
        ("call_a", '{"a": 2, "b": 3}'),
        ("call_b", '{"a": 4, "b": 5}'),
    ]


@pytest.mark.parametrize(
    "answer",
    [
        "plain words",
        'quotes " and \\ backslashes',
        "lines\nand\ttabs",
        "unicode é ü — ≠ and emoji 🎉👩‍🔬",
        "**Markdown** with `code`",
    ],
)
def test_final_answer_text_streams_decoded_as_it_grows(answer):
    arguments = json.dumps({"answer": answer, "tools_used": ["add"]})  # ASCII escapes: \u00e9, \ud83c...
    _, events = assemble(
        chunk(piece("final_answer", call_id="f")), *(chunk(piece(args=part)) for part in split(arguments, 3))
    )
    deltas = [e.text for e in events if isinstance(e, AnswerDelta)]
    assert "".join(deltas) == answer
    assert len(deltas) > 1


def test_plain_content_streams_as_text_of_its_step():
    assembler = ReplyAssembler(3, set())
    events = [e for part in pieces("It is 4.") for e in assembler.add(AIMessageChunk(content=part))]
    assert "".join(e.text for e in events) == "It is 4." and {e.step for e in events} == {3}
    assert assembler.reply.text == "It is 4."
