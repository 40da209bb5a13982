"""What went wrong, in words for a person: exceptions from a turn become `Failed` events.

A provider's own reason is passed on whatever the shape of its error body (an
object, a nested object, a list, plain text, an error event inside the stream),
after `redact`: messages never quote an API key. `request_fallback` says when a
refused request can be retried without the parameter the server refused.

`openai` is imported where it is used: only the OpenAI backend raises its
errors, and the offline app starts sooner without it.
"""

from __future__ import annotations

import json
import logging
import random
from typing import TYPE_CHECKING, Any

from agent.events import Failed
from agent.redaction import redact as redact_secrets

if TYPE_CHECKING:
    from openai import APIError, APIStatusError

    from agent.settings import Settings

log = logging.getLogger(__name__)

MAX_RETRY_WAIT_S = 10.0
"""Longest wait between retries; a longer Retry-After fails the turn at once instead."""


class IncompleteReply(Exception):
    """The model's stream ended without a finish reason (cut off) or without content."""


class ProviderError(Exception):
    """The model server reported an error inside the stream; the message is the provider's."""


def redact(text: str, settings: Settings) -> str:
    """`text` without the key `settings` use, nor anything shaped like a key (`agent.redaction`)."""
    return redact_secrets(text, [settings.api_key])


def failure_for(error: BaseException, settings: Settings) -> Failed:
    """The chat message for an exception that ended a turn."""
    import openai

    if isinstance(error, openai.AuthenticationError | openai.PermissionDeniedError):
        return Failed(
            "auth",
            f"The API key was rejected ({error.status_code}). Check OPENAI_API_KEY or the key under 🔑 Model and API key.",
        )
    if isinstance(error, openai.RateLimitError):
        wait = _retry_after(error)
        hint = f" The server asks to wait {wait:.0f} s." if wait else ""
        return Failed(
            "rate_limit",
            f"The model provider is rate limiting requests (429).{hint} Please try again shortly.",
        )
    if isinstance(error, openai.APITimeoutError | TimeoutError):
        return Failed("network", "The model server stopped responding (timed out). Please try again.")
    if isinstance(error, openai.APIConnectionError):
        return Failed(
            "network", "Could not reach the model server, or the connection dropped. Please try again."
        )
    if isinstance(error, openai.BadRequestError) and error.code == "context_length_exceeded":
        return Failed("input", "The conversation is too long for the model. Clear the chat and ask again.")
    if isinstance(error, openai.APIStatusError):
        return _refused(error, settings)
    if isinstance(error, openai.APIError | ProviderError):
        reason = redact(provider_reason(error), settings)
        return Failed("upstream", f"The model server reported an error: {reason}")
    if isinstance(error, IncompleteReply | json.JSONDecodeError):
        reason = (
            str(error) if isinstance(error, IncompleteReply) else "The model server sent a malformed reply."
        )
        return Failed("upstream", f"{reason} Please try again.")
    log.error("Unexpected error in an agent turn", exc_info=(type(error), error, error.__traceback__))
    return Failed(
        "internal", f"Something went wrong inside the agent ({type(error).__name__}). Please try again."
    )


def _refused(error: APIStatusError, settings: Settings) -> Failed:
    status, reason = error.status_code, redact(provider_reason(error), settings)
    lowered = reason.lower()
    if "tool" in lowered and "stream" in lowered:
        return Failed(
            "upstream",
            f"The server at {settings.server_host} cannot stream tool calls ({status}: {reason}). This "
            "agent needs both: upgrade the server or pick a model that supports tool calling while "
            "streaming (see “Tested servers” in the README).",
        )
    if status >= 500:
        return Failed("upstream", f"The model server had an error ({status}): {reason} Please try again.")
    return Failed("upstream", f"The model server refused the request ({status}): {reason}")


def request_fallback(error: BaseException, settings: Settings) -> dict[str, Any] | None:
    """The setting to change when a server refuses a request parameter it does not
    support: `tool_choice="required"` (DeepSeek thinking mode, older vLLM, some
    OpenRouter routes) or `stream_options` (Mistral). None when there is nothing to try."""
    import openai

    if not isinstance(error, openai.APIStatusError) or error.status_code not in (400, 404, 422):
        return None
    text = f"{provider_reason(error)} {error.body}".lower()
    if settings.stream_usage and "stream_options" in text:
        return {"stream_usage": False}
    if settings.tool_choice != "auto" and ("tool_choice" in text or "tool choice" in text):
        return {"tool_choice": "auto"}
    return None


def provider_reason(error: APIError | ProviderError) -> str:
    """The provider's own words for an error, from whatever shape its body has."""
    import openai

    if isinstance(error, ProviderError):
        return str(error)
    reason = _reason_in(error.body)
    if reason is None and isinstance(error, openai.APIStatusError):
        reason = _reason_in(error.response.text)
    text = " ".join((reason or error.message).split())
    return text if len(text) <= 300 else text[:300] + "…"


def _reason_in(body: Any) -> str | None:
    """The message in an error body: a dict (`message`, `error`, `detail`), a list, or text."""
    if isinstance(body, str):
        try:
            return _reason_in(json.loads(body))
        except ValueError:
            return body.strip() or None
    if isinstance(body, list):
        return "; ".join(reason for item in body if (reason := _reason_in(item))) or None
    if isinstance(body, dict):
        for key in ("message", "error", "detail", "msg", "error_message"):
            if reason := _reason_in(body.get(key)):
                return reason
    return None


def retry_reason(error: BaseException, settings: Settings) -> str:
    """Why a request is being retried, in the failure's words without the advice to try
    again: the engine is already doing that."""
    message = failure_for(error, settings).message
    for advice in (" Please try again shortly.", " Please try again."):
        message = message.removesuffix(advice)
    return message


def retry_delay(error: BaseException, attempt: int, max_retries: int) -> float | None:
    """Seconds to wait before retrying `attempt`'s failure, or None to give up."""
    import openai

    retryable = isinstance(
        error, openai.RateLimitError | openai.InternalServerError | openai.APIConnectionError
    )
    if not retryable or attempt > max_retries:
        return None
    if isinstance(error, openai.APIStatusError) and (asked := _retry_after(error)) is not None:
        return asked if asked <= MAX_RETRY_WAIT_S else None
    return min(0.5 * 2 ** (attempt - 1), MAX_RETRY_WAIT_S) * random.uniform(1.0, 1.25)


def _retry_after(error: APIStatusError) -> float | None:
    """The wait the server asked for: `retry-after-ms` (OpenAI's), else `retry-after` seconds."""
    headers = error.response.headers
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        try:
            return max(float(headers[name]) / scale, 0.0)
        except (KeyError, ValueError):
            continue
    return None
