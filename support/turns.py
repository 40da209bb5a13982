"""Running one agent turn to its end and keeping its events, with a deadline; counting the
turns still running."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Sequence

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage

from agent import Settings, run_agent
from agent.events import AgentEvent
from agent.executor import TURN_TASK_NAME
from agent.toolbox import ARITHMETIC, Toolbox

TURN_TIMEOUT_S = 20.0


async def collect(events: AsyncIterator[AgentEvent], timeout: float = TURN_TIMEOUT_S) -> list[AgentEvent]:
    """All events of a turn; a turn that does not end in time fails the test."""
    async with asyncio.timeout(timeout):
        return [event async for event in events]


async def run_turn_events(
    question: str,
    settings: Settings,
    history: Sequence[BaseMessage] = (),
    chat_model: BaseChatModel | None = None,
    toolbox: Toolbox = ARITHMETIC,
) -> list[AgentEvent]:
    return await collect(run_agent(question, history, settings, chat_model, toolbox=toolbox))


def running_turns() -> int:
    """Agent turns running in this process right now, on any event loop (an app served in
    this process runs its own loop, in Gradio's server thread)."""
    return sum(
        1
        for task in gc.get_objects()
        if isinstance(task, asyncio.Task) and task.get_name() == TURN_TASK_NAME and not task.done()
    )
