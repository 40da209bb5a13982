"""Starting a command as its own process group, reading what it prints, and stopping the whole group.

`python -m deploy.workers` runs its app workers this way; the tests and benchmarks
(through `support.servers`) start every app they serve this way too.
"""

from __future__ import annotations

import codecs
import contextlib
import ctypes
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import psutil

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LOCAL_URL = r"Running on local URL:\s+(http://\S+?)/?\n"
KEPT_OUTPUT_CHARS = 1_000_000
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


class ServedProcess:
    """An app started as its own process group, with everything it printed so far.

    A group, because what we start may start more: `gradio app.py` runs `app.py`
    as a child that survives a SIGTERM to its parent, and the README's setup
    command runs pip and then python. `stop` ends the whole group.
    """

    started_groups: ClassVar[set[int]] = set()
    """Every process group started here, for a check that none outlives its user."""

    def __init__(
        self,
        command: Sequence[str],
        env: dict[str, str],
        cwd: Path = PROJECT_ROOT,
        *,
        echo: str | None = None,
        die_with_parent: bool = False,
    ) -> None:
        """`echo`: also copy each line the process prints to our stdout, after this prefix.
        `die_with_parent`: the kernel sends the process SIGTERM if we die, even by SIGKILL."""
        self.process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=terminate_with_parent if die_with_parent else None,
        )
        self.group = self.process.pid  # a new session's leader: its process group id is its pid
        self.started_groups.add(self.group)
        self.output = ""
        self._ended = False
        self._printed = threading.Condition()
        self._reader = threading.Thread(target=self._read, args=(echo,), daemon=True, name="served-output")
        self._reader.start()

    def _read(self, echo: str | None) -> None:
        """Read everything the process prints, as it prints it: a pipe nobody reads fills up (64 kB),
        and then the process blocks on its next write, log lines included. Keeps the newest
        `KEPT_OUTPUT_CHARS` characters."""
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        stdout = self.process.stdout.fileno()
        at_line_start = True
        while chunk := os.read(stdout, 65536):  # unbuffered: a buffered read could hold lines back
            text = decoder.decode(chunk)
            with self._printed:
                self.output = (self.output + text)[-KEPT_OUTPUT_CHARS:]
                self._printed.notify_all()
            if echo is not None:
                sys.stdout.write(_prefixed(text, echo, at_line_start))
                sys.stdout.flush()
                at_line_start = text.endswith("\n")
        with self._printed:
            self._ended = True
            self._printed.notify_all()

    def wait_for(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        """Wait until `pattern` appears in the output (or fail with what the process printed)."""
        with self._printed:
            self._printed.wait_for(lambda: self._ended or re.search(pattern, self.output), timeout)
            if match := re.search(pattern, self.output):
                return match
            raise AssertionError(f"{pattern!r} not printed; output so far:\n{self.output}")

    def wait_for_url(self, timeout: float = 60) -> str:
        return self.wait_for(LOCAL_URL, timeout)[1]

    def cpu_seconds(self) -> float:
        times = psutil.Process(self.process.pid).cpu_times()
        return times.user + times.system

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM to the whole group; SIGKILL to whatever is left after `timeout` seconds."""
        _signal_group(self.group, signal.SIGTERM)
        self.wait_ended(timeout)

    def terminate(self) -> None:
        """SIGTERM to the process alone: an app drains, then closes what it started itself."""
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGTERM)

    def wait_ended(self, timeout: float) -> None:
        """Wait up to `timeout` seconds for the whole group to end, then SIGKILL what is left."""
        deadline = time.monotonic() + timeout
        while group_members(self.group) and time.monotonic() < deadline:
            time.sleep(0.05)
        _signal_group(self.group, signal.SIGKILL)
        self.process.wait()
        self._reader.join(timeout)
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


def _prefixed(text: str, prefix: str, at_line_start: bool) -> str:
    """`text` with `prefix` before each line that starts in it (a chunk may end mid-line)."""
    lines = text.splitlines(keepends=True)
    return "".join(prefix + line if at_line_start or n else line for n, line in enumerate(lines))


def terminate_with_parent() -> None:
    """In a child before it runs its program: SIGTERM when the parent process dies (Linux)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _signal_group(group: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # the group is already gone
        os.killpg(group, signum)
