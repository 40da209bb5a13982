"""CPU to read one streamed model reply into events and a reply: two designs compared.

    python -m bench.reply_cpu [--rounds 25] [--replies 40]

One model call as a turn's step makes it: the offline model (no delay between tokens) bound to
the tools with the configurable `callbacks` field (`agent.models.build_model`), asked the first
step of "What is (2 + 3) * (4 + 5)?" (two parallel `add` calls, streamed piece by piece). Each
design turns the chunks into the turn's events on an `EventChannel` and ends with the reply:

- ours: the executor's way, reading the chunks the stream yields into one `ReplyAssembler`;
- handler: a per-request callback handler, passed through the configurable `callbacks` field,
  feeds the assembler from `on_llm_new_token`; the reply is then read back out of the handler;
- handler + own assembler: the same handler for the events, and the stream's chunks read into a
  second assembler for the reply (no read out of the handler: the assembly is done twice).

The designs run interleaved, round after round, in one process; the figure is the process's CPU
per reply (median over rounds), and its ratio to ours.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from langchain_core.callbacks import AsyncCallbackHandler
from langchain_core.messages import AIMessageChunk, BaseMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGenerationChunk
from langchain_core.runnables import Runnable

from agent import EventChannel, Settings
from agent.executor import SYSTEM_PROMPT
from agent.models import build_model
from agent.reply import Reply, ReplyAssembler
from bench.report import machine_line, table
from support.calibration import calibrate

QUESTION = "What is (2 + 3) * (4 + 5)?"
Design = Callable[[Runnable, list[BaseMessage]], Awaitable[Reply]]


class ChannelFeeder(AsyncCallbackHandler):
    """The handler design: each new token's chunk through `assembler`, its events on `channel`."""

    run_inline = True

    def __init__(self, assembler: ReplyAssembler, channel: EventChannel) -> None:
        self.assembler = assembler
        self.channel = channel

    async def on_llm_new_token(
        self, token: str, *, chunk: ChatGenerationChunk | None = None, **_: Any
    ) -> None:
        if chunk is not None and isinstance(chunk.message, AIMessageChunk):
            for event in self.assembler.add(chunk.message):
                self.channel.emit(event)


async def ours(model: Runnable, messages: list[BaseMessage]) -> Reply:
    assembler, channel = ReplyAssembler(1, set()), EventChannel()
    async for chunk in model.astream(messages):
        if isinstance(chunk, AIMessageChunk):
            for event in assembler.add(chunk):
                channel.emit(event)
    return assembler.reply


async def handler(model: Runnable, messages: list[BaseMessage]) -> Reply:
    feeder = ChannelFeeder(ReplyAssembler(1, set()), EventChannel())
    async for _chunk in model.astream(messages, config={"configurable": {"callbacks": [feeder]}}):
        pass
    return feeder.assembler.reply


async def handler_and_own_assembler(model: Runnable, messages: list[BaseMessage]) -> Reply:
    feeder = ChannelFeeder(ReplyAssembler(1, set()), EventChannel())
    assembler = ReplyAssembler(1, set())
    async for chunk in model.astream(messages, config={"configurable": {"callbacks": [feeder]}}):
        if isinstance(chunk, AIMessageChunk):
            assembler.add(chunk)
    return assembler.reply


DESIGNS: dict[str, Design] = {
    "ours": ours,
    "handler": handler,
    "handler + own assembler": handler_and_own_assembler,
}


async def cpu_per_reply(design: Design, model: Runnable, messages: list[BaseMessage], replies: int) -> float:
    started = time.process_time()
    for _ in range(replies):
        reply = await design(model, messages)
        assert [call.name for call in reply.calls] == ["add", "add"], reply
    return (time.process_time() - started) / replies


async def measure(rounds: int, replies: int) -> dict[str, list[float]]:
    model = build_model(Settings(offline_token_delay_ms=0))
    messages: list[BaseMessage] = [SystemMessage(SYSTEM_PROMPT), HumanMessage(QUESTION)]
    for design in DESIGNS.values():  # warm up
        await cpu_per_reply(design, model, messages, 5)
    figures: dict[str, list[float]] = {name: [] for name in DESIGNS}
    for _ in range(rounds):
        for name, design in DESIGNS.items():
            figures[name].append(await cpu_per_reply(design, model, messages, replies))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--replies", type=int, default=40)
    args = parser.parse_args()
    figures = asyncio.run(measure(args.rounds, args.replies))
    calibration = calibrate(1)
    print(machine_line())
    print(
        f"calibration: CPython loop of 10 M additions {calibration.loop_s:.2f} s, "
        f"load average {calibration.load_average:.2f}"
    )
    base = statistics.median(figures["ours"])
    rows = [
        [
            name,
            f"{statistics.median(cpu) * 1000:.3f}",
            f"{min(cpu) * 1000:.3f}",
            f"{statistics.median(cpu) / base:.2f}",
        ]
        for name, cpu in figures.items()
    ]
    print(table(["design", "CPU ms per reply (median)", "min", "× ours"], rows))


if __name__ == "__main__":
    main()
