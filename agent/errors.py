"""What went wrong, in words for a person: exceptions from a turn become `Failed` events.

Messages never quote an API key: provider text is only passed on for request
errors (a wrong model name, say), after `redact`.

`openai` is imported where it is used: only the OpenAI backend raises its
errors, and the offline app starts 0.3 s faster without it.
"""

from __future__ import annotations

import json
import logging
import random
import re
from typing import TYPE_CHECKING

from agent.events import Failed
from agent.models import Settings

if TYPE_CHECKING:
    from openai import APIStatusError

log = logging.getLogger(__name__)

MAX_RETRY_WAIT_S = 10.0
"""Longest wait between retries; a longer Retry-After fails the turn at once instead."""

_KEY_LIKE = re.compile(r"\b(?:sk|rk|pk|key)[-_][A-Za-z0-9_\-*]{6,}")


class IncompleteReply(Exception):
    """The model's stream ended without a finish reason (cut off) or without content."""


def redact(text: str, settings: Settings) -> str:
    if settings.api_key is not None:
        text = text.replace(settings.api_key.get_secret_value(), "[key]")
    return _KEY_LIKE.sub("[key]", text)


def failure_for(error: BaseException, settings: Settings) -> Failed:
    """The chat message for an exception that ended a turn."""
    import openai

    if isinstance(error, openai.AuthenticationError | openai.PermissionDeniedError):
        return Failed(
            "auth",
            f"The API key was rejected ({error.status_code}). Check OPENAI_API_KEY or the key under Settings.",
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
    if isinstance(error, openai.APIStatusError) and error.status_code >= 500:
        return Failed("upstream", f"The model server had an error ({error.status_code}). Please try again.")
    if isinstance(error, openai.APIStatusError):
        detail = redact(_provider_message(error), settings)
        return Failed("upstream", f"The model server refused the request ({error.status_code}): {detail}")
    if isinstance(error, IncompleteReply | json.JSONDecodeError):
        reason = (
            str(error) if isinstance(error, IncompleteReply) else "The model server sent a malformed reply."
        )
        return Failed("upstream", f"{reason} Please try again.")
    log.error("Unexpected error in an agent turn", exc_info=(type(error), error, error.__traceback__))
    return Failed(
        "internal", f"Something went wrong inside the agent ({type(error).__name__}). Please try again."
    )


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


def _provider_message(error: APIStatusError) -> str:
    body = error.body
    if isinstance(body, dict):
        message = body.get("message") or (body.get("error") or {}).get("message")
        if isinstance(message, str):
            return message[:300]
    return error.message[:300]
