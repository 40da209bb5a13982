"""One address floods the app; how long does another visitor wait?

    python -m bench.flood [--floods chats,string-ids,state-calls,idle-streams] [--chats 250]
                          [--token-ms 30] [--retry-s 1] [--max-s 90] [--unlimited]

The floods (issue 18 added the last three):

- `chats`: long chats, each refused one retried every `--retry-s` seconds;
- `string-ids`: turns joined with a string `fn_index` ("7") and never read;
- `state-calls`: the page's unqueued chat → state copy sent a forged ~1 MB
  conversation (18,000 messages), in a loop, `--chats` at once;
- `idle-streams`: `--chats` heartbeat streams and as many reload streams
  opened and held.

`python app.py` is served on 127.0.0.1 with its defaults (the offline model at
`--token-ms` per token). The victim asks from 127.0.0.2 through the browser's
path, first alone, then while the flooder (127.0.0.1, its own process) opens
`--chats` workers of each flood in turn.
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
from support.servers import MANY_VISITORS_ENV, app_environment, free_port

VICTIM_QUESTION = "What is (2 + 3) * (4 + 5)?"
FLOOD_QUESTION = " + ".join(["1"] * 40)
VICTIM_ADDRESS = "127.0.0.2"
VICTIM_TURNS = 3
FLOODS = ("chats", "string-ids", "state-calls", "idle-streams")
FORGED = [{"role": "user", "content": [{"type": "text", "text": "x"}]}] * 18_000  # ~1 MB


@dataclass
class Flood:
    attempts: int = 0
    refused: int = 0
    completed: int = 0
    refusal_s: list[float] = field(default_factory=list)


def flood_process(
    kind: str, url: str, chats: int, retry_s: float, max_s: float, ready: Any, stop: Any, results: Any
) -> None:
    """The flood in its own process, so that the flooder's client work does not slow the victim's."""
    results.put(asyncio.run(flood(kind, url, chats, retry_s, ready, stop, time.monotonic() + max_s)))


async def flood(
    kind: str, url: str, chats: int, retry_s: float, ready: Any, stop_flag: Any, deadline: float
) -> Flood:
    """`chats` workers of flood `kind`, each going (or retrying) until `stop_flag` or `deadline`."""
    result = Flood()
    stop = asyncio.Event()
    watcher = asyncio.create_task(asyncio.to_thread(stop_flag.wait, max(0.0, deadline - time.monotonic())))
    watcher.add_done_callback(lambda _: stop.set())

    async def pause() -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), retry_s)

    async def chat(client: GradioChatClient, n: int) -> None:
        while not stop.is_set() and time.monotonic() < deadline:
            result.attempts += 1
            stream = await client.ask(FLOOD_QUESTION)
            if stream.refused:
                result.refused += 1
                result.refusal_s.append(stream.total_s)
                await pause()
            else:
                result.completed += 1

    async def post(client: GradioChatClient, path: str, body: dict) -> None:
        while not stop.is_set() and time.monotonic() < deadline:
            result.attempts += 1
            started = time.perf_counter()
            try:
                response = await client.http.post(f"{url.rstrip('/')}{path}", json=body)
            except httpx.HTTPError:
                result.refused += 1
                continue
            if response.status_code == 200:
                result.completed += 1
            else:
                result.refused += 1
                result.refusal_s.append(time.perf_counter() - started)
                await pause()

    async def string_id(client: GradioChatClient, n: int) -> None:
        data = [FLOOD_QUESTION, None, "", "", None, ""]  # a value for each of the chat's six inputs
        session = f"string-id-{n}-{time.monotonic_ns()}"
        await post(
            client,
            "/gradio_api/queue/join",
            {"data": data, "fn_index": str(client._fn["chat"]), "session_hash": session},
        )

    async def state_call(client: GradioChatClient, n: int) -> None:
        body = {"data": [FORGED, None], "fn_index": client._fn["lambda"], "session_hash": f"forged-{n}"}
        await post(client, "/gradio_api/run/predict", body)

    async def idle_stream(client: GradioChatClient, n: int) -> None:
        base = url.rstrip("/")
        async with contextlib.AsyncExitStack() as held:
            for path in (f"/gradio_api/heartbeat/idle-{n}", "/gradio_api/dev/reload"):
                result.attempts += 1
                try:
                    response = await held.enter_async_context(client.http.stream("GET", f"{base}{path}"))
                except httpx.HTTPError:
                    result.refused += 1
                    continue
                if response.status_code == 200:
                    result.completed += 1
                else:
                    result.refused += 1
            await stop.wait()

    worker = {"chats": chat, "string-ids": string_id, "state-calls": state_call, "idle-streams": idle_stream}[
        kind
    ]
    async with GradioChatClient(url) as client:
        workers = [asyncio.create_task(worker(client, n)) for n in range(chats)]
        ready.set()
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
    kind: str, env: dict[str, str], chats: int, retry_s: float, max_s: float
) -> tuple[list, list, Flood, float]:
    port = free_port()
    server = ServedProcess([sys.executable, "app.py", "--port", str(port)], app_environment(**env))
    try:
        url = server.wait_for_url()
        await victim_turns(url)  # warm up
        alone = await victim_turns(url)
        context = multiprocessing.get_context("spawn")
        ready, stop, results = context.Event(), context.Event(), context.Queue()
        cpu_before = server.cpu_seconds()
        flooder = context.Process(
            target=flood_process, args=(kind, url, chats, retry_s, max_s, ready, stop, results)
        )
        flooder.start()
        try:
            await asyncio.to_thread(ready.wait, 120)  # the flooder's process has started its workers
            await asyncio.sleep(3.0)  # and its flood is in full swing
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


async def main(
    kinds: list[str], chats: int, token_ms: float, retry_s: float, max_s: float, unlimited: bool
) -> None:
    env = {"AGENT_OFFLINE_TOKEN_DELAY_MS": str(token_ms)}
    runs = [(f"{kind}: defaults", kind, env) for kind in kinds]
    if unlimited:
        runs.append(("chats: no per-client limits", "chats", {**env, **MANY_VISITORS_ENV}))
    rows, floods = [], []
    for name, kind, run_env in runs:
        alone, under, flooded, cpu = await measure(kind, run_env, chats, retry_s, max_s)
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
        f"Floods: {chats} workers at once from 127.0.0.1 (long chats “{FLOOD_QUESTION[:20]}…”; refused "
        f"requests retried every {retry_s:g} s); victim from {VICTIM_ADDRESS}: {VICTIM_TURNS} × "
        f"“{VICTIM_QUESTION}” through the browser path; offline model at {token_ms:g} ms per token"
    )
    print(machine_line())
    print(calibrate().line())
    print(table(["app", "victim first update s", "victim total s", "worst vs alone", "failed"], rows))
    print()
    header = [
        "app",
        "flood attempts",
        "refused",
        "served",
        "cut off at stop",
        "median refusal",
        "server CPU s",
    ]
    print(table(header, floods))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--floods", default=",".join(FLOODS), help=f"comma-separated, of: {', '.join(FLOODS)}"
    )
    parser.add_argument("--chats", type=int, default=250)
    parser.add_argument("--token-ms", type=float, default=30)
    parser.add_argument("--retry-s", type=float, default=1.0)
    parser.add_argument("--max-s", type=float, default=90)
    parser.add_argument("--unlimited", action="store_true", help="also flood with chats without the limits")
    args = parser.parse_args()
    kinds = [kind.strip() for kind in args.floods.split(",") if kind.strip()]
    if unknown := set(kinds) - set(FLOODS):
        parser.error(f"unknown flood(s): {', '.join(sorted(unknown))}")
    asyncio.run(main(kinds, args.chats, args.token_ms, args.retry_s, args.max_s, args.unlimited))
