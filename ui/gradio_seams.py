"""Every place this app reaches past Gradio's public API, each with why (Gradio 6.31).

Nothing else in the app touches a private Gradio name, with one exception: our subclasses of
`gr.ChatInterface` and `gr.Chatbot` override or call the private methods in `PRIVATE_HOOKS`, since
a subclass is the only way into them.
`tests/ui/test_gradio_seams.py` builds the app and checks what each seam must achieve,
so a Gradio upgrade that breaks one fails the fast tests.
"""

from __future__ import annotations

import copyreg
import datetime
import importlib.util
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gradio as gr
import orjson
from gradio import state_holder
from gradio.block_function import BlockFunction
from gradio.blocks import BlocksConfig
from gradio.context import get_blocks_context
from starlette.requests import Request

PRIVATE_HOOKS: dict[type, tuple[str, ...]] = {
    gr.ChatInterface: (
        "_render_chatbot_area",  # to draw the live turn under the conversation
        "_setup_events",  # to rewire the events ChatInterface has just built
        "_clear_and_save_textbox",  # the textbox's first step, where a busy client is refused
        "_stream_fn",  # a turn streams into the live turn and joins the conversation once
        "_api_wrapper",  # the edit chain runs the same wrapped turn as a submit
        "_append_message_to_history",
        "_edit_message",
        "_save_conversation",  # its browser-storage saving steps are dropped: the server saves
        "_delete_conversation",
    ),
    gr.Chatbot: ("_check_format",),  # PreparedChatbot checks a value as Gradio does, then goes its own way
}
"""The private methods our subclasses (`LiveTurnChatInterface`, `PreparedChatbot`) override or call."""

UNCHANGED = orjson.Fragment(b'{"__type__":"update"}')
"""A streamed output value that leaves a component as it is: the page reads it as an update with
no property. A `gr.skip()` does the same for the page, but the server then builds a new component
and its config on every update; Gradio writes responses with orjson, which copies a fragment's
bytes as they are."""


def allow_copying_json_fragments() -> None:
    """Gradio deep-copies a session's component values (its deep links); a prepared message is an
    `orjson.Fragment`, which cannot be copied. It is immutable, so its copy is itself (a reducer
    that returns a string makes `copy` return the object as it is)."""
    copyreg.pickle(orjson.Fragment, lambda fragment: "Fragment")


def mark_absent_matplotlib_absent() -> None:
    """Gradio tries `import matplotlib` twice around every call of every event (to switch its
    backend); when it is not installed each failed import searches the path again, twice per
    streamed update. Marked absent in `sys.modules`, those imports fail at once."""
    if "matplotlib" not in sys.modules and importlib.util.find_spec("matplotlib") is None:
        sys.modules["matplotlib"] = None  # type: ignore[assignment]


