"""Cost of a turn against the number of conversations its visitor has saved: 0, 100, 1,000.

    python -m bench.saved [--saved 0,100,1000] [--turns 5] [--token-ms 20] [--refreshes 50]

`python app.py` is served as its own process (offline model at `--token-ms` per
token), saving to SQLite in a temporary directory. One visitor (one owner cookie)
uses the page in Chromium. Before each size, the visitor's saved conversations
are seeded straight into the store up to that number (each a question, two tool
steps, an answer and a footer: 1.5 kB), and the page is reloaded.

Then, `--turns` times: New chat, a question typed and sent, until the answer is
shown, the panel lists the new conversation first and the page's network has been
quiet for half a second. Printed per turn (median of the turns): the body bytes
the page sent and received (every request: the question, the streamed turn, the
panel refresh after it, the heartbeat), the requests it made, and the server's CPU
over that time. The panel refresh after a turn is also measured alone: the body
bytes of the refresh calls the page made during its turns, and the server's CPU
per refresh over `--refreshes` refreshes made by a lean client with the same cookie.

Before the store (issue 19, measured on the code of that time, where the browser
kept the saved conversations): 0 / 100 / 500 / 900 kB saved → 2.9 kB / 205 kB /
1.02 MB / 1.83 MB sent per turn.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.report import machine_line, table
from deploy.processes import PROJECT_ROOT, ServedProcess
from store import ConversationStore, database_url, new_owner_id
from support.browser import CHROMIUM, CHROMIUM_ARGS, DESKTOP
from support.calibration import calibrate
from support.gradio_http import GradioChatClient
from support.servers import MANY_VISITORS_ENV, app_environment, free_port

QUIET_S = 0.5
TURN_TIMEOUT_S = 120.0
REFRESH = "_same_page"
"""The panel's refresh after the chat changed (`ui.saved_panel.SavedPanel`), by its function name."""


def seeded_conversation(i: int) -> list[dict]:
    """A saved conversation the size of one of the app's turns: the question, two tool steps,
    the answer and its footer."""
    question = f"what is {i} + {i + 1}, times 3"
    step = {"title": "🛠️ Used tool add", "status": "done", "duration": 0.01, "id": f"tool-{i}"}
    return [
        {"role": "user", "content": question},
        {"role": "assistant", "content": f"add(a={i}, b={i + 1}) → {2 * i + 1}", "metadata": step},
        {"role": "assistant", "content": f"multiply(a={2 * i + 1}, b=3) → {6 * i + 3}", "metadata": step},
        {
            "role": "assistant",
            "content": f"{i} + {i + 1} = {2 * i + 1}, and {2 * i + 1} * 3 = **{6 * i + 3}**.",
        },
        {
            "role": "assistant",
            "content": "Two model calls, two tool calls: " + "█" * 40 + " " + "·" * 400,
            "metadata": {"title": "📊 0.84 s · 2 model calls · 2 tool calls", "id": "turn-footer"},
        },
    ]


async def seed(store_url: str, owner: str, start: int, stop: int) -> None:
    """Save conversations number `start` to `stop - 1` of `owner`, oldest first."""
    store = await ConversationStore.open(store_url)
    try:
        for i in range(start, stop):
            conversation = seeded_conversation(i)
            when = 1_000_000_000.0 + i
            saved_id = await store.create(owner, conversation[0]["content"], now=when)
            await store.append(owner, saved_id, conversation, now=when)
    finally:
        await store.aclose()


