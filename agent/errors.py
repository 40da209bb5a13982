"""The failure catalogue: what went wrong, in words for a person, and whether to retry.

`failure_for` maps an exception to a `Failure` (kind, reason and advice, retryable,
the log's cause); `refused_input`, `out_of_steps` and `crashed` are the failures
that are not a model server's. Every `Failed` event is built from one of them.

A provider's own reason is passed on whatever the shape of its error body (an
object, a nested object, a list, plain text, an error event inside the stream),
after `redact`: messages never quote an API key. `request_fallback` says when a
refused request can be retried without the parameter the server refused.

`openai` is imported where it is used: only the OpenAI backend raises its
errors, and the offline app starts sooner without it.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agent.events import Failed, FailureKind
from agent.redaction import redact as redact_secrets

if TYPE_CHECKING:
    from openai import APIError, APIStatusError

    from agent.figures import TurnFigures
    from agent.settings import Settings

MAX_RETRY_WAIT_S = 10.0
"""Longest wait between retries; a longer Retry-After fails the turn at once instead."""


class IncompleteReply(Exception):
    """The model's stream ended without a finish reason (cut off) or without content."""


class ProviderError(Exception):
    """The model server reported an error inside the stream; the message is the provider's."""


def redact(text: str, settings: Settings) -> str:
    """`text` without the key `settings` use, nor anything shaped like a key (`agent.redaction`)."""
    return redact_secrets(text, [settings.api_key])


TRY_AGAIN = "Please try again."


@dataclass(frozen=True, slots=True)
class Failure:
    """One entry of the catalogue: why a turn failed, for the person and for the log.

    The chat shows `line`: the `reason`, then the `advice`. A retry notice shows the
    reason alone (the engine is already trying again). `retryable`: a request that
    failed this way before any chunk arrived is worth sending again. `cause` is the
    log line's word for it (the exception's type and status), never shown in the chat.
    """

    kind: FailureKind
    reason: str
    advice: str = ""
    retryable: bool = False
    cause: str = ""

    @property
    def line(self) -> str:
        return f"{self.reason} {self.advice}" if self.advice else self.reason

    def failed(self, figures: TurnFigures | None = None) -> Failed:
        """The turn's last event for this failure."""
        return Failed(self.kind, self.line, figures, cause=self.cause)


def failure_for(error: BaseException, settings: Settings) -> Failure:
    """The catalogue: what an exception that ended a model request (or a turn) means."""
    import openai

    cause = _cause(error)
    if isinstance(error, openai.AuthenticationError | openai.PermissionDeniedError):
        return Failure(
            "auth",
            f"The API key was rejected ({error.status_code}).",
            "Check OPENAI_API_KEY or the key under 🔑 Model and API key.",
            cause=cause,
        )
    if isinstance(error, openai.RateLimitError):
        wait = _retry_after(error)
        hint = f" The server asks to wait {wait:.0f} s." if wait else ""
        reason = f"The model provider is rate limiting requests (429).{hint}"
        return Failure("rate_limit", reason, "Please try again shortly.", retryable=True, cause=cause)
    if isinstance(error, openai.APITimeoutError | TimeoutError):
        # The client's own timeout is retried like a dropped connection; a stream gone silent is not.
        retryable = isinstance(error, openai.APIConnectionError)
        reason = "The model server stopped responding (timed out)."
        return Failure("network", reason, TRY_AGAIN, retryable=retryable, cause=cause)
    if isinstance(error, openai.APIConnectionError):
        reason = "Could not reach the model server, or the connection dropped."
        return Failure("network", reason, TRY_AGAIN, retryable=True, cause=cause)
    if isinstance(error, openai.BadRequestError) and error.code == "context_length_exceeded":
        reason = "The conversation is too long for the model."
        return Failure("input", reason, "Clear the chat and ask again.", cause=cause)
    if isinstance(error, openai.APIStatusError):
        return _refused(error, settings)
    if isinstance(error, openai.APIError | ProviderError):
        reason = redact(provider_reason(error), settings)
        return Failure("upstream", f"The model server reported an error: {reason}", cause=cause)
    if isinstance(error, IncompleteReply):
        return Failure("upstream", str(error), TRY_AGAIN, cause=cause)
    if isinstance(error, json.JSONDecodeError):
        return Failure("upstream", "The model server sent a malformed reply.", TRY_AGAIN, cause=cause)
    return crashed(error)


def crashed(error: BaseException) -> Failure:
    """A bug inside the agent, not a model failure (the caller logs its traceback)."""
    reason = f"Something went wrong inside the agent ({type(error).__name__})."
    return Failure("internal", reason, TRY_AGAIN, cause=_cause(error))


def refused_input(reason: str) -> Failure:
    """The question (or the request around it) cannot be answered as sent; `reason` says why."""
    return Failure("input", reason, cause="input")


def out_of_steps(max_steps: int) -> Failure:
    reason = f"The agent used all {max_steps} steps (AGENT_MAX_STEPS) without reaching an answer."
    return Failure("step_limit", reason, cause="step_limit")


def _refused(error: APIStatusError, settings: Settings) -> Failure:
    status, reason = error.status_code, redact(provider_reason(error), settings)
    cause, retryable = _cause(error), status >= 500
    lowered = reason.lower()
    if "tool" in lowered and "stream" in lowered:
        line = (
            f"The server at {settings.server_host} cannot stream tool calls ({status}: {reason}). This "
            "agent needs both: upgrade the server or pick a model that supports tool calling while "
            "streaming (see “Tested servers” in the README)."
        )
        return Failure("upstream", line, retryable=retryable, cause=cause)
    if retryable:
        return Failure(
            "upstream", f"The model server had an error ({status}): {reason}", TRY_AGAIN, True, cause
        )
    return Failure("upstream", f"The model server refused the request ({status}): {reason}", cause=cause)


def _cause(error: BaseException) -> str:
    """The exception's type, and the HTTP status it carries if any: `RateLimitError 429`."""
    status = getattr(error, "status_code", None)
    return f"{type(error).__name__} {status}" if isinstance(status, int) else type(error).__name__


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


def retry_delay(error: BaseException, failure: Failure, attempt: int, max_retries: int) -> float | None:
    """Seconds to wait before retrying `attempt`'s failure, or None to give up."""
    import openai

    if not failure.retryable or attempt > max_retries:
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
