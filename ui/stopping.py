"""The Stop button, as a signal to the running chat rather than a cancellation.

Gradio's own Stop cancels the chat function, which then cannot yield again: the
turn's last update is whatever was on screen, with no stop mark and no footer.
Instead, Stop sets the session's `asyncio.Event`; the chat function notices it
between updates (`until_set`), ends the agent's turn itself, and yields its
final state: what ran, a visible "Stopped" line and the footer.
`stop_by_signal` wires the chat's Stop button that way.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager, suppress
from typing import TypeVar

import gradio as gr

from ui import gradio_seams as seams

T = TypeVar("T")


class StopSignals:
    """One stop event per browser session with a turn running."""

    def __init__(self) -> None:
        self._running: dict[str, asyncio.Event] = {}

    @contextmanager
    def watch(self, session: str) -> Iterator[asyncio.Event]:
        """The event that `stop(session)` sets while this turn runs."""
        event = asyncio.Event()
        self._running[session] = event
        try:
            yield event
        finally:
            if self._running.get(session) is event:
                del self._running[session]

    def stop(self, session: str) -> bool:
        """Ask the session's running turn to stop; False if none is running."""
        event = self._running.get(session)
        if event is not None:
            event.set()
        return event is not None


async def until_set(source: AsyncIterator[T], stop: asyncio.Event) -> AsyncIterator[T]:
    """The items of `source` until it ends or `stop` is set, whichever comes first."""
    stopped = asyncio.ensure_future(stop.wait())
    pending: asyncio.Future[T] | None = None
    try:
        while not stop.is_set():
            pending = asyncio.ensure_future(anext(source))
            await asyncio.wait({pending, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if not pending.done():
                return
            try:
                item = pending.result()
            except StopAsyncIteration:
                return
            pending = None
            yield item
    finally:
        for future in (pending, stopped):
            if future is not None and not future.done():
                future.cancel()
                with suppress(asyncio.CancelledError, StopAsyncIteration):
                    await future


def stop_by_signal(blocks: gr.Blocks, chat: gr.ChatInterface, signals: StopSignals) -> None:
    """Stop tells the session's running turn to end itself instead of cancelling it."""
    textbox = chat.textbox
    seams.remove_cancellation(blocks, textbox, "stop")

    def stop(request: gr.Request) -> None:
        signals.stop(request.session_hash or "")

    textbox.stop(stop, None, None, queue=False, api_visibility="private")
