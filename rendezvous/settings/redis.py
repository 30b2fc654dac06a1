"""``[redis]``: the Redis of the return addresses (synchronous callers, the gateway)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, SecretStr


class RedisSettings(BaseModel):
    """Where and as whom every component reaches Redis (``RENDEZVOUS_REDIS__*``; the URL
    also ``REDIS_URL``)."""

    # A refused value is never echoed in the error: it may be a password.
    model_config = ConfigDict(frozen=True, hide_input_in_errors=True)

    url: str | None = None
    """Redis URL (``redis://host:port/0``). Default unset: the Redis ``rendezvous local
    up`` started (the CLI reads its endpoints file)."""

    username: str | None = None
    """Redis ACL user. Default unset: the server's ``default`` user."""

    password: SecretStr | None = None
    """Redis password, if the server asks for one; never logged. Default unset."""
