"""The contract with Gradio's private parts (`ui.gradio_seams`): the app, built as `python app.py`
builds it, wired the way each seam must leave it. A Gradio upgrade that breaks a seam fails here."""

import asyncio
import copy
import importlib.util
import inspect
import re
import sys

import fastapi.dependencies.utils as fastapi_dependencies
import gradio as gr
import httpx
import orjson
import pytest
import uvicorn
from gradio.queueing import Event
from gradio.routes import App
from gradio.state_holder import StateHolder
from gradio.utils import diff
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

import app
from agent import ServerSettings, Settings
from support.servers import free_port
from ui import gradio_seams as seams
from ui.guard import guard_options, is_busy, turn_functions, turns_of
from ui.live_turn import LiveTurnChatInterface


@pytest.fixture(scope="module")
def built() -> tuple[gr.Blocks, LiveTurnChatInterface]:
    """The app's Blocks and its chat interface."""
    demo = app.create_app(Settings(), concurrency=4)
    return demo, chat_of(demo)


def chat_of(demo: gr.Blocks) -> LiveTurnChatInterface:
    """The app's chat interface, found through a step bound to it."""
    return next(
        fn.fn.__self__
        for fn in demo.fns.values()
        if isinstance(getattr(fn.fn, "__self__", None), LiveTurnChatInterface)
    )


def dependencies(demo: gr.Blocks) -> list[dict]:
    """The event graph as the page receives it."""
    return demo.get_config_file()["dependencies"]


def started_by(demo: gr.Blocks, block: gr.blocks.Block, event: str) -> list[dict]:
    return [d for d in dependencies(demo) if [block._id, event] in [list(t) for t in d["targets"]]]


def test_gradio_still_has_the_private_methods_our_subclasses_override_or_call():
    missing = [
        f"{cls.__name__}.{name}"
        for cls, names in seams.PRIVATE_HOOKS.items()
        for name in names
        if not callable(getattr(cls, name, None))
    ]
    assert not missing
    for name in ("_clear_and_save_textbox", "_stream_fn"):
        ours = inspect.signature(getattr(LiveTurnChatInterface, name)).parameters
        theirs = inspect.signature(getattr(gr.ChatInterface, name)).parameters
        assert list(theirs)[:2] == list(ours)[:2], name


def test_the_live_turn_is_drawn_right_under_the_conversation(built):
    _, chat = built
    siblings = chat.chatbot.parent.children
    assert siblings[siblings.index(chat.chatbot) + 1] is chat.live


def test_a_refused_question_runs_nothing_after_the_textbox(built):
    demo, chat = built
    [first] = started_by(demo, chat.textbox, "submit")
    followups = [d for d in dependencies(demo) if d["trigger_after"] == first["id"]]
    assert followups and all(d["trigger_only_on_success"] for d in followups)


def test_every_turn_the_page_runs_is_post_processed_by_the_app_not_by_gradio(built):
    demo, chat = built
    writing_the_live_turn = [fn for fn in demo.fns.values() if chat.live in fn.outputs]
    assert len(writing_the_live_turn) >= 3  # submit, retry, edit (and examples, options)
    assert all(not fn.postprocess for fn in writing_the_live_turn)
    assert set(turn_functions(demo)) >= {fn._id for fn in writing_the_live_turn}


async def test_a_turn_the_page_runs_yields_values_already_post_processed(built):
    demo, chat = built
    turn = next(fn for fn in demo.fns.values() if chat.live in fn.outputs)
    request = gr.Request(request=_starlette_request(), session_hash="s")
    inputs = [copy.deepcopy(component.value) for component in chat.additional_inputs]  # as a new session's
    updates = [update async for update in turn.fn("2 + 2", [], *inputs, request)]
    _response, _history, live, *_panel = updates[0]
    assert live and all(isinstance(message, dict | orjson.Fragment) for message in live)
    _response, history, *_page = updates[-2]
    assert _content(history[0]) == "2 + 2"


