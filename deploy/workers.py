"""N app processes on this machine behind nginx, a browser's requests always on the same one.

    python -m deploy.workers [--workers 2] [--port 7860] [--host 127.0.0.1] [-- app.py options]

Worker i is `python app.py --port PORT+i` on 127.0.0.1; nginx listens on
HOST:PORT with `deploy/nginx.conf`, its worker list rewritten. The server-wide
update budget (`AGENT_UI_UPDATES_PER_S`, default 650) is the whole machine's and
is divided among the workers, so N workers send no more updates per second than
one would; raise it on a machine with cores to spare. Ctrl-C stops everything.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from agent import ServerSettings
from deploy.processes import PROJECT_ROOT, ServedProcess

TEMPLATE = Path(__file__).with_name("nginx.conf")


@dataclass
class Workers:
    url: str
    processes: list[ServedProcess]
    nginx: subprocess.Popen


def nginx_config(template: str, worker_ports: Sequence[int], host: str, port: int) -> str:
    """`template` with its worker list and listen address replaced."""
    servers = "".join(f"        server 127.0.0.1:{p};\n" for p in worker_ports)
    config = re.sub(
        r"(# workers: begin\n).*?(\s*# workers: end)", rf"\g<1>{servers}\g<2>", template, flags=re.S
    )
    return re.sub(
        r"(# listen: begin\n).*?(\s*# listen: end)",
        rf"\g<1>        listen {host}:{port};\g<2>",
        config,
        flags=re.S,
    )


def worker_environment(base: dict[str, str], workers: int) -> dict[str, str]:
    """`base` with the machine's update budget divided among `workers`."""
    total = float(base.get("AGENT_UI_UPDATES_PER_S") or ServerSettings.ui_updates_per_s)
    return {**base, "AGENT_UI_UPDATES_PER_S": str(total / workers)}


@contextmanager
def serve(
    workers: int,
    port: int,
    host: str = "127.0.0.1",
    app_args: Sequence[str] = (),
    env: dict[str, str] | None = None,
    worker_ports: Sequence[int] | None = None,
    echo: bool = False,
) -> Iterator[Workers]:
    """Start the workers (on `worker_ports`, else the ports after `port`) and nginx; stop them all on exit.
    With `echo`, what each worker prints (its log lines) is copied to our stdout, prefixed with its port."""
    env = worker_environment(dict(os.environ if env is None else env), workers)
    ports = list(worker_ports or range(port + 1, port + 1 + workers))
    processes: list[ServedProcess] = []
    nginx = None
    with tempfile.TemporaryDirectory(prefix="agent-nginx-") as prefix:
        try:
            for worker_port in ports:
                command = [sys.executable, "app.py", "--port", str(worker_port), *app_args]
                label = f"[worker :{worker_port}] " if echo else None
                processes.append(ServedProcess(command, env, PROJECT_ROOT, echo=label))
            for process in processes:
                process.wait_for_url(timeout=120)
            Path(prefix, "temp").mkdir()
            config = Path(prefix, "nginx.conf")
            config.write_text(nginx_config(TEMPLATE.read_text(), ports, host, port))
            nginx = subprocess.Popen(["nginx", "-p", prefix, "-c", str(config), "-g", "daemon off;"])
            _wait_for_port(host, port, nginx)
            yield Workers(f"http://{host}:{port}", processes, nginx)
        finally:
            if nginx is not None:
                nginx.terminate()
                nginx.wait(timeout=10)
            for process in processes:
                process.stop()


def _wait_for_port(host: str, port: int, process: subprocess.Popen, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"nginx exited with code {process.returncode}")
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nginx did not listen on {host}:{port} within {timeout:.0f} s")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=7860, help="nginx's port; workers use the next ones")
    parser.add_argument("--host", default="127.0.0.1", help="nginx's address (0.0.0.0 for everyone)")
    parser.add_argument("app_args", nargs="*", help="passed to every app.py (e.g. --offline)")
    args = parser.parse_args(argv)
    with serve(args.workers, args.port, args.host, args.app_args, echo=True) as running:
        print(f"{args.workers} workers behind nginx at {running.url}", flush=True)
        with suppress(KeyboardInterrupt):
            running.nginx.wait()


if __name__ == "__main__":
    main()
