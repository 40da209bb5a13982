"""Every setting the app reads, and the one place that reads the environment.

`read_environment()` is the process environment over a `.env` file (the
environment wins; empty values count as unset, so `OPENAI_API_KEY=` disables a
key from `.env`). Two dataclasses are built from it:

- `Settings`: what a turn needs — backend, model, limits. A request that brings
  its own key or model gets its own copy through `for_request`; nothing global changes.
- `ServerSettings`: how one app process serves turns — Gradio's queue, the
  display's update budget, the limits of the guard in front, the public link.

A value that cannot be used raises `ValueError` naming the variable; `app.py`
stops with that one line. Gradio and LangSmith read their own variables themselves
(`GRADIO_SERVER_NAME`, `GRADIO_SERVER_PORT`, `LANGSMITH_*`).
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import parse_qs, urlparse

from dotenv import dotenv_values, find_dotenv
from pydantic import SecretStr

DEFAULT_MODEL = "gpt-4.1-mini"
OPENAI_HOST = "api.openai.com"
SPACES_PERSISTENT_STORAGE = Path("/data")

T = TypeVar("T")
ToolChoice = Literal["required", "auto"]
Environment = Mapping[str, str | None]


def read_environment() -> dict[str, str]:
    """The process environment over the `.env` file found from the working directory, empty values left out."""
    return _set_values({**dotenv_values(find_dotenv(usecwd=True)), **os.environ})


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
    approval_timeout_s: float = 300.0
    """How long a tool call waits for a person's approval before it is denied."""

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
    def from_env(cls, env: Environment | None = None, *, offline: bool = False) -> Settings:
        """Settings from `env` (default: `read_environment()`); `offline` forces the offline model
        as `AGENT_OFFLINE=1` does."""
        values = read_environment() if env is None else _set_values(env)
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
            force_offline=offline or _flag(values, "AGENT_OFFLINE"),
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
            log_questions=_flag(values, "AGENT_LOG_QUESTIONS"),
            approval_timeout_s=_read(
                values, "AGENT_APPROVAL_TIMEOUT_S", float, cls.approval_timeout_s, minimum=1
            ),
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


@dataclass(frozen=True)
class ServerSettings:
    """How one app process serves turns (see the README's configuration table)."""

    concurrency: int = 200
    max_sessions: int = 2000
    ui_frame_ms: float = 40.0
    ui_updates_per_s: float = 0.0  # 0: the frame follows the measured load alone (ui/pacing.py)
    max_chats_per_client: int = 3
    trust_proxy_headers: bool = False
    max_request_bytes: int = 1_000_000
    max_chat_messages: int = 400
    max_chat_chars: int = 100_000
    max_calls_per_s: float = 10.0
    max_streams_per_client: int = 40
    stream_idle_s: float = 900.0
    frame_ancestors: str = "'self'"
    """Sites that may show the page in a frame (CSP `frame-ancestors`); on Spaces, Hugging Face's too."""
    share: bool = False
    """A public Gradio link (`GRADIO_SHARE`; the `--share` flag wins)."""
    on_spaces: bool = False
    """Hugging Face Spaces (`SPACE_ID` set) serves the app itself, behind its own proxy."""
    data_dir: Path = Path("data")
    """Where the SQLite conversation store lives (`AGENT_DATA_DIR`), unless `database_url` is set."""
    database_url: SecretStr | None = None
    """`AGENT_DATABASE_URL` (postgresql://…): one store shared by every process. Secret: it may hold a password."""
    retention_days: float = 30.0
    max_saved_conversations: int = 5_000
    max_saved_bytes: int = 50_000_000
    mcp_config: Path | None = None
    """`AGENT_MCP_CONFIG`: the MCP servers whose tools the agent gets (`--mcp-config` wins)."""
    mcp_server: bool = False
    """`AGENT_MCP_SERVER=1`: serve this app as an MCP server at /mcp too (`--mcp-server` does it as well)."""
    shutdown_grace_s: float = 20.0
    """On SIGTERM or SIGINT, how long running turns may go on before they are cut short."""

    @classmethod
    def from_env(cls, env: Environment | None = None) -> ServerSettings:
        """Server settings from `env` (default: `read_environment()`).

        Proxy headers are trusted by default on Spaces, which serves every app behind one
        proxy that appends the visitor's address.
        """
        values = read_environment() if env is None else _set_values(env)
        on_spaces = "SPACE_ID" in values
        return cls(
            concurrency=_read(values, "AGENT_CONCURRENCY", int, cls.concurrency, minimum=1),
            max_sessions=_read(values, "AGENT_MAX_SESSIONS", int, cls.max_sessions, minimum=1),
            ui_frame_ms=_read(values, "AGENT_UI_FRAME_MS", float, cls.ui_frame_ms, minimum=0),
            ui_updates_per_s=_read(values, "AGENT_UI_UPDATES_PER_S", float, cls.ui_updates_per_s, minimum=0),
            max_chats_per_client=_read(
                values, "AGENT_MAX_CHATS_PER_CLIENT", int, cls.max_chats_per_client, minimum=1
            ),
            trust_proxy_headers=_flag(values, "AGENT_TRUST_PROXY_HEADERS", default=on_spaces),
            max_request_bytes=_read(values, "AGENT_MAX_REQUEST_BYTES", int, cls.max_request_bytes, minimum=1),
            max_chat_messages=_read(values, "AGENT_MAX_CHAT_MESSAGES", int, cls.max_chat_messages, minimum=1),
            max_chat_chars=_read(values, "AGENT_MAX_CHAT_CHARS", int, cls.max_chat_chars, minimum=1),
            max_calls_per_s=_read(values, "AGENT_MAX_CALLS_PER_S", float, cls.max_calls_per_s, minimum=0),
            max_streams_per_client=_read(
                values, "AGENT_MAX_STREAMS_PER_CLIENT", int, cls.max_streams_per_client, minimum=1
            ),
            stream_idle_s=_read(values, "AGENT_STREAM_IDLE_S", float, cls.stream_idle_s, minimum=1),
            frame_ancestors=_frame_ancestors(
                values, SPACES_FRAME_ANCESTORS if on_spaces else cls.frame_ancestors
            ),
            share=_flag(values, "GRADIO_SHARE"),
            on_spaces=on_spaces,
            data_dir=Path(values["AGENT_DATA_DIR"]) if "AGENT_DATA_DIR" in values else _data_dir(on_spaces),
            database_url=_database_url(values),
            retention_days=_read(values, "AGENT_RETENTION_DAYS", float, cls.retention_days, minimum=0.001),
            max_saved_conversations=_read(
                values, "AGENT_MAX_SAVED_CONVERSATIONS", int, cls.max_saved_conversations, minimum=1
            ),
            max_saved_bytes=_read(values, "AGENT_MAX_SAVED_BYTES", int, cls.max_saved_bytes, minimum=1000),
            mcp_config=Path(values["AGENT_MCP_CONFIG"]) if "AGENT_MCP_CONFIG" in values else None,
            mcp_server=_flag(values, "AGENT_MCP_SERVER"),
            shutdown_grace_s=_read(values, "AGENT_SHUTDOWN_GRACE_S", float, cls.shutdown_grace_s, minimum=0),
        )


