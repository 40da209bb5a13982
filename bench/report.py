"""Printing benchmark figures: a plain-text table and a line naming the machine."""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Sequence

import psutil


def machine_line() -> str:
    memory_gib = psutil.virtual_memory().total / 2**30
    return (
        f"machine: {os.cpu_count()} cores, {memory_gib:.0f} GiB, {platform.machine()}, "
        f"Python {sys.version.split()[0]}, {platform.system()} {platform.release()}"
    )


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [list(map(str, header)), *([str(c) for c in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
