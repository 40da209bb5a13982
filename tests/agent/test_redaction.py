"""What `agent.redaction` hides (keys of every shape) and what it leaves readable (model names, URLs)."""

import httpx
import openai
import pytest
from pydantic import SecretStr

from agent.redaction import redact, redact_error


@pytest.mark.parametrize(
    "secret",
    [
        "sk-proj-abc123def456",
        "gsk_4QmT9wXr2LpZ7vBn1KcY8dFh3JsE6uGa",
        "AIzaSyD4-9kQ2xVbN7mL1pR8tW3zY6cF0hJ5sGe",
        "xai-AbCdEf123456789",
        "hf_aBcDeFgHiJkLmNoPqRsTuVwXyZ012345",
        "5d41402abc4b2a76b9719d911017c592",
        "123e4567-e89b-12d3-a456-426614174000",
        "dGhpc0lzQVNlY3JldEtleUZvclRoZVNlcnZlcjQy",
        "Bearer Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA",
    ],
)
def test_key_shaped_tokens_are_hidden(secret):
    assert redact(f"the server said: bad key {secret}.") == "the server said: bad key [key]."


@pytest.mark.parametrize(
    "kept",
    [
        "Llama-4-Maverick-17B-128E-Instruct-FP8",
        "accounts/fireworks/models/llama-v3p1-405b-instruct",
        "DeepSeek-R1-Distill-Qwen-32B",
        "https://platform.openai.com/docs/guides/error-codes/api-errors",
        "Input should be 'auto' or 'none'",
        "context_length_exceeded",
    ],
)
def test_model_names_and_ordinary_words_stay_readable(kept):
    assert redact(f"model {kept} failed") == f"model {kept} failed"


def test_the_key_in_use_is_hidden_whatever_its_shape_and_placeholders_are_not():
    key = SecretStr("team:alpha/Staging~9 key")
    assert redact("key team:alpha/Staging~9 key, EMPTY", [key, "EMPTY", None]) == "key [key], EMPTY"


def test_an_error_is_redacted_in_its_message_body_response_and_cause():
    key = "team:alpha/Staging~9 key"
    body = {"error": {"message": f"bad key {key}"}}
    response = httpx.Response(401, json=body, request=httpx.Request("POST", "http://llm.test/v1"))
    cause = openai.AuthenticationError(f"Error code: 401 - {body}", response=response, body=body)
    error = RuntimeError(f"wrapped: {cause}")
    error.__cause__ = cause

    assert redact_error(error, [key]) is error
    assert str(error) == "wrapped: Error code: 401 - {'error': {'message': 'bad key [key]'}}"
    assert key not in str(cause) and key not in cause.message
    assert cause.body == {"error": {"message": "bad key [key]"}}
    assert cause.response.json() == {"error": {"message": "bad key [key]"}}
    assert cause.response.status_code == 401
