"""The chat function's updates: what each one carries to Gradio."""

import dataclasses

from agent import Settings, run_agent
from ui.chat import _as_dicts
from ui.view import TurnView


async def test_each_update_carries_every_field_of_a_chat_message_as_plain_values():
    view = TurnView("offline")
    updates = []
    async for event in run_agent("What is (2 + 3) * (4 + 5)?", [], Settings(offline_token_delay_ms=0)):
        view.apply(event)
        updates.append((_as_dicts(view), [dataclasses.asdict(m) for m in view.render()]))
    assert len(updates) > 20
    for shallow, deep in updates:
        assert shallow == deep
    assert any(message["metadata"].get("title") for message in updates[-1][0])


async def test_no_two_updates_share_a_mutable_part():
    """Gradio diffs each update against the last one: a part changed in place would diff as equal."""
    view = TurnView("offline")
    previous: list[dict] = []
    async for event in run_agent("What is 2 + 3?", [], Settings(offline_token_delay_ms=0)):
        view.apply(event)
        update = _as_dicts(view)
        earlier = {id(part) for m in previous for part in (m, m["metadata"], m["options"])}
        assert not earlier & {id(part) for m in update for part in (m, m["metadata"], m["options"])}
        previous = update