@dataclass
class Network:
    """What the page sent and received since `reset`, and when its network was last busy."""

    sent: int = 0
    received: int = 0
    requests: int = 0
    refresh_bytes: int = 0
    in_flight: set[str] = field(default_factory=set)
    refreshes: set[str] = field(default_factory=set)
    last_activity: float = 0.0
    refresh_index: int | None = None

    def reset(self) -> None:
        self.sent = self.received = self.requests = self.refresh_bytes = 0
        self.last_activity = time.monotonic()

    def request_sent(self, event: dict) -> None:
        request = event["request"]
        if "/heartbeat/" not in request["url"]:
            self.in_flight.add(event["requestId"])
        body = "".join(entry.get("bytes", "") for entry in request.get("postDataEntries", []))
        self.sent += len(request.get("postData", "").encode()) or len(body) * 3 // 4
        self.requests += 1
        if self.refresh_index is not None and f'"fn_index":{self.refresh_index},' in request.get(
            "postData", ""
        ):
            self.refreshes.add(event["requestId"])
        self.last_activity = time.monotonic()

    def data_received(self, event: dict) -> None:
        self.received += event["dataLength"]
        if event["requestId"] in self.refreshes:
            self.refresh_bytes += event["dataLength"]
        self.last_activity = time.monotonic()

    def finished(self, event: dict) -> None:
        self.in_flight.discard(event["requestId"])
        self.last_activity = time.monotonic()

    def quiet(self) -> bool:
        return not self.in_flight and time.monotonic() - self.last_activity >= QUIET_S


@dataclass
class Turn:
    saved: int
    sent: int
    received: int
    requests: int
    refresh_bytes: int
    cpu_s: float
    wall_s: float


async def first_title(page) -> str:
    rows = await page.locator("#saved-list tbody tr").all_inner_texts()
    return rows[0].strip() if rows else ""


async def wait_until(condition, what: str, timeout_s: float = TURN_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not await condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"the page did not get there in {timeout_s:.0f} s: {what}")
        await asyncio.sleep(0.05)


async def take_turn(page, network: Network, server: ServedProcess, saved: int, question: str) -> Turn:
    await page.get_by_role("button", name="New chat").click()
    await wait_until(lambda: _empty_chat(page), "an empty chat after New chat")
    await wait_until(lambda: _async(network.quiet()), "a quiet network before the turn")
    network.reset()
    cpu_before, started = server.cpu_seconds(), time.perf_counter()
    box = page.locator("#chat-input textarea")
    await box.fill(question)
    await box.press("Enter")
    await wait_until(lambda: _titled(page, question), f"the answer and {question!r} first in the panel")
    await wait_until(lambda: _async(network.quiet()), "a quiet network after the turn")
    return Turn(
        saved,
        network.sent,
        network.received,
        network.requests,
        network.refresh_bytes,
        server.cpu_seconds() - cpu_before,
        time.perf_counter() - started - QUIET_S,
    )


async def _async(value: bool) -> bool:
    return value


async def _empty_chat(page) -> bool:
    return await page.locator("#agent-chat .message").count() == 0


async def _titled(page, question: str) -> bool:
    return await first_title(page) == question and await page.get_by_text("📊").count() > 0


async def refresh_cost(url: str, owner: str, server: ServedProcess, refreshes: int) -> tuple[float, int]:
    """Server CPU ms per panel refresh, and the bytes of one, from a lean client with the owner's cookie."""
    async with GradioChatClient(url, headers={"Cookie": f"agent_owner={owner}"}) as client:
        session = os.urandom(8).hex()
        size = len((await client.call_unqueued(REFRESH, [None], session)).content)
        cpu_before = server.cpu_seconds()
        for _ in range(refreshes):
            (await client.call_unqueued(REFRESH, [None], session)).raise_for_status()
        return 1000 * (server.cpu_seconds() - cpu_before) / refreshes, size


