"""Personal data kept out of the raw archive: input fields dropped or replaced by a keyed
hash before the decoy writes them.

The policy is a YAML file (``RENDEZVOUS_DECOY__REDACTION``)::

    # Fields of the input event, by dotted path from the event's top level.
    drop: [email, features.date_of_birth]      # removed
    hash: [customer_id, features.postcode]      # replaced by "hmac-sha256:<hex>"

A hashed value becomes ``"hmac-sha256:" + HMAC-SHA256(key, canonical JSON of the
value)``, with the key from ``RENDEZVOUS_DECOY__REDACTION_KEY``: the same value always
gives the same hash (joins and counts still work), and without the key nobody can
test a guess against it. ``id`` may not be listed: it joins an input to its decision.
A record whose value is not a JSON object cannot be redacted field by field: its value
is archived empty, with header ``rendezvous.redaction=undecodable``.

Redacted values are re-encoded (compact JSON, fields in their original order), so the
archive no longer holds the bytes production saw; see the README.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pyarrow as pa
import yaml

from rendezvous.archive.schema import ARCHIVE_SCHEMA
from rendezvous.decoy.errors import DecoyError

HASH_PREFIX = "hmac-sha256:"
REDACTION_HEADER = "rendezvous.redaction"
UNDECODABLE = b"undecodable"
PROTECTED = frozenset({"id"})
"""Fields a policy may not touch: the id joins an input to its decision (backtest)."""

_encoder = msgspec.json.Encoder(order="sorted")
_plain = msgspec.json.Encoder()


class RedactionError(DecoyError, ValueError):
    """A redaction policy that cannot be applied; the message says why."""


@dataclass(frozen=True)
class Redactor:
    """Applies one policy to input values; ``key`` is the HMAC secret."""

    drop: tuple[tuple[str, ...], ...]
    hash: tuple[tuple[str, ...], ...]
    key: bytes = b""

    @classmethod
    def load(cls, path: Path, key: str | None) -> Redactor:
        """The policy in ``path``; the key is required when it hashes anything."""
        try:
            spec = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise RedactionError(f"cannot read the redaction policy {path}: {exc}") from None
        if not isinstance(spec, dict) or set(spec) - {"drop", "hash"}:
            raise RedactionError(f"{path}: expected the keys `drop` and/or `hash`, each a list "
                                 "of dotted field paths")
        paths = {name: tuple(_path(p, path) for p in spec.get(name) or ())
                 for name in ("drop", "hash")}
        if paths["hash"] and not key:
            raise RedactionError(f"{path} hashes fields: set RENDEZVOUS_DECOY__REDACTION_KEY "
                                 "(the HMAC secret)")
        return cls(paths["drop"], paths["hash"], (key or "").encode())

    def value(self, raw: bytes | None) -> tuple[bytes | None, bool]:
        """(the redacted value, whether it was decodable)."""
        if raw is None:
            return None, True
        try:
            event = msgspec.json.decode(raw)
        except msgspec.DecodeError:
            return b"", False
        if not isinstance(event, dict):
            return b"", False
        for path in self.drop:
            parent = _parent(event, path)
            if parent is not None:
                parent.pop(path[-1], None)
        for path in self.hash:
            parent = _parent(event, path)
            if parent is not None and path[-1] in parent:
                parent[path[-1]] = self.digest(parent[path[-1]])
        return _plain.encode(event), True

    def digest(self, value: Any) -> str:
        """The keyed hash that replaces ``value``."""
        mac = hmac.new(self.key, _encoder.encode(value), hashlib.sha256)
        return HASH_PREFIX + mac.hexdigest()

    def batch(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """``batch`` (archive schema) with its values redacted."""
        values, headers = [], batch.column("headers").to_pylist()
        for i, raw in enumerate(batch.column("value").to_pylist()):
            redacted, decodable = self.value(raw)
            values.append(redacted)
            if not decodable:
                headers[i] = [*(headers[i] or []),
                              {"key": REDACTION_HEADER, "value": UNDECODABLE}]
        columns = {name: batch.column(name) for name in ARCHIVE_SCHEMA.names}
        columns["value"] = pa.array(values, pa.binary())
        columns["headers"] = pa.array(headers, ARCHIVE_SCHEMA.field("headers").type)
        return pa.RecordBatch.from_arrays(list(columns.values()), schema=ARCHIVE_SCHEMA)


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
