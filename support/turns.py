"""Running one agent turn to its end and keeping its events, with a deadline."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage

from agent import Settings, run_agent
from agent.events import AgentEvent
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
