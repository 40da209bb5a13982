"""Settings from the environment, and the chat model each request talks to.

`Settings.from_env()` reads `OPENAI_API_KEY`, `OPENAI_BASE_URL`, `AGENT_MODEL`,
`AGENT_MODELS`, `AGENT_MAX_STEPS`, ... from the process environment, falling back to a `.env`
file (the environment wins). A request that brings its own key or model gets
its own `Settings` through `for_request`; nothing global changes.

`build_model` returns the model with the tools bound (by default
`tool_choice="required"`: the model must call a tool every step) and a
configurable `callbacks` field, so each request passes its own handler:
`model.astream(messages, config={"configurable": {"callbacks": [handler]}})`.

Servers differ in what they accept. When one refuses `tool_choice="required"`
or `stream_options`, the executor retries without it and `remember_fallback`
keeps that for the server and model, for the life of the process;
`AGENT_TOOL_CHOICE` and `AGENT_STREAM_USAGE` let an operator skip the probe.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar
from urllib.parse import urlparse

from dotenv import dotenv_values, find_dotenv
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import BaseMessage
from langchain_core.runnables import ConfigurableField, Runnable
from pydantic import SecretStr

from agent.offline import OfflineArithmeticModel
from agent.tools import TOOLS

DEFAULT_MODEL = "gpt-4.1-mini"
OPENAI_HOST = "api.openai.com"

T = TypeVar("T")
ToolChoice = Literal["required", "auto"]


@dataclass(frozen=True)
class Settings:
    """Everything a turn needs to know about its backend and limits."""

    api_key: SecretStr | None = None
    base_url: str | None = None
    model: str = DEFAULT_MODEL
    models: tuple[str, ...] = ()
    """The models a request may pick when it runs on the server's key; empty means just `model`."""
    max_output_tokens: int = 1024
    max_steps: int = 10
    force_offline: bool = False
    offline_token_delay_ms: float = 20.0
    max_input_chars: int = 4000
    max_history_chars: int = 24_000
    request_timeout_s: float = 60.0
    max_retries: int = 2
    tool_choice: ToolChoice = "required"
    stream_usage: bool = True
    log_questions: bool = False

    def __post_init__(self) -> None:
        if not self.models:
            object.__setattr__(self, "models", (self.model,))

    @property
    def offline(self) -> bool:
        return self.force_offline or self.api_key is None

    @property
    def server_host(self) -> str:
        """host[:port] of the model server (never the user:password@ a URL may carry)."""
        url = urlparse(self.base_url or f"https://{OPENAI_HOST}")
        return f"{url.hostname}:{url.port}" if url.port else str(url.hostname)

    @classmethod
    def from_env(cls, env: Mapping[str, str | None] | None = None) -> Settings:
        """Settings from `env` (default: `.env` overlaid by the process environment).

        Empty values count as unset, so `OPENAI_API_KEY=` disables a key from `.env`.
        """
        if env is None:
            env = {**dotenv_values(find_dotenv(usecwd=True)), **os.environ}
        values = {name: value for name, value in env.items() if value not in (None, "")}
        key = values.get("OPENAI_API_KEY")
        models = tuple(name.strip() for name in values.get("AGENT_MODELS", "").split(",") if name.strip())
        model = values.get("AGENT_MODEL", models[0] if models else DEFAULT_MODEL)
        if models and model not in models:
            raise ValueError(f"AGENT_MODEL {model!r} must be one of AGENT_MODELS ({', '.join(models)})")
        return cls(
            api_key=SecretStr(key) if key else None,
            base_url=values.get("OPENAI_BASE_URL"),
            model=model,
            models=models or (model,),
            max_output_tokens=_read(values, "AGENT_MAX_OUTPUT_TOKENS", int, cls.max_output_tokens, minimum=1),
            max_steps=_read(values, "AGENT_MAX_STEPS", int, cls.max_steps, minimum=1),
            force_offline=values.get("AGENT_OFFLINE", "").lower() in ("1", "true", "yes"),
            offline_token_delay_ms=_read(
                values, "AGENT_OFFLINE_TOKEN_DELAY_MS", float, cls.offline_token_delay_ms, minimum=0
            ),
            max_input_chars=_read(values, "AGENT_MAX_INPUT_CHARS", int, cls.max_input_chars, minimum=1),
            request_timeout_s=_read(
                values, "AGENT_REQUEST_TIMEOUT_S", float, cls.request_timeout_s, minimum=1
            ),
            max_retries=_read(values, "AGENT_MAX_RETRIES", int, cls.max_retries, minimum=0),
            tool_choice=_choice(values, "AGENT_TOOL_CHOICE", ("required", "auto"), cls.tool_choice),
            stream_usage=_choice(values, "AGENT_STREAM_USAGE", ("1", "0"), "1" if cls.stream_usage else "0")
            == "1",
            log_questions=values.get("AGENT_LOG_QUESTIONS", "").lower() in ("1", "true", "yes"),
        )

    def for_request(self, api_key: str | None = None, model: str | None = None) -> Settings:
        """These settings with one user's own key and model, for one request.

        On the server's key only the `models` allow-list runs (`ModelNotAllowed`
        otherwise); with their own key a visitor may name any model: they pay.
        """
        changes: dict[str, Any] = {}
        own_key = bool(api_key and api_key.strip())
        if own_key:
            changes["api_key"] = SecretStr(api_key.strip())  # type: ignore[union-attr]
        if model and model.strip():
            changes["model"] = model.strip()
        request = dataclasses.replace(self, **changes)
        if not own_key and not request.offline and request.model not in self.models:
            raise ModelNotAllowed(request.model, self.models)
        return request


