"""Model and tool text renders as text: no HTML, no image, no way out of a code block.

Rendered with a CommonMark parser with HTML on, as the Chatbot's Markdown renderer does.
"""

import pytest
from markdown_it import MarkdownIt

from agent.events import AnswerDelta, StepStarted, ToolArgsDelta, ToolCallStarted, ToolResult
from ui.safety import TRIMMED_TITLE, fenced, safe_markdown, trim_history
from ui.view import TurnView

render = MarkdownIt("commonmark", {"html": True}).render

LEAKS = {
    "img": "<img src=http://127.0.0.1:9999/leak?q=chat>",
    "markdown image": "![chart](http://127.0.0.1:9999/leak?q=chat)",
    "reference image": "![chart][r]\n\n[r]: http://127.0.0.1:9999/leak",
    "css url": '<div style="background:url(http://127.0.0.1:9999/leak)">hi</div>',
    "video poster": "<video poster=http://127.0.0.1:9999/leak></video>",
    "form action": "<form action=http://127.0.0.1:9999/leak><input name=key></form>",
    "html block": "<details>\n\n<img src=x onerror=alert(1)>\n\n</details>",
}


@pytest.mark.parametrize("text", LEAKS.values(), ids=list(LEAKS))
def test_model_text_renders_no_tag_and_no_image(text):
    html = render(safe_markdown(f"The answer is **4**.\n\n{text}"))
    assert "<strong>4</strong>" in html
    for tag in ("<img", "<div", "<video", "<form", "<input", "<details"):
        assert tag not in html


def test_code_is_shown_exactly_as_written():
    text = "Use `a < b` here.\n\n```html\n<img src=x>\n```\n\nand ``a ` b``"
    html = render(safe_markdown(text))
    assert "<code>a &lt; b</code>" in html
    assert "&lt;img src=x&gt;" in html and "<img" not in html
    assert "<code>a ` b</code>" in html


def test_an_unclosed_fence_is_code_to_the_end_as_it_streams():
    assert safe_markdown("so:\n```\n<b>x") == "so:\n```\n<b>x"


def test_a_lone_backtick_does_not_hide_html_after_it():
    assert "<img" not in render(safe_markdown("a ` then <img src=x>"))


@pytest.mark.parametrize(
    "arguments",
    ['{"a": "`<img src=x>`"}', '{"a": "```\\n<img src=x>\\n```"}', '{"a": "``````<img src=x>"}'],
    ids=["span", "fence", "long-run"],
)
def test_tool_arguments_cannot_close_their_fence(arguments):
    html = render(f"Arguments:\n{fenced(arguments, 'json')}")
    assert "<img" not in html
    assert html.count("<pre>") == 1


def test_a_long_history_is_trimmed_in_place_from_the_oldest():
    history = [{"role": "user" if n % 2 == 0 else "assistant", "content": str(n) * 10} for n in range(10)]
    note = trim_history(history, max_messages=4, max_chars=1000)
    assert [m["content"] for m in history[-4:]] == [str(n) * 10 for n in range(6, 10)]
    assert all(m["metadata"]["title"] == TRIMMED_TITLE and m["content"] == "" for m in history[:6])
    assert "AGENT_MAX_CHAT_MESSAGES" in note[0]["content"]
    assert trim_history(history, max_messages=4, max_chars=1000) == [], "already within the limits"


def test_characters_are_limited_too():
    history = [
        {"role": "user", "content": "x" * 600},
        {"role": "user", "content": [{"type": "text", "text": "y" * 600}]},
    ]
    assert trim_history(history, max_messages=100, max_chars=1000)
    assert history[0]["content"] == "" and history[1]["content"][0]["text"] == "y" * 600


def test_the_chat_view_renders_model_and_tool_text_safely():
    view = TurnView("backend")
    for event in [
        StepStarted(1),
        ToolCallStarted("c1", "add", 1),
        ToolArgsDelta("c1", '{"a": "`<img src=x>` ```\\n<img src=y>"}'),
        ToolResult("c1", "add", "Error: <img src=z>", True, 0.1),
        AnswerDelta("**4** <img src=w> ![x](http://127.0.0.1:9999/leak)"),
    ]:
        view.apply(event)
    for message in view.render():
        html = render(message.content)
        assert "<img" not in html, message.content
