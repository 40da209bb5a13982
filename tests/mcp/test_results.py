"""What the model reads of an MCP tool result (and the chat shows)."""

import base64

import mcp.types as types

from agent.mcp.results import MAX_RESULT_CHARS, result_text


def result(*content, structured=None, is_error=False):
    return types.CallToolResult(content=list(content), structured_content=structured, is_error=is_error)


def test_text_is_kept_as_it_is():
    assert result_text(result(types.TextContent(text="a"), types.TextContent(text="b"))) == "a\n\nb"


def test_structured_content_is_json_in_a_fence_and_its_text_copy_left_out():
    text = result_text(result(types.TextContent(text='{"hour": 12}'), structured={"hour": 12}))
    assert text == '```json\n{\n  "hour": 12\n}\n```'


def test_images_audio_and_binary_resources_are_a_note_never_data():
    png = base64.b64encode(b"\x89PNG" + b"0" * 2000).decode()
    text = result_text(
        result(
            types.ImageContent(data=png, mime_type="image/png"),
            types.AudioContent(data="AAAA", mime_type="audio/wav"),
            types.EmbeddedResource(
                resource=types.BlobResourceContents(uri="file:///x.bin", blob="AAAA", mime_type=None)
            ),
        )
    )
    assert text.splitlines()[0] == "[image: image/png, 2.0 kB; not shown]"
    assert "[audio: audio/wav, 3 bytes; not shown]" in text
    assert "[resource `file:///x.bin`: binary, 3 bytes; not shown]" in text
    assert png[:50] not in text


def test_resource_links_and_text_resources_show_their_uri_as_code():
    text = result_text(
        result(
            types.ResourceLink(name="README", uri="https://example.com/r.md", mime_type="text/markdown"),
            types.EmbeddedResource(resource=types.TextResourceContents(uri="file:///a.txt", text="hello")),
        )
    )
    assert (
        text
        == "🔗 Resource `https://example.com/r.md` (README, text/markdown)\n\nResource `file:///a.txt`:\nhello"
    )


def test_an_empty_result_says_so():
    assert result_text(result()) == "(the tool returned nothing)"


def test_a_long_result_is_cut_and_says_how_long_it_was():
    text = result_text(result(types.TextContent(text="x" * 50_000)))
    assert text.startswith("x" * MAX_RESULT_CHARS + "\n\n[… cut: the result has 50,000 characters")
    assert len(text) < MAX_RESULT_CHARS + 100
