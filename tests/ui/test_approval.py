"""Decisions reach the right turn of the right session; the panel follows the call that waits."""

import asyncio
import dataclasses

import pytest

from agent import Decision
from agent.approval import CallToApprove
from agent.channel import EventChannel
from agent.events import ApprovalDecided, ApprovalRequested, StepStarted, ToolCallStarted
from ui.approval import SessionApprovals, panel_values, ticking
from ui.view import TurnView

ARGS = '{"filename": "notes.txt", "text": "hello"}'


async def test_a_decision_reaches_only_the_session_whose_call_waits():
    sessions = SessionApprovals()
    with sessions.watch("alice", 5) as alice, sessions.watch("bob", 5):
        waiting = asyncio.create_task(alice.ask(CallToApprove("w1", "write_file", ARGS, 1), EventChannel()))
        await asyncio.sleep(0)
        assert sessions.decide("bob", "w1", True) is Decision.UNKNOWN_CALL
        assert sessions.decide("mallory", "w1", True) is Decision.TURN_FINISHED
        assert sessions.shown_for_s("bob", "w1") is None
        assert sessions.shown_for_s("alice", "w1") >= 0
        assert sessions.decide("alice", "w1", False, "not now") is Decision.DECIDED
        assert sessions.decide("alice", "w1", True) is Decision.ALREADY_DECIDED
        decided = await waiting
    assert (decided.approved, decided.reason, decided.by) == (False, "not now", "person")
    assert sessions.decide("alice", "w1", True) is Decision.TURN_FINISHED, "the turn is gone"


async def test_two_turns_of_one_session_each_get_their_own_decisions():
    sessions = SessionApprovals()
    with sessions.watch("api-client", 5) as first, sessions.watch("api-client", 5) as second:
        one = asyncio.create_task(first.ask(CallToApprove("a", "write_file", ARGS, 1), EventChannel()))
        two = asyncio.create_task(second.ask(CallToApprove("b", "write_file", ARGS, 1), EventChannel()))
        await asyncio.sleep(0)
        assert sessions.decide("api-client", "b", True) is Decision.DECIDED
        assert sessions.decide("api-client", "a", False) is Decision.DECIDED
        assert ((await one).approved, (await two).approved) == (False, True)


def turn_messages(*events) -> list[dict]:
    view = TurnView("backend")
    for event in events:
        view.apply(event)
    return [dataclasses.asdict(message) for message in view.render()]


def test_the_panel_shows_the_waiting_call_and_empties_once_it_is_decided():
    asked = (
        StepStarted(1),
        ToolCallStarted("w1", "write_file", 1),
        ApprovalRequested("w1", "write_file", ARGS, 1),
    )
    text, call_id = panel_values(turn_messages(*asked))
    assert call_id == "w1"
    assert text.startswith("**⏸️ Waiting for your approval: tool(write_file)**")
    assert ARGS in text
    decided = ApprovalDecided("w1", "write_file", True, "", "person", 1.0)
    assert panel_values(turn_messages(*asked, decided)) == ("", "")
    assert panel_values([]) == ("", "")


async def test_while_a_call_waits_the_chat_ticks_so_that_a_closed_page_is_noticed():
    arrived = asyncio.Queue()

    async def batches():
        while (batch := await arrived.get()) is not None:
            yield batch

    waiting = [False]
    ticks = ticking(batches(), lambda: waiting[0], every_s=0.05)
    arrived.put_nowait(["a"])
    assert await anext(ticks) == ["a"]
    waiting[0] = True
    assert [await anext(ticks), await anext(ticks)] == [[], []], "nothing arrived: empty batches"
    arrived.put_nowait(["b"])
    assert await anext(ticks) == ["b"]
    waiting[0] = False
    next_batch = asyncio.ensure_future(anext(ticks))
    await asyncio.sleep(0.2)
    assert not next_batch.done(), "no ticks while nothing waits"
    arrived.put_nowait(None)
    with pytest.raises(StopAsyncIteration):
        await next_batch
