"""The conversation store, on SQLite and on a PostgreSQL cluster the tests start."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import event, text

from store import (
    ConversationNotFound,
    ConversationStore,
    Limits,
    Saved,
    StoreFull,
    StoreUnavailable,
    database_url,
    new_owner_id,
)
from store import database as database_module
from store.schema import LATEST

pytestmark = pytest.mark.timeout(60)


def turn(question: str, answer: str) -> list[dict]:
    return [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[ConversationStore]:
    opened = await ConversationStore.open(store_url)
    yield opened
    await opened.aclose()


async def test_a_conversation_is_appended_turn_by_turn_and_loads_in_order(store):
    owner = new_owner_id()
    conversation = await store.create(owner, "What is 2 + 2?")
    await store.append(owner, conversation, turn("What is 2 + 2?", "4"))
    tool_step = {"role": "assistant", "content": "add(2, 2) = 4", "metadata": {"title": "🛠️ add"}}
    await store.append(owner, conversation, [{"role": "user", "content": "And ×3?"}, tool_step])

    loaded = await store.load(owner, conversation)

    assert loaded.summary.title == "What is 2 + 2?"
    assert loaded.summary.message_count == 4
    assert loaded.messages == [
        *turn("What is 2 + 2?", "4"),
        {"role": "user", "content": "And ×3?"},
        tool_step,
    ]


async def test_pages_list_the_newest_first_and_reach_every_conversation(store):
    owner = new_owner_id()
    made = []
    for i in range(23):
        conversation = await store.create(owner, f"question {i}", now=1000.0 + i)
        made.append(conversation)
    await store.append(owner, made[3], turn("again", "yes"), now=5000.0)  # updated: now the newest

    seen, cursor = [], None
    while True:
        page = await store.page(owner, cursor, limit=10)
        seen.extend(summary.title for summary in page.conversations)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor

    assert seen == ["question 3", *[f"question {i}" for i in range(22, -1, -1) if i != 3]]
    assert await store.count(owner) == 23


async def test_one_owner_never_sees_touches_or_deletes_anothers(store):
    alice, mallory = new_owner_id(), new_owner_id()
    secret = await store.create(alice, "alice's secret")
    await store.append(alice, secret, turn("my secret", "kept"))

    assert (await store.page(mallory)).conversations == []
    with pytest.raises(ConversationNotFound):
        await store.load(mallory, secret)
    with pytest.raises(ConversationNotFound):
        await store.append(mallory, secret, turn("overwrite", "no"))
    with pytest.raises(ConversationNotFound):
        await store.rename(mallory, secret, "mine now")
    assert await store.delete(mallory, secret) is False
    assert await store.delete_all(mallory) == 0

    assert (await store.load(alice, secret)).messages == turn("my secret", "kept")


async def test_delete_and_delete_all_remove_conversations_for_real(store):
    owner, other = new_owner_id(), new_owner_id()
    first = await store.create(owner, "first")
    await store.append(owner, first, turn("a", "b"))
    second = await store.create(owner, "second")
    kept = await store.create(other, "someone else's")

    assert await store.delete(owner, first) is True
    with pytest.raises(ConversationNotFound):
        await store.load(owner, first)
    assert [s.id for s in (await store.page(owner)).conversations] == [second]
    assert await _rows(store, "messages") == 0

    assert await store.delete_all(owner) == 1
    assert (await store.page(owner)).conversations == []
    assert [s.id for s in (await store.page(other)).conversations] == [kept]


async def test_rename_changes_the_title(store):
    owner = new_owner_id()
    conversation = await store.create(owner, "untitled")
    await store.rename(owner, conversation, "  Sums   of primes ")
    assert (await store.page(owner)).conversations[0].title == "Sums of primes"


async def test_past_the_owners_limits_the_oldest_conversations_go_first_with_a_note(store_url):
    store = await ConversationStore.open(store_url, Limits(conversations=3, bytes=7_150))
    try:
        owner = new_owner_id()
        made = [await store.create(owner, f"c{i}", now=100.0 + i) for i in range(3)]
        for i, conversation in enumerate(made):
            await store.append(owner, conversation, turn(f"q{i}", "a"), now=200.0 + i)
        newest = await store.create(owner, "c3", now=300.0)
        saved = await store.append(owner, newest, turn("q3", "a"), now=301.0)

        assert saved.dropped == 1
        assert saved.note and "oldest conversation was removed" in saved.note
        assert [s.title for s in (await store.page(owner)).conversations] == ["c3", "c2", "c1"]

        big = turn("x" * 4_000, "y" * 3_000)
        saved = await store.append(owner, newest, big, now=302.0)  # bytes limit: c1, c2 must go
        assert saved.dropped == 2
        assert [s.title for s in (await store.page(owner)).conversations] == ["c3"]
        with pytest.raises(StoreFull):
            await store.append(owner, newest, turn("z" * 9_000, ""), now=303.0)
        assert (await store.load(owner, newest)).messages == [*turn("q3", "a"), *big]
    finally:
        await store.aclose()


async def test_a_conversation_started_too_large_to_keep_leaves_nothing_behind(store_url):
    store = await ConversationStore.open(store_url, Limits(bytes=1_000))
    try:
        owner = new_owner_id()
        with pytest.raises(StoreFull):
            await store.start(owner, "too long", turn("x" * 600, "y" * 600))
        assert await store.count(owner) == 0
        assert await _rows(store, "messages") == 0
        saved = await store.start(owner, "short", turn("q", "a"))
        assert (await store.load(owner, saved.conversation_id)).messages == turn("q", "a")
    finally:
        await store.aclose()


async def test_purge_removes_conversations_untouched_for_the_retention_period(store_url):
    store = await ConversationStore.open(store_url, Limits(retention_days=30))
    try:
        owner = new_owner_id()
        now = time.time()
        old = await store.create(owner, "old", now=now - 31 * 86_400)
        await store.append(owner, old, turn("old", "a"), now=now - 31 * 86_400)
        revived = await store.create(owner, "revived", now=now - 40 * 86_400)
        await store.append(owner, revived, turn("again", "a"), now=now - 86_400)

        assert await store.purge_expired(now) == 1
        assert [s.title for s in (await store.page(owner)).conversations] == ["revived"]
        assert await _rows(store, "messages") == 2
    finally:
        await store.aclose()


async def test_two_stores_on_one_database_share_conversations_and_append_concurrently(store_url):
    """Two processes (here: two engines) append to one database at once; nothing is lost."""
    one, two = await asyncio.gather(ConversationStore.open(store_url), ConversationStore.open(store_url))
    try:
        owner = new_owner_id()
        first, second = await one.create(owner, "tab one"), await two.create(owner, "tab two")

        async def chat(store: ConversationStore, conversation: str) -> None:
            for i in range(10):
                await store.append(owner, conversation, turn(f"{conversation} q{i}", f"a{i}"))

        await asyncio.gather(chat(one, first), chat(two, second))
        for store, conversation in [(two, first), (one, second)]:
            loaded = await store.load(owner, conversation)
            assert [m["content"] for m in loaded.messages[::2]] == [f"{conversation} q{i}" for i in range(10)]
    finally:
        await one.aclose()
        await two.aclose()


async def test_many_saves_at_once_in_one_process_queue_without_polling_sqlites_lock(tmp_path, monkeypatch):
    """SQLite's busy wait sleeps and polls (a burst of turns ending together stalled on it): one
    process's writers take turns on the store's one writer thread instead, so even with no busy
    wait at all (a writer meeting SQLite's lock would fail at once) a burst of starts and appends
    all succeed."""
    monkeypatch.setattr(database_module, "SQLITE_BUSY_TIMEOUT_MS", 0)
    store = await ConversationStore.open(database_url(tmp_path))
    try:
        owners = [new_owner_id() for _ in range(30)]
        started = await asyncio.gather(*(store.start(owner, "t", turn("q0", "a0")) for owner in owners))
        ids = [saved.conversation_id for saved in started]
        await asyncio.gather(
            *(store.append(owner, id_, turn("q1", "a1")) for owner, id_ in zip(owners, ids, strict=True))
        )
        for owner, id_ in zip(owners, ids, strict=True):
            assert [m["content"] for m in (await store.load(owner, id_)).messages] == ["q0", "a0", "q1", "a1"]
    finally:
        await store.aclose()


async def test_a_save_given_up_while_it_waited_for_its_turn_never_happens(tmp_path):
    """The app stops waiting for a save after `SAVE_TIMEOUT_S` and tells the page it was not saved
    (the next turn saves the whole conversation again): a save given up while it waited behind
    another writer must not happen later. Here another process holds SQLite's write lock."""
    url = database_url(tmp_path)
    store = await ConversationStore.open(url)
    other_process = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        other_process.execute("BEGIN IMMEDIATE")
        owner, given_up = new_owner_id(), new_owner_id()
        waiting = asyncio.ensure_future(store.start(owner, "waits for the lock", turn("q", "a")))
        await asyncio.sleep(0.2)  # the first save is on the writer thread, waiting for the other process
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(store.start(given_up, "given up", turn("q", "a")), 0.2)
        other_process.execute("COMMIT")

        await waiting
        assert await store.count(owner) == 1
        assert await store.count(given_up) == 0
        assert await _rows(store, "messages") == 2
    finally:
        other_process.close()
        await store.aclose()


async def test_saves_that_wait_together_commit_together_and_each_gets_its_own_outcome(tmp_path):
    """A burst of turns ending together: the saves that wait behind a write go to the database
    in one transaction, in the order they came. One that fails (too large, deleted just before,
    another owner's) is rolled back alone, nothing of it half-written, and gets its own error;
    the others are saved."""
    url = database_url(tmp_path)
    store = await ConversationStore.open(url, Limits(bytes=2_000))
    commits = []
    event.listen(store._database._engine, "commit", lambda _connection: commits.append(1))
    other_process = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        owner, mallory, newcomers = new_owner_id(), new_owner_id(), [new_owner_id() for _ in range(3)]
        kept = (await store.start(owner, "kept", [*turn("q1", "a1"), *turn("q2", "a2")])).conversation_id
        doomed = (await store.start(owner, "doomed", turn("q", "a"))).conversation_id
        commits.clear()

        other_process.execute("BEGIN IMMEDIATE")  # the first save waits for it; the burst queues
        first = asyncio.ensure_future(store.start(owner, "first", turn("q", "a")))
        await asyncio.sleep(0.2)
        burst = [
            asyncio.ensure_future(save)
            for save in [
                store.start(newcomers[0], "fine", turn("q", "a")),
                store.append(owner, kept, turn("q2 edited", "x" * 2_000), at=2),  # cuts, then too large
                store.start(newcomers[1], "fine", turn("q", "a")),
                store.delete(owner, doomed),
                store.append(owner, doomed, turn("too", "late")),
                store.append(mallory, kept, turn("not", "mine")),
                store.start(newcomers[2], "fine", turn("q", "a")),
            ]
        ]
        await asyncio.sleep(0.1)
        other_process.execute("COMMIT")
        await first
        outcomes = await asyncio.gather(*burst, return_exceptions=True)

        assert [type(outcome).__name__ for outcome in outcomes] == [
            "Saved", "StoreFull", "Saved", "bool", "ConversationNotFound", "ConversationNotFound", "Saved"
        ]  # fmt: skip
        assert len(commits) == 2  # the first save alone, then the whole burst
        loaded = await store.load(owner, kept)
        assert loaded.messages == [*turn("q1", "a1"), *turn("q2", "a2")]
        assert loaded.summary.message_count == 4
        assert [s.title for s in (await store.page(owner)).conversations] == ["first", "kept"]
        for newcomer in newcomers:
            assert [s.title for s in (await store.page(newcomer)).conversations] == ["fine"]
        assert await _rows(store, "messages") == 4 + 2 + 3 * 2
    finally:
        other_process.close()
        await store.aclose()


async def test_a_closed_store_refuses_what_comes_after_and_every_save_says_what_became_of_it(store_url):
    """The server's shutdown closes the store: the saves it was writing end first; any that come
    after, or waited too long, are refused (the page says not saved). No save hangs, and every
    one that said it was saved is there when the store is opened again."""
    store = await ConversationStore.open(store_url)
    owners = [new_owner_id() for _ in range(20)]
    saves = [asyncio.ensure_future(store.start(owner, "t", turn("q", "a"))) for owner in owners]
    await asyncio.sleep(0)  # the saves are under way
    await store.aclose()
    outcomes = await asyncio.wait_for(asyncio.gather(*saves, return_exceptions=True), 20)
    with pytest.raises(StoreUnavailable):
        await store.start(owners[0], "after", turn("q", "a"))
    with pytest.raises(StoreUnavailable):
        await store.page(owners[0])

    assert {type(outcome).__name__ for outcome in outcomes} <= {"Saved", "StoreUnavailable"}
    reopened = await ConversationStore.open(store_url)
    try:
        for owner, outcome in zip(owners, outcomes, strict=True):
            assert await reopened.count(owner) == (1 if isinstance(outcome, Saved) else 0)
    finally:
        await reopened.aclose()


async def test_the_schema_is_versioned_and_reopening_keeps_everything(store_url):
    store = await ConversationStore.open(store_url)
    owner = new_owner_id()
    conversation = await store.create(owner, "kept")
    await store.append(owner, conversation, turn("q", "a"))
    await store.aclose()

    store = await ConversationStore.open(store_url)
    try:
        assert (await store.load(owner, conversation)).messages == turn("q", "a")
        versions = await store._database.read(
            lambda connection: connection.execute(text("SELECT version FROM schema_version")).scalars().all()
        )
        assert versions == [LATEST]
    finally:
        await store.aclose()


async def test_the_database_keeps_a_hash_of_the_owner_never_the_id(store):
    owner = new_owner_id()
    await store.create(owner, "mine")
    stored = await store._database.read(
        lambda connection: connection.execute(text("SELECT owner FROM conversations")).scalar_one()
    )
    assert owner not in stored and len(stored) == 64


async def test_a_database_that_is_down_raises_store_unavailable(postgres, tmp_path):
    url = database_url(tmp_path, postgres.new_database())
    store = await ConversationStore.open(url)
    owner = new_owner_id()
    await store.create(owner, "before")
    await store.aclose()
    unreachable = url.replace(f":{postgres.port}/", ":1/")
    with pytest.raises(StoreUnavailable) as raised:
        await ConversationStore.open(unreachable)
    assert "postgres@" not in str(raised.value)


async def test_a_url_with_a_providers_sslmode_reaches_the_driver(postgres, tmp_path):
    """Providers hand out libpq URLs (`?sslmode=require`); asyncpg takes the mode as `ssl`."""
    plain = postgres.new_database()
    store = await ConversationStore.open(database_url(tmp_path, plain + "?sslmode=disable"))
    await store.create(new_owner_id(), "over a plain connection")
    await store.aclose()
    with pytest.raises(StoreUnavailable) as raised:  # this test server has no TLS: asked for, refused
        await ConversationStore.open(database_url(tmp_path, plain + "?sslmode=require"))
    assert "SSL" in str(raised.value)


def test_urls_name_the_backend(tmp_path):
    assert database_url(tmp_path) == f"sqlite:///{tmp_path.resolve()}/conversations.sqlite3"
    assert database_url(tmp_path, "sqlite+aiosqlite:////data/c.db") == "sqlite:////data/c.db"
    assert database_url(tmp_path, "postgresql://u:p@db:5432/chat") == "postgresql+asyncpg://u:p@db:5432/chat"
    assert database_url(tmp_path, "postgres://u:p%40s@db/chat?sslmode=require") == (
        "postgresql+asyncpg://u:p%40s@db/chat?ssl=require"
    )
    with pytest.raises(ValueError):
        database_url(tmp_path, "mysql://db/chat")


def test_owner_ids_are_unguessable():
    ids = {new_owner_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(len(owner) >= 43 for owner in ids)  # 32 random bytes, url-safe base64


async def _rows(store: ConversationStore, table: str) -> int:
    return await store._database.read(
        lambda connection: connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
    )


async def test_appending_at_a_position_replaces_what_followed_it(store):
    """A question edited or retried in the page replaces the turns after it."""
    owner = new_owner_id()
    conversation = await store.create(owner, "q1")
    await store.append(owner, conversation, [*turn("q1", "a1"), *turn("q2", "a2")])
    await store.append(owner, conversation, turn("q2 edited", "a2'"), at=2)

    loaded = await store.load(owner, conversation)
    assert loaded.messages == [*turn("q1", "a1"), *turn("q2 edited", "a2'")]
    assert loaded.summary.message_count == 4
    await store.append(owner, conversation, turn("again", "from the start"), at=0)
    assert (await store.load(owner, conversation)).messages == turn("again", "from the start")
