"""The rendezvous inside a Python application: :class:`Embedded` (docs/embedded.md).

The same policy, decision code and ``Scored`` contract as the Kafka deployment, with the
models running on a thread pool of the calling process and no broker.
"""

from rendezvous.embedded.engine import Embedded, EmbeddedStats, ModelStats
from rendezvous.embedded.errors import ClosedError, EmbeddedError

__all__ = ["ClosedError", "Embedded", "EmbeddedError", "EmbeddedStats", "ModelStats"]