def test_chat_interfaces_browser_saving_steps_are_gone_and_their_chains_still_end(built):
    demo, chat = built
    names = [d.get("api_name") or "" for d in dependencies(demo)]
    assert not [n for n in names if n.startswith(("_save_conversation", "_delete_conversation"))]
    submitted = started_by(demo, chat.textbox, "submit")[0]["id"]
    chain, last = [submitted], submitted
    while follower := [d["id"] for d in dependencies(demo) if d.get("trigger_after") == last]:
        chain.append(last := follower[0])
    assert [seams.functions(demo)[i].name for i in chain] == [
        "_clear_and_save_textbox",
        "_append_message_to_history",
        "_submit_fn",
        "<lambda>",
        "<lambda>",
    ]  # fmt: skip: the question, shown, answered, the chat state synchronised, the textbox back


def test_a_step_that_another_follows_is_not_dropped():
    def first() -> None: ...

    with gr.Blocks(), pytest.raises(ValueError, match="a step follows"):
        button = gr.Button()
        button.click(first).then(lambda: None)
        seams.drop_steps(first)


def test_the_chat_api_streams_the_answer_and_the_conversation_only(built):
    demo, chat = built
    [api] = [d for d in dependencies(demo) if d["api_name"] == "chat"]
    assert api["outputs"] == [chat.api_response._id, chat.chatbot_state._id]
    assert [r["label"] for r in demo.get_api_info()["named_endpoints"]["/chat"]["returns"]] == ["Response"]


def test_stop_signals_the_turn_and_cancels_nothing(built):
    demo, chat = built
    stopping = started_by(demo, chat.textbox, "stop")
    assert not any(d["cancels"] for d in dependencies(demo))
    assert not any(fn.is_cancel_function for fn in demo.fns.values())
    assert "stop" in [d["api_name"] for d in stopping]
    assert all(not d["queue"] for d in stopping)


def test_the_guard_counts_each_queued_turn_by_its_client(built):
    demo, _ = built
    turn_id = next(iter(turn_functions(demo)))
    queued = demo._queue.event_ids_to_events
    for n, address in enumerate(["10.0.0.1", "10.0.0.1", "10.0.0.2"]):
        queued[f"e{n}"] = Event(f"s{n}", demo.fns[turn_id], _starlette_request(address), None)
    try:
        assert sorted(fn_id for fn_id, _ in seams.queued_requests(demo)) == [turn_id] * 3
        assert turns_of(demo, [turn_id], "10.0.0.1", trust_proxy_headers=False) == 2
        one = ServerSettings(max_chats_per_client=2)
        assert is_busy(demo, gr.Request(request=_starlette_request("10.0.0.1")), one)
        assert not is_busy(demo, gr.Request(request=_starlette_request("10.0.0.2")), one)
    finally:
        queued.clear()


def test_a_prepared_message_copies_as_itself_and_diffs_as_unchanged(built):
    fragment = orjson.Fragment(b'{"role":"assistant","content":"4"}')
    assert copy.deepcopy([fragment, seams.UNCHANGED]) == [fragment, seams.UNCHANGED]
    assert diff([fragment], [fragment]) == []
    assert orjson.dumps({"data": [seams.UNCHANGED]}) == b'{"data":[{"__type__":"update"}]}'


def test_an_absent_matplotlib_is_marked_absent_once_so_gradio_stops_searching_for_it(monkeypatch):
    monkeypatch.delitem(sys.modules, "matplotlib", raising=False)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    seams.mark_absent_matplotlib_absent()
    with pytest.raises(ImportError):
        import matplotlib  # noqa: F401


def test_an_installed_matplotlib_is_left_to_import_normally(monkeypatch):
    monkeypatch.delitem(sys.modules, "matplotlib", raising=False)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object())
    seams.mark_absent_matplotlib_absent()
    assert "matplotlib" not in sys.modules


