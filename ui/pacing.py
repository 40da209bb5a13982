"""How often a streaming chat may update the browser: a frame the server sets by measuring itself.

Gradio spends about a millisecond of event-loop CPU per yielded update, whatever
its size, so one update per token stops scaling at a few dozen chats, and how
many updates a loop can serve differs from machine to machine (and from minute
to minute on a shared one). Each stream therefore updates at most once per frame
(the first event of a burst goes out at once), and one `UpdateBudget` per
process sets the frame from what it measures: while any chat streams, a probe
wakes every `PROBE_S` and reads how busy the event loop's thread was since its
last wake-up and how late the wake-up came. The busier of the two readings,
against what the loop may spend (`BUSY_SHARE`, `LATE_S`), is the pressure. Over
1, the frame grows; well under it, the frame shrinks back towards the base frame.
A fixed updates-per-second budget, if set, stays as an upper limit on top.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from agent import EventChannel, ServerSettings
from agent.events import AgentEvent

log = logging.getLogger(__name__)

PROBE_S = 0.05
BUSY_SHARE = 0.75
"""Share of the loop thread's time updates may keep it busy: the rest answers new requests at once."""
LATE_S = 0.008
"""How late a wake-up may come: also catches a core shared with other processes, where the loop is
slow without being busy itself."""
SMOOTHING = 0.3
"""Weight of the newest reading in the pressure (an exponential moving average)."""
GROW, SHRINK, CALM = 1.25, 0.93, 0.6
"""Per probe: the frame grows by GROW above pressure 1, shrinks by SHRINK below CALM, and holds between
(a dead band: a frame that fits is kept, rather than hunted around)."""
MAX_FRAME_S = 0.2
"""Every chat updates at least 5 times a second: past that, more chats make turns slower, not jerkier."""
LOG_EVERY_S = 0.5
SCHEDSTAT = Path("/proc/thread-self/schedstat")


@dataclass
class UpdateBudget:
    """The frame each stream of this process waits between its updates.

    `stream()` counts a chat as streaming while its turn runs; the probe runs only
    while at least one does. `observe` is the rule, fed by the probe (and by tests).
    """

    min_frame_s: float = ServerSettings.ui_frame_ms / 1000  # 0 turns pacing off
    updates_per_s: float = ServerSettings.ui_updates_per_s  # 0: no fixed budget, the measurement alone
    max_frame_s: float = MAX_FRAME_S
    active: int = field(default=0, init=False)
    pressure: float = field(default=0.0, init=False)
    adaptive_frame_s: float = field(default=0.0, init=False)
    _probe: asyncio.Task[None] | None = field(default=None, init=False, repr=False)
    _idle_since: float | None = field(default=None, init=False, repr=False)
    _logged: tuple[float, float] = field(default=(-math.inf, 0.0), init=False, repr=False)

    def __post_init__(self) -> None:
        self.adaptive_frame_s = self.min_frame_s

    @classmethod
    def from_server(cls, server: ServerSettings) -> UpdateBudget:
        return cls(min_frame_s=server.ui_frame_ms / 1000, updates_per_s=server.ui_updates_per_s)

    def frame_s(self) -> float:
        """The frame right now: the measured one, or longer if the fixed budget says so."""
        if not self.min_frame_s:
            return 0.0
        budgeted = self.active / self.updates_per_s if self.updates_per_s else 0.0
        return max(self.adaptive_frame_s, budgeted)

    def observe(self, busy_share: float, late_s: float) -> None:
        """One probe's readings: the loop thread's CPU share since the last probe, and how late
        the probe woke up. Updates the pressure and the measured frame."""
        reading = max(busy_share / BUSY_SHARE, late_s / LATE_S)
        self.pressure += SMOOTHING * (reading - self.pressure)
        if self.pressure > 1:
            self.adaptive_frame_s = min(self.max_frame_s, self.adaptive_frame_s * GROW)
        elif self.pressure < CALM:
            self.adaptive_frame_s = max(self.min_frame_s, self.adaptive_frame_s * SHRINK)

    @contextmanager
    def stream(self) -> Iterator[None]:
        """Count one streaming chat (on the running event loop) for as long as the block runs."""
        self.active += 1
        if self.min_frame_s and (self._probe is None or self._probe.done()):
            self._rest()
            self._probe = asyncio.get_running_loop().create_task(self._measure(), name="pacing-probe")
        try:
            yield
        finally:
            self.active -= 1

    async def aclose(self) -> None:
        """Stop the probe now (at shutdown): it otherwise stops by itself once nothing streams."""
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe
            self._probe = None

    async def _measure(self) -> None:
        loop = asyncio.get_running_loop()
        woke, busy = loop.time(), loop_thread_demand()  # the probe runs on the loop's own thread
        while self.active:
            await asyncio.sleep(PROBE_S)
            now, demand = loop.time(), loop_thread_demand()
            late = 0.0 if SCHEDSTAT.exists() else max(0.0, now - woke - PROBE_S)
            self.observe((demand - busy) / (now - woke), late)
            woke, busy = now, demand
            self._log(now)
        self._idle_since = loop.time()
        self._log(self._idle_since, force=True)

    def _rest(self) -> None:
        """Account for the time nothing streamed as probes that found the loop idle."""
        if self._idle_since is None:
            return
        idle_probes = min(200, int((asyncio.get_running_loop().time() - self._idle_since) / PROBE_S))
        for _ in range(idle_probes):
            self.observe(0.0, 0.0)
        self._idle_since = None

    def _log(self, now: float, *, force: bool = False) -> None:
        """A line for operators (and `bench.concurrency`'s frame timeline) when the frame changed."""
        last_at, last_frame = self._logged
        frame = self.frame_s()
        if force or (now - last_at >= LOG_EVERY_S and abs(frame - last_frame) > 0.1 * last_frame):
            log.info(
                "pacing: frame %.0f ms, pressure %.2f, %d chats streaming",
                frame * 1000,
                self.pressure,
                self.active,
            )
            self._logged = (now, frame)


def loop_thread_demand() -> float:
    """Seconds this thread has run, plus (on Linux) waited to run: its demand for a core.

    Time spent waiting for a core counts, so that a loop sharing its core with other
    processes shows as busy as one doing that much work itself; where the kernel does not
    say (no `/proc/thread-self/schedstat`), CPU time alone, and the probe's lateness
    stands for the waiting."""
    try:
        on_cpu_ns, waiting_ns, _ = SCHEDSTAT.read_text().split()
    except OSError:
        return time.thread_time()
    return (int(on_cpu_ns) + int(waiting_ns)) / 1e9


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
