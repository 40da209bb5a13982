from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator, Sequence

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage

from agent import Settings, run_agent
from agent.events import AgentEvent

TURN_TIMEOUT_S = 20.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def served_app() -> Iterator[str]:
    """The app, offline model at 10 ms a token, served in this process on a free port."""
    import app
    from ui.pacing import UpdateBudget

    demo = app.create_app(Settings(offline_token_delay_ms=10), UpdateBudget(), concurrency=50)
    port = free_port()
    demo.launch(server_port=port, prevent_thread_lock=True, quiet=True, max_threads=60)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


@pytest.fixture
def offline_settings() -> Settings:
    """The offline model with no pacing: fast, deterministic turns."""
    return Settings(offline_token_delay_ms=0)


async def collect(events: AsyncIterator[AgentEvent], timeout: float = TURN_TIMEOUT_S) -> list[AgentEvent]:
    """All events of a turn; a turn that does not end in time fails the test."""
    async with asyncio.timeout(timeout):
        return [event async for event in events]


async def run_turn_events(
    question: str,
    settings: Settings,
    history: Sequence[BaseMessage] = (),
    chat_model: BaseChatModel | None = None,
) -> list[AgentEvent]:
    return await collect(run_agent(question, history, settings, chat_model))
