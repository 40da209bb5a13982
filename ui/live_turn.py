"""A ChatInterface whose streamed turn costs the same whatever the conversation's length.

Gradio's `ChatInterface` streams a turn by handing its Chatbot the whole
conversation on every update: each update post-processes every earlier message
again, and the first update of a turn carries the whole history to the browser. Here the turn streams into a second, small Chatbot
under the conversation (the live turn); the conversation's Chatbot (a
`PreparedChatbot`) is left as it is (`UNCHANGED`) until the turn ends, and then
receives the finished turn once. The turn's last update leaves both Chatbots
alone again, so that the closing message, which repeats every output's last
value, stays small too.

Everything else is ChatInterface's own: retry, undo and examples (saved
conversations are the app's own: `ui.saved`). With an editable Chatbot, editing a question reruns the conversation
from there, with the Stop button shown. Stop does not cancel the turn (see
`ui.stopping`): the turn ends itself with a stopped mark, so it joins the
conversation like any finished turn. The `/chat` API keeps its shape: the live
turn is not one of its outputs.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import aclosing
from typing import Any, Protocol

import gradio as gr
from gradio.data_classes import GradioRootModel

from agent import newest_within
from ui import gradio_seams as seams
from ui.chatbot import UNCHANGED, PreparedChatbot
from ui.safety import trim_history

Messages = list[dict[str, Any]]
LIVE_TURN_CSS = "#live-turn:has(.placeholder-content) { display: none; }"
"""The live turn shows only while it has messages. Hidden by the page, not by a `visible`
update: Gradio answers each such update by building a new Chatbot and its whole config."""


class TurnPanel(Protocol):
    """Components under the live turn that the turn fills as it streams (e.g. Approve / Deny)."""

    @property
    def outputs(self) -> Sequence[gr.components.Component]: ...

    def render(self) -> None: ...

    def values(self, turn: Messages) -> tuple[Any, ...]:
        """The outputs' values for the turn's messages so far (`[]` once it has ended)."""
        ...


class LiveTurnChatInterface(gr.ChatInterface):
    """`gr.ChatInterface` for an async generator `fn` that yields the turn's messages.

    The conversation keeps its newest `max_messages` messages, whole turns only, and
    within `max_chars` (older messages trimmed to a title by `ui.safety.trim_history`, the
    turn that trims them starting with a note saying so): what the page holds, sends and
    receives back on each turn, and what a session keeps, stays bounded. This is where a
    session's conversation enters a turn: `fn` gets it bounded, as a list of its own.

    `refuse(request)` gives a reason to refuse a new question (or None), checked as the
    textbox sends it: the question stays in the textbox and the reason is shown. Unlike
    ChatInterface's `validator`, it does not put the textbox's event in the queue (a join,
    an event stream and a round trip per question, which add up under a burst).

    `panel` sits under the live turn and follows it (page only: the `/chat` API keeps its shape).
    `page_inputs` follow `additional_inputs` on the page's turns only (`fn` must give them defaults).
    """

    def __init__(
        self,
        fn: Callable[..., AsyncIterator[Messages]],
        *,
        chatbot: PreparedChatbot,
        max_messages: int,
        max_chars: int,
        refuse: Callable[[gr.Request], str | None] | None = None,
        panel: TurnPanel | None = None,
        page_inputs: Sequence[gr.components.Component] = (),
        **kwargs: Any,
    ):
        if not isinstance(chatbot, PreparedChatbot):
            raise TypeError("LiveTurnChatInterface needs a PreparedChatbot: it alone understands UNCHANGED")
        self.max_messages = max_messages
        self.max_chars = max_chars
        self.refuse = refuse
        self.panel = panel
        seams.mark_absent_matplotlib_absent()
        seams.build_session_configs_on_demand()
        self.live = PreparedChatbot.for_live_turn(
            show_label=False,
            height="auto",
            max_height=400,
            buttons=[],
            render=False,
            elem_id="live-turn",
        )
        self.page_outputs = [self.live, *(panel.outputs if panel else ())]
        self.page_inputs = list(page_inputs)
        kwargs["additional_inputs"] = [*kwargs.get("additional_inputs", []), *self.page_inputs]
        super().__init__(fn, chatbot=chatbot, additional_outputs=self.page_outputs, **kwargs)

    def _render_chatbot_area(self, *args: Any) -> None:
        """ChatInterface's chat area, with the live turn right under the conversation (and its panel)."""
        super()._render_chatbot_area(*args)
        below = [self.live]
        self.live.render()
        if self.panel is not None:
            self.panel.render()
            below.append(self.chatbot.parent.children[-1])
        siblings = self.chatbot.parent.children
        for block in below:
            siblings.remove(block)
        at = siblings.index(self.chatbot) + 1
        siblings[at:at] = below

    def _setup_events(self) -> None:
        super()._setup_events()
        self._drop_browser_saving()
        self._keep_api_shape()
        self._prepare_outputs_here()
        self._stop_when_refused()
        self._update_the_textbox_unqueued()
        if self.chatbot.editable:
            self._rerun_edits_stoppably()

    def _drop_browser_saving(self) -> None:
        """The server saves each turn (`ui.saved`): ChatInterface's own step after each turn, which
        would save the conversation in the browser (a no-op with `save_history` off, still one call
        a turn), goes, and so does its delete after the chat's clear."""
        seams.drop_steps(self._save_conversation)
        seams.drop_steps(self._delete_conversation)

    async def _clear_and_save_textbox(self, message: str, request: gr.Request) -> tuple[dict[str, Any], str]:
        """ChatInterface's first step of a question, after `refuse` had its say. ChatInterface returns
        a new Textbox, which Gradio turns into this very update (building a second Textbox from it):
        the update itself spares the first. A coroutine, so Gradio runs it on the loop, not in a
        worker thread (it does no I/O)."""
        if self.refuse is not None and (reason := self.refuse(request)):
            raise _refusal(reason)
        return gr.update(value="", interactive=False, placeholder=""), message

    def _update_the_textbox_unqueued(self) -> None:
        """ChatInterface's step that gives the textbox back after a turn (and those around a
        retry) is a queued event: a join and an event stream of its own for every question, and
        a wait behind the turns in the queue before the textbox comes back. It only returns an
        update, like ChatInterface's unqueued steps around it: it runs unqueued too."""
        for dependency in seams.queued_updates_of(self.textbox):
            seams.run_unqueued(dependency)

    def _stop_when_refused(self) -> None:
        """What follows the textbox's first step runs only if that step succeeded (was not refused)."""
        seams.run_followups_only_on_success(seams.triggered_by(self.textbox, "submit"))

    def _keep_api_shape(self) -> None:
        """The `/chat` endpoint streams the turn only: drop the live turn from its outputs, and
        the page's own inputs from its inputs."""
        api = seams.triggered_by(self.fake_api_btn, "click")
        for block in self.page_outputs:
            seams.without_output(api, block)
        for block in self.page_inputs:
            seams.without_input(api, block)
        seams.replace_function(api, _without_page_outputs, postprocess=False)

    def _prepare_outputs_here(self) -> None:
        """The page's turns post-process their outputs here, on the event loop.

        Gradio post-processes every output of every update in a worker thread (a thread
        hop per update), `UNCHANGED` included. What a turn yields is small (the turn, or the
        conversation once, which `PreparedChatbot` makes cheap), so it is prepared right
        here and Gradio is told not to post-process it.
        """
        for dependency in seams.chat_interface_turns(self.live):
            seams.replace_function(dependency, self._prepared_outputs, postprocess=False)

    def _prepared_outputs(
        self, stream: Callable[..., AsyncIterator[tuple]]
    ) -> Callable[..., AsyncIterator[tuple]]:
        @functools.wraps(stream)
        async def prepared(*args: Any) -> AsyncIterator[tuple]:
            postprocessing = [_postprocessing(block) for block in self.page_outputs]
            async for _response, history, *page in stream(*args):
                # The response goes to ChatInterface's discard State, which Gradio would store
                # (building that State's whole config) on every update: skip it instead.
                yield (
                    gr.skip(),
                    await _postprocessed_off_the_loop(self.chatbot, history),
                    *(postprocess(value) for postprocess, value in zip(postprocessing, page, strict=True)),
                )

        return prepared

    def _rerun_edits_stoppably(self) -> None:
        """Editing a question reruns the conversation from there, like ChatInterface(editable=True),
        but with the Stop button shown."""
        run_turn = self._prepared_outputs(self._api_wrapper(self.fn, self._stream_fn))
        hidden: dict[str, Any] = {"queue": False, "api_visibility": "private"}
        self.chatbot.edit(
            self._edit_message, [self.chatbot], [self.chatbot, self.chatbot_state, self.saved_input], **hidden
        ).then(
            self._append_message_to_history, [self.saved_input, self.chatbot_state], [self.chatbot], **hidden
        ).then(
            lambda: gr.Textbox(interactive=False, submit_btn=False, stop_btn=True),
            None,
            self.textbox,
            **hidden,
        ).then(
            run_turn,
            [self.saved_input, self.chatbot_state, *self.additional_inputs],
            [self.null_component, self.chatbot, *self.additional_outputs],
            concurrency_limit=self.concurrency_limit,
            api_visibility="private",
            postprocess=False,
        ).then(
            lambda history: (history, history),
            [self.chatbot],
            [self.chatbot_state, self.chatbot_value],
            **hidden,
        ).then(
            lambda: gr.Textbox(interactive=True, submit_btn=True, stop_btn=False),
            None,
            self.textbox,
            **hidden,
        )

    async def _stream_fn(self, message: str, history: Messages, *args: Any) -> AsyncIterator[tuple]:
        history, notes = trim_history(
            newest_turns(history, self.max_messages), self.max_messages, self.max_chars
        )
        turn = self.fn(message, list(history), *args)
        history = self._append_message_to_history(message, history, "user")
        response: Messages = []
        answered = False
        async with aclosing(turn):
            async for response in turn:
                if notes:
                    response = [*notes, *response]
                yield response, UNCHANGED, response, *self._panel_values(response)
                answered = True
        if not answered:  # nothing to answer (a blank message): no turn, as in ChatInterface
            yield None, UNCHANGED, gr.skip(), *(gr.skip() for _ in self._panel_values([]))
            return
        history = self._append_message_to_history(response, history, "assistant")
        yield response, newest_turns(history, self.max_messages), [], *self._panel_values([])
        yield response, UNCHANGED, [], *self._panel_values([])

    def _panel_values(self, turn: Messages) -> tuple[Any, ...]:
        return () if self.panel is None else self.panel.values(turn)


