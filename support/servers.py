"""Serving the app for a test or a benchmark: in this process (`launch`), or as its own process
(`deploy.processes.ServedProcess` with `app_environment`), on a free port of 127.0.0.1."""

from __future__ import annotations

import contextlib
import os
import socket
from typing import Any

import gradio as gr
import psutil

from deploy.processes import ServedProcess, group_members
from ui.guard import GuardSettings

# Tests that play many visitors from 127.0.0.1 lift the per-client limits; tests/test_public.py
# keeps the defaults.
MANY_VISITORS = GuardSettings(max_chats_per_client=1000, max_calls_per_s=0, max_streams_per_client=10_000)
MANY_VISITORS_ENV = {
    "AGENT_MAX_CHATS_PER_CLIENT": "100000",
    "AGENT_MAX_CALLS_PER_S": "0",
    "AGENT_MAX_STREAMS_PER_CLIENT": "100000",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch(demo: gr.Blocks, guard: GuardSettings, **options: Any) -> str:
    """Serve `demo` in this process on a free port, protected as `python app.py` serves it
    (`guard` is the one `demo` was created with)."""
    import app

    port = free_port()
    demo.launch(
        **app.serve_options(demo, guard), server_port=port, prevent_thread_lock=True, quiet=True, **options
    )
    return f"http://127.0.0.1:{port}/"


def app_environment(**overrides: str) -> dict[str, str]:
    """The current environment without any OpenAI, agent or Gradio settings, plus `overrides`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AGENT_", "GRADIO_"))}
    env.update(OPENAI_API_KEY="", AGENT_OFFLINE_TOKEN_DELAY_MS="1", PYTHONUNBUFFERED="1")
    env.update(overrides)
    return env


def left_running() -> list[psutil.Process]:
    """Live processes from any group started here, and live children of this process."""
    left = {member.pid: member for group in ServedProcess.started_groups for member in group_members(group)}
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            if child.status() != psutil.STATUS_ZOMBIE:
                left[child.pid] = child
    return list(left.values())
