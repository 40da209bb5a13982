"""Where the page's conversations are saved: the store, opened on the server's event loop, and
what each turn appends to it.

`SavedConversations` opens the `ConversationStore` on first use (inside the running
server, so on its event loop), purges expired conversations then and every
`PURGE_EVERY_S`, and retries a store that could not be opened at most every
`RETRY_AFTER_S`. `aclose()` waits for saves under way and closes it: the server's
shutdown calls it.

A turn is saved when it ends, from the server (`save_turn`): finished, failed, stopped,
or cut off by a closed tab. Only what is new goes to the store: the question and the
turn's messages, appended after what the session saved before; a question edited,
retried or undone in the page replaces what followed it. `SessionConversation` (a
`gr.State` per session) remembers which saved conversation the page shows and how
many of its messages the page holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from store import (
    ConversationNotFound,
    ConversationStore,
    Limits,
    Saved,
    StoreError,
    StoreFull,
    StoreUnavailable,
)
from ui.history import content_text
from ui.live_turn import newest_turns
from ui.safety import PRODUCED, answer_text

Messages = list[dict[str, Any]]
T = TypeVar("T")
PURGE_EVERY_S = 3600.0
RETRY_AFTER_S = 5.0
SAVE_TIMEOUT_S = 10.0
NOT_SAVED_ID = "turn-not-saved"
CONVERSATION_ID = "turn-conversation"
"""A note for API clients only: its content is the saved conversation's id, to continue it later."""
SAVE_NOTE_ID = "turn-saved-note"
WELL_FORMED_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
"""What a conversation id the page sends back may look like (anything else opens nothing)."""
UNTITLED = "New conversation"

log = logging.getLogger("agent.store")


class SessionConversation:
    """Which saved conversation a session's page shows, and how much of it the page holds.

    `value` groups the session's turns in traces. Gradio gives each session a deep copy
    of a `gr.State`'s initial value, and a copy of this is a fresh one.
    """

    def __init__(self) -> None:
        self.value = secrets.token_hex(8)
        self.saved_id: str | None = None
        self.shown = 0
        """How many messages the page holds: the newest `shown` of the saved conversation."""
        self.offset = 0
        """How many of the saved conversation's messages come before the ones the page holds."""
        self.known = False
        """Whether this session started, opened or saved a conversation in this process. A page
        whose process was restarted (a rolling restart keeps the page) comes back to a fresh
        state: then, and only then, its next question may continue the conversation it shows."""
        self.switches = 0
        """How many times the page went to another conversation (New chat, one opened)."""
        self.switches_at_turn_start = 0

    def __deepcopy__(self, memo: dict[int, Any]) -> SessionConversation:
        return SessionConversation()

    def start_new(self) -> None:
        self.saved_id, self.shown, self.offset, self.known = None, 0, 0, True
        self.switches += 1

    def show(self, saved_id: str, total: int, shown: int) -> None:
        self.saved_id, self.shown, self.offset, self.known = saved_id, shown, total - shown, True

    def switch_to(self, saved_id: str, total: int, shown: int) -> None:
        self.show(saved_id, total, shown)
        self.switches += 1

    def at_turn_start(self) -> TurnConversation:
        """Where a turn starting now is saved, whatever the page does while it runs."""
        self.switches_at_turn_start = self.switches
        return TurnConversation(self, self.saved_id, self.shown, self.offset, self.switches)

    @property
    def switched_since_turn_start(self) -> bool:
        """The page went to another conversation since its last turn began: the page's copy of its
        chat after that turn (ChatInterface's, in a call of its own), if it arrives now, is of the old one."""
        return self.switches != self.switches_at_turn_start


class TurnConversation:
    """The saved conversation a turn started in: its save goes there, and moves the session on
    only if the page still shows it (a New chat or another conversation opened meanwhile stays)."""

    def __init__(
        self, session: SessionConversation, saved_id: str | None, shown: int, offset: int, switches: int
    ):
        self.session, self.saved_id, self.shown, self.offset = session, saved_id, shown, offset
        self.switches = switches

    def show(self, saved_id: str, total: int, shown: int) -> None:
        self.saved_id, self.shown, self.offset = saved_id, shown, total - shown
        if self.session.switches == self.switches:
            self.session.show(saved_id, total, shown)