def newest_turns(history: Messages, limit: int) -> Messages:
    """The newest messages of `history`, at most `limit` (the engine's rule, `newest_within`),
    starting with a question."""
    if len(history) <= limit:
        return history
    kept = newest_within(reversed(history), lambda _message: 0, max_messages=limit)
    start = next((i for i, message in enumerate(kept) if message.get("role") == "user"), len(kept))
    return kept[start:]


def _postprocessed(block: gr.components.Component, value: Any) -> Any:
    """`value` as Gradio would post-process it for `block`; `UNCHANGED` and `gr.skip()` as they are."""
    return _as_sent(block.postprocess, value)


def _postprocessing(block: gr.components.Component) -> Callable[[Any], Any]:
    """`_postprocessed` for the values one stream yields to `block`, in turn: a Chatbot's messages
    that did not change are not processed again (`PreparedChatbot.postprocessing`), nor is a
    text that did not change."""
    if isinstance(block, PreparedChatbot):
        chatbot = block.postprocessing()
        return lambda value: _as_sent(chatbot, value)
    last: list[Any] = [None, None]  # the last text and what it was processed into

    def postprocess(value: Any) -> Any:
        if isinstance(value, str) and value == last[0]:
            return last[1]
        processed = _postprocessed(block, value)
        last[:] = (value, processed) if isinstance(value, str) else (None, None)
        return processed

    return postprocess


