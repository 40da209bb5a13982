"""Approval with a real MCP server from PyPI that acts: `mcp-server-git` in a temporary repository.

Its `git_add` carries no read-only hint, so it needs approval; `git_status` is read-only and
runs at once. Through the whole app (an OpenAI-compatible model server that calls the tools,
a `gradio_client` that decides): denied, the repository is as it was; approved, the file is staged.
"""

import subprocess
from collections.abc import Iterator

import pytest
from gradio_client import Client
from llmock.pytest_plugin import LLMock
from llmock.scenarios import Reply, ToolCall
from llmock.testing import LLMockServer
from pydantic import SecretStr

import app
from agent import Settings, needs_approval
from agent.mcp.servers import start_configured
from support.acting_tools import next_waiting_call
from support.mcp_servers import git_repository, reference_server, write_config
from support.servers import MANY_VISITORS, launch

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model_server() -> Iterator[LLMockServer]:
    with LLMockServer() as server:
        yield server


@pytest.fixture(scope="module")
def git_app(tmp_path_factory, model_server):
    folder = tmp_path_factory.mktemp("mcp-approval")
    repo = git_repository(folder)
    config = write_config(
        folder, {"git": reference_server("git", "-r", str(repo), tools=["git_status", "git_add"])}
    )
    servers, toolbox = start_configured(config, {})
    settings = Settings(
        api_key=SecretStr("sk-test-server"), base_url=model_server.base_url(), model="gpt-test"
    )
    demo = app.create_app(settings, concurrency=8, guard=MANY_VISITORS, toolbox=toolbox)
    try:
        yield launch(demo, MANY_VISITORS), repo, toolbox
    finally:
        demo.close()
        if servers is not None:
            servers.close()


def status(repo) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), "status", "--porcelain"], capture_output=True, text=True
    ).stdout


def stage_notes(url: str, model: LLMock, repo, decision: str, reason: str = "") -> list[dict]:
    """Ask to stage notes.txt; the model calls git_add; the client sends `decision` once it waits."""
    model.add(Reply(tool_calls=(ToolCall("git_add", {"repo_path": str(repo), "files": ["notes.txt"]}),)))
    model.call_tool("final_answer", {"answer": "Done.", "tools_used": ["git_add"]})
    client = Client(url, verbose=False)
    job = client.submit("stage notes.txt", api_name="/chat")
    waiting = next_waiting_call(job, set())
    assert waiting["metadata"]["title"] == "⏸️ Waiting for your approval: tool(git_add)"
    assert status(repo) == "?? notes.txt\n", "nothing happens while the call waits"
    client.predict(waiting["metadata"]["log"], decision, reason, api_name="/approve")
    return job.result(timeout=30)


def test_the_git_server_s_acting_tool_waits_for_approval_and_its_read_only_one_does_not(git_app):
    _, _, toolbox = git_app
    assert needs_approval(toolbox.get("git_add"))
    assert not needs_approval(toolbox.get("git_status"))


def test_denied_leaves_the_repository_as_it_was_and_approved_stages_the_file(git_app, model_server):
    url, repo, _ = git_app
    model = LLMock(model_server).reset()

    messages = stage_notes(url, model, repo, "deny", "not yet")
    assert status(repo) == "?? notes.txt\n"
    assert any(m["metadata"].get("title") == "🛠️ git_add → denied" for m in messages)

    model.reset()
    messages = stage_notes(url, model, repo, "approve")
    assert status(repo) == "A  notes.txt\n"
    assert any(
        m["metadata"].get("title", "").startswith("🛠️ git_add →") and "denied" not in m["metadata"]["title"]
        for m in messages
    )
