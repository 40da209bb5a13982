"""The assumptions agent/langchain_seams.py makes about the installed LangChain, and that its
replacements behave as LangChain's own."""

import inspect
from typing import Any
from uuid import UUID

import pytest
from langchain_core.callbacks import AsyncCallbackHandler
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import StructuredTool, tool
from pydantic import BaseModel, ValidationError

from agent.langchain_seams import AsyncTool, async_tool
from agent.tools import TOOLS, TwoNumbers


def test_langchain_still_postpones_structured_tool_annotations():
    """Why `AsyncTool` exists: when this fails, LangChain's own `_arun` is as cheap to read, and
    `AsyncTool` can go."""
    assert all(isinstance(hint, str) for hint in StructuredTool._arun.__annotations__.values())


def test_async_tool_takes_the_same_parameters_with_annotations_that_are_objects():
    ours, theirs = inspect.signature(AsyncTool._arun), inspect.signature(StructuredTool._arun)
    assert list(ours.parameters) == list(theirs.parameters)
    assert [p.kind for p in ours.parameters.values()] == [p.kind for p in theirs.parameters.values()]
    assert not any(isinstance(hint, str) for hint in AsyncTool._arun.__annotations__.values())
    assert AsyncTool._arun.__annotations__["config"] is RunnableConfig


@pytest.mark.parametrize(
    "function", [AsyncTool._arun, *(t.coroutine for t in TOOLS)], ids=lambda f: f.__qualname__
)
def test_a_kept_signature_is_the_functions_own(function):
    kept = function.__signature__
    del function.__signature__
    try:
        assert inspect.signature(function) == kept
    finally:
        function.__signature__ = kept
    assert inspect.signature(function) is kept


@pytest.mark.parametrize("built_in", TOOLS, ids=lambda t: t.name)
def test_each_tool_is_what_langchains_tool_decorator_builds(built_in):
    theirs = tool(args_schema=built_in.args_schema)(built_in.coroutine)
    assert isinstance(built_in, AsyncTool)
    fields = StructuredTool.model_fields
    assert {f: getattr(built_in, f) for f in fields} == {f: getattr(theirs, f) for f in fields}
    assert built_in.model_fields_set == theirs.model_fields_set
    assert built_in.tool_call_schema.model_json_schema() == theirs.tool_call_schema.model_json_schema()
    assert not any(isinstance(hint, str) for hint in built_in.coroutine.__annotations__.values())


class Seen(AsyncCallbackHandler):
    def __init__(self) -> None:
        self.events: list[tuple[str, UUID, UUID | None]] = []

    async def on_tool_start(self, serialized, input_str, *, run_id, parent_run_id=None, **kwargs):
        self.events.append(("start", run_id, parent_run_id))

    async def on_tool_end(self, output, *, run_id, parent_run_id=None, **kwargs):
        self.events.append(("end", run_id, parent_run_id))


async def test_an_async_tool_gets_the_config_and_its_run_manager_as_langchains_does():
    received: dict[str, Any] = {}

    async def traced_sum(
        a: int | float, b: int | float, config: RunnableConfig, callbacks: Any = None
    ) -> str:
        """Add two numbers."""
        received.update(config=config, callbacks=callbacks)
        return str(a + b)

    class Sum(BaseModel):
        a: int | float
        b: int | float

    handler = Seen()
    summed = async_tool(Sum)(traced_sum)
    output = await summed.ainvoke({"a": 2, "b": 3}, {"callbacks": [handler], "tags": ["t"]})

    assert output == "5"
    assert received["config"]["tags"] == ["t"]
    child = received["callbacks"]
    (start_id, end_id) = (handler.events[0][1], handler.events[1][1])
    assert [kind for kind, _, _ in handler.events] == ["start", "end"] and start_id == end_id
    assert child.parent_run_id == start_id


async def test_an_async_tool_still_validates_its_arguments():
    @async_tool(TwoNumbers)
    async def halve(a: int | float, b: int | float) -> str:
        """Halve a."""
        return str(a / 2)

    with pytest.raises(ValidationError):
        await halve.ainvoke({"a": "not a number", "b": 1})
    assert await halve.ainvoke({"a": 3, "b": 0}) == "1.5"
