"""A throwaway PostgreSQL cluster for tests and benchmarks: a temporary directory, a free port of
127.0.0.1, stopped and removed after.

Debian's server binaries live in /usr/lib/postgresql/<version>/bin. PostgreSQL refuses to run
as root: when we are root, the cluster runs as the `postgres` user.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from support.servers import free_port

SERVER_BINARIES = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3]))


def available() -> bool:
    """Whether a PostgreSQL server can be started here."""
    return bool(SERVER_BINARIES) and (os.geteuid() != 0 or shutil.which("runuser") is not None)


def require_postgres() -> None:
    """Skip the test where PostgreSQL is not installed; fail instead when REQUIRE_POSTGRES=1 (CI)."""
    import pytest

    if not available():
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            pytest.fail("PostgreSQL is required here (REQUIRE_POSTGRES=1) but not installed")
        pytest.skip("PostgreSQL is not installed")


class PostgresCluster:
    """A running cluster; `new_database()` gives each user an empty database of its own."""

    def __init__(self, directory: Path, port: int) -> None:
        self.directory = directory
        self.port = port

    def url(self, database: str = "postgres") -> str:
        """The `postgresql://` URL the app reads from AGENT_DATABASE_URL."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A new empty database; its URL."""
        name = f"test_{secrets.token_hex(6)}"
        _run([_binary("psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-q",
              "-c", f"CREATE DATABASE {name}"])  # fmt: skip
        return self.url(name)

    def stop(self) -> None:
        """Stop the server now (what a test does to see the store go down)."""
        _run([_binary("pg_ctl"), "stop", "-D", str(self.directory / "data"), "-m", "immediate", "-w"],
             check=False)  # fmt: skip

    def start(self) -> None:
        log = self.directory / "server.log"
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.directory} -c fsync=off"
        _run([_binary("pg_ctl"), "start", "-D", str(self.directory / "data"), "-l", str(log), "-w",
              "-o", options])  # fmt: skip


@contextlib.contextmanager
def postgres_cluster() -> Iterator[PostgresCluster]:
    """Start a cluster (trust authentication on 127.0.0.1 only) and remove it after."""
    directory = Path(tempfile.mkdtemp(prefix="agent-pg-"))
    try:
        if os.geteuid() == 0:
            shutil.chown(directory, "postgres", "postgres")
        _run([_binary("initdb"), "-D", str(directory / "data"), "-U", "postgres", "--auth=trust",
              "-E", "UTF8", "--no-sync"])  # fmt: skip
        cluster = PostgresCluster(directory, free_port())
        cluster.start()
        try:
            yield cluster
        finally:
            cluster.stop()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _binary(name: str) -> str:
    if not SERVER_BINARIES:
        raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
    return str(SERVER_BINARIES[-1].parent / name)


def _run(command: list[str], check: bool = True) -> None:
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    result = subprocess.run(
        [*as_postgres, *command], capture_output=True, text=True, cwd="/", timeout=60, check=False
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:2])} failed: {result.stdout}{result.stderr}")
