"""Everything that can happen during one agent turn, as typed events.

The engine produces these on a per-request queue; the UI consumes them. They are
the only vocabulary the two sides share, so a reader of this file knows every
kind of update a chat can show.

A turn is a sequence of steps (one model call each). In a step the model may
stream reasoning, write text and start tool calls whose arguments stream in; the
tools then run concurrently and report results; a call whose tool needs a person's
approval waits for it first (`ApprovalRequested`, then `ApprovalDecided`). Text written in a step that also
calls tools is the model thinking aloud; text of a step without tool calls is the
answer. Every turn ends with exactly one `Finished` or `Failed`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from agent.figures import TurnFigures


@dataclass(frozen=True, slots=True)
class StepStarted:
    """The model is being asked for step `step` (1-based)."""

    step: int


@dataclass(frozen=True, slots=True)
class TextDelta:
    """Text the model wrote outside any tool call: the answer if step `step` calls no
    tool, else the model thinking aloud ("Let me work that out...")."""

    step: int
    text: str


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    """The model's reasoning, from servers that stream it apart (DeepSeek, vLLM, Ollama)."""

    step: int
    text: str


@dataclass(frozen=True, slots=True)
class AnswerDelta:
    """More text of the answer given through `final_answer`, decoded as it streams."""

    text: str


@dataclass(frozen=True, slots=True)
class ToolCallStarted:
    """The model decided to call a tool; its arguments follow as `ToolArgsDelta`s.

    `gives_answer` marks the call that hands the user the answer (`final_answer`): its
    text streams as `AnswerDelta`s, so a display shows it as the answer, not as a tool.
    """

    call_id: str
    name: str
    step: int
    gives_answer: bool = False


@dataclass(frozen=True, slots=True)
class ToolArgsDelta:
    """A piece of a tool call's JSON arguments, as the model streams it."""

    call_id: str
    text: str


@dataclass(frozen=True, slots=True)
class ToolResult:
    """A tool call finished, with its output or the error fed back to the model."""

    call_id: str
    name: str
    output: str
    is_error: bool
    duration_s: float


@dataclass(frozen=True, slots=True)
class ApprovalRequested:
    """A tool call waits for a person to approve or deny it before it runs (`arguments`: its
    complete JSON). Its step's other calls go on; the next model call waits for the decision."""

    call_id: str
    name: str
    arguments: str
    step: int


DecidedBy = Literal["person", "timeout", "stop", "closed"]


@dataclass(frozen=True, slots=True)
class ApprovalDecided:
    """The call was approved (it runs now) or denied (the model is told, with `reason`).

    `by`: a person's decision, the time-out, Stop, or the page closing; `waited_s` is
    the time spent waiting, which the turn reports apart from the time spent working.
    """

    call_id: str
    name: str
    approved: bool
    reason: str
    by: DecidedBy
    waited_s: float


@dataclass(frozen=True, slots=True)
class Retrying:
    """The model request failed in a way worth retrying; the engine waits, then retries."""

    step: int
    attempt: int
    wait_s: float
    reason: str


@dataclass(frozen=True, slots=True)
class StepEnded:
    """A step's model call and tool calls are all done; token usage as reported."""

    step: int
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True, slots=True)
class Finished:
    """The turn ended with an answer; `figures` are the turn's (set by the engine as it ends)."""

    answer: str
    tools_used: tuple[str, ...]
    figures: TurnFigures | None = field(default=None, compare=False)


FailureKind = Literal["auth", "rate_limit", "upstream", "network", "step_limit", "input", "internal"]


@dataclass(frozen=True, slots=True)
class Failed:
    """The turn ended without an answer; `message` is written for a person to read; `figures` as
    for `Finished`; `cause` is the log line's word for it (`agent.errors` builds every one)."""

    kind: FailureKind
    message: str
    figures: TurnFigures | None = field(default=None, compare=False)
    cause: str = field(default="", compare=False)


AgentEvent = (
    StepStarted
    | TextDelta
    | ReasoningDelta
    | AnswerDelta
    | ToolCallStarted
    | ToolArgsDelta
    | ToolResult
    | ApprovalRequested
    | ApprovalDecided
    | Retrying
    | StepEnded
    | Finished
    | Failed
)
