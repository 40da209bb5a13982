"""Serving the app for a test or a benchmark: in this process (`launch`), or as its own process
(`deploy.processes.ServedProcess` with `app_environment`), on a free port of 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import psutil
from langchain_core.language_models import BaseChatModel

from agent import ServerSettings, Settings
from deploy.processes import ServedProcess, group_members
from ui.lifecycle import Lifecycle, lifecycle_options
from ui.mcp_server import AgentMcpServer

# Tests that play many visitors from 127.0.0.1 lift the per-client limits; tests/test_public.py
# keeps the defaults.
MANY_VISITORS = ServerSettings(max_chats_per_client=1000, max_calls_per_s=0, max_streams_per_client=10_000)
MANY_VISITORS_ENV = {
    "AGENT_MAX_CHATS_PER_CLIENT": "100000",
    "AGENT_MAX_CALLS_PER_S": "0",
    "AGENT_MAX_STREAMS_PER_CLIENT": "100000",
}


def _ports_outside_the_ephemeral_range() -> range:
    """Ports the kernel never hands to an outgoing connection, so none is taken between our check
    and the server's bind (a port the kernel picks for us is in that range, and so is the one after it)."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    return _this_workers_share(range(max(1024, low - 12_000), low))


def _this_workers_share(ports: range) -> range:
    """Under pytest-xdist (`pytest -n N`) each worker process hands out ports from its own slice, so
    two workers never pick the same free port between one's check and its server's bind."""
    worker, count = os.environ.get("PYTEST_XDIST_WORKER", ""), os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if not (worker.startswith("gw") and count):
        return ports
    size = len(ports) // int(count)
    first = ports.start + int(worker.removeprefix("gw")) * size
    return range(first, first + size)


_handed_out: set[int] = set()


def free_ports(count: int) -> int:
    """The first of `count` consecutive ports of 127.0.0.1 that are free now and that this process
    has not handed out before (`python -m deploy.workers --port P` serves on P and its workers on
    the ports after it)."""
    candidates = _ports_outside_the_ephemeral_range()
    for _ in range(1000):
        first = random.randrange(candidates.start, candidates.stop - count)
        block = range(first, first + count)
        if _handed_out.isdisjoint(block) and all(_bindable(port) for port in block):
            _handed_out.update(block)
            return first
    raise RuntimeError(f"no {count} consecutive free ports in {candidates}")


def free_port() -> int:
    return free_ports(1)


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def launch(
    demo: gr.Blocks,
    guard: ServerSettings,
    lifecycle: Lifecycle | None = None,
    mcp: AgentMcpServer | None = None,
    **options: Any,
) -> str:
    """Serve `demo` in this process on a free port, protected as `python app.py` serves it
    (`guard` and `lifecycle` are the ones `demo` was created with; with `lifecycle`, stop it
    with `shut_down`), with its MCP endpoint if `mcp` is given."""
    import app

    port = free_port()
    served = app.serve_options(demo, guard, mcp)
    if lifecycle is not None:
        served = lifecycle_options(served, lifecycle)
    demo.launch(**served, server_port=port, prevent_thread_lock=True, quiet=True, **options)
    return f"http://127.0.0.1:{port}/"


@contextlib.contextmanager
def serving_model(model: BaseChatModel) -> Iterator[str]:
    """The app answering with `model` (a scripted one) for many visitors, served in this process
    while inside the block; its URL."""
    import app

    demo = app.create_app(Settings(), chat_model=model, guard=MANY_VISITORS)
    try:
        yield launch(demo, MANY_VISITORS)
    finally:
        demo.close()


def shut_down(demo: gr.Blocks, lifecycle: Lifecycle, timeout_s: float = 60) -> None:
    """Stop a `demo` that `launch` serves as `python app.py` stops on SIGTERM: drain `lifecycle`
    on the server's loop (its `on_shutdown` closers run: the conversation store), then close it."""
    if lifecycle.loop is not None and lifecycle.loop.is_running():
        asyncio.run_coroutine_threadsafe(lifecycle.drain(), lifecycle.loop).result(timeout_s)
    demo.close()


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
