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
