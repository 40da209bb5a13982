"""A tool that acts, for the approval tests: it writes a file, and needs a person's approval."""

from __future__ import annotations

from pathlib import Path

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
