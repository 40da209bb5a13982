"""A person approves or denies a tool call before it runs: which calls need it, and the turn's `Approvals`.

A tool needs approval when its policy says so (`needs_approval`): the policy is
`tool.metadata["approval"]`, set by `agent.tools.requires_approval` for Python
tools and by the MCP configuration for MCP tools. The executor asks the turn's
`Approvals` before running such a call (`Approvals.ask`) and waits: the call is
announced (`ApprovalRequested`), and the answer comes from a person
(`Approvals.decide`, from the page or the API), from the time-out, or from the
turn ending (`Approvals.end`: Stop, a closed page). Whatever decides, one
`ApprovalDecided` says so, with the time spent waiting.

Calls are put to the person one at a time, in the order the model made them:
parallel calls are decided one by one, each with its own time-out counted
from when it is shown.
"""

from __future__ import annotations

import asyncio
import enum
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from langchain_core.tools import BaseTool

from agent.channel import EventChannel
from agent.events import ApprovalDecided, ApprovalRequested, DecidedBy
from agent.tools import APPROVAL

MAX_REASON_CHARS = 500
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def needs_approval(tool: BaseTool) -> bool:
    """Whether a person approves each call of `tool` before it runs (its policy is `"always"`)."""
    return (tool.metadata or {}).get(APPROVAL) == "always"


class Decision(enum.Enum):
    """What became of a decision sent to `Approvals.decide`."""

    DECIDED = "decided"
    ALREADY_DECIDED = "already decided"
    UNKNOWN_CALL = "unknown call"
    TURN_FINISHED = "turn finished"


@dataclass(frozen=True, slots=True)
class CallToApprove:
    """The call as the person sees it: its id, tool, complete JSON arguments and step."""

    call_id: str
    name: str
    arguments: str
    step: int


@dataclass(slots=True)
class _Waiting:
    request: ApprovalRequested
    channel: EventChannel
    since: float
    decision: asyncio.Future[ApprovalDecided]


class Approvals:
    """One turn's calls waiting for a person, and the decisions made about them."""

    def __init__(self, timeout_s: float, clock: Callable[[], float] = time.perf_counter) -> None:
        self.timeout_s = timeout_s
        self._clock = clock
        self._one_at_a_time = asyncio.Lock()
        self._waiting: dict[str, _Waiting] = {}
        self._decided: set[str] = set()
        self._ended: Literal["stop", "closed"] | None = None

    @property
    def waiting(self) -> ApprovalRequested | None:
        """The call shown to the person now, if any."""
        return next((waiting.request for waiting in self._waiting.values()), None)

    def shown_for_s(self, call_id: str) -> float | None:
        """How long the call `call_id` has been shown, if it waits now."""
        waiting = self._waiting.get(call_id)
        return None if waiting is None else self._clock() - waiting.since

    async def ask(self, call: CallToApprove, channel: EventChannel) -> ApprovalDecided:
        """Announce the call on `channel` and wait for its decision (at most `timeout_s`)."""
        async with self._one_at_a_time:
            if self._ended is not None:  # a call queued behind one that Stop or a closed page denied
                return self._deny_unasked(call, self._ended, channel)
            request = ApprovalRequested(call.call_id, call.name, call.arguments, call.step)
            waiting = _Waiting(request, channel, self._clock(), asyncio.get_running_loop().create_future())
            self._waiting[call.call_id] = waiting
            channel.emit(request)
            try:
                done, _ = await asyncio.wait({waiting.decision}, timeout=self.timeout_s)
            except asyncio.CancelledError:
                self._resolve(call.call_id, False, "the turn ended while it waited", "closed")
                raise
            if not done:
                reason = f"no decision within {self.timeout_s:g} s (AGENT_APPROVAL_TIMEOUT_S)"
                self._resolve(call.call_id, False, reason, "timeout")
            return waiting.decision.result()

    def decide(self, call_id: str, approved: bool, reason: str = "") -> Decision:
        """A person's decision on a waiting call; refused if the turn ended, the call is not
        waiting, or it was decided already (a second click, a second client)."""
        if self._ended is not None:
            return Decision.TURN_FINISHED
        if call_id in self._decided:
            return Decision.ALREADY_DECIDED
        if call_id not in self._waiting:
            return Decision.UNKNOWN_CALL
        self._resolve(call_id, approved, _clean(reason), "person")
        return Decision.DECIDED

    def end(self, by: Literal["stop", "closed"]) -> None:
        """The turn is ending (Stop, a closed page, or its end): a waiting call is denied, the
        decision recorded, and any later decision refused. Only the first call counts."""
        if self._ended is not None:
            return
        self._ended = by
        cause = "the turn was stopped" if by == "stop" else "the page was closed"
        for call_id in list(self._waiting):
            self._resolve(call_id, False, cause, by)

    def _resolve(self, call_id: str, approved: bool, reason: str, by: DecidedBy) -> None:
        waiting = self._waiting.pop(call_id, None)
        if waiting is None or waiting.decision.done():
            return
        self._decided.add(call_id)
        request = waiting.request
        decided = ApprovalDecided(
            call_id, request.name, approved, reason, by, max(0.0, self._clock() - waiting.since)
        )
        waiting.decision.set_result(decided)
        waiting.channel.emit(decided)

    def _deny_unasked(
        self, call: CallToApprove, by: Literal["stop", "closed"], channel: EventChannel
    ) -> ApprovalDecided:
        decided = ApprovalDecided(call.call_id, call.name, False, "the turn was ending", by, 0.0)
        self._decided.add(call.call_id)
        channel.emit(decided)
        return decided


class NobodyToAsk(Approvals):
    """The approvals of a turn that no person watches (asked by another program, over MCP): a call
    that needs approval is declined at once, and the model reads `reason`."""

    def __init__(self, reason: str) -> None:
        super().__init__(timeout_s=0)
        self.reason = reason

    async def ask(self, call: CallToApprove, channel: EventChannel) -> ApprovalDecided:
        decided = ApprovalDecided(call.call_id, call.name, False, self.reason, "closed", 0.0)
        self._decided.add(call.call_id)
        channel.emit(decided)
        return decided


def declined_output(decision: ApprovalDecided) -> str:
    """What the model reads for a denied call (it did not run)."""
    if decision.by == "person":
        why = f" Their reason: {decision.reason}" if decision.reason else " They gave no reason."
        return f"Declined: the user did not approve this call, so it did not run.{why}"
    return f"Declined: this call did not run ({decision.reason})."


def _clean(reason: str) -> str:
    """A person's reason as the model and the page get it: one bounded line of text."""
    return _CONTROL_CHARACTERS.sub("", reason).strip()[:MAX_REASON_CHARS]
