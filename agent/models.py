"""The chat model each request talks to, for its `Settings` (read in `agent.settings`).

`build_model` returns the model with the tools bound (by default
`tool_choice="required"`: the model must call a tool every step) and a
configurable `callbacks` field, so a caller can pass one request its own handlers:
`model.astream(messages, config={"configurable": {"callbacks": [handler]}})`.
(The executor needs none: it reads the chunks the stream yields.)

Servers differ in what they accept. When one refuses `tool_choice="required"`
or `stream_options`, the executor retries without it and `remember_fallback`
keeps that for the key, server and model, for the life of the process;
`AGENT_TOOL_CHOICE` and `AGENT_STREAM_USAGE` let an operator skip the probe.
Per key, because a gateway may route keys differently, and what a visitor's own
key taught must not change the requests sent with the server's key.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import BaseMessage
from langchain_core.runnables import ConfigurableField, Runnable
from langchain_core.tools import BaseTool

from agent.offline import OfflineArithmeticModel
from agent.settings import OPENAI_HOST, Settings
from agent.tools import TOOLS

BoundTool = BaseTool | dict[str, Any]
"""What a model can be bound to: a tool, or its schema in OpenAI's tool format."""

_fallbacks: dict[tuple[str, str | None, str], dict[str, Any]] = {}
"""Settings a server refused, by (key digest, base URL, model): learned once, kept for the process."""
MAX_REMEMBERED_FALLBACKS = 256
"""Visitors with their own key choose model names, so the memory is bounded (least recently used forgotten)."""


def remember_fallback(settings: Settings, change: dict[str, Any]) -> Settings:
    """Note that this server and model need `change`; the settings to use from now on."""
    key = _fallback_key(settings)
    _fallbacks[key] = {**_fallbacks.pop(key, {}), **change}
    while len(_fallbacks) > MAX_REMEMBERED_FALLBACKS:
        del _fallbacks[next(iter(_fallbacks))]
    return dataclasses.replace(settings, **change)


def with_known_fallbacks(settings: Settings) -> Settings:
    """`settings` with what this server and model are known to refuse already left out."""
    key = _fallback_key(settings)
    if (change := _fallbacks.pop(key, None)) is None:
        return settings
    _fallbacks[key] = change  # the most recently used are forgotten last
    return dataclasses.replace(settings, **change)


def _fallback_key(settings: Settings) -> tuple[str, str | None, str]:
    """Whose requests, to which server and model; the key only as a digest (never kept itself)."""
    key = settings.api_key.get_secret_value() if settings.api_key else ""
    return (hashlib.sha256(key.encode()).hexdigest(), settings.base_url, settings.model)


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
    from agent.openai_compat import CompatibleChatOpenAI  # here: the offline app never loads it

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
    """Load the OpenAI client library now instead of during the first question.

    Only worth it when the server itself has a key; the offline app never needs it.
    """
    if not settings.offline:
        chat_model(settings)


def build_model(
    settings: Settings, model: BaseChatModel | None = None, tools: Sequence[BoundTool] = TOOLS
) -> Runnable[LanguageModelInput, BaseMessage]:
    """The model (`model`, or the one the settings name) bound to `tools` (tools, or their
    schemas in OpenAI's format: `Toolbox.schemas`), with `callbacks` configurable per request.

    `configurable.bind_tools(...)` would be forwarded to the default instance and
    lose the configurable field, so the tool arguments come from a plain
    `bind_tools` and are bound on top of the configurable model.
    """
    model = model or chat_model(settings)
    tool_kwargs = model.bind_tools(list(tools), tool_choice=settings.tool_choice).kwargs
    configurable = model.configurable_fields(
        callbacks=ConfigurableField(
            id="callbacks", name="Callbacks", description="The request's own callback handlers."
        )
    )
    return configurable.bind(**tool_kwargs)


class TurnModel:
    """The model one turn talks to, rebuilt if the server refuses a request parameter.

    `chat_model` replaces the model the settings name (tests use scripted ones);
    fallbacks are only learned for real servers. `tools` are what the model may call (as in
    `build_model`).
    """

    def __init__(
        self, settings: Settings, chat_model: BaseChatModel | None = None, tools: Sequence[BoundTool] = TOOLS
    ) -> None:
        self._chat_model = chat_model
        self._tools = tools
        self.settings = settings if chat_model else with_known_fallbacks(settings)
        self.runnable = build_model(self.settings, chat_model, tools)

    def fall_back(self, change: dict[str, Any]) -> None:
        if self._chat_model is None:
            self.settings = remember_fallback(self.settings, change)
        else:
            self.settings = dataclasses.replace(self.settings, **change)
        self.runnable = build_model(self.settings, self._chat_model, self._tools)