def _as_sent(postprocess: Callable[[Any], Any], value: Any) -> Any:
    if value is UNCHANGED or (isinstance(value, dict) and value.get("__type__") == "update"):
        return value
    processed = postprocess(value)
    return processed.model_dump() if isinstance(processed, GradioRootModel) else processed


async def _postprocessed_off_the_loop(chatbot: gr.Chatbot, value: Any) -> Any:
    """`_postprocessed`, in a worker thread when there is work: the finished turn's Markdown is
    rendered as it joins the conversation (a long answer takes tens of milliseconds)."""
    if value is UNCHANGED:
        return value
    return await asyncio.to_thread(_postprocessed, chatbot, value)


def _without_page_outputs(stream: Callable[..., AsyncIterator[tuple]]) -> Callable[..., AsyncIterator[tuple]]:
    """The `/chat` endpoint's function: the turn and the conversation, not the live turn or its panel."""

    @functools.wraps(stream)
    async def without_page_outputs(*args: Any) -> AsyncIterator[tuple]:
        async for response, history, *_page in stream(*args):
            yield response, gr.skip() if history is UNCHANGED else history

    return without_page_outputs


def _refusal(reason: str) -> gr.Error:
    """An error the page shows under the textbox, as it shows a validator's verdict: its
    message is the list of per-input verdicts a validator sends (the page does the same
    with that list whether the event was queued or not)."""
    verdicts = [{"is_valid": False, "message": reason}]
    return gr.Error(verdicts, print_exception=False)  # type: ignore[arg-type]