async def measure(sizes: list[int], turns: int, token_ms: float, refreshes: int) -> tuple[list[Turn], dict]:
    from playwright.async_api import async_playwright

    data = Path(tempfile.mkdtemp(prefix="bench-saved-"))
    port, owner = free_port(), new_owner_id()
    env = app_environment(
        AGENT_OFFLINE_TOKEN_DELAY_MS=str(token_ms), AGENT_DATA_DIR=str(data), **MANY_VISITORS_ENV
    )
    server = ServedProcess([sys.executable, "app.py", "--port", str(port)], env, PROJECT_ROOT)
    results: list[Turn] = []
    refresh: dict[int, tuple[float, int]] = {}
    try:
        url = server.wait_for_url(timeout=120)
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                context = await browser.new_context(viewport=DESKTOP)
                await context.add_cookies([{"name": "agent_owner", "value": owner, "url": url}])
                page = await context.new_page()
                network = await watch(page, url)
                seeded = 0
                for size in sizes:
                    await seed(database_url(data), owner, seeded, size)
                    seeded = max(seeded, size)
                    await page.goto(url)
                    await wait_until(lambda: _has_listing(page), "the page loaded")
                    for n in range(turns):
                        question = f"what is {size} + {n}"
                        results.append(await take_turn(page, network, server, size, question))
                    refresh[size] = await refresh_cost(url, owner, server, refreshes)
            finally:
                await browser.close()
    finally:
        server.stop()
        shutil.rmtree(data, ignore_errors=True)
    return results, refresh


async def _has_listing(page) -> bool:
    rows = await page.locator("#saved-list tbody tr").count()
    return rows > 0 or await page.get_by_text("No saved conversations yet").count() > 0


async def watch(page, url: str) -> Network:
    """Count the page's network traffic through Chromium's DevTools protocol."""
    network = Network()
    config = await page.request.get(f"{url.rstrip('/')}/config")
    dependencies = (await config.json())["dependencies"]
    network.refresh_index = next(d["id"] for d in dependencies if d.get("api_name") == REFRESH)
    cdp = await page.context.new_cdp_session(page)
    cdp.on("Network.requestWillBeSent", network.request_sent)
    cdp.on("Network.dataReceived", network.data_received)
    cdp.on("Network.loadingFinished", network.finished)
    cdp.on("Network.loadingFailed", network.finished)
    await cdp.send("Network.enable")
    return network


def report(turns: list[Turn], refresh: dict[int, tuple[float, int]]) -> str:
    header = [
        "saved conversations",
        "turns",
        "page → server kB",
        "server → page kB",
        "requests",
        "server CPU ms",
        "wall s",
        "refresh kB (in turn)",
        "refresh CPU ms (alone)",
        "refresh kB (alone)",
    ]
    rows = []
    for size in sorted({t.saved for t in turns}):
        mine = [t for t in turns if t.saved == size]
        rows.append([
            size,
            len(mine),
            f"{statistics.median(t.sent for t in mine) / 1000:.1f}",
            f"{statistics.median(t.received for t in mine) / 1000:.1f}",
            f"{statistics.median(t.requests for t in mine):.0f}",
            f"{1000 * statistics.median(t.cpu_s for t in mine):.0f}",
            f"{statistics.median(t.wall_s for t in mine):.2f}",
            f"{statistics.median(t.refresh_bytes for t in mine) / 1000:.1f}",
            f"{refresh[size][0]:.1f}",
            f"{refresh[size][1] / 1000:.1f}",
        ])  # fmt: skip
    return table(header, rows)


async def main(sizes: list[int], turns: int, token_ms: float, refreshes: int) -> None:
    load_before = os.getloadavg()[0]
    results, refresh = await measure(sizes, turns, token_ms, refreshes)
    print(
        f"A turn in Chromium against the visitor's saved conversations, offline model at {token_ms} ms per token"
    )
    print(calibrate().line())
    print(f"{machine_line()}; load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after")
    print(report(results, refresh))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--saved", default="0,100,1000")
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument("--token-ms", type=float, default=20)
    parser.add_argument("--refreshes", type=int, default=50)
    args = parser.parse_args()
    sizes = sorted(int(n) for n in args.saved.split(","))
    asyncio.run(main(sizes, args.turns, args.token_ms, args.refreshes))
