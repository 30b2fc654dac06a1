"""The monitor's HTTP endpoint: ``/metrics`` (Prometheus text) and ``/windows`` (JSON).

A small threaded server beside the faust event loop; it only reads values the
loop publishes whole (bytes and a dict swapped in one assignment), so it needs
no lock.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST

from rendezvous.monitor import exposition


class Published:
    """What the loop last published for the HTTP thread."""

    windows: bytes = b'{"sample_ratio":1.0,"windows":[]}'


def serve(published: Published, port: int, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    """Start serving on ``port`` (0 = any free one) in a daemon thread; returns the server."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the http.server API)
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._reply(exposition.metrics_text(), CONTENT_TYPE_LATEST)
            elif path == "/windows":
                self._reply(published.windows, "application/json")
            else:
                self.send_error(404, "try /metrics or /windows")

        def _reply(self, body: bytes, content_type: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # one line per scrape would drown the monitor's own log

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="monitor-http", daemon=True).start()
    return server
