"""Chat text as the HTML the page shows: one Markdown parser, then one allow-list sanitiser.

Everything the Chatbots show is rendered here, on the server, and the Chatbots are
told not to render Markdown themselves (`render_markdown=False`: the page only runs
its own sanitiser, DOMPurify, over what it is sent). Text from a model or a tool
(answers, thoughts, tool arguments and results, error lines) is Markdown read by
markdown-it (CommonMark, plus tables and strikethrough) with raw HTML **off**: a tag
the model writes is text on the page, visible as written. Questions and titles are
shown as typed (escaped). Our own footer is the one message whose HTML is ours
(`<details>`), so it is parsed with HTML on; it passes the same sanitiser.

The sanitiser (nh3) keeps only `ALLOWED_TAGS` with `ALLOWED_ATTRIBUTES`: no images,
no forms or inputs, no media, no `style`, no classes, no SVG. Links are http(s)
only (markdown-it turns any other link into text, nh3 drops any other `href`), and
open in a new tab with `rel="noopener noreferrer"`.

Rendering costs ~3 µs a character, so it is done once per text (kept by content,
both ways: the page sends the HTML back as the conversation, and `source_of` gives
the text it came from), and a text longer than `MAX_MARKDOWN_CHARS` is shown as
written instead of parsed (Markdown's worst inputs cost far more than that).
"""

from __future__ import annotations

import hashlib
import html
import re
import threading
from collections import OrderedDict

import nh3
from markdown_it import MarkdownIt

MAX_MARKDOWN_CHARS = 20_000
MAX_KEPT_CHARS = 32 * 2**20
"""Texts kept rendered (and their sources), in characters, across sessions; least recently used go first."""

ALLOWED_TAGS = frozenset(
    {
        *("p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6"),
        *("strong", "em", "s", "del", "code", "pre", "blockquote"),
        *("ul", "ol", "li", "table", "thead", "tbody", "tr", "th", "td"),
        *("a", "details", "summary"),
    }
)
ALLOWED_ATTRIBUTES = {"a": {"href"}, "ol": {"start"}}
LINK_SCHEMES = ("http://", "https://")

_BLOCK_TAG = "p|h[1-6]|ul|ol|li|blockquote|pre|table|thead|tbody|tr|th|td|details|summary"
_NEWLINE_AFTER_BLOCK = re.compile(rf"(</?(?:{_BLOCK_TAG})>|<br>|<hr>)\n")
_TAG = re.compile(r"<[^>]*>")
_BACKTICKS = re.compile(r"`+")


def _parser(html_allowed: bool) -> MarkdownIt:
    parser = MarkdownIt("commonmark", {"html": html_allowed}).enable(["table", "strikethrough"])
    parser.disable("image")  # `![alt](url)` reads as "!" and a link: no image is ever fetched
    parser.validateLink = _is_web_link  # type: ignore[method-assign]
    return parser


def _is_web_link(url: str) -> bool:
    return url.strip().lower().startswith(LINK_SCHEMES)


_MODEL_TEXT = _parser(html_allowed=False)
_OWN_MARKUP = _parser(html_allowed=True)
_CLEANER = nh3.Cleaner(
    tags=set(ALLOWED_TAGS),
    attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
    url_schemes={"http", "https"},
    url_relative="deny",
    link_rel="noopener noreferrer",
    set_tag_attribute_values={"a": {"target": "_blank"}},
    strip_comments=True,
)


def sanitized(fragment: str) -> str:
    """`fragment` with only the allowed tags and attributes left (the rest dropped, their text kept)."""
    return _CLEANER.clean(fragment)


def markdown_html(text: str, *, own_markup: bool = False) -> str:
    """Markdown `text` as safe HTML; raw HTML in it shows as text unless it is `own_markup`
    (this app's own, e.g. the footer's `<details>`), which is still sanitised."""
    if len(text) > MAX_MARKDOWN_CHARS:
        return text_html(text)
    key = (own_markup, text)
    shown = _rendered.get(key)
    if shown is None:
        shown = _render(text, own_markup)
        _rendered.put(key, shown)
    return shown


def text_html(text: str) -> str:
    """`text` shown exactly as written (the Chatbot keeps its line breaks)."""
    return html.escape(text, quote=False)


def source_of(shown: str) -> str:
    """The text that was rendered as `shown` (HTML the page sent back); for HTML this server did
    not render (or no longer remembers), its text without tags."""
    source = _rendered.source(shown)
    return source if source is not None else html.unescape(_TAG.sub("", shown))


def fenced(text: str, info: str = "") -> str:
    """`text` in a fenced code block that nothing inside can close (tool arguments)."""
    longest = max((len(run) for run in _BACKTICKS.findall(text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{text}\n{fence}"


def _render(text: str, own_markup: bool) -> str:
    parser = _OWN_MARKUP if own_markup else _MODEL_TEXT
    # The page keeps line breaks (`white-space: pre-line`): drop the ones between blocks.
    return sanitized(_NEWLINE_AFTER_BLOCK.sub(r"\1", parser.render(text))).strip()


class _Rendered:
    """Rendered texts by source and sources by rendered text, within `max_chars`."""

    def __init__(self, max_chars: int) -> None:
        self.max_chars = max_chars
        self.chars = 0
        self._by_source: OrderedDict[tuple[bool, str], str] = OrderedDict()
        self._sources: dict[bytes, str] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[bool, str]) -> str | None:
        with self._lock:
            shown = self._by_source.get(key)
            if shown is not None:
                self._by_source.move_to_end(key)
            return shown

    def put(self, key: tuple[bool, str], shown: str) -> None:
        with self._lock:
            if key in self._by_source:
                return
            self._by_source[key] = shown
            self._sources[_digest(shown)] = key[1]
            self.chars += len(key[1]) + len(shown)
            while self.chars > self.max_chars and self._by_source:
                (_, source), old = self._by_source.popitem(last=False)
                self._sources.pop(_digest(old), None)
                self.chars -= len(source) + len(old)

    def source(self, shown: str) -> str | None:
        with self._lock:
            return self._sources.get(_digest(shown))


_rendered = _Rendered(MAX_KEPT_CHARS)


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()
