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
callers show one line and carry on. Each operation is one plain function of a
connection, run in one transaction by `store.database` (on SQLite, on the store's
own threads, the saves that come together committed together).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, make_url, select, update
from sqlalchemy.exc import OperationalError

from store.database import Database, open_database
from store.database import reason as _reason
from store.errors import ConversationNotFound, StoreFull, StoreUnavailable
from store.schema import conversations, messages, migrate

SQLITE_FILE = "conversations.sqlite3"
MAX_TITLE_CHARS = 120
MAX_PAGE = 200
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


def database_url(data_dir: Path, configured: str | None = None) -> str:
    """The SQLAlchemy URL for `configured` (postgresql://… or sqlite:///…), or the SQLite file under `data_dir`."""
    if not configured:
        return f"sqlite:///{(data_dir / SQLITE_FILE).resolve()}"
    for prefix in ("postgresql://", "postgres://"):
        if configured.startswith(prefix):
            return _with_asyncpg_ssl("postgresql+asyncpg://" + configured.removeprefix(prefix))
    if configured.startswith("sqlite+aiosqlite:///"):  # what this function gave before
        return "sqlite:///" + configured.removeprefix("sqlite+aiosqlite:///")
    if configured.startswith(("postgresql+asyncpg://", "sqlite:///")):
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

    def __init__(self, database: Database, limits: Limits) -> None:
        self._database = database
        self.limits = limits

    @classmethod
    async def open(cls, url: str, limits: Limits | None = None) -> ConversationStore:
        """Connect and bring the schema up to date; `StoreUnavailable` if the database cannot be used."""
        try:
            database = open_database(url)
        except OSError as error:  # the data directory cannot be made
            raise StoreUnavailable(_reason(error)) from error
        try:
            for pause in OPEN_RETRY_PAUSES_S:
                if await _migrated_unless_locked(database):
                    return cls(database, limits or Limits())
                await asyncio.sleep(pause)
            await database.write(migrate)
        except BaseException:
            await database.dispose()
            raise
        return cls(database, limits or Limits())

    @property
    def backend(self) -> str:
        """`sqlite` or `postgresql`."""
        return self._database.dialect

    async def aclose(self) -> None:
        """Close every connection; the store cannot be used after."""
        await self._database.dispose()

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

        def start(connection: Connection) -> int:
            connection.execute(
                _NEW_CONVERSATION,
                {
                    "id": conversation_id,
                    "owner": owner_key,
                    "title": _title(title),
                    "created_at": now,
                    "updated_at": now,
                    "message_count": len(bodies),
                    "bytes": size,
                },
            )
            if not bodies:
                return 0
            _insert(connection, conversation_id, 0, bodies)
            return self._make_room(connection, owner_key, keep=conversation_id)

        return Saved(conversation_id, await self._database.write(start))

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
        bodies = _bodies(new_messages)
        owner_key = _owner_key(owner)
        updated_at = time.time() if now is None else now
        dropped = await self._database.write(
            lambda connection: self._append_in(connection, owner_key, conversation_id, bodies, updated_at, at)
        )
        return Saved(conversation_id, dropped)

    def _append_in(
        self,
        connection: Connection,
        owner_key: str,
        conversation_id: str,
        bodies: list[tuple[str, int]],
        now: float,
        at: int | None,
    ) -> int:
        """`append` inside the caller's transaction; how many old conversations made room."""
        size = sum(size for _body, size in bodies)
        row = connection.execute(
            _OWNED_FOR_UPDATE, {"id": _checked_id(conversation_id), "owner": owner_key}
        ).first()
        if row is None:
            raise ConversationNotFound(conversation_id)
        start, kept_bytes = row.message_count, row.bytes
        if at is not None and 0 <= at < row.message_count:
            start = at
            kept_bytes -= _cut(connection, conversation_id, at)
        if kept_bytes + size > self.limits.bytes:
            raise StoreFull(conversation_id)
        if bodies:
            _insert(connection, conversation_id, start, bodies)
        connection.execute(
            _APPENDED,
            {
                "appended_to": conversation_id,
                "now": now,
                "count": start + len(bodies),
                "size": kept_bytes + size,
            },
        )
        return self._make_room(connection, owner_key, keep=conversation_id)

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
        rows = await self._database.read(lambda connection: connection.execute(query).all())
        found = [Summary(row.id, row.title, row.updated_at, row.message_count) for row in rows[:limit]]
        more = len(rows) > limit
        return Page(found, f"{found[-1].updated_at!r}~{found[-1].id}" if more else None)

    async def count(self, owner: str) -> int:
        query = select(func.count()).where(conversations.c.owner == _owner_key(owner))
        return await self._database.read(lambda connection: connection.execute(query).scalar_one())

    async def load(self, owner: str, conversation_id: str) -> Conversation:
        """The conversation and its messages in order; `ConversationNotFound` if it is not the owner's."""
        owner_key = _owner_key(owner)

        def load(connection: Connection) -> Conversation:
            row = connection.execute(
                select(conversations)
                .where(conversations.c.id == _checked_id(conversation_id))
                .where(conversations.c.owner == owner_key)
            ).first()
            if row is None:
                raise ConversationNotFound(conversation_id)
            bodies = connection.execute(
                select(messages.c.body)
                .where(messages.c.conversation_id == conversation_id)
                .order_by(messages.c.position)
            ).scalars()
            loaded = [json.loads(body) for body in bodies]
            return Conversation(Summary(row.id, row.title, row.updated_at, row.message_count), loaded)

        return await self._database.read(load)

    async def rename(self, owner: str, conversation_id: str, title: str) -> None:
        statement = (
            update(conversations)
            .where(conversations.c.id == _checked_id(conversation_id))
            .where(conversations.c.owner == _owner_key(owner))
            .values(title=_title(title))
        )
        if await self._database.write(lambda connection: connection.execute(statement).rowcount) == 0:
            raise ConversationNotFound(conversation_id)

    async def delete(self, owner: str, conversation_id: str) -> bool:
        """Remove the conversation and its messages; False if the owner had no such conversation."""
        owned = (
            select(conversations.c.id)
            .where(conversations.c.id == _checked_id(conversation_id))
            .where(conversations.c.owner == _owner_key(owner))
        )

        def delete_owned(connection: Connection) -> bool:
            found = connection.execute(owned).scalar()
            if found is None:
                return False
            _delete(connection, [found])
            return True

        return await self._database.write(delete_owned)

    async def delete_all(self, owner: str) -> int:
        """Remove every conversation of the owner; how many there were."""
        owner_key = _owner_key(owner)
        owned = select(conversations.c.id).where(conversations.c.owner == owner_key)

        def delete_all(connection: Connection) -> int:
            connection.execute(delete(messages).where(messages.c.conversation_id.in_(owned)))
            return connection.execute(
                delete(conversations).where(conversations.c.owner == owner_key)
            ).rowcount

        return await self._database.write(delete_all)

    async def purge_expired(self, now: float | None = None) -> int:
        """Remove every conversation (any owner's) untouched for `retention_days`; how many."""
        cutoff = (time.time() if now is None else now) - self.limits.retention_days * 86_400
        expired = select(conversations.c.id).where(conversations.c.updated_at < cutoff)

        def purge(connection: Connection) -> int:
            connection.execute(delete(messages).where(messages.c.conversation_id.in_(expired)))
            return connection.execute(
                delete(conversations).where(conversations.c.updated_at < cutoff)
            ).rowcount

        return await self._database.write(purge)

    def _make_room(self, connection: Connection, owner_key: str, keep: str) -> int:
        """Remove the owner's oldest conversations (not `keep`) until both limits hold; how many."""
        count, total = connection.execute(_OWNERS_TOTALS, {"owner": owner_key}).one()
        if count <= self.limits.conversations and total <= self.limits.bytes:
            return 0
        oldest = connection.execute(
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
        _delete(connection, doomed)
        return len(doomed)


# The statements of every save, built once: building one (and its cache key) cost more than running it.
_NEW_CONVERSATION = conversations.insert()
_NEW_MESSAGES = messages.insert()
_OWNED_FOR_UPDATE = (
    select(conversations.c.message_count, conversations.c.bytes)
    .where(conversations.c.id == bindparam("id"))
    .where(conversations.c.owner == bindparam("owner"))
    .with_for_update()
)
_APPENDED = (
    update(conversations)
    .where(conversations.c.id == bindparam("appended_to"))
    .values(updated_at=bindparam("now"), message_count=bindparam("count"), bytes=bindparam("size"))
)
_OWNERS_TOTALS = select(func.count(), func.coalesce(func.sum(conversations.c.bytes), 0)).where(
    conversations.c.owner == bindparam("owner")
)


async def _migrated_unless_locked(database: Database) -> bool:
    """The schema brought up to date; False if SQLite said the file is locked (see `OPEN_RETRY_PAUSES_S`)."""
    try:
        await database.write(migrate)
    except StoreUnavailable as error:
        if _sqlite_locked(error):
            return False
        raise
    return True


OPEN_RETRY_PAUSES_S = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6)
"""Two processes opening a new SQLite file at once: the one that does not switch it to WAL first gets
"database is locked" at once (SQLite's busy timeout does not cover that lock), so it tries again."""


