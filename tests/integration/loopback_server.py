"""A loopback HTTP file server for download tests (stdlib only, 127.0.0.1, random port).

Serves a directory tree with HTTP Range support, records every request, and
can inject faults so tests can exercise retries, resume and checksum paths
without touching the network:

    with serve_directory(root) as server:
        fetch(base_url=server.url, ...)
        assert server.paths_requested() == [...]

Fault knobs (set them on the returned server, any time):

* ``ignore_range`` - answer 200 with the full body even to Range requests.
* ``fail_next[path] = [503, 500]`` - answer these statuses first, then serve.
* ``cut_after[path] = n`` - send headers for the full body but only ``n`` bytes,
  then drop the connection (once per entry), to simulate a broken transfer.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit


@dataclass(frozen=True)
class RequestRecord:
    method: str
    path: str
    range: str | None
    status: int


@dataclass
class LoopbackServer:
    """Handle on a running server: its URL, request log and fault switches."""

    root: Path
    url: str = ""
    ignore_range: bool = False
    fail_next: dict[str, list[int]] = field(default_factory=dict)
    cut_after: dict[str, int] = field(default_factory=dict)
    requests: list[RequestRecord] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, rec: RequestRecord) -> None:
        with self._lock:
            self.requests.append(rec)

    def log(self) -> list[RequestRecord]:
        with self._lock:
            return list(self.requests)

    def paths_requested(self, suffix: str = "") -> list[str]:
        return [r.path for r in self.log() if r.path.endswith(suffix)]

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()

    def take_fault(self, path: str) -> int | None:
        with self._lock:
            queue = self.fail_next.get(path)
            return queue.pop(0) if queue else None

    def take_cut(self, path: str) -> int | None:
        with self._lock:
            return self.cut_after.pop(path, None)


_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _make_handler(server: LoopbackServer) -> type[BaseHTTPRequestHandler]:
    root = server.root.resolve()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            return  # keep test output clean; the request log is the record

        def _finish(
            self, status: int, path: str, body: bytes = b"", headers: dict | None = None
        ) -> None:
            server.record(RequestRecord(self.command, path, self.headers.get("Range"), status))
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_HEAD(self) -> None:
            self.do_GET()

        def do_GET(self) -> None:
            path = unquote(urlsplit(self.path).path)
            fault = server.take_fault(path)
            if fault is not None:
                self._finish(fault, path, b"injected fault")
                return
            target = (root / path.lstrip("/")).resolve()
            if root not in target.parents or not target.is_file():
                self._finish(404, path, b"not found")
                return
            data = target.read_bytes()
            size = len(data)
            rng = self.headers.get("Range")
            match = _RANGE.match(rng.strip()) if rng and not server.ignore_range else None
            if match and (match.group(1) or match.group(2)):
                if match.group(1):
                    start = int(match.group(1))
                    end = min(int(match.group(2)), size - 1) if match.group(2) else size - 1
                else:  # suffix range: last n bytes
                    start, end = max(size - int(match.group(2)), 0), size - 1
                if start >= size or start > end:
                    self._finish(416, path, b"", {"Content-Range": f"bytes */{size}"})
                    return
                status, body = 206, data[start : end + 1]
                headers = {"Content-Range": f"bytes {start}-{end}/{size}", "Accept-Ranges": "bytes"}
            else:
                status, body = 200, data
                headers = {"Accept-Ranges": "bytes"}
            headers["Content-Type"] = "application/octet-stream"
            cut = server.take_cut(path)
            if cut is not None and cut < len(body):
                server.record(RequestRecord(self.command, path, rng, status))
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[:cut])
                self.wfile.flush()
                self.close_connection = True
                return
            self._finish(status, path, body, headers)

    return Handler


@contextmanager
def serve_directory(root: Path) -> Iterator[LoopbackServer]:
    """Serve ``root`` on ``http://127.0.0.1:<free port>`` for the ``with`` block."""
    handle = LoopbackServer(root=Path(root))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(handle))
    httpd.daemon_threads = True
    handle.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(
        target=httpd.serve_forever, args=(0.05,), name="loopback-http", daemon=True
    )
    thread.start()
    try:
        yield handle
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
