import copy
from contextlib import aclosing

import gradio as gr
from gradio.state_holder import SessionState

from ui.chatbot import UNCHANGED, PreparedChatbot
from ui.live_turn import LiveTurnChatInterface, newest_turns
from ui.safety import TRIMMED_TITLE


def turn(n: int) -> list[dict]:
    return [{"role": "user", "content": f"q{n}"}, {"role": "assistant", "content": f"a{n}"}]


def test_newest_turns_keeps_whole_turns_within_the_limit():
    history = turn(1) + turn(2) + turn(3)
    assert newest_turns(history, 6) is history
    assert newest_turns(history, 5) == turn(2) + turn(3)
    assert newest_turns(history, 3) == turn(3)
    assert newest_turns(history, 1) == []


async def test_a_turn_cut_off_mid_stream_leaves_the_conversation_as_it_was():
    """The conversation only ever receives whole turns: while a turn streams, the conversation's
    output is `UNCHANGED`, so a turn whose stream is closed early (a cancelled API job, a closed
    tab) never reaches it half done, and the next question never finds an unfinished turn."""

    async def answer(message, history):
        for words in ("Thinking", "Thinking about it", "Thinking about it more"):
            yield [{"role": "assistant", "content": words, "metadata": None}]

    with gr.Blocks():
        chat = LiveTurnChatInterface(
            answer, chatbot=PreparedChatbot(), max_messages=10, max_chars=1000, save_history=False
        )
    earlier = turn(1)
    updates = []
    async with aclosing(chat._stream_fn("q2", list(earlier))) as stream:
        async for update in stream:
            updates.append(update)
            if len(updates) == 2:
                break
    assert [conversation for _response, conversation, *_live in updates] == [UNCHANGED, UNCHANGED]
    assert [live for _response, _conversation, live in updates][-1][0]["content"] == "Thinking about it"

    finished = [update async for update in chat._stream_fn("q2", list(earlier))]
    conversations = [conversation for _response, conversation, *_live in finished]
    whole = [
        *earlier,
        {"role": "user", "content": "q2"},
        {"role": "assistant", "content": "Thinking about it more", "metadata": None},
    ]
    assert [c for c in conversations if c is not UNCHANGED] == [whole], "the turn joins once, whole"


async def test_the_conversation_enters_a_turn_trimmed_and_the_session_keeps_it_trimmed():
    """The one place a session's conversation enters a turn: the chat function gets it within
    the limits, the turn starts with the note, the session keeps the trimmed conversation, and
    the list Gradio handed over (its session state) is left as it was."""
    seen: list[list[dict]] = []

    async def answer(message, history):
        seen.append(history)
        yield [{"role": "assistant", "content": "4", "metadata": None}]

    with gr.Blocks():
        chat = LiveTurnChatInterface(
            answer, chatbot=PreparedChatbot(), max_messages=10, max_chars=100, save_history=False
        )
    earlier = [{"role": "user", "content": "9" * 120}, {"role": "assistant", "content": "refused"}]
    before = copy.deepcopy(earlier)
    updates = [update async for update in chat._stream_fn("2 + 2", earlier)]
    assert earlier == before
    [history] = seen
    assert history[0]["metadata"]["title"] == TRIMMED_TITLE and history[1] == earlier[1]
    [note, reply] = updates[0][0]
    assert "AGENT_MAX_CHAT_CHARS" in note["content"] and reply["content"] == "4"
    [kept] = [conversation for _response, conversation, *_live in updates if conversation is not UNCHANGED]
    assert [m["content"] for m in kept] == ["", "refused", "2 + 2", note["content"], "4"]


async def test_a_questions_first_step_sends_the_page_what_chat_interfaces_own_step_sends():
    async def answer(message, history):
        yield [{"role": "assistant", "content": "4", "metadata": None}]

    with gr.Blocks() as demo:
        chat = LiveTurnChatInterface(
            answer, chatbot=PreparedChatbot(), max_messages=10, max_chars=1000, save_history=False
        )
    first_step = next(fn for fn in demo.fns.values() if fn.name == "_clear_and_save_textbox")
    ours = await chat._clear_and_save_textbox("2 + 2", None)  # type: ignore[arg-type]  # no refusal: no request needed
    theirs = gr.ChatInterface._clear_and_save_textbox(chat, "2 + 2")
    sent = [
        await demo.postprocess_data(first_step, list(values), SessionState(demo)) for values in (ours, theirs)
    ]
    assert sent[0] == sent[1]
    assert sent[0][0] == {"__type__": "update", "value": "", "interactive": False, "placeholder": ""}
