"""EventChannel: a per-turn queue the consumer awaits, and that always ends."""

import asyncio

from agent.channel import EventChannel
from agent.events import AnswerDelta, Finished


async def test_events_end_after_the_terminal_event():
    channel = EventChannel()
    channel.emit(Finished("done", ()))
    channel.emit(AnswerDelta("never read"))
    async with asyncio.timeout(1):
        events = [event async for event in channel.events()]
    assert events == [Finished("done", ())]


async def test_events_end_when_the_producer_closes_without_a_terminal_event():
    channel = EventChannel()
    channel.emit(AnswerDelta("partial"))
    channel.close()
    async with asyncio.timeout(1):
        events = [event async for event in channel.events()]
    assert events == [AnswerDelta("partial")]


async def test_the_consumer_awaits_without_polling():
    channel = EventChannel()
    consumer = asyncio.create_task(anext(channel.events()))
    await asyncio.sleep(0.05)
    assert not consumer.done()
    loop = asyncio.get_running_loop()
    emitted_at = loop.time()
    channel.emit(AnswerDelta("x"))
    assert await consumer == AnswerDelta("x")
    assert loop.time() - emitted_at < 0.05


async def test_batches_send_the_first_event_at_once_then_one_group_per_frame():
    channel = EventChannel()
    loop = asyncio.get_running_loop()
    received: list[tuple[float, list]] = []

    async def consume():
        async for batch in channel.batches(lambda: 0.1):
            received.append((loop.time(), batch))

    consumer = asyncio.create_task(consume())
    started = loop.time()
    channel.emit(AnswerDelta("a"))
    await asyncio.sleep(0.02)
    for text in "bcd":
        channel.emit(AnswerDelta(text))
        await asyncio.sleep(0.01)
    channel.emit(Finished("abcd", ()))
    async with asyncio.timeout(1):
        await consumer
    assert [[e.text if isinstance(e, AnswerDelta) else "end" for e in batch] for _, batch in received] == [
        ["a"],
        ["b", "c", "d", "end"],
    ]
    assert received[0][0] - started < 0.02
    assert received[1][0] - received[0][0] >= 0.09


async def test_batches_end_at_close_and_after_a_quiet_spell_the_next_event_is_immediate():
    channel = EventChannel()
    loop = asyncio.get_running_loop()
    times = []

    async def consume():
        async for _ in channel.batches(lambda: 0.05):
            times.append(loop.time())

    consumer = asyncio.create_task(consume())
    channel.emit(AnswerDelta("a"))
    await asyncio.sleep(0.2)
    emitted = loop.time()
    channel.emit(AnswerDelta("b"))
    await asyncio.sleep(0.01)
    channel.close()
    async with asyncio.timeout(1):
        await consumer
    assert len(times) == 2 and times[1] - emitted < 0.02