def test_reload_mode_is_told_to_watch_the_project_code_only(monkeypatch, tmp_path):
    from gradio import http_server

    (tmp_path / "app.py").write_text("")
    monkeypatch.setattr(http_server, "GRADIO_WATCH_DIRS", [str(tmp_path)])
    seams.watch_only_project_code(tmp_path / "app.py")
    assert [str(tmp_path / d) for d in ("agent", "ui", ".gradio/watch")] == http_server.GRADIO_WATCH_DIRS
    assert (tmp_path / ".gradio" / "watch" / "app.py").resolve() == tmp_path / "app.py"


def _starlette_request(address: str = "127.0.0.1") -> Request:
    return Request({"type": "http", "method": "POST", "path": "/", "headers": [], "client": (address, 1)})


def _content(message: dict | orjson.Fragment) -> str:
    data = orjson.loads(orjson.dumps(message))
    content = data["content"]
    return content if isinstance(content, str) else content[0]["text"]


def test_a_session_builds_no_blocks_config_until_the_whole_set_is_read(built):
    demo, chat = built
    holder = StateHolder()
    holder.blocks = demo  # what `set_blocks` leaves, without making it the app's
    session, gradios = holder["a-session"], seams._SessionStateOnDemand.__base__(demo)
    assert isinstance(session, seams._SessionStateOnDemand)
    assert vars(session).keys() == vars(gradios).keys()
    assert dict.__len__(session.config_values) == 0
    replaced = gr.Textbox("a session's own instance", interactive=False, render=False)
    updated = gr.Textbox("updated", render=False)
    for state in (session, gradios):  # as Gradio records inputs and outputs, and a gr.update(...)
        state._update_value_in_config(chat.textbox._id, "what is 2 + 2?")
        state._update_value_in_config(chat.chatbot._id, [{"role": "user", "content": "2 + 2"}])
        state._update_value_in_config(chat.textbox._id, "")
        state[chat.textbox._id] = replaced
        state._update_config(chat.textbox._id)
        state._update_value_in_config(chat.textbox._id, "typed again")
        state[chat.saved_input._id] = "what is 2 + 2?"  # a State's value
        state._update_value_in_config(chat.chatbot._id, [{"role": "user", "content": "3 + 3"}])
        state[chat.chatbot._id] = updated  # an update with no value: the recorded one is gone
        state._update_config(chat.chatbot._id)
    assert dict.__len__(session.config_values) == 0
    assert session.state_data == gradios.state_data
    assert session._state_ttl.keys() == gradios._state_ttl.keys()
    assert session[chat.textbox._id] is replaced
    assert list(session.components) == list(gradios.components)  # the whole set, as deep links read it
    configs = {c["id"]: c for c in session.components}
    assert configs[chat.textbox._id]["props"]["value"] == "typed again"
    assert configs[chat.textbox._id]["props"]["interactive"] is False
    assert configs[chat.chatbot._id]["props"]["value"] == updated.value
    assert dict.__len__(session.config_values) == len(list(gradios.components))
    for state in (session, gradios):  # once read, as Gradio does
        state[chat.textbox._id] = updated
        state._update_config(chat.textbox._id)
    assert list(session.components) == list(gradios.components)


def test_the_copies_of_the_chat_after_a_turn_read_the_session_and_the_others_do_not(tmp_path):
    saved = app.saved_conversations(ServerSettings(data_dir=tmp_path))  # opened on first use: never here
    demo = app.create_app(Settings(), concurrency=4, saved=saved)
    chat = chat_of(demo)
    copies = [
        fn
        for fn in demo.fns.values()
        if fn.inputs[:1] == [chat.chatbot] and fn.outputs == [chat.chatbot_state, chat.chatbot_value]
    ]
    turns = {fn._id for fn in demo.fns.values() if fn.name == "_submit_fn"}
    after_turns = [fn for fn in copies if fn.trigger_after in turns]
    assert len(after_turns) >= 4, "submit, retry, option and edit each copy the chat after their turn"
    for fn in after_turns:
        assert len(fn.inputs) == 2 and isinstance(fn.inputs[1], gr.State), "the session decides"
    others = [fn for fn in copies if fn.trigger_after not in turns]
    assert others, "the copies after an undo or a clear"
    assert all(fn.inputs == [chat.chatbot] for fn in others), "an undo's or clear's copy always lands"


