"""The drain of one process, in the event loop: grace, cut, closers."""

import asyncio
import re
from pathlib import Path

import gradio

import ui
from ui.lifecycle import Lifecycle


async def a_turn(lifecycle: Lifecycle, seconds: float) -> str:
    """A turn that runs `seconds` unless its stop is set first; how it ended."""
    stop = asyncio.Event()
    with lifecycle.turn(stop):
        try:
            await asyncio.wait_for(stop.wait(), seconds)
        except TimeoutError:
            return "finished"
        return "cut"


async def test_turns_that_end_within_the_grace_are_not_cut_and_closers_run_after_them():
    lifecycle, closed = Lifecycle(grace_s=5), []

    async def close() -> None:
        closed.append(lifecycle.running)

    lifecycle.on_shutdown(close)
    turns = [asyncio.ensure_future(a_turn(lifecycle, 0.1)) for _ in range(3)]
    await asyncio.sleep(0)
    assert await lifecycle.drain() == 0
    assert [await turn for turn in turns] == ["finished"] * 3
    assert closed == [0]


async def test_turns_past_the_grace_are_cut_and_a_new_one_is_cut_at_once():
    lifecycle = Lifecycle(grace_s=0.1)
    turns = [asyncio.ensure_future(a_turn(lifecycle, 30)) for _ in range(2)]
    await asyncio.sleep(0)
    assert await asyncio.wait_for(lifecycle.drain(), 5) == 2
    assert lifecycle.draining and lifecycle.cutting
    assert [await turn for turn in turns] == ["cut", "cut"]
    assert await a_turn(lifecycle, 30) == "cut"


async def test_a_second_signal_ends_the_grace_at_once():
    lifecycle = Lifecycle(grace_s=60)
    turn = asyncio.ensure_future(a_turn(lifecycle, 60))
    await asyncio.sleep(0)
    drain = asyncio.ensure_future(lifecycle.drain())
    await asyncio.sleep(0.05)
    lifecycle.end_grace()
    assert await asyncio.wait_for(drain, 5) == 1
    assert await turn == "cut"


async def test_a_failing_closer_does_not_keep_the_others_from_running():
    lifecycle, closed = Lifecycle(grace_s=0), []

    async def broken() -> None:
        raise RuntimeError("store gone")

    async def fine() -> None:
        closed.append("fine")

    lifecycle.on_shutdown(broken)
    lifecycle.on_shutdown(fine)
    await lifecycle.drain()
    assert closed == ["fine"]


def test_the_page_script_watches_for_the_text_gradio_shows_when_the_connection_is_lost():
    """ui/connection.js keys on Gradio's own words; a Gradio that changes them breaks it here first."""
    script = (Path(ui.__file__).parent / "connection.js").read_text()
    watched = re.search(r'const LOST_TEXT = "([^"]+)"', script)[1]
    assets = Path(gradio.__file__).parent / "templates" / "frontend" / "assets"
    shown = [path.name for path in assets.glob("Blocks-*.js") if watched in path.read_text()]
    assert shown, f"no Gradio Blocks script shows {watched!r}"
