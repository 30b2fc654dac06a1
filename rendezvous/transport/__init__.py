"""Thin confluent-kafka wrappers: clients from settings, micro-batches, topics admin."""
