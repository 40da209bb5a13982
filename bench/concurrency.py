"""Concurrent chats through the real server, next to the designs it improves on.

    python -m bench.concurrency [--sizes 1,10,50,100] [--token-ms 30] [--only NAME] [--env KEY=VALUE ...]
                                [--slower-machine]

Each design is served as its own process on 127.0.0.1; N chats are started at
once through the browser's path (textbox submit → streamed chatbot updates) by
a lean httpx client. Printed per N: wall time until every chat finished, its
ratio to one chat, the server's CPU time, the updates each chat received (per
second of its whole turn), how long the chats waited for their first update, and
the longest any page went without one while its turn streamed.

- ours: `python app.py`, the offline model at `--token-ms` per token (a 2–3 s chat), the frame set by
  the server's own measurement (printed over each run from its log lines);
- ours, pacing off: the same with `AGENT_UI_FRAME_MS=0 AGENT_UI_UPDATES_PER_S=0`;
- bare ChatInterface: `bench.bare_chat`, the same tokens at the same pace, one yield per token.

`--env` adds settings to every served app (e.g. `--env AGENT_UI_UPDATES_PER_S=600`), for trying a change.
`--slower-machine` simulates a slower one (Linux, 2 cores or more): each served app is pinned to core 0
(`taskset -c 0`) next to a neighbour that burns that core all the time, and the load generator runs on
core 1; a second calibration line gives the CPython loop's time on that shared core.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise

from bench.bare_chat import QUESTION
from bench.report import machine_line, table
from deploy.processes import PROJECT_ROOT, ServedProcess
from support.calibration import calibrate
from support.gradio_http import ChatStream, GradioChatClient
from support.servers import MANY_VISITORS_ENV, app_environment, free_port

FRAME_LINE = re.compile(r"(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d,\d{3}) INFO ui\.pacing pacing: frame (\d+) ms")


@dataclass(frozen=True)
class Design:
    name: str
    module: list[str]
    env: dict[str, str]


def designs(token_ms: float, extra_env: dict[str, str]) -> list[Design]:
    # Every chat comes from 127.0.0.1 here, standing for many visitors: lift the per-client limits.
    pace = {"AGENT_OFFLINE_TOKEN_DELAY_MS": str(token_ms), **MANY_VISITORS_ENV, **extra_env}
    return [
        Design("ours: measured frame", ["app.py"], pace),
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


async def measure(
    design: Design, sizes: list[int], pin: Sequence[str] = ()
) -> tuple[list[list[str]], list[str]]:
    """The table's rows for `design`, and the frame the server set over each run (if it paced).
    `pin` prefixes the server's command (`taskset -c 0`)."""
    port = free_port()
    server = ServedProcess(
        [*pin, sys.executable, *design.module, "--port", str(port)], app_environment(**design.env)
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
            firsts = [s.first_update_s for s in streams if s.first_update_s is not None]
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
                    f"{statistics.median(firsts):.2f} / {max(firsts):.2f}" if firsts else "-",
                    f"{max(longest_gap_s(s) for s in streams):.2f}",
                    failed,
                ]
            )
        return rows, timelines
    finally:
        server.stop()


def longest_gap_s(stream: ChatStream) -> float:
    """The longest the chat's page went without an update while the turn streamed."""
    return max((later - earlier for earlier, later in pairwise(stream.update_times)), default=0.0)


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


@contextmanager
def slower_machine() -> Iterator[list[str]]:
    """Core 0 shared with a process that always runs: the prefix that pins a server there.
    Meanwhile this process (the load generator) runs on the other cores."""
    pinned = ["taskset", "-c", "0"]
    neighbour = ServedProcess([*pinned, sys.executable, "-c", "while True: pass"], app_environment())
    own_cores = os.sched_getaffinity(0)
    os.sched_setaffinity(0, own_cores - {0})
    try:
        yield pinned
    finally:
        os.sched_setaffinity(0, own_cores)
        neighbour.stop()


def shared_core_loop_s(pinned: Sequence[str]) -> float:
    """The calibration loop's time on the pinned core, next to its neighbour."""
    loop = "from support.calibration import cpython_loop_s; print(min(cpython_loop_s() for _ in range(3)))"
    ran = subprocess.run(
        [*pinned, sys.executable, "-c", loop], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    )
    return float(ran.stdout)


async def main(
    sizes: list[int], token_ms: float, only: str | None, extra_env: dict[str, str], slower: bool
) -> None:
    rows, timelines, shared_loop_s = [], [], None
    with slower_machine() if slower else nullcontext([]) as pin:
        for design in designs(token_ms, extra_env):
            if only is None or only in design.name:
                design_rows, design_timelines = await measure(design, sizes, pin)
                rows.extend(design_rows)
                timelines.extend(design_timelines)
        if slower:
            shared_loop_s = shared_core_loop_s(pin)
    print(f"Concurrent chats through the server: “{QUESTION}”, offline model at {token_ms} ms per token")
    if extra_env:
        print(f"settings added to every app (they override the design names): {extra_env}")
    print(machine_line())
    print(calibrate().line())
    if shared_loop_s is not None:
        print(
            f"simulated slower machine: each server on core 0 next to a process burning it; "
            f"the CPython loop there {shared_loop_s:.2f} s"
        )
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
                "first update s (median / max)",
                "longest gap s",
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
    parser.add_argument(
        "--slower-machine", action="store_true", help="each server on core 0, shared with a CPU burner"
    )
    args = parser.parse_args()
    extra_env = dict(setting.split("=", 1) for setting in args.env)
    sizes = [int(n) for n in args.sizes.split(",")]
    asyncio.run(main(sizes, args.token_ms, args.only, extra_env, args.slower_machine))
