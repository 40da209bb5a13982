"""A page sends back the id of the conversation it shows (`#open-conversation`) with each question;
the server continues that conversation only for a session it does not know (the page's own process
was restarted), and only its owner's. In a session it knows, the id is never read: New chat or the
chat's trash, then a question, starts a new conversation whatever id the page still held."""

import uuid

import pytest

from support.gradio_http import GradioChatClient

pytestmark = pytest.mark.slow

QUESTION = "what is 1 + 2 + 3 + 4 + 5 + 6"
ANSWER = "= <strong>21</strong>"
IN_CONTEXT = "21 * 2 = <strong>42</strong>"


async def saved_count(client: GradioChatClient, session: str) -> str:
    """What the panel's "Delete all" asks: it counts the visitor's saved conversations."""
    response = await client.call_unqueued("_ask_to_confirm", [], session)
    response.raise_for_status()
    return response.json()["data"][-1]


async def first_turn(client: GradioChatClient, session: str):
    first = await client.ask(QUESTION, mode="browser", session_hash=session, chatbot=[], open_conversation="")
    assert first.completed and ANSWER in str(first.messages), first.error or str(first.messages)[-300:]
    assert first.open_conversation, "the page was not given the saved conversation's id"
    return first


@pytest.mark.parametrize("action", ["_start_new", "_forget"])
async def test_in_a_live_session_a_stale_id_after_new_chat_or_trash_reopens_nothing(served_app, action):
    async with GradioChatClient(served_app, affinity_cookie="agent_route") as client:
        session = uuid.uuid4().hex
        first = await first_turn(client, session)
        (await client.call_unqueued(action, [None], session)).raise_for_status()
        # The page still holds the old id (as if the chat's change had written it back late).
        later = await client.ask(
            "times 2",
            mode="browser",
            session_hash=session,
            chatbot=[],
            open_conversation=first.open_conversation,
        )
        count = await saved_count(client, session)

    assert later.completed, later.error or str(later.messages)[-300:]
    assert later.open_conversation not in ("", first.open_conversation)  # a new one, not the old one
    assert "Delete all 2 of your saved conversations?" in count


async def test_another_visitors_id_reopens_nothing(served_app):
    async with GradioChatClient(served_app, affinity_cookie="agent_route") as client:
        first = await first_turn(client, uuid.uuid4().hex)
        stranger = uuid.uuid4().hex  # a session of its own: another browser, another owner cookie
        asked = await client.ask(
            "times 2",
            mode="browser",
            session_hash=stranger,
            chatbot=[],
            open_conversation=first.open_conversation,
        )
        count = await saved_count(client, first.session_hash)

    assert asked.completed and IN_CONTEXT not in str(asked.messages), str(asked.messages)[-300:]
    assert QUESTION not in str(asked.messages)
    assert asked.open_conversation not in ("", first.open_conversation)
    assert "Delete all 1 of your saved conversations?" in count  # the owner's conversation untouched
