"""Model and tool text as the chat shows it: Markdown kept, no HTML of its own, no image, no way
out of a code block, links only to the web. (The same corpus through Chromium: tests/test_rendering_browser.py.)"""

import re
import time

import orjson
import pytest

from agent.events import AnswerDelta, Finished, StepStarted, ToolArgsDelta, ToolCallStarted, ToolResult
from support.adversarial_markdown import PARSER_DISAGREEMENTS, corpus
from ui.chatbot import PreparedChatbot
from ui.render import (
    ALLOWED_ATTRIBUTES,
    ALLOWED_TAGS,
    MAX_MARKDOWN_CHARS,
    fenced,
    markdown_html,
    source_of,
    text_html,
)
from ui.view import FOOTER_ID, TurnView

CORPUS = corpus("http://127.0.0.1:9/leak")
LEAKS = {
    "img": "<img src=http://127.0.0.1:9999/leak?q=chat>",
    "markdown image": "![chart](http://127.0.0.1:9999/leak?q=chat)",
    "reference image": "![chart][r]\n\n[r]: http://127.0.0.1:9999/leak",
    "css url": '<div style="background:url(http://127.0.0.1:9999/leak)">hi</div>',
    "video poster": "<video poster=http://127.0.0.1:9999/leak></video>",
    "form action": "<form action=http://127.0.0.1:9999/leak><input name=key></form>",
    "html block": "<details>\n\n<img src=x onerror=alert(1)>\n\n</details>",
    "svg": "<svg><image href=http://127.0.0.1:9999/leak /></svg>",
}
_OPENING_TAG = re.compile(r"<([a-zA-Z][a-zA-Z0-9]*)([^>]*)>")
_ATTRIBUTE = re.compile(r'\s([a-zA-Z-]+)(?:="[^"]*")?')


def tags_and_attributes(html: str) -> list[tuple[str, set[str]]]:
    return [(tag, set(_ATTRIBUTE.findall(rest))) for tag, rest in _OPENING_TAG.findall(html)]


def assert_allowed(html: str) -> None:
    for tag, attributes in tags_and_attributes(html):
        assert tag in ALLOWED_TAGS, html
        allowed = ALLOWED_ATTRIBUTES.get(tag, set()) | ({"target", "rel"} if tag == "a" else set())
        assert attributes <= allowed, html


@pytest.mark.parametrize("text", PARSER_DISAGREEMENTS.values(), ids=list(PARSER_DISAGREEMENTS))
def test_the_three_old_parser_disagreements_are_inert_and_visible(text):
    """Each rendered as a live `<img onerror>` through the hand-written code finder this renderer
    replaced (`safe_markdown` on main before it, then CommonMark with HTML on, as the Chatbot did)."""
    html = markdown_html(text)
    assert "<img" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html, "the tag shows as text"
    assert_allowed(html)


@pytest.mark.parametrize("own_markup", [False, True], ids=["model text", "own markup"])
@pytest.mark.parametrize("text", CORPUS.values(), ids=list(CORPUS))
def test_nothing_outside_the_allow_list_survives(text, own_markup):
    html = markdown_html(text, own_markup=own_markup)
    assert_allowed(html)
    for href in re.findall(r'<a href="([^"]*)"', html):  # a link the reader may follow, to the web only
        assert href.startswith(("http://", "https://")), html


@pytest.mark.parametrize("text", LEAKS.values(), ids=list(LEAKS))
def test_model_text_renders_no_tag_of_its_own_and_no_image(text):
    html = markdown_html(f"The answer is **4**.\n\n{text}")
    assert "<strong>4</strong>" in html
    for tag in ("<img", "<div", "<video", "<form", "<input", "<details", "<svg", "<image"):
        assert tag not in html
    assert_allowed(html)


