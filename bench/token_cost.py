"""Cost per streamed answer token, for short and long answers: linear, not quadratic.

    python -m bench.token_cost [--lengths 400,4000]

The app is served as its own process with a scripted model that answers through
`final_answer` with an answer of N tokens, as fast as it can and at a model-like pace
(each update then re-renders a longer answer: the test of quadratic work). For each
length the benchmark streams a few answers through the browser's path and the API,
then prints the server's CPU time per answer token and the bytes sent per token
(Gradio sends each update as a diff against the last: an answer that grew by a
token costs an `append` of that token, not the whole answer again).
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from bench.report import machine_line, table
from deploy.processes import ServedProcess
from support.calibration import calibrate
from support.fakes import ScriptedChatModel, answer
from support.gradio_http import GradioChatClient
from support.servers import app_environment, free_port

WORDS = [
    "the",
    "agent",
    "streams",
    "every",
    "token",
    "of",
    "this",
    "answer",
    "as",
    "it",
    "is",
    "generated",
    "by",
    "the",
    "model",
]


def long_answer(tokens: int) -> str:
    return " ".join(WORDS[i % len(WORDS)] for i in range(tokens))


def serve(tokens: int, token_ms: float, port: int) -> None:
    import app
    from agent import Settings

    model = ScriptedChatModel(script=[answer(long_answer(tokens))], token_delay_ms=token_ms)
    app.create_app(Settings(), chat_model=model).launch(server_port=port)


async def measure(tokens: int, token_ms: float, repeats: int) -> list[list[str]]:
    port = free_port()
    command = [
        "-m",
        "bench.token_cost",
        "--serve",
        str(tokens),
        "--token-ms",
        str(token_ms),
        "--port",
        str(port),
    ]
    server = ServedProcess([sys.executable, *command], app_environment())
    try:
        url = server.wait_for_url()
        rows = []
        async with GradioChatClient(url) as client:
            await client.ask("warm up", mode="browser")
            for mode in ("browser", "api"):
                cpu_before = server.cpu_seconds()
                streams = [await client.ask("tell me", mode=mode) for _ in range(repeats)]
                cpu = server.cpu_seconds() - cpu_before
                assert all(s.completed for s in streams)
                answer = next(
                    m["content"]
                    for m in streams[-1].messages
                    if m["role"] == "assistant" and not m["metadata"]
                )
                answer = answer if isinstance(answer, str) else answer[0]["text"]
                assert answer == long_answer(tokens), "the whole answer arrived"
                total_tokens = tokens * repeats
                rows.append(
                    [
                        tokens,
                        token_ms,
                        mode,
                        f"{cpu / total_tokens * 1e6:.0f}",
                        f"{sum(s.updates for s in streams) / repeats:.0f}",
                        f"{sum(s.payload_bytes for s in streams) / total_tokens:.0f}",
                    ]
                )
        return rows
    finally:
        server.stop()


async def main(lengths: list[int], paces: list[float]) -> None:
    rows = []
    for token_ms in paces:
        for tokens in lengths:
            rows.extend(
                await measure(
                    tokens, token_ms, repeats=max(1, 4000 // tokens) if token_ms else max(2, 8000 // tokens)
                )
            )
    print("Server CPU and bytes per streamed answer token (scripted final_answer)")
    print(machine_line())
    print(calibrate().line())
    print(
        table(
            ["answer tokens", "ms/token", "path", "server CPU µs/token", "updates/answer", "bytes/token"],
            rows,
        )
    )
    cost = {(r[0], r[1], r[2]): float(r[3]) for r in rows}
    for token_ms in paces:
        for path in ("browser", "api"):
            short, long = cost[(lengths[0], token_ms, path)], cost[(lengths[-1], token_ms, path)]
            print(
                f"{path}, {token_ms} ms/token: CPU per token at {lengths[-1]} tokens / at {lengths[0]} = {long / short:.2f}"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lengths", default="400,4000")
    parser.add_argument("--paces", default="0,5", help="ms between tokens: 0 = as fast as possible")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--token-ms", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.token_ms, args.port)
    else:
        asyncio.run(
            main([int(n) for n in args.lengths.split(",")], [float(p) for p in args.paces.split(",")])
        )
