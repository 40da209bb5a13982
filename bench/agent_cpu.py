"""The agent's own CPU per turn: N concurrent turns of the offline model, no server around them.

    python -m bench.agent_cpu [--concurrent 1,100] [--token-ms 30,0] [--rounds 5]

Each turn is `run_agent` with the offline model answering "What is (2 + 3) * (4 + 5)?" (two
parallel `add` calls, then `multiply`, then `final_answer`: three model calls streamed piece by
piece), read to its last event as the chat does. For each number of concurrent turns and each
pace, a round runs that many turns at once in one event loop and takes the process's CPU time
(not wall time: the machine may be shared) divided by the turns; the figure is the median over
rounds, with the fastest round beside it, and the CPU per event the turn emitted. The garbage
collector is set as the served app sets it (`ui.heap.settle_after_start`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from contextlib import aclosing

from agent import Settings
from agent.events import AgentEvent, Finished
from agent.executor import run_agent
from bench.bare_chat import QUESTION
from bench.report import machine_line, table
from support.calibration import LOOP_ADDITIONS, cpython_loop_s
from ui.heap import settle_after_start

ANSWER = "(2 + 3) * (4 + 5) = **45**"


async def one_turn(settings: Settings) -> int:
    """Run one turn to its end; the number of events it emitted."""
    events: list[AgentEvent] = []
    async with aclosing(run_agent(QUESTION, [], settings)) as stream:
        async for event in stream:
            events.append(event)
    outcome = events[-1]
    assert isinstance(outcome, Finished) and outcome.answer == ANSWER, outcome
    return len(events)


async def one_round(settings: Settings, concurrent: int) -> tuple[float, float]:
    """CPU seconds per turn and per event for `concurrent` turns at once."""
    started = time.process_time()
    counts = await asyncio.gather(*(one_turn(settings) for _ in range(concurrent)))
    cpu = time.process_time() - started
    return cpu / concurrent, cpu / sum(counts)


async def measure(concurrent: int, token_ms: float, rounds: int) -> tuple[list[float], list[float]]:
    settings = Settings(force_offline=True, offline_token_delay_ms=token_ms)
    await one_round(settings, min(concurrent, 10))  # warm up: imports, caches
    settle_after_start()
    per_turn, per_event = [], []
    for _ in range(rounds):
        turn_s, event_s = await one_round(settings, concurrent)
        per_turn.append(turn_s)
        per_event.append(event_s)
    return per_turn, per_event


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrent", default="1,100", help="comma-separated numbers of turns at once")
    parser.add_argument("--token-ms", default="30,0", help="comma-separated offline paces, ms a token")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rows = []
    for concurrent in (int(n) for n in args.concurrent.split(",")):
        for token_ms in (float(ms) for ms in args.token_ms.split(",")):
            per_turn, per_event = asyncio.run(measure(concurrent, token_ms, args.rounds))
            rows.append(
                [
                    concurrent,
                    f"{token_ms:g}",
                    f"{statistics.median(per_turn) * 1000:.2f}",
                    f"{min(per_turn) * 1000:.2f}",
                    f"{statistics.median(per_event) * 1e6:.0f}",
                ]
            )
    loop_s = min(cpython_loop_s() for _ in range(3))
    print(machine_line())
    print(
        f"calibration: CPython loop of {LOOP_ADDITIONS / 1e6:.0f} M additions {loop_s:.2f} s, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    print(f"The agent alone (run_agent, offline model): “{QUESTION}”, {args.rounds} rounds each")
    header = ["turns at once", "ms a token", "CPU ms a turn (median)", "fastest", "CPU µs an event"]
    print(table(header, rows))


if __name__ == "__main__":
    main()
