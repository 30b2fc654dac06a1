"""The model worker: consume input micro-batches, score them with ONNX Runtime, produce scores.

``batch`` is the pure decode pass (records -> one float32 array); ``runner`` is
the Kafka loop around it.
"""

from rendezvous.worker.batch import Prepared, RowBuilder, prepare
from rendezvous.worker.errors import DeliveryFailed, WorkerError

__all__ = ["DeliveryFailed", "Prepared", "RowBuilder", "WorkerError", "prepare"]