def _data_dir(on_spaces: bool) -> Path:
    """`./data`; on a Space with persistent storage attached (mounted at /data), /data."""
    return SPACES_PERSISTENT_STORAGE if on_spaces and SPACES_PERSISTENT_STORAGE.is_dir() else Path("data")


def _database_url(values: Mapping[str, str]) -> SecretStr | None:
    url = values.get("AGENT_DATABASE_URL")
    if url is None:
        return None
    if not url.startswith(("postgresql://", "postgres://", "sqlite:///")):
        raise ValueError(
            "AGENT_DATABASE_URL must start with postgresql:// (or sqlite:///); its value is not shown"
        )
    if any(mode not in SSL_MODES for mode in parse_qs(urlparse(url).query).get("sslmode", [])):
        raise ValueError(f"AGENT_DATABASE_URL's sslmode must be one of {', '.join(SSL_MODES)}")
    return SecretStr(url)


SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
"""PostgreSQL's (libpq's) `sslmode` values, which the store hands to its driver."""


SPACES_FRAME_ANCESTORS = "'self' https://huggingface.co"
"""A Space's page is shown framed on huggingface.co/spaces/<you>/<name>."""


def _frame_ancestors(values: Mapping[str, str], default: str) -> str:
    """CSP sources, each 'self', 'none', a scheme (`https:`) or an origin (wildcards allowed)."""
    value = values.get("AGENT_FRAME_ANCESTORS", default)
    sources = value.split()
    if not sources or not all(_FRAME_SOURCE.fullmatch(source) for source in sources):
        raise ValueError(
            f"AGENT_FRAME_ANCESTORS must be sources like 'self' https://example.com, got {value!r}"
        )
    return " ".join(sources)


_FRAME_SOURCE = re.compile(r"'self'|'none'|https?:|https?://[A-Za-z0-9*][A-Za-z0-9.*-]*(:\d+)?")


def _set_values(env: Environment) -> dict[str, str]:
    return {name: value for name, value in env.items() if value not in (None, "")}


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


def _flag(values: Mapping[str, str], name: str, default: bool = False) -> bool:
    if name not in values:
        return default
    return values[name].lower() in ("1", "true", "yes")


def _choice(values: Mapping[str, str], name: str, allowed: tuple[str, ...], default: str) -> Any:
    value = values.get(name, default).strip().lower()
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {values[name]!r}")
    return value
