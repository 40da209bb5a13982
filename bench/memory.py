"""What one browser session costs the server in memory, typical and at the limits.

    python -m bench.memory [--sessions 200] [--big-sessions 20]

`python app.py` (offline model, default limits) is served on 127.0.0.1. Gradio
keeps each session's conversation (up to `AGENT_MAX_SESSIONS` sessions), so
the server's resident memory grows with sessions. Printed: RSS growth per
session for typical sessions (three short questions each), and for sessions
that send the largest message a request may carry (`AGENT_MAX_REQUEST_BYTES`)
and then ask again, which trims the kept conversation to `AGENT_MAX_CHAT_CHARS`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import psutil

from bench.report import machine_line, table
from deploy.processes import ServedProcess
from support.calibration import calibrate
from support.gradio_http import GradioChatClient
from support.servers import MANY_VISITORS_ENV, app_environment, free_port

TYPICAL = ["What is (2 + 3) * (4 + 5)?", "times 2", "2 to the power of 10, minus 24"]
BIG_MESSAGE_CHARS = 990_000  # with the JSON around it, just under the 1 MB request cap


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
