"""The chat function Gradio streams: a question in, the turn's messages out as its events arrive.

One turn: the conversation (which arrives within the guard's limits: `ui.live_turn`
trims a session's, and a saved one reopened here is trimmed the same way), with the
answers this server did not produce left out of what the model receives, the request's own key
and model checked, the agent's events paced to display frames and folded into a
`TurnView`, until the turn ends or the session's Stop signal is set.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import gradio as gr
from langchain_core.language_models import BaseChatModel

from agent import (
    ARITHMETIC,
    ModelNotAllowed,
    ServerSettings,
    Settings,
    Toolbox,
    agent_turn,
    backend_label,
    refused_input,
)
from store import ConversationNotFound, StoreError
from ui.approval import SessionApprovals, ticking
from ui.history import to_langchain
from ui.lifecycle import CUT_SHORT, RESTARTING, SHUTDOWN_REASON, Lifecycle
from ui.owner import owner_of
from ui.pacing import UpdateBudget, paced
from ui.safety import PRODUCED, answer_text, trim_history
from ui.saved import (
    WELL_FORMED_ID,
    SavedConversations,
    SessionConversation,
    TurnConversation,
    conversation_note,
)
from ui.stopping import StopSignals, until_set
from ui.view import FOOTER_ID, TurnView

Messages = list[dict[str, Any]]


def chat_function(
    settings: Settings,
    budget: UpdateBudget,
    guard: ServerSettings,
    stop_signals: StopSignals,
    chat_model: BaseChatModel | None = None,
    toolbox: Toolbox = ARITHMETIC,
    approvals: SessionApprovals | None = None,
    saved: SavedConversations | None = None,
    lifecycle: Lifecycle | None = None,
) -> Callable[..., AsyncIterator[Messages]]:
    """The chat function for these server settings and tools; `chat_model` replaces the model they name.

    A call that needs approval waits for a decision sent to `approvals` from this session.
    With `saved`, each turn is appended to the visitor's saved conversation when it ends
    (finished, failed, stopped, or cut off by a closed tab).
    A `lifecycle` that is draining refuses new turns and cuts running ones past its grace.
    """
    approvals = approvals or SessionApprovals()
    lifecycle = lifecycle or Lifecycle()

    async def save(conversation: TurnConversation, request: gr.Request, page: Messages, turn: Messages):
        if saved is None:
            return []
        return await saved.save_turn(conversation, owner_of(request), page, turn)

    async def chat(
        message: str,
        history: Messages,
        model: str,
        api_key: str,
        conversation: SessionConversation,
        saved_conversation: str,
        request: gr.Request,
        open_conversation: str = "",
    ) -> AsyncIterator[Messages]:
        if not message.strip():
            return  # nothing to answer: no turn, no footer (the browser does not even send it)
        for_api = request.headers.get("x-gradio-user") == "api"  # gradio_client says so
        wanted = saved_conversation.strip()
        # An API client's session holds only the turns it asked in that session, so its turns
        # continue the saved conversation as the store holds it (named now or earlier): the
        # positions the next save writes at count from there. So does a page whose session this
        # process does not know (its own was restarted and the page kept the conversation it
        # shows, `open_conversation`, and sent none of it); in a session it knows, that id is never read.
        unknown = not (for_api or conversation.known or history)
        resumed = _resumed(open_conversation) if unknown else None
        conversation.known = True
        continued = wanted or (conversation.saved_id if for_api else resumed)
        notes: Messages = []
        if continued and saved is not None and (for_api or wanted != conversation.saved_id):
            try:
                reopened = await saved.reopen(conversation, owner_of(request), continued)
            except StoreError as error:
                if wanted:
                    yield _refused(backend_label(settings), _not_reopened(error))
                    return
                reopened = None  # its own conversation, out of reach now: the session's turns go on
            if reopened is not None:
                history, notes = trim_history(reopened, guard.max_chat_messages, guard.max_chat_chars)
        page = history  # what the page holds
        started_in = conversation.at_turn_start()  # a New chat pressed meanwhile does not move the turn
        question = {"role": "user", "content": message}
        try:
            request_settings = settings.for_request(api_key=api_key, model=model)
        except ModelNotAllowed as refusal:
            refused = _refused(backend_label(settings), str(refusal))
            yield [*notes, *refused, *await save(started_in, request, page, [question, *refused])]
            return
        view = TurnView(backend_label(request_settings))
        messages = TurnDicts(view)
        if lifecycle.draining:
            view.refuse(RESTARTING)
            refused = messages()
            yield [*notes, *refused, *await save(started_in, request, page, [question, *refused])]
            return
        session = request.session_hash or ""
        ended = False
        try:
            with (
                budget.stream(),
                stop_signals.watch(session) as stop,
                lifecycle.turn(stop),
                approvals.watch(session, request_settings.approval_timeout_s) as decisions,
            ):
                async with agent_turn(
                    message,
                    to_langchain(PRODUCED.vouched(history)),
                    request_settings,
                    chat_model,
                    conversation_id=conversation.value,
                    toolbox=toolbox,
                    approvals=decisions,
                    via="api" if for_api else "page",
                ) as turn:
                    batches = until_set(paced(turn, budget.frame_s), stop)
                    async for batch in ticking(batches, lambda: view.waiting_for_approval):
                        for event in batch:
                            view.apply(event)
                        yield [*notes, *messages()]
                    if stop.is_set():
                        decisions.end("stop")
                    if stop.is_set() and lifecycle.cutting:
                        turn.stop_reason = SHUTDOWN_REASON
                if stop.is_set():
                    view.stop(CUT_SHORT if lifecycle.cutting else None, turn.figures)
                    yield [*notes, *messages()]
            ended = True
            final = messages()
            for answer in filter(None, map(answer_text, final)):
                PRODUCED.record(answer)
            save_notes = await save(started_in, request, page, [question, *final])
            if for_api:
                save_notes = [*save_notes, *conversation_note(conversation)]
            if save_notes:
                yield [*notes, *_before_footer(final, save_notes)]
        finally:
            if not ended:  # cut off (a closed tab, a cancelled job): what it got so far is kept
                view.stop()
                await save(started_in, request, page, [question, *messages()])

    return chat


def backend_line(settings: Settings, model: str, api_key: str) -> str:
    """Which backend answers this session's questions, for the line above the chat."""
    try:
        label = backend_label(settings.for_request(api_key=api_key, model=model))
    except ModelNotAllowed:
        return f"Backend: **{model[:40]!r} is not available on the server's key**: pick one from the list"
    mine = " (your key, this session only)" if api_key.strip() else ""
    return f"Backend: **{label}**{mine}"


