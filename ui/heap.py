"""Python's garbage collector set for a long-running server instead of a short script.

With its defaults, the collector scans every object of the process again and
again: a full collection walks all that start-up built (Gradio, LangChain, the
page), hundreds of thousands of objects that live as long as the process, and a
young collection runs every 700 allocations, which a streamed turn makes by the
thousand. Under many concurrent chats that was a third of the server's CPU, and
each full collection held the event loop, and so every stream, for a few hundred
milliseconds. After start-up, `settle_after_start` collects once, freezes what
is left (frozen objects are never scanned again; they are start-up's, not freed
anyway), and lets young objects pile up `YOUNG_OBJECTS` deep before a young
collection, so that the many short-lived objects of a turn are freed in fewer,
larger batches. Garbage is still collected: cycles made later are found as
before, only in larger batches.
"""

from __future__ import annotations

import gc

YOUNG_OBJECTS = 10_000
"""Allocations (net of frees) between two young collections (Python's default: 700)."""


def settle_after_start() -> None:
    """Collect once, keep what start-up built out of every later collection, and collect young
    objects in larger batches. Call once the app is built and serving."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_OBJECTS, middle, old)
