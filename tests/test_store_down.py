"""A conversation store that is down or full, seen in a real Chromium: the turn still answers,
the page says in one line that the conversation was not saved, and nothing crashes. When the
database comes back, the next turn saves the whole conversation, the unsaved turns included."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from agent import ServerSettings, Settings
from support.browser import answered, ask, new_chat, wait_for_titles
from support.postgres import PostgresCluster, postgres_cluster, require_postgres
from support.servers import MANY_VISITORS, launch, shut_down

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]

STORE_DOWN = "Not saved: the conversation store is unavailable right now."
PANEL_DOWN = "Saved conversations are unavailable right now; new turns are not being saved."
TOO_LARGE = "Not saved: this conversation is larger than this server keeps."


@pytest.fixture(scope="module")
def cluster() -> Iterator[PostgresCluster]:
    """A PostgreSQL cluster of this module's own: the test stops it (the session's is shared)."""
    require_postgres()
    with postgres_cluster() as cluster:
        yield cluster


def serve(server: ServerSettings) -> Iterator[str]:
    """The app in this process, saving where `server` says; stopped as on SIGTERM after."""
    import app
    from ui.lifecycle import Lifecycle

    lifecycle = Lifecycle(grace_s=5)
    saved = app.saved_conversations(server)
    lifecycle.on_shutdown(saved.aclose)
    demo = app.create_app(
        Settings(offline_token_delay_ms=5), guard=MANY_VISITORS, saved=saved, lifecycle=lifecycle
    )
    yield launch(demo, MANY_VISITORS, lifecycle)
    shut_down(demo, lifecycle)


@pytest.fixture
def app_on_postgres(cluster: PostgresCluster, tmp_path) -> Iterator[str]:
    yield from serve(ServerSettings(data_dir=tmp_path, database_url=SecretStr(cluster.new_database())))


@pytest.fixture
def app_with_little_room(tmp_path) -> Iterator[str]:
    """SQLite with room for 300 bytes of messages per visitor: less than one turn."""
    yield from serve(ServerSettings(data_dir=tmp_path, max_saved_bytes=300))


def test_a_database_stopped_mid_session_costs_no_answer_and_loses_no_turn(app_on_postgres, cluster, visitor):
    page = visitor.new_page()
    page.goto(app_on_postgres)
    ask(page, "what is 2 + 3")
    answered(page, "2 + 3 =")
    wait_for_titles(page, ["what is 2 + 3"])

    cluster.stop()
    try:
        new_chat(page)
        ask(page, "what is 4 + 4")
        answered(page, "4 + 4 =")
        page.get_by_text(STORE_DOWN).wait_for(timeout=30_000)
        page.get_by_text(PANEL_DOWN).wait_for(timeout=30_000)
        ask(page, "times 2")  # the page goes on answering while the store is down
        answered(page, "8 * 2 =")
        page.get_by_text(STORE_DOWN).nth(1).wait_for(timeout=30_000)
        assert page.get_by_text(STORE_DOWN).count() == 2, "one line per turn that was not saved"
    finally:
        cluster.start()

    ask(page, "plus 1")
    answered(page, "16 + 1 =")
    wait_for_titles(page, ["what is 4 + 4", "what is 2 + 3"])
    assert page.get_by_text(PANEL_DOWN).count() == 0
    page.reload()
    wait_for_titles(page, ["what is 4 + 4", "what is 2 + 3"])
    page.locator("#saved-list").get_by_text("what is 4 + 4").click()
    for answer in ("4 + 4 =", "8 * 2 =", "16 + 1 ="):  # the turns the store missed were saved with the next
        answered(page, answer)


def test_a_full_store_costs_no_answer_and_says_so_once(app_with_little_room, visitor):
    page = visitor.new_page()
    page.goto(app_with_little_room)
    page.get_by_text("No saved conversations yet").wait_for(timeout=30_000)
    ask(page, "what is 6 + 7")
    answered(page, "6 + 7 =")
    page.get_by_text(TOO_LARGE).wait_for(timeout=30_000)
    assert page.get_by_text(TOO_LARGE).count() == 1
    ask(page, "times 3")
    answered(page, "13 * 3 =")
    page.reload()
    page.get_by_text("No saved conversations yet").wait_for(timeout=30_000)
