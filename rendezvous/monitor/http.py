"""The monitor's HTTP endpoint: the live page (``/``), ``/metrics`` (Prometheus text) and
``/windows`` (JSON).

A small threaded server beside the faust event loop; it only reads values the
loop publishes whole (bytes and a dict swapped in one assignment), so it needs
no lock. The page's files are package data (``rendezvous/monitor/page/``): no build
step, nothing fetched from elsewhere.

With API keys set, ``/metrics`` and ``/windows`` need one: ``Authorization: Bearer
<key>`` (a scraper), or the session cookie the page gets by posting a key once to
``/login`` (HttpOnly, SameSite=Strict: the page's script never holds the key after it
is sent, and another site's page cannot send the cookie). The page and its files are
open: they hold no data.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import parse_qs

from prometheus_client import CONTENT_TYPE_LATEST

from rendezvous.monitor import exposition
from rendezvous.monitor.sessions import COOKIE, Sessions

PAGE_FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/page/page.js": ("page.js", "text/javascript; charset=utf-8"),
    "/page/charts.js": ("charts.js", "text/javascript; charset=utf-8"),
    "/page/page.css": ("page.css", "text/css; charset=utf-8"),
    "/page/icon.svg": ("icon.svg", "image/svg+xml"),
}
PAGE_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
               "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
               "base-uri 'none'")
"""Content-Security-Policy of the page: its own files only (no inline script, no CDN)."""
MAX_LOGIN_BYTES = 4096


class Published:
    """What the loop last published for the HTTP thread."""

    windows: bytes = b'{"sample_ratio":1.0,"windows":[]}'


def page_file(name: str) -> bytes:
    """One of the page's files, read from the installed package."""
    return resources.files("rendezvous.monitor").joinpath("page", name).read_bytes()


def serve(published: Published, port: int, host: str = "127.0.0.1",
          sessions: Sessions | None = None) -> ThreadingHTTPServer:
    """Start serving on ``port`` (0 = any free one) in a daemon thread; returns the server.
    ``sessions`` holds the API keys (none or empty: every request may read)."""
    keys = sessions if sessions is not None else Sessions([])
    files = {path: (page_file(name), kind) for path, (name, kind) in PAGE_FILES.items()}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the http.server API)
            path = self.path.split("?", 1)[0]
            if path in files:
                body, kind = files[path]
                self._reply(200, body, kind, {"Content-Security-Policy": PAGE_POLICY})
            elif path in ("/metrics", "/windows"):
                if not self._allowed():
                    self._reply(401, b"an API key is required: Authorization: Bearer <key>, "
                                b"or log in on the page at /\n", "text/plain; charset=utf-8",
                                {"WWW-Authenticate": 'Bearer realm="rendezvous monitor"'})
                elif path == "/metrics":
                    self._reply(200, exposition.metrics_text(), CONTENT_TYPE_LATEST)
                else:
                    self._reply(200, published.windows, "application/json")
            else:
                self.send_error(404, "try /, /metrics or /windows")

        def do_POST(self) -> None:  # noqa: N802
            path = self.path.split("?", 1)[0]
            if path == "/login":
                self._login()
            elif path == "/logout":
                keys.end(self.headers.get("Cookie"))
                self._reply(200, b"logged out\n", "text/plain; charset=utf-8",
                            {"Set-Cookie": keys.expired_cookie()})
            else:
                self.send_error(404, "POST /login or /logout")

        def _allowed(self) -> bool:
            return keys.allows(self.headers.get("Authorization"), self.headers.get("Cookie"))

        def _login(self) -> None:
            origin = self.headers.get("Origin")
            if origin is not None and origin.split("://", 1)[-1] != self.headers.get("Host"):
                self._reply(403, b"a login from another site's page\n", "text/plain")
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_LOGIN_BYTES:
                self._reply(413, b"too long for a key\n", "text/plain")
                return
            form = parse_qs(self.rfile.read(length).decode("utf-8", "replace"))
            cookie = keys.start((form.get("key") or [""])[0])
            if cookie is None:
                self._reply(401, b"that key is not one of the monitor's API keys\n",
                            "text/plain; charset=utf-8")
                return
            self._reply(200, b"logged in\n", "text/plain; charset=utf-8", {"Set-Cookie": cookie})

        def _reply(self, status: int, body: bytes, content_type: str,
                   headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # one line per scrape would drown the monitor's own log

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="monitor-http", daemon=True).start()
    return server


__all__ = ["COOKIE", "Published", "page_file", "serve"]
