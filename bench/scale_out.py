"""One app process against several behind nginx (cookie affinity), at many concurrent chats.

    python -m bench.scale_out [--workers 1,2] [--sizes 100,200] [--token-ms 30] [--updates-per-s 650]

For each worker count, `deploy.workers` starts that many `app.py` processes
behind nginx on 127.0.0.1 (the machine's update budget, `--updates-per-s`,
divided among them).
Chats take the browser's path (textbox submit → streamed updates), each with
its own affinity cookie as separate browsers would have. Printed per size: wall
time until every chat finished, its ratio to one chat alone on the same setup,
each worker's CPU time, and the slowest chat's updates/s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

from bench.bare_chat import QUESTION
from bench.report import machine_line, table
from deploy.workers import serve
from support.calibration import calibrate
from support.gradio_http import GradioChatClient, ask_or_fail
from support.servers import MANY_VISITORS_ENV, app_environment, free_port

COOKIE = "agent_route"


async def run_chats(url: str, count: int) -> tuple[float, list]:
    async with GradioChatClient(url, affinity_cookie=COOKIE) as client:
        started = time.perf_counter()
        streams = await asyncio.gather(*(ask_or_fail(client, QUESTION, mode="browser") for _ in range(count)))
        return time.perf_counter() - started, streams


async def measure(workers: int, sizes: list[int], token_ms: float, budget: float) -> list[list[object]]:
    # Every chat comes from 127.0.0.1 here, standing for many visitors: lift the per-client limit.
    env = app_environment(
        AGENT_OFFLINE_TOKEN_DELAY_MS=str(token_ms),
        AGENT_UI_UPDATES_PER_S=str(budget),
        **MANY_VISITORS_ENV,
    )
    with serve(workers, free_port(), env=env, worker_ports=[free_port() for _ in range(workers)]) as running:
        await run_chats(running.url, 2)  # warm up
        single, _ = await run_chats(running.url, 1)
        rows = []
        for count in sizes:
            cpu_before = [p.cpu_seconds() for p in running.processes]
            load = os.getloadavg()[0]
            wall, streams = await run_chats(running.url, count)
            cpu = [p.cpu_seconds() - before for p, before in zip(running.processes, cpu_before, strict=True)]
            rates = [s.updates / s.total_s if s.completed else 0.0 for s in streams]
            rows.append(
                [
                    workers,
                    count,
                    f"{single:.2f}",
                    f"{wall:.2f}",
                    f"{wall / single:.2f}×",
                    " / ".join(f"{c:.1f}" for c in cpu),
                    f"{min(rates):.1f}",
                    sum(not s.completed for s in streams),
                    f"{load:.1f}",
                ]
            )
        return rows


async def main(worker_counts: list[int], sizes: list[int], token_ms: float, budget: float) -> None:
    rows = []
    for workers in worker_counts:
        rows.extend(await measure(workers, sizes, token_ms, budget))
    print(
        f"Chats through nginx: “{QUESTION}”, offline model at {token_ms} ms per token, "
        f"{budget:g} updates/s for the machine"
    )
    print(machine_line())
    print(calibrate().line())
    header = [
        "workers",
        "chats",
        "1 chat s",
        "wall s",
        "vs 1 chat",
        "CPU s per worker",
        "min upd/s",
        "failed",
        "load before",
    ]
    print(table(header, rows))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--sizes", default="100,200")
    parser.add_argument("--token-ms", type=float, default=30)
    parser.add_argument("--updates-per-s", type=float, default=650, help="the machine's update budget")
    args = parser.parse_args()
    worker_counts = [int(n) for n in args.workers.split(",")]
    sizes = [int(n) for n in args.sizes.split(",")]
    asyncio.run(main(worker_counts, sizes, args.token_ms, args.updates_per_s))
