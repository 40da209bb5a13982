"""The adversarial Markdown corpus (support/adversarial_markdown.py) through the renderer, then through
Chromium's own HTML parser: no element or attribute outside the allow-list exists in the page, and no
request leaves for another host. Once per item on a bare page (where an `<img>` that slipped
through would fire its request), once inside the app's real Chatbot as a model's answer and tool call.
"""

import time
from urllib.parse import urlsplit

import pytest

from support.adversarial_markdown import corpus
from support.browser import DESKTOP, ask
from support.fakes import ScriptedChatModel, answer, call, calls
from support.servers import serving_model
from ui.render import ALLOWED_ATTRIBUTES, ALLOWED_TAGS, markdown_html

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ALLOWED = {
    tag: sorted(ALLOWED_ATTRIBUTES.get(tag, set()) | ({"target", "rel"} if tag == "a" else set()))
    for tag in ALLOWED_TAGS
}
ALLOWED_ONCE_CLICKED = {**ALLOWED, "details": ["open"]}  # the browser marks a `<details>` the reader opened

# Every element under `root`, and what in it is outside the allow-list (tags, attributes, link targets).
OUTSIDE_THE_ALLOW_LIST = """([root, allowed]) => {
    const found = [];
    for (const element of root.querySelectorAll("*")) {
        const tag = element.tagName.toLowerCase();
        if (!(tag in allowed)) { found.push(`<${tag}>`); continue; }
        for (const attribute of element.attributes) {
            if (!allowed[tag].includes(attribute.name)) found.push(`<${tag} ${attribute.name}>`);
        }
        if (tag === "a" && element.hasAttribute("href")) {
            const url = new URL(element.getAttribute("href"), document.baseURI);
            if (!["http:", "https:"].includes(url.protocol)) found.push(`<a href=${url.protocol}>`);
            if (element.target !== "_blank" || element.rel !== "noopener noreferrer") found.push("<a> opens in place");
        }
    }
    return found;
}"""


@pytest.fixture(scope="module")
def leak(listener) -> str:
    """A URL on the listening server: any request for it is a leak."""
    return f"{listener[0]}/leak"


def test_each_item_parsed_by_chromium_has_only_allowed_elements_and_fetches_nothing(browser, listener, leak):
    _, received = listener
    received.clear()
    page = browser.new_page()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.set_content("<div id=root></div>")
    try:
        for own_markup in (False, True):
            for name, text in corpus(leak).items():
                shown = markdown_html(text, own_markup=own_markup)
                root = page.evaluate_handle("html => { root.innerHTML = html; return root; }", shown)
                outside = page.evaluate(OUTSIDE_THE_ALLOW_LIST, [root, ALLOWED])
                assert outside == [], f"{name} (own markup: {own_markup}): {outside} in {shown}"
        page.wait_for_timeout(1_000)  # time for any image, style or frame to ask for its URL
        assert requests == [] and received == []
    finally:
        page.close()


@pytest.fixture(scope="module")
def hostile_app(leak):
    """A model that writes the whole corpus into its tool call's arguments and into its answer."""
    items = corpus(leak)
    model = ScriptedChatModel(
        script=[
            calls(call("add", a="\n".join(items.values()), b=1)),
            answer("The answer is **4**.\n\n" + "\n\n".join(items.values())),
        ]
    )
    with serving_model(model) as url:
        yield url


def test_the_corpus_in_the_app_s_chat_shows_as_text_and_reaches_no_other_host(browser, hostile_app, listener):
    _, received = listener
    received.clear()
    page = browser.new_page(viewport=DESKTOP)
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    try:
        page.goto(hostile_app)
        ask(page, "what is 2 + 2")
        page.get_by_text("📊 2 steps").wait_for(timeout=30_000)
        page.get_by_text("🛠️ add → error").click()  # open the tool call: its arguments render too
        page.get_by_text("📊 2 steps").click()  # and the footer
        page.locator("#agent-chat details[open]").wait_for()
        page.wait_for_timeout(1_000)
        bodies = page.locator("#agent-chat span.md")  # what the Chatbot draws of each text and title
        assert bodies.count() >= 5  # question, tool title and body, answer, footer
        for index in range(bodies.count()):
            outside = page.evaluate(
                OUTSIDE_THE_ALLOW_LIST, [bodies.nth(index).element_handle(), ALLOWED_ONCE_CLICKED]
            )
            assert outside == [], outside
        answer_text = bodies.filter(has_text="The answer is").first.inner_text()
        assert "<img src=x onerror=alert(1)>" in answer_text, "the model's HTML is shown, as text"
        assert page.locator("#agent-chat strong", has_text="4").count() >= 1, "its Markdown is kept"
        assert page.get_by_role("button", name="Continue").count() == 0
    finally:
        page.close()
    app_host = urlsplit(hostile_app).netloc
    assert [url for url in requests if urlsplit(url).netloc not in (app_host, "")] == []
    assert received == []


def clipboard_once(page, wanted, timeout_s: float = 10) -> str:
    """The clipboard's text once `wanted(text)` holds (Gradio copies first, the page then replaces it)."""
    deadline = time.monotonic() + timeout_s
    while not wanted(text := page.evaluate("navigator.clipboard.readText()")):
        assert time.monotonic() < deadline, f"the clipboard holds {text!r}"
        page.wait_for_timeout(100)
    return text


def test_copying_an_answer_copies_the_text_as_shown_not_its_html(browser, served_app):
    context = browser.new_context(viewport=DESKTOP, permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    try:
        page.goto(served_app)
        ask(page, "what is 2 + 2")
        page.get_by_text("📊 2 steps").wait_for(timeout=30_000)
        page.locator("#agent-chat .bot-row + .message-buttons").get_by_role(
            "button", name="Copy message"
        ).click()
        copied = clipboard_once(page, lambda text: "2 + 2 =" in text and "<" not in text)
        assert "📊 2 steps" in copied and "strong" not in copied
        page.locator("#agent-chat").get_by_role("button", name="Copy conversation").click()
        copied = clipboard_once(page, lambda text: text.startswith("what is 2 + 2\n\n") and "<" not in text)
        assert "📊 2 steps" in copied
    finally:
        context.close()
