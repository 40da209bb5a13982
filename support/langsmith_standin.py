"""A stand-in for LangSmith's ingest API on 127.0.0.1: what a tracer sends, recorded.

It answers `GET /info` (multipart ingest, or JSON batches with `multipart=False`;
no compression, so every byte arrives readable), and takes runs from
`POST /runs/multipart` and `POST /runs/batch`.
Every request is kept as raw bytes (request line, headers, body) for searching,
and runs are assembled by id: a run's post, then its patches, field by field.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import langsmith
import langsmith.utils


def _info(multipart: bool) -> dict[str, Any]:
    return {
        "version": "0.0.0-standin",
        "batch_ingest_config": {
            "use_multipart_endpoint": multipart,
            "size_limit": 100,
            "size_limit_bytes": 20_971_520,
            "scale_up_nthreads_limit": 4,
            "scale_up_qsize_trigger": 1000,
            "scale_down_nempty_trigger": 4,
        },
        "instance_flags": {},
    }


class LangSmithStandIn:
    """Start with `with LangSmithStandIn() as server:`; point `LANGSMITH_ENDPOINT` at `server.url`."""

    def __init__(self, multipart: bool = True) -> None:
        self.info = _info(multipart)
        self.requests: list[bytes] = []
        self.runs: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> LangSmithStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()
            self.runs.clear()

    def received(self) -> bytes:
        """Every byte of every request so far."""
        with self._lock:
            return b"".join(self.requests)

    def roots(self) -> list[dict[str, Any]]:
        """The root runs, in the order they started."""
        return sorted(
            (run for run in self.runs.values() if not run.get("parent_run_id")),
            key=lambda r: r["dotted_order"],
        )

    def children(self, run: dict[str, Any]) -> list[dict[str, Any]]:
        """A run's direct children, in the order they started."""
        return sorted(
            (child for child in self.runs.values() if child.get("parent_run_id") == run["id"]),
            key=lambda r: r["dotted_order"],
        )

    def descendants(self, run: dict[str, Any]) -> Iterator[dict[str, Any]]:
        for child in self.children(run):
            yield child
            yield from self.descendants(child)

    def tree(self, run: dict[str, Any], depth: int = 0) -> list[str]:
        """`name [run_type]` per run, indented by depth: the shape a trace viewer shows."""
        lines = ["  " * depth + f"{run['name']} [{run['run_type']}]"]
        for child in self.children(run):
            lines.extend(self.tree(child, depth + 1))
        return lines

    def _record(self, raw: bytes, path: str, content_type: str, body: bytes) -> None:
        with self._lock:
            self.requests.append(raw)
            if path == "/runs/multipart":
                self._take_multipart(content_type, body)
            elif path == "/runs/batch":
                batch = json.loads(body)
                for run in batch.get("post") or []:
                    self._merge(run["id"], run)
                for run in batch.get("patch") or []:
                    self._merge(run["id"], run)

    def _take_multipart(self, content_type: str, body: bytes) -> None:
        head = f"Content-Type: {content_type}\r\n\r\n".encode()
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            operation, run_id, *field = name.split(".")
            if operation not in ("post", "patch"):
                continue
            value = json.loads(part.get_payload(decode=True))
            self._merge(run_id, {field[0]: value} if field else value)

    def _merge(self, run_id: str, fields: dict[str, Any]) -> None:
        self.runs.setdefault(run_id, {"id": run_id}).update(fields)


def reread_langsmith_environment() -> None:
    """langsmith caches its environment variables and its client: make it read them again."""
    langsmith.utils.get_env_var.cache_clear()
    langsmith.utils.get_tracer_project.cache_clear()
    langsmith.configure(client=None)


def _handler_for(server: LangSmithStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._take(b"")
            self._answer(200 if self.path.startswith("/info") else 404, server.info)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self._take(body)
            self._answer(202, {})

        def _take(self, body: bytes) -> None:
            raw = self.requestline.encode() + b"\r\n" + bytes(self.headers) + body
            server._record(raw, self.path.split("?")[0], self.headers.get("Content-Type", ""), body)

        def _answer(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the tests read what was received, not a log."""

    return Handler
