"""The `chat` API and saved conversations: a client gets its conversation's id back, and a new
client that carries the same owner cookie continues it; nobody else can."""

import pytest
from gradio_client import Client

pytestmark = pytest.mark.slow


def conversation_of(messages: list[dict]) -> str:
    return next(m["content"] for m in messages if m["metadata"].get("id") == "turn-conversation")


def answer_of(messages: list[dict]) -> str:
    return next(m["content"] for m in messages if not m["metadata"])


def test_a_new_client_continues_a_saved_conversation_by_its_id(served_app):
    first = Client(served_app, verbose=False)
    conversation = conversation_of(first.predict("what is 2 + 3", api_name="/chat"))
    assert conversation == conversation_of(first.predict("times 4", api_name="/chat")), "one conversation"

    owner = first.cookies["agent_owner"]
    later = Client(served_app, verbose=False, httpx_kwargs={"cookies": {"agent_owner": owner}})
    follow_up = later.predict("plus 1", saved_conversation=conversation, api_name="/chat")
    assert answer_of(follow_up) == "20 + 1 = **21**", "the saved history reached the model"
    assert conversation_of(follow_up) == conversation


def test_another_client_cannot_continue_or_read_it(served_app):
    first = Client(served_app, verbose=False)
    conversation = conversation_of(first.predict("what is 6 * 7", api_name="/chat"))
    stranger = Client(served_app, verbose=False)
    refused = stranger.predict("what did I ask?", saved_conversation=conversation, api_name="/chat")
    assert "No saved conversation of yours has this id" in str(refused)
    assert "6 * 7" not in str(refused)


def test_a_continued_conversation_keeps_every_turn_whichever_client_asks_next(served_app):
    """Each API turn continues the conversation as saved: a second client asks three times (naming
    it, then not), the first client goes on from the second's last answer, and so does a third."""
    first = Client(served_app, verbose=False)
    conversation = conversation_of(first.predict("what is 2 + 3", api_name="/chat"))
    first.predict("times 4", api_name="/chat")
    owner = first.cookies["agent_owner"]
    later = Client(served_app, verbose=False, httpx_kwargs={"cookies": {"agent_owner": owner}})
    assert answer_of(later.predict("plus 1", saved_conversation=conversation, api_name="/chat")) == (
        "20 + 1 = **21**"
    )
    assert answer_of(later.predict("times 2", saved_conversation=conversation, api_name="/chat")) == (
        "21 * 2 = **42**"
    )
    assert answer_of(later.predict("minus 2", api_name="/chat")) == "42 - 2 = **40**"
    assert answer_of(first.predict("plus 10", api_name="/chat")) == "40 + 10 = **50**", (
        "the first client continues where the other left it"
    )

    third = Client(served_app, verbose=False, httpx_kwargs={"cookies": {"agent_owner": owner}})
    assert answer_of(third.predict("plus 0", saved_conversation=conversation, api_name="/chat")) == (
        "50 + 0 = **50**"
    )
