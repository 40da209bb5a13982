"""Every setting from the environment (or `.env`): engine settings and server settings."""

import os
from pathlib import Path

import pytest

from agent import ServerSettings, Settings, backend_label
from agent.settings import DEFAULT_MODEL


def test_defaults_without_any_configuration():
    settings = Settings.from_env({})
    assert settings.offline and settings.api_key is None
    assert settings.model == DEFAULT_MODEL and settings.max_steps == 10
    assert settings.offline_token_delay_ms == 20


def test_every_variable_is_read():
    settings = Settings.from_env(
        {
            "OPENAI_API_KEY": "sk-env",
            "OPENAI_BASE_URL": "http://127.0.0.1:8000/v1",
            "AGENT_MODEL": "gpt-test",
            "AGENT_MAX_STEPS": "3",
            "AGENT_OFFLINE_TOKEN_DELAY_MS": "0",
            "AGENT_MAX_INPUT_CHARS": "100",
            "AGENT_REQUEST_TIMEOUT_S": "5",
            "AGENT_MAX_RETRIES": "0",
        }
    )
    assert settings.api_key.get_secret_value() == "sk-env" and not settings.offline
    assert (settings.base_url, settings.model, settings.max_steps) == (
        "http://127.0.0.1:8000/v1",
        "gpt-test",
        3,
    )
    assert (settings.offline_token_delay_ms, settings.max_input_chars) == (0, 100)
    assert (settings.request_timeout_s, settings.max_retries) == (5, 0)


def test_an_empty_key_means_no_key_and_offline_can_be_forced():
    assert Settings.from_env({"OPENAI_API_KEY": ""}).offline
    forced = Settings.from_env({"OPENAI_API_KEY": "sk-x", "AGENT_OFFLINE": "1"})
    assert forced.offline and backend_label(forced) == "Offline model (forced offline): arithmetic only"


@pytest.mark.parametrize(
    ("name", "value"),
    [("AGENT_MAX_STEPS", "many"), ("AGENT_MAX_STEPS", "0"), ("AGENT_OFFLINE_TOKEN_DELAY_MS", "-1")],
)
def test_bad_values_are_refused_with_the_variable_name(name, value):
    with pytest.raises(ValueError, match=name):
        Settings.from_env({name: value})


def test_dotenv_is_read_and_the_environment_wins(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("AGENT_MODEL=from-dotenv\nAGENT_MAX_STEPS=7\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AGENT_MAX_STEPS", "4")
    monkeypatch.delenv("AGENT_MODEL", raising=False)
    settings = Settings.from_env()
    assert (settings.model, settings.max_steps) == ("from-dotenv", 4)


def test_offline_can_be_passed_instead_of_set_in_the_environment():
    before = dict(os.environ)
    forced = Settings.from_env({"OPENAI_API_KEY": "sk-x"}, offline=True)
    assert forced.offline and forced.api_key.get_secret_value() == "sk-x"
    assert dict(os.environ) == before


def test_server_defaults_and_every_variable():
    assert ServerSettings.from_env({}) == ServerSettings()
    assert ServerSettings.from_env(
        {
            "AGENT_CONCURRENCY": "50",
            "AGENT_MAX_SESSIONS": "100",
            "AGENT_UI_FRAME_MS": "0",
            "AGENT_UI_UPDATES_PER_S": "325.0",
            "AGENT_MAX_CHATS_PER_CLIENT": "5",
            "AGENT_TRUST_PROXY_HEADERS": "1",
            "AGENT_MAX_REQUEST_BYTES": "2000",
            "AGENT_MAX_CHAT_MESSAGES": "50",
            "AGENT_MAX_CHAT_CHARS": "9000",
            "GRADIO_SHARE": "true",
        }
    ) == ServerSettings(50, 100, 0, 325, 5, True, 2000, 50, 9000, share=True)


def test_on_spaces_proxy_headers_are_trusted_unless_turned_off():
    on_spaces = ServerSettings.from_env({"SPACE_ID": "me/app"})
    assert on_spaces.on_spaces and on_spaces.trust_proxy_headers
    assert not ServerSettings.from_env(
        {"SPACE_ID": "me/app", "AGENT_TRUST_PROXY_HEADERS": "0"}
    ).trust_proxy_headers
    assert not ServerSettings.from_env({"SPACE_ID": ""}).on_spaces


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("AGENT_MAX_CHATS_PER_CLIENT", "0"),
        ("AGENT_MAX_CHATS_PER_CLIENT", "-1"),
        ("AGENT_MAX_CHATS_PER_CLIENT", "three"),
        ("AGENT_CONCURRENCY", "0"),
        ("AGENT_MAX_SESSIONS", "many"),
        ("AGENT_UI_FRAME_MS", "-1"),
        ("AGENT_UI_UPDATES_PER_S", "fast"),
    ],
)
def test_bad_server_values_are_refused_with_the_variable_name(name, value):
    with pytest.raises(ValueError, match=f"^{name} must be a"):
        ServerSettings.from_env({name: value})


def test_server_settings_come_from_dotenv_too_and_the_environment_wins(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("AGENT_CONCURRENCY=7\nAGENT_MAX_CHAT_MESSAGES=9\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AGENT_MAX_CHAT_MESSAGES", "11")
    monkeypatch.delenv("AGENT_CONCURRENCY", raising=False)
    server = ServerSettings.from_env()
    assert (server.concurrency, server.max_chat_messages) == (7, 11)


def test_the_conversation_store_settings_come_from_the_environment(tmp_path):
    default = ServerSettings.from_env({})
    assert (default.data_dir, default.database_url, default.retention_days) == (Path("data"), None, 30)
    server = ServerSettings.from_env(
        {
            "AGENT_DATA_DIR": str(tmp_path),
            "AGENT_DATABASE_URL": "postgresql://app:hunter2@db/chat",
            "AGENT_RETENTION_DAYS": "7",
            "AGENT_MAX_SAVED_CONVERSATIONS": "100",
            "AGENT_MAX_SAVED_BYTES": "1000000",
        }
    )
    assert server.data_dir == tmp_path
    assert server.database_url is not None
    assert server.database_url.get_secret_value() == "postgresql://app:hunter2@db/chat"
    assert "hunter2" not in repr(server) and "hunter2" not in str(server)
    assert (server.retention_days, server.max_saved_conversations, server.max_saved_bytes) == (
        7,
        100,
        1_000_000,
    )


def test_a_database_url_of_another_kind_is_refused_without_showing_it():
    with pytest.raises(ValueError, match="AGENT_DATABASE_URL") as refused:
        ServerSettings.from_env({"AGENT_DATABASE_URL": "mysql://app:hunter2@db/chat"})
    assert "hunter2" not in str(refused.value)


def test_a_database_url_with_an_unknown_sslmode_is_refused_without_showing_it():
    ServerSettings.from_env({"AGENT_DATABASE_URL": "postgresql://app:hunter2@db/chat?sslmode=verify-full"})
    with pytest.raises(ValueError, match="sslmode must be one of disable, allow") as refused:
        ServerSettings.from_env({"AGENT_DATABASE_URL": "postgresql://app:hunter2@db/chat?sslmode=on"})
    assert "hunter2" not in str(refused.value)
