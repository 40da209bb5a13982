"""The `chat` API and saved conversations: a client gets its conversation's id back, and a new
client that carries the same owner cookie continues it; nobody else can."""

import uuid

import httpx
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


def test_the_page_reopens_a_conversation_by_its_id_for_its_owner_only(served_app):
    """A page that lost its server sends back the id of the conversation it showed (ui/connection.js):
    its owner gets the conversation; another visitor, or an id that is not one, gets nothing."""
    first = Client(served_app, verbose=False)
    conversation = conversation_of(first.predict("what is 2 + 3", api_name="/chat"))
    owner = {"agent_owner": first.cookies["agent_owner"]}
    config = httpx.get(f"{served_app}config").json()
    reopen_fn = next(d["id"] for d in config["dependencies"] if d.get("api_name") == "_open_again")

    def reopen(cookies: dict[str, str], conversation_id: str) -> list:
        body = {"data": [conversation_id, None], "fn_index": reopen_fn, "session_hash": uuid.uuid4().hex}
        response = httpx.post(f"{served_app}gradio_api/run/predict", json=body, cookies=cookies)
        response.raise_for_status()
        return response.json()["data"]  # the chat (three times), status, delete button, the open id

    opened = reopen(owner, conversation)
    assert "what is 2 + 3" in str(opened[0]) and opened[-1] == conversation
    for refused in (reopen({}, conversation), reopen(owner, "' OR 1=1 --"), reopen(owner, "x" * 65)):
        assert "2 + 3" not in str(refused) and refused[0] == {"__type__": "update"}, refused
