"""One turn as the chat shows it: agent events folded into `gr.ChatMessage`s.

`TurnView.apply` folds events into plain state; `TurnView.render` builds the
messages from that state. A message is never changed once rendered (Gradio diffs
each yield against the previous one, so a message mutated in place would stream
stale updates): a part of the turn that changed gets a **new** message, one that
did not keeps the very message it had (so what consumes the messages can skip the
unchanged ones by identity). The view is pure: no I/O, no clock but the one it is given.

What the user sees, in order: the model's thoughts (its reasoning, and text it
wrote in a step that also calls tools) as a collapsible "💭" message, each tool
call as a collapsible message whose
title names the tool and flips from pending to done with its result and
duration (calls of one step that run in parallel are nested under a step
message), the answer as a plain assistant message that grows as it streams,
one-line notes (a retry, updated in place; a failure; a stop), and a footer
with the turn's cost that opens to a timeline of its model and tool calls.

A call waiting for the person's approval is titled "⏸️ Waiting for your
approval: tool(name)" with its complete arguments, and carries the metadata id
`APPROVAL_ID` and its call id in the metadata `log` (how the page's approval
panel and API clients find it); once decided it is a tool step again, saying
who decided and how long it waited. Time spent waiting is kept apart from time
spent working in the footer and its timeline.

The footer's figures are the engine's (`agent.TurnFigures`, carried on the turn's last
event, or handed over on Stop): the turn's log line reads the same object.

Notes and the footer are plain messages marked by a metadata `id` (`FOOTER_ID`,
`RETRY_ID`, `FAILURE_ID`, `STOPPED_ID`), never titled ones: a titled message would show an expand
arrow that opens to nothing, and a turn that ends on a titled "done" message
makes Gradio's Chatbot show a stray "•••" bubble during the next turn.
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field, fields
from operator import attrgetter
from typing import Any

import gradio as gr

from agent import TurnFigures, display_number
from agent.events import (
    AgentEvent,
    AnswerDelta,
    ApprovalDecided,
    ApprovalRequested,
    Failed,
    Finished,
    ReasoningDelta,
    Retrying,
    StepEnded,
    StepStarted,
    TextDelta,
    ToolArgsDelta,
    ToolCallStarted,
    ToolResult,
)
from ui.render import fenced

TITLE_RESULT_CHARS = 40
SHOWN_RESULT_CHARS = 4000
"""A tool result longer than this is cut in the chat, with a note (the model reads it all)."""
TIMELINE_WIDTH = 36
WORK = "█"
WAIT = "░"

FAILURE_TITLES = {
    "auth": "API key rejected",
    "rate_limit": "Rate limited",
    "upstream": "Model server error",
    "network": "Connection problem",
    "step_limit": "Step limit reached",
    "input": "Message not accepted",
    "internal": "Internal error",
}
FOOTER_ID = "turn-footer"
RETRY_ID = "turn-retry"
FAILURE_ID = "turn-failure"
STOPPED_ID = "turn-stopped"
APPROVAL_ID = "turn-approval"
STOPPED_MARK = "⏹️ Stopped"


@dataclass
class ToolCallView:
    call_id: str
    name: str
    step: int
    arguments: str = ""
    output: str | None = None
    is_error: bool = False
    duration_s: float | None = None
    interrupted: bool = False
    approval: ApprovalView | None = None

    @property
    def done(self) -> bool:
        return self.output is not None or self.interrupted

    @property
    def waiting(self) -> bool:
        """Shown for approval, not decided yet."""
        return self.approval is not None and self.approval.decided is None and not self.interrupted


@dataclass
class ApprovalView:
    """A call's approval: when it was shown (seconds from the turn's start) and the decision."""

    asked_s: float
    decided: ApprovalDecided | None = None

    @property
    def denied(self) -> bool:
        return self.decided is not None and not self.decided.approved


@dataclass
class TextView:
    """Answer text; `step` is set for text the model wrote itself (it may turn out to be a thought)."""

    text: str = ""
    step: int | None = None


@dataclass
class ThoughtView:
    """Reasoning, or text written in a step that calls tools."""

    step: int
    text: str = ""


@dataclass
class NoteView:
    """A line about the turn itself (a retry, a failure, a stop): plain text, no body."""

    note_id: str
    text: str


@dataclass
class StepTiming:
    """When a step's model call started and last streamed, in seconds from the turn's start."""

    started_s: float
    streamed_until_s: float | None = None
    ended_s: float | None = None


Item = ToolCallView | TextView | ThoughtView | NoteView


@dataclass
class TurnView:
    """The state of one turn on screen; `apply` events, then `render` messages."""

    backend: str
    clock: Callable[[], float] = time.monotonic
    items: list[Item] = field(default_factory=list)
    steps: int = 0
    started_at: float = field(init=False)
    figures: TurnFigures = field(init=False)
    """Counted here from the events until the engine's arrive with the turn's end (or Stop)."""
    total_s: float | None = None
    refused: bool = False
    failed: bool = False
    stopped: bool = False
    timings: dict[int, StepTiming] = field(default_factory=dict)
    _calls: dict[str, ToolCallView] = field(default_factory=dict)
    _answer_calls: set[str] = field(default_factory=set)
    _steps_with_calls: set[int] = field(default_factory=set)
    _text_closed: bool = True
    _retry: NoteView | None = None
    _retry_cause: str = ""
    _attempts: int = 1
    _rendered: dict[Hashable, tuple[Any, gr.ChatMessage]] = field(
        default_factory=dict, compare=False, repr=False
    )
    """The message last rendered for each part of the turn, with the state it was rendered from."""

    def __post_init__(self) -> None:
        self.started_at = self.clock()
        self.figures = TurnFigures(self.clock)

    def apply(self, event: AgentEvent) -> None:
        self.figures.note(event)
        self._show(event)

    def _show(self, event: AgentEvent) -> None:
        match event:
            case StepStarted(step):
                self.steps = step
                self.timings[step] = StepTiming(self._now())
            case TextDelta(step, text) if step in self._steps_with_calls:
                self._think(step, text)
                self._streamed()
            case TextDelta(step, text):
                self._append_answer(text, step)
                self._streamed()
            case ReasoningDelta(step, text):
                self._think(step, text)
                self._streamed()
            case ToolCallStarted(call_id, name, step) if step not in self._steps_with_calls:
                self._steps_with_calls.add(step)
                self._text_becomes_thought(step)
                self._show(event)
            case ToolCallStarted(call_id, name, step, gives_answer=True):
                self._answer_calls.add(call_id)
                self._text_closed = True
                self._streamed()
            case ToolCallStarted(call_id, name, step):
                self._add_call(ToolCallView(call_id, name, step))
                self._streamed()
            case ToolArgsDelta(call_id, text):
                if call_id in self._calls:
                    self._calls[call_id].arguments += text
                self._streamed()
            case ToolResult(call_id, name, output, is_error, duration_s):
                self._finish_call(call_id, name, output, is_error, duration_s)
            case ApprovalRequested(call_id, name, arguments, step):
                if call_id not in self._calls:
                    self._add_call(ToolCallView(call_id, name, step))
                self._calls[call_id].arguments = arguments  # complete, as it will run
                self._calls[call_id].approval = ApprovalView(self._now())
            case ApprovalDecided(call_id) if (call := self._calls.get(call_id)) and call.approval:
                call.approval.decided = event
            case AnswerDelta(text):
                self._append_answer(text)
                self._streamed()
            case Retrying(_, attempt, wait_s, reason):
                self._note_retry(attempt, wait_s, reason)
            case StepEnded(step):
                if step in self.timings:
                    self.timings[step].ended_s = self._now()
            case Finished(answer, figures=figures):
                self.figures = figures or self.figures
                if not any(isinstance(item, TextView) and item.text for item in self.items):
                    self._append_answer(answer)
                if self._retry is not None:
                    self._retry.text = f"🔁 {self._retry_cause} It worked on attempt {self._attempts}."
                self._end()
            case Failed(kind, message, figures=figures):
                self.figures = figures or self.figures
                self._fail(kind, message)

    @property
    def waiting_for_approval(self) -> bool:
        return any(call.waiting for call in self._calls.values())

    def stop(self, note: str | None = None, figures: TurnFigures | None = None) -> None:
        """The user pressed Stop (or the server is shutting down, and `note` says so): close what
        was running and say so, visibly, at the end. `figures`: the stopped turn's, from the engine."""
        if self.total_s is not None:
            return
        self.figures = figures or self.figures
        waiting = [call.name for call in self._calls.values() if call.waiting]
        unfinished = sum(not call.done and not call.waiting for call in self._calls.values())
        where = f" in step {self.steps}" if self.steps else ""
        detail = f"; {unfinished} tool call{'s' * (unfinished != 1)} did not finish" if unfinished else ""
        if waiting:
            detail += f"; {', '.join(waiting)} waited for your approval and did not run"
        self._end()
        self.items.append(NoteView(STOPPED_ID, note or f"{STOPPED_MARK}{where}{detail}."))

    def refuse(self, note: str) -> None:
        """The turn is not run (the server is shutting down): one line, no footer."""
        self.refused = True
        self._end()
        self.items.append(NoteView(FAILURE_ID, note))

    def _now(self) -> float:
        return self.clock() - self.started_at

    def _streamed(self) -> None:
        if timing := self.timings.get(self.steps):
            timing.streamed_until_s = self._now()

    def _add_call(self, call: ToolCallView) -> None:
        self._calls[call.call_id] = call
        self.items.append(call)
        self._text_closed = True

    def _finish_call(self, call_id: str, name: str, output: str, is_error: bool, duration_s: float) -> None:
        if call_id in self._answer_calls and not is_error:
            return
        if call_id not in self._calls:
            self._add_call(ToolCallView(call_id, name, self.steps))
        call = self._calls[call_id]
        call.output, call.is_error, call.duration_s = output, is_error, duration_s

    def _text_becomes_thought(self, step: int) -> None:
        """The step calls tools, so what the model wrote in it was thinking aloud."""
        for position, item in enumerate(self.items):
            if isinstance(item, TextView) and item.step == step:
                self.items[position] = ThoughtView(step, item.text)
        self._text_closed = True

    def _think(self, step: int, text: str) -> None:
        last = self.items[-1] if self.items else None
        if not (isinstance(last, ThoughtView) and last.step == step):
            last = ThoughtView(step)
            self.items.append(last)
        last.text += text
        self._text_closed = True

    def _append_answer(self, text: str, step: int | None = None) -> None:
        if self._text_closed:
            self.items.append(TextView(step=step))
            self._text_closed = False
        last = self.items[-1]
        assert isinstance(last, TextView)
        last.text += text

    def _note_retry(self, attempt: int, wait_s: float, reason: str) -> None:
        """One line, updated in place."""
        self._retry_cause = reason
        self._attempts = attempt
        text = f"🔁 {self._retry_cause} Retrying in {wait_s:.1f} s (attempt {attempt})."
        if self._retry is None:
            self._retry = NoteView(RETRY_ID, text)
            self.items.append(self._retry)
        else:
            self._retry.text = text

    def _fail(self, kind: str, message: str) -> None:
        title = FAILURE_TITLES.get(kind, "Error")
        if self._retry is not None:
            self.items.remove(self._retry)
            title += f" ({self._attempts} attempts)"
        self.refused = kind == "input"
        self.failed = True
        self.items.append(NoteView(FAILURE_ID, f"⚠️ {title}: {message}"))
        self._end()

    def _end(self) -> None:
        self.total_s = self._now()
        self.figures.end()
        for call in self._calls.values():
            call.interrupted = not call.done
        for timing in self.timings.values():
            timing.ended_s = timing.ended_s if timing.ended_s is not None else self.total_s

    # -- rendering --------------------------------------------------------------------

    def render(self) -> list[gr.ChatMessage]:
        """The turn's messages: new ones for the parts that changed since the last render, the
        same objects as then for the others."""
        messages: list[gr.ChatMessage] = []
        parallel_steps = self._parallel_steps()
        opened_steps: set[int] = set()
        for item in self.items:
            if isinstance(item, ToolCallView):
                nested = item.step in parallel_steps
                if nested and item.step not in opened_steps:
                    opened_steps.add(item.step)
                    state = self._step_state(item.step)
                    messages.append(self._kept(("step", item.step), state, _render_step, item.step, *state))
                messages.append(
                    self._kept(id(item), (nested, *_call_state(item)), _render_call, item, nested)
                )
            elif isinstance(item, TextView):
                messages.append(self._kept(id(item), (TextView, item.text), _render_text, item.text))
            elif isinstance(item, ThoughtView):
                thinking = item is self.items[-1] and self.total_s is None
                state = (ThoughtView, item.text, thinking)
                messages.append(self._kept(id(item), state, _render_thought, item.text, thinking))
            else:
                state = (NoteView, item.note_id, item.text)
                messages.append(self._kept(id(item), state, _render_note, item.note_id, item.text))
        if self._has_footer():
            content = self._footer_content()
            messages.append(self._kept("footer", content, _render_footer, content))
        return messages

    def _kept(
        self, key: Hashable, state: Any, render: Callable[..., gr.ChatMessage], *args: Any
    ) -> gr.ChatMessage:
        """The message `render(*args)` gives for the part `key` of the turn, as it is now (`state`:
        everything the message is made from): the one rendered before if that state has not changed."""
        kept = self._rendered.get(key)
        if kept is not None and kept[0] == state:
            return kept[1]
        message = render(*args)
        self._rendered[key] = (state, message)
        return message

    def _has_footer(self) -> bool:
        """An ended turn gets a footer, unless its input was refused or it failed before doing
        anything (no output, no tool call, no tokens): then the failure line says it all."""
        if self.total_s is None or self.refused:
            return False
        figures = self.figures
        did_something = figures.first_token_s is not None or figures.input_tokens or figures.output_tokens
        return not self.failed or bool(did_something)

    def _parallel_steps(self) -> set[int]:
        counts: dict[int, int] = {}
        for call in self._calls.values():
            counts[call.step] = counts.get(call.step, 0) + 1
        return {step for step, count in counts.items() if count > 1}

    def _step_state(self, step: int) -> tuple[int, float | None]:
        """How many calls the step made, and its duration once they are all done (else None)."""
        calls = [c for c in self._calls.values() if c.step == step]
        done = all(c.done for c in calls)
        return len(calls), round(max(c.duration_s or 0.0 for c in calls), 6) if done else None

    def summary(self) -> str:
        """One line: steps, tool calls, tokens, time to first visible token, total time, waiting.

        Times count from the start of the turn on the server: the first token is the first
        tool call or answer text the chat could show."""
        figures = self.figures
        calls = figures.tool_calls
        parts = [
            f"{figures.steps} step{'s' * (figures.steps != 1)}",
            f"{calls} tool call{'s' * (calls != 1)}",
        ]
        if figures.input_tokens or figures.output_tokens:  # usage arrives when a step ends
            parts.append(f"{figures.input_tokens:,} tokens in · {figures.output_tokens:,} out")
        if figures.first_token_s is not None:
            parts.append(f"first token {seconds(figures.first_token_s)}")
        if figures.total_s is not None:
            parts.append(f"total {seconds(figures.total_s)}")
        if waited := figures.waiting_s:
            parts.append(f"{seconds(waited)} of it waiting for your approval")
        return " · ".join(parts)

    def timeline(self) -> str:
        """Each model call and tool call as a bar on one time axis (parallel calls overlap)."""
        total = max(self.total_s or 0.0, 1e-9)
        rows = [("", f"0 {'─' * (TIMELINE_WIDTH - 2)} {seconds(total)}", "")]
        for step, timing in sorted(self.timings.items()):
            model_end = timing.streamed_until_s if timing.streamed_until_s is not None else timing.ended_s
            model_end = model_end if model_end is not None else total
            rows.append(
                (
                    f"{step} model",
                    _bar(timing.started_s, model_end, total),
                    seconds(model_end - timing.started_s),
                )
            )
            for call in (c for c in self._calls.values() if c.step == step):
                start = model_end
                if (approval := call.approval) is not None:
                    start = approval.asked_s + _waited(call, total)
                    rows.append(
                        (
                            f"  {call.name} (waiting)",
                            _bar(approval.asked_s, start, total, WAIT),
                            seconds(start - approval.asked_s),
                        )
                    )
                    if approval.decided is None or not approval.decided.approved:
                        continue  # it never ran
                duration = call.duration_s or 0.0
                end = start + duration if call.output is not None else total
                rows.append((f"  {call.name}", _bar(start, end, total), seconds(end - start)))
        label_width = max(len(label) for label, _, _ in rows)
        return "\n".join(f"{label:<{label_width}}  {bar}  {took}".rstrip() for label, bar, took in rows)

    def _footer_content(self) -> str:
        return (
            f"<details><summary>📊 {html.escape(self.summary())}</summary>\n\n"
            f"```text\n{self.timeline()}\n```\n\nAnswered by: {html.escape(self.backend)}\n\n</details>"
        )