def _before_footer(messages: Messages, notes: Messages) -> Messages:
    """`messages` with `notes` added, before the footer if there is one: the footer stays last."""
    if messages and (messages[-1].get("metadata") or {}).get("id") == FOOTER_ID:
        return [*messages[:-1], *notes, messages[-1]]
    return [*messages, *notes]


def _resumed(open_conversation: object) -> str | None:
    """The page's open conversation's id, if it is one (the page sends it back as it got it)."""
    if isinstance(open_conversation, str) and WELL_FORMED_ID.fullmatch(open_conversation):
        return open_conversation
    return None


def _not_reopened(error: StoreError) -> str:
    if isinstance(error, ConversationNotFound):
        return "No saved conversation of yours has this id (it may have been deleted, or saved by another client)."
    return "The saved conversation could not be opened: the conversation store is unavailable right now."


def _refused(backend: str, message: str) -> Messages:
    """A turn that ends before it starts, shown like any failed turn."""
    view = TurnView(backend)
    view.apply(refused_input(message).failed())
    return TurnDicts(view)()


class TurnDicts:
    """A turn's messages as plain dicts, each time it is called: Gradio diffs dicts field by field, so
    on the API path too a growing answer travels as appended text instead of the whole message each time.

    A message the view left as it was (the same object: `TurnView.render`) keeps its dict, the
    same object too (what consumes them can skip it by identity); no dict is changed once made.
    Shallow (not `dataclasses.asdict`, whose deep copy of every message on every update showed in
    the server's CPU profile): the view builds a new message, metadata included, for a changed part."""

    def __init__(self, view: TurnView) -> None:
        self.view = view
        self._last: dict[int, tuple[gr.ChatMessage, dict[str, Any]]] = {}

    def __call__(self) -> Messages:
        last, self._last = self._last, {}
        dicts = []
        for message in self.view.render():
            kept = last.get(id(message))
            if kept is None or kept[0] is not message:
                kept = (message, _as_dict(message))
            self._last[id(message)] = kept
            dicts.append(kept[1])
        return dicts


def _as_dict(m: gr.ChatMessage) -> dict[str, Any]:
    return {"role": m.role, "content": m.content, "metadata": m.metadata, "options": m.options}
