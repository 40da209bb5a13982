import asyncio

from agent import EventChannel, ServerSettings
from agent.events import AnswerDelta, Finished
from ui.pacing import UpdateBudget, paced


def test_the_frame_grows_with_active_streams_to_keep_the_server_budget():
    budget = UpdateBudget(min_frame_s=0.04, updates_per_s=500)
    assert budget.frame_s() == 0.04
    with budget.stream():
        assert budget.frame_s() == 0.04
    streams = [budget.stream() for _ in range(100)]
    for stream in streams:
        stream.__enter__()
    assert budget.active == 100 and budget.frame_s() == 0.2
    for stream in streams:
        stream.__exit__(None, None, None)
    assert budget.active == 0


def test_a_stream_that_fails_still_leaves_the_budget():
    budget = UpdateBudget()
    try:
        with budget.stream():
            raise RuntimeError
    except RuntimeError:
        pass
    assert budget.active == 0


def test_the_budget_follows_the_server_settings():
    assert UpdateBudget.from_server(ServerSettings()) == UpdateBudget(min_frame_s=0.04, updates_per_s=650)
    assert UpdateBudget.from_server(ServerSettings(ui_frame_ms=0, ui_updates_per_s=325)) == UpdateBudget(
        0, 325
    )


def test_pacing_can_be_switched_off():
    budget = UpdateBudget(min_frame_s=0, updates_per_s=0)
    with budget.stream():
        assert budget.frame_s() == 0


async def test_batches_send_the_first_event_at_once_then_one_group_per_frame():
    channel = EventChannel()
    loop = asyncio.get_running_loop()
    received: list[tuple[float, list]] = []

    async def consume():
        async for batch in paced(channel, lambda: 0.1):
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
        async for _ in paced(channel, lambda: 0.05):
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
