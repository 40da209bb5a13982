import asyncio
import logging
import re
import time

import pytest

from agent import EventChannel, ServerSettings
from agent.events import AnswerDelta, Finished
from ui.pacing import MAX_FRAME_S, UpdateBudget, loop_thread_demand, paced


def steady(budget: UpdateBudget, busy_share: float, late_s: float = 0.0, probes: int = 100) -> list[float]:
    """The frame after each of `probes` identical readings."""
    frames = []
    for _ in range(probes):
        budget.observe(busy_share, late_s)
        frames.append(budget.frame_s())
    return frames


def test_a_calm_loop_keeps_the_base_frame():
    budget = UpdateBudget(min_frame_s=0.04, updates_per_s=0)
    assert set(steady(budget, busy_share=0.3, late_s=0.001)) == {0.04}


@pytest.mark.parametrize(("busy_share", "late_s"), [(0.95, 0.0), (0.4, 0.03)])
def test_a_busy_or_late_loop_grows_the_frame_up_to_its_limit(busy_share, late_s):
    budget = UpdateBudget(min_frame_s=0.04, updates_per_s=0)
    frames = steady(budget, busy_share, late_s)
    assert frames == sorted(frames) and frames[-1] == MAX_FRAME_S


def test_the_frame_shrinks_back_to_the_base_when_the_pressure_goes():
    budget = UpdateBudget(min_frame_s=0.04, updates_per_s=0)
    steady(budget, busy_share=1.0)
    frames = steady(budget, busy_share=0.1)
    assert frames == sorted(frames, reverse=True) and frames[-1] == 0.04


def test_a_frame_that_fits_is_held_not_hunted():
    """A loop whose busy share falls with the frame, as a server's does: 100 chats, each update
    costing 1 ms of the loop, on top of 10 % of other work. The frame settles and stays put."""
    budget = UpdateBudget(min_frame_s=0.04, updates_per_s=0)
    frames = []
    for _ in range(400):
        budget.observe(busy_share=min(1.0, 0.1 + 100 * 0.001 / budget.frame_s()), late_s=0.0)
        frames.append(budget.frame_s())
    settled = frames[100:]
    assert min(settled) > 0.12 and max(settled) < 0.3
    assert len(set(frames[200:])) == 1, "the frame still moves after settling"


def test_the_fixed_budget_is_an_upper_limit_on_top_of_the_measured_frame():
    budget = UpdateBudget(min_frame_s=0.04, updates_per_s=500)
    budget.active = 100
    assert budget.frame_s() == 0.2
    steady(budget, busy_share=1.0)
    assert budget.frame_s() == MAX_FRAME_S
    adaptive_only = UpdateBudget(min_frame_s=0.04, updates_per_s=0)
    adaptive_only.active = 100
    assert adaptive_only.frame_s() == 0.04


def test_the_budget_follows_the_server_settings():
    assert UpdateBudget.from_server(ServerSettings()) == UpdateBudget(min_frame_s=0.04, updates_per_s=0)
    assert UpdateBudget.from_server(ServerSettings(ui_frame_ms=0, ui_updates_per_s=325)) == UpdateBudget(
        0, 325
    )


def test_pacing_can_be_switched_off():
    budget = UpdateBudget(min_frame_s=0, updates_per_s=650)
    budget.active = 100
    steady(budget, busy_share=1.0)
    assert budget.frame_s() == 0


async def test_the_probe_runs_while_a_chat_streams_and_stops_with_the_last(caplog):
    caplog.set_level(logging.INFO, logger="ui.pacing")
    budget = UpdateBudget(min_frame_s=0.04, updates_per_s=0)
    with budget.stream():
        with budget.stream():
            assert budget.active == 2
            probe = budget._probe
            assert probe is not None and not probe.done()
        await asyncio.sleep(0.12)
        assert not probe.done()
    async with asyncio.timeout(1):
        await probe
    assert budget.active == 0
    assert re.fullmatch(r"pacing: frame \d+ ms, pressure \d+\.\d\d, 0 chats streaming", caplog.messages[-1])


async def test_a_stream_that_fails_still_leaves_the_budget():
    budget = UpdateBudget()
    with pytest.raises(RuntimeError), budget.stream():
        raise RuntimeError
    assert budget.active == 0
    await budget.aclose()


def test_the_demand_for_a_core_grows_by_at_least_the_time_spent_computing():
    before = loop_thread_demand()
    busy_until = time.perf_counter() + 0.05
    while time.perf_counter() < busy_until:
        pass
    assert loop_thread_demand() - before >= 0.045


async def test_a_loop_kept_busy_grows_the_frame_and_aclose_stops_the_probe():
    budget = UpdateBudget(min_frame_s=0.04, updates_per_s=0)
    with budget.stream():
        for _ in range(40):  # ~0.5 s of a loop that never rests: every probe comes late and busy
            busy_until = time.perf_counter() + 0.0125
            while time.perf_counter() < busy_until:
                pass
            await asyncio.sleep(0)
        assert budget.frame_s() > 0.04 and budget.pressure > 1
        await budget.aclose()
        assert budget._probe is None


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
