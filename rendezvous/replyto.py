"""Return addresses: the one shape a ``reply_to`` may have, made and checked here only.

A synchronous caller (:class:`~rendezvous.client.Client`, the HTTP gateway) names a Redis
return address in each input event's ``reply_to``; serve keeps the result under
``<reply_to>:<id>`` and publishes it on channel ``<reply_to>``
(:mod:`rendezvous.service.replies`). Since anyone who may write ``input`` chooses that
string, serve accepts exactly one shape and answers anything else ``rejected``, with no
Redis write::

    <prefix>reply.<kind>.<token>

- ``<prefix>``: the deployment's ``Settings.topic_prefix`` (``rendezvous.`` by default);
- ``<kind>``: who made it, 1-32 of ``a-z 0-9 -`` starting with a letter (``gateway``,
  ``client``);
- ``<token>``: 128 random bits, 32 lowercase hexadecimal digits (``secrets.token_hex(16)``):
  another caller's address cannot be guessed.

Redis ACL patterns (:func:`redis_patterns`): serve's user needs ``SET`` on keys
``<prefix>reply.*`` and ``PUBLISH`` on channels ``<prefix>reply.*``; a caller's user ``GET``
on keys and ``SUBSCRIBE`` on channels of the same patterns. Nothing else in Redis is
written or read through a return address.
"""

from __future__ import annotations

import re
import secrets
from functools import lru_cache

REPLY = "reply."
"""What follows the prefix in every return address (and in its ACL patterns)."""
TOKEN_BYTES = 16
"""Random bytes of a return address's token: 128 bits, 32 hex digits."""
KIND = re.compile(r"[a-z][a-z0-9-]{0,31}")
MAX_SHOWN = 80
"""Characters of a refused ``reply_to`` quoted in the reason (it may be 512 KiB long)."""


def new_return_address(prefix: str, kind: str) -> str:
    """A fresh return address of ``kind`` (``gateway``, ``client``...) for the deployment of
    topic prefix ``prefix``: ``<prefix>reply.<kind>.<32 random hex digits>``."""
    if not KIND.fullmatch(kind):
        raise ValueError(f"a return address's kind is 1-32 of a-z, 0-9, '-', got {kind!r}")
    return f"{prefix}{REPLY}{kind}.{secrets.token_hex(TOKEN_BYTES)}"


@lru_cache(maxsize=16)
def _shape(prefix: str) -> re.Pattern[str]:
    return re.compile(re.escape(prefix + REPLY) + KIND.pattern
                      + rf"\.[0-9a-f]{{{2 * TOKEN_BYTES}}}")


def is_return_address(value: object, prefix: str) -> bool:
    """Whether ``value`` is a return address of the deployment of topic prefix ``prefix``."""
    return isinstance(value, str) and _shape(prefix).fullmatch(value) is not None


def refusal(value: object, prefix: str) -> str | None:
    """Why ``value`` may not be a ``reply_to`` (the rejection's reason), or None when it may."""
    if is_return_address(value, prefix):
        return None
    shown = repr(value)
    if len(shown) > MAX_SHOWN:
        shown = shown[:MAX_SHOWN] + "..."
    return (f"reply_to {shown} is not a return address of this deployment "
            f"({prefix}{REPLY}<kind>.<32 hex digits>)")


def redis_patterns(prefix: str) -> tuple[str, str]:
    """(key pattern, channel pattern) covering every return address of ``prefix`` and every
    key kept under one (``<address>:<id>``), as Redis ACL rules take them (``~`` keys, ``&``
    channels): both ``<prefix>reply.*``, glob characters of the prefix escaped."""
    pattern = re.sub(r"([*?\[\]\\])", r"\\\1", prefix + REPLY) + "*"
    return pattern, pattern
