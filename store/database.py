"""How the store's work reaches its database: a unit of work is a plain function of a SQLAlchemy
`Connection`, run in one transaction, and the store awaits its result.

SQLite (`SQLiteDatabase`) runs each unit of work whole on a thread of its own: the writes on one
writer thread, so one process's writers take turns there and never meet SQLite's busy wait
(which sleeps and polls), and the reads on a few reader threads beside it (WAL lets them run
during a write). A save is one hand-over to that thread and one back, however many statements it
runs; an async driver would hand over every statement, cursor and fetch on its own. The writes
that queue while one transaction is being committed (a burst of turns ending together) go in the
next one together, each in a savepoint of its own (`SQLiteDatabase.write`).

PostgreSQL (`AsyncDatabase`) runs the same function on asyncpg through SQLAlchemy's
`AsyncConnection.run_sync`: its server does the waiting, and many processes write at once.

Whatever the database refuses or cannot be reached for comes out as `StoreUnavailable`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol, TypeVar

import sqlalchemy.dialects.sqlite.pysqlite  # noqa: F401  (see below)
from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from store.errors import StoreUnavailable

# SQLAlchemy imports a URL's dialect when the first engine for it is made: the SQLite one (the
# default store) is imported above with the app, so that it does not happen on the server's event
# loop, inside the first request that opens the store (~40 ms).

T = TypeVar("T")
Work = Callable[[Connection], T]
_Queued = tuple[Callable[[Connection], Any], "asyncio.Future[Any]"]
_Outcome = tuple[Any, BaseException | None]
WRITE_OPTION = "conversation_store_writes"
SQLITE_READERS = 4
CLOSED = "the conversation store is closed"
SQLITE_BUSY_TIMEOUT_MS = 10_000
"""How long a writer waits for another process's write lock (this process's writers take turns
on their one writer thread, so only another process's ever makes one wait)."""


class Database(Protocol):
    """Where the store's units of work run; see the module docstring."""

    dialect: str

    async def write(self, work: Work[T]) -> T:
        """`work` in a write transaction: committed if it returns, rolled back if it raises."""
        ...

    async def read(self, work: Work[T]) -> T:
        """`work` on a connection of its own, writing nothing."""
        ...

    async def dispose(self) -> None:
        """Close every connection; nothing can run after."""
        ...


