"""The code stays as the house style wants it: linted and formatted by ruff (configured in pyproject.toml)."""

import subprocess
import sys

from tests.conftest import PROJECT_ROOT


def ruff(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args], cwd=PROJECT_ROOT, capture_output=True, text=True
    )


def test_ruff_finds_nothing_to_fix():
    result = ruff("check", ".")
    assert result.returncode == 0, result.stdout


def test_the_code_is_formatted():
    result = ruff("format", "--check", ".")
    assert result.returncode == 0, result.stdout


def test_the_engine_never_imports_gradio_and_the_ui_never_touches_chunks():
    engine = "\n".join(path.read_text() for path in (PROJECT_ROOT / "agent").glob("*.py"))
    ui = "\n".join(
        path.read_text() for path in [PROJECT_ROOT / "app.py", *(PROJECT_ROOT / "ui").glob("*.py")]
    )
    assert "import gradio" not in engine
    assert "AIMessageChunk" not in ui and "tool_call_chunks" not in ui


def test_one_place_reads_streamed_tool_call_pieces():
    readers = [
        path.relative_to(PROJECT_ROOT).as_posix()
        for path in [PROJECT_ROOT / "app.py", *PROJECT_ROOT.glob("agent/*.py"), *PROJECT_ROOT.glob("ui/*.py")]
        if ".tool_call_chunks" in path.read_text()
    ]
    assert readers == ["agent/reply.py"]
