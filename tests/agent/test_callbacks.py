"""QueueCallbackHandler: model chunks in, typed events out on the turn's channel."""

import asyncio
import json

import pytest
from langchain_core.messages import AIMessageChunk
from langchain_core.outputs import ChatGenerationChunk

from agent.callbacks import QueueCallbackHandler
from agent.channel import EventChannel
from agent.events import AnswerDelta, StepStarted, TextDelta, ToolArgsDelta, ToolCallStarted
from agent.offline.model import pieces


def tool_chunk(index: int, args: str = "", name: str | None = None, call_id: str | None = None):
    message = AIMessageChunk(
        content="", tool_call_chunks=[{"name": name, "args": args, "id": call_id, "index": index}]
    )
    return ChatGenerationChunk(message=message)


async def feed(handler: QueueCallbackHandler, *chunks: ChatGenerationChunk) -> None:
    for chunk in chunks:
        await handler.on_llm_new_token("", chunk=chunk, run_id=None)


async def drain(handler: QueueCallbackHandler) -> list:
    handler.channel.close()
    async with asyncio.timeout(1):
        return [event async for event in handler.channel.events()]


def new_handler() -> QueueCallbackHandler:
    return QueueCallbackHandler(EventChannel())


async def test_parallel_tool_calls_stay_apart_by_index():
    handler = new_handler()
    handler.start_step(1)
    await feed(
        handler,
        tool_chunk(0, name="add", call_id="call_a"),
        tool_chunk(0, '{"a": 2, '),
        tool_chunk(1, name="add", call_id="call_b"),
        tool_chunk(1, '{"a": 4, "b": 5}'),
        tool_chunk(0, '"b": 3}'),
    )
    events = await drain(handler)
    assert events == [
        StepStarted(1),
        ToolCallStarted("call_a", "add", 1),
        ToolArgsDelta("call_a", '{"a": 2, '),
        ToolCallStarted("call_b", "add", 1),
        ToolArgsDelta("call_b", '{"a": 4, "b": 5}'),
        ToolArgsDelta("call_a", '"b": 3}'),
    ]
    assert [(c.call_id, c.arguments) for c in handler.reply.calls] == [
        ("call_a", '{"a": 2, "b": 3}'),
        ("call_b", '{"a": 4, "b": 5}'),
    ]


async def test_a_new_model_run_starts_its_reply_afresh_and_never_reuses_an_id():
    handler = new_handler()
    handler.start_step(1)
    await feed(handler, tool_chunk(0, name="add", call_id="0"))
    await handler.on_chat_model_start({}, [], run_id=None)
    handler.start_step(2)
    await feed(handler, tool_chunk(0, name="multiply", call_id="0"))
    started = [e for e in await drain(handler) if isinstance(e, ToolCallStarted)]
    assert [(e.name, e.step) for e in started] == [("add", 1), ("multiply", 2)]
    assert started[0].call_id == "0" and started[1].call_id != "0"
    assert [c.name for c in handler.reply.calls] == ["multiply"]


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
async def test_final_answer_text_streams_decoded_as_it_grows(answer):
    handler = new_handler()
    arguments = json.dumps({"answer": answer, "tools_used": ["add"]})  # ASCII escapes: \u00e9, \ud83c...
    await feed(handler, tool_chunk(0, name="final_answer", call_id="f"))
    await feed(
        handler,
        *(tool_chunk(0, piece) for piece in [arguments[i : i + 3] for i in range(0, len(arguments), 3)]),
    )
    deltas = [e.text for e in await drain(handler) if isinstance(e, AnswerDelta)]
    assert "".join(deltas) == answer
    assert len(deltas) > 1


async def test_plain_content_streams_as_text_of_its_step():
    handler = new_handler()
    handler.start_step(3)
    await feed(handler, *(ChatGenerationChunk(message=AIMessageChunk(content=p)) for p in pieces("It is 4.")))
    deltas = [e for e in await drain(handler) if isinstance(e, TextDelta)]
    assert "".join(e.text for e in deltas) == "It is 4." and {e.step for e in deltas} == {3}
    assert handler.reply.text == "It is 4."
