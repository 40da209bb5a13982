"""The lean Gradio client's in-place diff: the same result as gradio_client's copying one."""

import copy

import pytest
from gradio.utils import diff
from gradio_client.utils import apply_diff

from support.gradio_http import patched

TURN = [
    {"role": "user", "content": [{"type": "text", "text": "hi"}], "metadata": {"title": "x"}},
    {"role": "assistant", "content": "ab"},
]
CHANGES = {
    "message added": (TURN, [*TURN, {"role": "assistant", "content": "new"}]),
    "text appended": (TURN, [TURN[0], {"role": "assistant", "content": "abcd"}]),
    "message removed": (TURN, [TURN[1]]),
    "key added and text changed": (
        TURN,
        [
            {
                "role": "user",
                "content": [{"type": "text", "text": "hi!"}],
                "metadata": {"title": "x", "status": "done"},
            }
        ],
    ),
    "list to update": (TURN, {"__type__": "update"}),
    "update to list": ({"__type__": "update"}, TURN),
}


@pytest.mark.parametrize(("old", "new"), CHANGES.values(), ids=CHANGES.keys())
def test_patching_in_place_gives_what_gradio_client_gives(old, new):
    edits = diff(old, new)
    assert patched(copy.deepcopy(old), edits) == apply_diff(old, edits) == new