def _sqlite_locked(error: StoreUnavailable) -> bool:
    cause = error.__cause__
    return isinstance(cause, OperationalError) and "database is locked" in str(cause)


def _bodies(new_messages: Sequence[Mapping[str, Any]]) -> list[tuple[str, int]]:
    """Each message as the JSON the store keeps, with its size in bytes."""
    bodies = [json.dumps(message, ensure_ascii=False, separators=(",", ":")) for message in new_messages]
    return [(body, len(body.encode())) for body in bodies]


def _insert(connection: Connection, conversation_id: str, start: int, bodies: list[tuple[str, int]]) -> None:
    """The messages' rows, from position `start` on."""
    connection.execute(
        _NEW_MESSAGES,
        [
            {"conversation_id": conversation_id, "position": start + i, "body": body, "bytes": size}
            for i, (body, size) in enumerate(bodies)
        ],
    )


def _cut(connection: Connection, conversation_id: str, at: int) -> int:
    """Delete the conversation's messages from position `at` on; their bytes."""
    after = (messages.c.conversation_id == conversation_id) & (messages.c.position >= at)
    removed = connection.execute(
        select(func.coalesce(func.sum(messages.c.bytes), 0)).where(after)
    ).scalar_one()
    connection.execute(delete(messages).where(after))
    return removed


def _delete(connection: Connection, ids: list[str]) -> None:
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        connection.execute(delete(messages).where(messages.c.conversation_id.in_(chunk)))
        connection.execute(delete(conversations).where(conversations.c.id.in_(chunk)))


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
