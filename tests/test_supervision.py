"""`python -m deploy.workers` keeps its workers up, drains them on SIGTERM, restarts them one at a time
on SIGHUP, and leaves no process behind."""

import asyncio
import concurrent.futures
import re
import shutil
import signal
import sys
import time

import httpx
import psutil
import pytest
from gradio_client import Client

from deploy.workers import Supervisor, WorkerLost, Workers
from support.gradio_http import GradioChatClient
from support.servers import app_environment, free_port, free_ports
from ui.lifecycle import CUT_SHORT

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(300),  # two workers' cold starts, a rolling restart and a drain, on a loaded machine
    pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed"),
]

QUESTION = "what is 1 + 2 + 3 + 4 + 5 + 6"
ANSWER = "= <strong>21</strong>"  # the page's path: the answer as the page shows it


def start_launcher(start_app, grace_s: float, token_delay_ms: int = 40):
    port = free_ports(3)  # nginx's and its two workers'
    env = app_environment(
        AGENT_SHUTDOWN_GRACE_S=str(grace_s),
        AGENT_OFFLINE_TOKEN_DELAY_MS=str(token_delay_ms),
        AGENT_MAX_CHATS_PER_CLIENT="1000",
    )
    launcher = start_app(command=[sys.executable, "-m", "deploy.workers", "--port", str(port)], env=env)
    launcher.wait_for("workers behind nginx at", timeout=180)
    return launcher, f"http://127.0.0.1:{port}"


def workers_of(launcher) -> dict[int, psutil.Process]:
    """The launcher's app workers by port."""
    workers = {}
    for child in psutil.Process(launcher.process.pid).children():
        if match := re.search(r"app\.py --port (\d+)", " ".join(child.cmdline())):
            workers[int(match[1])] = child
    return workers


def answered(stream) -> bool:
    return stream.completed and ANSWER in str(stream.messages)


async def chats(url: str, n: int, question: str = QUESTION):
    client = GradioChatClient(url, affinity_cookie="agent_route")
    await client.__aenter__()
    tasks = [asyncio.ensure_future(client.ask(question, mode="browser")) for _ in range(n)]
    return client, tasks


