"""QueueCallbackHandler: model chunks in, typed events out, and a consumer that always ends."""

import asyncio
import json

import pytest
from langchain_core.messages import AIMessageChunk
from langchain_core.outputs import ChatGenerationChunk

from agent.callbacks import QueueCallbackHandler
from agent.events import AnswerDelta, Finished, StepStarted, ToolArgsDelta, ToolCallStarted
from agent.offline import pieces


def tool_chunk(index: int, args: str = "", name: str | None = None, call_id: str | None = None):
    message = AIMessageChunk(
        content="", tool_call_chunks=[{"name": name, "args": args, "id": call_id, "index": index}]
    )
    return ChatGenerationChunk(message=message)


async def feed(handler: QueueCallbackHandler, *chunks: ChatGenerationChunk) -> None:
    for chunk in chunks:
        await handler.on_llm_new_token("", chunk=chunk, run_id=None)


async def drain(handler: QueueCallbackHandler) -> list:
    handler.close()
    async with asyncio.timeout(1):
        return [event async for event in handler.events()]


async def test_parallel_tool_calls_stay_apart_by_index():
    handler = QueueCallbackHandler()
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


async def test_calls_without_provider_ids_get_stable_ones():
    handler = QueueCallbackHandler()
    handler.start_step(2)
    await feed(handler, tool_chunk(0, name="add"), tool_chunk(1, name="multiply"))
    started = [e for e in await drain(handler) if isinstance(e, ToolCallStarted)]
    assert [e.call_id for e in started] == ["call_2_0", "call_2_1"]


async def test_a_new_model_run_starts_its_calls_afresh():
    handler = QueueCallbackHandler()
    handler.start_step(1)
    await feed(handler, tool_chunk(0, name="add", call_id="first"))
    await handler.on_chat_model_start({}, [], run_id=None)
    handler.start_step(2)
    await feed(handler, tool_chunk(0, name="multiply", call_id="second"))
    started = [e for e in await drain(handler) if isinstance(e, ToolCallStarted)]
    assert [(e.call_id, e.step) for e in started] == [("first", 1), ("second", 2)]


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
    handler = QueueCallbackHandler()
    arguments = json.dumps({"answer": answer, "tools_used": ["add"]})  # ASCII escapes: \u00e9, \ud83c...
    await feed(handler, tool_chunk(0, name="final_answer", call_id="f"))
    await feed(
        handler,
        *(tool_chunk(0, piece) for piece in [arguments[i : i + 3] for i in range(0, len(arguments), 3)]),
    )
    deltas = [e.text for e in await drain(handler) if isinstance(e, AnswerDelta)]
    assert "".join(deltas) == answer
    assert len(deltas) > 1


async def test_plain_content_streams_as_answer_text():
    handler = QueueCallbackHandler()
    await feed(handler, *(ChatGenerationChunk(message=AIMessageChunk(content=p)) for p in pieces("It is 4.")))
    assert "".join(e.text for e in await drain(handler) if isinstance(e, AnswerDelta)) == "It is 4."


async def test_events_end_after_the_terminal_event():
    handler = QueueCallbackHandler()
    handler.emit(Finished("done", ()))
    handler.emit(AnswerDelta("never read"))
    async with asyncio.timeout(1):
        events = [event async for event in handler.events()]
    assert events == [Finished("done", ())]


async def test_events_end_when_the_producer_closes_without_a_terminal_event():
    handler = QueueCallbackHandler()
    handler.emit(AnswerDelta("partial"))
    handler.close()
    async with asyncio.timeout(1):
        events = [event async for event in handler.events()]
    assert events == [AnswerDelta("partial")]


async def test_the_consumer_awaits_without_polling():
    handler = QueueCallbackHandler()
    consumer = asyncio.create_task(anext(handler.events()))
    await asyncio.sleep(0.05)
    assert not consumer.done()
    loop = asyncio.get_running_loop()
    emitted_at = loop.time()
    handler.emit(AnswerDelta("x"))
    assert await consumer == AnswerDelta("x")
    assert loop.time() - emitted_at < 0.05


async def test_batches_send_the_first_event_at_once_then_one_group_per_frame():
    handler = QueueCallbackHandler()
    loop = asyncio.get_running_loop()
    received: list[tuple[float, list]] = []

    async def consume():
        async for batch in handler.batches(lambda: 0.1):
            received.append((loop.time(), batch))

    consumer = asyncio.create_task(consume())
    started = loop.time()
    handler.emit(AnswerDelta("a"))
    await asyncio.sleep(0.02)
    for text in "bcd":
        handler.emit(AnswerDelta(text))
        await asyncio.sleep(0.01)
    handler.emit(Finished("abcd", ()))
    async with asyncio.timeout(1):
        await consumer
    assert [[e.text if isinstance(e, AnswerDelta) else "end" for e in batch] for _, batch in received] == [
        ["a"],
        ["b", "c", "d", "end"],
    ]
    assert received[0][0] - started < 0.02
    assert received[1][0] - received[0][0] >= 0.09


async def test_batches_end_at_close_and_after_a_quiet_spell_the_next_event_is_immediate():
    handler = QueueCallbackHandler()
    loop = asyncio.get_running_loop()
    times = []

    async def consume():
        async for _ in handler.batches(lambda: 0.05):
            times.append(loop.time())

    consumer = asyncio.create_task(consume())
    handler.emit(AnswerDelta("a"))
    await asyncio.sleep(0.2)
    emitted = loop.time()
    handler.emit(AnswerDelta("b"))
    await asyncio.sleep(0.01)
    handler.close()
    async with asyncio.timeout(1):
        await consumer
    assert len(times) == 2 and times[1] - emitted < 0.02
