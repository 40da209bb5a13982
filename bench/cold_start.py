"""Cold start: `python app.py` until its first page is served, next to a bare Gradio hello world.

    python -m bench.cold_start [--runs 5]

Each run starts a fresh process, waits for Gradio's "Running on local URL" line
and then for the page itself (HTTP 200 on `/`); runs of the two apps alternate.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import httpx

from bench.report import machine_line, table
from deploy.processes import ServedProcess
from support.servers import app_environment, free_port

APPS = {
    "python app.py": ["app.py"],
    "bare Gradio hello world": ["-m", "bench.hello_world"],
}


def start_once(module: list[str]) -> tuple[float, float]:
    """Seconds until the URL was printed, and until the first page was served."""
    port = free_port()
    started = time.perf_counter()
    server = ServedProcess([sys.executable, *module, "--port", str(port)], app_environment())
    try:
        url = server.wait_for_url()
        listening = time.perf_counter() - started
        httpx.get(url, timeout=30).raise_for_status()
        return listening, time.perf_counter() - started
    finally:
        server.stop()


def main(runs: int) -> None:
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in APPS}
    for module in APPS.values():
        start_once(module)  # warm the disk cache: every run after this one is comparable
    for _ in range(runs):
        for name, module in APPS.items():
            results[name].append(start_once(module))
    baseline = statistics.median(served for _, served in results["bare Gradio hello world"])
    rows = []
    for name, times in results.items():
        served = statistics.median(s for _, s in times)
        rows.append(
            [
                name,
                f"{statistics.median(t for t, _ in times):.2f}",
                f"{served:.2f}",
                f"{min(s for _, s in times):.2f}",
                f"{served / baseline:.2f}×",
            ]
        )
    print(f"Cold start, median of {runs} runs each")
    print(machine_line())
    print(table(["app", "URL printed s", "first page s", "fastest s", "vs hello world"], rows))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    main(parser.parse_args().runs)
