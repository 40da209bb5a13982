"""New chat starts a new conversation, even when the page's copy of the old one arrives after it.

After each turn the page copies its chat into the session in a call of its own; a person who
clicks New chat as the answer appears can have that copy reach the server after New chat did.
Played here in that order over HTTP, as a page would send it."""

import pytest

from support.gradio_http import GradioChatClient

pytestmark = pytest.mark.slow


async def new_chat_step(client: GradioChatClient) -> int:
    """The `fn_index` of the panel's New chat (a private step: it has no API name)."""
    config = (await client.http.get(f"{client.base_url}/config")).json()
    button = next(c["id"] for c in config["components"] if c.get("props", {}).get("elem_id") == "new-chat")
    return next(d["id"] for d in config["dependencies"] if [button, "click"] in d["targets"])


async def press(client: GradioChatClient, fn_index: int, session_hash: str) -> None:
    pressed = await client.http.post(
        f"{client.base_url}/gradio_api/run/predict",
        json={"data": [None], "fn_index": fn_index, "session_hash": session_hash, "trigger_id": None},
    )
    pressed.raise_for_status()


def contents(messages: list[dict]) -> str:
    return " ".join(str(m.get("content")) for m in messages)  # answers as the page gets them: HTML


async def test_a_late_copy_of_the_old_chat_does_not_come_back_after_new_chat(served_app):
    async with GradioChatClient(served_app) as client:
        first = await client.ask("what is 2 + 3", mode="browser", chatbot=[])
        assert first.completed and "2 + 3 = <strong>5</strong>" in contents(first.messages)
        session = first.session_hash
        await press(client, await new_chat_step(client), session)
        await client.show(session, first.value)  # the turn's copy, sent before New chat was answered
        second = await client.ask("what is 6 * 7", mode="browser", session_hash=session, chatbot=[])
        assert "6 * 7 = <strong>42</strong>" in contents(second.messages)
        assert "2 + 3" not in contents(second.value), "the old conversation came back as history"


async def test_the_copy_after_a_turn_still_carries_the_conversation_on(served_app):
    async with GradioChatClient(served_app) as client:
        first = await client.ask("what is 2 + 3", mode="browser", chatbot=[])
        follow_up = await client.ask(
            "times 4", mode="browser", session_hash=first.session_hash, chatbot=first.value
        )
        assert "5 * 4 = <strong>20</strong>" in contents(follow_up.messages), (
            "the first turn reached the model"
        )
