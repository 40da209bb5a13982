"""The deploy paths: Hugging Face Spaces metadata, Spaces-style launch, and a fresh clone run by the README."""

import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml
from gradio_client import Client

from deploy.processes import PROJECT_ROOT, ServedProcess
from support.servers import app_environment, free_port

pytestmark = pytest.mark.slow


def readme() -> str:
    return (PROJECT_ROOT / "README.md").read_text()


def front_matter() -> dict:
    match = re.match(r"---\n(.*?)\n---\n", readme(), re.S)
    assert match, "README.md must start with Spaces front matter between --- lines"
    return yaml.safe_load(match[1])


def pinned(package: str) -> str:
    for line in (PROJECT_ROOT / "requirements.txt").read_text().splitlines():
        name, _, version = line.partition("==")
        if name.strip().lower() == package:
            return version.strip()
    raise AssertionError(f"{package} is not pinned in requirements.txt")


def readme_command(marker: str) -> str:
    match = re.search(rf"<!-- {marker} -->\n```bash\n(.+?)\n```", readme())
    assert match, f"README.md has no command after <!-- {marker} -->"
    return match[1]


def test_spaces_front_matter_is_valid_and_matches_the_pinned_gradio():
    meta = front_matter()
    assert meta["sdk"] == "gradio"
    assert meta["sdk_version"] == pinned("gradio")
    assert meta["app_file"] == "app.py" and (PROJECT_ROOT / meta["app_file"]).exists()
    assert str(meta["python_version"]) == f"{sys.version_info.major}.{sys.version_info.minor}"
    assert meta["title"] and meta["emoji"]
    assert 0 < len(meta["short_description"]) <= 60
    assert meta["colorFrom"] in {"red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray"}


def test_ci_runs_exactly_the_readme_test_command():
    ci = (PROJECT_ROOT / ".ci" / "run").read_text()
    assert "<!-- test-command -->" in ci and "README.md" in ci
    assert "pytest" in readme_command("test-command")


def test_on_spaces_the_app_binds_where_spaces_expects_and_does_not_share(start_app):
    port = free_port()
    env = app_environment(
        SPACE_ID="someone/agent", GRADIO_SERVER_NAME="0.0.0.0", GRADIO_SERVER_PORT=str(port)
    )
    app = start_app("--share", env=env)
    assert app.wait_for_url() == f"http://0.0.0.0:{port}"
    reply = Client(f"http://127.0.0.1:{port}/", verbose=False).predict("hello", api_name="/chat")
    assert "offline model" in reply[0]["content"]
    assert "No public link" not in app.output and "share link" not in app.output.lower()


@pytest.mark.timeout(600)
def test_a_fresh_clone_installs_and_answers_by_following_the_readme():
    """Clone the committed repo, run the README's run command in a new venv, ask one question."""
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        clone = Path(tmp) / "clone"
        subprocess.run(["git", "clone", "--quiet", str(PROJECT_ROOT), str(clone)], check=True)
        command = readme_command("run-command")
        app = ServedProcess(["bash", "-c", command], app_environment(GRADIO_SERVER_PORT=str(port)), cwd=clone)
        try:
            url = app.wait_for_url(timeout=540)
            reply = Client(url, verbose=False).predict("what is (2 + 3) * (4 + 5)?", api_name="/chat")
        finally:
            app.stop()
        assert (clone / ".venv" / "bin" / "python").exists()
    assert [m["content"] for m in reply if not m["metadata"]] == ["(2 + 3) * (4 + 5) = **45**"]
    assert [m["metadata"]["title"] for m in reply if m["metadata"].get("title", "").startswith("🛠️")] == [
        "🛠️ add → 5",
        "🛠️ add → 9",
        "🛠️ multiply → 45",
    ]
