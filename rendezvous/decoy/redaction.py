"""Personal data kept out of the raw archive: input fields dropped or replaced by a keyed
hash before the decoy writes them, and the record's key and headers with them.

The policy is a YAML file (``RENDEZVOUS_DECOY__REDACTION``)::

    # Fields of the input event, by dotted path from the event's top level.
    drop: [email, features.date_of_birth]      # removed
    hash: [customer_id, features.postcode]      # replaced by "hmac-sha256:<hex>"
    # The record key: keep (default: it is the request id), hash or drop.
    key: keep
    # Record headers, by name ("*": every header but rendezvous.*).
    headers:
      drop: [x-user-email]
      hash: [x-customer]

A hashed value becomes ``"hmac-sha256:" + HMAC-SHA256(key, canonical JSON of the
value)``, with the key from ``RENDEZVOUS_DECOY__REDACTION_KEY``: the same value always
gives the same hash (joins and counts still work), and without the key nobody can
test a guess against it. ``id`` may not be listed: it joins an input to its decision.
A record whose value is not a JSON object cannot be redacted field by field: its value
is archived empty, with header ``rendezvous.redaction=undecodable``.

Keys and headers: besides what the policy names, a key or a header value that *is* a
value the policy drops or hashes in the same record (a producer keying records by
``customer_id``, or copying it into a header) is dropped or hashed with it: the field
would otherwise reach the archive raw beside its hash. A hashed key or header value is
``hmac-sha256:<hex>`` of the value's text (the same hash as the field's when it was a
string). Headers named ``rendezvous.*`` are the pipeline's own and never redacted.

A path or header name that has matched nothing in ``redaction_warn_after`` redacted
records is logged once as a warning: a misspelt path redacts nothing, silently.

Redacted values are re-encoded (compact JSON, fields in their original order), so the
archive no longer holds the bytes production saw; see docs/governance.md.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import msgspec
import pyarrow as pa
import yaml

from rendezvous.archive.schema import ARCHIVE_SCHEMA
from rendezvous.decoy.errors import DecoyError

log = logging.getLogger(__name__)

HASH_PREFIX = "hmac-sha256:"
REDACTION_HEADER = "rendezvous.redaction"
OWN_HEADERS = "rendezvous."
"""Prefix of the pipeline's own headers (a dead letter's reason, the redaction mark):
never redacted."""
UNDECODABLE = b"undecodable"
PROTECTED = frozenset({"id"})
"""Fields a policy may not touch: the id joins an input to its decision (backtest)."""
KEY_MODES = ("keep", "hash", "drop")
WARN_AFTER = 10_000

_encoder = msgspec.json.Encoder(order="sorted")
_plain = msgspec.json.Encoder()


class RedactionError(DecoyError, ValueError):
    """A redaction policy that cannot be applied; the message says why."""


@dataclass
class _Seen:
    """How many redacted records each path and header name has matched."""

    records: int = 0
    matched: dict[str, int] = field(default_factory=dict)
    warned: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Redactor:
    """Applies one policy to archive batches; ``key`` is the HMAC secret."""

    drop: tuple[tuple[str, ...], ...]
    hash: tuple[tuple[str, ...], ...]
    key: bytes = b""
    record_key: Literal["keep", "hash", "drop"] = "keep"
    drop_headers: frozenset[str] = frozenset()
    hash_headers: frozenset[str] = frozenset()
    warn_after: int = WARN_AFTER
    """After this many redacted records, each path or header name that matched none of
    them is logged once as a warning."""
    seen: _Seen = field(default_factory=_Seen, compare=False)

    @classmethod
    def load(cls, path: Path, key: str | None, warn_after: int = WARN_AFTER) -> Redactor:
        """The policy in ``path``; the key is required when it hashes anything."""
        try:
            spec = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise RedactionError(f"cannot read the redaction policy {path}: {exc}") from None
        if not isinstance(spec, dict) or set(spec) - {"drop", "hash", "key", "headers"}:
            raise RedactionError(f"{path}: expected the keys `drop` and/or `hash`, each a list "
                                 "of dotted field paths, and optionally `key` and `headers`")
        paths = {name: tuple(_path(p, path) for p in spec.get(name) or ())
                 for name in ("drop", "hash")}
        record_key = spec.get("key", "keep")
        if record_key not in KEY_MODES:
            raise RedactionError(f"{path}: `key` is one of {', '.join(KEY_MODES)}, "
                                 f"not {record_key!r}")
        headers = spec.get("headers") or {}
        if not isinstance(headers, dict) or set(headers) - {"drop", "hash"} or not all(
                isinstance(names, list) and all(isinstance(n, str) and n for n in names)
                for names in headers.values()):
            raise RedactionError(f"{path}: `headers` has `drop` and/or `hash`, each a list "
                                 "of header names (\"*\": every header)")
        drop_headers = frozenset(headers.get("drop") or ())
        hash_headers = frozenset(headers.get("hash") or ())
        own = sorted(n for n in drop_headers | hash_headers if n.startswith(OWN_HEADERS))
        if own:
            raise RedactionError(f"{path}: {own} are the pipeline's own headers; they carry "
                                 "no personal data and cannot be redacted")
        if (paths["hash"] or hash_headers or record_key == "hash") and not key:
            raise RedactionError(f"{path} hashes fields: set RENDEZVOUS_DECOY__REDACTION_KEY "
                                 "(the HMAC secret)")
        return cls(paths["drop"], paths["hash"], (key or "").encode(), record_key,
                   drop_headers, hash_headers, warn_after)

    def value(self, raw: bytes | None) -> tuple[bytes | None, bool]:
        """(the redacted value, whether it was decodable)."""
        redacted, decodable, _ = self._value(raw)
        return redacted, decodable

    def _value(self, raw: bytes | None) -> tuple[bytes | None, bool, dict[bytes, bool]]:
        """(the redacted value, whether it was decodable, the texts it redacted: each
        original value's text -> whether it was hashed, for the key and headers)."""
        if raw is None:
            return None, True, {}
        try:
            event = msgspec.json.decode(raw)
        except msgspec.DecodeError:
            return b"", False, {}
        if not isinstance(event, dict):
            return b"", False, {}
        removed: dict[bytes, bool] = {}
        matched = self.seen.matched
        for path in self.drop:
            parent = _parent(event, path)
            if parent is not None and path[-1] in parent:
                removed[_text(parent.pop(path[-1]))] = False
                matched[".".join(path)] = matched.get(".".join(path), 0) + 1
        for path in self.hash:
            parent = _parent(event, path)
            if parent is not None and path[-1] in parent:
                original = parent[path[-1]]
                parent[path[-1]] = self.digest(original)
                removed.setdefault(_text(original), True)
                matched[".".join(path)] = matched.get(".".join(path), 0) + 1
        return _plain.encode(event), True, removed

    def digest(self, value: Any) -> str:
        """The keyed hash that replaces ``value``."""
        mac = hmac.new(self.key, _encoder.encode(value), hashlib.sha256)
        return HASH_PREFIX + mac.hexdigest()

    def _bytes_digest(self, raw: bytes) -> bytes:
        """The keyed hash of a key or header value: that of its text (the same as the
        field's own hash when the field was that string), else of its bytes."""
        try:
            text: Any = raw.decode()
        except UnicodeDecodeError:
            text = raw.hex()
        return self.digest(text).encode()

    def _key(self, raw: bytes | None, removed: dict[bytes, bool]) -> bytes | None:
        if raw is None or self.record_key == "drop":
            return None
        hashed = removed.get(raw)
        if self.record_key == "hash" or hashed:
            return self._bytes_digest(raw)
        return None if hashed is False else raw

    def _headers(self, headers: list[dict[str, Any]] | None,
                 removed: dict[bytes, bool]) -> list[dict[str, Any]] | None:
        if not headers:
            return headers
        kept = []
        every = "*" in self.drop_headers
        for header in headers:
            name, raw = header["key"], header["value"]
            if name.startswith(OWN_HEADERS):
                kept.append(header)
                continue
            listed = name in self.drop_headers or name in self.hash_headers
            if listed:
                self.seen.matched[f"header {name}"] = (
                    self.seen.matched.get(f"header {name}", 0) + 1)
            hashed = removed.get(raw) if raw is not None else None
            if name in self.drop_headers or (every and name not in self.hash_headers) or (
                    hashed is False):
                continue
            if raw is not None and (name in self.hash_headers or "*" in self.hash_headers
                                    or hashed):
                raw = self._bytes_digest(raw)
            kept.append({"key": name, "value": raw})
        return kept

    def batch(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """``batch`` (archive schema) with its values, keys and headers redacted."""
        values, keys = [], []
        headers = batch.column("headers").to_pylist()
        raw_keys = batch.column("key").to_pylist()
        for i, raw in enumerate(batch.column("value").to_pylist()):
            redacted, decodable, removed = self._value(raw)
            values.append(redacted)
            keys.append(self._key(raw_keys[i], removed))
            headers[i] = self._headers(headers[i], removed)
            if not decodable:
                headers[i] = [*(headers[i] or []),
                              {"key": REDACTION_HEADER, "value": UNDECODABLE}]
        columns = {name: batch.column(name) for name in ARCHIVE_SCHEMA.names}
        columns["value"] = pa.array(values, pa.binary())
        columns["key"] = pa.array(keys, pa.binary())
        columns["headers"] = pa.array(headers, ARCHIVE_SCHEMA.field("headers").type)
        self._count(batch.num_rows)
        return pa.RecordBatch.from_arrays(list(columns.values()), schema=ARCHIVE_SCHEMA)

    def names(self) -> list[str]:
        """Every path and listed header name of the policy, as the warnings name them."""
        return ([".".join(p) for p in (*self.drop, *self.hash)]
                + [f"header {n}" for n in sorted(self.drop_headers | self.hash_headers)
                   if n != "*"])

    def silent(self) -> list[str]:
        """The paths and header names that have matched no record so far."""
        return [n for n in self.names() if not self.seen.matched.get(n)]

    def _count(self, records: int) -> None:
        seen = self.seen
        seen.records += records
        if seen.records < self.warn_after:
            return
        for name in self.silent():
            if name not in seen.warned:
                seen.warned.add(name)
                log.warning("redaction policy: %s has matched none of %d records: is it "
                            "misspelt? (paths are dotted from the event's top level, e.g. "
                            "features.postcode)", name, seen.records)


def _text(value: Any) -> bytes:
    """How a redacted field's value could appear as a key or header: a string as its
    UTF-8 bytes, anything else as its JSON."""
    return value.encode() if isinstance(value, str) else _plain.encode(value)


def _path(text: object, source: Path) -> tuple[str, ...]:
    if not isinstance(text, str) or not text or any(not p for p in text.split(".")):
        raise RedactionError(f"{source}: {text!r} is not a dotted field path")
    parts = tuple(text.split("."))
    if parts[0] in PROTECTED and len(parts) == 1:
        raise RedactionError(f"{source}: `{text}` cannot be redacted (it joins an input to "
                             "its decision)")
    return parts


def _parent(event: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any] | None:
    node: Any = event
    for part in path[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else None
