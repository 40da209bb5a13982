"""The saved-conversations panel beside the chat: the visitor's conversations from the store,
newest first, a page at a time; open one by clicking its title; New chat; delete the open one;
delete them all (after a confirmation).

The page never holds the owner id, nor the ids of the conversations it lists: the list's rows
are titles, a click sends the row's index, and the session's state (`PanelPage`) maps it back
to an id. It holds one id, the open conversation's (`#open-conversation`, a hidden box set by
the server whenever the chat changes), so that a page whose server process went away while a
turn ran can open it again on the process that serves it next: `ui/connection.js` puts it in
the hidden `#reopen-conversation` (a box of its own: the server rewrites the first one as the
new page loads) and clicks the hidden `#reopen-conversation-button`. A page that kept its
server's address while that process was restarted (a rolling restart) sends the id with its
next question instead: see `ui.chat.chat_function`. Every store call is
scoped by the owner from the request's cookie: an id alone opens nothing. The list is read
again after each turn (the turn itself was saved by the server as it ended: see `ui.saved`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gradio as gr

from store import ConversationNotFound, Page, StoreError
from ui import gradio_seams as seams
from ui.live_turn import LiveTurnChatInterface
from ui.owner import owner_of
from ui.saved import WELL_FORMED_ID, SavedConversations, SessionConversation

PAGE_SIZE = 25
UNAVAILABLE = "⚠️ Saved conversations are unavailable right now; new turns are not being saved."
NO_OWNER = "Saved conversations need cookies: this browser did not send ours."
EMPTY = "No saved conversations yet: each question you ask is saved here."
_SKIP_SHOWN = (gr.skip(), gr.skip(), gr.skip())


class PanelPage:
    """The ids of the titles the panel shows, and the cursors of the pages before it (per session)."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.cursors: list[str | None] = [None]
        self.next_cursor: str | None = None

    def __deepcopy__(self, memo: dict[int, Any]) -> PanelPage:
        return PanelPage()