class SavedConversations:
    """The app's conversation store, opened lazily on the server's loop; see the module docstring."""

    def __init__(self, url: str, limits: Limits, max_page_messages: int) -> None:
        self._url = url
        self.limits = limits
        self.max_page_messages = max_page_messages
        self._store: ConversationStore | None = None
        self._opening = asyncio.Lock()
        self._failed_at = -RETRY_AFTER_S
        self._purger: asyncio.Task[None] | None = None
        self._saves: set[asyncio.Task[Any]] = set()

    async def store(self) -> ConversationStore:
        """The open store; `StoreUnavailable` if it cannot be opened (tried again after a pause)."""
        if self._store is not None:
            return self._store
        async with self._opening:
            if self._store is None:
                if time.monotonic() - self._failed_at < RETRY_AFTER_S:
                    raise StoreUnavailable("the conversation store could not be opened a moment ago")
                try:
                    self._store = await ConversationStore.open(self._url, self.limits)
                except StoreError as error:
                    self._failed_at = time.monotonic()
                    log.warning("conversation store unavailable: %s", error)
                    raise
                log.info("conversation store open (%s)", self._store.backend)
                self._purger = asyncio.create_task(self._purge_periodically(self._store))
            return self._store

    async def call(self, operation: Callable[[ConversationStore], Awaitable[T]]) -> T:
        """`operation(store)`, bounded by `SAVE_TIMEOUT_S`; `StoreUnavailable` when it does not finish."""
        store = await self.store()
        try:
            return await asyncio.wait_for(operation(store), SAVE_TIMEOUT_S)
        except TimeoutError:
            raise StoreUnavailable("the conversation store did not answer in time") from None

    async def save_turn(
        self,
        session: SessionConversation | TurnConversation,
        owner: str | None,
        history: Messages,
        turn: Messages,
    ) -> list[dict[str, Any]]:
        """Append the turn (`turn`: the question, then the turn's messages) after `history` (what the
        page held before it); the notes to show: none, the oldest removed, or one line that it
        could not be saved. Runs to its end even if the turn is cancelled meanwhile."""
        if owner is None or not turn:
            return []
        task = asyncio.create_task(self.call(lambda _store: self._save(session, owner, history, turn)))
        self._saves.add(task)
        task.add_done_callback(self._saves.discard)
        try:
            saved = await asyncio.shield(task)
        except StoreFull:
            return [_note(NOT_SAVED_ID, "⚠️ Not saved: this conversation is larger than this server keeps.")]
        except StoreError as error:
            log.warning("a turn was not saved: %s", error)
            return [_note(NOT_SAVED_ID, "⚠️ Not saved: the conversation store is unavailable right now.")]
        return [_note(SAVE_NOTE_ID, saved.note)] if saved.note else []

    async def reopen(self, session: SessionConversation, owner: str | None, conversation_id: str) -> Messages:
        """The page's part of the owner's saved conversation `conversation_id`, which the session
        now continues (opened in the panel, or an API client coming back to it);
        `ConversationNotFound` if it is not theirs. Its answers come from this server's own store,
        so the model may see them, also in a process started after they were written."""
        if owner is None:
            raise ConversationNotFound(conversation_id)
        conversation = await self.call(lambda store: store.load(owner, conversation_id))
        shown = newest_turns(conversation.messages, self.max_page_messages)
        for answer in filter(None, map(answer_text, shown)):
            PRODUCED.record(answer)
        session.switch_to(conversation.summary.id, len(conversation.messages), len(shown))
        return shown

    async def _save(
        self, session: SessionConversation | TurnConversation, owner: str, history: Messages, turn: Messages
    ) -> Saved:
        store = await self.store()
        if session.saved_id is None:
            saved = await store.start(owner, title_of([*history, *turn]), [*history, *turn])
            page = newest_turns([*history, *turn], self.max_page_messages)
            session.show(saved.conversation_id, len(history) + len(turn), len(page))
            return saved
        # What the page holds beyond what was saved (a turn that could not be saved) goes too;
        # a page that holds less (an edit, a retry, an undo) replaces what followed.
        start = min(len(history), session.shown)
        new, at = [*history[start:], *turn], session.offset + start
        saved = await store.append(owner, session.saved_id, new, at=at)
        if at == 0:  # the first question was edited or retried: the title follows
            await store.rename(owner, session.saved_id, title_of(turn))
        page = newest_turns([*history, *turn], self.max_page_messages)
        session.show(session.saved_id, at + len(new), len(page))
        return saved

    async def aclose(self) -> None:
        """Wait for the saves under way, stop purging and close the store (the server's shutdown)."""
        if self._saves:
            await asyncio.gather(*self._saves, return_exceptions=True)
        if self._purger is not None:
            self._purger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._purger
        if self._store is not None:
            await self._store.aclose()
            self._store = None

    async def _purge_periodically(self, store: ConversationStore) -> None:
        while True:
            try:
                purged = await store.purge_expired()
                if purged:
                    log.info("purged %d conversations older than %g days", purged, self.limits.retention_days)
            except StoreError as error:
                log.warning("purging expired conversations failed: %s", error)
            await asyncio.sleep(PURGE_EVERY_S)


def conversation_note(session: SessionConversation) -> list[dict[str, Any]]:
    """The note that tells an API client which saved conversation its turn went to."""
    return [_note(CONVERSATION_ID, session.saved_id)] if session.saved_id else []


def title_of(messages: Messages) -> str:
    """The first question's text, as the panel lists the conversation."""
    for message in messages:
        if message.get("role") == "user" and (text := content_text(message.get("content")).strip()):
            return text
    return UNTITLED


def _note(note_id: str, text: str) -> dict[str, Any]:
    return {"role": "assistant", "content": text, "metadata": {"id": note_id}}