def seconds(value: float) -> str:
    """A duration for people: milliseconds under a second, else seconds."""
    if value < 0.9995:
        return f"{value * 1000:.0f} ms" if value >= 0.001 else f"{value * 1000:.1f} ms"
    return f"{value:.2f} s"


def _bar(start: float, end: float, total: float, mark: str = WORK) -> str:
    """`mark`s from `start` to `end` on a `TIMELINE_WIDTH` axis of `total` seconds (at least one)."""
    first = min(int(start / total * TIMELINE_WIDTH), TIMELINE_WIDTH - 1)
    last = max(first + 1, min(round(end / total * TIMELINE_WIDTH), TIMELINE_WIDTH))
    return f"{' ' * first}{mark * (last - first)}{' ' * (TIMELINE_WIDTH - last)}"


def _waited(call: ToolCallView, now: float) -> float:
    """How long the call waited for approval (so far, if it still waits)."""
    assert call.approval is not None
    if call.approval.decided is not None:
        return call.approval.decided.waited_s
    return max(0.0, now - call.approval.asked_s)


def _render_step(step: int, calls: int, duration: float | None) -> gr.ChatMessage:
    """The message that parallel calls of a step are nested under (`duration` once they are all done)."""
    metadata: dict[str, str | float] = {
        "title": f"⚡ Step {step}: {calls} tool calls in parallel",
        "id": f"step-{step}",
        "status": "pending" if duration is None else "done",
    }
    if duration is not None:
        metadata["duration"] = duration
    return gr.ChatMessage(content="", metadata=metadata)


