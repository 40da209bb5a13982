import gradio as gr
import orjson
from gradio.components.chatbot import ChatbotDataMessages
from gradio.utils import safe_deepcopy

from ui.chatbot import PreparedChatbot, _Prepared, _PreparedMessages
from ui.history import content_text

HISTORY = [
    {"role": "user", "content": "what is 2 + 2"},
    {"role": "assistant", "content": "2 + 2 = 4", "metadata": {"title": "🛠️ add → 4", "status": "done"}},
    {"role": "assistant", "content": [{"type": "text", "text": "2 + 2 = **4**"}]},
    gr.ChatMessage(content="  indented\n  text", metadata={"title": "📊 2 steps"}),
]


def as_json(value) -> list:
    return orjson.loads(orjson.dumps(value))


def test_the_page_gets_gradio_s_messages_with_their_text_rendered_here():
    ours, gradios = (
        as_json(PreparedChatbot().postprocess(HISTORY)),
        gr.Chatbot().postprocess(HISTORY).model_dump(),
    )
    assert [m["role"] for m in ours] == [m["role"] for m in gradios]
    assert [m["content"][0]["text"] for m in ours] == [
        "what is 2 + 2",
        "<p>2 + 2 = 4</p>",
        "<p>2 + 2 = <strong>4</strong></p>",
        "<p>indented\ntext</p>",
    ]
    assert [m["metadata"] for m in ours] == [m["metadata"] for m in gradios]


def test_the_page_renders_no_markdown_of_its_own():
    chatbot = PreparedChatbot()
    assert chatbot.render_markdown is False and chatbot.latex_delimiters == []
    assert chatbot.sanitize_html is True


def test_what_the_page_sends_back_is_the_text_it_was_rendered_from():
    history = [
        {"role": "user", "content": "is 1 < 2 & 3 > 2?\nsay"},
        {"role": "assistant", "content": "`<b>` **yes**", "metadata": {"title": "🛠️ cmp → <yes> & more"}},
        {"role": "assistant", "content": "Yes: *1 < 2*."},
    ]
    chatbot = PreparedChatbot()
    sent_back = chatbot.preprocess(ChatbotDataMessages(root=as_json(chatbot.postprocess(history))))
    assert [content_text(m["content"]) for m in sent_back] == [m["content"] for m in history]
    assert sent_back[1]["metadata"]["title"] == "🛠️ cmp → <yes> & more"


def test_html_this_server_did_not_render_comes_back_as_its_text():
    forged = [
        {"role": "assistant", "content": [{"type": "text", "text": "<p>I <em>said</em> &lt;this&gt;</p>"}]}
    ]
    [message] = PreparedChatbot().preprocess(ChatbotDataMessages(root=forged))
    assert message["content"][0]["text"] == "I said <this>"


def test_the_live_turn_shows_the_text_being_written_as_written():
    turn = [
        {"role": "assistant", "content": "**done** step", "metadata": {"title": "🛠️ add", "id": "c1"}},
        {"role": "assistant", "content": "The answer is **4** <b>"},
    ]
    shown = as_json(PreparedChatbot.for_live_turn().postprocess(turn))
    assert shown[0]["content"][0]["text"] == "<p><strong>done</strong> step</p>"
    assert shown[1]["content"][0]["text"] == "The answer is **4** &lt;b&gt;"
    landed = as_json(PreparedChatbot().postprocess(turn))
    assert landed[1]["content"][0]["text"] == "<p>The answer is <strong>4</strong> &lt;b&gt;</p>"


def test_an_unchanged_message_is_processed_once_and_diffs_as_equal():
    first, second = PreparedChatbot().postprocess(HISTORY), PreparedChatbot().postprocess([*HISTORY])
    assert all(a is b for a, b in zip(first, second, strict=True))
    changed = PreparedChatbot().postprocess([*HISTORY[:-1], {"role": "assistant", "content": "other"}])
    assert changed[-1] is not first[-1] and changed[0] is first[0]


def test_prepared_messages_survive_gradio_s_deep_copy():
    prepared = PreparedChatbot().postprocess(HISTORY)
    assert as_json(safe_deepcopy({"value": prepared})["value"]) == as_json(prepared)


def test_a_message_with_a_file_takes_gradio_s_usual_path(tmp_path):
    image = tmp_path / "a.png"
    image.write_bytes(b"\x89PNG")
    [message] = PreparedChatbot().postprocess([{"role": "assistant", "content": {"path": str(image)}}])
    assert isinstance(message, dict) and message["content"][0]["file"]["path"] == str(image)


def test_prepared_messages_stay_within_their_byte_budget():
    prepared = _PreparedMessages(max_bytes=250)
    for n in range(5):
        prepared.put(bytes([n]), _Prepared([], 100))
    assert prepared.size == 200 and prepared.get(bytes([4])) and not prepared.get(bytes([0]))


def test_a_stream_s_unchanged_messages_are_prepared_as_before_and_what_changed_again():
    live = PreparedChatbot.for_live_turn()
    postprocess = live.postprocessing()
    step = {"role": "assistant", "content": "**add** step", "metadata": {"title": "🛠️ add", "id": "c1"}}
    answer = {"role": "assistant", "content": "The answer is **4**"}
    first = postprocess([step, answer])
    again = postprocess([step, answer])
    assert again == first and again[0] is first[0] and again[1] is first[1]
    footer = {"role": "assistant", "content": "**2 steps**", "metadata": {"id": "turn-footer"}}
    ended = postprocess([step, answer, footer])  # the answer is no longer being written
    assert as_json(ended) == as_json(PreparedChatbot().postprocess([step, answer, footer]))
    assert as_json(ended)[1]["content"][0]["text"] == "<p>The answer is <strong>4</strong></p>"
    assert as_json(postprocess([step, answer])) == as_json(first)
