"""What one streamed update costs the server, apart from what the turn costs whatever it sends.

    python -m bench.update_cost [--chats 50] [--rounds 3] [--token-ms 30]

`CPU ms/update` in `bench.concurrency` is the server's whole CPU divided by the updates it
sent: a design that sends fewer updates for the same turn looks dearer per update even when
each update is cheaper. Here each design streams the same turns twice, densely and sparsely,
and the difference gives the two parts: CPU per turn = fixed + updates × marginal.

- ours: `python app.py` (offline model at `--token-ms` a token) with pacing off (every event
  batch sent) against a fixed 200 ms frame;
- bare ChatInterface: `bench.bare_chat`, the same tokens at the same pace, a yield per token
  against a yield per 8 tokens.

The four servers run side by side (idle between rounds); each round asks every one of them
`--chats` questions at once, in turn. Medians over the rounds, with the calibration line.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
from dataclasses import dataclass

from bench.bare_chat import QUESTION
from bench.concurrency import run_chats
from bench.report import machine_line, table
from deploy.processes import ServedProcess
from support.calibration import calibrate
from support.servers import MANY_VISITORS_ENV, app_environment, free_port

SPARSE_YIELD_EVERY = 8
SPARSE_FRAME_MS = 200


@dataclass(frozen=True)
class Variant:
    design: str
    density: str  # "dense" or "sparse"
    command: list[str]
    env: dict[str, str]


def variants(token_ms: float) -> list[Variant]:
    pace = {"AGENT_OFFLINE_TOKEN_DELAY_MS": str(token_ms), **MANY_VISITORS_ENV}
    bare = ["-m", "bench.bare_chat", "--token-ms", str(token_ms)]
    return [
        Variant(
            "ours", "dense", ["app.py"], {**pace, "AGENT_UI_FRAME_MS": "0", "AGENT_UI_UPDATES_PER_S": "0"}
        ),
        Variant("ours", "sparse", ["app.py"], {**pace, "AGENT_UI_FRAME_MS": str(SPARSE_FRAME_MS)}),
        Variant("bare ChatInterface", "dense", bare, {}),
        Variant("bare ChatInterface", "sparse", [*bare, "--yield-every", str(SPARSE_YIELD_EVERY)], {}),
    ]


@dataclass
class Sample:
    cpu_ms_per_turn: float
    updates_per_turn: float


async def sample(server: ServedProcess, url: str, chats: int) -> Sample:
    before = server.cpu_seconds()
    _wall, streams = await run_chats(url, chats)
    cpu = server.cpu_seconds() - before
    failed = sum(not s.completed for s in streams)
    if failed:
        raise RuntimeError(f"{failed} of {chats} chats failed")
    return Sample(1000 * cpu / chats, sum(s.updates for s in streams) / chats)


def split(dense: Sample, sparse: Sample) -> tuple[float, float]:
    """(fixed CPU ms a turn, marginal CPU ms an update) from the two densities."""
    marginal = (dense.cpu_ms_per_turn - sparse.cpu_ms_per_turn) / (
        dense.updates_per_turn - sparse.updates_per_turn
    )
    return sparse.cpu_ms_per_turn - marginal * sparse.updates_per_turn, marginal


async def main(chats: int, rounds: int, token_ms: float) -> None:
    chosen = variants(token_ms)
    servers = [
        ServedProcess([sys.executable, *v.command, "--port", str(free_port())], app_environment(**v.env))
        for v in chosen
    ]
    try:
        urls = [server.wait_for_url() for server in servers]
        for url in urls:
            await run_chats(url, 2)  # warm up
        samples: list[list[Sample]] = [[] for _ in chosen]
        for _ in range(rounds):
            for taken, server, url in zip(samples, servers, urls, strict=True):
                taken.append(await sample(server, url, chats))
    finally:
        for server in servers:
            server.stop()
    rows = []
    for design in dict.fromkeys(v.design for v in chosen):
        dense_runs, sparse_runs = (
            runs for v, runs in zip(chosen, samples, strict=True) if v.design == design
        )
        dense, sparse = (
            Sample(
                statistics.median(s.cpu_ms_per_turn for s in runs),
                statistics.median(s.updates_per_turn for s in runs),
            )
            for runs in (dense_runs, sparse_runs)
        )
        fixed, marginal = split(dense, sparse)
        per_round = [split(d, s)[1] for d, s in zip(dense_runs, sparse_runs, strict=True)]
        rows.append(
            [
                design,
                f"{dense.updates_per_turn:.0f} / {sparse.updates_per_turn:.0f}",
                f"{dense.cpu_ms_per_turn:.1f} / {sparse.cpu_ms_per_turn:.1f}",
                f"{fixed:.1f}",
                f"{marginal:.2f}",
                " ".join(f"{m:.2f}" for m in per_round),
            ]
        )
    print(
        f"Server CPU a turn, split into fixed and per update: “{QUESTION}”, {chats} chats at once, {rounds} rounds"
    )
    print(machine_line())
    print(calibrate().line())
    print(
        table(
            [
                "design",
                "updates a turn (dense / sparse)",
                "CPU ms a turn (dense / sparse)",
                "fixed CPU ms a turn",
                "CPU ms an update",
                "per round",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--chats", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--token-ms", type=float, default=30)
    args = parser.parse_args()
    asyncio.run(main(args.chats, args.rounds, args.token_ms))
