"""The chat's footer and the turn's log line show the same figures, whatever the turn did."""

import asyncio
import logging

import pytest
from langchain_core.messages import AIMessage

from agent import Settings, agent_turn
from support.fakes import Hang, Raise, ScriptedChatModel, answer, call, calls
from ui.view import FOOTER_ID, TurnView

OFFLINE = Settings(offline_token_delay_ms=0)
SCRIPTS = {
    "a rejected final_answer, then a good one": [
        calls(call("final_answer", answer=None)),
        calls(call("add", a=1, b=2)),
        answer("3", "add"),
    ],
    "parallel calls": [calls(call("add", a=1, b=2), call("multiply", a=3, b=4)), answer("15", "add")],
    "plain text": [AIMessage(content="Hello there.")],
    "a model error": [Raise(RuntimeError("boom"), calls(call("add", a=1, b=2)), after_chunks=1)],
    "the step limit": [calls(call("add", a=1, b=1))],
}


def logged_turn(caplog: pytest.LogCaptureFixture) -> dict:
    [record] = [r for r in caplog.records if r.name == "agent.turns"]
    return record.turn


def footer_of(view: TurnView) -> str:
    [footer] = [m.content for m in view.render() if (m.metadata or {}).get("id") == FOOTER_ID]
    return footer


def assert_footer_matches_log(view: TurnView, logged: dict) -> None:
    figures = view.figures
    shown = {
        "steps": figures.steps,
        "tool_calls": figures.tool_calls,
        "tokens_in": figures.input_tokens,
        "tokens_out": figures.output_tokens,
        "first_token_s": None if figures.first_token_s is None else round(figures.first_token_s, 3),
        "total_s": round(figures.total_s, 3),
        "waiting_s": round(figures.waiting_s, 3),
    }
    assert shown == {name: logged[name] for name in shown}
    assert f"📊 {view.summary()}" in footer_of(view)
    assert f"{figures.steps} step" in footer_of(view) and f"{figures.tool_calls} tool call" in footer_of(view)


async def run(question: str, settings: Settings, model=None) -> TurnView:
    view = TurnView("test")
    async with agent_turn(question, [], settings, model) as turn:
        async for event in turn.events():
            view.apply(event)
    return view


@pytest.mark.parametrize("question", ["what is 2 + 2", "(2 + 3) * (4 + 5)", "hello, who are you?"])
async def test_offline_turns(question, caplog):
    caplog.set_level(logging.INFO, logger="agent.turns")
    view = await run(question, OFFLINE)
    assert_footer_matches_log(view, logged_turn(caplog))


@pytest.mark.parametrize("name", list(SCRIPTS))
async def test_scripted_turns(name, caplog):
    caplog.set_level(logging.INFO, logger="agent.turns")
    settings = Settings(max_steps=3, max_retries=0)
    view = await run("q", settings, ScriptedChatModel(script=SCRIPTS[name]))
    assert_footer_matches_log(view, logged_turn(caplog))


async def test_a_stopped_turn(caplog):
    caplog.set_level(logging.INFO, logger="agent.turns")
    view = TurnView("test")
    model = ScriptedChatModel(script=[calls(call("add", a=1, b=2)), Hang()])
    async with agent_turn("q", [], Settings(), model) as turn:
        async for event in turn.events():
            view.apply(event)
            if view.figures.tool_calls:  # Stop, once a tool call shows
                break
        await asyncio.sleep(0.01)
    view.stop(figures=turn.figures)
    assert logged_turn(caplog)["outcome"] == "cancelled"
    assert_footer_matches_log(view, logged_turn(caplog))
