"""`ConversationStore`: saved conversations in SQLite (one process) or PostgreSQL (many).

Every call names an owner (the visitor's secret id) and sees only that owner's
conversations; the database keeps a SHA-256 of the owner id, never the id itself,
so a copy of the database does not let anyone act as a visitor. A turn appends
only its new messages: what a save costs does not grow with what is saved.

Per owner, the store keeps at most `Limits.conversations` conversations and
`Limits.bytes` of messages: a save that goes past either removes that owner's
oldest conversations (never the one being saved) and says how many. Conversations
untouched for `Limits.retention_days` are removed by `purge_expired`.

Anything the database refuses or cannot be reached for raises `StoreUnavailable`;
callers show one line and carry on.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import secrets
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, delete, event, func, make_url, select, update
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from store.schema import conversations, messages, migrate

SQLITE_FILE = "conversations.sqlite3"
MAX_TITLE_CHARS = 120
MAX_PAGE = 200
WRITE_OPTION = "conversation_store_writes"
_CURSOR = re.compile(r"^(-?\d+(?:\.\d+)?(?:e[-+]?\d+)?)~([A-Za-z0-9_-]{1,32})$")
_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


@dataclass(frozen=True)
class Limits:
    """What one owner may keep."""

    conversations: int = 5_000
    bytes: int = 50_000_000
    retention_days: float = 30.0


@dataclass(frozen=True)
class Summary:
    """One saved conversation as the history panel lists it."""

    id: str
    title: str
    updated_at: float
    message_count: int


@dataclass(frozen=True)
class Page:
    """Conversations newest first; `next_cursor` fetches the ones after (None: no more)."""

    conversations: list[Summary]
    next_cursor: str | None


@dataclass(frozen=True)
class Conversation:
    summary: Summary
    messages: list[dict[str, Any]]


@dataclass(frozen=True)
class Saved:
    """What a save did: the conversation it went to, and how many old ones made room for it."""

    conversation_id: str
    dropped: int = 0

    @property
    def note(self) -> str | None:
        if not self.dropped:
            return None
        some = "conversation was" if self.dropped == 1 else f"{self.dropped} conversations were"
        return f"Your oldest {some} removed to keep within this server's limit for saved conversations."


class StoreError(Exception):
    """The base of what the store raises."""


class StoreUnavailable(StoreError):
    """The database could not be reached, or refused the operation."""


class StoreFull(StoreError):
    """This conversation alone is larger than what one owner may keep."""


class ConversationNotFound(StoreError):
    """No conversation with this id belongs to this owner (it never did, or it was deleted)."""


def database_url(data_dir: Path, configured: str | None = None) -> str:
    """The SQLAlchemy URL for `configured` (postgresql://… or sqlite:///…), or the SQLite file under `data_dir`."""
    if not configured:
        return f"sqlite+aiosqlite:///{(data_dir / SQLITE_FILE).resolve()}"
    for prefix in ("postgresql://", "postgres://"):
        if configured.startswith(prefix):
            return _with_asyncpg_ssl("postgresql+asyncpg://" + configured.removeprefix(prefix))
    if configured.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + configured.removeprefix("sqlite:///")
    if configured.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite:///")):
        return configured
    raise ValueError("must start with postgresql:// or sqlite:///")


def _with_asyncpg_ssl(url: str) -> str:
    """`url` with libpq's `sslmode=` (what a provider's connection string carries) as asyncpg's
    `ssl=`, which takes the same modes; asyncpg refuses `sslmode` as an argument."""
    parsed = make_url(url)
    if "sslmode" not in parsed.query:
        return url
    mode = parsed.query["sslmode"]
    ssl = parsed.difference_update_query(["sslmode"]).update_query_dict({"ssl": mode})
    return ssl.render_as_string(hide_password=False)


def new_owner_id() -> str:
    """A visitor's secret id: 256 random bits."""
    return secrets.token_urlsafe(32)


class ConversationStore:
    """Saved conversations, scoped by owner. Open with `await ConversationStore.open(url)`."""

    def __init__(self, engine: AsyncEngine, limits: Limits) -> None:
        self._engine = engine
        self.limits = limits
        self._writing: AbstractAsyncContextManager[Any] = (
            asyncio.Lock() if engine.dialect.name == "sqlite" else nullcontext()
        )

    @classmethod
    async def open(cls, url: str, limits: Limits | None = None) -> ConversationStore:
        """Connect and bring the schema up to date; `StoreUnavailable` if the database cannot be used."""
        try:
            engine = _engine(url)
        except OSError as error:  # the data directory cannot be made
            raise StoreUnavailable(_reason(error)) from error
        store = cls(engine, limits or Limits())
        try:
            for pause in OPEN_RETRY_PAUSES_S:
                if await store._migrated_unless_locked():
                    return store
                await asyncio.sleep(pause)
            async with store._transaction() as connection:
                await migrate(connection)
        except BaseException:
            await engine.dispose()
            raise
        return store

    async def _migrated_unless_locked(self) -> bool:
        """The schema brought up to date; False if SQLite said the file is locked (see `OPEN_RETRY_PAUSES_S`)."""
        try:
            async with self._transaction() as connection:
                await migrate(connection)
        except StoreUnavailable as error:
            if _sqlite_locked(error):
                return False
            raise
        return True

    @property
    def backend(self) -> str:
        """`sqlite` or `postgresql`."""
        return self._engine.dialect.name

    async def aclose(self) -> None:
        """Close every connection; the store cannot be used after."""
        await self._engine.dispose()

    async def create(self, owner: str, title: str, now: float | None = None) -> str:
        """A new, empty conversation; its id."""
        return (await self.start(owner, title, [], now)).conversation_id

    async def start(
        self, owner: str, title: str, new_messages: Sequence[Mapping[str, Any]], now: float | None = None
    ) -> Saved:
        """A new conversation holding `new_messages`, created and filled in one transaction: one
        that cannot be saved whole (too large, the database gone) leaves nothing behind."""
        conversation_id = secrets.token_urlsafe(16)
        now = time.time() if now is None else now
        bodies = _bodies(new_messages)
        size = sum(size for _body, size in bodies)
        if size > self.limits.bytes:
            raise StoreFull(conversation_id)
        owner_key = _owner_key(owner)
        async with self._transaction() as connection:
            await connection.execute(
                conversations.insert().values(
                    id=conversation_id,
                    owner=owner_key,
                    title=_title(title),
                    created_at=now,
                    updated_at=now,
                    message_count=len(bodies),
                    bytes=size,
                )
            )
            if not bodies:
                return Saved(conversation_id)
            await _insert(connection, conversation_id, 0, bodies)
            dropped = await self._make_room(connection, owner_key, keep=conversation_id)
        return Saved(conversation_id, dropped)

    async def append(
        self,
        owner: str,
        conversation_id: str,
        new_messages: Sequence[Mapping[str, Any]],
        now: float | None = None,
        at: int | None = None,
    ) -> Saved:
        """Add `new_messages` after the conversation's last one, then keep the owner within the limits.

        `at`: put them at this position instead, dropping the messages from there on (a
        question edited, retried or undone in the page replaces what followed it).
        """
        async with self._transaction() as connection:
            dropped = await self._append_in(connection, owner, conversation_id, new_messages, now, at)
        return Saved(conversation_id, dropped)

    async def _append_in(
        self,
        connection: AsyncConnection,
        owner: str,
        conversation_id: str,
        new_messages: Sequence[Mapping[str, Any]],
        now: float | None,
        at: int | None,
    ) -> int:
        """`append` inside the caller's transaction; how many old conversations made room."""
        bodies = _bodies(new_messages)
        size = sum(size for _body, size in bodies)
        owner_key = _owner_key(owner)
        row = (
            await connection.execute(
                select(conversations.c.message_count, conversations.c.bytes)
                .where(conversations.c.id == _checked_id(conversation_id))
                .where(conversations.c.owner == owner_key)
                .with_for_update()
            )
        ).first()
        if row is None:
            raise ConversationNotFound(conversation_id)
        start, kept_bytes = row.message_count, row.bytes
        if at is not None and 0 <= at < row.message_count:
            start = at
            kept_bytes -= await _cut(connection, conversation_id, at)
        if kept_bytes + size > self.limits.bytes:
            raise StoreFull(conversation_id)
        if bodies:
            await _insert(connection, conversation_id, start, bodies)
        await connection.execute(
            update(conversations)
            .where(conversations.c.id == conversation_id)
            .values(
                updated_at=time.time() if now is None else now,
                message_count=start + len(bodies),
                bytes=kept_bytes + size,
            )
        )
        return await self._make_room(connection, owner_key, keep=conversation_id)

    async def page(self, owner: str, cursor: str | None = None, limit: int = 50) -> Page:
        """The owner's conversations, most recently updated first, `limit` at a time."""
        limit = max(1, min(limit, MAX_PAGE))
        query = (
            select(
                conversations.c.id,
                conversations.c.title,
                conversations.c.updated_at,
                conversations.c.message_count,
            )
            .where(conversations.c.owner == _owner_key(owner))
            .order_by(conversations.c.updated_at.desc(), conversations.c.id.desc())
            .limit(limit + 1)
        )
        if cursor:
            updated_at, last_id = _parse_cursor(cursor)
            query = query.where(
                (conversations.c.updated_at < updated_at)
                | ((conversations.c.updated_at == updated_at) & (conversations.c.id < last_id))
            )
        async with self._connection() as connection:
            rows = (await connection.execute(query)).all()
        found = [Summary(row.id, row.title, row.updated_at, row.message_count) for row in rows[:limit]]
        more = len(rows) > limit
        return Page(found, f"{found[-1].updated_at!r}~{found[-1].id}" if more else None)

    async def count(self, owner: str) -> int:
        async with self._connection() as connection:
            query = select(func.count()).where(conversations.c.owner == _owner_key(owner))
            return (await connection.execute(query)).scalar_one()

    async def load(self, owner: str, conversation_id: str) -> Conversation:
        """The conversation and its messages in order; `ConversationNotFound` if it is not the owner's."""
        async with self._connection() as connection:
            row = (
                await connection.execute(
                    select(conversations)
                    .where(conversations.c.id == _checked_id(conversation_id))
                    .where(conversations.c.owner == _owner_key(owner))
                )
            ).first()
            if row is None:
                raise ConversationNotFound(conversation_id)
            bodies = (
                await connection.execute(
                    select(messages.c.body)
                    .where(messages.c.conversation_id == conversation_id)
                    .order_by(messages.c.position)
                )
            ).scalars()
            loaded = [json.loads(body) for body in bodies]
        return Conversation(Summary(row.id, row.title, row.updated_at, row.message_count), loaded)

    async def rename(self, owner: str, conversation_id: str, title: str) -> None:
        async with self._transaction() as connection:
            result = await connection.execute(
                update(conversations)
                .where(conversations.c.id == _checked_id(conversation_id))
                .where(conversations.c.owner == _owner_key(owner))
                .values(title=_title(title))
            )
        if result.rowcount == 0:
            raise ConversationNotFound(conversation_id)

    async def delete(self, owner: str, conversation_id: str) -> bool:
        """Remove the conversation and its messages; False if the owner had no such conversation."""
        async with self._transaction() as connection:
            owned = (
                await connection.execute(
                    select(conversations.c.id)
                    .where(conversations.c.id == _checked_id(conversation_id))
                    .where(conversations.c.owner == _owner_key(owner))
                )
            ).scalar()
            if owned is None:
                return False
            await _delete(connection, [owned])
        return True

    async def delete_all(self, owner: str) -> int:
        """Remove every conversation of the owner; how many there were."""
        owned = select(conversations.c.id).where(conversations.c.owner == _owner_key(owner))
        async with self._transaction() as connection:
            await connection.execute(delete(messages).where(messages.c.conversation_id.in_(owned)))
            result = await connection.execute(
                delete(conversations).where(conversations.c.owner == _owner_key(owner))
            )
        return result.rowcount

    async def purge_expired(self, now: float | None = None) -> int:
        """Remove every conversation (any owner's) untouched for `retention_days`; how many."""
        cutoff = (time.time() if now is None else now) - self.limits.retention_days * 86_400
        expired = select(conversations.c.id).where(conversations.c.updated_at < cutoff)
        async with self._transaction() as connection:
            await connection.execute(delete(messages).where(messages.c.conversation_id.in_(expired)))
            result = await connection.execute(
                delete(conversations).where(conversations.c.updated_at < cutoff)
            )
        return result.rowcount

    async def _make_room(self, connection: AsyncConnection, owner_key: str, keep: str) -> int:
        """Remove the owner's oldest conversations (not `keep`) until both limits hold; how many."""
        count, total = (
            await connection.execute(
                select(func.count(), func.coalesce(func.sum(conversations.c.bytes), 0)).where(
                    conversations.c.owner == owner_key
                )
            )
        ).one()
        if count <= self.limits.conversations and total <= self.limits.bytes:
            return 0
        oldest = await connection.execute(
            select(conversations.c.id, conversations.c.bytes)
            .where(conversations.c.owner == owner_key)
            .where(conversations.c.id != keep)
            .order_by(conversations.c.updated_at, conversations.c.id)
        )
        doomed = []
        for row in oldest:
            if count <= self.limits.conversations and total <= self.limits.bytes:
                break
            doomed.append(row.id)
            count -= 1
            total -= row.bytes
        await _delete(connection, doomed)
        return len(doomed)

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncConnection]:
        try:
            async with self._writing, self._engine.connect() as connection:
                await connection.execution_options(**{WRITE_OPTION: True})
                async with connection.begin():
                    yield connection
        except (SQLAlchemyError, OSError) as error:
            raise StoreUnavailable(_reason(error)) from error

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[AsyncConnection]:
        try:
            async with self._engine.connect() as connection:
                yield connection
        except (SQLAlchemyError, OSError) as error:
            raise StoreUnavailable(_reason(error)) from error


