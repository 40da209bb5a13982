"""Real MCP servers from PyPI (the MCP project's reference servers) for tests, and what they need.

The servers are installed with the test requirements (`mcp-server-time`, `mcp-server-git`,
`mcp-server-fetch`; their releases declare `mcp>=2.3,<3`, the app's own `mcp`) and run as stdio
children of whoever connects to them, as a user's `uvx mcp-server-time` would. `slow_site()` is a
local web page that answers after a delay, for the fetch server to read: a call that takes as long
as a test needs (time-outs, Stop, a server killed during a call). `over_http()` serves one of them
over Streamable HTTP through `mcp-proxy` (PyPI), from a venv of its own.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import psutil

from deploy.processes import PROJECT_ROOT, ServedProcess
from support.servers import free_port


def reference_server(name: str, *args: str, **entry: Any) -> dict[str, Any]:
    """A config entry that runs the reference server `mcp-server-<name>` with this Python."""
    return {"command": sys.executable, "args": ["-m", f"mcp_server_{name}", *args], **entry}


def fetch_server(**entry: Any) -> dict[str, Any]:
    """The fetch server, allowed to read pages on 127.0.0.1."""
    return reference_server("fetch", "--allow-private-ips", "--ignore-robots-txt", **entry)


def write_config(folder: Path, servers: dict[str, Any]) -> Path:
    path = folder / "mcp.json"
    path.write_text(json.dumps({"mcpServers": servers}, indent=2))
    return path


def git_repository(folder: Path) -> Path:
    """An empty git repository with one untracked file, `notes.txt`."""
    repo = folder / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "config", "user.email", "test@example.com"], check=True)
    subprocess.run(["git", "-C", str(repo), "config", "user.name", "Test"], check=True)
    (repo / "notes.txt").write_text("hello\n")
    return repo


def server_processes(module: str) -> list[psutil.Process]:
    """This process's live children running `python -m <module>`."""
    found = []
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if module in child.cmdline() and child.status() != psutil.STATUS_ZOMBIE:
                found.append(child)
    return found


class _SlowPage(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        query = parse_qs(urlparse(self.path).query)
        time.sleep(float(query.get("wait", ["0"])[0]))
        body = f"<html><body><p>{query.get('text', ['Slow page'])[0]}</p></body></html>".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(OSError):
            self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def slow_site() -> Iterator[str]:
    """A web page on 127.0.0.1 that answers after `?wait=<seconds>` with `?text=<text>`; its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _SlowPage)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True, name="slow-site")
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


HTTP_PROXY_REQUIREMENT = "mcp-proxy==0.13.0"
"""Serves a stdio MCP server over Streamable HTTP. It declares mcp<2, so it lives in a venv of its own."""
SERVERS_VENV = PROJECT_ROOT / ".venv-mcp-servers"


def http_proxy_command() -> Path:
    """`mcp-proxy` from `.venv-mcp-servers`, built on first use (kept while its requirement is the same)."""
    marker = SERVERS_VENV / "requirement.txt"
    if not marker.exists() or marker.read_text() != HTTP_PROXY_REQUIREMENT:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(SERVERS_VENV)], check=True)
        pip = [
            str(SERVERS_VENV / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
        ]
        subprocess.run([*pip, HTTP_PROXY_REQUIREMENT], check=True)
        marker.write_text(HTTP_PROXY_REQUIREMENT)
    return SERVERS_VENV / "bin" / "mcp-proxy"


@contextlib.contextmanager
def over_http(entry: dict[str, Any]) -> Iterator[str]:
    """The stdio server of config `entry` served over Streamable HTTP by mcp-proxy; its URL."""
    port = free_port()
    command = [str(http_proxy_command()), "--port", str(port), "--host", "127.0.0.1", "--"]
    proxy = ServedProcess([*command, entry["command"], *entry["args"]], dict(os.environ), echo=None)
    try:
        proxy.wait_for(r"Uvicorn running on", timeout=60)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proxy.stop()
