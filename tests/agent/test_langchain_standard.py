"""LangChain's own standard suites (`langchain-tests`) against the engine's models and tools, with
honest capability flags: the offline model answers arithmetic through tools, nothing else. Its
integration suite needs no network (the model is local); `CompatibleChatOpenAI`'s unit suite builds
the model without calling a server."""

import json
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.load import dumpd, load
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import BaseTool
from langchain_tests.integration_tests import ChatModelIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests, ToolsUnitTests

from agent.offline import OfflineArithmeticModel
from agent.openai_compat import CompatibleChatOpenAI
from agent.tools import TOOLS, add, exponentiate, final_answer, multiply, subtract


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


NOT_ARITHMETIC = (
    "not applicable: the prompt asks for a tool other than arithmetic ({}); the offline model plans "
    "arithmetic only and answers anything else with its introduction (checked below with arithmetic)"
)


def not_arithmetic(tools: str):
    """A standard test whose prompt only a general model can follow; expected to fail, and checked."""
    return pytest.mark.xfail(reason=NOT_ARITHMETIC.format(tools), strict=True)


class TestOfflineModelIntegration(ChatModelIntegrationTests):
    """The standard integration suite, offline: invoke, stream, batch, conversations, usage,
    stop sequences and tool-message histories run as they are; the tool tests whose prompts are
    not arithmetic are expected to fail (strict: if one passed, the flag would be dishonest)."""

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
        return False

    @property
    def returns_usage_metadata(self) -> bool:
        return True

    @not_arithmetic("magic_function")
    def test_tool_calling(self, model: BaseChatModel) -> None:
        super().test_tool_calling(model)

    @not_arithmetic("magic_function")
    async def test_tool_calling_async(self, model: BaseChatModel) -> None:
        await super().test_tool_calling_async(model)

    @not_arithmetic("greeting_generator")
    def test_bind_runnables_as_tools(self, model: BaseChatModel) -> None:
        super().test_bind_runnables_as_tools(model)

    @not_arithmetic("magic_function and get_weather, forced on 'Hello!'")
    def test_tool_choice(self, model: BaseChatModel) -> None:
        super().test_tool_choice(model)

    @not_arithmetic("magic_function_no_args")
    def test_tool_calling_with_no_arguments(self, model: BaseChatModel) -> None:
        super().test_tool_calling_with_no_arguments(model)

    @not_arithmetic("get_weather")
    def test_agent_loop(self, model: BaseChatModel) -> None:
        super().test_agent_loop(model)

    @pytest.mark.xfail(
        reason="not applicable: the few-shot tool is my_adder_tool, not the add tool this model plans "
        "with; forced (tool_choice='any'), it refuses instead of answering in words",
        raises=ValueError,
        strict=True,
    )
    def test_structured_few_shot_examples(self, model: BaseChatModel, my_adder_tool: BaseTool) -> None:
        super().test_structured_few_shot_examples(model, my_adder_tool)

    @not_arithmetic("unicode_customer")
    def test_unicode_tool_call_integration(self, model: BaseChatModel, **kwargs: Any) -> None:
        super().test_unicode_tool_call_integration(model, **kwargs)


class TestCompatibleChatOpenAIStandard(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[BaseChatModel]:
        return CompatibleChatOpenAI

    @property
    def chat_model_params(self) -> dict:
        return {"model": "gpt-4.1-mini", "api_key": "sk-test-not-a-key"}

    @property
    def init_from_env_params(self) -> tuple[dict, dict, dict]:
        base = "http://127.0.0.1:9/v1"
        return (
            {"OPENAI_API_KEY": "sk-from-env", "OPENAI_API_BASE": base},
            {"model": "gpt-4.1-mini"},
            {"openai_api_key": "sk-from-env", "openai_api_base": base},
        )

    @property
    def has_tool_choice(self) -> bool:
        return True

    @property
    def has_structured_output(self) -> bool:
        return True

    @property
    def supports_image_tool_message(self) -> bool:
        return True

    @pytest.mark.xfail(
        reason="the suite loads with allowed_objects='all', which admits LangChain's own classes only; "
        "the round trip under this class's own namespace is checked below",
        raises=ValueError,
        strict=True,
    )
    def test_serdes(self, model: BaseChatModel, snapshot: Any) -> None:
        super().test_serdes(model, snapshot)


class TestAddTool(ToolsUnitTests):
    @property
    def tool_constructor(self) -> BaseTool:
        return add

    @property
    def tool_invoke_params_example(self) -> dict:
        return {"a": 2, "b": 3}


class TestSubtractTool(ToolsUnitTests):
    @property
    def tool_constructor(self) -> BaseTool:
        return subtract

    @property
    def tool_invoke_params_example(self) -> dict:
        return {"a": 7, "b": 10}


class TestMultiplyTool(ToolsUnitTests):
    @property
    def tool_constructor(self) -> BaseTool:
        return multiply

    @property
    def tool_invoke_params_example(self) -> dict:
        return {"a": 2.5, "b": 4}


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


async def test_the_agent_loop_with_arithmetic():
    """The standard `test_agent_loop`, with a question this model can answer: a tool call, its
    result fed back, then the answer."""
    tools = [add, final_answer]
    model = MODEL.bind_tools(tools, tool_choice="required")
    question = HumanMessage("what is 2 + 3")
    asked = await model.ainvoke([question])
    [call] = asked.tool_calls
    assert call["name"] == "add" and call["args"] == {"a": 2, "b": 3}
    result = await add.ainvoke(call)
    assert isinstance(result, ToolMessage) and result.text == "5"
    [answered] = (await model.ainvoke([question, asked, result])).tool_calls
    assert answered["name"] == "final_answer" and answered["args"]["answer"] == "2 + 3 = **5**"


def test_a_forced_tool_call_it_cannot_make_is_refused_not_answered_in_words():
    model = MODEL.bind_tools([add], tool_choice="any")
    with pytest.raises(ValueError, match="cannot honour tool_choice='any' here"):
        model.invoke([HumanMessage("hello")])
    assert model.invoke([HumanMessage("what is 2 + 3")]).tool_calls, "the arithmetic is still planned"