async def started(asgi_app: object) -> asyncio.Task:
    """`asgi_app` through its ASGI lifespan start-up, as uvicorn starts it; the task to end it with."""
    messages: asyncio.Queue[dict] = asyncio.Queue()
    complete = asyncio.Event()
    await messages.put({"type": "lifespan.startup"})

    async def send(message: dict) -> None:
        if message["type"] == "lifespan.startup.complete":
            complete.set()

    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    lifespan = asyncio.create_task(asgi_app(scope, messages.get, send))  # type: ignore[operator]
    await asyncio.wait_for(complete.wait(), timeout=30)
    await messages.put({"type": "lifespan.shutdown"})
    return lifespan


def served(demo: gr.Blocks, **app_kwargs: object) -> object:
    """The FastAPI app `demo.launch()` serves, with the guard as `python app.py` puts it in front."""
    options = guard_options(demo, ServerSettings())["app_kwargs"]
    return App.create_app(demo, app_kwargs={**options, **app_kwargs})


async def test_gradios_login_check_runs_on_the_loop_once_the_server_starts(built, monkeypatch):
    demo, _chat = built
    asgi_app = served(demo)
    threaded: list[str] = []
    real_run_in_threadpool = fastapi_dependencies.run_in_threadpool

    async def run_in_threadpool(call, *args, **kwargs):
        threaded.append(getattr(call, "__qualname__", repr(call)))
        return await real_run_in_threadpool(call, *args, **kwargs)

    monkeypatch.setattr(fastapi_dependencies, "run_in_threadpool", run_in_threadpool)
    transport = httpx.ASGITransport(app=asgi_app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        before = await client.get("/config")
        assert before.status_code == 200
        assert any(name.endswith(".login_check") for name in threaded), "Gradio's check, in a thread"
        await (await started(asgi_app))
        threaded.clear()
        after = await client.get("/config")
        assert after.status_code == 200 and after.json().keys() == before.json().keys()
    assert threaded == []


async def test_a_login_check_on_the_loop_still_refuses_a_visitor_not_logged_in(built, monkeypatch):
    demo, _chat = built
    asgi_app = served(demo)
    monkeypatch.setattr(demo, "auth_message", "Log in first", raising=False)  # what launch(auth=...) sets
    asgi_app.auth = {"someone": "a password"}  # type: ignore[attr-defined]
    assert seams.check_logins_on_the_loop(asgi_app) > 0
    assert seams.check_logins_on_the_loop(asgi_app) == 0, "done once"
    transport = httpx.ASGITransport(app=asgi_app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        refused = await client.get("/config")
    assert refused.status_code == 401 and refused.json()["detail"] == {
        "error": "Not authenticated",
        "auth_message": "Log in first",
    }


async def test_an_event_stream_learns_its_client_left_from_what_its_response_received(monkeypatch):
    """Gradio's event stream asks `is_disconnected()` before each message; a stream whose request
    went through `noting_disconnects` is answered from what its response received, never by
    Starlette's receive-and-cancel, and still ends when its client goes, served by uvicorn."""
    seams.read_disconnects_from_the_response()
    asked_starlette: list[str] = []
    starlettes = seams._starlette_is_disconnected

    async def counted(request: Request) -> bool:
        asked_starlette.append(request.url.path)
        return await starlettes(request)

    monkeypatch.setattr(seams, "_starlette_is_disconnected", counted)
    answers: dict[str, list[bool]] = {"/watched": [], "/unwatched": []}
    ended = {path: asyncio.Event() for path in answers}

    async def stream(request: Request) -> StreamingResponse:
        path = request.url.path

        async def events():  # as Gradio's `sse_stream` asks
            try:
                while not (gone := await request.is_disconnected()):
                    answers[path].append(gone)
                    yield "data: ALIVE\n\n"
                    await asyncio.sleep(0.02)
                answers[path].append(gone)
            finally:
                ended[path].set()

        return StreamingResponse(events(), media_type="text/event-stream")

    routes = Starlette(routes=[Route(path, stream) for path in answers])

    async def app(scope, receive, send):
        if scope["type"] == "http" and scope["path"] == "/watched":
            receive = seams.noting_disconnects(scope, receive)
        await routes(scope, receive, send)

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    )
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        for path in answers:
            client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}")
            async with client, client.stream("GET", path) as response:
                lines = response.aiter_lines()
                assert [await anext(lines) for _ in range(4)][::2] == ["data: ALIVE"] * 2
            await asyncio.wait_for(ended[path].wait(), timeout=30)  # the client left: the stream ended
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, timeout=30)
    assert answers["/watched"] and not any(answers["/watched"])
    assert "/watched" not in asked_starlette
    assert "/unwatched" in asked_starlette, "other requests keep Starlette's answer"


