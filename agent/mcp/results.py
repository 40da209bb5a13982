"""An MCP tool result as the text the model reads and the chat shows.

Text content as it is; structured content as JSON in a fence (and text blocks that only repeat it
left out); images and audio as a one-line note (nothing is fetched or decoded); resource links as a
line with their URI in code (so nothing renders as a link the page would load); embedded text
resources as their text. Results longer than `MAX_RESULT_CHARS` are cut, and say so.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

import mcp.types as types

MAX_RESULT_CHARS = 20_000
"""What the model gets of one result at most (a tool's answer is not a place for a whole file)."""


def result_text(result: types.CallToolResult) -> str:
    """The result as one text (the caller treats `result.is_error` as the tool's error)."""
    parts: list[str] = []
    structured = result.structured_content
    if structured is not None:
        parts.append(f"```json\n{json.dumps(structured, indent=2, ensure_ascii=False)}\n```")
    for block in result.content:
        if (
            isinstance(block, types.TextContent)
            and structured is not None
            and _same_json(block.text, structured)
        ):
            continue
        parts.append(_block_text(block))
    text = "\n\n".join(part for part in parts if part) or "(the tool returned nothing)"
    return cut(text, MAX_RESULT_CHARS)


def cut(text: str, limit: int) -> str:
    """`text`, or its first `limit` characters and a line saying how much there was."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n\n[… cut: the result has {len(text):,} characters; the first {limit:,} are kept]"


def _block_text(block: Any) -> str:
    if isinstance(block, types.TextContent):
        return block.text
    if isinstance(block, types.ImageContent | types.AudioContent):
        kind = "image" if isinstance(block, types.ImageContent) else "audio"
        return f"[{kind}: {block.mime_type}, {_size(block.data)}; not shown]"
    if isinstance(block, types.ResourceLink):
        details = ", ".join(d for d in (block.mime_type, block.description) if d)
        return f"🔗 Resource `{block.uri}` ({block.name}{', ' + details if details else ''})"
    if isinstance(block, types.EmbeddedResource):
        resource = block.resource
        if isinstance(resource, types.TextResourceContents):
            return f"Resource `{resource.uri}`:\n{resource.text}"
        return f"[resource `{resource.uri}`: {resource.mime_type or 'binary'}, {_size(resource.blob)}; not shown]"
    return f"[{getattr(block, 'type', 'unknown')} content; not shown]"


def _size(data: str) -> str:
    try:
        size = len(base64.b64decode(data, validate=False))
    except (binascii.Error, ValueError):
        size = len(data)
    return f"{size / 1000:.1f} kB" if size >= 1000 else f"{size} bytes"


def _same_json(text: str, value: Any) -> bool:
    try:
        return json.loads(text) == value
    except ValueError:
        return False
