"""Chats streaming while a process is stopped, killed or restarted: how does each end?

    python -m bench.restarts [--scenarios sigterm,sigint,kill,sighup,launcher-sigterm]
                             [--chats 40] [--token-ms 40] [--grace-s 20]

- `sigterm`, `sigint`: one `python app.py`, `--chats` chats, the signal 2 s in;
  printed: exit code, seconds from the signal to the exit, how the chats ended,
  the log lines by outcome.
- `kill`, `sighup`, `launcher-sigterm`: `python -m deploy.workers` (two workers
  behind nginx), `--chats` chats from as many browsers (each its own nginx route
  cookie), then 2 s in: `kill -9` of one worker, SIGHUP (rolling restart), or
  SIGTERM to the launcher; printed: how the chats ended, how long it took. During
  the rolling restart new visitors keep coming, one chat every 0.5 s; once it is
  done, each one answered asks a follow-up ("times 2") in its session, sending the
  open conversation's id as its page does: answered with its first turn in context
  on the worker that holds its session, or on another one that reopens it.

A chat ends with the answer, the cut-short line, the restarting line (its
question refused: the server is restarting), or cut (no word: the connection
was lost). Offline model, on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable

import psutil

from deploy.processes import ServedProcess
from support.gradio_http import ChatStream, GradioChatClient
from support.servers import MANY_VISITORS_ENV, app_environment, free_port, free_ports
from ui.lifecycle import CUT_SHORT, RESTARTING

QUESTION = "what is 1 + 2 + 3 + 4 + 5 + 6"
ANSWER = "= <strong>21</strong>"  # the page's path: the answer as the page shows it
FOLLOW_UP = "times 2"
FOLLOW_UP_ANSWER = "21 * 2 = <strong>42</strong>"  # the first turn in context
ARRIVAL_S = 0.5


def outcome(result: ChatStream | BaseException) -> str:
    if isinstance(result, BaseException):
        return f"cut ({type(result).__name__})"
    text = str(result.messages)
    if CUT_SHORT in text:
        return "cut-short line"
    if RESTARTING in text or RESTARTING in (result.error or ""):
        return "restarting line"
    if ANSWER in text and result.completed:
        return "answer"
    return f"failed ({result.error})" if result.error else f"cut ({text[-60:]})"


def follow_up_outcome(result: ChatStream | BaseException) -> str:
    if isinstance(result, ChatStream) and result.completed and FOLLOW_UP_ANSWER in str(result.messages):
        return "answer in context"
    return (
        "answer without its first turn" if isinstance(result, ChatStream) and result.completed else "failed"
    )


async def chats_until(
    url: str, chats: int, act: Callable[[], object], arriving_until: Callable[[], bool] | None = None
) -> tuple[Counter, Counter, Counter, float]:
    """`chats` browser-path chats; `act()` 2 s in; with `arriving_until`, a new chat every
    `ARRIVAL_S` after that until it says done, then a follow-up in each one answered. How the
    first chats, the later ones and their follow-ups ended, and when `act` ran."""
    async with GradioChatClient(url, affinity_cookie="agent_route") as client:
        asks = [asyncio.ensure_future(client.ask(QUESTION, mode="browser")) for _ in range(chats)]
        await asyncio.sleep(2)
        acted = time.perf_counter()
        act()
        later = []
        while arriving_until is not None and not arriving_until():
            session = uuid.uuid4().hex
            later.append(
                asyncio.ensure_future(
                    client.ask(
                        QUESTION, mode="browser", session_hash=session, chatbot=[], open_conversation=""
                    )
                )
            )
            await asyncio.sleep(ARRIVAL_S)
        first = await asyncio.gather(*asks, return_exceptions=True)
        arrived = await asyncio.gather(*later, return_exceptions=True)
        answered = [stream for stream in arrived if outcome(stream) == "answer"]
        follow_ups = await asyncio.gather(
            *(
                client.ask(
                    FOLLOW_UP,
                    mode="browser",
                    session_hash=stream.session_hash,
                    chatbot=stream.value,
                    open_conversation=stream.open_conversation,
                )
                for stream in answered
            ),
            return_exceptions=True,
        )
    return (
        Counter(map(outcome, first)),
        Counter(map(outcome, arrived)),
        Counter(map(follow_up_outcome, follow_ups)),
        acted,
    )


def environment(token_ms: float, grace_s: float) -> dict[str, str]:
    return app_environment(
        **MANY_VISITORS_ENV, AGENT_SHUTDOWN_GRACE_S=str(grace_s), AGENT_OFFLINE_TOKEN_DELAY_MS=str(token_ms)
    )


async def one_process(signum: int, chats: int, env: dict[str, str]) -> None:
    served = ServedProcess([sys.executable, "app.py", "--port", str(free_port())], env)
    try:
        url = served.wait_for_url(180)
        ended, _, _, signalled = await chats_until(url, chats, lambda: served.process.send_signal(signum))
        code = await asyncio.to_thread(served.process.wait, 120)
        exit_s = time.perf_counter() - signalled
        stopped = served.wait_for(r"\* Stopped", 1)
        logged = Counter(
            f"{line['outcome']}/{line.get('reason', '-')}"
            for line in map(json.loads, re.findall(r"agent\.turns (\{.*\})", served.output))
        )
    finally:
        served.stop()
    print(
        f"{signal.Signals(signum).name} to app.py, {chats} chats: exit {code} {exit_s:.1f} s after the signal "
        f"({stopped[0]!r} printed); chats {dict(ended)}; log lines {dict(logged)}",
        flush=True,
    )


def workers_of(launcher: ServedProcess) -> list[psutil.Process]:
    children = psutil.Process(launcher.process.pid).children()
    return [child for child in children if "app.py" in " ".join(child.cmdline())]


async def launcher_scenario(name: str, chats: int, env: dict[str, str]) -> None:
    port = free_ports(3)
    launcher = ServedProcess([sys.executable, "-m", "deploy.workers", "--port", str(port)], env)
    try:
        launcher.wait_for("workers behind nginx at", 240)
        url = f"http://127.0.0.1:{port}"
        actions = {
            "kill": lambda: workers_of(launcher)[0].kill(),
            "sighup": lambda: launcher.process.send_signal(signal.SIGHUP),
            "launcher-sigterm": lambda: launcher.process.send_signal(signal.SIGTERM),
        }
        done = {
            "kill": r"worker :\d+ is ready",
            "sighup": "rolling restart done",
            "launcher-sigterm": r"\[launcher\] stopped",
        }[name]
        restarted = (lambda: re.search(done, launcher.output) is not None) if name == "sighup" else None
        ended, arrived, followed, acted = await chats_until(url, chats, actions[name], restarted)
        await asyncio.to_thread(launcher.wait_for, done, 300)
        took = time.perf_counter() - acted
    finally:
        launcher.stop(60)
    during = f"; {sum(arrived.values())} arriving during it: {dict(arrived)}" if arrived else ""
    during += f", their follow-ups after it: {dict(followed)}" if followed else ""
    print(f"{name}, 2 workers, {chats} chats: {dict(ended)}{during}; {done!r} {took:.1f} s after", flush=True)


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scenarios", default="sigterm,sigint,kill,sighup,launcher-sigterm")
    parser.add_argument("--chats", type=int, default=40)
    parser.add_argument("--token-ms", type=float, default=40)
    parser.add_argument("--grace-s", type=float, default=20)
    args = parser.parse_args(argv)
    env = environment(args.token_ms, args.grace_s)
    for name in args.scenarios.split(","):
        if name in ("sigterm", "sigint"):
            await one_process(signal.SIGTERM if name == "sigterm" else signal.SIGINT, args.chats, env)
        else:
            await launcher_scenario(name, args.chats, env)


if __name__ == "__main__":
    asyncio.run(main())
