import logging

import pytest
from langchain_core.tools import tool
from langchain_core.utils.function_calling import convert_to_openai_tool

from agent import Settings
from agent.events import Finished, ToolResult
from agent.models import TurnModel, build_model
from agent.offline import OfflineArithmeticModel
from agent.toolbox import BUILT_IN, ServerDown, Toolbox
from agent.tools import TOOLS
from support.fakes import ScriptedChatModel, answer, call, calls
from support.turns import run_turn_events


def named(name: str, text: str = "offered"):
    @tool(name)
    async def offered() -> str:
        """A tool a server offers."""
        return text

    return offered


def test_the_default_toolbox_is_the_built_in_tools():
    toolbox = Toolbox()
    assert toolbox.names == [t.name for t in TOOLS]
    assert toolbox.by_source() == {BUILT_IN: toolbox.names}
    assert not toolbox.has_server_tools


def test_name_clashes_keep_built_in_names_and_rename_server_tools_predictably(caplog):
    with caplog.at_level(logging.WARNING, "agent.toolbox"):
        toolbox = Toolbox.combine(
            {"calc": [named("add"), named("now")], "clock": [named("now"), named("calc_add")]}
        )
    assert toolbox.by_source() == {
        BUILT_IN: [t.name for t in TOOLS],
        "calc": ["calc_add", "now"],
        "clock": ["clock_now", "clock_calc_add"],
    }
    assert (
        "MCP server 'calc': tool 'add' is also offered by built-in; the model sees it as 'calc_add'"
        in caplog.text
    )
    assert toolbox.get("add") is TOOLS[0]


def test_a_toolbox_knows_which_servers_are_down():
    toolbox = Toolbox.combine({}, [ServerDown("git", "the command 'nope' was not found")])
    assert toolbox.has_server_tools and toolbox.down[0].name == "git"


def test_two_tools_with_one_name_are_refused():
    with pytest.raises(ValueError, match="two tools share a name"):
        Toolbox((*TOOLS, named("add")))


async def test_a_turn_calls_the_tools_it_is_given_and_only_those():
    toolbox = Toolbox.combine({"clock": [named("now", "12:00")]})
    model = ScriptedChatModel(script=[calls(call("now", "c1")), answer("It is noon.", "now")])
    events = await run_turn_events(
        "time?", Settings(offline_token_delay_ms=0), chat_model=model, toolbox=toolbox
    )
    assert next((e.name, e.output) for e in events if isinstance(e, ToolResult)) == ("now", "12:00")
    assert events[-1] == Finished("It is noon.", ("now",))
    bound = build_model(Settings(), model, toolbox.tools).kwargs["tools"]
    assert {"now", "add", "final_answer"} <= {t["function"]["name"] for t in bound}

    model = ScriptedChatModel(script=[calls(call("now", "c1")), answer("no clock")])
    events = await run_turn_events("time?", Settings(offline_token_delay_ms=0), chat_model=model)
    result = next(e for e in events if isinstance(e, ToolResult) and e.name == "now")
    assert result.is_error and "there is no tool named 'now'" in result.output


def test_each_turn_binds_the_toolbox_s_schemas_converted_once():
    toolbox = Toolbox.combine({"clock": [named("now", "12:00")]})
    first, second = (
        TurnModel(Settings(), OfflineArithmeticModel(), toolbox.schemas).runnable.kwargs["tools"]
        for _turn in range(2)
    )
    assert first == [convert_to_openai_tool(tool) for tool in toolbox.tools]
    assert first == build_model(Settings(), OfflineArithmeticModel(), toolbox.tools).kwargs["tools"]
    assert all(a is b for a, b in zip(first, second, strict=True))  # not converted again


async def test_a_tool_s_own_timeout_replaces_the_default():
    import asyncio

    @tool
    async def sleepy() -> str:
        """Sleeps."""
        await asyncio.sleep(5)
        return "late"

    sleepy.metadata = {"timeout_s": 0.2}
    model = ScriptedChatModel(script=[calls(call("sleepy", "c1")), answer("too slow")])
    events = await run_turn_events(
        "?", Settings(offline_token_delay_ms=0), chat_model=model, toolbox=Toolbox((*TOOLS, sleepy))
    )
    result = next(e for e in events if isinstance(e, ToolResult) and e.name == "sleepy")
    assert result.is_error and result.output == "Error: sleepy took longer than 0.2 s and was stopped."
