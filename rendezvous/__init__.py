"""rendezvous: the rendezvous architecture for ML serving, on Kafka or embedded in process.

``rendezvous.Embedded`` is loaded on first use, so ``import rendezvous`` (the CLI does)
does not load ONNX Runtime.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rendezvous.embedded import Embedded

__all__ = ["Embedded"]


def __getattr__(name: str) -> Any:
    if name == "Embedded":
        from rendezvous.embedded import Embedded

        return Embedded
    raise AttributeError(f"module 'rendezvous' has no attribute {name!r}")
