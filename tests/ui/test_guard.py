"""The guard's settings and its idea of who a client is."""

import pytest

from agent import ServerSettings
from ui.guard import GuardSettings, client_address, content_security_policy


def test_the_guard_takes_its_share_of_the_server_settings_with_the_same_defaults():
    assert GuardSettings.from_server(ServerSettings()) == GuardSettings()
    assert GuardSettings().max_chats_per_client == 3 and not GuardSettings().trust_proxy_headers
    server = ServerSettings(
        concurrency=9, max_chats_per_client=5, trust_proxy_headers=True, max_chat_chars=9000
    )
    assert GuardSettings.from_server(server) == GuardSettings(
        max_chats_per_client=5, trust_proxy_headers=True, max_chat_chars=9000
    )


@pytest.mark.parametrize(
    ("forwarded", "trusted", "client"),
    [
        ([], False, "10.1.1.1"),
        (["6.6.6.6"], False, "10.1.1.1"),
        (["6.6.6.6, 203.0.113.7"], True, "203.0.113.7"),
        (["6.6.6.6", "203.0.113.7"], True, "203.0.113.7"),
        ([], True, "10.1.1.1"),
    ],
)
def test_the_client_is_the_peer_or_the_entry_the_trusted_proxy_appended(forwarded, trusted, client):
    assert client_address(forwarded, "10.1.1.1", trusted) == client


def test_the_busy_message_names_the_limit():
    assert GuardSettings().busy_message().startswith("You already have 3 questions running")


@pytest.mark.parametrize(
    ("env", "ancestors"),
    [
        ({}, "'self'"),
        ({"SPACE_ID": "you/app"}, "'self' https://huggingface.co"),
        ({"AGENT_FRAME_ANCESTORS": "'self'   https://*.example.com"}, "'self' https://*.example.com"),
        ({"AGENT_FRAME_ANCESTORS": "'none'"}, "'none'"),
    ],
)
def test_the_sites_that_may_frame_the_page_come_from_the_setting(env, ancestors):
    settings = GuardSettings.from_server(ServerSettings.from_env(env))
    assert f"frame-ancestors {ancestors}" in content_security_policy(settings.frame_ancestors)


@pytest.mark.parametrize("value", ["'self'; script-src *", "javascript:", "*", "https://a.example.com/path"])
def test_a_frame_ancestors_value_that_is_not_a_list_of_sources_stops_the_app(value):
    with pytest.raises(ValueError, match="AGENT_FRAME_ANCESTORS"):
        ServerSettings.from_env({"AGENT_FRAME_ANCESTORS": value})
