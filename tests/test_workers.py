"""Several app processes behind nginx: config, divided budget, and chats that stay on their process."""

import asyncio
import shutil

import pytest

from deploy.workers import TEMPLATE, nginx_config, serve, worker_environment
from support.gradio_http import GradioChatClient
from support.servers import MANY_VISITORS_ENV, app_environment, free_port

pytestmark = pytest.mark.slow


def test_the_config_lists_the_workers_and_the_address():
    config = nginx_config(TEMPLATE.read_text(), [9001, 9002, 9003], "0.0.0.0", 9000)
    assert "server 127.0.0.1:9001 max_fails=0;\n        server 127.0.0.1:9002 max_fails=0;" in config
    assert "proxy_set_header Host $http_host;" in config
    assert "proxy_next_upstream error timeout http_503 non_idempotent;" in config
    assert "listen 0.0.0.0:9000;" in config and "7861" not in config
    assert "hash $agent_route consistent;" in config


def test_a_fixed_update_budget_is_divided_among_the_workers_and_none_stays_none():
    assert worker_environment({}, 2)["AGENT_UI_UPDATES_PER_S"] == "0.0"
    assert worker_environment({"AGENT_UI_UPDATES_PER_S": "900"}, 3)["AGENT_UI_UPDATES_PER_S"] == "300.0"
    with pytest.raises(ValueError, match="AGENT_UI_UPDATES_PER_S must be a number of at least 0"):
        worker_environment({"AGENT_UI_UPDATES_PER_S": "-5"}, 2)


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed")
async def test_chats_from_many_browsers_complete_on_two_workers_and_both_serve():
    many_visitors = app_environment(**MANY_VISITORS_ENV)  # all from 127.0.0.1 here
    with serve(2, free_port(), env=many_visitors, worker_ports=[free_port(), free_port()]) as running:
        async with GradioChatClient(running.url, affinity_cookie="agent_route") as client:
            streams = await asyncio.gather(*(client.ask("what is 2 + 3", mode="browser") for _ in range(12)))
        assert all(s.completed for s in streams), [s.error for s in streams]
        assert all("2 + 3 = <strong>5</strong>" in str(s.messages) for s in streams)  # as the page shows it
        for worker in running.processes:  # each logs one line per turn it ran
            worker.wait_for('"outcome": "finished"', timeout=5)
