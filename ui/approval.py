"""Approve / Deny in the page and over the API: a person's decision reaches the right turn of the right session.

The engine pauses a call that needs approval (`agent.Approvals`); this module
delivers decisions to it. `SessionApprovals` keeps, server-side, each
session's running turns' `Approvals`: a decision is looked up in the session
it comes from only, so a call id from another session is unknown here.

In the page, the call waiting shows in the chat as "⏸️ Waiting for your
approval: tool(name)" (`ui.view`), and `ApprovalPanel` under the chat carries
the same call with **Approve** and **Deny** buttons and a box for a reason. The
live turn fills the panel from the turn's messages (`ApprovalPanel.values`,
through ChatInterface's additional outputs); the page's CSS (`page.css`) shows it
only while it holds a call. Its buttons are unqueued events: they run at once,
beside the chat's streaming event.

Over the API, the `chat` job yields the waiting call as a message with metadata
id `turn-approval` and the call id in its metadata `log`; the `approve` endpoint
(`call_id`, `decision`, `reason`) from the same client decides it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any, TypeVar

import gradio as gr

from agent import Approvals, Decision
from ui.view import APPROVAL_ID

Messages = list[dict[str, Any]]
T = TypeVar("T")
DECISIONS = {"approve": True, "deny": False}
REFUSALS = {
    Decision.ALREADY_DECIDED: "This call was already decided.",
    Decision.UNKNOWN_CALL: "No call with this id is waiting for your approval in this session.",
    Decision.TURN_FINISHED: "No turn of yours is waiting for a decision (it finished or was stopped).",
}
TICK_S = 1.0
"""While a call waits, the chat repeats its (unchanged) update this often: Gradio notices a closed
page only when it sends the page something, and then ends the chat, which denies the call."""
MIN_SHOWN_S = 0.4
"""A button press this soon after its call was shown is refused: it was meant for the call before
(a double click landing after the next call replaced the decided one)."""


class SessionApprovals:
    """The `Approvals` of every running turn, by the session it runs in."""

    def __init__(self) -> None:
        self._running: dict[str, list[Approvals]] = {}

    @contextmanager
    def watch(self, session: str, timeout_s: float) -> Iterator[Approvals]:
        """A turn's `Approvals`, reachable from `session` while the block runs."""
        approvals = Approvals(timeout_s)
        self._running.setdefault(session, []).append(approvals)
        try:
            yield approvals
        finally:
            turns = self._running[session]
            turns.remove(approvals)
            if not turns:
                del self._running[session]

    def decide(self, session: str, call_id: str, approved: bool, reason: str = "") -> Decision:
        """Deliver a decision to the session's turn whose call `call_id` waits; refused otherwise."""
        turns = self._running.get(session, [])
        if not turns:
            return Decision.TURN_FINISHED
        verdicts = [approvals.decide(call_id, approved, reason) for approvals in turns]
        for verdict in (Decision.DECIDED, Decision.ALREADY_DECIDED):
            if verdict in verdicts:
                return verdict
        return Decision.UNKNOWN_CALL

    def shown_for_s(self, session: str, call_id: str) -> float | None:
        """How long the session's call `call_id` has been waiting, if it is."""
        for approvals in self._running.get(session, []):
            if (shown := approvals.shown_for_s(call_id)) is not None:
                return shown
        return None


def approve_endpoint(approvals: SessionApprovals) -> Callable[..., str]:
    """The `approve` API: decide a call waiting in the caller's own session."""

    def approve(call_id: str, decision: str, reason: str, request: gr.Request) -> str:
        """Approve or deny a tool call that waits for your approval in this session's running chat.

        Args:
            call_id: the call's id, from the chat message whose metadata id is "turn-approval" (its metadata "log").
            decision: "approve" or "deny".
            reason: why you deny it (optional); the model reads it.
        Returns:
            "approved" or "denied".
        """
        choice = decision.strip().lower()
        if choice not in DECISIONS:
            raise gr.Error(
                f'decision must be "approve" or "deny", not {decision[:20]!r}', print_exception=False
            )
        verdict = approvals.decide(request.session_hash or "", call_id, DECISIONS[choice], reason)
        if verdict is not Decision.DECIDED:
            raise gr.Error(REFUSALS[verdict], print_exception=False)
        return "approved" if DECISIONS[choice] else "denied"

    return approve


def panel_values(turn: Messages) -> tuple[str, str]:
    """The panel's content for a turn's messages: the waiting call and its id, or empty."""
    message = next((m for m in turn if (m.get("metadata") or {}).get("id") == APPROVAL_ID), None)
    if message is None:
        return "", ""
    metadata = message["metadata"]
    return f"**{metadata['title']}**\n\n{message['content']}", metadata["log"]


class ApprovalPanel:
    """Approve / Deny under the chat, for the call waiting in this page's turn."""

    def __init__(self) -> None:
        with gr.Column(render=False, elem_id="approval-panel", variant="panel") as self.column:
            self.call = gr.Markdown(elem_id="approval-call")
            self.reason = gr.Textbox(
                label="Reason (optional, for Deny)",
                placeholder="Why not? The model reads it and may try another way.",
                max_length=500,
                lines=1,
                elem_id="approval-reason",
            )
            with gr.Row():
                self.approve = gr.Button("Approve", variant="primary", elem_id="approval-approve")
                self.deny = gr.Button("Deny", variant="stop", elem_id="approval-deny")
            self.call_id = gr.Textbox(
                placeholder="no call waiting", container=False, elem_id="approval-call-id", interactive=False
            )

    @property
    def outputs(self) -> Sequence[gr.components.Component]:
        """What the chat function fills, in `panel_values` order."""
        return [self.call, self.call_id]

    def render(self) -> None:
        self.column.render()

    def values(self, turn: Messages) -> tuple[str, str]:
        return panel_values(turn)

    def wire(self, approvals: SessionApprovals) -> None:
        """The buttons decide the call the panel shows (in this page's session only)."""
        for button, approved in ((self.approve, True), (self.deny, False)):

            def press(call_id: str, reason: str, request: gr.Request, approved: bool = approved) -> str:
                session = request.session_hash or ""
                shown = approvals.shown_for_s(session, call_id)
                if shown is not None and shown >= MIN_SHOWN_S:
                    approvals.decide(session, call_id, approved, reason if not approved else "")
                return ""

            button.click(
                press, [self.call_id, self.reason], [self.reason], queue=False, api_visibility="private"
            )
        gr.api(approve_endpoint(approvals), api_name="approve")


async def ticking(
    batches: AsyncIterator[list[T]], waiting: Callable[[], bool], every_s: float = TICK_S
) -> AsyncIterator[list[T]]:
    """The batches, and an empty one every `every_s` without a batch while `waiting()` (see `TICK_S`)."""
    pending: asyncio.Future[list[T]] | None = None
    try:
        while True:
            if pending is None and not waiting():  # no tick to time: the next batch, without a task
                try:
                    batch = await anext(batches)
                except StopAsyncIteration:
                    return
                yield batch
                continue
            pending = pending or asyncio.ensure_future(anext(batches))
            done, _ = await asyncio.wait({pending}, timeout=every_s if waiting() else None)
            if not done:
                yield []
                continue
            try:
                batch = pending.result()
            except StopAsyncIteration:
                return
            pending = None
            yield batch
    finally:
        if pending is not None and not pending.done():
            pending.cancel()
            with suppress(asyncio.CancelledError, StopAsyncIteration):
                await pending
