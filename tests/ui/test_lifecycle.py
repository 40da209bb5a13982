"""The drain of one process, in the event loop: grace, cut, closers."""

import asyncio
import re
from pathlib import Path

import gradio
import gradio as gr
import httpx
import pytest
from gradio.routes import App

import app
import ui
from agent import ServerSettings, Settings
from ui.lifecycle import RESTARTING, Lifecycle, lifecycle_options


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


def test_every_element_the_page_script_looks_for_is_in_the_app(tmp_path):
    """ui/connection.js finds the chat, its box, the saved list and the hidden reopen controls by id."""
    script = (Path(ui.__file__).parent / "connection.js").read_text()
    looked_for = set(re.findall(r"#([a-z][a-z-]+)", script)) - {"connection-lost"}  # the script's own line
    saved = app.saved_conversations(ServerSettings(data_dir=tmp_path))
    demo = app.create_app(Settings(), guard=ServerSettings(), saved=saved)
    elem_ids = {block.elem_id for block in demo.blocks.values()}
    assert {"open-conversation", "reopen-conversation", "reopen-conversation-button"} <= looked_for
    assert looked_for <= elem_ids, looked_for - elem_ids


@pytest.fixture
def draining_app():
    """A small Gradio app behind the health check, its lifecycle draining; a client of it."""
    with gr.Blocks() as demo:
        box = gr.Textbox()
        box.submit(str.upper, box, box)
    demo.queue()
    lifecycle = Lifecycle()
    app = App.create_app(demo, app_kwargs=lifecycle_options({}, lifecycle)["app_kwargs"])
    app.state_holder["served-page"]  # a page session this process keeps state for
    lifecycle.draining = True
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app")


async def test_a_draining_process_sends_new_sessions_away_with_a_503_and_keeps_serving_its_own(draining_app):
    async with draining_app as client:
        assert (await client.get("/healthz")).status_code == 503
        page_load = await client.get("/")
        assert page_load.status_code == 503 and page_load.json() == {"detail": RESTARTING}
        new_session = {"data": [""], "fn_index": 0, "session_hash": "new-page", "trigger_id": None}
        assert (await client.post("/gradio_api/queue/join", json=new_session)).status_code == 503
        assert (await client.post("/gradio_api/queue/join", content=b"not json")).status_code == 503

        own_session = {**new_session, "session_hash": "served-page"}
        joined = await client.post("/gradio_api/queue/join", json=own_session)  # read, then given to Gradio
        assert joined.status_code != 503 and "event_id" in joined.json(), joined.text
        stream = await client.get("/gradio_api/queue/data", params={"session_hash": "new-page"})
        assert stream.status_code == 503
        assert (await client.get("/config")).status_code == 200  # the same on every process
