"""What each turn saves: only what is new, edits replacing what followed, and one line when it cannot."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from store import Limits, database_url, new_owner_id
from ui.owner import COOKIE, OwnerCookie
from ui.saved import NOT_SAVED_ID, SavedConversations, SessionConversation


def turn(question: str, answer: str) -> list[dict]:
    return [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]


@pytest.fixture
async def saved(tmp_path) -> AsyncIterator[SavedConversations]:
    conversations = SavedConversations(database_url(tmp_path), Limits(), max_page_messages=400)
    yield conversations
    await conversations.aclose()


async def stored(saved: SavedConversations, owner: str, session: SessionConversation) -> list[dict]:
    store = await saved.store()
    assert session.saved_id is not None
    return (await store.load(owner, session.saved_id)).messages


async def test_each_turn_appends_only_its_question_and_messages(saved):
    owner, session = new_owner_id(), copy.deepcopy(SessionConversation())
    first, second = turn("what is 2 + 3", "5"), turn("times 4", "20")
    assert await saved.save_turn(session, owner, [], first) == []
    assert await saved.save_turn(session, owner, first, second) == []
    assert await stored(saved, owner, session) == [*first, *second]
    assert (session.shown, session.offset) == (4, 0)
    page = await (await saved.store()).page(owner)
    assert [s.title for s in page.conversations] == ["what is 2 + 3"]


async def test_a_page_that_holds_less_replaces_what_followed(saved):
    """Edit, retry and undo leave the page with fewer messages than were saved."""
    owner, session = new_owner_id(), SessionConversation()
    first, second = turn("what is 2 + 3", "5"), turn("times 4", "20")
    await saved.save_turn(session, owner, [], first)
    await saved.save_turn(session, owner, first, second)
    edited = turn("times 5", "25")
    await saved.save_turn(session, owner, first, edited)
    assert await stored(saved, owner, session) == [*first, *edited]
    retitled = turn("what is 9 + 9", "18")
    await saved.save_turn(session, owner, [], retitled)
    assert await stored(saved, owner, session) == retitled
    page = await (await saved.store()).page(owner)
    assert [s.title for s in page.conversations] == ["what is 9 + 9"]


async def test_sessions_save_to_their_own_conversations(saved):
    owner = new_owner_id()
    one, two = SessionConversation(), SessionConversation()
    await saved.save_turn(one, owner, [], turn("tab one", "a"))
    await saved.save_turn(two, owner, [], turn("tab two", "b"))
    await saved.save_turn(one, owner, turn("tab one", "a"), turn("more", "c"))
    assert one.saved_id != two.saved_id
    assert await stored(saved, owner, one) == [*turn("tab one", "a"), *turn("more", "c")]
    assert await stored(saved, owner, two) == turn("tab two", "b")


async def test_a_turn_is_saved_where_it_started_whatever_the_page_did_meanwhile(saved):
    """New chat, or another conversation opened, while a turn is still running (or being saved):
    the turn goes to its own conversation and the page stays where it went."""
    owner, session = new_owner_id(), SessionConversation()
    first, second = turn("what is 2 + 3", "5"), turn("times 4", "20")
    await saved.save_turn(session.at_turn_start(), owner, [], first)
    started, running = session.saved_id, session.at_turn_start()
    session.start_new()  # New chat pressed before the running turn was saved
    await saved.save_turn(running, owner, first, second)
    assert session.saved_id is None, "the New chat stays"
    await saved.save_turn(session.at_turn_start(), owner, [], turn("what is 7 * 6", "42"))
    page = await (await saved.store()).page(owner)
    assert [s.title for s in page.conversations] == ["what is 7 * 6", "what is 2 + 3"]
    assert (await (await saved.store()).load(owner, started)).messages == [*first, *second]

    running = session.at_turn_start()  # now another conversation is opened mid-turn
    await saved.reopen(session, owner, started)
    await saved.save_turn(running, owner, turn("what is 7 * 6", "42"), turn("times 2", "84"))
    assert session.saved_id == started and session.shown == 4, "the opened conversation stays on the page"
    assert (await (await saved.store()).load(owner, started)).messages == [*first, *second]
    assert (await (await saved.store()).load(owner, running.saved_id)).messages == [
        *turn("what is 7 * 6", "42"),
        *turn("times 2", "84"),
    ]


async def test_a_store_that_cannot_be_opened_gives_one_line_and_no_error(tmp_path):
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the data directory should be")
    saved = SavedConversations(database_url(blocked), Limits(), max_page_messages=400)
    try:
        notes = await saved.save_turn(SessionConversation(), new_owner_id(), [], turn("q", "a"))
        assert [note["metadata"]["id"] for note in notes] == [NOT_SAVED_ID]
        assert notes[0]["content"].startswith("⚠️ Not saved")
    finally:
        await saved.aclose()


async def test_a_conversation_too_large_to_keep_says_so(tmp_path):
    saved = SavedConversations(database_url(tmp_path), Limits(bytes=1_000), max_page_messages=400)
    try:
        notes = await saved.save_turn(SessionConversation(), new_owner_id(), [], turn("x" * 2_000, "a"))
        assert "larger than this server keeps" in notes[0]["content"]
    finally:
        await saved.aclose()


async def test_without_an_owner_nothing_is_saved(saved):
    session = SessionConversation()
    assert await saved.save_turn(session, None, [], turn("q", "a")) == []
    assert session.saved_id is None


async def owner_echo(request: Request) -> PlainTextResponse:
    return PlainTextResponse(request.cookies.get(COOKIE, ""))


def cookie_app(trust_proxy_headers: bool = False) -> OwnerCookie:
    return OwnerCookie(Starlette(routes=[Route("/", owner_echo)]), trust_proxy_headers=trust_proxy_headers)


async def test_a_new_client_gets_an_http_only_owner_cookie_that_its_first_request_already_carries():
    transport = httpx.ASGITransport(app=cookie_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        first = await client.get("/")
        owner = first.text
        assert len(owner) == 43
        cookie = first.headers["set-cookie"]
        assert cookie.startswith(f"{COOKIE}={owner};") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
        second = await client.get("/")
        assert second.text == owner and "set-cookie" not in second.headers


async def test_a_forged_or_broken_cookie_is_replaced():
    transport = httpx.ASGITransport(app=cookie_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        response = await client.get("/", headers={"cookie": f"{COOKIE}=short; other=1"})
        assert response.text != "short" and len(response.text) == 43


@pytest.mark.parametrize(
    ("base_url", "trust", "forwarded", "third_party"),
    [
        ("https://app", False, None, True),
        ("http://app", True, "https", True),
        ("http://app", False, "https", False),
    ],
)
async def test_over_https_the_cookie_works_inside_another_sites_iframe(
    base_url, trust, forwarded, third_party
):
    transport = httpx.ASGITransport(app=cookie_app(trust_proxy_headers=trust))
    headers = {"x-forwarded-proto": forwarded} if forwarded else {}
    async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
        cookie = (await client.get("/", headers=headers)).headers["set-cookie"]
    assert ("Secure; SameSite=None; Partitioned" in cookie) is third_party
