"""Starting an app as its own process and waiting until it serves (shared by benchmarks and tests)."""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import psutil

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LOCAL_URL = r"Running on local URL:\s+(http://\S+?)/?\n"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServedProcess:
    """An app started as its own process, with everything it printed so far."""

    def __init__(self, command: Sequence[str], env: dict[str, str], cwd: Path = PROJECT_ROOT) -> None:
        self.process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group, so that `stop` reaches its children too
        )
        self.output = ""

    def wait_for(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        """Read the process's output until `pattern` appears (or fail with what it printed)."""
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            while not (match := re.search(pattern, self.output)):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.process.poll() is not None:
                    raise AssertionError(f"{pattern!r} not printed; output so far:\n{self.output}")
                if selector.select(remaining):
                    self.output += self.process.stdout.readline()
        return match

    def wait_for_url(self, timeout: float = 60) -> str:
        return self.wait_for(LOCAL_URL, timeout)[1]

    def cpu_seconds(self) -> float:
        times = psutil.Process(self.process.pid).cpu_times()
        return times.user + times.system

    def stop(self) -> None:
        """Stop the whole process group: `gradio app.py` leaves its `app.py` child running otherwise."""
        self._signal_group(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)
        self._signal_group(signal.SIGKILL)  # whatever is left of the group
        self.process.wait()

    def _signal_group(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)


def app_environment(**overrides: str) -> dict[str, str]:
    """The current environment without any OpenAI, agent or Gradio settings, plus `overrides`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AGENT_", "GRADIO_"))}
    env.update(OPENAI_API_KEY="", AGENT_OFFLINE_TOKEN_DELAY_MS="1", PYTHONUNBUFFERED="1")
    env.update(overrides)
    return env
