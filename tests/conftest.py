from __future__ import annotations

import asyncio
import os
import re
import selectors
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage

from agent import Settings, run_agent
from agent.events import AgentEvent

TURN_TIMEOUT_S = 20.0
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def served_app() -> Iterator[str]:
    """The app, offline model at 10 ms a token, served in this process on a free port."""
    import app
    from ui.pacing import UpdateBudget

    demo = app.create_app(Settings(offline_token_delay_ms=10), UpdateBudget(), concurrency=250)
    port = free_port()
    demo.launch(server_port=port, prevent_thread_lock=True, quiet=True, max_threads=250)
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


class ServedProcess:
    """An app started as its own process, with everything it printed so far."""

    def __init__(self, command: Sequence[str], env: dict[str, str], cwd: Path = PROJECT_ROOT) -> None:
        self.process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.output = ""

    def wait_for(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        """Read the process's output until `pattern` appears (or fail with what it printed)."""
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            while not (match := re.search(pattern, self.output)):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.process.poll() is not None:
                    raise AssertionError(f"{pattern!r} not printed; output so far:\n{self.output}")
                if selector.select(remaining):
                    line = self.process.stdout.readline()
                    self.output += line
        return match

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def app_environment(**overrides: str) -> dict[str, str]:
    """The current environment without any OpenAI or Gradio settings, plus `overrides`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AGENT_", "GRADIO_"))}
    env.update(OPENAI_API_KEY="", AGENT_OFFLINE_TOKEN_DELAY_MS="1", PYTHONUNBUFFERED="1")
    env.update(overrides)
    return env


@pytest.fixture
def start_app() -> Iterator:
    """Start `python app.py ...` (or another command) and stop it after the test."""
    started: list[ServedProcess] = []

    def start(*args: str, command: Sequence[str] | None = None, env: dict[str, str] | None = None,
              cwd: Path = PROJECT_ROOT) -> ServedProcess:
        served = ServedProcess(command or [sys.executable, "app.py", *args], env or app_environment(), cwd)
        started.append(served)
        return served

    yield start
    for served in started:
        served.stop()