def open_database(url: str) -> Database:
    """The database at `url` (sqlite:///… or postgresql+asyncpg://…), not yet connected."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return SQLiteDatabase(parsed.set(drivername="sqlite").render_as_string(hide_password=False))
    return AsyncDatabase(url)


class SQLiteDatabase:
    """SQLite through the standard library's driver, each unit of work whole on a store thread,
    the writes that wait together committed together."""

    dialect = "sqlite"

    def __init__(self, url: str) -> None:
        Path(make_url(url).database or "").parent.mkdir(parents=True, exist_ok=True)
        self._engine: Engine = create_engine(
            url,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
            pool_size=1 + SQLITE_READERS,
        )
        event.listen(self._engine, "connect", _sqlite_pragmas)
        event.listen(self._engine, "begin", _sqlite_begin)
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="store-write")
        self._readers = ThreadPoolExecutor(SQLITE_READERS, thread_name_prefix="store-read")
        self._queue: list[_Queued] = []
        self._committing: asyncio.Future[list[_Outcome]] | None = None
        self._closed = False

    async def write(self, work: Work[T]) -> T:
        """`work` in the next transaction the writer thread commits. Writes that come while one
        is being committed wait together and go in one transaction, each in a savepoint of its
        own: one that raises is rolled back alone and gets its own error, the others commit. A
        caller that stops waiting before its work was taken up (cancelled, timed out) takes it
        out of the queue: it never runs."""
        _refuse_if(self._closed)
        queued: _Queued = (work, asyncio.get_running_loop().create_future())
        self._queue.append(queued)
        if self._committing is None:
            self._commit_queue()
        try:
            return await queued[1]
        except (SQLAlchemyError, OSError) as error:
            raise StoreUnavailable(reason(error)) from error

    async def read(self, work: Work[T]) -> T:
        _refuse_if(self._closed)
        try:
            return await asyncio.get_running_loop().run_in_executor(self._readers, self._read, work)
        except (SQLAlchemyError, OSError) as error:
            raise StoreUnavailable(reason(error)) from error

    async def dispose(self) -> None:
        """After the transaction being committed, if any; the writes still waiting are refused."""
        self._closed = True
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._writer, self._engine.dispose)
        self._writer.shutdown(wait=False)
        self._readers.shutdown(wait=False)

    def _commit_queue(self) -> None:
        """Hand what waits to the writer thread as one transaction (on the event loop's thread)."""
        batch = [queued for queued in self._queue if not queued[1].cancelled()]
        self._queue = []
        if not batch or self._closed:
            for _work, future in batch:
                future.set_exception(StoreUnavailable(CLOSED))
            self._committing = None
            return
        self._committing = asyncio.get_running_loop().run_in_executor(
            self._writer, self._written_together, [work for work, _future in batch]
        )
        self._committing.add_done_callback(lambda committed: self._settle(batch, committed))

    def _settle(self, batch: list[_Queued], committed: asyncio.Future[list[_Outcome]]) -> None:
        """Give each write of `batch` its outcome, then commit what queued meanwhile."""
        if committed.cancelled():  # only the loop's own end does this: nothing can wait on them
            for _work, future in batch:
                future.cancel()
            return
        failed = committed.exception()
        outcomes: list[_Outcome] = [(None, failed)] * len(batch) if failed else committed.result()
        for (_work, future), (result, error) in zip(batch, outcomes, strict=True):
            if future.done():
                continue
            if error is None:
                future.set_result(result)
            else:
                future.set_exception(error)
        self._commit_queue()

    def _written_together(self, works: list[Work[Any]]) -> list[_Outcome]:
        """Each of `works` in a savepoint of one write transaction; what each returned or raised.
        If the transaction itself fails (it cannot begin or commit), it raises for them all."""
        outcomes: list[_Outcome] = []
        with self._engine.connect() as connection:
            connection = connection.execution_options(**{WRITE_OPTION: True})
            with connection.begin():
                for work in works:
                    connection.exec_driver_sql("SAVEPOINT one_write")
                    try:
                        outcomes.append((work(connection), None))
                    except Exception as error:
                        connection.exec_driver_sql("ROLLBACK TO one_write")
                        outcomes.append((None, error))
                    connection.exec_driver_sql("RELEASE one_write")
        return outcomes

    def _read(self, work: Work[T]) -> T:
        with self._engine.connect() as connection:
            return work(connection)


class AsyncDatabase:
    """PostgreSQL through asyncpg; each unit of work runs through `AsyncConnection.run_sync`."""

    def __init__(self, url: str) -> None:
        self._engine: AsyncEngine = create_async_engine(
            url,
            pool_pre_ping=True,
            pool_size=5,
            max_overflow=10,
            pool_timeout=10,
            connect_args={"timeout": 10},
        )
        self.dialect = self._engine.dialect.name
        self._closed = False

    async def write(self, work: Work[T]) -> T:
        _refuse_if(self._closed)
        try:
            async with self._engine.connect() as connection, connection.begin():
                return await connection.run_sync(work)
        except (SQLAlchemyError, OSError) as error:
            raise StoreUnavailable(reason(error)) from error

    async def read(self, work: Work[T]) -> T:
        _refuse_if(self._closed)
        try:
            async with self._engine.connect() as connection:
                return await connection.run_sync(work)
        except (SQLAlchemyError, OSError) as error:
            raise StoreUnavailable(reason(error)) from error

    async def dispose(self) -> None:
        self._closed = True
        await self._engine.dispose()


def _refuse_if(closed: bool) -> None:
    if closed:
        raise StoreUnavailable(CLOSED)


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


def reason(error: BaseException) -> str:
    """The error's kind and first line, without the SQL and parameters SQLAlchemy appends."""
    original = getattr(error, "orig", None) or error
    first = str(original).splitlines()[0] if str(original) else ""
    return f"{type(original).__name__}: {first}"[:200]
