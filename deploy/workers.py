"""N app processes on this machine behind nginx, a browser's requests always on the same one, kept up.

    python -m deploy.workers [--workers 2] [--port 7860] [--host 127.0.0.1] [-- app.py options]

Worker i is `python app.py --port PORT+i` on 127.0.0.1; nginx listens on
HOST:PORT with `deploy/nginx.conf`, its worker list rewritten. Each worker sets
its own frame from its own measured load; a fixed update budget, if set
(`AGENT_UI_UPDATES_PER_S`, default 0: none), is the whole machine's and is
divided among the workers, so N workers send no more updates per second than one
would.

The launcher supervises: a worker that exits is started again after a backoff
(1, 2, 4 … 30 s), each time logged with its exit code; if one exits
`MAX_FAILURES` times within `FAILURE_WINDOW_S`, the launcher stops everything and
exits with code 1. SIGTERM or SIGINT (Ctrl-C) drains every worker at once (each
finishes or cuts its turns within `AGENT_SHUTDOWN_GRACE_S`), then stops nginx;
exit code 0. SIGHUP restarts the workers one at a time, each started again and
ready (`/healthz`) before the next one drains. Workers die with the launcher,
even when it is killed (`PR_SET_PDEATHSIG`).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from agent import ServerSettings
from deploy.processes import PROJECT_ROOT, ServedProcess, terminate_with_parent

TEMPLATE = Path(__file__).with_name("nginx.conf")
WORKER_OPTIONS = "max_fails=0"
"""nginx never marks a worker down: a draining one answers the sessions it serves while its 503s
send the others on, and a stopped one refuses connections, which costs nginx one try per request."""


MAX_FAILURES = 5
FAILURE_WINDOW_S = 60.0
MAX_BACKOFF_S = 30.0
ENDING_S = 15.0
"""Beyond a worker's grace: time for its cut turns to be sent and its resources closed."""


class WorkerLost(Exception):
    """A worker kept exiting: the launcher gives up."""


@dataclass
class Workers:
    """The running workers and nginx, and how to start a worker again."""

    url: str
    processes: list[ServedProcess]
    nginx: subprocess.Popen
    ports: list[int] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    app_args: Sequence[str] = ()
    echo: bool = False
    program: Sequence[str] = (sys.executable, "app.py")

    def start(self, index: int) -> ServedProcess:
        """Start worker `index` (again), on its port; it dies with this process."""
        port = self.ports[index]
        command = [*self.program, "--port", str(port), *self.app_args]
        label = f"[worker :{port}] " if self.echo else None
        process = ServedProcess(command, self.env, PROJECT_ROOT, echo=label, die_with_parent=True)
        if index < len(self.processes):
            self.processes[index] = process
        else:
            self.processes.append(process)
        return process


def nginx_config(template: str, worker_ports: Sequence[int], host: str, port: int) -> str:
    """`template` with its workers (see `workers_block`) and listen address replaced."""
    config = re.sub(
        r"(# workers: begin\n).*?(\s*# workers: end)",
        lambda match: match[1] + workers_block([f"127.0.0.1:{p}" for p in worker_ports]) + match[2],
        template,
        flags=re.S,
    )
    return re.sub(
        r"(# listen: begin\n).*?(\s*# listen: end)",
        rf"\g<1>        listen {host}:{port};\g<2>",
        config,
        flags=re.S,
    )


def workers_block(addresses: Sequence[str]) -> str:
    """nginx's routing for these workers: `agent`, any of them; `agent_wN`, worker N first and the
    others as its backups; the cookie's worker name to its upstream; the address that answered
    (the last one `$upstream_addr` lists) to its worker name."""
    names = [f"w{number}" for number in range(1, len(addresses) + 1)]
    lines = ["    upstream agent {", "        hash $agent_key consistent;"]
    lines += [f"        server {address} {WORKER_OPTIONS};" for address in addresses]
    lines.append("    }")
    for name, address in zip(names, addresses, strict=True):
        lines += [f"    upstream agent_{name} {{", f"        server {address} {WORKER_OPTIONS};"]
        lines += [
            f"        server {other} {WORKER_OPTIONS} backup;" for other in addresses if other != address
        ]
        lines.append("    }")
    lines.append("    map $cookie_agent_route $agent_upstream {")
    lines += [f"        {name} agent_{name};" for name in names]
    lines += ["        default agent;", "    }", "    map $upstream_addr $agent_answered {"]
    lines += [
        rf"        ~(^|\s){re.escape(address)}$ {name};"
        for name, address in zip(names, addresses, strict=True)
    ]
    lines += ['        default "";', "    }"]
    return "\n".join(lines)