def _render_text(text: str) -> gr.ChatMessage:
    return gr.ChatMessage(content=text)


def _render_thought(text: str, thinking: bool) -> gr.ChatMessage:
    return gr.ChatMessage(
        content=text, metadata={"title": "💭 Thinking", "status": "pending" if thinking else "done"}
    )


def _render_note(note_id: str, text: str) -> gr.ChatMessage:
    return gr.ChatMessage(content=text, metadata={"id": note_id})


def _render_footer(content: str) -> gr.ChatMessage:
    return gr.ChatMessage(content=content, metadata={"id": FOOTER_ID})


_CALL_FIELDS = attrgetter(*(f.name for f in fields(ToolCallView) if f.name != "approval"))


def _call_state(call: ToolCallView) -> tuple[Any, ...]:
    """Everything the call's message is made from, as values (its approval's too: that object changes)."""
    approval = call.approval
    return (*_CALL_FIELDS(call), approval and (approval.asked_s, approval.decided))


def _render_call(call: ToolCallView, nested: bool) -> gr.ChatMessage:
    metadata: dict[str, str | float] = {"title": _call_title(call), "id": call.call_id}
    if call.waiting:
        metadata |= {"id": APPROVAL_ID, "log": call.call_id}
    if nested:
        metadata["parent_id"] = f"step-{call.step}"
    metadata["status"] = "done" if call.done else "pending"
    if call.duration_s is not None and not (call.approval and call.approval.denied):
        metadata["duration"] = round(call.duration_s, 6)
    body = f"Arguments:\n{fenced(call.arguments, 'json')}" if call.arguments else "Arguments: …"
    if call.approval is not None and (line := _approval_line(call.approval, call.interrupted)):
        body += f"\n\n{line}"
    if call.output is not None and not (call.approval and call.approval.denied):
        output = _shown_output(call.output.removeprefix("Error: "))
        label = "**Error:**" if call.is_error else "**Result:**"
        body += f"\n\n{label}{chr(10) * 2 if output.startswith('```') else ' '}{output}"
    elif call.interrupted and not call.waiting:
        body += "\n\n_Not finished: the turn ended first._"
    return gr.ChatMessage(content=body, metadata=metadata)


