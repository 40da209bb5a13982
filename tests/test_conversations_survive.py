"""Saved conversations survive what used to lose them, in a real Chromium: a restart of the app
(SQLite), landing on the other worker behind nginx (PostgreSQL), and thousands of them."""

from __future__ import annotations

import asyncio
import shutil
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from gradio_client import Client

from deploy.processes import PROJECT_ROOT, ServedProcess
from deploy.workers import serve
from store import ConversationStore, database_url
from support.browser import ask, new_chat, wait_for_titles
from support.servers import MANY_VISITORS, app_environment, free_port, launch

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]


def chat_three_conversations(page) -> None:
    for question, answer in [
        ("what is 2 + 3", "2 + 3 ="),
        ("what is 4 * 5", "4 * 5 ="),
        ("what is 9 - 1", "9 - 1 ="),
    ]:
        new_chat(page)
        ask(page, question)
        page.get_by_text(answer).first.wait_for(timeout=30_000)
    ask(page, "times 10")
    page.get_by_text("8 * 10 =").first.wait_for(timeout=30_000)


ALL_THREE = ["what is 9 - 1", "what is 4 * 5", "what is 2 + 3"]


def start_app(port: int, env: dict[str, str]) -> ServedProcess:
    served = ServedProcess([sys.executable, "app.py", "--port", str(port)], env, PROJECT_ROOT)
    served.wait_for_url(timeout=120)
    return served


def test_after_a_restart_the_panel_and_every_conversation_are_there(visitor, tmp_path):
    port, env = free_port(), app_environment(AGENT_DATA_DIR=str(tmp_path))
    served = start_app(port, env)
    try:
        page = visitor.new_page()
        page.goto(f"http://127.0.0.1:{port}/")
        chat_three_conversations(page)
        wait_for_titles(page, ALL_THREE)
        api_client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        api_messages = api_client.predict("what is 6 * 7", api_name="/chat")
        api_conversation = next(
            m["content"] for m in api_messages if m["metadata"].get("id") == "turn-conversation"
        )
        owner = api_client.cookies["agent_owner"]
    finally:
        served.stop()

    served = start_app(port, env)
    try:
        later = Client(
            f"http://127.0.0.1:{port}/", verbose=False, httpx_kwargs={"cookies": {"agent_owner": owner}}
        )
        follow_up = later.predict("minus 2", saved_conversation=api_conversation, api_name="/chat")
        assert "42 - 2 = **40**" in [m["content"] for m in follow_up], (
            "the API client goes on where it stopped"
        )
        started = time.perf_counter()
        page.reload()
        wait_for_titles(page, ALL_THREE)
        listed_s = time.perf_counter() - started
        page.locator("#saved-list").get_by_text("what is 9 - 1").click()
        page.get_by_text("8 * 10 =").first.wait_for(timeout=10_000)
        ask(page, "plus 1")  # and it goes on where it stopped
        page.get_by_text("80 + 1 =").first.wait_for(timeout=30_000)
        print(f"after a restart: 3 of 3 conversations listed {listed_s:.2f} s after a reload, 1 of 1 by API")
    finally:
        served.stop()


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed")
def test_on_two_workers_a_visitor_who_lands_on_the_other_one_sees_everything(visitor, postgres, tmp_path):
    env = app_environment(AGENT_DATABASE_URL=postgres.new_database(), AGENT_MAX_CHATS_PER_CLIENT="1000")
    with serve(2, free_port(), env=env, worker_ports=[free_port(), free_port()]) as running:
        page = visitor.new_page()
        page.goto(running.url)
        chat_three_conversations(page)
        wait_for_titles(page, ALL_THREE)
        listed_s = []
        for _ in range(12):  # a browser restart forgets the session cookie nginx routes by
            visitor.clear_cookies(name="agent_route")
            started = time.perf_counter()
            page.reload()
            wait_for_titles(page, ALL_THREE)
            listed_s.append(time.perf_counter() - started)
        print(f"two workers: 3 of 3 conversations listed on 12 of 12 visits, {max(listed_s):.2f} s at most")
        page.locator("#saved-list").get_by_text("what is 9 - 1").click()
        page.get_by_text("8 * 10 =").first.wait_for(timeout=10_000)
        for worker in running.processes:  # both served this visitor (all 13 visits on one: 1 in 4,096)
            assert "conversation store open (postgresql)" in worker.output


@pytest.fixture(scope="module")
def app_with_a_store(tmp_path_factory) -> Iterator[tuple[str, str]]:
    """The app in this process, saving to SQLite in a temporary directory; its URL and the store's URL."""
    import app
    from agent import ServerSettings, Settings

    data = tmp_path_factory.mktemp("data")
    saved = app.saved_conversations(ServerSettings(data_dir=data))
    demo = app.create_app(Settings(offline_token_delay_ms=1), guard=MANY_VISITORS, saved=saved)
    yield launch(demo, MANY_VISITORS), database_url(data)
    demo.close()


async def _save_many(url: str, owner: str, count: int) -> None:
    store = await ConversationStore.open(url)
    try:
        for i in range(count):
            turn = [
                {"role": "user", "content": f"question number {i}"},
                {"role": "assistant", "content": f"answer {i}"},
            ]
            await store.start(owner, f"question number {i}", turn, now=1_000_000.0 + i)
    finally:
        await store.aclose()


def test_two_thousand_conversations_page_through_and_open(visitor, app_with_a_store):
    url, store_url = app_with_a_store
    page = visitor.new_page()
    page.goto(url)
    page.get_by_text("No saved conversations yet").wait_for(timeout=10_000)
    owner = next(c["value"] for c in visitor.cookies() if c["name"] == "agent_owner")
    with ThreadPoolExecutor(1) as other_thread:  # Playwright's sync API runs a loop in this one
        other_thread.submit(asyncio.run, _save_many(store_url, owner, 2_000)).result()

    started = time.perf_counter()
    page.reload()
    wait_for_titles(page, [f"question number {i}" for i in range(1999, 1974, -1)])
    first_page_s = time.perf_counter() - started
    newer, older = page.get_by_role("button", name="‹ Newer"), page.get_by_role("button", name="Older ›")
    turned_s = []
    for first in (1974, 1949, 1924):  # each page listed before the next click
        started = time.perf_counter()
        older.click()
        wait_for_titles(page, [f"question number {i}" for i in range(first, first - 25, -1)])
        turned_s.append(time.perf_counter() - started)
    newer.click()
    wait_for_titles(page, [f"question number {i}" for i in range(1949, 1924, -1)])
    started = time.perf_counter()
    page.locator("#saved-list").get_by_text("question number 1930", exact=True).click()
    page.get_by_text("answer 1930", exact=True).wait_for(timeout=10_000)
    opened_s = time.perf_counter() - started

    started = ask(page, "what is 2 + 2")  # the page still answers, and the reopened one goes on
    page.get_by_text("2 + 2 =").first.wait_for(timeout=30_000)
    answered_s = time.perf_counter() - started
    saved = [i for i in range(1949, 1923, -1) if i != 1930]  # the turn saved: it left this page
    wait_for_titles(page, [f"question number {i}" for i in saved])
    page.reload()  # it is the newest now
    wait_for_titles(page, [f"question number {i}" for i in (1930, 1999, 1998, 1997, 1996)], prefix=True)
    print(
        f"2,000 saved conversations: first page listed {first_page_s:.2f} s after a reload, "
        f"Older pages {', '.join(f'{s:.2f}' for s in turned_s)} s, one opened {opened_s:.2f} s, "
        f"a question answered {answered_s:.2f} s after Enter"
    )
