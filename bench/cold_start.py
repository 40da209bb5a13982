"""Cold start: `python app.py` until its first page is served, next to a bare Gradio hello world.

    python -m bench.cold_start [--runs 5]

Each run starts a fresh process, waits for Gradio's "Running on local URL" line
and then for the page itself (HTTP 200 on `/`); runs of the two apps alternate.
"""

from __future__ import annotations

import argparse
import statistics

from bench.report import machine_line, table
from support.calibration import HELLO_WORLD, calibrate, start_once

APPS = {
    "python app.py": ["app.py"],
    "bare Gradio hello world": HELLO_WORLD,
}


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
    print(calibrate().line())
    print(table(["app", "URL printed s", "first page s", "fastest s", "vs hello world"], rows))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    main(parser.parse_args().runs)
