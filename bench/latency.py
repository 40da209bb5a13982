"""Token delivery latency: model chunk emitted → event in the consumer's hands.

    python -m bench.latency [--tokens 3000] [--interval-ms 1]

A scripted model streams numbered tokens at a steady pace and notes when it
emits each one; each design notes when its consumer receives it:

- ours: `agent_turn` → `ReplyAssembler` → `channel.events()` (the queue, awaited);
- ours, paced: the same through `ui.pacing.paced()` with the UI's 40 ms frame (what the
  Gradio generator gets: the first event of a burst at once, the rest within a frame);
- polling: the classic design, a callback handler feeding a queue that the consumer
  polls with `asyncio.sleep(0.1)`;
- direct: iterating `model.astream()` in the consumer, no queue at all (the floor).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from langchain_core.callbacks import AsyncCallbackHandler
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessageChunk, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from pydantic import Field

from agent import Settings, agent_turn
from agent.events import TextDelta
from agent.offline import OfflineArithmeticModel
from bench.report import machine_line, table
from support.calibration import calibrate
from ui.pacing import paced


class EmitLog:
    """Emission times, shared by the copies LangChain makes of a configurable model."""

    def __init__(self) -> None:
        self.emitted: list[float] = []


class TimedModel(BaseChatModel):
    """Streams `tokens` plain-text tokens, one every `interval_ms`, noting each emission."""

    tokens: int
    interval_ms: float
    streaming: bool = False  # set to True: ainvoke then streams through the callbacks, like ChatOpenAI
    log: EmitLog = Field(default_factory=EmitLog)

    @property
    def _llm_type(self) -> str:
        return "timed"

    bind_tools = OfflineArithmeticModel.bind_tools

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        raise NotImplementedError

    async def _astream(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> AsyncIterator[ChatGenerationChunk]:
        for index in range(self.tokens):
            await asyncio.sleep(self.interval_ms / 1000)
            self.log.emitted.append(time.perf_counter())
            yield ChatGenerationChunk(message=AIMessageChunk(content=f"{index} "))
        yield ChatGenerationChunk(
            message=AIMessageChunk(content="", response_metadata={"finish_reason": "stop"})
        )


async def ours(model: TimedModel, received: list[float]) -> None:
    async with agent_turn("go", [], Settings(), model) as channel:
        async for event in channel.events():
            if isinstance(event, TextDelta):
                received.append(time.perf_counter())


async def ours_paced(model: TimedModel, received: list[float]) -> None:
    async with agent_turn("go", [], Settings(), model) as channel:
        async for batch in paced(channel, lambda: 0.04):
            now = time.perf_counter()
            received.extend(now for event in batch if isinstance(event, TextDelta))


class PollingHandler(AsyncCallbackHandler):
    def __init__(self, queue: asyncio.Queue[str | None]) -> None:
        self.queue = queue

    async def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        if token:
            self.queue.put_nowait(token)

    async def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        self.queue.put_nowait(None)


async def polling(model: TimedModel, received: list[float]) -> None:
    queue: asyncio.Queue[str | None] = asyncio.Queue()
    task = asyncio.create_task(
        model.ainvoke([HumanMessage("go")], config={"callbacks": [PollingHandler(queue)]})
    )
    while True:
        if queue.empty():
            if task.done():  # the classic loop waits forever here if the model failed
                break
            await asyncio.sleep(0.1)
            continue
        token = queue.get_nowait()
        if token is None:
            break
        received.append(time.perf_counter())
    await task


async def direct(model: TimedModel, received: list[float]) -> None:
    async for chunk in model.astream([HumanMessage("go")]):
        if chunk.content:
            received.append(time.perf_counter())


Design = Callable[[TimedModel, list[float]], Awaitable[None]]
DESIGNS: dict[str, Design] = {
    "ours: handler → channel → events()": ours,
    "ours, paced: paced() 40 ms frame": ours_paced,
    "polling: queue + sleep(0.1)": polling,
    "direct: model.astream()": direct,
}


async def measure(design: Design, tokens: int, interval_ms: float) -> list[float]:
    model = TimedModel(tokens=tokens, interval_ms=interval_ms, streaming=True)
    received: list[float] = []
    await design(model, received)
    assert len(received) == len(model.log.emitted) == tokens, (len(received), len(model.log.emitted))
    return [(got - sent) * 1000 for sent, got in zip(model.log.emitted, received, strict=True)]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def main(tokens: int, interval_ms: float) -> None:
    results = {name: await measure(design, tokens, interval_ms) for name, design in DESIGNS.items()}
    ours_median = statistics.median(results["ours: handler → channel → events()"])
    rows = []
    for name, latencies in results.items():
        median = statistics.median(latencies)
        rows.append(
            [
                name,
                f"{median:.3f}",
                f"{percentile(latencies, 0.99):.3f}",
                f"{max(latencies):.3f}",
                f"{median / ours_median:.1f}×",
            ]
        )
    print(f"Token delivery latency, model chunk → consumer ({tokens} tokens, one every {interval_ms} ms)")
    print(machine_line())
    print(calibrate().line())
    print(table(["design", "median ms", "p99 ms", "max ms", "median vs ours"], rows))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tokens", type=int, default=3000)
    parser.add_argument("--interval-ms", type=float, default=1.0)
    args = parser.parse_args()
    asyncio.run(main(args.tokens, args.interval_ms))