def test_markdown_is_kept():
    html = markdown_html(
        "# Title\n\n**bold** *em* ~~gone~~ `a < b`\n\n- one\n- two\n\n1. first\n\n> quoted\n\n"
        "| x | y |\n|---|---|\n| 1 | 2 |\n\n```python\nif a < b:\n\n    pass\n```"
    )
    for kept in (
        "<h1>Title</h1>",
        "<strong>bold</strong>",
        "<em>em</em>",
        "<s>gone</s>",
        "<code>a &lt; b</code>",
        "<ul><li>one</li><li>two</li></ul>",
        "<ol><li>first</li></ol>",
        "<blockquote><p>quoted</p></blockquote>",
        "<table><thead><tr><th>x</th><th>y</th></tr></thead><tbody><tr><td>1</td><td>2</td></tr></tbody></table>",
        "<pre><code>if a &lt; b:\n\n    pass\n</code></pre>",
    ):
        assert kept in html


@pytest.mark.parametrize(
    "link",
    [
        "[x](javascript:alert(1))",
        "[x](JaVaScRiPt:alert(1))",
        "[x](java&#115;cript:alert(1))",
        "[x](data:text/html;base64,PHNjcmlwdD4=)",
        "[x](vbscript:msgbox)",
        "[x](/gradio_api/file=/etc/passwd)",
        "[x](//evil.example/)",
        "<javascript:alert(1)>",
    ],
)
def test_links_go_only_to_the_web(link):
    assert "<a" not in markdown_html(link)


def test_a_web_link_opens_apart_from_the_page():
    html = markdown_html("see [docs](https://example.com/a?b=1&c=2) and <http://example.org>")
    assert (
        '<a href="https://example.com/a?b=1&amp;c=2" target="_blank" rel="noopener noreferrer">docs</a>'
        in html
    )
    assert '<a href="http://example.org" target="_blank" rel="noopener noreferrer">' in html


@pytest.mark.parametrize(
    "arguments",
    ['{"a": "`<img src=x>`"}', '{"a": "```\\n<img src=x>\\n```"}', '{"a": "``````<img src=x>"}'],
    ids=["span", "fence", "long-run"],
)
def test_tool_arguments_cannot_close_their_fence(arguments):
    html = markdown_html(f"Arguments:\n{fenced(arguments, 'json')}")
    assert "<img" not in html
    assert html.count("<pre>") == 1


def test_our_footer_keeps_its_details_and_nothing_else():
    html = markdown_html(
        "<details><summary>📊 2 steps</summary>\n\n```text\n0 ── 1 s\n```\n\n"
        "<img src=x onerror=alert(1)><b style=x>b</b></details>",
        own_markup=True,
    )
    assert html.startswith("<details><summary>📊 2 steps</summary><pre><code>0 ── 1 s")
    assert "<img" not in html and "style" not in html
    assert_allowed(html)


def test_questions_and_titles_show_as_typed_and_come_back_exactly():
    for text in ("is 1 < 2 & 3 > 2?", "<b>bold?</b>\nsecond line", "&amp; stays &amp;"):
        assert "<" not in text_html(text)
        assert source_of(text_html(text)) == text


def test_a_rendered_text_maps_back_to_its_source():
    text = "Use `a < b` and **this** [link](https://example.com)."
    assert source_of(markdown_html(text)) == text


def test_a_very_long_text_is_shown_as_written_not_parsed():
    text = "*a " * (MAX_MARKDOWN_CHARS // 3 + 1)
    started = time.perf_counter()
    html = markdown_html(text)
    assert html == text_html(text)
    assert time.perf_counter() - started < 5  # a generous bound: parsing it would take far longer


def test_the_chat_view_s_messages_render_safely():
    view = TurnView("backend <b>")
    for event in [
        StepStarted(1),
        ToolCallStarted("c1", "add", 1),
        ToolArgsDelta("c1", '{"a": "`<img src=x>` ```\\n<img src=y>"}'),
        ToolResult("c1", "add", "Error: <img src=z>", True, 0.1),
        AnswerDelta("**4** <img src=w> ![x](http://127.0.0.1:9999/leak)"),
        Finished("**4**", ("add",)),
    ]:
        view.apply(event)
    messages = [
        {"role": m.role, "content": m.content, "metadata": m.metadata, "options": m.options}
        for m in view.render()
    ]
    shown = orjson.loads(orjson.dumps(PreparedChatbot().postprocess(messages)))
    assert [m["metadata"].get("id") for m in shown][-1] == FOOTER_ID
    for message in shown:
        html = message["content"][0]["text"]
        assert "<img" not in html and "<b>" not in html
        assert_allowed(html)
