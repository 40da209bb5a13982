from langchain_core.messages import AIMessage, HumanMessage

from ui.history import to_langchain


def test_browser_history_in_content_blocks_keeps_questions_and_answers_only():
    history = [
        {"role": "user", "content": [{"type": "text", "text": "what is 2+3?"}], "metadata": None},
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "Arguments: `{}`"}],
            "metadata": {"title": "🛠️ add → 5", "id": "c1"},
        },
        {"role": "assistant", "content": [{"type": "text", "text": "2 + 3 = **5**"}], "metadata": {}},
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "<details><summary>📊 1 step</summary></details>"}],
            "metadata": {"id": "turn-footer"},
        },
        {"role": "assistant", "content": "⚠️ Rate limited", "metadata": {"id": "turn-failure"}},
    ]
    assert to_langchain(history) == [HumanMessage("what is 2+3?"), AIMessage("2 + 3 = **5**")]


def test_api_history_in_plain_strings():
    history = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    assert to_langchain(history) == [HumanMessage("hi"), AIMessage("hello")]


def test_files_empty_messages_and_unknown_roles_are_skipped():
    history = [
        {"role": "user", "content": [{"type": "file", "file": {"path": "/tmp/x.png"}}]},
        {"role": "user", "content": ("/tmp/x.png",)},
        {"role": "assistant", "content": ""},
        {"role": "system", "content": "be nice"},
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
    ]
    assert to_langchain(history) == [HumanMessage("ab")]