def _engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        Path(url.split(":///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 10})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    return create_async_engine(
        url, pool_pre_ping=True, pool_size=5, max_overflow=10, pool_timeout=10, connect_args={"timeout": 10}
    )


OPEN_RETRY_PAUSES_S = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6)
"""Two processes opening a new SQLite file at once: the one that does not switch it to WAL first gets
"database is locked" at once (SQLite's busy timeout does not cover that lock), so it tries again."""


def _sqlite_locked(error: StoreUnavailable) -> bool:
    cause = error.__cause__
    return isinstance(cause, OperationalError) and "database is locked" in str(cause)


SQLITE_BUSY_TIMEOUT_MS = 10_000
"""How long a writer waits for another process's write lock. SQLite waits by sleeping and polling,
so a process's own writers queue on an `asyncio.Lock` instead (`ConversationStore._writing`) and
are woken the moment the one before them commits."""


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets readers run during a write; the rest keeps deletes cascading and writers patient.
    The driver's own transaction handling is off: `_sqlite_begin` starts each transaction."""
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in (
        "journal_mode=WAL",
        "foreign_keys=ON",
        f"busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
        "synchronous=NORMAL",
    ):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    """A write takes SQLite's write lock when it begins, so that two writers (two processes
    migrating, two appends) wait for each other instead of failing half-way."""
    writing = connection.get_execution_options().get(WRITE_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if writing else "BEGIN")


