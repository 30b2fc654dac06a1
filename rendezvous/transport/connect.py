"""Client configuration from settings: librdkafka's for every Kafka client, and the
Redis client of the return addresses."""

from __future__ import annotations

from typing import Any

import redis

from rendezvous.logs import KAFKA_LOGGER
from rendezvous.settings import Settings


def kafka_config(settings: Settings, **extra: Any) -> dict[str, Any]:
    """librdkafka configuration for any client: bootstrap, security, then ``extra``.

    Every Producer, Consumer and AdminClient is built from this, so ``logger`` here
    routes all of librdkafka's log lines through Python logging (one format).
    """
    conf: dict[str, Any] = {
        "bootstrap.servers": settings.kafka_bootstrap(),
        "security.protocol": settings.kafka.security_protocol,
        "logger": KAFKA_LOGGER,
    }
    password = settings.kafka.sasl_password
    optional = {
        "sasl.mechanism": settings.kafka.sasl_mechanism,
        "sasl.username": settings.kafka.sasl_username,
        "sasl.password": password.get_secret_value() if password else None,
        "ssl.ca.location": settings.kafka.ssl_ca_location,
        "ssl.certificate.location": settings.kafka.ssl_certificate_location,
        "ssl.key.location": settings.kafka.ssl_key_location,
    }
    conf.update({k: v for k, v in optional.items() if v is not None})
    conf.update(extra)
    return conf


def redis_client(settings: Settings) -> redis.Redis:
    """A ``redis.Redis`` client for this deployment (its URL and ACL login)."""
    password = settings.redis.password.get_secret_value() if settings.redis.password else None
    return redis.Redis.from_url(settings.redis_url(), username=settings.redis.username,
                                password=password)
