"""The app end to end over real HTTP: launched on a free port, driven with gradio_client."""

import re
import subprocess
import sys
import time

import pytest
from gradio_client import Client

from agent.offline.model import pieces
from deploy.processes import PROJECT_ROOT
from support.turns import running_turns
from ui.view import FOOTER_ID

pytestmark = pytest.mark.slow

QUESTION = "what is (2 + 3) * (4 + 5)?"


@pytest.fixture
def url(served_app):
    return served_app


@pytest.fixture
def client(url):
    return Client(url, verbose=False)


def stream(client: Client, question: str) -> tuple[list[list[dict]], float]:
    started = time.perf_counter()
    job = client.submit(question, api_name="/chat")
    updates = []
    first_at = None
    for update in job:
        first_at = first_at or time.perf_counter() - started
        updates.append(update)
    return updates, first_at


def test_the_chat_api_streams_many_incremental_updates(client):
    updates, first_at = stream(client, QUESTION)
    assert len(updates) >= 10
    assert first_at < 1.0
    lengths = [len(update) for update in updates]
    assert lengths == sorted(lengths) and lengths[0] < lengths[-1]
    final = updates[-1]
    tools = [m for m in final if m["metadata"].get("title", "").startswith("🛠️")]
    assert [m["metadata"]["title"] for m in tools] == ["🛠️ add → 5", "🛠️ add → 9", "🛠️ multiply → 45"]
    assert all(m["metadata"]["status"] == "done" and m["metadata"]["duration"] >= 0 for m in tools)
    assert any(m["metadata"].get("parent_id") == "step-1" for m in tools)
    answers = [m["content"] for m in final if not m["metadata"]]
    assert answers == ["(2 + 3) * (4 + 5) = **45**"]
    assert final[-1]["metadata"] == {"id": FOOTER_ID}
    assert final[-1]["content"].startswith("<details><summary>📊 3 steps · 3 tool calls")


def test_tool_steps_are_seen_pending_before_they_are_done(client):
    updates, _ = stream(client, "what is 7 times 6")
    statuses = [
        m["metadata"]["status"]
        for update in updates
        for m in update
        if m["metadata"].get("id", "").startswith("call_")
    ]
    assert "pending" in statuses and statuses[-1] == "done"


def test_the_answer_types_itself_out(client):
    updates, _ = stream(client, "hello, who are you?")
    answer_lengths = [len(m["content"]) for update in updates for m in update if not m["metadata"]]
    assert len(set(answer_lengths)) > 10 and answer_lengths == sorted(answer_lengths)
    assert "offline model" in updates[-1][0]["content"]


def test_a_second_turn_uses_the_history(client):
    stream(client, "what is 2 + 3?")
    updates, _ = stream(client, "times 4")
    assert [m["content"] for m in updates[-1] if not m["metadata"]] == ["5 * 4 = **20**"]


def test_histories_are_separate_per_client(url):
    first, second = Client(url, verbose=False), Client(url, verbose=False)
    stream(first, "what is 2 + 3?")
    updates, _ = stream(second, "times 4")
    assert "no earlier result" in updates[-1][0]["content"]


def test_a_blank_message_starts_no_turn_and_the_next_question_works(client):
    updates, _ = stream(client, "   ")
    assert updates in ([], [None]), "no bubble, no error, no footer"
    updates, _ = stream(client, "what is 1 + 1")
    assert [m["content"] for m in updates[-1] if not m["metadata"]] == ["1 + 1 = **2**"]


def test_cancelling_a_job_stops_the_server_side_work(client):
    long_question = " + ".join(["1"] * 40)
    job = client.submit(long_question, api_name="/chat")
    for seen, _ in enumerate(job, start=1):
        if seen == 3:
            break
    assert running_turns() == 1
    job.cancel()
    deadline = time.monotonic() + 2
    while running_turns() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert running_turns() == 0
    updates, _ = stream(client, "what is 1 + 1")
    assert [m["content"] for m in updates[-1] if not m["metadata"]] == ["1 + 1 = **2**"]


def test_updates_are_paced_per_frame_not_per_token(client):
    updates, _ = stream(client, "hello, who are you?")
    answer = updates[-1][0]["content"]
    tokens = len(pieces(answer)) + 40  # the answer's JSON arguments stream as more pieces than its words
    assert 8 < len(updates) < tokens / 2, f"{len(updates)} updates for {tokens} streamed pieces"


def readme_block(marker: str) -> str:
    readme = (PROJECT_ROOT / "README.md").read_text()
    match = re.search(rf"<!-- {marker} -->\n```\w+\n(.+?)\n```", readme, re.S)
    assert match, f"README.md has no code block after <!-- {marker} -->"
    return match[1]


def test_the_readme_api_example_prints_what_the_readme_says(url):
    code = readme_block("api-example").replace("http://127.0.0.1:7860/", url)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == readme_block("api-output")
