"""Starting the app the ways users do: `python app.py` with flags, Gradio's variables, `gradio app.py`."""

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from gradio_client import Client

from deploy.processes import PROJECT_ROOT, ServedProcess, group_members
from support.servers import app_environment, free_port, left_running

pytestmark = pytest.mark.slow


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


def test_reload_mode_finds_the_module_level_demo_and_watches_only_the_project_code(start_app):
    port = free_port()
    gradio_cli = shutil.which("gradio", path=str(Path(sys.executable).parent))
    app = start_app(command=[gradio_cli, "app.py"], env=app_environment(GRADIO_SERVER_PORT=str(port)))
    url = app.wait_for_url()
    app.wait_for(r"Reload mode: watching agent/, ui/ and app.py")
    assert [m["content"] for m in answer_over_api(url) if not m["metadata"]] == ["2 + 2 = **4**"]
    assert reloads_when_touched(app, PROJECT_ROOT / "app.py")


def reloads_when_touched(app: ServedProcess, path: Path, timeout: float = 15) -> bool:
    """Give `path` a new mtime (same content) until the reloader notices; it records mtimes first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        os.utime(path)
        try:
            app.wait_for(rf"Changes detected in: \S+/{path.name}", timeout=0.5)
            return True
        except AssertionError:
            continue
    return False


def test_a_busy_port_is_one_actionable_line(start_app):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        app = start_app("--port", str(port))
        assert app.process.wait(timeout=60) == 1
    app.wait_for(r"\n", timeout=1)
    assert app.output == (
        f"Cannot serve on 127.0.0.1:{port}: the port is in use (or 127.0.0.1 is not an address of this "
        f"machine). Stop what uses it, or choose another port: python app.py --port {port + 1}\n"
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("AGENT_MAX_STEPS", "abc"),
        ("AGENT_MAX_INPUT_CHARS", "0"),
        ("AGENT_REQUEST_TIMEOUT_S", "soon"),
        ("AGENT_CONCURRENCY", "0"),
        ("AGENT_UI_FRAME_MS", "-1"),
    ],
)
def test_a_bad_setting_is_one_line_naming_it(name, value):
    result = subprocess.run(
        [sys.executable, "app.py"],
        cwd=PROJECT_ROOT,
        env=app_environment(**{name: value}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith(f"{name} must be a") and repr(value) in line and "unset it" in line


def test_importing_the_app_reads_nothing_and_builds_nothing():
    """Tools (pytest's collection, a notebook) import `app`; a bad setting must not break them."""
    env = app_environment(AGENT_MAX_STEPS="abc", AGENT_CONCURRENCY="0")
    probe = "import app; assert not hasattr(app, 'demo')"
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "tests/test_public.py"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert collected.returncode == 0, collected.stdout[-2000:]


def test_the_share_hint_names_our_flag(start_app):
    app = start_app("--port", str(free_port()))
    app.wait_for_url()
    app.wait_for(r"For a public link, start it with --share")
    assert "share=True" not in app.output


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
    probe = (
        "import sys, app; app.create_app(app.read_settings(offline=False)[0]); print('openai' in sys.modules)"
    )
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
