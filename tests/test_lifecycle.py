"""One app process on SIGTERM or SIGINT: no new turns, running ones finish or end with a word, exit 0."""

import asyncio
import json
import re
import signal

import httpx
import pytest

from support.gradio_http import GradioChatClient
from support.servers import app_environment, free_port
from ui.lifecycle import CUT_SHORT, RESTARTING

pytestmark = pytest.mark.slow

QUESTION = "what is 1 + 2 + 3 + 4 + 5 + 6 + 7 + 8"
ANSWER = "= **36**"


def slow_app(start_app, grace_s: float, token_delay_ms: int = 60):
    port = free_port()
    env = app_environment(
        AGENT_SHUTDOWN_GRACE_S=str(grace_s),
        AGENT_OFFLINE_TOKEN_DELAY_MS=str(token_delay_ms),
        AGENT_MAX_CHATS_PER_CLIENT="1000",
    )
    served = start_app("--port", str(port), env=env)
    return served, served.wait_for_url(timeout=60)


def turn_lines(output: str) -> list[dict]:
    return [json.loads(line) for line in re.findall(r"agent\.turns (\{.*\})", output)]


def text_of(messages: list[dict]) -> str:
    return "\n".join(str(m.get("content")) for m in messages)


async def chats_until_signal(url: str, served, signum: int, chats: int, mode: str = "api"):
    """`chats` streaming chats; the signal once every one has streamed something."""
    async with GradioChatClient(url) as client:
        asks = [asyncio.ensure_future(client.ask(QUESTION, mode=mode)) for _ in range(chats)]
        async with httpx.AsyncClient() as http:
            for _ in range(200):
                if (await http.get(f"{url}/healthz")).json()["turns"] == chats:
                    break
                await asyncio.sleep(0.05)
            served.process.send_signal(signum)
            await asyncio.sleep(0.5)
            health = await http.get(f"{url}/healthz")
            late = await client.ask("what is 2 + 2", mode=mode)
        streams = await asyncio.gather(*asks)
    return streams, health, late


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_a_signal_lets_running_chats_finish_within_the_grace_and_exits_zero(start_app, signum):
    served, url = slow_app(start_app, grace_s=30)
    streams, health, late = await chats_until_signal(url, served, signum, chats=6)

    assert health.status_code == 503 and health.json()["status"] == "draining"
    assert late.refused and late.error == RESTARTING  # a new session: a 503 that says so
    assert all(s.completed and ANSWER in text_of(s.messages) for s in streams), [s.error for s in streams]
    assert served.process.wait(timeout=30) == 0
    lines = turn_lines(served.output)
    assert [line["outcome"] for line in lines] == ["finished"] * 6


async def test_chats_past_the_grace_end_with_the_restarting_line_and_are_logged(start_app):
    served, url = slow_app(start_app, grace_s=0.5, token_delay_ms=300)
    streams, _, _ = await chats_until_signal(url, served, signal.SIGTERM, chats=5, mode="browser")

    for stream in streams:
        assert stream.completed, stream.error
        assert CUT_SHORT in text_of(stream.messages)
        assert stream.messages[-1]["metadata"]["id"] == "turn-footer"
    assert served.process.wait(timeout=30) == 0
    lines = turn_lines(served.output)
    assert len(lines) == 5
    assert all(line["outcome"] == "cancelled" and line["reason"] == "shutdown" for line in lines)
    assert "5 turns cut short" in served.output


async def test_healthz_says_ready_and_counts_running_turns(start_app):
    _, url = slow_app(start_app, grace_s=1)
    async with httpx.AsyncClient() as http:
        ready = await http.get(f"{url}/healthz")
        posted = await http.post(f"{url}/healthz")
    assert (ready.status_code, ready.json()) == (200, {"status": "ready", "turns": 0})
    assert ready.headers["cache-control"] == "no-store"
    assert posted.status_code == 405
