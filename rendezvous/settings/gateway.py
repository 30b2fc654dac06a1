"""``[gateway]``: the HTTP (Open Inference Protocol v2) front door."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

MIN_API_KEY_LENGTH = 16
"""The shortest API key the gateway accepts."""


class GatewaySettings(BaseModel):
    """``rendezvous gateway``: the HTTP (Open Inference Protocol v2) front door.

    From the environment: ``RENDEZVOUS_GATEWAY__PORT=8000``,
    ``RENDEZVOUS_GATEWAY__API_KEYS='["key1", "key2"]'``, ...
    """

    # A refused value is never echoed in the error: it may be an API key.
    model_config = ConfigDict(frozen=True, hide_input_in_errors=True)

    model_name: str = "rendezvous"
    """The deployment's name in ``/v2/models/{name}``. Default ``rendezvous``."""

    host: str = "127.0.0.1"
    """Address the HTTP server binds (``0.0.0.0`` in a container). Default ``127.0.0.1``."""

    port: int = 8000
    """HTTP port (0: any free port, printed on the ready line). Default 8000."""

    api_keys: list[SecretStr] = []
    """Bearer tokens accepted in ``Authorization``; empty = no authentication. Never logged.
    Each at least :data:`MIN_API_KEY_LENGTH` characters (refused at start otherwise).
    Default none."""

    @field_validator("api_keys")
    @classmethod
    def _long_enough(cls, keys: list[SecretStr]) -> list[SecretStr]:
        short = [i + 1 for i, key in enumerate(keys)
                 if len(key.get_secret_value().strip()) < MIN_API_KEY_LENGTH]
        if short:
            raise ValueError(
                f"API key {', '.join(f'#{i}' for i in short)} of {len(keys)} is shorter than "
                f"{MIN_API_KEY_LENGTH} characters (or empty): a short key can be guessed; "
                "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'")
        return keys

    metrics_public: bool = False
    """Serve ``/metrics`` without the key even when API keys are set (for a scraper that
    cannot send one); by default it needs the key like every route but the health probes.
    Default off."""

    allowed_hosts: list[str] | None = None
    """``Host`` header values the gateway answers (``*.example.com`` for subdomains, ``*``
    for any): a web page that rebinds its DNS name to this address is refused. Unset: the
    bind address, ``localhost``, ``127.0.0.1`` and ``::1`` (with a wildcard bind, also this
    machine's host name). ``/v2/health/*`` is answered for any host (probes). Default unset."""

    cors_origins: list[str] = []
    """Origins (``https://app.example.com``) whose web pages may call the gateway (CORS);
    empty = none: a request carrying another ``Origin`` is refused (403). Default none."""

    max_concurrent: int = Field(default=64, ge=1)
    """Inference requests in the gateway at once (reading, waiting for results); one more
    is answered 503 with ``Retry-After`` before its body is read. Default 64."""

    max_body_memory: int = Field(default=64 * 1024 * 1024, ge=16 * 1024 * 1024)
    """Bytes of large request bodies (over 1 MiB, or of unknown length) held at once, by
    their declared length; a large body that does not fit is answered 503 with
    ``Retry-After`` before it is read, so a flood of big bodies cannot take the memory (or
    the turn) of the small requests. At least the largest body, 16 MiB. Default 64 MiB."""

    slack_ms: float = 10.0
    """How long after a request's deadline the gateway still waits for results before it
    answers the missing rows ``timeout`` itself: the Redis hop plus scheduling. Default 10."""

    features_from: str = "primary"
    """Model whose manifest defines the inputs (feature names, order, dtypes).
    Default ``primary``."""

    max_rows: int = 1000
    """Rows per inference request at most. Default 1000."""

    max_deadline_ms: float = 60_000.0
    """Longest deadline a request may ask for. Default 60,000 (a minute)."""