class _ConfigsOnDemand(dict):
    """A session's copy of each block's config, with the last value the session recorded for it;
    nothing is built until the whole set is read.

    Gradio records a value for a block each time the session sends or receives one, and reads
    the whole set through `items()` only (for deep links, which `ui.guard` refuses): that builds
    every config then, the recorded values in them."""

    def __init__(self, blocks_config: BlocksConfig, ids: Iterable[int]) -> None:
        super().__init__()
        self._blocks_config = blocks_config
        self._not_built: dict[int, gr.blocks.Block | None] = dict.fromkeys(ids)  # the block to build from
        self._values: dict[int, Any] = {}

    def record_value(self, key: int, value: Any) -> None:
        """What Gradio's `SessionState._update_value_in_config` does, once the config is built."""
        self._values[key] = value
        if key not in self._not_built and key not in self:
            self._not_built[key] = None  # a block outside the page's list (Gradio records any it is given)

    def renew(self, key: int, block: gr.blocks.Block) -> None:
        """What Gradio does when it builds a block's config anew (from `block`): the value recorded
        before is gone."""
        self._values.pop(key, None)
        if dict.__contains__(self, key):  # the whole set was read already: as Gradio does, now
            super().__setitem__(key, self._blocks_config.config_for_block(key, [], block))
        else:
            self._not_built[key] = block

    def __setitem__(self, key: int, config: dict) -> None:
        """A config Gradio built for the session's own instance of a block: it replaces the
        page's one and the value recorded before it."""
        self._values.pop(key, None)
        super().__setitem__(key, config)

    def items(self):  # type: ignore[override]
        self._build_all()
        return super().items()

    def _build_all(self) -> None:
        """Every block's config, in the page's order (the order Gradio builds them in)."""
        if not self._not_built and not self._values:
            return
        built, blocks = dict(super().items()), self._blocks_config.blocks
        super().clear()
        for key, block in self._not_built.items():
            source = blocks[key] if block is None else block
            config = built.pop(key) if key in built else self._blocks_config.config_for_block(key, [], source)
            super().__setitem__(key, config)
        super().update(built)  # blocks Gradio gave a config of their own (`__setitem__`)
        for key, value in self._values.items():
            if "props" in (config := super().__getitem__(key)):
                config["props"]["value"] = value
        self._not_built.clear()
        self._values.clear()


class _SessionStateOnDemand(state_holder.SessionState):
    """Gradio's `SessionState`, whose copy of the page's block configs is built on demand."""

    def __init__(self, blocks: gr.Blocks) -> None:
        # Gradio's own set-up, given no block to build a config for; then the on-demand copy.
        super().__init__(SimpleNamespace(default_config=blocks.default_config, blocks={}))  # type: ignore[arg-type]
        ids = [key for key in self.blocks_config.blocks if key in blocks.blocks]
        self.config_values = _ConfigsOnDemand(self.blocks_config, ids)

    def _update_value_in_config(self, key: int, value: Any) -> None:
        self.config_values.record_value(key, value)

    def __setitem__(self, key: int, value: Any) -> None:
        """Gradio's, whose new config for the block (on every State value a session stores) is
        built when the whole set is read."""
        block = self.blocks_config.blocks.get(key)
        if isinstance(block, gr.State):
            self._state_ttl[key] = (block.time_to_live, datetime.datetime.now())
            self.state_data[key] = value
        else:
            self.blocks_config.blocks[key] = value
        if block:
            self.config_values.renew(key, block)

    def _update_config(self, key: int) -> None:
        if self[key] is not None:
            self.config_values.renew(key, self[key])


def build_session_configs_on_demand() -> None:
    """Gradio's state for a new session starts with the config of every block of the page, built
    then and there (for deep links), and a block's config again the first time it records a value
    for it, and again each time it stores a State's value or a component's update (a question's
    first step does both): with this page's ~60 blocks, more than a tenth of the server's CPU when
    many visitors arrive at once, and part of each session's memory. Here a session only notes the
    last value it recorded for each block and the block each config is to be built from; the
    configs are built when the whole set is read."""
    state_holder.SessionState = _SessionStateOnDemand  # what `StateHolder` makes for each new session


def watch_only_project_code(app_file: Path) -> None:
    """In reload mode (`gradio app.py`), watch agent/, ui/ and `app_file`, not the whole directory.

    Gradio polls every .py file under the app's directory: with the README's `.venv` inside, that
    idles at most of a core, and its CLI has no way to say otherwise for the app's own directory.
    It watches directories only, so the app file is watched through a symlink in a directory of its
    own (under `.gradio/`, which git ignores). The list edited is the one Gradio's reloader reads.
    """
    from gradio import http_server

    root = app_file.resolve().parent
    watched = http_server.GRADIO_WATCH_DIRS
    if not any(Path(directory).resolve() == root for directory in watched):
        return
    link = root / ".gradio" / "watch" / app_file.name
    link.parent.mkdir(parents=True, exist_ok=True)
    link.unlink(missing_ok=True)
    link.symlink_to(root / app_file.name)
    watched[:] = [str(root / "agent"), str(root / "ui"), str(link.parent)]
    print(f"Reload mode: watching agent/, ui/ and {app_file.name}", flush=True)


