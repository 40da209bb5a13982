import gradio as gr
import orjson
from gradio.utils import safe_deepcopy

from ui.chatbot import PreparedChatbot, _Prepared, _PreparedMessages

HISTORY = [
    {"role": "user", "content": "what is 2 + 2"},
    {"role": "assistant", "content": "2 + 2 = 4", "metadata": {"title": "🛠️ add → 4", "status": "done"}},
    {"role": "assistant", "content": [{"type": "text", "text": "2 + 2 = **4**"}]},
    gr.ChatMessage(content="  indented\n  text", metadata={"title": "📊 2 steps"}),
]


def as_json(value) -> list:
    return orjson.loads(orjson.dumps(value))


def test_the_page_gets_the_same_messages_as_from_gradio_s_chatbot():
    assert as_json(PreparedChatbot().postprocess(HISTORY)) == as_json(
        gr.Chatbot().postprocess(HISTORY).model_dump()
    )


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
