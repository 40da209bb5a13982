"""What one browser session costs the server in memory, typical and at the limits.

    python -m bench.memory [--sessions 200] [--big-sessions 20]

`python app.py` (offline model, default limits) is served on 127.0.0.1. Gradio
keeps each session's conversation (up to `AGENT_MAX_SESSIONS` sessions), so
the server's resident memory grows with sessions. Printed: RSS growth per
session for typical sessions (three short questions each), and for sessions
that send the largest message a request may carry (`AGENT_MAX_REQUEST_BYTES`)
and then ask again, which trims the kept conversation to `AGENT_MAX_CHAT_CHARS`.

Then the worst a client can make a session keep: conversations forged and sent
with the page's unqueued chat → state copy, which the guard cuts to the chat's
limits (`AGENT_MAX_CHAT_MESSAGES` messages within `AGENT_MAX_CHAT_CHARS`) before
Gradio keeps them: a ~1 MB one of 18,000 messages (cut), and the largest ones
the guard lets through whole, in two shapes (few big texts; as many small parts
as a message may have).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import psutil

from agent import ServerSettings
from bench.report import machine_line, table
from deploy.processes import ServedProcess
from support.calibration import calibrate
from support.gradio_http import GradioChatClient
from support.servers import MANY_VISITORS_ENV, app_environment, free_port
from ui.safety import MAX_BLOCKS_PER_MESSAGE

TYPICAL = ["What is (2 + 3) * (4 + 5)?", "times 2", "2 to the power of 10, minus 24"]
BIG_MESSAGE_CHARS = 990_000  # with the JSON around it, just under the 1 MB request cap
LIMITS = ServerSettings()


def forged(messages: int, blocks: int, chars_per_block: int, tag: str) -> list[dict[str, Any]]:
    """A conversation of `messages` alternating user / assistant messages, each of `blocks` text
    parts of `chars_per_block` characters (all different, as a client could send them)."""

    def text(n: int, b: int) -> str:
        return f"{tag}{n}.{b}:".ljust(chars_per_block, "x")[:chars_per_block]

    return [
        {
            "role": ("user", "assistant")[n % 2],
            "content": [{"type": "text", "text": text(n, b)} for b in range(blocks)],
        }
        for n in range(messages)
    ]


def forged_shapes(tag: str) -> list[tuple[str, list[dict[str, Any]]]]:
    """The conversations the forged rows send, named for the table."""
    messages, chars = LIMITS.max_chat_messages, LIMITS.max_chat_chars
    parts = MAX_BLOCKS_PER_MESSAGE
    return [
        ("forged ~1 MB conversation, 13,000 messages (cut to the limits)", forged(13_000, 1, 10, tag)),
        (
            f"largest kept whole: {messages} messages, {chars:,} characters",
            forged(messages, 1, chars // messages, tag),
        ),
        (
            f"largest kept whole: {messages} messages of {parts} parts, {chars:,} characters",
            forged(messages, parts, chars // (messages * parts), tag),
        ),
    ]


def rss_mb(server: ServedProcess) -> float:
    return psutil.Process(server.process.pid).memory_info().rss / 2**20


async def sessions(url: str, count: int, questions: list[str], prefix: str) -> None:
    """`count` sessions, ten at a time, each asking `questions` in order."""
    limit = asyncio.Semaphore(10)

    async def session(n: int) -> None:
        async with limit, GradioChatClient(url) as client:
            for question in questions:
                stream = await client.ask(question, session_hash=f"{prefix}-{n}")
                assert stream.completed, stream.error

    await asyncio.gather(*(session(n) for n in range(count)))


async def forged_sessions(url: str, count: int, shape: int) -> None:
    """`count` sessions that each put forged conversation `shape` in their chat, as a client can with
    the page's unqueued chat → state copy (each session's own texts)."""
    async with GradioChatClient(url) as client:
        for n in range(count):
            [(_, conversation)] = [forged_shapes(f"s{n}-")[shape]]
            await client.show(f"forged-{shape}-{n}", conversation)


async def main(count: int, big_count: int) -> None:
    port = free_port()
    # All sessions come from 127.0.0.1 here, standing for many visitors: lift the per-client limit.
    env = app_environment(**MANY_VISITORS_ENV)
    server = ServedProcess([sys.executable, "app.py", "--port", str(port)], env)
    try:
        url = server.wait_for_url()
        await sessions(url, 5, TYPICAL, "warm-up")
        rows = []
        before = rss_mb(server)
        await sessions(url, count, TYPICAL, "typical")
        typical_kb = (rss_mb(server) - before) * 1024 / count
        rows.append([f"typical: {len(TYPICAL)} questions", count, f"{typical_kb:,.0f} kB"])
        before = rss_mb(server)
        await sessions(url, big_count, ["9" * BIG_MESSAGE_CHARS], "big")
        big_mb = (rss_mb(server) - before) / big_count
        rows.append(
            [f"one {BIG_MESSAGE_CHARS / 1e6:.2f} MB message (refused, kept)", big_count, f"{big_mb:,.2f} MB"]
        )
        before_trim = rss_mb(server)
        await sessions(url, big_count, ["what is 1 + 1"], "big")
        freed_mb = (before_trim - rss_mb(server)) / big_count
        rows.append(["… then one more question (trims it)", big_count, f"{-freed_mb:+,.2f} MB"])
        for shape, (name, _) in enumerate(forged_shapes("")):
            before = rss_mb(server)
            await forged_sessions(url, big_count, shape)
            rows.append([name, big_count, f"{(rss_mb(server) - before) / big_count:,.2f} MB"])
    finally:
        server.stop()
    print("Server memory per browser session (RSS growth / sessions), `python app.py` with default limits")
    print(machine_line())
    print(calibrate().line())
    print(table(["sessions doing", "sessions", "RSS per session"], rows))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--big-sessions", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(main(args.sessions, args.big_sessions))