def default_address() -> tuple[str, int]:
    """The host and port Gradio serves on when `launch()` is given none: what it read from
    `GRADIO_SERVER_NAME` and `GRADIO_SERVER_PORT`, which it keeps as module constants only."""
    from gradio.http_server import INITIAL_PORT_VALUE, LOCALHOST_NAME

    return LOCALHOST_NAME, INITIAL_PORT_VALUE


# -- the event graph of the Blocks being built ------------------------------------------------
# Gradio has no public way to change an event once `.then()` has made it; ChatInterface builds its
# chain in one private method, so the app edits the chain right after it is built.


def _dependencies() -> Iterable[BlockFunction]:
    return get_blocks_context().fns.values()


def triggered_by(block: gr.blocks.Block, event: str) -> BlockFunction:
    """The dependency (in the Blocks being built) that `event` of `block` starts."""
    return next(fn for fn in _dependencies() if (block._id, event) in fn.targets)


def run_followups_only_on_success(first: BlockFunction) -> None:
    """What `.then()` chained after `first` runs only if `first` succeeded (as `.success()` would)."""
    for dependency in _dependencies():
        if dependency.trigger_after == first._id:
            dependency.trigger_only_on_success = True


def without_output(dependency: BlockFunction, block: gr.blocks.Block) -> None:
    """`block` is no longer one of `dependency`'s outputs (its function must stop yielding it)."""
    dependency.outputs = [output for output in dependency.outputs if output is not block]


def without_input(dependency: BlockFunction, block: gr.blocks.Block) -> None:
    """`block` is no longer one of `dependency`'s inputs (its function must not need its value)."""
    dependency.inputs = [given for given in dependency.inputs if given is not block]


def drop_steps(function: Callable[..., Any]) -> None:
    """Remove the dependencies (in the Blocks being built) that run `function`: the last steps
    of their chains (one that another step follows is refused)."""
    fns = get_blocks_context().fns
    dropped = [fn_id for fn_id, dependency in fns.items() if dependency.fn == function]
    if any(dependency.trigger_after in dropped for dependency in fns.values()):
        raise ValueError(f"a step follows {function!r}: dropping it would break its chain")
    for fn_id in dropped:
        del fns[fn_id]


def chat_interface_turns(output: gr.blocks.Block) -> list[BlockFunction]:
    """The turn-running steps of ChatInterface's chains (submit, retry, example, option) that write
    `output`; ChatInterface names their function `_submit_fn`."""
    return [fn for fn in _dependencies() if fn.name == "_submit_fn" and output in fn.outputs]


def chat_state_copies_after_turns(chat: gr.ChatInterface) -> list[BlockFunction]:
    """ChatInterface's steps that copy the page's chat into the session's state right after a turn
    (its `synchronize_chat_state`: the chatbot in; the chat's state and value out), the ones that
    follow a `_submit_fn` (a submit, retry, example, option or edit); not the copies after an undo,
    a clear or a loaded conversation."""
    turns = {fn._id for fn in _dependencies() if fn.name == "_submit_fn"}
    copies = [chat.chatbot_state, chat.chatbot_value]
    return [
        fn
        for fn in _dependencies()
        if fn.inputs == [chat.chatbot] and fn.outputs == copies and fn.trigger_after in turns
    ]


def queued_updates_of(block: gr.blocks.Block) -> list[BlockFunction]:
    """ChatInterface's queued steps (in the Blocks being built) that take nothing and only return
    an update of `block`: its lambdas that give the textbox back after a turn, and take it away
    and back around a retry."""
    return [
        fn
        for fn in _dependencies()
        if fn.queue and fn.name == "<lambda>" and not fn.inputs and fn.outputs == [block]
    ]


