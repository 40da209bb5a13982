"""The guard's settings, its idea of who a client is, and the headers it adds."""

import gradio as gr
import pytest

from agent import ServerSettings
from ui.guard import PublicGuard, busy_message, client_address, content_security_policy


def test_no_class_of_the_ui_copies_a_server_setting():
    """The UI takes the one `ServerSettings` whole: no dataclass of its own repeats one of its fields."""
    import dataclasses
    import importlib
    import inspect
    import pkgutil

    import ui

    server_fields = {field.name for field in dataclasses.fields(ServerSettings)}
    copies = {}
    for module_info in pkgutil.iter_modules(ui.__path__):
        module = importlib.import_module(f"ui.{module_info.name}")
        for name, cls in inspect.getmembers(module, inspect.isclass):
            ours = dataclasses.is_dataclass(cls) and cls.__module__ == module.__name__
            if ours and (shared := server_fields & {field.name for field in dataclasses.fields(cls)}):
                copies[f"{module.__name__}.{name}"] = shared
    assert copies == {}


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
    assert busy_message(ServerSettings()).startswith("You already have 3 questions running")


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
    settings = ServerSettings.from_env(env)
    assert f"frame-ancestors {ancestors}" in content_security_policy(settings.frame_ancestors)


@pytest.mark.parametrize("value", ["'self'; script-src *", "javascript:", "*", "https://a.example.com/path"])
def test_a_frame_ancestors_value_that_is_not_a_list_of_sources_stops_the_app(value):
    with pytest.raises(ValueError, match="AGENT_FRAME_ANCESTORS"):
        ServerSettings.from_env({"AGENT_FRAME_ANCESTORS": value})


async def test_an_event_stream_and_a_plain_response_both_carry_the_security_headers():
    with gr.Blocks() as blocks:
        gr.Textbox()
    settings = ServerSettings(frame_ancestors="'self'")
    guard = PublicGuard(event_stream, blocks, settings)
    for path in ("/gradio_api/queue/data", "/config"):
        sent: list[dict] = []

        async def send(message: dict, sent: list[dict] = sent) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "method": "GET",
            "path": path,
            "query_string": b"session_hash=s1",
            "headers": [],
        }
        await guard(scope, receive_nothing, send)
        headers = dict(sent[0]["headers"])
        assert headers[b"content-security-policy"] == content_security_policy("'self'").encode(), path
        assert headers[b"x-content-type-options"] == b"nosniff"
        assert [m.get("body") for m in sent[1:]] == [b"data: {}\n\n", b""], (
            "the stream itself passes as it was"
        )


async def event_stream(scope: dict, receive: object, send) -> None:
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]}
    )
    await send({"type": "http.response.body", "body": b"data: {}\n\n", "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def receive_nothing() -> dict:
    return {"type": "http.disconnect"}
