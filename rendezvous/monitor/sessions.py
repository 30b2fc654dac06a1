"""API keys of the monitor's HTTP endpoint, and the page's sessions.

A scraper sends a key in ``Authorization: Bearer <key>``. The page posts one once and
gets a random session token in an HttpOnly, SameSite=Strict cookie instead (the key
itself is never stored in the browser); sessions live in this process, so a restarted
monitor asks again.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time

from pydantic import SecretStr

COOKIE = "rendezvous_monitor_session"
SESSION_S = 12 * 3600
"""How long a page's session lasts before it asks for a key again."""


class Sessions:
    """The keys a request must carry one of (none: every request may read), and the
    sessions started with one."""

    def __init__(self, keys: list[SecretStr], session_s: float = SESSION_S) -> None:
        self._keys = [key.get_secret_value().encode() for key in keys]
        self.session_s = session_s
        self._sessions: dict[str, float] = {}  # token -> expiry (monotonic)
        self._lock = threading.Lock()  # the HTTP server's threads share it

    @property
    def required(self) -> bool:
        return bool(self._keys)

    def _valid_key(self, given: str) -> bool:
        raw = given.strip().encode()
        # compare_digest with every key: no early exit that tells which key was close
        return any([hmac.compare_digest(raw, key) for key in self._keys])

    def allows(self, authorization: str | None, cookie_header: str | None) -> bool:
        """Whether a request with these headers may read."""
        if not self._keys:
            return True
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() == "bearer" and self._valid_key(token):
            return True
        session = _cookie(cookie_header)
        if session is None:
            return False
        with self._lock:
            expiry = self._sessions.get(session)
            if expiry is not None and expiry < time.monotonic():
                del self._sessions[session]
                return False
        return expiry is not None

    def start(self, key: str) -> str | None:
        """A ``Set-Cookie`` value of a new session when ``key`` is valid; None otherwise."""
        if self._keys and not self._valid_key(key):
            return None
        token = secrets.token_urlsafe(32)
        with self._lock:
            now = time.monotonic()
            self._sessions = {t: e for t, e in self._sessions.items() if e > now}
            self._sessions[token] = now + self.session_s
        return (f"{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; "
                f"Max-Age={int(self.session_s)}")

    def end(self, cookie_header: str | None) -> None:
        session = _cookie(cookie_header)
        if session is not None:
            with self._lock:
                self._sessions.pop(session, None)

    @staticmethod
    def expired_cookie() -> str:
        return f"{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"


def _cookie(header: str | None) -> str | None:
    for part in (header or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE and value:
            return value
    return None
