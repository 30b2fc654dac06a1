"""Errors of the Kafka transport."""

from rendezvous.errors import RendezvousError


class TransportError(RendezvousError, RuntimeError):
    """Kafka could not do what was asked; the message says what to do."""


class TopicMismatch(TransportError):
    """An existing topic differs from its declaration in topics.yaml."""


class DeliveryFailed(TransportError):
    """The broker did not acknowledge a batch's outputs; its input offsets were not committed."""
