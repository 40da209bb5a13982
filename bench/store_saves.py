"""The conversation store's cost per save: N turns ending at once, each saving, no server around them.

    python -m bench.store_saves [--concurrent 1,25,100,200] [--rounds 7] [--kind start,append]

A save is what the chat does when a turn ends (`ui.saved`): `start` for a visitor's first turn
(a new conversation: the question, two tool steps, the answer, the footer and a note), `append`
for a later one (the same six messages after what the conversation holds). Each round runs N of
them at once in one event loop against one SQLite file in a temporary directory, as one server
process does, and takes the process's CPU time (all threads: the driver's thread does part of the
work) per save, the round's wall time, and the longest any one save waited for its outcome. The
figures are medians over rounds. The garbage collector is set as the served app sets it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

from bench.report import machine_line, table
from store import ConversationStore, database_url, new_owner_id
from support.calibration import LOOP_ADDITIONS, cpython_loop_s
from ui.heap import settle_after_start

QUESTION = {"role": "user", "content": "What is (2 + 3) * (4 + 5)?"}
STEP = {"title": "🛠️ Used tool add", "status": "done", "duration": 0.01, "id": "tool-1"}
TURN = [
    {"role": "assistant", "content": "add(a=2, b=3) → 5", "metadata": STEP},
    {"role": "assistant", "content": "add(a=4, b=5) → 9", "metadata": STEP},
    {"role": "assistant", "content": "multiply(a=5, b=9) → 45", "metadata": STEP},
    {"role": "assistant", "content": "(2 + 3) * (4 + 5) = **45**"},
    {"role": "assistant", "content": "█" * 40 + " " + "·" * 200, "metadata": {"title": "📊 2.51 s"}},
]


async def one_round(store: ConversationStore, kind: str, concurrent: int) -> tuple[float, float, float]:
    """CPU seconds per save, the round's wall seconds, and the longest save's, for `concurrent` at once."""
    owners = [new_owner_id() for _ in range(concurrent)]
    if kind == "append":
        started = [await store.start(owner, QUESTION["content"], [QUESTION, *TURN]) for owner in owners]
        ids = [saved.conversation_id for saved in started]

    async def save(i: int) -> float:
        began = time.perf_counter()
        if kind == "start":
            await store.start(owners[i], QUESTION["content"], [QUESTION, *TURN])
        else:
            await store.append(owners[i], ids[i], [QUESTION, *TURN])
        return time.perf_counter() - began

    cpu, wall = time.process_time(), time.perf_counter()
    waits = await asyncio.gather(*(save(i) for i in range(concurrent)))
    return (time.process_time() - cpu) / concurrent, time.perf_counter() - wall, max(waits)


async def measure(kind: str, concurrent: int, rounds: int) -> list[tuple[float, float, float]]:
    with tempfile.TemporaryDirectory() as data_dir:
        store = await ConversationStore.open(database_url(Path(data_dir)))
        try:
            await one_round(store, kind, min(concurrent, 10))  # warm up: statement caches
            settle_after_start()
            return [await one_round(store, kind, concurrent) for _ in range(rounds)]
        finally:
            await store.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--concurrent", default="1,25,100,200", help="comma-separated numbers of saves at once"
    )
    parser.add_argument("--kind", default="start,append", help="start (a first turn), append (a later one)")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    rows = []
    for kind in args.kind.split(","):
        for concurrent in (int(n) for n in args.concurrent.split(",")):
            runs = asyncio.run(measure(kind, concurrent, args.rounds))
            cpu, wall, longest = (statistics.median(figures) for figures in zip(*runs, strict=True))
            rows.append(
                [kind, concurrent, f"{cpu * 1000:.2f}", f"{min(r[0] for r in runs) * 1000:.2f}",
                 f"{wall * 1000:.0f}", f"{longest * 1000:.0f}"]
            )  # fmt: skip
    loop_s = min(cpython_loop_s() for _ in range(3))
    print(machine_line())
    print(
        f"calibration: CPython loop of {LOOP_ADDITIONS / 1e6:.0f} M additions {loop_s:.2f} s, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    print(f"The conversation store alone (SQLite), saves at once, {args.rounds} rounds each, medians")
    header = ["save", "at once", "CPU ms a save", "fastest", "wall ms a burst", "longest save ms"]
    print(table(header, rows))


if __name__ == "__main__":
    main()
