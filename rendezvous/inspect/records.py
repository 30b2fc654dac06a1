"""One Kafka record of a request, wherever it was read (a topic or the archive), and
which request it belongs to."""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec

from rendezvous.archive.retention import Selector


@dataclass(frozen=True)
class Found:
    """A record that names a request of the search: where it was and what it held."""

    topic: str
    """The logical topic (``input``, ``scores``, ``scored``, ``decisions``, ...)."""
    partition: int
    offset: int
    timestamp_ms: int | None
    """The record's timestamp (the producer's, or the broker's append time)."""
    key: bytes | None
    value: bytes | None
    request_id: str
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    arrival_ms: int | None = None
    """Archive only: when the decoy polled it."""

    def header(self, name: str) -> bytes | None:
        return next((v for k, v in self.headers if k == name), None)


class _IdOnly(msgspec.Struct):
    id: object = None


_id_only = msgspec.json.Decoder(_IdOnly)


def request_of(key: bytes | None, value: bytes | None, selector: Selector,
               needle: bytes) -> str | None:
    """The id of the searched request a record belongs to (by its key, else its value's
    ``id``), or None. ``needle`` is a text every matching id contains: most records are
    passed over with one byte search, never decoded."""
    if key is not None and needle in key:
        text = key.decode(errors="replace")
        if selector.matches(text):
            return text
    if value is not None and needle in value:
        try:
            found = _id_only.decode(value).id
        except (msgspec.DecodeError, RecursionError):
            return None
        if isinstance(found, str) and selector.matches(found):
            return found
    return None


def needle_of(selector: Selector) -> bytes:
    """The text every id ``selector`` matches contains (the shortest it names)."""
    return min(selector.needles, key=len).encode()