class ModelNotAllowed(ValueError):
    """A request asked for a model outside the allow-list while using the server's key."""

    def __init__(self, model: str, allowed: tuple[str, ...]) -> None:
        shown = model if len(model) <= 40 else model[:40] + "…"
        super().__init__(
            f"The model {shown!r} is not available on this server's key; choose one of: "
            f"{', '.join(allowed)}. With your own API key (under 🔑 Model and API key) any model name works."
        )


def _read(values: Mapping[str, str], name: str, kind: Callable[[str], T], default: T, minimum: float) -> T:
    if name not in values:
        return default
    try:
        value = kind(values[name])
    except ValueError:
        value = None
    if value is None or value < minimum:  # type: ignore[operator]
        kind_name = "a whole number" if kind is int else "a number"
        raise ValueError(f"{name} must be {kind_name} of at least {minimum:g}, got {values[name]!r}")
    return value


def _choice(values: Mapping[str, str], name: str, allowed: tuple[str, ...], default: str) -> Any:
    value = values.get(name, default).strip().lower()
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {values[name]!r}")
    return value


_fallbacks: dict[tuple[str | None, str], dict[str, Any]] = {}
"""Settings a server refused, by (base URL, model): learned once, kept for the process."""
MAX_REMEMBERED_FALLBACKS = 256
"""Visitors with their own key choose model names, so the memory is bounded (oldest forgotten)."""


def remember_fallback(settings: Settings, change: dict[str, Any]) -> Settings:
    """Note that this server and model need `change`; the settings to use from now on."""
    key = (settings.base_url, settings.model)
    _fallbacks[key] = {**_fallbacks.pop(key, {}), **change}
    while len(_fallbacks) > MAX_REMEMBERED_FALLBACKS:
        del _fallbacks[next(iter(_fallbacks))]
    return dataclasses.replace(settings, **change)


def with_known_fallbacks(settings: Settings) -> Settings:
    """`settings` with what this server and model are known to refuse already left out."""
    change = _fallbacks.get((settings.base_url, settings.model))
    return dataclasses.replace(settings, **change) if change else settings


def backend_label(settings: Settings) -> str:
    """One line saying which backend answers, for people (never includes the key)."""
    if settings.offline:
        reason = "forced offline" if settings.force_offline else "no API key"
        return f"Offline model ({reason}): arithmetic only"
    if settings.server_host == OPENAI_HOST:
        return f"OpenAI · {settings.model}"
    return f"OpenAI-compatible · {settings.server_host} · {settings.model}"


def chat_model(settings: Settings) -> BaseChatModel:
    if settings.offline:
        return OfflineArithmeticModel(token_delay_ms=settings.offline_token_delay_ms)
    from agent.openai_compat import CompatibleChatOpenAI  # here: the offline app starts 0.3 s faster

    return CompatibleChatOpenAI(
        model=settings.model,
        api_key=settings.api_key,
        base_url=settings.base_url,
        streaming=True,
        stream_usage=settings.stream_usage,
        max_tokens=settings.max_output_tokens,
        max_retries=0,
        timeout=settings.request_timeout_s,
        stream_chunk_timeout=settings.request_timeout_s,
    )


def preload(settings: Settings) -> None:
    """Load the OpenAI client library now (about 0.7 s) instead of during the first question.

    Only worth it when the server itself has a key; the offline app never needs it.
    """
    if not settings.offline:
        chat_model(settings)


def build_model(
    settings: Settings, model: BaseChatModel | None = None
) -> Runnable[LanguageModelInput, BaseMessage]:
    """The tool-calling model (`model`, or the one the settings name), with
    `callbacks` configurable per request.

    `configurable.bind_tools(...)` would be forwarded to the default instance and
    lose the configurable field, so the tool arguments come from a plain
    `bind_tools` and are bound on top of the configurable model.
    """
    model = model or chat_model(settings)
    tool_kwargs = model.bind_tools(TOOLS, tool_choice=settings.tool_choice).kwargs
    configurable = model.configurable_fields(
        callbacks=ConfigurableField(
            id="callbacks", name="Callbacks", description="The request's own callback handlers."
        )
    )
    return configurable.bind(**tool_kwargs)


class TurnModel:
    """The model one turn talks to, rebuilt if the server refuses a request parameter.

    `chat_model` replaces the model the settings name (tests use scripted ones);
    fallbacks are only learned for real servers.
    """

    def __init__(self, settings: Settings, chat_model: BaseChatModel | None = None) -> None:
        self._chat_model = chat_model
        self.settings = settings if chat_model else with_known_fallbacks(settings)
        self.runnable = build_model(self.settings, chat_model)

    def fall_back(self, change: dict[str, Any]) -> None:
        if self._chat_model is None:
            self.settings = remember_fallback(self.settings, change)
        else:
            self.settings = dataclasses.replace(self.settings, **change)
        self.runnable = build_model(self.settings, self._chat_model)
