"""Keys, log lines and learned fallbacks on a public link (issue 18, point 6), tried as a visitor would.

Each test serves the app in this process (default guard, conversations saved to SQLite
in a temporary directory) in front of a scripted OpenAI-compatible server of its own, and
talks to it over HTTP like the page does.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from langchain_core.tracers.langchain import wait_for_all_tracers
from pydantic import SecretStr

import app
from agent import ServerSettings, Settings
from agent.tracing import LOG_TEXT_CHARS
from support.gradio_http import ChatStream, GradioChatClient
from support.langsmith_standin import LangSmithStandIn, reread_langsmith_environment
from support.scripted_openai import DONE, Script, answer_reply, events
from support.servers import launch

pytestmark = pytest.mark.slow

SERVER_KEY = "sk-server-secrets-0123456789"
OTHER_KEYS = [
    "gsk_4QmT9wXr2LpZ7vBn1KcY8dFh3JsE6uGa",  # Groq
    "AIzaSyD4-9kQ2xVbN7mL1pR8tW3zY6cF0hJ5sGe",  # Google
    "5d41402abc4b2a76b9719d911017c592ffe0a1b2",  # a gateway's 40-hex token
    "Bearer Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA",  # an upstream header, quoted
]
"""Key-shaped strings an upstream error may quote besides the key it was sent."""
KEYS_IN_USE = {
    "hex": "9f86d081884c7d659a2feaa0c55ad015",  # 32 hex digits, as some servers behind OPENAI_BASE_URL use
    "base64": "dGhpc0lzQVNlY3JldEtleUZvclRoZVNlcnZlcjQy",
    "any shape": "team:alpha/Staging~9 key",  # only the exact key can find this one
}


@dataclass
class Served:
    url: str
    script: Script
    data_dir: Path


@pytest.fixture
def serve(scripted_openai, tmp_path) -> Iterator:
    """`serve(api_key)`: the app on that server key (None: no server key), in front of this test's
    scripted server, saving conversations under `tmp_path`."""
    demos = []

    def start(api_key: str | None, **changes) -> Served:
        settings = Settings(
            api_key=SecretStr(api_key) if api_key else None,
            base_url=scripted_openai.base_url,
            model="scripted-model",
            max_retries=1,
            **changes,
        )
        guard = ServerSettings()
        saved = app.saved_conversations(ServerSettings(data_dir=tmp_path))
        demo = app.create_app(settings, concurrency=10, guard=guard, saved=saved)
        demos.append(demo)
        return Served(launch(demo, guard).rstrip("/"), scripted_openai, tmp_path)

    yield start
    for demo in demos:
        demo.close()


@pytest.fixture
def traces(monkeypatch) -> Iterator[LangSmithStandIn]:
    """LangSmith tracing on, as an operator turns it on, sending to a stand-in that keeps every byte."""
    with LangSmithStandIn() as standin:
        monkeypatch.setenv("LANGSMITH_TRACING", "true")
        monkeypatch.setenv("LANGSMITH_ENDPOINT", standin.url)
        monkeypatch.setenv("LANGSMITH_API_KEY", "lsv2_standin_fake_key")
        monkeypatch.setenv("LANGSMITH_DISABLE_RUN_COMPRESSION", "true")  # readable bytes to search
        reread_langsmith_environment()
        yield standin
        wait_for_all_tracers()
        monkeypatch.undo()
        reread_langsmith_environment()


def quoting(key: str) -> str:
    """What a careless upstream says when it fails: the key it was sent, and others it knows."""
    return f"upstream auth for key {key} failed (also tried {', '.join(OTHER_KEYS)})"


def stream_error(text: str) -> list[str]:
    """A 200 stream that ends with an error event (OpenRouter's way)."""
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "scripted-model"}
    failed = {
        **chunk,
        "error": {"message": text},
        "choices": [{"index": 0, "delta": {}, "finish_reason": "error"}],
    }
    return [*events(failed), DONE, ""]


def everything_shown(stream: ChatStream) -> str:
    return "\n".join(stream.raw)


def stored_bytes(data_dir: Path) -> bytes:
    return b"".join(path.read_bytes() for path in data_dir.rglob("*") if path.is_file())