def _approval_line(approval: ApprovalView, interrupted: bool) -> str:
    decided = approval.decided
    if decided is None:
        return "_Not run: the turn ended while it waited for your approval._" if interrupted else ""
    waited = seconds(decided.waited_s)
    if decided.approved:
        return f"✅ Approved by you after {waited}."
    if decided.by == "person":
        reason = f": {decided.reason}" if decided.reason else " (no reason given)"
        return f"✋ **Denied** by you after {waited}{reason}. It did not run."
    return f"✋ **Denied**: {decided.reason}. It did not run."


def _call_title(call: ToolCallView) -> str:
    if call.waiting:
        return f"⏸️ Waiting for your approval: tool({call.name})"
    if call.approval is not None and call.approval.denied:
        return f"🛠️ {call.name} → denied"
    if call.approval is not None and call.output is None and call.interrupted:
        return f"🛠️ {call.name} → not run"
    if call.output is None:
        return f"🛠️ {call.name}"
    if call.is_error:
        return f"🛠️ {call.name} → error"
    shown = _shown_result(call.output)
    shown = shown if len(shown) <= TITLE_RESULT_CHARS else shown[:TITLE_RESULT_CHARS] + "…"
    return f"🛠️ {call.name} → {shown}{_division_note(call)}"


def _shown_output(output: str) -> str:
    """The result for the message body: a long one cut, its code fence closed, and a note saying so."""
    if len(output) <= SHOWN_RESULT_CHARS:
        return output
    shown = output[:SHOWN_RESULT_CHARS]
    if sum(line.lstrip().startswith("```") for line in shown.splitlines()) % 2:
        shown += "\n```"
    return (
        f"{shown}\n\n_Cut for display: the first {SHOWN_RESULT_CHARS:,} of {len(output):,} characters "
        "are shown; the model read them all._"
    )


def _shown_result(output: str) -> str:
    """A float result rounded for the title (a JSON result on one line); the message body keeps the exact value."""
    if output.startswith("```json\n"):
        return " ".join(output.removeprefix("```json\n").removesuffix("\n```").split())
    try:
        value = float(output)
    except ValueError:
        return output
    return display_number(value) if any(c in output for c in ".eE") else output


def _division_note(call: ToolCallView) -> str:
    """`exponentiate(x, -1)` is how the tools divide: say so."""
    try:
        arguments = json.loads(call.arguments)
    except ValueError:
        return ""
    if call.name != "exponentiate" or not isinstance(arguments, dict) or arguments.get("exponent") != -1:
        return ""
    base = arguments.get("base")
    return f" (1 ÷ {display_number(base)})" if isinstance(base, int | float) else ""
