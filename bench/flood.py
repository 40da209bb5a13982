"""One address floods the app with long chats; how long does another visitor wait?

    python -m bench.flood [--chats 250] [--token-ms 30] [--retry-s 1] [--max-s 90] [--unlimited]

`python app.py` is served on 127.0.0.1 with its defaults (the offline model at
`--token-ms` per token). The victim asks from 127.0.0.2 through the browser's
path, first alone, then while the flooder (127.0.0.1, its own process) opens
`--chats` long chats at once and keeps retrying each refused one every
`--retry-s` seconds.
Printed: the victim's first update and total time, alone and under the flood,
and what the flood got. `--unlimited` also runs the flood against the app with
the per-client limit lifted, the situation the limit was built for.

Bounded: every request goes to 127.0.0.1, the flood stops when the victim is
done or after `--max-s` seconds, and each flooding chat tries at most
`max_s / retry_s + 1` times.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.report import machine_line, table
from deploy.processes import ServedProcess
from support.calibration import calibrate
from support.gradio_http import ChatStream, GradioChatClient
from support.servers import app_environment, free_port

VICTIM_QUESTION = "What is (2 + 3) * (4 + 5)?"
FLOOD_QUESTION = " + ".join(["1"] * 40)
VICTIM_ADDRESS = "127.0.0.2"
VICTIM_TURNS = 3


@dataclass
class Flood:
    attempts: int = 0
    refused: int = 0
    completed: int = 0
    refusal_s: list[float] = field(default_factory=list)


def flood_process(url: str, chats: int, retry_s: float, max_s: float, stop: Any, results: Any) -> None:
    """The flood in its own process, so that the flooder's client work does not slow the victim's."""
    results.put(asyncio.run(flood(url, chats, retry_s, stop, time.monotonic() + max_s)))


async def flood(url: str, chats: int, retry_s: float, stop_flag: Any, deadline: float) -> Flood:
    """`chats` workers, each keeping one long chat going (or retrying) until `stop_flag` or `deadline`."""
    result = Flood()
    stop = asyncio.Event()
    watcher = asyncio.create_task(asyncio.to_thread(stop_flag.wait, max(0.0, deadline - time.monotonic())))
    watcher.add_done_callback(lambda _: stop.set())

    async def worker(client: GradioChatClient) -> None:
        while not stop.is_set() and time.monotonic() < deadline:
            result.attempts += 1
            stream = await client.ask(FLOOD_QUESTION)
            if stream.refused:
                result.refused += 1
                result.refusal_s.append(stream.total_s)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), retry_s)
            else:
                result.completed += 1

    async with GradioChatClient(url) as client:
        workers = [asyncio.create_task(worker(client)) for _ in range(chats)]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max(0.0, deadline - time.monotonic()))
        for task in workers:
            task.cancel()  # drops the connections of chats still running: the server cancels them
        await asyncio.gather(*workers, return_exceptions=True)
    await watcher
    return result


async def victim_turns(url: str, max_s: float = 60) -> list[ChatStream]:
    """The victim's turns, one after another; one still waiting after `max_s` counts as failed."""
    streams = []
    async with GradioChatClient(url, local_address=VICTIM_ADDRESS) as client:
        for _ in range(VICTIM_TURNS):
            try:
                streams.append(await asyncio.wait_for(client.ask(VICTIM_QUESTION, mode="browser"), max_s))
            except (TimeoutError, httpx.HTTPError):  # no answer in time, or the server stopped replying
                streams.append(ChatStream("timed-out", total_s=max_s))
    return streams


async def measure(
    env: dict[str, str], chats: int, retry_s: float, max_s: float
) -> tuple[list, list, Flood, float]:
    port = free_port()
    server = ServedProcess([sys.executable, "app.py", "--port", str(port)], app_environment(**env))
    try:
        url = server.wait_for_url()
        await victim_turns(url)  # warm up
        alone = await victim_turns(url)
        context = multiprocessing.get_context("spawn")
        stop, results = context.Event(), context.Queue()
        cpu_before = server.cpu_seconds()
        flooder = context.Process(target=flood_process, args=(url, chats, retry_s, max_s, stop, results))
        flooder.start()
        try:
            await asyncio.sleep(3.0)  # the flooder's process starts and its flood is in full swing
            under = await victim_turns(url, max_s)
        finally:
            stop.set()
        flooded = await asyncio.to_thread(results.get, timeout=max_s + 30)
        await asyncio.to_thread(flooder.join, 30)
        return alone, under, flooded, server.cpu_seconds() - cpu_before
    finally:
        server.stop()


def row(name: str, streams: list[ChatStream], alone_total: float) -> list[str]:
    first = [s.first_update_s if s.first_update_s is not None else s.total_s for s in streams]
    total = [s.total_s for s in streams]
    failed = sum(not s.completed for s in streams)
    return [
        name,
        f"{statistics.median(first):.2f} (max {max(first):.2f})",
        f"{statistics.median(total):.2f} (max {max(total):.2f})",
        f"{max(total) / alone_total:.2f}×",
        str(failed),
    ]


async def main(chats: int, token_ms: float, retry_s: float, max_s: float, unlimited: bool) -> None:
    env = {"AGENT_OFFLINE_TOKEN_DELAY_MS": str(token_ms)}
    runs = [("default limit (3 per client)", env)]
    if unlimited:
        runs.append(("no per-client limit", {**env, "AGENT_MAX_CHATS_PER_CLIENT": "100000"}))
    rows, floods = [], []
    for name, run_env in runs:
        alone, under, flooded, cpu = await measure(run_env, chats, retry_s, max_s)
        alone_total = statistics.median(s.total_s for s in alone)
        rows += [
            row(f"{name}: victim alone", alone, alone_total),
            row(f"{name}: under flood", under, alone_total),
        ]
        refusal = f"{statistics.median(flooded.refusal_s) * 1000:.0f} ms" if flooded.refusal_s else "-"
        cut_off = flooded.attempts - flooded.completed - flooded.refused
        floods.append(
            [name, flooded.attempts, flooded.refused, flooded.completed, cut_off, refusal, f"{cpu:.1f}"]
        )
    print(
        f"Flood: {chats} long chats at once from 127.0.0.1 (“{FLOOD_QUESTION[:20]}…”, refused ones retried "
        f"every {retry_s:g} s); victim from {VICTIM_ADDRESS}: {VICTIM_TURNS} × “{VICTIM_QUESTION}” through the "
        f"browser path; offline model at {token_ms:g} ms per token"
    )
    print(machine_line())
    print(calibrate().line())
    print(table(["app", "victim first update s", "victim total s", "worst vs alone", "failed"], rows))
    print()
    header = [
        "app",
        "flood attempts",
        "refused",
        "ran to the end",
        "cut off at stop",
        "median refusal",
        "server CPU s",
    ]
    print(table(header, floods))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--chats", type=int, default=250)
    parser.add_argument("--token-ms", type=float, default=30)
    parser.add_argument("--retry-s", type=float, default=1.0)
    parser.add_argument("--max-s", type=float, default=90)
    parser.add_argument("--unlimited", action="store_true", help="also flood the app without the limit")
    args = parser.parse_args()
    asyncio.run(main(args.chats, args.token_ms, args.retry_s, args.max_s, args.unlimited))
