"""Fixtures only: the helpers they are built from live in `support/`."""

from __future__ import annotations

import inspect
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import psutil
import pytest

from agent import ServerSettings, Settings
from deploy.processes import PROJECT_ROOT, ServedProcess
from store import database_url
from support.browser import DESKTOP, chromium, request_recorder
from support.postgres import PostgresCluster, postgres_cluster, require_postgres
from support.scripted_openai import Script, ScriptedOpenAI, serve_scripted_openai
from support.servers import MANY_VISITORS, app_environment, launch, left_running, shut_down


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """langchain-tests' suites include a benchmark (`test_init_time`): run it once, as a test.
    Speed is measured in bench/, never in the tests."""
    if hasattr(config.option, "benchmark_disable"):
        config.option.benchmark_disable = True
    if getattr(config.option, "numprocesses", None):  # pytest -n N (pytest-xdist)
        config.option.loadscopereorder = False  # see pytest_xdist_make_scheduler


CHROMIUM_MODULES = frozenset(
    {
        "tests/test_approval_browser.py",
        "tests/test_browser.py",
        "tests/test_conversations_survive.py",
        "tests/test_mcp_chats.py",
        "tests/test_nginx_browser.py",
        "tests/test_rendering_browser.py",
        "tests/test_saved_conversations.py",
        "tests/test_store_down.py",
    }
)
"""The modules with a test that drives Chromium (checked at collection): xdist's controller sees only
test ids, and xdist's own grouping by mark does not rename ids under pytest 9."""


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """`pytest -n N`: each worker takes whole test files, in collection order, so a module's fixtures
    start its servers once; the Chromium modules are one unit, last, on one worker: the session's
    browser is started there after every asyncio test that worker ran (`pytest_collection_modifyitems`),
    and two workers never drive pages at once (the Stop and closed-tab tests lose their timing then)."""
    from xdist.scheduler import LoadScopeScheduling

    class FilesThenChromium(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return "chromium" if path in CHROMIUM_MODULES else path

    return FilesThenChromium(config, log)


@pytest.hookimpl(trylast=True)  # after any other plugin's reordering (--failed-first, --new-first)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The modules that drive Chromium run last, in their own order: the session's one browser is
    started by the first of them and no asyncio test may run while it is open (`support.browser.chromium`)."""
    in_chromium = {item.module for item in items if "browser" in getattr(item, "fixturenames", ())}
    if (
        unlisted := {item.nodeid.split("::")[0] for item in items if item.module in in_chromium}
        - CHROMIUM_MODULES
    ):
        raise pytest.UsageError(
            f"add these modules that drive Chromium to CHROMIUM_MODULES: {sorted(unlisted)}"
        )
    if awaited := [
        item.nodeid for item in items if getattr(item, "module", None) in in_chromium and _is_async(item)
    ]:
        raise pytest.UsageError(f"an asyncio test in a module that drives Chromium cannot run: {awaited}")
    items.sort(key=lambda item: getattr(item, "module", None) in in_chromium)


def _is_async(item: pytest.Item) -> bool:
    return inspect.iscoroutinefunction(getattr(item, "function", None))


@pytest.fixture(scope="session")
def browser() -> Iterator:
    """Headless Chromium, one for the session (skipped where it is missing, unless REQUIRE_BROWSER)."""
    with chromium() as browser:
        yield browser


@pytest.fixture
def visitor(browser) -> Iterator:
    """One visitor: a browser context of their own (cookies, storage), desktop-sized, closed after."""
    context = browser.new_context(viewport=DESKTOP)
    yield context
    context.close()


@pytest.fixture(scope="module")
def listener() -> Iterator[tuple[str, list[str]]]:
    """A server on another port that notes every request it receives: its URL and what it received."""
    with request_recorder() as recorder:
        yield recorder


@pytest.fixture(scope="session", autouse=True)
def nothing_left_running() -> Iterator[None]:
    """Fail the session if a process the tests started is still alive at its end."""
    yield
    left = left_running()
    assert not left, "still running after the tests:\n" + "\n".join(_describe(p) for p in left)


def _describe(process: psutil.Process) -> str:
    try:
        return f"{process.pid} {' '.join(process.cmdline())}"
    except psutil.Error:
        return str(process.pid)


@pytest.fixture(scope="session")
def served_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app, offline model at 10 ms a token, saving conversations in SQLite in a temporary
    directory, served in this process on a free port."""
    yield from _served_offline_app(tmp_path_factory, token_delay_ms=10)


@pytest.fixture(scope="session")
def slow_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`served_app` with the offline model at 60 ms a token: a test that presses Stop mid-step
    still finds the step running on a loaded machine."""
    yield from _served_offline_app(tmp_path_factory, token_delay_ms=60)


def _served_offline_app(tmp_path_factory: pytest.TempPathFactory, token_delay_ms: float) -> Iterator[str]:
    import app
    from ui.lifecycle import Lifecycle
    from ui.pacing import UpdateBudget

    lifecycle = Lifecycle()
    saved = app.saved_conversations(ServerSettings(data_dir=tmp_path_factory.mktemp("data")))
    lifecycle.on_shutdown(saved.aclose)
    demo = app.create_app(
        Settings(offline_token_delay_ms=token_delay_ms),
        UpdateBudget(),
        concurrency=250,
        guard=MANY_VISITORS,
        saved=saved,
        lifecycle=lifecycle,
    )
    yield launch(demo, MANY_VISITORS, lifecycle, max_threads=250)
    shut_down(demo, lifecycle)  # as on SIGTERM: the store is closed on the server's loop


@pytest.fixture(scope="session")
def scripted_openai_server() -> Iterator[ScriptedOpenAI]:
    with serve_scripted_openai() as server:
        yield server


@pytest.fixture
def scripted_openai(scripted_openai_server: ScriptedOpenAI) -> Iterator[Script]:
    """This test's own script on the scripted OpenAI-compatible server (its own base URL)."""
    script = scripted_openai_server.new_script()
    yield script
    scripted_openai_server.drop(script)


@pytest.fixture
def offline_settings() -> Settings:
    """The offline model with no pacing: fast, deterministic turns."""
    return Settings(offline_token_delay_ms=0)


@pytest.fixture
def start_app() -> Iterator:
    """Start `python app.py ...` (or another command) and stop it after the test."""
    started: list[ServedProcess] = []

    def start(
        *args: str,
        command: Sequence[str] | None = None,
        env: dict[str, str] | None = None,
        cwd: Path = PROJECT_ROOT,
    ) -> ServedProcess:
        served = ServedProcess(command or [sys.executable, "app.py", *args], env or app_environment(), cwd)
        started.append(served)
        return served

    yield start
    for served in started:
        served.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """A throwaway PostgreSQL cluster for the session (skipped where PostgreSQL is not installed,
    unless REQUIRE_POSTGRES=1, as in CI)."""
    require_postgres()
    with postgres_cluster() as cluster:
        yield cluster


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL to an empty conversation store, on each backend."""
    if request.param == "sqlite":
        return database_url(tmp_path)
    return database_url(tmp_path, request.getfixturevalue("postgres").new_database())
