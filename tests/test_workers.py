"""Several app processes behind nginx: config, divided budget, and chats that stay on their process."""

import asyncio
import shutil
import subprocess

import pytest

from deploy.workers import TEMPLATE, nginx_config, serve, worker_environment
from support.gradio_http import GradioChatClient
from support.servers import MANY_VISITORS_ENV, app_environment, free_port

pytestmark = pytest.mark.slow


def test_the_config_lists_the_workers_and_the_address():
    config = nginx_config(TEMPLATE.read_text(), [9001, 9002, 9003], "0.0.0.0", 9000)
    assert "hash $agent_key consistent;\n        server 127.0.0.1:9001 max_fails=0;\n" in config
    assert (  # worker 2 first, the others when it is down or draining
        "upstream agent_w2 {\n        server 127.0.0.1:9002 max_fails=0;\n"
        "        server 127.0.0.1:9001 max_fails=0 backup;\n        server 127.0.0.1:9003 max_fails=0 backup;\n"
    ) in config
    assert "w3 agent_w3;" in config and r"~(^|\s)127\.0\.0\.1:9003$ w3;" in config
    assert 'add_header Set-Cookie "agent_route=$agent_answered;' in config
    assert "proxy_set_header Host $http_host;" in config
    assert "proxy_next_upstream error timeout http_503 non_idempotent;" in config
    assert "listen 0.0.0.0:9000;" in config and "7861" not in config


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed")
def test_nginx_accepts_the_config_it_is_given(tmp_path):
    (tmp_path / "temp").mkdir()
    config = tmp_path / "nginx.conf"
    config.write_text(nginx_config(TEMPLATE.read_text(), [9001, 9002, 9003], "127.0.0.1", 9000))
    checked = subprocess.run(
        ["nginx", "-t", "-p", str(tmp_path), "-c", str(config)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stderr


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
