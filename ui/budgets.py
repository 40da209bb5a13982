"""Per-address budgets: what one client address may spend of the server.

Session ids cost nothing to mint, so every budget here is per client address
(`ui.guard.client_address`). Each is small and self-cleaning: an address that
has spent nothing lately holds no entry.
"""

from __future__ import annotations

import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    at: float


class CallBudget:
    """A token bucket per address: `rate` units a second, at most `burst` saved up.

    Unqueued calls skip Gradio's queue and its limits, so each one is paid here;
    a call that carries a conversation pays more (see `ui.guard`).
    """

    MAX_ADDRESSES = 100_000
    """Addresses remembered at once; beyond it, those with a full bucket (owing nothing) are forgotten."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self._buckets: dict[str, _Bucket] = {}

    def spend(self, address: str, cost: float) -> bool:
        """Take `cost` units from `address`'s bucket if it holds them; whether it did.

        A call that costs more than the bucket holds is refused and still empties it: its
        body was read and parsed already, and that work is what the budget protects.
        """
        if self.rate <= 0:
            return True  # budget off
        bucket = self._refilled(address)
        if bucket.tokens < cost:
            bucket.tokens = 0.0
            return False
        bucket.tokens -= cost
        return True

    def has_credit(self, address: str) -> bool:
        """Whether `address` could pay for the cheapest call: checked before its body is read."""
        return self.rate <= 0 or self._refilled(address).tokens >= 1

    def _refilled(self, address: str) -> _Bucket:
        now = self.clock()
        bucket = self._buckets.get(address)
        if bucket is None:
            if len(self._buckets) >= self.MAX_ADDRESSES:
                self._forget_full(now)
            bucket = self._buckets[address] = _Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        return bucket

    def _forget_full(self, now: float) -> None:
        refill = self.burst / self.rate
        self._buckets = {a: b for a, b in self._buckets.items() if now - b.at < refill}


class OpenStreams:
    """Long-lived responses (event streams, heartbeats) open per address, at most `limit` each.

    Each holds a connection and a file descriptor for as long as the client keeps it:
    without a cap, one address could hold every descriptor the process has.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: Counter[str] = Counter()

    def open(self, address: str) -> bool:
        """Count one more open stream for `address`, if it is under the limit; whether it was."""
        if self._open[address] >= self.limit:
            return False
        self._open[address] += 1
        return True

    def close(self, address: str) -> None:
        self._open[address] -= 1
        if self._open[address] <= 0:
            del self._open[address]


class LastSeen:
    """When each session last made a call, for the most recent `max_sessions` sessions."""

    def __init__(self, max_sessions: int = 100_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_sessions, self.clock = max_sessions, clock
        self._seen: OrderedDict[str, float] = OrderedDict()

    def touch(self, session: str) -> None:
        self._seen[session] = self.clock()
        self._seen.move_to_end(session)
        if len(self._seen) > self.max_sessions:
            self._seen.popitem(last=False)

    def idle_s(self, session: str, since: float) -> float:
        """Seconds since the session's last call, or since `since` (a clock time) if that is later."""
        return self.clock() - max(since, self._seen.get(session, since))
