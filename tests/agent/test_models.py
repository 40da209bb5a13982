"""Backend labels, per-request settings, and the model each request talks to."""

import asyncio

import pytest
from langchain_core.callbacks import AsyncCallbackHandler
from langchain_core.messages import HumanMessage
from llmock.testing import LLMockServer
from pydantic import SecretStr

from agent import Settings, backend_label
from agent.events import Finished
from agent.models import build_model, chat_model
from agent.offline import OfflineArithmeticModel
from agent.settings import DEFAULT_MODEL
from support.recording import RequestRecorder, keys_and_models
from support.turns import run_turn_events


@pytest.mark.parametrize(
    ("settings", "label"),
    [
        (Settings(), "Offline model (no API key): arithmetic only"),
        (Settings(api_key=SecretStr("sk-secret"), model="gpt-4.1-mini"), "OpenAI · gpt-4.1-mini"),
        (
            Settings(api_key=SecretStr("sk-secret"), base_url="https://api.openai.com/v1"),
            f"OpenAI · {DEFAULT_MODEL}",
        ),
        (
            Settings(api_key=SecretStr("sk-secret"), base_url="http://10.0.0.5:8000/v1", model="llama"),
            "OpenAI-compatible · 10.0.0.5:8000 · llama",
        ),
        (
            Settings(
                api_key=SecretStr("sk-secret"), base_url="https://user:hunter2@llm.example.com/v1", model="m"
            ),
            "OpenAI-compatible · llm.example.com · m",
        ),
    ],
)
def test_backend_label_names_the_backend_and_never_the_key(settings, label):
    assert backend_label(settings) == label


def test_a_request_can_bring_its_own_key_and_model_without_changing_the_server_settings():
    server = Settings(api_key=SecretStr("sk-server"), model="gpt-server")
    mine = server.for_request(api_key="  sk-mine ", model="gpt-mine")
    assert (mine.api_key.get_secret_value(), mine.model) == ("sk-mine", "gpt-mine")
    assert (server.api_key.get_secret_value(), server.model) == ("sk-server", "gpt-server")
    assert server.for_request(api_key="", model=" ") == server
    assert "sk-mine" not in repr(mine)
    assert Settings().for_request(api_key="sk-mine").offline is False


def test_the_model_follows_the_settings():
    assert isinstance(chat_model(Settings()), OfflineArithmeticModel)
    openai_model = chat_model(Settings(api_key=SecretStr("sk-a"), model="m", request_timeout_s=7))
    assert openai_model.openai_api_key.get_secret_value() == "sk-a"
    assert (openai_model.model_name, openai_model.max_retries, openai_model.streaming) == ("m", 0, True)


class ToolNames(AsyncCallbackHandler):
    """The tool names a request's model streams, as its callbacks see them."""

    def __init__(self) -> None:
        self.names: list[str] = []

    async def on_llm_new_token(self, token, *, chunk=None, **kwargs) -> None:
        self.names += [piece["name"] for piece in chunk.message.tool_call_chunks if piece["name"]]


async def test_callbacks_are_configurable_per_request():
    model = build_model(Settings(offline_token_delay_ms=0))
    first, second = ToolNames(), ToolNames()

    async def stream(question: str, handler: ToolNames) -> None:
        async for _ in model.astream(
            [HumanMessage(question)], config={"configurable": {"callbacks": [handler]}}
        ):
            pass

    await asyncio.gather(stream("2 + 3", first), stream("hello", second))
    assert (first.names, second.names) == (["add"], ["final_answer"])


@pytest.mark.slow
async def test_each_request_sends_its_own_key_and_the_server_key_otherwise():
    seen: list[tuple[str, dict]] = []
    server = LLMockServer()
    server.app.add_middleware(RequestRecorder, seen=seen)
    with server:
        base = Settings(
            api_key=SecretStr("sk-server"), base_url=server.base_url(), model="server-model", max_retries=0
        )
        users = [base.for_request(api_key=f"sk-user-{n}", model=f"user-model-{n}") for n in range(5)]
        turns = await asyncio.gather(*(run_turn_events("hi", s) for s in [*users, base, *users]))
    assert all(isinstance(events[-1], Finished) for events in turns)
    expected = {(f"Bearer sk-user-{n}", f"user-model-{n}") for n in range(5)} | {
        ("Bearer sk-server", "server-model")
    }
    assert keys_and_models(seen) == expected


def test_remembered_fallbacks_stay_bounded_and_keep_the_newest():
    from agent import models

    saved = dict(models._fallbacks)
    try:
        for n in range(models.MAX_REMEMBERED_FALLBACKS + 10):
            models.remember_fallback(
                Settings(base_url="http://bounded.test/v1", model=f"m{n}"), {"stream_usage": False}
            )
        assert len(models._fallbacks) == models.MAX_REMEMBERED_FALLBACKS
        newest = Settings(base_url="http://bounded.test/v1", model=f"m{models.MAX_REMEMBERED_FALLBACKS + 9}")
        assert models.with_known_fallbacks(newest).stream_usage is False
        assert models.with_known_fallbacks(
            Settings(base_url="http://bounded.test/v1", model="m0")
        ).stream_usage
    finally:
        models._fallbacks.clear()
        models._fallbacks.update(saved)
