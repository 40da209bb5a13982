"""How often a streaming chat may update the browser.

Gradio spends about 1.5 ms of event-loop CPU per yielded update, whatever its
size, so one update per token stops scaling at a few dozen chats. Each stream
therefore updates at most once per frame (the first event of a burst goes out
at once), and all streams share a server-wide budget of updates per second:
with many active streams, each one's frame grows so that the total stays
within what one core can serve.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from agent import EventChannel, ServerSettings
from agent.events import AgentEvent


@dataclass
class UpdateBudget:
    """Frame length for each stream, from the number of streams active right now."""

    min_frame_s: float = ServerSettings.ui_frame_ms / 1000
    updates_per_s: float = ServerSettings.ui_updates_per_s  # 0 means no server-wide budget
    active: int = field(default=0, init=False)

    @classmethod
    def from_server(cls, server: ServerSettings) -> UpdateBudget:
        return cls(min_frame_s=server.ui_frame_ms / 1000, updates_per_s=server.ui_updates_per_s)

    @contextmanager
    def stream(self) -> Iterator[None]:
        self.active += 1
        try:
            yield
        finally:
            self.active -= 1

    def frame_s(self) -> float:
        if not self.updates_per_s:
            return self.min_frame_s
        return max(self.min_frame_s, self.active / self.updates_per_s)


async def paced(channel: EventChannel, frame_s: Callable[[], float]) -> AsyncIterator[list[AgentEvent]]:
    """A turn's events in groups: the first event after a quiet spell at once, then at
    most one group per `frame_s()` seconds, holding every event that arrived meanwhile."""
    loop = asyncio.get_running_loop()
    while True:
        batch, ended = await channel.next_batch()
        if batch:
            sent_at = loop.time()
            yield batch
            if not ended:
                await asyncio.sleep(max(0.0, sent_at + frame_s() - loop.time()))
        if ended:
            return
