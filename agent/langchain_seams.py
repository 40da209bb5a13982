"""Where the agent relies on how LangChain works inside, not only on what it promises
(tests/agent/test_langchain_seams.py checks each assumption against the installed LangChain).

A tool call through `BaseTool.arun` reads the type hints of the tool's `_arun` to find the
parameter that takes the `RunnableConfig`, and `StructuredTool._arun` reads its function's the
same way; both on every call. `StructuredTool._arun`'s own annotations are strings (its module
postpones them), so every call compiled and evaluated them again, the largest part of what a
call costs besides the tool's work. `AsyncTool._arun` has the same parameters with annotations
that are objects already (this module does not postpone them), so reading them is a lookup.

It also reads both functions' signatures (`inspect.signature`) on every call, to see whether
they take `run_manager` or `callbacks`. A function's `__signature__`, when set, is what
`inspect.signature` returns (Python's documented protocol), so `AsyncTool._arun` and each
function `async_tool` wraps keep theirs, computed once.
"""

# No `from __future__ import annotations` here: `AsyncTool._arun`'s annotations must be objects.

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForToolRun
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import StructuredTool
from pydantic import BaseModel


class AsyncTool(StructuredTool):
    """A `StructuredTool` that runs an async function, as `@tool` builds one, with annotations
    LangChain can read without evaluating them on each call."""

    async def _arun(
        self,
        *args: Any,
        config: RunnableConfig,
        run_manager: AsyncCallbackManagerForToolRun | None = None,
        **kwargs: Any,
    ) -> Any:
        return await super()._arun(*args, config=config, run_manager=run_manager, **kwargs)


def keep_signature(function: Callable[..., Any]) -> None:
    """Compute `function`'s signature once, for `inspect.signature` to return from now on."""
    function.__signature__ = inspect.signature(function)  # type: ignore[attr-defined]


keep_signature(AsyncTool._arun)


def async_tool(args_schema: type[BaseModel]) -> Callable[[Callable[..., Awaitable[Any]]], AsyncTool]:
    """`@tool(args_schema=...)` for an async function, giving an `AsyncTool`: the same name,
    description and schema (its annotations should be objects too: see agent/tools.py)."""

    def build(coroutine: Callable[..., Awaitable[Any]]) -> AsyncTool:
        keep_signature(coroutine)
        return AsyncTool.from_function(
            coroutine=coroutine,
            name=coroutine.__name__,
            args_schema=args_schema,
            error_on_invalid_docstring=True,
            extras=None,
        )

    return build
