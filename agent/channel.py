"""`EventChannel`: one turn's events, from the engine to whoever shows them.

The producer (the turn's task and its callback handler) `emit`s events and
`close`s the channel when it is done, however it ends; the consumer reads
`events()` (or `next_batch()`), which await the queue and end at the turn's last
event or at `close()`, so a consumer never waits for a producer that is gone.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from agent.events import AgentEvent, Failed, Finished


class _Closed:
    """Queued when the producer is gone."""


_CLOSED = _Closed()


class EventChannel:
    """A per-turn queue of events; never shared between requests."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[AgentEvent | _Closed] = asyncio.Queue()
        self.stop_reason: str | None = None
        """Why the consumer ends the turn early, when it knows (e.g. "shutdown"), for the log line."""

    def emit(self, event: AgentEvent) -> None:
        self._queue.put_nowait(event)

    def close(self) -> None:
        """No more events will come (the producer finished, failed or was cancelled)."""
        self._queue.put_nowait(_CLOSED)

    async def events(self) -> AsyncIterator[AgentEvent]:
        """Every event of the turn, ending after `Finished`/`Failed` or at `close()`."""
        while True:
            event = await self._queue.get()
            if isinstance(event, _Closed):
                return
            yield event
            if isinstance(event, Finished | Failed):
                return

    async def next_batch(self) -> tuple[list[AgentEvent], bool]:
        """Wait for an event, then take every event already queued: the events up to
        the turn's end, and whether it ended (for consumers that update in batches)."""
        queued = [await self._queue.get()]
        while not self._queue.empty():
            queued.append(self._queue.get_nowait())
        return _until_end(queued)


def _until_end(queued: list[AgentEvent | _Closed]) -> tuple[list[AgentEvent], bool]:
    """The events up to the turn's end, and whether it ended."""
    batch: list[AgentEvent] = []
    for event in queued:
        if isinstance(event, _Closed):
            return batch, True
        batch.append(event)
        if isinstance(event, Finished | Failed):
            return batch, True
    return batch, False