@pytest.mark.parametrize("whose", ["server key", "visitor's own key"])
@pytest.mark.parametrize("shape", sorted(KEYS_IN_USE))
async def test_no_key_reaches_the_chat_the_log_the_trace_or_the_store(serve, traces, caplog, shape, whose):
    key = KEYS_IN_USE[shape]
    served = serve(key if whose == "server key" else SERVER_KEY)
    served.script.error(500, {"error": {"message": quoting(key)}})  # retried: the retry line quotes it
    served.script.error(400, {"error": {"message": quoting(key)}})
    served.script.stream(*stream_error(quoting(key)))
    own_key = key if whose == "visitor's own key" else ""
    with caplog.at_level(logging.INFO):
        async with GradioChatClient(served.url) as client:
            refused = await client.ask("what is 2 + 2?", api_key=own_key, keep_raw=True)
            failed = await client.ask("and 3 + 3?", api_key=own_key, keep_raw=True)
    wait_for_all_tracers()

    shown = everything_shown(refused) + everything_shown(failed)
    assert "The model server refused the request (400): upstream auth for key [key] failed" in shown
    assert "The model server had an error (500): upstream auth for key [key]" in shown, "the retry line"
    assert "The model server reported an error: upstream auth for key [key]" in shown
    assert b"what is 2 + 2?" in stored_bytes(served.data_dir), "the turns were saved"
    assert '"outcome": "failed"' in caplog.text, "the turns were logged"
    assert len(traces.roots()) == 2, "the turns were traced"
    sinks = {
        "chat": shown.encode(),
        "log": caplog.text.encode(),
        "trace": traces.received(),
        "store": stored_bytes(served.data_dir),
    }
    leaks = {
        secret: [sink for sink, data in sinks.items() if secret.encode() in data]
        for secret in [key, *OTHER_KEYS]
    }
    assert not {secret: sinks for secret, sinks in leaks.items() if sinks}, "secrets reached these"


async def test_a_huge_model_name_writes_one_short_log_line(serve, caplog):
    served = serve(SERVER_KEY)
    served.script.add(answer_reply("Four."))
    model = "m" * 900_000  # any model name goes with one's own key
    with caplog.at_level(logging.INFO, logger="agent.turns"):
        async with GradioChatClient(served.url) as client:
            stream = await client.ask("what is 2 + 2?", api_key="sk-visitor-pays-0123456789", model=model)
    assert stream.completed and served.script.bodies[0]["model"] == model
    [line] = [record.getMessage() for record in caplog.records if record.name == "agent.turns"]
    assert '"outcome": "finished"' in line
    assert f'"model": "{"m" * LOG_TEXT_CHARS}…[{900_000 - LOG_TEXT_CHARS:,} more characters]"' in line
    assert len(line) < 2_000


async def test_a_visitors_key_does_not_change_what_the_server_key_sends(serve):
    served = serve(SERVER_KEY)
    refusal = {"error": {"message": "tool_choice 'required' is not supported on this route", "code": 400}}
    served.script.error(400, refusal)  # the visitor's key goes to a route that refuses it ...
    served.script.add(answer_reply("Four."))  # ... so their turn retries with "auto"
    served.script.add(answer_reply("Six."), answer_reply("Eight."))
    async with GradioChatClient(served.url) as client:
        visitor = await client.ask("what is 2 + 2?", api_key="sk-visitor-own-0123456789")
        on_the_server_key = await client.ask("what is 3 + 3?")
        visitor_again = await client.ask("what is 4 + 4?", api_key="sk-visitor-own-0123456789")
    assert visitor.completed and on_the_server_key.completed and visitor_again.completed
    sent = [
        (request.headers["authorization"], request.body["tool_choice"]) for request in served.script.requests
    ]
    assert sent == [
        ("Bearer sk-visitor-own-0123456789", "required"),
        ("Bearer sk-visitor-own-0123456789", "auto"),
        (f"Bearer {SERVER_KEY}", "required"),  # the server key's sessions still ask for a tool every step
        ("Bearer sk-visitor-own-0123456789", "auto"),  # the visitor's key remembers its own
    ]
