"""The baseline a user would write: a bare `gr.ChatInterface` that yields once per token.

    python -m bench.bare_chat --port 7861 [--token-ms 30] [--yield-every 1]

It streams the same token sequence as the agent's offline model for the
benchmark question, at the same pace (the model's `TokenPace`, as from a remote
model), with concurrency raised like ours, so that the only difference is what
each design yields. `--yield-every K` yields after every K-th token only (and
after the last), for `bench.update_cost`.
"""

from __future__ import annotations

import argparse
import asyncio

import gradio as gr

from agent import Settings, run_agent
from agent.events import AnswerDelta, ToolArgsDelta
from agent.offline.model import TokenPace

QUESTION = "What is (2 + 3) * (4 + 5)?"


async def agent_tokens(question: str) -> list[str]:
    """Every streamed piece (tool arguments and answer) of the offline agent's turn."""
    events = [e async for e in run_agent(question, [], Settings(offline_token_delay_ms=0))]
    return [e.text for e in events if isinstance(e, AnswerDelta | ToolArgsDelta)]


def create_app(tokens: list[str], token_ms: float, concurrency: int, yield_every: int = 1) -> gr.Blocks:
    async def chat(message: str, history: list[dict]):
        text, pace = "", TokenPace(token_ms)
        for position, token in enumerate(tokens):
            if (wait_s := pace.wait_s(position)) > 0:
                await asyncio.sleep(wait_s)
            text += token
            if (position + 1) % yield_every == 0 or position == len(tokens) - 1:
                yield text

    demo = gr.ChatInterface(chat, api_name="chat", concurrency_limit=concurrency)
    demo.queue(default_concurrency_limit=concurrency)
    return demo


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token-ms", type=float, default=30)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--yield-every", type=int, default=1)
    args = parser.parse_args()
    tokens = asyncio.run(agent_tokens(QUESTION))
    create_app(tokens, args.token_ms, args.concurrency, args.yield_every).launch(
        server_port=args.port, max_threads=args.concurrency
    )
