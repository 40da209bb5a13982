"""Cost of a turn as the conversation grows: 1 and 20 chats after 0/25/100/200 prior turns.

    python -m bench.history [--turns 0,25,100,200] [--chats 20] [--token-ms 20] [--paths browser,page,api]
                            [--app-dir DIR]

`python app.py` is served as its own process (offline model at `--token-ms` per
token). One real turn is taken through `/chat` and repeated to script the prior
history (each turn the app's own 7 messages); every chat gets its own session,
whose conversation is loaded as a page loads a saved one. Then, per history
length, one chat alone and `--chats` at once take a turn:

- browser: the textbox submit and its streamed turn (what the issue measured);
- page: every call a page's submit makes: also appending the user message to the
  chatbot before the turn, and synchronising the chat after it;
- api: `/chat`, which streams only the new turn.

`--app-dir` serves the `app.py` of another checkout (e.g. the code before a change).

Printed: wall time, its ratio to the same number of fresh chats in this run, the
server's CPU per streamed update (all its CPU during the turns over their updates),
bytes per update (the mean over a turn, its one full send of the conversation
included) and of the first update, the bytes the page's other calls receive per
turn, and the slowest chat's updates/s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import gradio as gr

from bench.bare_chat import QUESTION
from bench.report import machine_line, table
from deploy.processes import PROJECT_ROOT, ServedProcess
from support.calibration import calibrate
from support.gradio_http import ChatStream, GradioChatClient, ask_or_fail
from support.servers import MANY_VISITORS_ENV, app_environment, free_port

Route = Literal["browser", "page", "api"]


@dataclass
class Run:
    """What `count` chats with `turns` prior turns measured, on one path."""

    path: Route
    turns: int
    count: int
    wall_s: float
    cpu_s: float
    streams: list[ChatStream]

    @property
    def updates(self) -> int:
        return sum(s.updates for s in self.streams)

    def row(self, fresh_wall_s: float) -> list[object]:
        streams = [s for s in self.streams if s.updates] or self.streams
        return [
            self.path,
            self.turns,
            self.count,
            f"{self.wall_s:.2f}",
            f"{self.wall_s / fresh_wall_s:.2f}×",
            f"{1000 * self.cpu_s / max(self.updates, 1):.1f}",
            f"{statistics.median(s.payload_bytes / max(s.updates, 1) for s in streams) / 1000:.2f}",
            f"{statistics.median(s.first_update_bytes for s in streams) / 1000:.1f}",
            f"{statistics.median(s.side_bytes for s in streams) / 1000:.1f}",
            f"{statistics.median(s.updates for s in streams):.0f}",
            f"{min(s.updates / s.total_s if s.completed else 0.0 for s in self.streams):.1f}",
            sum(not s.completed for s in self.streams),
        ]


async def sample_turn(client: GradioChatClient) -> list[dict]:
    """One real turn of the app, as the page's chatbot holds it (user message included)."""
    stream = await client.ask(QUESTION, mode="api")
    if not stream.completed:
        raise SystemExit(f"the sample turn failed: {stream.error}")
    messages = [{"role": "user", "content": QUESTION}, *stream.messages]
    return gr.Chatbot().postprocess(messages).model_dump()


async def run_chats(
    client: GradioChatClient, server: ServedProcess, path: Route, history: list[dict], count: int
) -> tuple[float, float, list[ChatStream]]:
    sessions = [uuid.uuid4().hex for _ in range(count)]
    await asyncio.gather(*(client.show(session, history) for session in sessions))
    mode = "api" if path == "api" else "browser"
    chatbot = history if path == "page" else None
    cpu_before = server.cpu_seconds()
    started = time.perf_counter()
    streams = await asyncio.gather(
        *(ask_or_fail(client, QUESTION, mode=mode, session_hash=s, chatbot=chatbot) for s in sessions)
    )
    return time.perf_counter() - started, server.cpu_seconds() - cpu_before, streams


async def measure(
    turn_counts: list[int], chats: int, token_ms: float, paths: list[Route], app_dir: Path
) -> list[Run]:
    port = free_port()
    # Every chat comes from 127.0.0.1 here, standing for many visitors: lift the per-client limit.
    env = app_environment(AGENT_OFFLINE_TOKEN_DELAY_MS=str(token_ms), **MANY_VISITORS_ENV)
    server = ServedProcess([sys.executable, "app.py", "--port", str(port)], env, cwd=app_dir)
    try:
        url = server.wait_for_url()
        async with GradioChatClient(url) as client:
            turn = await sample_turn(client)
            await run_chats(client, server, "browser", [], 2)  # warm up
            runs = []
            for turns in turn_counts:
                for path in paths:
                    for count in (1, chats):
                        wall, cpu, streams = await run_chats(client, server, path, turn * turns, count)
                        runs.append(Run(path, turns, count, wall, cpu, streams))
            return runs
    finally:
        server.stop()


def report(runs: list[Run]) -> str:
    fresh = {(r.path, r.count): r.wall_s for r in runs if r.turns == 0}
    rows = [r.row(fresh.get((r.path, r.count), r.wall_s)) for r in runs]
    header = [
        "path",
        "prior turns",
        "chats",
        "wall s",
        "vs fresh",
        "CPU ms/update",
        "kB/update",
        "first update kB",
        "other calls kB",
        "updates",
        "min upd/s",
        "failed",
    ]
    return table(header, rows)


async def main(
    turn_counts: list[int], chats: int, token_ms: float, paths: list[Route], app_dir: Path
) -> None:
    load_before = os.getloadavg()[0]
    runs = await measure(turn_counts, chats, token_ms, paths, app_dir)
    print(f"A turn after a long conversation: “{QUESTION}”, offline model at {token_ms} ms per token")
    print(calibrate().line())
    print(f"{machine_line()}; load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after")
    print(report(runs))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--turns", default="0,25,100,200")
    parser.add_argument("--chats", type=int, default=20)
    parser.add_argument("--token-ms", type=float, default=20)
    parser.add_argument("--paths", default="browser,page,api")
    parser.add_argument("--app-dir", type=Path, default=PROJECT_ROOT)
    args = parser.parse_args()
    turn_counts = [int(n) for n in args.turns.split(",")]
    asyncio.run(main(turn_counts, args.chats, args.token_ms, args.paths.split(","), args.app_dir))
