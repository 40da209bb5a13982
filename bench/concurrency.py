"""Concurrent chats through the real server, next to the designs it improves on.

    python -m bench.concurrency [--sizes 1,10,50,100] [--token-ms 30] [--only NAME] [--env KEY=VALUE ...]

Each design is served as its own process on 127.0.0.1; N chats are started at
once through the browser's path (textbox submit → streamed chatbot updates) by
a lean httpx client. Printed per N: wall time until every chat finished, its
ratio to one chat, the server's CPU time, and the updates each chat received.

- ours: `python app.py`, the offline model at `--token-ms` per token (a 2–3 s chat), the frame set by
  the server's own measurement (printed over each run from its log lines);
- ours, pacing off: the same with `AGENT_UI_FRAME_MS=0 AGENT_UI_UPDATES_PER_S=0`;
- bare ChatInterface: `bench.bare_chat`, the same tokens at the same pace, one yield per token.

`--env` adds settings to every served app (e.g. `--env AGENT_UI_UPDATES_PER_S=600`), for trying a change.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import datetime

from bench.bare_chat import QUESTION
from bench.report import machine_line, table
from deploy.processes import ServedProcess
from support.calibration import calibrate
from support.gradio_http import GradioChatClient
from support.servers import app_environment, free_port

FRAME_LINE = re.compile(r"(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d,\d{3}) INFO ui\.pacing pacing: frame (\d+) ms")


@dataclass(frozen=True)
class Design:
    name: str
    module: list[str]
    env: dict[str, str]


def designs(token_ms: float, extra_env: dict[str, str]) -> list[Design]:
    # Every chat comes from 127.0.0.1 here, standing for many visitors: lift the per-client limit.
    pace = {
        "AGENT_OFFLINE_TOKEN_DELAY_MS": str(token_ms),
        "AGENT_MAX_CHATS_PER_CLIENT": "100000",
        **extra_env,
    }
    return [
        Design("ours: measured frame, cap 650 upd/s", ["app.py"], pace),
        Design(
            "ours, pacing off", ["app.py"], {**pace, "AGENT_UI_FRAME_MS": "0", "AGENT_UI_UPDATES_PER_S": "0"}
        ),
        Design(
            "bare ChatInterface, yield per token", ["-m", "bench.bare_chat", "--token-ms", str(token_ms)], {}
        ),
    ]


async def run_chats(url: str, count: int) -> tuple[float, list]:
    async with GradioChatClient(url) as client:
        started = time.perf_counter()
        streams = await asyncio.gather(*(client.ask(QUESTION, mode="browser") for _ in range(count)))
        return time.perf_counter() - started, streams


async def measure(design: Design, sizes: list[int]) -> tuple[list[list[str]], list[str]]:
    """The table's rows for `design`, and the frame the server set over each run (if it paced)."""
    port = free_port()
    server = ServedProcess(
        [sys.executable, *design.module, "--port", str(port)], app_environment(**design.env)
    )
    try:
        url = server.wait_for_url()
        await run_chats(url, 2)  # warm up
        rows, timelines, single = [], [], None
        for count in sizes:
            cpu_before, printed, started = server.cpu_seconds(), len(server.output), datetime.now()
            wall, streams = await run_chats(url, count)
            cpu = server.cpu_seconds() - cpu_before
            await asyncio.sleep(0.2)  # the probe's last line: it stops at its next wake-up
            if frames := frame_timeline(server.output[printed:], started):
                timelines.append(f"{design.name}, {count} chats: {frames}")
            single = single or wall
            rates = [s.updates / s.total_s for s in streams]
            updates = sum(s.updates for s in streams)
            failed = sum(not s.completed for s in streams)
            rows.append(
                [
                    design.name,
                    count,
                    f"{wall:.2f}",
                    f"{wall / single:.2f}×",
                    f"{cpu:.2f}",
                    f"{1000 * cpu / max(1, updates):.2f}",
                    f"{statistics.median(s.updates for s in streams):.0f}",
                    f"{min(rates):.1f}",
                    f"{statistics.median(rates):.1f}",
                    failed,
                ]
            )
        return rows, timelines
    finally:
        server.stop()


def frame_timeline(log: str, started: datetime) -> str:
    """The frame as the server's pacing log lines reported it, against seconds since `started`:
    `0.4 s 50 ms · 0.9 s 98 ms · …`, ending with the largest frame."""
    points = [
        ((datetime.strptime(f"{day} {clock}", "%Y-%m-%d %H:%M:%S,%f") - started).total_seconds(), float(ms))
        for day, clock, ms in FRAME_LINE.findall(log)
    ]
    if not points:
        return ""
    steps = " · ".join(f"{at:.1f} s {ms:.0f} ms" for at, ms in points)
    return f"{steps} (largest {max(ms for _, ms in points):.0f} ms)"


async def main(sizes: list[int], token_ms: float, only: str | None, extra_env: dict[str, str]) -> None:
    rows, timelines = [], []
    for design in designs(token_ms, extra_env):
        if only is None or only in design.name:
            design_rows, design_timelines = await measure(design, sizes)
            rows.extend(design_rows)
            timelines.extend(design_timelines)
    print(f"Concurrent chats through the server: “{QUESTION}”, offline model at {token_ms} ms per token")
    if extra_env:
        print(f"settings added to every app (they override the design names): {extra_env}")
    print(machine_line())
    print(calibrate().line())
    print(
        table(
            [
                "design",
                "chats",
                "wall s",
                "vs 1 chat",
                "server CPU s",
                "CPU ms/update",
                "updates/chat",
                "min upd/s",
                "median upd/s",
                "failed",
            ],
            rows,
        )
    )
    if timelines:
        print("The frame the server set over each run (from its pacing log lines, seconds since the start):")
        print("\n".join(timelines))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1,10,50,100")
    parser.add_argument("--token-ms", type=float, default=30)
    parser.add_argument("--only", help="run only the designs whose name contains this")
    parser.add_argument(
        "--env", action="append", default=[], metavar="KEY=VALUE", help="a setting for every app"
    )
    args = parser.parse_args()
    extra_env = dict(setting.split("=", 1) for setting in args.env)
    asyncio.run(main([int(n) for n in args.sizes.split(",")], args.token_ms, args.only, extra_env))
