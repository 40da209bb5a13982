"""Approving tool calls over the API: the `chat` job shows the waiting call, `approve` decides it.

The app talks to a real OpenAI-compatible server (llmock) that calls `write_file`, a tool
that needs approval and writes into a temporary directory; clients are `gradio_client`s,
as in the README.
"""

import time
from collections.abc import Iterator

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError
from llmock.pytest_plugin import LLMock
from llmock.scenarios import Reply, ToolCall
from llmock.testing import LLMockServer
from pydantic import SecretStr

import app
from agent import Settings, Toolbox
from agent.tools import TOOLS
from support.acting_tools import file_writer, next_waiting_call
from support.servers import MANY_VISITORS, launch

pytestmark = pytest.mark.slow

APPROVAL_ID = "turn-approval"  # the metadata id of the message of a call that waits


@pytest.fixture(scope="module")
def model_server() -> Iterator[LLMockServer]:
    with LLMockServer() as server:
        yield server


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("written")


@pytest.fixture(scope="module")
def acting_app(model_server, folder) -> Iterator[str]:
    """The app with `write_file` (needs approval) among its tools, on the OpenAI-compatible path."""
    settings = Settings(
        api_key=SecretStr("sk-test-server"), base_url=model_server.base_url(), model="gpt-test"
    )
    toolbox = Toolbox((*TOOLS, file_writer(folder)))
    demo = app.create_app(settings, concurrency=8, guard=MANY_VISITORS, toolbox=toolbox)
    yield launch(demo, MANY_VISITORS)
    demo.close()


@pytest.fixture
def model(model_server) -> LLMock:
    return LLMock(model_server).reset()


def will_write(model: LLMock, *files: tuple[str, str], answer: str) -> None:
    """The model's next turn: write these (name, text) files in one step, then answer."""
    calls = tuple(ToolCall("write_file", {"filename": name, "text": text}) for name, text in files)
    model.add(Reply(tool_calls=calls))
    model.call_tool("final_answer", {"answer": answer, "tools_used": ["write_file"]})


def final(job) -> list[dict]:
    messages = job.result(timeout=20)
    assert job.status().code.name != "FAILED"
    return messages


def answer_of(messages: list[dict]) -> str:
    return next(m["content"] for m in messages if not m["metadata"])


def test_a_waiting_call_is_one_message_with_its_id_and_approving_it_runs_it(acting_app, model, folder):
    will_write(model, ("approved.txt", "hello"), answer="Wrote approved.txt.")
    client = Client(acting_app, verbose=False)
    job = client.submit("write hello to approved.txt", api_name="/chat")

    waiting = next_waiting_call(job, set())
    assert waiting["metadata"]["title"] == "⏸️ Waiting for your approval: tool(write_file)"
    assert '"filename": "approved.txt"' in waiting["content"] and '"text": "hello"' in waiting["content"]
    time.sleep(0.3)
    assert not (folder / "approved.txt").exists(), "nothing runs before the decision"
    assert not job.done(), "the chat job keeps streaming while it waits"

    assert client.predict(waiting["metadata"]["log"], "approve", "", api_name="/approve") == "approved"
    messages = final(job)
    assert (folder / "approved.txt").read_text() == "hello"
    assert answer_of(messages) == "Wrote approved.txt."
    [step] = [m for m in messages if m["metadata"].get("title", "").startswith("🛠️ write_file")]
    assert "Approved by you" in step["content"]
    assert not [m for m in messages if m["metadata"].get("id") == APPROVAL_ID]


def test_a_denial_with_a_reason_reaches_the_model_and_nothing_is_written(acting_app, model, folder):
    will_write(model, ("denied.txt", "secret"), answer="I did not write denied.txt.")
    client = Client(acting_app, verbose=False)
    job = client.submit("write secret to denied.txt", api_name="/chat")
    call_id = next_waiting_call(job, set())["metadata"]["log"]

    assert client.predict(call_id, "deny", "wrong folder", api_name="/approve") == "denied"
    messages = final(job)
    assert not (folder / "denied.txt").exists()
    [step] = [m for m in messages if m["metadata"].get("title") == "🛠️ write_file → denied"]
    assert "Denied** by you" in step["content"] and "wrong folder" in step["content"]
    told = [m for m in model.requests[-1].body["messages"] if m["role"] == "tool"]
    assert "did not approve" in told[0]["content"] and "wrong folder" in told[0]["content"]


def test_refused_decisions(acting_app, model, folder):
    will_write(model, ("one.txt", "1"), ("two.txt", "2"), answer="Wrote one.txt only.")
    client, stranger = Client(acting_app, verbose=False), Client(acting_app, verbose=False)
    job = client.submit("write 1 to one.txt and 2 to two.txt", api_name="/chat")
    seen: set[str] = set()
    first = next_waiting_call(job, seen)["metadata"]["log"]

    def refused(who: Client, call_id: str, decision: str = "approve") -> str:
        with pytest.raises(AppError) as error:
            who.predict(call_id, decision, "", api_name="/approve")
        return str(error.value)

    assert "No turn of yours" in refused(stranger, first), "another session cannot decide this call"
    assert "No call with this id" in refused(client, "call_not_waiting")
    assert '"approve" or "deny"' in refused(client, first, decision="yes please")
    assert not (folder / "one.txt").exists()

    assert client.predict(first, "approve", "", api_name="/approve") == "approved"
    second = next_waiting_call(job, seen)["metadata"]["log"]
    assert "already decided" in refused(client, first), "a second decision on the same call"
    assert client.predict(second, "deny", "", api_name="/approve") == "denied"
    final(job)
    assert "No turn of yours" in refused(client, second), "the turn has finished"
    assert (folder / "one.txt").read_text() == "1" and not (folder / "two.txt").exists()
