from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import gradio as gr
import psutil
import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage

from agent import Settings, run_agent
from agent.events import AgentEvent
from bench.servers import PROJECT_ROOT, ServedProcess, app_environment, free_port, left_running
from tests.support.scripted_openai import Script, ScriptedOpenAI, serve_scripted_openai
from ui.guard import GuardSettings

TURN_TIMEOUT_S = 20.0


# Tests that play many visitors from 127.0.0.1 lift the per-client limit; tests/test_public.py
# keeps the defaults.
MANY_VISITORS = GuardSettings(max_chats_per_client=1000)


def launch(demo: gr.Blocks, guard: GuardSettings, **options: Any) -> str:
    """Serve `demo` in this process on a free port, protected as `python app.py` serves it
    (`guard` is the one `demo` was created with)."""
    import app

    port = free_port()
    demo.launch(
        **app.serve_options(demo, guard), server_port=port, prevent_thread_lock=True, quiet=True, **options
    )
    return f"http://127.0.0.1:{port}/"


@pytest.fixture(scope="session", autouse=True)
def nothing_left_running() -> Iterator[None]:
    """Fail the session if a process the tests started is still alive at its end."""
    yield
    left = left_running()
    assert not left, "still running after the tests:\n" + "\n".join(_describe(p) for p in left)


def _describe(process: psutil.Process) -> str:
    try:
        return f"{process.pid} {' '.join(process.cmdline())}"
    except psutil.Error:
        return str(process.pid)


@pytest.fixture(scope="session")
def served_app() -> Iterator[str]:
    """The app, offline model at 10 ms a token, served in this process on a free port."""
    import app
    from ui.pacing import UpdateBudget

    demo = app.create_app(
        Settings(offline_token_delay_ms=10), UpdateBudget(), concurrency=250, guard=MANY_VISITORS
    )
    yield launch(demo, MANY_VISITORS, max_threads=250)
    demo.close()


@pytest.fixture(scope="session")
def scripted_openai_server() -> Iterator[ScriptedOpenAI]:
    with serve_scripted_openai() as server:
        yield server


@pytest.fixture
def scripted_openai(scripted_openai_server: ScriptedOpenAI) -> Iterator[Script]:
    """This test's own script on the scripted OpenAI-compatible server (its own base URL)."""
    script = scripted_openai_server.new_script()
    yield script
    scripted_openai_server.drop(script)


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


@pytest.fixture
def start_app() -> Iterator:
    """Start `python app.py ...` (or another command) and stop it after the test."""
    started: list[ServedProcess] = []

    def start(
        *args: str,
        command: Sequence[str] | None = None,
        env: dict[str, str] | None = None,
        cwd: Path = PROJECT_ROOT,
    ) -> ServedProcess:
        served = ServedProcess(command or [sys.executable, "app.py", *args], env or app_environment(), cwd)
        started.append(served)
        return served

    yield start
    for served in started:
        served.stop()
