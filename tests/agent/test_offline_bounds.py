"""The offline model's reading of the history is bounded: a long or forged history costs no more."""

from langchain_core.messages import AIMessage, HumanMessage

from agent.offline import model


def test_that_is_read_from_the_newest_messages_only(monkeypatch):
    history = []
    for n in range(200):  # 200 unique questions and answers
        history += [HumanMessage(f"{n} + 1000"), AIMessage(f"{n} + 1000 = **{n + 1000}**")]
    computed = []
    evaluate = model.evaluate
    monkeypatch.setattr(model, "evaluate", lambda plan: computed.append(plan) or evaluate(plan))
    model._exact_value.cache_clear()
    assert model.previous_result(history) == 1199
    assert len(computed) <= model.MAX_MESSAGES_READ // 2


def test_a_follow_up_still_refers_to_the_last_answer():
    history = [
        HumanMessage("2 + 3"),
        AIMessage("2 + 3 = **5**"),
        HumanMessage("times 2"),
        AIMessage("5 * 2 = **10**"),
    ]
    assert model.previous_result(history) == 10
