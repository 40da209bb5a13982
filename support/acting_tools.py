"""A tool that acts, for the approval tests (it writes a file, and needs a person's approval), and
how an API client finds the calls waiting for its approval."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from langchain_core.tools import BaseTool, tool
from pydantic import BaseModel, Field

from agent.tools import requires_approval


class NewFile(BaseModel):
    filename: str = Field(description="The file's name (no directories).")
    text: str = Field(description="What to write in it.")


def file_writer(directory: Path) -> BaseTool:
    """`write_file`, writing into `directory` only, each call approved by a person first."""

    @requires_approval
    @tool(args_schema=NewFile)
    async def write_file(filename: str, text: str) -> str:
        """Write `text` into a file called `filename`."""
        path = directory / Path(filename).name
        path.write_text(text)
        return f"wrote {len(text)} characters to {path.name}"

    return write_file


def next_waiting_call(job: Any, seen: set[str], timeout_s: float = 20) -> dict[str, Any]:
    """The next call waiting for approval that a `gradio_client` chat job shows (not one of `seen`):
    the message whose metadata id is `turn-approval`; its call id is in the metadata `log`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for messages in reversed(job.outputs()):
            for message in messages:
                metadata = message["metadata"]
                if metadata.get("id") == "turn-approval" and metadata["log"] not in seen:
                    seen.add(metadata["log"])
                    return message
        time.sleep(0.02)
    raise AssertionError(f"no new call waiting for approval within {timeout_s} s")