def _bodies(new_messages: Sequence[Mapping[str, Any]]) -> list[tuple[str, int]]:
    """Each message as the JSON the store keeps, with its size in bytes."""
    bodies = [json.dumps(message, ensure_ascii=False, separators=(",", ":")) for message in new_messages]
    return [(body, len(body.encode())) for body in bodies]


async def _insert(
    connection: AsyncConnection, conversation_id: str, start: int, bodies: list[tuple[str, int]]
) -> None:
    """The messages' rows, from position `start` on."""
    await connection.execute(
        messages.insert(),
        [
            {"conversation_id": conversation_id, "position": start + i, "body": body, "bytes": size}
            for i, (body, size) in enumerate(bodies)
        ],
    )


async def _cut(connection: AsyncConnection, conversation_id: str, at: int) -> int:
    """Delete the conversation's messages from position `at` on; their bytes."""
    after = (messages.c.conversation_id == conversation_id) & (messages.c.position >= at)
    removed = (
        await connection.execute(select(func.coalesce(func.sum(messages.c.bytes), 0)).where(after))
    ).scalar_one()
    await connection.execute(delete(messages).where(after))
    return removed


async def _delete(connection: AsyncConnection, ids: list[str]) -> None:
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        await connection.execute(delete(messages).where(messages.c.conversation_id.in_(chunk)))
        await connection.execute(delete(conversations).where(conversations.c.id.in_(chunk)))


def _owner_key(owner: str) -> str:
    if not owner:
        raise ValueError("a store call needs an owner")
    return hashlib.sha256(owner.encode()).hexdigest()


def _checked_id(conversation_id: str) -> str:
    if not _ID.match(conversation_id or ""):
        raise ConversationNotFound(conversation_id)
    return conversation_id


def _title(title: str) -> str:
    title = " ".join(title.split())
    return title if len(title) <= MAX_TITLE_CHARS else title[: MAX_TITLE_CHARS - 1] + "…"


def _parse_cursor(cursor: str) -> tuple[float, str]:
    match = _CURSOR.match(cursor)
    if not match:
        raise ValueError("not a cursor this store gave out")
    return float(match.group(1)), match.group(2)


def _reason(error: BaseException) -> str:
    """The error's kind and first line, without the SQL and parameters SQLAlchemy appends."""
    original = getattr(error, "orig", None) or error
    first = str(original).splitlines()[0] if str(original) else ""
    return f"{type(original).__name__}: {first}"[:200]
