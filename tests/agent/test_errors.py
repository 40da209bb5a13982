"""The failure catalogue: each exception a turn can meet → kind, retryable, the chat line, the log's cause."""

import json

import httpx
import openai
import pytest
from pydantic import SecretStr

from agent.errors import IncompleteReply, ProviderError, failure_for, out_of_steps, refused_input
from agent.settings import Settings

SETTINGS = Settings(api_key=SecretStr("sk-test-key-123456"), base_url="http://127.0.0.1:9999/v1")
REQUEST = httpx.Request("POST", "http://127.0.0.1:9999/v1/chat/completions")


def status_error(kind: type[openai.APIStatusError], status: int, body: object = None, **headers: str):
    response = httpx.Response(status, request=REQUEST, headers=headers, json=body)
    return kind("refused", response=response, body=body)


CATALOGUE = [
    (
        status_error(openai.AuthenticationError, 401),
        "auth",
        False,
        "The API key was rejected (401). Check OPENAI_API_KEY or the key under 🔑 Model and API key.",
        "AuthenticationError 401",
    ),
    (
        status_error(openai.RateLimitError, 429, **{"retry-after": "3"}),
        "rate_limit",
        True,
        "The model provider is rate limiting requests (429). The server asks to wait 3 s. "
        "Please try again shortly.",
        "RateLimitError 429",
    ),
    (
        openai.APITimeoutError(request=REQUEST),
        "network",
        True,
        "The model server stopped responding (timed out). Please try again.",
        "APITimeoutError",
    ),
    (
        TimeoutError(),
        "network",
        False,
        "The model server stopped responding (timed out). Please try again.",
        "TimeoutError",
    ),
    (
        openai.APIConnectionError(request=REQUEST),
        "network",
        True,
        "Could not reach the model server, or the connection dropped. Please try again.",
        "APIConnectionError",
    ),
    (
        status_error(openai.BadRequestError, 400, {"code": "context_length_exceeded", "message": "too long"}),
        "input",
        False,
        "The conversation is too long for the model. Clear the chat and ask again.",
        "BadRequestError 400",
    ),
    (
        status_error(openai.InternalServerError, 503, {"error": {"message": "overloaded"}}),
        "upstream",
        True,
        "The model server had an error (503): overloaded Please try again.",
        "InternalServerError 503",
    ),
    (
        status_error(
            openai.BadRequestError, 400, {"error": {"message": "tools are not supported with stream"}}
        ),
        "upstream",
        False,
        "The server at 127.0.0.1:9999 cannot stream tool calls (400: tools are not supported with stream). "
        "This agent needs both: upgrade the server or pick a model that supports tool calling while "
        "streaming (see “Tested servers” in the README).",
        "BadRequestError 400",
    ),
    (
        status_error(
            openai.UnprocessableEntityError, 422, {"detail": "no such model, key sk-test-key-123456"}
        ),
        "upstream",
        False,
        "The model server refused the request (422): no such model, key [key]",
        "UnprocessableEntityError 422",
    ),
    (
        ProviderError("quota exceeded"),
        "upstream",
        False,
        "The model server reported an error: quota exceeded",
        "ProviderError",
    ),
    (
        IncompleteReply("The model's reply was cut off before it finished."),
        "upstream",
        False,
        "The model's reply was cut off before it finished. Please try again.",
        "IncompleteReply",
    ),
    (
        json.JSONDecodeError("Expecting value", "{", 1),
        "upstream",
        False,
        "The model server sent a malformed reply. Please try again.",
        "JSONDecodeError",
    ),
    (
        KeyError("oops"),
        "internal",
        False,
        "Something went wrong inside the agent (KeyError). Please try again.",
        "KeyError",
    ),
]


@pytest.mark.parametrize(("error", "kind", "retryable", "line", "cause"), CATALOGUE)
def test_each_exception_has_one_entry(error, kind, retryable, line, cause):
    failure = failure_for(error, SETTINGS)
    assert (failure.kind, failure.retryable, failure.line, failure.cause) == (kind, retryable, line, cause)
    failed = failure.failed()
    assert (failed.kind, failed.message, failed.cause) == (kind, line, cause)


@pytest.mark.parametrize(("error", "kind", "retryable", "line", "cause"), CATALOGUE)
def test_a_retry_notice_says_the_reason_without_the_advice_to_try_again(error, kind, retryable, line, cause):
    failure = failure_for(error, SETTINGS)
    assert line == f"{failure.reason} {failure.advice}".strip()
    assert "try again" not in failure.reason.lower()


def test_the_failures_that_are_not_a_servers_come_from_the_catalogue_too():
    assert refused_input("Please type a question.").failed().message == "Please type a question."
    assert out_of_steps(4).failed().message == (
        "The agent used all 4 steps (AGENT_MAX_STEPS) without reaching an answer."
    )
    assert (refused_input("x").failed().cause, out_of_steps(4).failed().cause) == ("input", "step_limit")
