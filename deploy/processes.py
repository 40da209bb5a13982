"""Starting a command as its own process group, reading what it prints, and stopping the whole group.

`python -m deploy.workers` runs its app workers this way; the tests and benchmarks
(through `support.servers`) start every app they serve this way too.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import re
import selectors
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import psutil

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LOCAL_URL = r"Running on local URL:\s+(http://\S+?)/?\n"


class ServedProcess:
    """An app started as its own process group, with everything it printed so far.

    A group, because what we start may start more: `gradio app.py` runs `app.py`
    as a child that survives a SIGTERM to its parent, and the README's setup
    command runs pip and then python. `stop` ends the whole group.
    """

    started_groups: ClassVar[set[int]] = set()
    """Every process group started here, for a check that none outlives its user."""

    def __init__(self, command: Sequence[str], env: dict[str, str], cwd: Path = PROJECT_ROOT) -> None:
        self.process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.group = self.process.pid  # a new session's leader: its process group id is its pid
        self.started_groups.add(self.group)
        self.output = ""
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def wait_for(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        """Read the process's output until `pattern` appears (or fail with what it printed)."""
        deadline = time.monotonic() + timeout
        stdout = self.process.stdout.fileno()
        with selectors.DefaultSelector() as selector:
            selector.register(stdout, selectors.EVENT_READ)
            while not (match := re.search(pattern, self.output)):
                remaining = deadline - time.monotonic()
                # Unbuffered reads: a buffered readline can hold printed lines the selector never sees.
                chunk = os.read(stdout, 65536) if remaining > 0 and selector.select(remaining) else b""
                if not chunk:  # the time is up, or the output ended
                    raise AssertionError(f"{pattern!r} not printed; output so far:\n{self.output}")
                self.output += self._decoder.decode(chunk)
        return match

    def wait_for_url(self, timeout: float = 60) -> str:
        return self.wait_for(LOCAL_URL, timeout)[1]

    def cpu_seconds(self) -> float:
        times = psutil.Process(self.process.pid).cpu_times()
        return times.user + times.system

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM to the whole group; SIGKILL to whatever is left after `timeout` seconds."""
        _signal_group(self.group, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while group_members(self.group) and time.monotonic() < deadline:
            time.sleep(0.05)
        _signal_group(self.group, signal.SIGKILL)
        self.process.wait()
        if self.process.stdout:
            self.process.stdout.close()


def group_members(group: int) -> list[psutil.Process]:
    """The live (not zombie) processes in a process group."""
    members = []
    for process in psutil.process_iter():
        try:
            if os.getpgid(process.pid) == group and process.status() != psutil.STATUS_ZOMBIE:
                members.append(process)
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return members


def _signal_group(group: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # the group is already gone
        os.killpg(group, signum)
