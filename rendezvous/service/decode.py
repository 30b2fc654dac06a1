"""serve's decode step: every consumed record becomes a :class:`Request` or an :class:`Answer`.

This is the one place serve turns bytes into meaning (with :mod:`rendezvous.messages`):
an input record is decoded, checked against the features of the model that defines
them, its return address checked, and its payload digested; a score record is decoded
and, when models sign their scores, its signature checked. The partition's state and
the core see only what comes out of here, never a record.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import msgspec

from rendezvous.errors import SettingsError
from rendezvous.messages import (
    MAX_ID_LENGTH,
    FeatureSchema,
    FeatureValue,
    InputEvent,
    Invalid,
    Score,
    Undecodable,
    decode_input,
    decode_score,
    feature_row,
)
from rendezvous.replyto import refusal
from rendezvous.service.ports import InRecord
from rendezvous.signing import ScoreVerifier, verifier
from rendezvous.transport.bad_records import BadRecords

_digest_encoder = msgspec.json.Encoder()


def payload_digest(event: InputEvent, row: list[FeatureValue] | None = None) -> bytes:
    """8 bytes of BLAKE2b of what a request asks: its features (``row``, in the model's
    order, when validated against a schema), ``deadline_ms`` and ``reply_to``. Not its
    ``ts``: the same request sent again is the same payload."""
    data = _digest_encoder.encode((event.features if row is None else row,
                                   event.deadline_ms, event.reply_to))
    return hashlib.blake2b(data, digest_size=8).digest()


def raw_digest(value: bytes | None) -> bytes:
    """The digest of an input record that is no valid request: of its bytes."""
    return hashlib.blake2b(value or b"", digest_size=8, person=b"invalid").digest()


class Arrival:
    """Where a record was read: its partition and offset, and the record itself (a dead
    letter copies its bytes)."""

    __slots__ = ("offset", "partition", "record")

    def __init__(self, record: InRecord) -> None:
        self.record = record
        self.partition: int = record.partition()  # type: ignore[assignment]  # consumed: set
        self.offset: int = record.offset()  # type: ignore[assignment]

    def where(self) -> str:
        """``topic/partition/offset``, as dead letters and logs name a record."""
        return f"{self.record.topic()}/{self.partition}/{self.offset}"

    def fallback_id(self) -> str:
        """The id to answer a record under when its value names none: its key, else its
        position."""
        key = self.record.key()
        if key and len(key) <= MAX_ID_LENGTH:
            try:
                return key.decode()
            except UnicodeDecodeError:
                pass
        return f"{self.record.topic()}-{self.partition}-{self.offset}"


class Request(Arrival):
    """An input record: a valid ``event`` (with its feature ``row`` when a schema checked
    it), or why it is invalid; the record timestamp ``ts`` (epoch ms) and the digest of
    what it asks."""

    __slots__ = ("digest", "event", "row", "ts")

    def __init__(self, record: InRecord, event: InputEvent | Invalid,
                 row: list[FeatureValue] | None) -> None:
        super().__init__(record)
        self.event, self.row = event, row
        self.ts = float(record.timestamp()[1])
        self.digest = (raw_digest(record.value()) if isinstance(event, Invalid)
                       else payload_digest(event, row))


class Answer(Arrival):
    """A score record: the ``score``, or None when it cannot be taken (skipped and counted
    here: undecodable, or not signed with its model's key)."""

    __slots__ = ("score",)

    def __init__(self, record: InRecord, score: Score | None) -> None:
        super().__init__(record)
        self.score = score


class Decoder:
    """Turns records of the ``input`` and ``scores`` topics into requests and answers."""

    def __init__(self, input_topic: str, *,
                 schema: FeatureSchema | None, reply_prefix: str, max_score_bytes: int,
                 score_keys: Mapping[str, str] | None = None) -> None:
        self.input_topic = input_topic  # every other record is a score
        self.schema, self.reply_prefix = schema, reply_prefix
        self.max_score_bytes = max_score_bytes
        try:
            self.verifier: ScoreVerifier | None = verifier(score_keys or {})
        except ValueError as exc:
            raise SettingsError(f"RENDEZVOUS_SERVE__SCORE_KEYS: {exc}") from None
        self.bad_records = BadRecords("serve")

    def __call__(self, record: InRecord) -> Request | Answer:
        if record.topic() == self.input_topic:
            return self.request(record)
        return self.answer(record)

    def request(self, record: InRecord) -> Request:
        event = decode_input(record.value(), self.schema)
        row: list[FeatureValue] | None = None
        if not isinstance(event, Invalid):
            if self.schema is not None:
                checked = feature_row(event, self.schema)
                if isinstance(checked, Invalid):
                    event = checked
                else:
                    row = checked
            if not isinstance(event, Invalid) and event.reply_to is not None:
                why = refusal(event.reply_to, self.reply_prefix)
                if why is not None:  # serve writes nothing in Redis for it
                    event = Invalid(why, event.id)
        return Request(record, event, row)

    def answer(self, record: InRecord) -> Answer:
        value = record.value()
        try:
            score = decode_score(value, self.max_score_bytes)
        except Undecodable as exc:
            return self.skip(record, str(exc))
        if self.verifier is not None:
            why = self.verifier.refusal(score.model, value or b"", record.headers())
            if why is not None:
                return self.skip(record, why)
        return Answer(record, score)

    def skip(self, record: InRecord, reason: str) -> Answer:
        """A score record that cannot be taken: counted and logged, its offset consumed."""
        answer = Answer(record, None)
        self.bad_records.skip("scores", answer.where(), reason)
        return answer
