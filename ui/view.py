"""One turn as the chat shows it: agent events folded into `gr.ChatMessage`s.

`TurnView.apply` folds events into plain state; `TurnView.render` builds the
messages from that state, as **new** objects each time (Gradio diffs each yield
against the previous one, so a message mutated in place would stream stale
updates). The view is pure: no I/O, no clock but the one it is given.

What the user sees, in order: the model's thoughts (its reasoning, and text it
wrote in a step that also calls tools) as a collapsible "💭" message, each tool
call as a collapsible message whose
title names the tool and flips from pending to done with its result and
duration (calls of one step that run in parallel are nested under a step
message), the answer as a plain assistant message that grows as it streams, a
clear message if the turn failed or was stopped, and a subdued footer with the
turn's cost.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import gradio as gr

from agent.events import (
    AgentEvent,
    AnswerDelta,
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
from agent.tools import FINAL_ANSWER
from ui.history import content_text
from ui.safety import fenced, safe_markdown

TITLE_RESULT_CHARS = 40

FAILURE_TITLES = {
    "auth": "API key rejected",
    "rate_limit": "Rate limited",
    "upstream": "Model server error",
    "network": "Connection problem",
    "step_limit": "Step limit reached",
    "input": "Message not accepted",
    "internal": "Internal error",
}


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

    @property
    def done(self) -> bool:
        return self.output is not None or self.interrupted


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
    """A line about the turn itself (a retry, a failure), shown as a message title."""

    title: str


Item = ToolCallView | TextView | ThoughtView | NoteView


@dataclass
class TurnView:
    """The state of one turn on screen; `apply` events, then `render` messages."""

    backend: str
    clock: Callable[[], float] = time.monotonic
    items: list[Item] = field(default_factory=list)
    steps: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    started_at: float = field(init=False)
    first_visible_s: float | None = None
    total_s: float | None = None
    _calls: dict[str, ToolCallView] = field(default_factory=dict)
    _answer_calls: set[str] = field(default_factory=set)
    _steps_with_calls: set[int] = field(default_factory=set)
    _text_closed: bool = True

    def __post_init__(self) -> None:
        self.started_at = self.clock()

    def apply(self, event: AgentEvent) -> None:
        match event:
            case StepStarted(step):
                self.steps = step
            case TextDelta(step, text) if step in self._steps_with_calls:
                self._think(step, text)
            case TextDelta(step, text):
                self._append_answer(text, step)
            case ReasoningDelta(step, text):
                self._think(step, text)
            case ToolCallStarted(call_id, name, step) if step not in self._steps_with_calls:
                self._steps_with_calls.add(step)
                self._text_becomes_thought(step)
                self.apply(event)
            case ToolCallStarted(call_id, name, step) if name == FINAL_ANSWER:
                self._answer_calls.add(call_id)
                self._text_closed = True
            case ToolCallStarted(call_id, name, step):
                self._add_call(ToolCallView(call_id, name, step))
            case ToolArgsDelta(call_id, text) if call_id in self._calls:
                self._calls[call_id].arguments += text
            case ToolResult(call_id, name, output, is_error, duration_s):
                self._finish_call(call_id, name, output, is_error, duration_s)
            case AnswerDelta(text):
                self._append_answer(text)
            case Retrying(_, attempt, wait_s, reason):
                self.items.append(NoteView(f"🔁 {reason} Retrying in {wait_s:.1f} s (attempt {attempt})."))
            case StepEnded(_, input_tokens, output_tokens):
                self.input_tokens += input_tokens
                self.output_tokens += output_tokens
            case Finished(answer):
                if not any(isinstance(item, TextView) and item.text for item in self.items):
                    self._append_answer(answer)
                self._end()
            case Failed(kind, message):
                self.items.append(NoteView(f"⚠️ {FAILURE_TITLES.get(kind, 'Error')}: {message}"))
                self._end()

    def _add_call(self, call: ToolCallView) -> None:
        self._calls[call.call_id] = call
        self.items.append(call)
        self._text_closed = True
        self._note_visible()

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
        self._note_visible()

    def _append_answer(self, text: str, step: int | None = None) -> None:
        if self._text_closed:
            self.items.append(TextView(step=step))
            self._text_closed = False
        last = self.items[-1]
        assert isinstance(last, TextView)
        last.text += text
        self._note_visible()

    def _note_visible(self) -> None:
        if self.first_visible_s is None:
            self.first_visible_s = self.clock() - self.started_at

    def _end(self) -> None:
        self.total_s = self.clock() - self.started_at
        for call in self._calls.values():
            call.interrupted = not call.done

    # -- rendering --------------------------------------------------------------------

    def render(self) -> list[gr.ChatMessage]:
        messages: list[gr.ChatMessage] = []
        parallel_steps = self._parallel_steps()
        opened_steps: set[int] = set()
        for item in self.items:
            if isinstance(item, ToolCallView):
                if item.step in parallel_steps and item.step not in opened_steps:
                    opened_steps.add(item.step)
                    messages.append(self._render_step(item.step))
                messages.append(_render_call(item, nested=item.step in parallel_steps))
            elif isinstance(item, TextView):
                messages.append(gr.ChatMessage(content=safe_markdown(item.text)))
            elif isinstance(item, ThoughtView):
                thinking = item is self.items[-1] and self.total_s is None
                status = "pending" if thinking else "done"
                messages.append(
                    gr.ChatMessage(
                        content=safe_markdown(item.text), metadata={"title": "💭 Thinking", "status": status}
                    )
                )
            else:
                messages.append(gr.ChatMessage(content="", metadata={"title": item.title, "status": "done"}))
        if self.total_s is not None:  # the turn is over
            messages.append(self._render_footer())
        return messages

    def _parallel_steps(self) -> set[int]:
        counts: dict[int, int] = {}
        for call in self._calls.values():
            counts[call.step] = counts.get(call.step, 0) + 1
        return {step for step, count in counts.items() if count > 1}

    def _render_step(self, step: int) -> gr.ChatMessage:
        calls = [c for c in self._calls.values() if c.step == step]
        done = all(c.done for c in calls)
        metadata = {
            "title": f"⚡ Step {step}: {len(calls)} tool calls in parallel",
            "id": f"step-{step}",
            "status": "done" if done else "pending",
        }
        if done:
            metadata["duration"] = round(max(c.duration_s or 0.0 for c in calls), 6)
        return gr.ChatMessage(content="", metadata=metadata)

    def summary(self) -> str:
        """One line: steps, tool calls, tokens, time to first visible token, total time."""
        calls = len(self._calls)
        parts = [
            f"{self.steps} step{'s' * (self.steps != 1)}",
            f"{calls} tool call{'s' * (calls != 1)}",
            f"{self.input_tokens:,} tokens in · {self.output_tokens:,} out",
        ]
        if self.first_visible_s is not None:
            parts.append(f"first token {self.first_visible_s:.2f} s")
        if self.total_s is not None:
            parts.append(f"total {self.total_s:.2f} s")
        return " · ".join(parts)

    def _render_footer(self) -> gr.ChatMessage:
        return gr.ChatMessage(
            content=f"Answered by: {self.backend}",
            metadata={"title": f"📊 {self.summary()}", "status": "done"},
        )


def _render_call(call: ToolCallView, nested: bool) -> gr.ChatMessage:
    metadata: dict[str, str | float] = {"title": _call_title(call), "id": call.call_id}
    if nested:
        metadata["parent_id"] = f"step-{call.step}"
    metadata["status"] = "done" if call.done else "pending"
    if call.duration_s is not None:
        metadata["duration"] = round(call.duration_s, 6)
    body = f"Arguments:\n{fenced(call.arguments, 'json')}" if call.arguments else "Arguments: …"
    if call.output is not None:
        output = safe_markdown(call.output.removeprefix("Error: "))
        body += f"\n\n{'**Error:** ' if call.is_error else '**Result:** '}{output}"
    elif call.interrupted:
        body += "\n\n_Not finished: the turn ended first._"
    return gr.ChatMessage(content=body, metadata=metadata)


def _call_title(call: ToolCallView) -> str:
    if call.output is None:
        return f"🛠️ {call.name}"
    if call.is_error:
        return f"🛠️ {call.name} → error"
    shown = call.output if len(call.output) <= TITLE_RESULT_CHARS else call.output[:TITLE_RESULT_CHARS] + "…"
    return f"🛠️ {call.name} → {shown}"


STOPPED_MARK = "⏹️ Stopped"


def mark_stopped(history: list[dict]) -> bool:
    """Mark the last turn as stopped, in place, if it never finished; True if it changed.

    Stop cancels the turn's generator, which cannot yield again, so the mark is
    made on the messages themselves: once by the Stop button's own listener (what
    the browser shows), and again on the history the next turn receives, because
    Gradio's copy of the history is synced before that listener's result arrives.
    Gradio passes the next turn a shallow copy of the history, so a message
    changed in place there is what the chat shows from then on.
    """
    turn_start = max((i for i, m in enumerate(history) if m.get("role") == "user"), default=len(history)) + 1
    turn = history[turn_start:]
    if not turn or any(
        _title(m).startswith("📊") or STOPPED_MARK in content_text(m.get("content")) + _title(m) for m in turn
    ):
        return False
    for message in turn:
        if (message.get("metadata") or {}).get("status") == "pending":
            message["metadata"]["status"] = "done"
    last = turn[-1]
    if _title(last):
        last["metadata"]["title"] = f"{_title(last)} · {STOPPED_MARK}"
    else:
        last["content"] = [{"type": "text", "text": f"{content_text(last.get('content'))}\n\n{STOPPED_MARK}"}]
    return True


def _ends_turn(message: dict) -> bool:
    """The footer of a finished turn, or a stop mark already made."""
    title = _title(message)
    return title.startswith("📊") or STOPPED_MARK in title + content_text(message.get("content"))


def _title(message: dict) -> str:
    return (message.get("metadata") or {}).get("title", "")
