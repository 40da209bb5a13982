"""The chat function's updates: what each one carries to Gradio."""

import copy
import dataclasses
import itertools

from agent import Settings, run_agent
from ui.chat import TurnDicts
from ui.view import TurnView


async def test_each_update_carries_every_field_of_a_chat_message_as_plain_values():
    view = TurnView("offline")
    updates = []
    async for event in run_agent("What is (2 + 3) * (4 + 5)?", [], Settings(offline_token_delay_ms=0)):
        view.apply(event)
        updates.append((TurnDicts(view)(), [dataclasses.asdict(m) for m in view.render()]))
    assert len(updates) > 20
    for shallow, deep in updates:
        assert shallow == deep
    assert any(message["metadata"].get("title") for message in updates[-1][0])


async def test_no_update_changes_after_it_was_yielded_and_unchanged_messages_are_handed_over_as_they_were():
    """Gradio diffs each update against the last one: a part changed in place would diff as equal.
    A message that did not change since the last update is the same object again (cheap to skip)."""
    view = TurnView("offline")
    messages = TurnDicts(view)
    updates, as_yielded = [], []
    async for event in run_agent("What is (2 + 3) * (4 + 5)?", [], Settings(offline_token_delay_ms=0)):
        view.apply(event)
        update = messages()
        updates.append(update)
        as_yielded.append(copy.deepcopy(update))
    assert updates == as_yielded
    kept = [
        new
        for before, after in itertools.pairwise(updates)
        for old, new in zip(before, after, strict=False)
        if old is new
    ]
    assert len(kept) > len(updates)
    assert updates[-1] == TurnDicts(view)()
