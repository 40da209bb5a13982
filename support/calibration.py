"""How fast this machine is right now, printed next to every benchmark's figures.

Machines of our kind differ (`python app.py` starts in 2.9 s on one, 7.4 s on
another), and the machine may be shared: a figure alone cannot tell a slow or
busy machine from a regression. Two fixed workloads say which it is: a plain
CPython loop of 10 M additions (one core's speed) and the start of a bare Gradio
hello world until it serves its page (imports, disk, Gradio's own start-up).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from dataclasses import dataclass

import httpx

from deploy.processes import ServedProcess
from support.servers import app_environment, free_port

LOOP_ADDITIONS = 10_000_000
HELLO_WORLD = ["-m", "support.hello_world"]


def cpython_loop_s(additions: int = LOOP_ADDITIONS) -> float:
    """Seconds this process takes to add up `additions` integers in a plain loop."""
    started = time.perf_counter()
    total = 0
    for number in range(additions):
        total += number
    elapsed = time.perf_counter() - started
    assert total == additions * (additions - 1) // 2
    return elapsed


def start_once(module: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Start `python *module --port N` as its own process: seconds until it printed its URL,
    and until its first page was served. The process is stopped before this returns."""
    port = free_port()
    started = time.perf_counter()
    server = ServedProcess([sys.executable, *module, "--port", str(port)], env or app_environment())
    try:
        url = server.wait_for_url()
        listening = time.perf_counter() - started
        httpx.get(url, timeout=30).raise_for_status()
        return listening, time.perf_counter() - started
    finally:
        server.stop()


@dataclass(frozen=True)
class Calibration:
    """The calibration figures of one moment."""

    loop_s: float
    hello_world_s: float
    load_average: float

    def line(self) -> str:
        return (
            f"calibration: CPython loop of {LOOP_ADDITIONS / 1e6:.0f} M additions {self.loop_s:.2f} s, "
            f"bare Gradio hello world first page {self.hello_world_s:.2f} s, "
            f"load average {self.load_average:.2f}"
        )


def calibrate(runs: int = 3) -> Calibration:
    """The fastest of `runs` loops and the median of `runs` hello-world starts: on a shared
    machine the fastest loop is the machine, the median start its usual state."""
    load = os.getloadavg()[0]
    loop = min(cpython_loop_s() for _ in range(runs))
    hello = statistics.median(start_once(HELLO_WORLD)[1] for _ in range(runs))
    return Calibration(loop, hello, load)