def worker_environment(base: dict[str, str], workers: int) -> dict[str, str]:
    """`base` with the machine's update budget, as the app's settings read it, divided among `workers`."""
    total = ServerSettings.from_env(base).ui_updates_per_s
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
    running = Workers(f"http://{host}:{port}", [], None, ports, env, app_args, echo)  # type: ignore[arg-type]
    with tempfile.TemporaryDirectory(prefix="agent-nginx-") as prefix:
        try:
            for index in range(len(ports)):
                running.start(index)
            for process in running.processes:
                process.wait_for_url(timeout=120)
            Path(prefix, "temp").mkdir()
            config = Path(prefix, "nginx.conf")
            config.write_text(nginx_config(TEMPLATE.read_text(), ports, host, port))
            running.nginx = subprocess.Popen(
                ["nginx", "-p", prefix, "-c", str(config), "-g", "daemon off;"],
                preexec_fn=terminate_with_parent,
            )
            _wait_for_port(host, port, running.nginx)
            yield running
        finally:
            stop_all(running, grace_s(env))


def grace_s(env: dict[str, str]) -> float:
    """How long a worker may take to stop: its shutdown grace, and time to end its cut turns."""
    return ServerSettings.from_env(env).shutdown_grace_s + ENDING_S


def stop_all(running: Workers, timeout: float) -> None:
    """Drain every worker at once (each gets SIGTERM alone), then stop nginx, which carried
    their last updates; SIGKILL for what is left after `timeout`."""
    for process in running.processes:
        process.terminate()
    deadline = time.monotonic() + timeout
    for process in running.processes:
        process.wait_ended(max(0.0, deadline - time.monotonic()))
    if running.nginx is not None:
        running.nginx.terminate()
        try:
            running.nginx.wait(timeout=10)
        except subprocess.TimeoutExpired:
            running.nginx.kill()
            running.nginx.wait()


class Supervisor:
    """Keeps `running`'s workers up, and restarts them one at a time on request."""

    def __init__(self, running: Workers, stop_timeout_s: float, first_backoff_s: float = 1.0) -> None:
        self.running = running
        self.stop_timeout_s = stop_timeout_s
        self.first_backoff_s = first_backoff_s
        self.failures: dict[int, list[float]] = {}

    def check(self) -> None:
        """Start again every worker that exited; `WorkerLost` if one keeps exiting."""
        for index, process in enumerate(self.running.processes):
            code = process.process.poll()
            if code is not None:
                self._restart_exited(index, code)

    def _restart_exited(self, index: int, code: int | None) -> None:
        """Start the worker again after a backoff, as often as it takes or until it exited too often."""
        port = self.running.ports[index]
        while True:
            now = time.monotonic()
            recent = [t for t in self.failures.get(index, []) if now - t < FAILURE_WINDOW_S] + [now]
            self.failures[index] = recent
            if len(recent) >= MAX_FAILURES:
                raise WorkerLost(
                    f"worker :{port} exited {len(recent)} times within {FAILURE_WINDOW_S:g} s "
                    f"(last exit code {code}); giving up"
                )
            delay = min(MAX_BACKOFF_S, self.first_backoff_s * 2 ** (len(recent) - 1))
            say(f"worker :{port} exited with code {code}; starting it again in {delay:g} s")
            time.sleep(delay)
            try:
                self._start_ready(index)
                return
            except (AssertionError, WorkerLost):  # it exited, or never became ready
                process = self.running.processes[index]
                process.stop()
                code = process.process.returncode

    def _start_ready(self, index: int) -> None:
        process = self.running.start(index)
        process.wait_for_url(timeout=120)
        wait_until_ready(self.running.ports[index])
        say(f"worker :{self.running.ports[index]} is ready")

    def rolling_restart(self) -> None:
        """Each worker in turn: drained and stopped, started again, ready before the next."""
        for index, process in enumerate(list(self.running.processes)):
            say(f"restarting worker :{self.running.ports[index]} ({index + 1} of {len(self.running.ports)})")
            process.terminate()
            process.wait_ended(self.stop_timeout_s)
            try:
                self._start_ready(index)
            except (AssertionError, WorkerLost):
                say(f"worker :{self.running.ports[index]} did not start again; it is left to the supervision")
        say("rolling restart done")


def wait_until_ready(port: int, timeout: float = 60) -> None:
    """Until the worker's `/healthz` says ready."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise WorkerLost(f"worker :{port} was not ready within {timeout:g} s")


def say(line: str) -> None:
    print(f"[launcher] {line}", flush=True)


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
    signals: list[int] = []
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda number, _frame: signals.append(number))
    with serve(args.workers, args.port, args.host, args.app_args, echo=True) as running:
        print(f"{args.workers} workers behind nginx at {running.url}", flush=True)
        supervisor = Supervisor(running, grace_s(running.env))
        try:
            while not {signal.SIGTERM, signal.SIGINT} & set(signals):
                if signal.SIGHUP in signals:
                    signals.remove(signal.SIGHUP)
                    supervisor.rolling_restart()
                if running.nginx.poll() is not None:
                    raise WorkerLost(f"nginx exited with code {running.nginx.returncode}")
                supervisor.check()
                time.sleep(0.2)
        except WorkerLost as lost:
            say(f"{lost}; stopping")
            raise SystemExit(1) from None
        say("stopping: draining the workers")
    say("stopped")


if __name__ == "__main__":
    main()