def test_the_steps_that_only_update_the_textbox_run_unqueued(built):
    demo, chat = built
    updates = [
        fn
        for fn in demo.fns.values()
        if fn.name == "<lambda>" and not fn.inputs and fn.outputs == [chat.textbox]
    ]
    copies = [chat.chatbot_state, chat.chatbot_value]
    after_turns = {
        fn._id for fn in demo.fns.values() if fn.inputs[:1] == [chat.chatbot] and fn.outputs == copies
    }
    assert any(fn.trigger_after in after_turns for fn in updates), "the textbox given back after a turn"
    assert not [fn._id for fn in updates if fn.queue]
    assert [
        d for d in dependencies(demo) if d["id"] in {fn._id for fn in updates} and d["queue"] is not False
    ] == []


def test_the_queue_never_summarises_its_events_for_the_refused_dashboard(built, monkeypatch):
    demo, _chat = built
    queue = demo._queue

    def summarised(records):
        raise AssertionError(f"a summary of {len(records)} events was built")

    monkeypatch.setattr(queue, "_get_df", summarised)
    records = [
        {"time": 0.0, "status": "success", "process_time": 0.1, "function": "chat", "session_hash": "s"}
    ]
    monkeypatch.setattr(queue, "events_recorded", queue.events_recorded + 1000)
    queue.compute_analytics_summary(records * 1000)
    assert queue.ANALYTICS_MAX_EVENTS == 1, "Gradio drops the oldest record past this many"


def test_every_request_reaches_the_route_it_reached_before_the_hot_routes_went_first(built):
    demo, _chat = built
    gradios, ours = App.create_app(demo), App.create_app(demo)
    seams.match_hot_routes_first(ours)
    [included] = [route for route in ours.router.routes if hasattr(route, "original_router")]
    tried_first = [context.original_route.path for context in included.effective_candidates()]
    assert set(tried_first[: len(seams.HOT_ROUTES)]) == seams.HOT_ROUTES

    def reached(app: App, method: str, path: str) -> tuple | None:
        scope = {
            "type": "http",
            "method": method,
            "path": path,
            "root_path": "",
            "headers": [],
            "query_string": b"",
        }
        for route in app.router.routes:
            match, _child = route.matches(scope)
            if match.name == "FULL":
                target = route
                if hasattr(route, "original_router"):
                    target = next(
                        c for c in route.effective_candidates() if c.matches(scope)[0].name == "FULL"
                    )
                    target = target.original_route
                return (target.path, target.name)
        return None

    requests = {("POST", "/gradio_api/run/predict"), ("GET", "/gradio_api/heartbeat/a-session")}
    for route in included.original_router.routes:
        path = re.sub(r"\{\w+:path\}", "a/b.txt", re.sub(r"\{\w+\}", "a-value", route.path))
        requests |= {(method, path) for method in ("GET", "HEAD", "POST")}
    for method, path in sorted(requests):
        assert reached(ours, method, path) == reached(gradios, method, path), (method, path)
