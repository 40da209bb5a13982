"""The allow-list in front of Gradio: what it holds for this app, and how it reads a call."""

import json

import pytest

import app
from agent import ServerSettings, Settings, Toolbox
from ui.allow_list import AllowList
from ui.lifecycle import Lifecycle
from ui.mcp_server import AgentMcpServer


@pytest.fixture(scope="module")
def allowed() -> AllowList:
    return AllowList.of(app.create_app(Settings(), guard=ServerSettings()))


def test_the_allow_list_of_the_app(allowed, capsys):
    with capsys.disabled():
        print("\nThe allow-list of the app:\n  " + "\n  ".join(allowed.describe()))
    assert [route.describe() for route in allowed.routes] == [
        "GET/HEAD /",
        "GET/HEAD /config",
        "GET/HEAD /config/",
        "GET/HEAD /theme.css",
        "GET/HEAD /favicon.ico",
        "GET/HEAD /robots.txt",
        "GET/HEAD /manifest.json",
        "GET/HEAD /assets/{path:path}",
        "GET/HEAD /static/{path:path}",
        "GET/HEAD /gradio_api/info",
        "GET/HEAD /gradio_api/info/",
        "GET/HEAD /gradio_api/startup-events",
        "GET/HEAD /gradio_api/file={path:path}",
        "GET/HEAD /gradio_api/heartbeat/{session_hash}",
        "GET/HEAD /gradio_api/queue/data",
        "POST /gradio_api/queue/join",
        "POST /gradio_api/run/predict",
        "POST /gradio_api/cancel",
        "POST /gradio_api/call/{api_name}",
        "POST /gradio_api/call/v2/{api_name}",
        "GET/HEAD /gradio_api/call/{api_name}/{event_id}",
        "GET/HEAD /gradio_api/call/v2/{api_name}/{event_id}",
    ]
    assert allowed.api_names == {"chat", "approve"}
    assert allowed.queued and allowed.unqueued and not allowed.queued & allowed.unqueued


def test_the_mcp_endpoint_is_on_the_list_only_when_the_app_serves_it(allowed):
    settings, guard = Settings(), ServerSettings()
    demo = app.create_app(settings, guard=guard)
    served = AgentMcpServer(demo, settings, Toolbox(), guard, Lifecycle())
    with_mcp = AllowList.of(demo, served.routes)
    assert [route.describe() for route in with_mcp.routes][-1] == "POST /mcp"
    assert with_mcp.route("POST", "/mcp").kind == "mcp"
    assert with_mcp.route("GET", "/mcp") is None and with_mcp.route("POST", "/mcp/") is None
    assert allowed.route("POST", "/mcp") is None


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/monitoring"),
        ("GET", "/monitoring/summary"),
        ("GET", "/gradio_api/dev/reload"),
        ("POST", "/gradio_api/upload"),
        ("GET", "/gradio_api/deep_link"),
        ("GET", "/gradio_api/proxy=http://203.0.113.7/"),
        ("POST", "/gradio_api/run/chat"),
        ("POST", "/gradio_api/queue/join/"),
        ("POST", "//gradio_api/queue/join"),
        ("GET", "/gradio_api/queue/join"),
        ("PUT", "/gradio_api/queue/join"),
        ("GET", "/gradio_api/heartbeat/a/b"),
        ("POST", "/gradio_api/vibe-edit"),
        ("GET", "/gradio_api/mcp/sse"),
    ],
)
def test_routes_off_the_list_are_refused(allowed, method, path):
    assert allowed.route(method, path) is None


@pytest.mark.parametrize(
    "target",
    ["http://203.0.113.7/leak.png", "https%3A//203.0.113.7/x", "//203.0.113.7/x", "HTTP://x/y", "relative"],
)
def test_the_file_route_never_names_a_url(allowed, target):
    assert not allowed.allows_file(f"/gradio_api/file={target}")


def test_the_file_route_serves_local_paths(allowed):
    assert allowed.allows_file("/gradio_api/file=/srv/gradio/icons/plus.svg")


@pytest.mark.parametrize("encoded", [7, "7", "7.0", 7.0, " 7 "], ids=repr)
def test_an_id_is_read_as_gradio_reads_it_whatever_its_encoding(allowed, encoded):
    join = allowed.route("POST", "/gradio_api/queue/join")
    predict = allowed.route("POST", "/gradio_api/run/predict")
    queued, unqueued = min(allowed.queued), min(allowed.unqueued)
    as_queued = json.dumps({"data": [], "fn_index": encoded, "session_hash": "s"}).replace("7", str(queued))
    as_unqueued = as_queued.replace(str(queued), str(unqueued))
    assert allowed.call(join, "/gradio_api/queue/join", as_queued.encode()).fn_id == queued
    assert allowed.call(predict, "/gradio_api/run/predict", as_unqueued.encode()).fn_id == unqueued
    assert allowed.call(join, "/gradio_api/queue/join", as_unqueued.encode()) is None, "not on its route"
    assert allowed.call(predict, "/gradio_api/run/predict", as_queued.encode()) is None


@pytest.mark.parametrize(
    "body",
    [b"", b"[]", b"{}", b'{"data": [], "fn_index": 9999}', b'{"data": [], "fn_index": "x"}', b"\xff"],
)
def test_a_body_gradio_would_refuse_or_an_unknown_id_is_refused(allowed, body):
    assert (
        allowed.call(allowed.route("POST", "/gradio_api/queue/join"), "/gradio_api/queue/join", body) is None
    )


def test_only_public_api_names_are_callable(allowed):
    call = allowed.route("POST", "/gradio_api/call/chat")
    body = b'{"data": ["1 + 1"]}'
    assert allowed.call(call, "/gradio_api/call/chat", body).api_name == "chat"
    assert allowed.call(call, "/gradio_api/call/lambda_7", body) is None