async def test_a_killed_worker_is_started_again_and_sigterm_drains_everything(start_app):
    launcher, url = start_launcher(start_app, grace_s=0.5, token_delay_ms=100)
    workers = workers_of(launcher)
    everything = [psutil.Process(launcher.process.pid), *psutil.Process(launcher.process.pid).children(True)]
    killed_port, killed = next(iter(workers.items()))

    client, asks = await chats(url, 8)
    await asyncio.sleep(2)
    killed.kill()
    launcher.wait_for(rf"worker :{killed_port} exited with code -9; starting it again in 1 s", timeout=10)
    launcher.wait_for(rf"worker :{killed_port} is ready", timeout=120)
    before_signal = await asyncio.gather(*asks, return_exceptions=True)
    assert workers_of(launcher)[killed_port].pid != killed.pid

    survivors = [s for s in before_signal if not isinstance(s, BaseException)]
    assert survivors and all(answered(s) for s in survivors)

    _, asks = await chats(url, 8)
    await asyncio.sleep(2)
    launcher.process.send_signal(signal.SIGTERM)
    streams = await asyncio.gather(*asks)
    await client.__aexit__()
    assert all(s.completed for s in streams), [s.error for s in streams]
    assert all(answered(s) or CUT_SHORT in str(s.messages) for s in streams)
    assert launcher.process.wait(timeout=60) == 0
    assert "[launcher] stopped" in launcher.output
    assert not [p for p in everything if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


async def test_sighup_restarts_the_workers_one_at_a_time_without_cutting_a_chat(start_app):
    """... and a page whose session was in a restarted worker goes on with its conversation: it
    sends back the open conversation's id, which the worker that serves it now reopens."""
    launcher, url = start_launcher(start_app, grace_s=10)
    old = {port: worker.pid for port, worker in workers_of(launcher).items()}
    page = GradioChatClient(url, affinity_cookie="agent_route")
    await page.__aenter__()
    first = await page.ask(QUESTION, mode="browser", session_hash="page", chatbot=[], open_conversation="")

    client, asks = await chats(url, 8)
    await asyncio.sleep(1)
    launcher.process.send_signal(signal.SIGHUP)
    streams = await asyncio.gather(*asks)
    launcher.wait_for(r"rolling restart done", timeout=180)
    _, after = await chats(url, 4)
    later = await asyncio.gather(*after)
    follow_up = await page.ask(
        "times 2",
        mode="browser",
        session_hash="page",
        chatbot=first.value,
        open_conversation=first.open_conversation,
    )
    listed = (await page.call_unqueued("_ask_to_confirm", [], "page")).json()["data"][-1]
    await client.__aexit__()
    await page.__aexit__()

    assert all(answered(s) for s in streams), [s.error or str(s.messages)[-200:] for s in streams]
    assert all(answered(s) for s in later)
    assert answered(first) and first.open_conversation, first.error or str(first.messages)[-200:]
    assert follow_up.completed and "21 * 2 = <strong>42</strong>" in str(follow_up.messages), [
        follow_up.error or str(follow_up.messages)[-300:]
    ]  # its first turn in context, in a process that had never seen its session
    assert follow_up.open_conversation == first.open_conversation
    assert "Delete all 1 of your saved conversations?" in listed
    new = {port: worker.pid for port, worker in workers_of(launcher).items()}
    assert new.keys() == old.keys() and not set(new.values()) & set(old.values())


async def test_new_visitors_go_to_the_other_worker_while_one_drains(start_app):
    launcher, url = start_launcher(start_app, grace_s=60, token_delay_ms=150)
    client, long_chats = await chats(url, 6, "what is 1 + 2 + 3 + 4 + 5 + 6 + 7 + 8")
    draining_port, draining = await _a_worker_with_turns(launcher, all_turns=6)
    draining.terminate()
    await _until_health(draining_port, 503)

    _, arriving = await chats(url, 8)  # half of them hash to the draining worker
    arrived = await asyncio.gather(*arriving)
    still = await _until_health(draining_port, 503)
    finished = await asyncio.gather(*long_chats)
    await client.__aexit__()

    assert still.json()["turns"] > 0, "the worker stopped draining before the new chats were sent"
    assert all(answered(s) for s in arrived), [s.error or str(s.messages)[-200:] for s in arrived]
    assert all(s.completed and "= <strong>36</strong>" in str(s.messages) for s in finished), [
        str(s.messages)[-300:] for s in finished
    ]


async def test_a_browser_sent_to_another_worker_stays_there_once_its_own_is_back(start_app):
    """Its first worker down, a browser's calls go to the other one, whose name its cookie then carries:
    its later calls, and its session, stay there after the first worker is started again."""
    launcher, url = start_launcher(start_app, grace_s=1)
    first_port, other_port = sorted(workers_of(launcher))  # nginx's w1 and w2
    workers_of(launcher)[first_port].kill()
    launcher.wait_for(rf"worker :{first_port} exited with code -9", timeout=10)
    async with GradioChatClient(url, affinity_cookie="agent_route") as client:
        client.set_route("browser", "w1")  # the worker it was on (or the one it was sent to) is down
        first = await client.ask(QUESTION, mode="browser", session_hash="browser", chatbot=[])
        launcher.wait_for(rf"worker :{first_port} is ready", timeout=120)
        follow_up = await client.ask("times 2", mode="browser", session_hash="browser", chatbot=first.value)

    assert answered(first), first.error or str(first.messages)[-200:]
    assert follow_up.completed and "21 * 2 = <strong>42</strong>" in str(follow_up.messages), [
        follow_up.error or str(follow_up.messages)[-300:]
    ]  # the session's history was there: the same worker answered
    assert launcher.output.count(f"[worker :{other_port}] ") and _finished_turns(launcher, other_port) == 2
    assert _finished_turns(launcher, first_port) == 0


def test_an_api_client_cut_by_a_killed_worker_retries_and_its_conversation_goes_on(start_app):
    """A killed worker cannot end an API client's stream with a word: the call fails. Sent again
    with the saved conversation's id (README: Restarts and upgrades), it is answered in that
    conversation, its earlier turn in the model's context, on whichever worker serves now."""
    launcher, url = start_launcher(start_app, grace_s=1, token_delay_ms=200)
    client = Client(url + "/", verbose=False)
    first = client.predict("what is 2 + 3", api_name="/chat")
    conversation = next(m["content"] for m in first if m["metadata"].get("id") == "turn-conversation")
    cut = client.submit("times 4", api_name="/chat")
    _, worker = asyncio.run(_a_worker_with_turns(launcher, all_turns=1))
    worker.kill()
    with pytest.raises(concurrent.futures.CancelledError):  # gradio_client's word for a stream that ended
        cut.result(timeout=120)

    again = client.predict("times 4", saved_conversation=conversation, api_name="/chat")
    answer = next(m["content"] for m in again if not m["metadata"])
    assert answer == "5 * 4 = **20**"
    assert next(m["content"] for m in again if m["metadata"].get("id") == "turn-conversation") == conversation


def _finished_turns(launcher, port: int) -> int:
    return len(re.findall(rf"\[worker :{port}\] .*agent\.turns .*\"outcome\": \"finished\"", launcher.output))


async def _a_worker_with_turns(launcher, all_turns: int) -> tuple[int, psutil.Process]:
    """A worker running turns, once `all_turns` run (none is still on its way to a worker)."""
    workers = workers_of(launcher)
    async with httpx.AsyncClient() as http:
        for _ in range(1200):
            turns = {
                port: (await http.get(f"http://127.0.0.1:{port}/healthz")).json()["turns"] for port in workers
            }
            if sum(turns.values()) == all_turns:
                port = max(turns, key=turns.get)
                return port, workers[port]
            await asyncio.sleep(0.1)
    raise AssertionError(f"{all_turns} turns never ran at once")


async def _until_health(port: int, status: int) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        for _ in range(600):
            if (health := await http.get(f"http://127.0.0.1:{port}/healthz")).status_code == status:
                return health
            await asyncio.sleep(0.1)
    raise AssertionError(f"the worker on :{port} never answered {status}")


async def test_workers_die_with_a_killed_launcher(start_app):
    launcher, _ = start_launcher(start_app, grace_s=1)
    children = psutil.Process(launcher.process.pid).children(recursive=True)
    launcher.process.kill()
    _, alive = psutil.wait_procs(children, timeout=30)
    assert not alive


def test_a_worker_that_keeps_exiting_makes_the_supervisor_give_up_with_its_exit_code(capsys):
    exits = (sys.executable, "-c", "import sys; sys.exit(3)")
    running = Workers("", [], None, [free_port()], app_environment(), program=exits)  # type: ignore[arg-type]
    running.start(0)
    supervisor = Supervisor(running, stop_timeout_s=5, first_backoff_s=0.01)
    try:
        with pytest.raises(WorkerLost, match=r"exited 5 times within 60 s \(last exit code 3\); giving up"):
            for _ in range(200):
                supervisor.check()
                time.sleep(0.05)
    finally:
        for process in running.processes:
            process.stop()
    assert "exited with code 3; starting it again in 0.01 s" in capsys.readouterr().out
