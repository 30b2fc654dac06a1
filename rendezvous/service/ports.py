"""What serve's loop reads and writes, whatever carries it: a :class:`Source` and a :class:`Sink`.

The loop (:mod:`.loop`) decodes records, calls the core, encodes outcomes and
hands them to a sink; it never names a Kafka client. Kafka is one pair of
implementations (:mod:`.kafka` and :mod:`.publisher`), memory another
(:mod:`.memory`), which is how the whole loop is tested without a broker.

A record comes in as confluent-kafka's ``Message`` presents it (methods, not
fields), so Kafka's records reach serve's decode step (:mod:`.decode`) as they were
polled: no copy, no wrapper on the hot path. Offsets go out as :class:`Position`; a
Kafka sink turns them into what a Kafka commit takes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import NamedTuple, Protocol

from rendezvous.errors import RendezvousError
from rendezvous.messages import Policy, RecordHeaders, Scored

Headers = list[tuple[str, str | bytes | None]]
OutRecord = tuple[str, bytes, bytes, int, Headers | None]
"""A record to write: (topic, value, key, partition, headers)."""


class Position(NamedTuple):
    """Of one topic and partition, the next offset to consume (what a commit stores)."""

    topic: str
    partition: int
    offset: int


Offsets = list[Position]


class InRecord(Protocol):
    """A consumed record: the methods of confluent-kafka's ``Message`` the loop uses."""

    def topic(self) -> str | None: ...

    def partition(self) -> int | None: ...

    def offset(self) -> int | None: ...

    def key(self) -> bytes | None: ...

    def value(self) -> bytes | None: ...

    def timestamp(self) -> tuple[int, int]:
        """(timestamp type, epoch ms)."""
        ...

    def headers(self) -> RecordHeaders | None: ...


class Listener(Protocol):
    """What a source tells the loop about partitions (numbers of the ``input`` topic)."""

    def assigned(self, committed: Mapping[int, int | None]) -> None:
        """These partitions are now this loop's; the committed input offset of each
        (None: nothing committed yet)."""

    def revoked(self, partitions: Iterable[int]) -> None:
        """Commit what was decided for these partitions, then forget them."""

    def lost(self, partitions: Iterable[int]) -> None:
        """These partitions are gone without a chance to commit."""


class Source(Protocol):
    """Records of ``input`` and ``scores`` in, with the state recovery needs."""

    def open(self, listener: Listener) -> None:
        """Start receiving; partition changes are reported to ``listener``, inside :meth:`poll`."""

    def poll(self, max_records: int, timeout_s: float) -> Sequence[InRecord]:
        """The records available now, up to ``max_records``, waiting at most ``timeout_s``
        for the first."""

    def rewind(self) -> Mapping[int, int | None]:
        """Go back to the committed offsets of every assigned partition; they are returned
        per input partition."""

    def answered(self, committed: Mapping[int, int | None]) -> dict[int, set[str]]:
        """Per partition, the ids already answered since its committed input offset
        (what the ``scored`` sink holds)."""

    def current_policy(self) -> Policy | None:
        """The policy in force when serving starts (None: the default), read to its end."""

    def new_policy(self) -> Policy | None:
        """The newest policy published since the last call, or None."""

    def close(self) -> None: ...


class Redo(RendezvousError, RuntimeError):
    """The sink lost what it had not committed: decide again from the committed offsets."""


class Sink(Protocol):
    """Results, decisions and dead letters out; replies and offset commits behind them."""

    fences_zombies: bool
    """True when a paused instance's late writes are refused (transactions): then the
    loop needs no pause guard of its own."""

    def write(self, record: OutRecord) -> None:
        """Write ``record`` (now, or with the step's commit)."""

    def reply(self, reply_to: str, scored: Scored) -> None:
        """Notify ``reply_to`` of ``scored`` once the records written before it are safe."""

    def end_step(self, offsets: Callable[[], Offsets] | None) -> bool:
        """Close a loop step. ``offsets`` gives the input and score offsets everything
        written so far accounts for (None: nothing consumed or decided since they were
        taken); True when they were taken. Raises :class:`Redo`."""

    def commit_all(self, offsets: Offsets) -> None:
        """Write and commit everything so far, and wait until it is done (rebalance, stop)."""

    def discard(self, settle_s: float = 0.0) -> None:
        """Forget what is not committed, after waiting up to ``settle_s`` for what is in
        flight to land or fail."""

    def output_p99_ms(self) -> float | None:
        """p99 of the recent decision-to-acknowledgement times; None when not measured."""

    def close(self) -> None: ...
