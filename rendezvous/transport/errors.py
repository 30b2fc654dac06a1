"""Errors of the Kafka transport."""


class TransportError(RuntimeError):
    """Kafka could not do what was asked; the message says what to do."""


class TopicMismatch(TransportError):
    """An existing topic differs from its declaration in topics.yaml."""


class DeliveryFailed(TransportError):
    """The broker did not acknowledge a batch's outputs; its input offsets were not committed."""
