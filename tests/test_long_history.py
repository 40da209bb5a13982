"""Very long conversations on the page's path: a turn still answers, and the page's part stays bounded."""

import uuid

import gradio as gr
import pytest

from agent import ServerSettings
from support.gradio_http import GradioChatClient
from ui.history import content_text

pytestmark = pytest.mark.slow


def conversation(turns: int) -> list[dict]:
    """`turns` finished turns as the page's chatbot holds them (a question, a tool step, the answer)."""
    turn = [
        {"role": "user", "content": "what is 1 + 1"},
        {"role": "assistant", "content": "1 + 1 = 2", "metadata": {"title": "🛠️ add → 2", "status": "done"}},
        {"role": "assistant", "content": "1 + 1 = **2**"},
    ]
    return gr.Chatbot().postprocess(turn * turns).model_dump()


async def test_a_1000_turn_conversation_still_answers_and_the_page_keeps_its_newest_turns(served_app):
    history = conversation(1000)
    session = uuid.uuid4().hex
    async with GradioChatClient(served_app) as client:
        await client.show(session, history)
        stream = await client.ask("what is 2 + 3", mode="browser", session_hash=session, chatbot=history)
    assert stream.completed, stream.error
    assert stream.first_update_bytes < 5_000, "the first update carries the new turn only"
    shown = stream.messages
    assert len(shown) <= ServerSettings().max_chat_messages and shown[0]["role"] == "user"
    assert shown[-4]["role"] == "user" and content_text(shown[-4]["content"]) == "what is 2 + 3"
    answer = "<p>2 + 3 = <strong>5</strong></p>"  # as the page gets it
    assert answer in [content_text(m["content"]) for m in shown[-3:]]
