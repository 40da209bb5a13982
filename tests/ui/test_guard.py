"""The guard's settings and its idea of who a client is."""

import pytest

from ui.guard import GuardSettings, client_address


def test_defaults_and_every_variable():
    assert GuardSettings.from_env({}) == GuardSettings()
    assert GuardSettings().max_chats_per_client == 3 and not GuardSettings().trust_proxy_headers
    assert GuardSettings.from_env(
        {
            "AGENT_MAX_CHATS_PER_CLIENT": "5",
            "AGENT_TRUST_PROXY_HEADERS": "1",
            "AGENT_MAX_REQUEST_BYTES": "2000",
            "AGENT_MAX_CHAT_MESSAGES": "50",
            "AGENT_MAX_CHAT_CHARS": "9000",
        }
    ) == GuardSettings(5, True, 2000, 50, 9000)


def test_proxy_headers_are_trusted_on_spaces_unless_turned_off():
    assert GuardSettings.from_env({"SPACE_ID": "me/app"}).trust_proxy_headers
    assert not GuardSettings.from_env(
        {"SPACE_ID": "me/app", "AGENT_TRUST_PROXY_HEADERS": "0"}
    ).trust_proxy_headers


@pytest.mark.parametrize("value", ["0", "-1", "three"])
def test_bad_values_are_refused_with_the_variable_name(value):
    with pytest.raises(ValueError, match="AGENT_MAX_CHATS_PER_CLIENT"):
        GuardSettings.from_env({"AGENT_MAX_CHATS_PER_CLIENT": value})


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
