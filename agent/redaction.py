"""Secrets out of text a person or a log will read: `redact` for strings, `redact_error` for exceptions.

Two kinds of secret are replaced by `[key]`:

- **the keys in use**, given by the caller, whatever their shape (a server behind
  `OPENAI_BASE_URL` may take any string as a key). Strings under 8 characters are
  left alone: they are the placeholders local servers accept (`EMPTY`, `none`,
  `ollama`), and replacing them would garble messages without hiding a secret;
- **anything shaped like a key**: the prefixes providers use (`sk-`, `gsk_`, `xai-`,
  `AIza…`, `hf_`, `Bearer …`, …), and long random-looking tokens (32 or more hex
  digits, UUIDs included, or 32 or more base64 characters with a digit, a letter and a
  run of 16 without `-` or `_`, so that model names such as
  `Llama-4-Maverick-17B-128E-Instruct-FP8` stay readable).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from pydantic import SecretStr

REDACTED = "[key]"
SHORTEST_SECRET = 8
"""Keys shorter than this are placeholders, not secrets (see the module docstring)."""

_PREFIXED = re.compile(
    r"(?<![A-Za-z0-9])(?:"
    r"(?:sk|rk|pk|gsk|xai|pplx|nvapi|csk|key|hf|ghp|gho|ghu|ghs|github_pat|glpat|lsv2|r8|fw)[-_][A-Za-z0-9_\-*]{6,}"
    r"|AIza[A-Za-z0-9_\-]{20,}"
    r"|(?i:bearer)\s+[A-Za-z0-9._~+/\-]{7,}[A-Za-z0-9_~+/\-]=*"
    r")"
)
_TOKEN = re.compile(r"(?<![A-Za-z0-9_+=\-])[A-Za-z0-9_+\-]{32,}={0,2}(?![A-Za-z0-9_+=\-])")
_HEX = re.compile(r"[0-9a-fA-F]{32,}")
_SEGMENT = re.compile(r"[^-_]{16,}")
_BODY_HEADERS = {"content-length", "content-encoding", "transfer-encoding"}

Key = str | SecretStr | None


def redact(text: str, keys: Iterable[Key] = ()) -> str:
    """`text` with `keys` and every key-shaped token replaced by `[key]`."""
    for key in sorted(_plain(keys), key=len, reverse=True):
        text = text.replace(key, REDACTED)
    text = _PREFIXED.sub(REDACTED, text)
    return _TOKEN.sub(_token_or_kept, text)


def redact_error(error: BaseException, keys: Iterable[Key] = ()) -> BaseException:
    """`error`, and the errors it was raised from, with secrets taken out of their messages,
    bodies and HTTP responses (in place, so every later reader sees the redacted text: the
    engine, and LangChain, which puts the response's body in the model run a tracer receives)."""
    keys = list(_plain(keys))
    pending, seen = [error], set()
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        current.args = tuple(_redacted_value(arg, keys) for arg in current.args)
        for name in ("message", "body"):
            if name in vars(current):
                setattr(current, name, _redacted_value(vars(current)[name], keys))
        if (response := vars(current).get("response")) is not None:
            current.response = _redacted_response(response, keys)
        pending += [current.__cause__, current.__context__]
    return error


def _plain(keys: Iterable[Key]) -> Iterable[str]:
    for key in keys:
        value = key.get_secret_value() if isinstance(key, SecretStr) else key
        if value and len(value.strip()) >= SHORTEST_SECRET:
            yield value.strip()


def _token_or_kept(match: re.Match[str]) -> str:
    token = match.group()
    if _HEX.fullmatch(token.replace("-", "")):
        return REDACTED
    looks_random = any(c.isdigit() for c in token) and any(c.isalpha() for c in token)
    return REDACTED if looks_random and _SEGMENT.search(token) else token


def _redacted_response(response: Any, keys: list[str]) -> Any:
    """An HTTP response (httpx's, as the openai SDK keeps it) with its text redacted: a copy, when
    the text held a secret. Its headers are kept, but for the length and encoding of the old body."""
    try:
        text = response.text
    except Exception:  # not read, or not an httpx response: nothing of it was quoted yet
        return response
    if (redacted := redact(text, keys)) == text:
        return response
    headers = [(k, v) for k, v in response.headers.items() if k.lower() not in _BODY_HEADERS]
    return type(response)(
        response.status_code, headers=headers, content=redacted.encode(), request=response.request
    )


def _redacted_value(value: object, keys: list[str]) -> object:
    """A string, or the strings inside a JSON-like body, redacted; anything else as it is."""
    if isinstance(value, str):
        return redact(value, keys)
    if isinstance(value, dict):
        return {k: _redacted_value(v, keys) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_redacted_value(v, keys) for v in value)
    return value