def run_unqueued(dependency: BlockFunction) -> None:
    """The page calls `dependency` directly (`/gradio_api/run/predict`), not through the queue."""
    dependency.queue = False


def with_input(dependency: BlockFunction, block: gr.blocks.Block) -> None:
    """`dependency` also takes `block`'s value, as its function's last argument."""
    dependency.inputs = [*dependency.inputs, block]


def replace_function(
    dependency: BlockFunction, wrap: Callable[[Callable[..., Any]], Callable[..., Any]], *, postprocess: bool
) -> None:
    """`dependency` runs `wrap(its function)`; `postprocess=False` when the wrapped function yields
    values already post-processed (Gradio would otherwise do it again, in a worker thread)."""
    dependency.fn = wrap(dependency.fn)
    dependency.postprocess = postprocess


def functions(blocks: gr.Blocks) -> dict[int, BlockFunction]:
    """The event functions of built `blocks` by id, the `fn_index` a client sends (Gradio's table)."""
    return blocks.fns


def remove_cancellation(blocks: gr.Blocks, block: gr.blocks.Block, event: str) -> None:
    """Drop the cancelling dependencies that `event` of `block` starts (ChatInterface's Stop
    cancels the turn; the app stops it by a signal instead, see `ui.stopping`)."""
    for fn_id, fn in list(blocks.fns.items()):
        if fn.is_cancel_function and (block._id, event) in fn.targets:
            del blocks.fns[fn_id]


# -- the queue ---------------------------------------------------------------------------------


def keep_no_queue_analytics(blocks: gr.Blocks) -> None:
    """Gradio's queue keeps a record of its last 10,000 events for its monitoring dashboard and,
    at the end of every queued event, summarises them all (a pandas DataFrame, built in a worker
    thread while holding the interpreter most of the time): the more events a server has seen, the
    dearer every turn. The dashboard (`/monitoring`) is refused by `ui.guard` and nothing else reads
    the summary: the queue of `blocks` (after `blocks.queue()`) keeps its last record only and
    never summarises."""
    queue = blocks._queue
    queue.ANALYTICS_MAX_EVENTS = 1
    queue.ANAYLTICS_CACHE_FREQUENCY = sys.maxsize  # (sic) a summary every that many events


def queued_requests(blocks: gr.Blocks) -> Iterator[tuple[int, Any]]:
    """(function id, Starlette request) of each event Gradio has queued or is running; it forgets
    each one as it ends. The guard counts a client's turns from it: Gradio keeps no public count."""
    for event in list(blocks._queue.event_ids_to_events.values()):
        if event.request is not None:
            yield event.fn._id, event.request


def serves_session(app: Any, session_hash: str) -> bool:
    """Whether the Gradio app (`scope["app"]` of a request) serves this page session: it keeps state
    for it (every page runs the saved panel's load event), or events of it are queued or running.
    A draining process keeps serving these and sends every other session elsewhere."""
    pending = app.get_blocks()._queue.pending_event_ids_session
    return session_hash in pending or session_hash in app.state_holder


# -- the HTTP routes ---------------------------------------------------------------------------


HOT_ROUTES = frozenset(
    {
        "/gradio_api/queue/join",
        "/gradio_api/queue/data",
        "/gradio_api/run/{api_name}",
        "/gradio_api/heartbeat/{session_hash}",
        "/gradio_api/cancel",
    }
)
"""The routes of a page's every question: joining the queue, its event stream, its unqueued calls,
its heartbeat, Stop."""


def match_hot_routes_first(app: Any) -> None:
    """FastAPI finds a request's route by trying each route of a router in turn, twice (whether the
    router has it, then which): Gradio's API routes (an included router) sit behind some fifty
    others, routes for files, uploads, monitoring and vibe editing among them. In `app` (the served
    FastAPI app), Gradio's `HOT_ROUTES` are tried first. No other route answers their paths, so
    every request reaches the route it reached before (contract test); FastAPI is told the routes
    changed, so it rebuilds its list of them."""
    for included in app.router.routes:
        router = getattr(included, "original_router", None)  # FastAPI's included router
        if router is None:
            continue
        hot = [route for route in router.routes if getattr(route, "path", None) in HOT_ROUTES]
        if hot and router.routes[: len(hot)] != hot:
            router.routes[:] = [*hot, *(route for route in router.routes if route not in hot)]
            router._mark_routes_changed()


