"""The Gradio chat app: UI only. The engine is in `agent/`, the event → message view in `ui/`.

    python app.py [--host 0.0.0.0] [--port 7860] [--share] [--offline]

`demo` is module-level so that `gradio app.py` (reload mode) and Hugging Face
Spaces find it.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import AsyncIterator, Sequence
from typing import Any

import gradio as gr
from langchain_core.language_models import BaseChatModel

from agent import Settings, agent_turn, backend_label, preload
from ui.chatbot import PreparedChatbot
from ui.history import to_langchain
from ui.live_turn import LiveTurnChatInterface
from ui.pacing import UpdateBudget, paced
from ui.view import TurnView, mark_stopped

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


def _env_number(name: str, default: float) -> float:
    value = os.environ.get(name, "")
    try:
        return float(value) if value else default
    except ValueError:
        raise SystemExit(f"{name} must be a number, got {value!r}") from None


def create_app(
    settings: Settings,
    budget: UpdateBudget | None = None,
    concurrency: int = 200,
    chat_model: BaseChatModel | None = None,
) -> gr.Blocks:
    """The chat UI for these server settings; each request may bring its own key and model.

    `chat_model` replaces the model the settings name (benchmarks serve scripted ones).
    """
    budget = budget or UpdateBudget()
    preload(settings)

    async def chat(
        message: str, history: list[dict[str, Any]], model: str, api_key: str
    ) -> AsyncIterator[list[dict[str, Any]]]:
        mark_stopped(history)
        request_settings = settings.for_request(api_key=api_key, model=model)
        view = TurnView(backend_label(request_settings))
        with budget.stream():
            async with agent_turn(message, to_langchain(history), request_settings, chat_model) as turn:
                async for batch in paced(turn, budget.frame_s):
                    for event in batch:
                        view.apply(event)
                    # Sent as plain dicts: Gradio diffs dicts field by field, so on the API path too a
                    # growing answer travels as appended text instead of the whole message each time.
                    yield [dataclasses.asdict(chat_message) for chat_message in view.render()]

    def backend_line(model: str, api_key: str) -> str:
        label = backend_label(settings.for_request(api_key=api_key, model=model))
        mine = " (your key, this session only)" if api_key.strip() else ""
        return f"Backend: **{label}**{mine}"

    model_box = gr.Textbox(value=settings.model, label="Model", render=False)
    key_box = gr.Textbox(
        value="",
        type="password",
        label="Your OpenAI API key (optional)",
        render=False,
        info="Used for your requests only; never stored or logged.",
    )
    with gr.Blocks(title=TITLE, fill_height=True) as demo:
        gr.Markdown(f"<h1 style='text-align: center'>{TITLE}</h1>\n\n{DESCRIPTION}")
        backend = gr.Markdown(backend_line(settings.model, ""))
        LiveTurnChatInterface(
            chat,
            mark_stopped=mark_stopped,
            chatbot=PreparedChatbot(label="Agent", scale=1, buttons=["copy", "copy_all"]),
            additional_inputs=[model_box, key_box],
            additional_inputs_accordion=gr.Accordion("⚙️ Settings", open=False, render=False),
            examples=EXAMPLES,
            api_name="chat",
            concurrency_limit=concurrency,
            save_history=True,
            editable=True,
            fill_height=True,
        )
        gr.on(
            [model_box.change, key_box.change],
            backend_line,
            [model_box, key_box],
            backend,
            queue=False,
            api_visibility="private",
        )
    demo.queue(default_concurrency_limit=concurrency)
    return demo


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Streaming tool-calling agent with a Gradio chat UI.")
    parser.add_argument("--host", help="address to bind (default: GRADIO_SERVER_NAME or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default: GRADIO_SERVER_PORT or 7860)")
    parser.add_argument("--share", action="store_true", default=None, help="create a public Gradio link")
    parser.add_argument(
        "--offline", action="store_true", help="use the offline arithmetic model even if a key is set"
    )
    return parser.parse_args(argv)


CONCURRENCY = int(_env_number("AGENT_CONCURRENCY", 200))
MAX_SESSIONS = int(_env_number("AGENT_MAX_SESSIONS", 2000))
BUDGET = UpdateBudget(
    min_frame_s=_env_number("AGENT_UI_FRAME_MS", 40) / 1000,
    updates_per_s=_env_number("AGENT_UI_UPDATES_PER_S", 650),
)
demo = create_app(Settings.from_env(), BUDGET, CONCURRENCY)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    app = demo
    if args.offline:
        os.environ["AGENT_OFFLINE"] = "1"  # also holds when `gradio app.py` reloads the module
        app = create_app(Settings.from_env(), BUDGET, CONCURRENCY)
    share = _share_requested(args.share)
    app.launch(
        server_name=args.host,
        server_port=args.port,
        share=share,
        max_threads=max(40, CONCURRENCY),
        state_session_capacity=MAX_SESSIONS,
        prevent_thread_lock=True,
    )
    if share and not app.share_url:
        print(
            "No public link: Gradio could not open its share tunnel (it downloads a tunnel binary and "
            f"connects to Gradio's share server, which needs internet access). Still serving at {app.local_url}",
            flush=True,
        )
    app.block_thread()


def _share_requested(flag: bool | None) -> bool:
    """--share, else GRADIO_SHARE; never on Hugging Face Spaces, which serves the app itself."""
    if os.environ.get("SPACE_ID"):
        return False
    if flag is not None:
        return flag
    return os.environ.get("GRADIO_SHARE", "").lower() in ("1", "true", "yes")


if __name__ == "__main__":
    main()
