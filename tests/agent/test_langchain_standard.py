"""LangChain's own standard suites (`langchain-tests`) against the engine's model and tools, with
honest capability flags: the offline model answers arithmetic through tools, nothing else."""

import json

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.load import dumpd, load
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import BaseTool
from langchain_tests.unit_tests import ChatModelUnitTests, ToolsUnitTests

from agent.offline import OfflineArithmeticModel
from agent.openai_compat import CompatibleChatOpenAI
from agent.tools import TOOLS, add, exponentiate, final_answer


class TestOfflineModelStandard(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[BaseChatModel]:
        return OfflineArithmeticModel

    @property
    def chat_model_params(self) -> dict:
        return {"token_delay_ms": 0}

    @property
    def has_tool_choice(self) -> bool:
        return True

    @property
    def has_structured_output(self) -> bool:
        return False  # refused with a clear error (see below)

    @property
    def returns_usage_metadata(self) -> bool:
        return True


class TestAddTool(ToolsUnitTests):
    @property
    def tool_constructor(self) -> BaseTool:
        return add

    @property
    def tool_invoke_params_example(self) -> dict:
        return {"a": 2, "b": 3}


class TestExponentiateTool(ToolsUnitTests):
    @property
    def tool_constructor(self) -> BaseTool:
        return exponentiate

    @property
    def tool_invoke_params_example(self) -> dict:
        return {"base": 2, "exponent": 10}


class TestFinalAnswerTool(ToolsUnitTests):
    @property
    def tool_constructor(self) -> BaseTool:
        return final_answer

    @property
    def tool_invoke_params_example(self) -> dict:
        return {"answer": "4", "tools_used": ["add"]}


MODEL = OfflineArithmeticModel(token_delay_ms=0)


def test_sync_stream_yields_the_reply_piece_by_piece():
    chunks = list(MODEL.bind_tools(TOOLS).stream([HumanMessage("what is 2 + 3")]))
    assert len(chunks) > 2
    merged = chunks[0]
    for chunk in chunks[1:]:
        merged += chunk
    assert [call["name"] for call in merged.tool_calls] == ["add"]


def test_invoke_carries_usage_and_response_metadata():
    reply = MODEL.invoke([HumanMessage("hello")])
    assert isinstance(reply, AIMessage) and reply.text
    assert reply.usage_metadata["output_tokens"] > 0 and reply.usage_metadata["input_tokens"] > 0
    assert reply.response_metadata["finish_reason"] == "stop"


def test_structured_output_is_refused_with_a_clear_error():
    with pytest.raises(NotImplementedError, match="no structured output"):
        MODEL.with_structured_output(dict)


@pytest.mark.parametrize("choice", ["auto", "any", "required", None])
def test_tool_choice_that_matches_the_plan_is_honoured(choice):
    reply = MODEL.bind_tools(TOOLS, tool_choice=choice).invoke([HumanMessage("what is 2 + 3")])
    assert reply.tool_calls


@pytest.mark.parametrize("choice", ["none", "multiply"])
def test_tool_choice_it_cannot_honour_is_refused(choice):
    with pytest.raises(ValueError, match="cannot honour tool_choice"):
        MODEL.bind_tools(TOOLS, tool_choice=choice)


def test_compatible_chat_openai_round_trips_through_load_as_itself():
    """Under its own namespace (the standard suite's `test_serdes` loads with `allowed_objects="all"`,
    which admits LangChain's own mapping only, so it is checked here with the class allowed)."""
    model = CompatibleChatOpenAI(model="m", api_key="sk-secret-1", temperature=0.5)
    serialized = dumpd(model)
    assert serialized["id"] == ["agent", "openai_compat", "CompatibleChatOpenAI"]
    assert "sk-secret-1" not in json.dumps(serialized)
    loaded = load(
        serialized,
        secrets_map={"OPENAI_API_KEY": "sk-secret-1"},
        allowed_objects=[CompatibleChatOpenAI],
        valid_namespaces=["agent"],
    )
    assert type(loaded) is CompatibleChatOpenAI
    assert (loaded.model_name, loaded.temperature) == ("m", 0.5)