def _is_gradio_login_check(call: Any) -> bool:
    return getattr(call, "__module__", None) == "gradio.routes" and getattr(
        call, "__qualname__", ""
    ).endswith(".login_check")


def _dependants(routes: Iterable[Any]) -> Iterator[Any]:
    """Every FastAPI `Dependant` of `routes`, those of included routers' routes too."""
    for route in routes:
        if hasattr(route, "effective_candidates"):  # FastAPI's included router
            yield from _dependants(route.effective_candidates())
            continue
        for holder in (route, getattr(route, "original_route", None)):
            if (dependant := getattr(holder, "dependant", None)) is not None:
                yield from _with_subdependants(dependant)


def _with_subdependants(dependant: Any) -> Iterator[Any]:
    yield dependant
    for sub in dependant.dependencies:
        yield from _with_subdependants(sub)


def check_logins_on_the_loop(app: Any) -> int:
    """Gradio's API routes (the queue's join and event stream, every unqueued call) depend on its
    `login_check`, a plain function: FastAPI runs each plain dependency in a worker thread, a
    thread hop per request. It only compares the logged-in user (solved before it, on the loop)
    with the app's auth settings, so here it runs on the loop, as the same function. `app` is the
    served FastAPI app (`scope["app"]`); the number of dependencies changed."""
    changed = 0
    for dependant in _dependants(app.router.routes):
        if _is_gradio_login_check(dependant.call):
            dependant.call = _on_the_loop(dependant.call)
            changed += 1
    return changed


def _on_the_loop(check: Callable[..., None]) -> Callable[..., Any]:
    async def login_check(**values: Any) -> None:
        return check(**values)

    login_check.__qualname__ = "on_the_loop.login_check"
    return login_check


# -- the event stream --------------------------------------------------------------------------

_DISCONNECT_WATCH = "ui.gradio_seams.disconnect_watch"


class _DisconnectWatch:
    """An event stream's `receive`, noting when the client has gone."""

    def __init__(self, receive: Callable[[], Any]) -> None:
        self.receive = receive
        self.disconnected = False

    async def __call__(self) -> dict[str, Any]:
        message = await self.receive()
        if message["type"] == "http.disconnect":
            self.disconnected = True
        return message


def noting_disconnects(scope: dict[str, Any], receive: Callable[[], Any]) -> Callable[[], Any]:
    """`receive` for an event stream's request (`scope`), whose `Request.is_disconnected()` then
    reads what the stream's response has received (`read_disconnects_from_the_response`)."""
    watch = _DisconnectWatch(receive)
    scope[_DISCONNECT_WATCH] = watch
    return watch


async def _is_disconnected(request: Request) -> bool:
    watch = request.scope.get(_DISCONNECT_WATCH)
    if watch is None:
        return await _starlette_is_disconnected(request)
    return watch.disconnected


_starlette_is_disconnected = Request.is_disconnected


def read_disconnects_from_the_response() -> None:
    """Gradio's event stream asks `request.is_disconnected()` before every message it sends;
    Starlette answers by trying to receive with a cancelled `anyio.CancelScope`, whose cancel
    message names the current task (its repr), for every message. The stream's response
    (Starlette's `StreamingResponse`, under an ASGI server below spec 2.4, as uvicorn is) already
    receives all the while and cancels the stream when the client goes: for requests passed
    through `noting_disconnects`, the question is answered from what it received. Other requests
    keep Starlette's answer."""
    Request.is_disconnected = _is_disconnected  # type: ignore[method-assign]