class SavedPanel:
    """Builds the panel (call inside a `gr.Column`) and wires it to `chat` once that exists."""

    def __init__(self, saved: SavedConversations) -> None:
        self.saved = saved
        self.page_state = gr.State(PanelPage())
        self.new_chat = gr.Button("New chat", variant="primary", icon=None, elem_id="new-chat")
        self.listing = gr.Dataset(
            components=[gr.Textbox(visible=False)],
            samples=[],
            layout="table",
            type="index",
            samples_per_page=PAGE_SIZE,
            show_label=False,
            elem_id="saved-list",
        )
        self.status = gr.Markdown("", elem_id="saved-status")
        with gr.Row(elem_id="saved-pager"):
            self.newer = gr.Button("‹ Newer", size="sm", interactive=False)
            self.older = gr.Button("Older ›", size="sm", interactive=False)
        self.delete_one = gr.Button("🗑️ Delete this conversation", size="sm", interactive=False)
        self.delete_all = gr.Button("Delete all my conversations", size="sm", variant="stop")
        self.open_id = gr.Textbox("", visible="hidden", show_label=False, elem_id="open-conversation")
        self.reopen_id = gr.Textbox("", visible="hidden", show_label=False, elem_id="reopen-conversation")
        self.reopen = gr.Button("Open it again", visible="hidden", elem_id="reopen-conversation-button")
        with gr.Row(visible=False, elem_id="delete-all-confirm") as self.confirm_row:
            self.confirm_text = gr.Markdown("")
            self.confirm = gr.Button("Yes, delete them all", size="sm", variant="stop")
            self.cancel = gr.Button("Cancel", size="sm")

    def wire(self, demo: gr.Blocks, chat: LiveTurnChatInterface, session: gr.State) -> None:
        hidden: dict[str, Any] = {"queue": False, "api_visibility": "private", "show_progress": "hidden"}
        listed = [self.listing, self.status, self.newer, self.older, self.page_state]
        shown = [chat.chatbot, chat.chatbot_state, chat.chatbot_value]  # the conversation, all at once

        demo.load(self._first_page, [self.page_state], listed, **hidden)
        chat.chatbot.change(self._same_page, [self.page_state, session], [*listed, self.open_id], **hidden)
        self.older.click(self._older, [self.page_state], listed, **hidden)
        self.newer.click(self._newer, [self.page_state], listed, **hidden)
        opened = [*shown, self.status, self.delete_one, self.open_id]
        self.listing.click(self._open, [self.listing, self.page_state, session], opened, **hidden)
        self.reopen.click(self._open_again, [self.reopen_id, session], opened, **hidden)
        self.new_chat.click(self._start_new, [session], [*shown, self.delete_one, self.open_id], **hidden)
        for copy in seams.chat_state_copies_after_turns(chat):
            seams.with_input(copy, session)
            seams.replace_function(copy, _unless_switched, postprocess=True)
        chat.chatbot.clear(self._forget, [session], [self.delete_one, self.open_id], **hidden)
        deleted = [*shown, self.delete_one, self.open_id, *listed]
        self.delete_one.click(self._delete_open, [session, self.page_state], deleted, **hidden)
        self.delete_all.click(self._ask_to_confirm, None, [self.confirm_row, self.confirm_text], **hidden)
        self.cancel.click(lambda: gr.Row(visible=False), None, [self.confirm_row], **hidden)
        self.confirm.click(
            self._delete_everything, [session, self.page_state], [self.confirm_row, *deleted], **hidden
        )

    async def _first_page(self, state: PanelPage, request: gr.Request) -> tuple:
        state.cursors = [None]
        return await self._show(state, request)

    async def _same_page(self, state: PanelPage, session: SessionConversation, request: gr.Request) -> tuple:
        """The listing again, and the open conversation's id (the chat changed: a turn may have saved it).
        A session this process does not know yet leaves the id as the page has it: the page's next
        question continues that conversation (see `chat_function`)."""
        return *await self._show(state, request), (session.saved_id or "") if session.known else gr.skip()

    async def _older(self, state: PanelPage, request: gr.Request) -> tuple:
        if state.next_cursor:
            state.cursors.append(state.next_cursor)
        return await self._show(state, request)

    async def _newer(self, state: PanelPage, request: gr.Request) -> tuple:
        if len(state.cursors) > 1:
            state.cursors.pop()
        return await self._show(state, request)

    async def _show(self, state: PanelPage, request: gr.Request) -> tuple:
        """The listing, status line, pager buttons and state for the page at `state.cursors[-1]`."""
        owner = owner_of(request)
        if owner is None:
            return _listing(state, None, NO_OWNER)
        try:
            page = await self.saved.call(lambda store: store.page(owner, state.cursors[-1], PAGE_SIZE))
        except StoreError:
            return _listing(state, None, UNAVAILABLE)
        if not page.conversations and len(state.cursors) > 1:  # the page emptied (deletes elsewhere)
            state.cursors = [None]
            return await self._show(state, request)
        return _listing(state, page, "" if page.conversations or len(state.cursors) > 1 else EMPTY)

    async def _open(
        self, index: int | None, state: PanelPage, session: SessionConversation, request: gr.Request
    ):
        if not isinstance(index, int) or not 0 <= index < len(state.ids):
            return *_SKIP_SHOWN, gr.skip(), gr.skip(), gr.skip()
        return await self._reopen(state.ids[index], session, request)

    async def _open_again(self, conversation_id: str, session: SessionConversation, request: gr.Request):
        """The conversation the page showed before it lost its server (its id, put back by the page)."""
        if not isinstance(conversation_id, str) or not WELL_FORMED_ID.fullmatch(conversation_id):
            return *_SKIP_SHOWN, gr.skip(), gr.skip(), ""
        return await self._reopen(conversation_id, session, request)

    async def _reopen(self, conversation_id: str, session: SessionConversation, request: gr.Request):
        owner = owner_of(request)
        if owner is None:
            return *_SKIP_SHOWN, gr.skip(), gr.skip(), gr.skip()
        try:
            shown = await self.saved.reopen(session, owner, conversation_id)
        except ConversationNotFound:
            return *_SKIP_SHOWN, "That conversation was deleted.", gr.skip(), session.saved_id or ""
        except StoreError:
            return *_SKIP_SHOWN, UNAVAILABLE, gr.skip(), gr.skip()
        return shown, shown, shown, "", gr.Button(interactive=True), conversation_id

    def _start_new(self, session: SessionConversation) -> tuple:
        session.start_new()
        return [], [], [], gr.Button(interactive=False), ""

    def _forget(self, session: SessionConversation) -> tuple:
        """The chat's own trash button: the next question starts a new saved conversation."""
        session.start_new()
        return gr.Button(interactive=False), ""

    async def _delete_open(self, session: SessionConversation, state: PanelPage, request: gr.Request):
        owner, doomed = owner_of(request), session.saved_id
        if owner is None or doomed is None:
            return *_SKIP_SHOWN, gr.skip(), gr.skip(), *await self._show(state, request)
        try:
            await self.saved.call(lambda store: store.delete(owner, doomed))
        except StoreError:
            return *_SKIP_SHOWN, gr.skip(), gr.skip(), *_listing(state, None, UNAVAILABLE)
        session.start_new()
        return [], [], [], gr.Button(interactive=False), "", *await self._show(state, request)

    async def _ask_to_confirm(self, request: gr.Request) -> tuple:
        owner = owner_of(request)
        try:
            count = await self.saved.call(lambda store: store.count(owner)) if owner else 0
        except StoreError:
            return gr.Row(visible=True), UNAVAILABLE
        return gr.Row(visible=True), f"Delete all {count} of your saved conversations? This cannot be undone."

    async def _delete_everything(self, session: SessionConversation, state: PanelPage, request: gr.Request):
        owner = owner_of(request)
        hide = gr.Row(visible=False)
        if owner is None:
            return hide, *_SKIP_SHOWN, gr.skip(), gr.skip(), *await self._show(state, request)
        try:
            await self.saved.call(lambda store: store.delete_all(owner))
        except StoreError:
            return hide, *_SKIP_SHOWN, gr.skip(), gr.skip(), *_listing(state, None, UNAVAILABLE)
        session.start_new()
        state.cursors = [None]
        return hide, [], [], [], gr.Button(interactive=False), "", *await self._show(state, request)


def _unless_switched(copy: Callable[[Any], tuple]) -> Callable[[Any, SessionConversation], tuple]:
    """ChatInterface copies the page's chat into the session after each turn, in a call of its own:
    one sent before New chat (or an open, a clear) was answered can arrive after it, and would bring
    the old conversation back as the next question's history. Such a copy is dropped."""

    def unless_switched(shown: Any, session: SessionConversation) -> tuple:
        return (gr.skip(), gr.skip()) if session.switched_since_turn_start else copy(shown)

    return unless_switched


def _listing(state: PanelPage, page: Page | None, status: str) -> tuple:
    """The panel's outputs for `page` (None: show nothing but `status`)."""
    state.ids = [summary.id for summary in page.conversations] if page else []
    state.next_cursor = page.next_cursor if page else None
    samples = [[summary.title] for summary in page.conversations] if page else []
    return (
        gr.Dataset(samples=samples),
        status,
        gr.Button(interactive=len(state.cursors) > 1),
        gr.Button(interactive=state.next_cursor is not None),
        state,
    )
