"""The Gradio chat app: UI only. The engine is in `agent/`, the event → message view in `ui/`.

    python app.py [--host 0.0.0.0] [--port 7860] [--share] [--offline]

`demo` is module-level so that `gradio app.py` (reload mode) and Hugging Face
Spaces find it.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import secrets
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import gradio as gr
from langchain_core.language_models import BaseChatModel

from agent import ModelNotAllowed, Settings, agent_turn, backend_label, preload
from agent.events import Failed
from ui.chatbot import PreparedChatbot
from ui.guard import GuardSettings, guard_options, is_busy
from ui.history import to_langchain
from ui.live_turn import LIVE_TURN_CSS, LiveTurnChatInterface
from ui.pacing import UpdateBudget, paced
from ui.safety import trim_history
from ui.stopping import StopSignals, until_set
from ui.view import TurnView, mark_stopped

T = TypeVar("T")

TITLE = "🧮 Streaming tool-calling agent"
DESCRIPTION = (
    "Ask an arithmetic question and watch the agent work: each tool call appears as the model "
    "decides it, its arguments stream in, it flips to done with its result, and the answer types "
    "itself out."
)
EXAMPLES = [
    ["What is (2 + 3) * (4 + 5)?"],
    ["What is 1 + 2 + 3 + 4 + 5 + 6 + 7 + 8?"],
    ["2 to the power of 10, minus 24"],
    ["(1.5 + 2.5) * (10 - 4) / 3"],
    ["What is the square root of 144 plus 3 cubed?"],
]


def _env_number(name: str, default: float, minimum: float = 0) -> float:
    value = os.environ.get(name, "")
    try:
        number = float(value) if value else default
    except ValueError:
        number = None
    if number is None or number < minimum:
        raise SystemExit(
            f"{name} must be a number of at least {minimum:g}, got {value!r}: fix it or unset it."
        )
    return number


def _from_env(read: Callable[[], T]) -> T:
    """Settings read from the environment; a bad value stops the app with one line saying which and why."""
    try:
        return read()
    except ValueError as error:
        raise SystemExit(f"{error}: fix it in the environment or .env, or unset it.") from None


def _watch_only_project_code() -> None:
    """In reload mode (`gradio app.py`), watch agent/, ui/ and this file, not the whole directory.

    Gradio polls every .py file under the app's directory 20 times a second: with the README's
    `.venv` inside, that idles at most of a core. It watches directories only, so this file is
    watched through a symlink in a directory of its own (under `.gradio/`, which git ignores).
    """
    from gradio import http_server

    root = Path(__file__).resolve().parent
    watched = http_server.GRADIO_WATCH_DIRS
    if not any(Path(directory).resolve() == root for directory in watched):
        return
    this_file = root / ".gradio" / "watch" / "app.py"
    this_file.parent.mkdir(parents=True, exist_ok=True)
    this_file.unlink(missing_ok=True)
    this_file.symlink_to(root / "app.py")
    watched[:] = [str(root / "agent"), str(root / "ui"), str(this_file.parent)]
    print("Reload mode: watching agent/, ui/ and app.py", flush=True)


class ConversationId:
    """A random id for one session's conversation, so that a tracer can group its turns.

    Gradio gives each session a deep copy of a `gr.State`'s initial value, and a
    copy of this is a fresh id: every browser tab and API client gets its own,
    with no load event. Never Gradio's session hash, which is a bearer secret.
    """

    def __init__(self) -> None:
        self.value = secrets.token_hex(8)

    def __deepcopy__(self, memo: dict[int, Any]) -> ConversationId:
        return ConversationId()


def create_app(
    settings: Settings,
    budget: UpdateBudget | None = None,
    concurrency: int = 200,
    chat_model: BaseChatModel | None = None,
    guard: GuardSettings | None = None,
) -> gr.Blocks:
    """The chat UI for these server settings; each request may bring its own key and model.

    `chat_model` replaces the model the settings name (benchmarks serve scripted ones).
    """
    budget = budget or UpdateBudget()
    guard = guard or GuardSettings()
    preload(settings)

    async def chat(
        message: str,
        history: list[dict[str, Any]],
        model: str,
        api_key: str,
        conversation: ConversationId,
        request: gr.Request,
    ) -> AsyncIterator[list[dict[str, Any]]]:
        if not message.strip():
            return  # nothing to answer: no turn, no footer (the browser does not even send it)
        mark_stopped(history)
        notes = trim_history(history, guard.max_chat_messages, guard.max_chat_chars)
        try:
            request_settings = settings.for_request(api_key=api_key, model=model)
        except ModelNotAllowed as refusal:
            yield [*notes, *_refused(backend_label(settings), str(refusal))]
            return
        view = TurnView(backend_label(request_settings))
        with budget.stream(), stop_signals.watch(request.session_hash or "") as stop:
            async with agent_turn(
                message,
                to_langchain(history),
                request_settings,
                chat_model,
                conversation_id=conversation.value,
            ) as turn:
                async for batch in until_set(paced(turn, budget.frame_s), stop):
                    for event in batch:
                        view.apply(event)
                    yield [*notes, *_as_dicts(view)]
            if stop.is_set():
                view.stop()
                yield [*notes, *_as_dicts(view)]

    def refuse_when_busy(request: gr.Request) -> str | None:
        """A question typed while this client has its share running is refused by the textbox,
        which keeps the text (the guard would refuse it too, less gently)."""
        return guard.busy_message() if is_busy(demo, request, guard) else None

    def backend_line(model: str, api_key: str) -> str:
        try:
            label = backend_label(settings.for_request(api_key=api_key, model=model))
        except ModelNotAllowed:
            return f"Backend: **{model[:40]!r} is not available on the server's key**: pick one from the list"
        mine = " (your key, this session only)" if api_key.strip() else ""
        return f"Backend: **{label}**{mine}"

    stop_signals = StopSignals()
    with gr.Blocks(title=TITLE, fill_height=True, delete_cache=(3600, 3600)) as demo:
        gr.Markdown(f"<h1 style='text-align: center'>{TITLE}</h1>", elem_id="app-title")
        gr.Markdown(DESCRIPTION, elem_id="app-description")
        with gr.Row(elem_id="backend-row", equal_height=True):
            backend = gr.Markdown(backend_line(settings.model, ""), elem_id="backend-line")
            key_button = gr.Button(
                "🔑 Use your own OpenAI key", size="sm", scale=0, visible=settings.api_key is None
            )
        with gr.Accordion(KEY_PANEL, open=False, elem_id="key-panel") as key_panel:
            model_box = gr.Dropdown(
                choices=list(settings.models),
                value=settings.model,
                label="Model",
                allow_custom_value=True,
                info="On the server's key: one of these. With your own key below: any model name (you pay).",
            )
            key_box = gr.Textbox(
                value="",
                type="password",
                label="Your OpenAI API key (optional)",
                info="Used for your requests only; never stored or logged.",
            )
        chat_interface = LiveTurnChatInterface(
            chat,
            max_messages=guard.max_chat_messages,
            chatbot=PreparedChatbot(
                label="Agent", scale=1, buttons=["copy", "copy_all"], editable="user", elem_id="agent-chat"
            ),
            additional_inputs=[model_box, key_box, gr.State(ConversationId())],
            examples=EXAMPLES,
            api_name="chat",
            refuse=refuse_when_busy,
            concurrency_limit=concurrency,
            save_history=True,
            fill_height=True,
        )
        chat_interface.new_chat_button.parent.elem_classes = ["chat-history"]
        chat_interface.textbox.elem_id = "chat-input"
        gr.on(
            [model_box.change, key_box.change],
            backend_line,
            [model_box, key_box],
            backend,
            queue=False,
            api_visibility="private",
        )
        key_button.click(
            lambda: gr.Accordion(open=True), None, key_panel, queue=False, api_visibility="private"
        )
        _stop_by_signal(demo, chat_interface, stop_signals)
        _rerun_edits_stoppably(chat_interface, concurrency)
    # api_open=False: the direct `/gradio_api/run/...` routes would run a turn outside the queue
    # (outside the concurrency limit and the per-client limit); Gradio opens them except on Spaces.
    demo.queue(default_concurrency_limit=concurrency, api_open=False)
    return demo


def _refused(backend: str, message: str) -> list[dict[str, Any]]:
    """A turn that ends before it starts, shown like any failed turn."""
    view = TurnView(backend)
    view.apply(Failed("input", message))
    return _as_dicts(view)


KEY_PANEL = "🔑 Model and API key"
CSS = """
#app-title h1 { margin: 0.25rem 0; }
#backend-row { align-items: center; flex-wrap: nowrap; gap: 0.75rem; }
#backend-row > .block { flex: 1 1 auto; }
#backend-row > button { flex: 0 0 auto; }
/* The Chatbot's label and its copy/trash buttons float over its top edge: start the messages below them. */
#agent-chat > .wrapper { padding-top: 1.9rem; box-sizing: border-box; }
@media (max-width: 720px) {
  #app-description { display: none; }
  #app-title h1 { font-size: 1.25rem !important; }
  #backend-row { flex-wrap: wrap; gap: 0.25rem; font-size: 0.85rem; }
  /* Chat first on a phone: the saved conversations go below it, not above. */
  .row:has(> .chat-history) { flex-direction: column-reverse; flex-wrap: nowrap; }
  .chat-history { flex: 0 0 auto !important; min-width: 0 !important; }
  .row:has(> .chat-history) > .column:not(.chat-history) { height: 72dvh; flex: 0 0 auto !important; }
}
"""


IGNORE_BLANK_JS = """
// Enter (or the send button) in an empty message box does nothing: no bubble, no turn, no saved chat.
// Checked in the page, before Gradio sees the event; the chat function ignores blank input too.
const ignoreBlank = (event) => {
  const box = document.querySelector("#chat-input textarea");
  if (!box || box.value.trim()) return;
  const enter = event.type === "keydown" && event.key === "Enter" && !event.shiftKey && event.target === box;
  const send = event.type === "click" && event.target.closest("#chat-input .submit-button");
  if (enter || send) {
    event.preventDefault();
    event.stopImmediatePropagation();
  }
};
document.addEventListener("keydown", ignoreBlank, true);
document.addEventListener("click", ignoreBlank, true);
"""


def serve_options(demo: gr.Blocks, guard: GuardSettings) -> dict[str, Any]:
    """What `demo.launch()` needs besides the address: the guard's protections, and the page's
    CSS and script (Gradio 6 takes them at launch; a `<script>` in the head runs under the
    Content-Security-Policy, where a component's `js_on_load`, compiled with `new Function`, would not)."""
    return {
        **guard_options(demo, guard),
        "css": CSS + LIVE_TURN_CSS,
        "head": f"<script>{IGNORE_BLANK_JS}</script>",
    }


def _as_dicts(view: TurnView) -> list[dict[str, Any]]:
    """The turn's messages as plain dicts: Gradio diffs dicts field by field, so on the API path
    too a growing answer travels as appended text instead of the whole message each time."""
    return [dataclasses.asdict(message) for message in view.render()]


def _stop_by_signal(demo: gr.Blocks, chat: gr.ChatInterface, signals: StopSignals) -> None:
    """Stop tells the running turn to end itself (see `ui.stopping`) instead of cancelling it."""
    textbox = chat.textbox
    for fn_id, fn in list(demo.fns.items()):
        if fn.is_cancel_function and (textbox._id, "stop") in fn.targets:
            del demo.fns[fn_id]

    def stop(request: gr.Request) -> None:
        signals.stop(request.session_hash or "")

    textbox.stop(stop, None, None, queue=False, api_visibility="private")


def _rerun_edits_stoppably(chat: gr.ChatInterface, concurrency: int) -> None:
    """Editing a question reruns the conversation from there, like ChatInterface(editable=True),
    but with the Stop button shown and the saved conversation's title following the edit."""
    run_turn = chat._api_wrapper(chat.fn, chat._stream_fn)
    hidden: dict[str, Any] = {"queue": False, "api_visibility": "private"}
    chat.chatbot.edit(
        chat._edit_message, [chat.chatbot], [chat.chatbot, chat.chatbot_state, chat.saved_input], **hidden
    ).then(
        chat._append_message_to_history, [chat.saved_input, chat.chatbot_state], [chat.chatbot], **hidden
    ).then(
        lambda: gr.Textbox(interactive=False, submit_btn=False, stop_btn=True), None, chat.textbox, **hidden
    ).then(
        run_turn,
        [chat.saved_input, chat.chatbot_state, *chat.additional_inputs],
        [chat.null_component, chat.chatbot, *chat.additional_outputs],
        concurrency_limit=concurrency,
        api_visibility="private",
    ).then(
        lambda history: (history, history), [chat.chatbot], [chat.chatbot_state, chat.chatbot_value], **hidden
    ).then(
        lambda: gr.Textbox(interactive=True, submit_btn=True, stop_btn=False), None, chat.textbox, **hidden
    ).then(
        chat._save_conversation,
        [chat.conversation_id, chat.chatbot_state, chat.saved_conversations],
        [chat.conversation_id, chat.saved_conversations],
        **hidden,
    ).then(chat._load_chat_history, [chat.saved_conversations], [chat.chat_history_dataset], **hidden)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Streaming tool-calling agent with a Gradio chat UI.")
    parser.add_argument("--host", help="address to bind (default: GRADIO_SERVER_NAME or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default: GRADIO_SERVER_PORT or 7860)")
    parser.add_argument("--share", action="store_true", default=None, help="create a public Gradio link")
    parser.add_argument(
        "--offline", action="store_true", help="use the offline arithmetic model even if a key is set"
    )
    return parser.parse_args(argv)


_watch_only_project_code()
CONCURRENCY = int(_env_number("AGENT_CONCURRENCY", 200, minimum=1))
MAX_SESSIONS = int(_env_number("AGENT_MAX_SESSIONS", 2000, minimum=1))
BUDGET = UpdateBudget(
    min_frame_s=_env_number("AGENT_UI_FRAME_MS", 40) / 1000,
    updates_per_s=_env_number("AGENT_UI_UPDATES_PER_S", 650),
)
GUARD = _from_env(GuardSettings.from_env)
demo = create_app(_from_env(Settings.from_env), BUDGET, CONCURRENCY, guard=GUARD)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("agent").setLevel(logging.INFO)  # one line per turn, for operators
    app = demo
    if args.offline:
        os.environ["AGENT_OFFLINE"] = "1"  # also holds when `gradio app.py` reloads the module
        app = create_app(_from_env(Settings.from_env), BUDGET, CONCURRENCY, guard=GUARD)
    share = _share_requested(args.share)
    try:
        app.launch(
            **serve_options(app, GUARD),
            server_name=args.host,
            server_port=args.port,
            share=share,
            max_threads=max(40, CONCURRENCY),
            state_session_capacity=MAX_SESSIONS,
            prevent_thread_lock=True,
            quiet=True,  # Gradio's hints name `launch()` arguments; ours name this app's flags
        )
    except OSError:  # Gradio's "Cannot find empty port in range", with a traceback
        raise SystemExit(_port_problem(args.host, args.port)) from None
    if app.local_url is None:  # reload mode's watcher runs this file again; the server already runs
        return
    print(f"* Running on local URL:  {app.protocol}://{app.server_name}:{app.server_port}", flush=True)
    if not share:
        print("* For a public link, start it with --share (it needs internet access).", flush=True)
    elif not app.share_url:
        print(
            "No public link: Gradio could not open its share tunnel (it downloads a tunnel binary and "
            f"connects to Gradio's share server, which needs internet access). Still serving at {app.local_url}",
            flush=True,
        )
    app.block_thread()


def _port_problem(host: str | None, port: int | None) -> str:
    port = port or int(os.environ.get("GRADIO_SERVER_PORT") or 7860)
    host = host or os.environ.get("GRADIO_SERVER_NAME") or "127.0.0.1"
    return (
        f"Cannot serve on {host}:{port}: the port is in use (or {host} is not an address of this machine). "
        f"Stop what uses it, or choose another port: python app.py --port {port + 1}"
    )


def _share_requested(flag: bool | None) -> bool:
    """--share, else GRADIO_SHARE; never on Hugging Face Spaces, which serves the app itself."""
    if os.environ.get("SPACE_ID"):
        return False
    if flag is not None:
        return flag
    return os.environ.get("GRADIO_SHARE", "").lower() in ("1", "true", "yes")


if __name__ == "__main__":
    main()
