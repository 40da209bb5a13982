"""The code stays as the house style wants it: linted and formatted by ruff (configured in pyproject.toml)."""

import ast
import re
import subprocess
import sys
from pathlib import Path

from deploy.processes import PROJECT_ROOT


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
    engine = "\n".join(path.read_text() for path in (PROJECT_ROOT / "agent").rglob("*.py"))
    ui = "\n".join(
        path.read_text() for path in [PROJECT_ROOT / "app.py", *(PROJECT_ROOT / "ui").glob("*.py")]
    )
    assert "import gradio" not in engine
    assert "AIMessageChunk" not in ui and "tool_call_chunks" not in ui


def test_one_place_reads_streamed_tool_call_pieces():
    readers = [
        path.relative_to(PROJECT_ROOT).as_posix()
        for path in [
            PROJECT_ROOT / "app.py",
            *PROJECT_ROOT.glob("agent/**/*.py"),
            *PROJECT_ROOT.glob("ui/*.py"),
        ]
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
    "bounds",
    "redaction",
    "settings",
    "langchain_seams",
    "tools",
    "toolbox",
    "mcp.config",
    "mcp.results",
    "mcp.seams",
    "mcp.connection",
    "mcp.tools",
    "mcp.servers",
    "mcp",
    "channel",
    "figures",
    "approval",
    "reply",
    "errors",
    "openai_compat",
    "offline.reading",
    "offline.planning",
    "offline.model",
    "offline",
    "models",
    "tracing",
    "executor",
]
"""agent/'s modules from the bottom up (a package's modules, then the package): each may import
only the ones before it."""
OFFLINE_MAY_IMPORT = {"events", "tools"}
"""The offline model is a wing of its own: besides its own modules, only these."""


def _agent_modules() -> dict[str, Path]:
    """agent/'s modules by dotted name below `agent` (a package by its own name)."""
    modules = {}
    for path in (PROJECT_ROOT / "agent").rglob("*.py"):
        parts = path.relative_to(PROJECT_ROOT / "agent").with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if name:
            modules[name] = path
    return modules


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
            imported.add(node.module.removeprefix("agent."))
        elif isinstance(node, ast.Import):
            imported.update(a.name.removeprefix("agent.") for a in node.names if a.name.startswith("agent."))
    return imported


def test_each_agent_module_imports_only_modules_below_it():
    modules = _agent_modules()
    assert sorted(modules) == sorted(AGENT_LAYERS), "place new agent modules in AGENT_LAYERS"
    for name, path in modules.items():
        above = {m for m in _agent_imports(path) if AGENT_LAYERS.index(m) >= AGENT_LAYERS.index(name)}
        assert not above, f"agent/{name}.py imports {above}, which are not below it"


def test_the_offline_wing_leans_only_on_tools_and_events():
    for name, path in _agent_modules().items():
        if name.split(".")[0] == "offline":
            outside = {m for m in _agent_imports(path) if m.split(".")[0] != "offline"}
            assert outside <= OFFLINE_MAY_IMPORT, f"agent/{name} imports {outside - OFFLINE_MAY_IMPORT}"


def test_the_ui_reaches_the_engine_only_through_its_public_entry_and_events():
    allowed = {"agent", "agent.events"}
    for path in [PROJECT_ROOT / "app.py", *(PROJECT_ROOT / "ui").glob("*.py")]:
        modules = {
            node.module
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "agent"
        }
        assert modules <= allowed, f"{path.name} imports {modules - allowed}"


def _imports(path: Path) -> set[str]:
    """Every module `path` imports, relative imports resolved, `from a import b` counted as `a` and `a.b`."""
    package = path.relative_to(PROJECT_ROOT).with_suffix("").parts[:-1]
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            parent = package[: len(package) - node.level + 1] if node.level else ()
            module = ".".join([*parent, *([node.module] if node.module else [])])
            imported.add(module)
            imported.update(f"{module}.{alias.name}" for alias in node.names)
    return imported


def _python_files(*places: str) -> list[Path]:
    return [p for place in places for p in (PROJECT_ROOT / place).rglob("*.py") if ".venv" not in p.parts]


def _top(module: str) -> str:
    return module.split(".")[0]


def _is_test_module_or_conftest(module: str) -> bool:
    first, *rest = module.split(".")
    return first == "tests" and any(part == "conftest" or part.startswith("test_") for part in rest)


def test_tests_and_benchmarks_share_helpers_only_through_the_support_package():
    for path in _python_files("tests"):
        wrong = {m for m in _imports(path) if _top(m) == "bench" or _is_test_module_or_conftest(m)}
        assert not wrong, f"{path.relative_to(PROJECT_ROOT)} imports {wrong}: move what it needs to support/"
    for place, forbidden in [("bench", {"tests"}), ("support", {"tests", "bench"})]:
        for path in _python_files(place):
            wrong = {m for m in _imports(path) if _top(m) in forbidden}
            assert not wrong, f"{path.relative_to(PROJECT_ROOT)} imports {wrong}"


def test_the_app_never_imports_tests_benchmarks_or_their_helpers():
    for path in [PROJECT_ROOT / "app.py", *_python_files("agent", "ui", "deploy")]:
        wrong = {m for m in _imports(path) if _top(m) in {"tests", "bench", "support"}}
        assert not wrong, f"{path.relative_to(PROJECT_ROOT)} imports {wrong}"


GRADIO_PRIVATE_NAMES = re.compile(
    r"get_blocks_context|GRADIO_WATCH_DIRS|copyreg|sys\.modules\[|is_cancel_function|trigger_after|"
    r"\.fns\b|\._queue\b|gradio\.context|gradio\.http_server|\.postprocess = "
)


def test_only_the_seams_module_touches_gradio_private_parts():
    """Private names outside `ui/gradio_seams.py`: only our own, or the hooks our subclasses override."""
    from ui.gradio_seams import PRIVATE_HOOKS

    hooks = {name for names in PRIVATE_HOOKS.values() for name in names}
    for path in [PROJECT_ROOT / "app.py", *(PROJECT_ROOT / "ui").glob("*.py")]:
        if path.name == "gradio_seams.py":
            continue
        source = path.read_text()
        tree = ast.parse(source)
        assert not GRADIO_PRIVATE_NAMES.search(source), (
            f"{path.name}: {GRADIO_PRIVATE_NAMES.search(source)[0]}"
        )
        defined = (ast.FunctionDef, ast.AsyncFunctionDef)
        own = {node.name for node in ast.walk(tree) if isinstance(node, defined)}
        stored = [node for node in ast.walk(tree) if isinstance(getattr(node, "ctx", None), ast.Store)]
        own |= {node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", "") for node in stored}
        for node in ast.walk(tree):
            if not (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                continue
            on_self = isinstance(node.value, ast.Name) and node.value.id == "self"
            on_super = isinstance(node.value, ast.Call) and ast.unparse(node.value.func) == "super"
            assert on_self or on_super, f"{path.name}:{node.lineno}: {ast.unparse(node)}"
            assert node.attr in own or node.attr in hooks, f"{path.name}:{node.lineno}: {node.attr}"
