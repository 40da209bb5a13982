"""A turn's figures, counted once from its events: what the chat's footer and the log line show.

`RecordingChannel` notes each event as the engine emits it; `TurnFigures.end()` freezes the
total the first time it is called (the turn's end, or Stop). The outcome event (`Finished`,
`Failed`) carries the same object, and the log line reads it, so the two cannot disagree.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from agent.channel import EventChannel
from agent.events import (
    AgentEvent,
    AnswerDelta,
    ApprovalDecided,
    ReasoningDelta,
    StepEnded,
    StepStarted,
    TextDelta,
    ToolCallStarted,
)

_VISIBLE = (TextDelta, ReasoningDelta, ToolCallStarted, AnswerDelta)
"""What the person sees as the turn's first token."""
_COUNTED = (StepStarted, ToolCallStarted, StepEnded, ApprovalDecided)


@dataclass(slots=True, eq=False)
class TurnFigures:
    """Steps, tool calls, tokens, time to the first visible token and in all, time spent waiting.

    Times are seconds from the turn's start. `tool_calls` counts the calls the model made,
    finished or not, except the one that hands over the answer (`final_answer`).
    """

    clock: Callable[[], float] = time.perf_counter
    started: float = field(init=False)
    steps: int = 0
    tool_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    first_token_s: float | None = None
    total_s: float | None = None
    approvals: list[ApprovalDecided] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.started = self.clock()

    @property
    def waiting_s(self) -> float:
        """Time the turn spent waiting for people's decisions (part of `total_s`)."""
        return sum(decision.waited_s for decision in self.approvals)

    def note(self, event: AgentEvent) -> None:
        if self.first_token_s is None and isinstance(event, _VISIBLE):
            self.first_token_s = self.clock() - self.started
        if not isinstance(event, _COUNTED):  # most events (each streamed piece) count nothing
            return
        if isinstance(event, StepStarted):
            self.steps = event.step
        elif isinstance(event, ToolCallStarted):
            self.tool_calls += not event.gives_answer
        elif isinstance(event, StepEnded):
            self.input_tokens += event.input_tokens
            self.output_tokens += event.output_tokens
        elif isinstance(event, ApprovalDecided):
            self.approvals.append(event)

    def end(self) -> TurnFigures:
        """Freeze the total (only the first call counts); these figures, for chaining."""
        if self.total_s is None:
            self.total_s = self.clock() - self.started
        return self


class RecordingChannel(EventChannel):
    """The turn's `EventChannel`, noting its figures as the events go through."""

    def __init__(self) -> None:
        super().__init__()
        self.figures = TurnFigures()

    def emit(self, event: AgentEvent) -> None:
        self.figures.note(event)
        super().emit(event)
