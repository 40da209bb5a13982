"""The code stays as the house style wants it: linted and formatted by ruff (configured in pyproject.toml)."""

import ast
import re
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


def test_one_module_reads_the_environment():
    """The app's settings are read in `agent/settings.py` only (Gradio and LangSmith read their own)."""
    reading = re.compile(r"\benviron\b|\bgetenv\b|\bdotenv\b")
    readers = [
        path.relative_to(PROJECT_ROOT).as_posix()
        for path in [PROJECT_ROOT / "app.py", *PROJECT_ROOT.glob("agent/*.py"), *PROJECT_ROOT.glob("ui/*.py")]
        if reading.search(path.read_text())
    ]
    assert readers == ["agent/settings.py"]


AGENT_LAYERS = [
    "events",
    "settings",
    "tools",
    "channel",
    "reply",
    "callbacks",
    "errors",
    "openai_compat",
    "arithmetic",
    "offline",
    "models",
    "tracing",
    "executor",
]
"""agent/'s modules from the bottom up: each may import only the ones before it."""


def _agent_imports(path) -> set[str]:
    """The agent modules `path` imports, leaving out imports made only for type checking."""
    tree = ast.parse(path.read_text())
    type_only = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for node in ast.walk(block)
    }
    imported = set()
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("agent."):
            imported.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            imported.update(a.name.split(".")[1] for a in node.names if a.name.startswith("agent."))
    return imported


def test_each_agent_module_imports_only_modules_below_it():
    modules = {path.stem: path for path in (PROJECT_ROOT / "agent").glob("*.py") if path.stem != "__init__"}
    assert sorted(modules) == sorted(AGENT_LAYERS), "place new agent modules in AGENT_LAYERS"
    for name, path in modules.items():
        above = {m for m in _agent_imports(path) if AGENT_LAYERS.index(m) >= AGENT_LAYERS.index(name)}
        assert not above, f"agent/{name}.py imports {above}, which are not below it"


def test_the_ui_reaches_the_engine_only_through_its_public_entry_and_events():
    allowed = {"agent", "agent.events"}
    for path in [PROJECT_ROOT / "app.py", *(PROJECT_ROOT / "ui").glob("*.py")]:
        modules = {
            node.module
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "agent"
        }
        assert modules <= allowed, f"{path.name} imports {modules - allowed}"
