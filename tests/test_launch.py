"""Starting the app the ways users do: `python app.py` with flags, Gradio's variables, `gradio app.py`."""

import shutil
import sys

import httpx
from gradio_client import Client

from tests.conftest import app_environment, free_port

URL = r"Running on local URL:\s+(http://\S+?)/?\n"


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
    url = app.wait_for(URL)[1]
    assert url == f"http://127.0.0.1:{port}"
    reply = answer_over_api(url)
    assert [m["content"] for m in reply if not m["metadata"]] == ["2 + 2 = **4**"]
    assert "Offline model (forced offline)" in httpx.get(url).text


def test_gradio_environment_variables_keep_working(start_app):
    port = free_port()
    app = start_app(env=app_environment(GRADIO_SERVER_PORT=str(port), GRADIO_SERVER_NAME="127.0.0.1"))
    assert app.wait_for(URL)[1] == f"http://127.0.0.1:{port}"


def test_reload_mode_finds_the_module_level_demo(start_app):
    port = free_port()
    gradio_cli = shutil.which("gradio", path=str(__import__("pathlib").Path(sys.executable).parent))
    app = start_app(command=[gradio_cli, "app.py"], env=app_environment(GRADIO_SERVER_PORT=str(port)))
    url = app.wait_for(URL)[1]
    app.wait_for(r"[Ww]atching")
    assert [m["content"] for m in answer_over_api(url) if not m["metadata"]] == ["2 + 2 = **4**"]


def test_share_without_network_still_serves_locally_and_says_why(start_app):
    port = free_port()
    app = start_app("--port", str(port), "--share")
    url = app.wait_for(URL)[1]
    app.wait_for(r"No public link", timeout=90)
    assert httpx.get(url).status_code == 200
