"""Starting the app the ways users do: `python app.py` with flags, Gradio's variables, `gradio app.py`."""

import shutil
import subprocess
import sys
import time

import httpx
import pytest
from gradio_client import Client

from bench.servers import ServedProcess, group_members, left_running
from tests.conftest import PROJECT_ROOT, app_environment, free_port


def answer_over_api(url: str, question: str = "what is 2 + 2") -> list[dict]:
    return Client(url, verbose=False).predict(question, api_name="/chat")


def test_flags_set_host_and_port_and_offline_overrides_a_key(start_app):
    port = free_port()
    app = start_app(
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--offline",
        env=app_environment(OPENAI_API_KEY="sk-would-be-used-without-offline"),
    )
    url = app.wait_for_url()
    assert url == f"http://127.0.0.1:{port}"
    reply = answer_over_api(url)
    assert [m["content"] for m in reply if not m["metadata"]] == ["2 + 2 = **4**"]
    assert "Offline model (forced offline)" in httpx.get(url).text


def test_gradio_environment_variables_keep_working(start_app):
    port = free_port()
    app = start_app(env=app_environment(GRADIO_SERVER_PORT=str(port), GRADIO_SERVER_NAME="127.0.0.1"))
    assert app.wait_for_url() == f"http://127.0.0.1:{port}"


def test_reload_mode_finds_the_module_level_demo(start_app):
    port = free_port()
    gradio_cli = shutil.which("gradio", path=str(__import__("pathlib").Path(sys.executable).parent))
    app = start_app(command=[gradio_cli, "app.py"], env=app_environment(GRADIO_SERVER_PORT=str(port)))
    url = app.wait_for_url()
    app.wait_for(r"[Ww]atching")
    assert [m["content"] for m in answer_over_api(url) if not m["metadata"]] == ["2 + 2 = **4**"]


def test_share_without_network_still_serves_locally_and_says_why(start_app):
    port = free_port()
    app = start_app("--port", str(port), "--share")
    url = app.wait_for_url()
    app.wait_for(r"No public link", timeout=90)
    assert httpx.get(url).status_code == 200


@pytest.mark.parametrize(("key", "loaded"), [("", False), ("sk-test", True)])
def test_the_openai_client_is_loaded_at_startup_only_when_the_server_has_a_key(key, loaded):
    """Offline, skipping it saves a third of a second of cold start; with a key, loading it at
    startup saves that much (and more) on the first question."""
    probe = "import sys, app; print('openai' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=PROJECT_ROOT,
        env=app_environment(OPENAI_API_KEY=key),
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == str(loaded)


def sleeping_children() -> list:
    return [p for p in left_running() if p.cmdline()[:1] == ["sleep"]]


def test_stop_ends_the_whole_process_group_and_the_session_check_sees_what_is_left():
    """`gradio app.py` starts `app.py` as a child that survives a SIGTERM to its parent: the same shape."""
    served = ServedProcess(["bash", "-c", "sleep 60 & wait"], app_environment())
    deadline = time.monotonic() + 5
    while not sleeping_children() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sleeping_children(), "the session check sees the group's child"
    served.stop()
    assert not group_members(served.group) and not sleeping_children()
