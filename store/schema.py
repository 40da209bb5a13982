"""The store's tables and the migrations that build them, one numbered step at a time.

`migrate` runs when a store opens: it reads the version the database is at, runs
each later step in order, and records the new version, all in one transaction.
On PostgreSQL an advisory lock makes workers that start together take turns, so
each step runs once.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import (
    Column,
    Connection,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    select,
    text,
)

metadata = MetaData()

schema_version = Table("schema_version", metadata, Column("version", Integer, nullable=False))

conversations = Table(
    "conversations",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("owner", String(64), nullable=False),
    Column("title", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("message_count", Integer, nullable=False, default=0),
    Column("bytes", Integer, nullable=False, default=0),
    Index("conversations_by_owner_newest", "owner", "updated_at", "id"),
    Index("conversations_by_age", "updated_at"),
)

messages = Table(
    "messages",
    metadata,
    Column(
        "conversation_id",
        String(32),
        ForeignKey("conversations.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("position", Integer, primary_key=True),
    Column("body", Text, nullable=False),
    Column("bytes", Integer, nullable=False),
)

POSTGRES_MIGRATION_LOCK = 0x5F_C0_A7_19  # any constant: the advisory lock the migrations take


def _create_tables(connection: Connection) -> None:
    metadata.create_all(connection, tables=[conversations, messages], checkfirst=True)


MIGRATIONS: list[Callable[[Connection], None]] = [_create_tables]
"""Step n brings the schema from version n to n + 1; new steps go at the end, old ones never change."""

LATEST = len(MIGRATIONS)


def migrate(connection: Connection) -> int:
    """Bring the schema to `LATEST` inside the caller's transaction; the version it was at."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": POSTGRES_MIGRATION_LOCK})
    schema_version.create(connection, checkfirst=True)
    found = connection.execute(select(schema_version.c.version)).scalar()
    current = found or 0
    if current > LATEST:
        raise RuntimeError(
            f"the conversation store is at schema version {current}, newer than this app's {LATEST}: "
            "upgrade the app, or point it at another database"
        )
    for step in MIGRATIONS[current:]:
        step(connection)
    if found is None:
        connection.execute(schema_version.insert().values(version=LATEST))
    elif current != LATEST:
        connection.execute(schema_version.update().values(version=LATEST))
    return current
