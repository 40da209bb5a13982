"""`newest_within`: the one rule for what part of a conversation is kept."""

import itertools

from agent import newest_within


def test_keeps_the_newest_messages_that_fit_both_limits_oldest_first():
    messages = ["aaaa", "bb", "ccc", "d"]
    assert newest_within(reversed(messages), len) == messages
    assert newest_within(reversed(messages), len, max_messages=2) == ["ccc", "d"]
    assert newest_within(reversed(messages), len, max_chars=6) == ["bb", "ccc", "d"]
    assert newest_within(reversed(messages), len, max_chars=5) == ["ccc", "d"], "a message never fits in part"
    assert newest_within(reversed(messages), len, max_messages=3, max_chars=4) == ["ccc", "d"]
    assert newest_within(reversed(messages), len, max_chars=0) == []


def test_reads_no_further_than_the_first_message_that_does_not_fit():
    read = []

    def newest_first():
        for n in itertools.count():
            read.append(n)
            yield "x" * 10

    assert len(newest_within(newest_first(), len, max_chars=35)) == 3
    assert read == [0, 1, 2, 3]


def test_the_engine_and_the_guard_cut_at_the_same_place():
    from langchain_core.messages import AIMessage, HumanMessage

    from agent import Settings
    from agent.executor import trim_history
    from ui.safety import bounded_chat, message_size

    texts = ["q1", "a" * 30, "q2", "b" * 30, "q3", "c" * 30]
    engine = [HumanMessage(t) if t.startswith("q") else AIMessage(t) for t in texts]
    page = [
        {"role": "user" if t.startswith("q") else "assistant", "content": [{"type": "text", "text": t}]}
        for t in texts
    ]
    sizes = [message_size(message) for message in page]
    limit = sum(sizes[-3:])
    kept_by_guard = bounded_chat(page, max_messages=100, max_chars=limit)
    assert [m["content"][0]["text"] for m in kept_by_guard] == texts[-3:]
    chars_limit = sum(len(t) for t in texts[-3:])
    kept_by_engine = trim_history(engine, Settings(max_history_chars=chars_limit))
    assert [m.text for m in kept_by_engine] == texts[-3:]
