"""Stop as a signal: the running chat notices it between updates and ends the turn itself."""

import asyncio
from collections.abc import AsyncIterator

from ui.stopping import StopSignals, until_set


async def ticks(count: int, every_s: float) -> AsyncIterator[int]:
    for tick in range(count):
        await asyncio.sleep(every_s)
        yield tick


async def test_until_set_passes_items_through_until_the_source_ends():
    assert [tick async for tick in until_set(ticks(3, 0), asyncio.Event())] == [0, 1, 2]


async def test_until_set_stops_while_waiting_for_the_next_item():
    stop = asyncio.Event()
    seen = []
    asyncio.get_running_loop().call_later(0.05, stop.set)
    async with asyncio.timeout(1):  # the source would take 100 s
        async for tick in until_set(ticks(100, 1.0), stop):
            seen.append(tick)
    assert seen == []


async def test_until_set_leaves_no_task_behind():
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(0.05, stop.set)
    before = len(asyncio.all_tasks())
    async for _ in until_set(ticks(100, 1.0), stop):
        pass
    assert len(asyncio.all_tasks()) == before


async def test_a_signal_reaches_only_its_own_session_while_its_turn_runs():
    signals = StopSignals()
    with signals.watch("a") as a, signals.watch("b") as b:
        assert signals.stop("a") is True
        assert a.is_set() and not b.is_set()
    assert signals.stop("a") is False, "no turn running: nothing to stop"
