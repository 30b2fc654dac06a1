"""The policy an embedded rendezvous starts with: a ``Policy``, a dict, or a YAML/JSON file.

The same :class:`~rendezvous.messages.Policy` type serve reads from the control topic, so
one policy file can be tried in process and then published with ``rendezvous policy set``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec
import yaml

from rendezvous.core import CompiledPolicy, PolicyError
from rendezvous.embedded.errors import EmbeddedError
from rendezvous.messages import Policy

PolicyLike = Policy | Mapping[str, Any] | str | Path | None
"""What ``Embedded(policy=...)`` takes: a Policy, its fields as a dict, the path of a YAML or
JSON file holding them, or None for the default policy (prefer primary, then canary)."""


def to_policy(source: PolicyLike) -> Policy:
    """``source`` as a checked :class:`Policy`; :class:`EmbeddedError` saying what is wrong."""
    if source is None:
        policy = Policy()
    elif isinstance(source, Policy):
        policy = source
    elif isinstance(source, Mapping):
        policy = _convert(dict(source), "the policy dict")
    else:
        path = Path(source)
        try:
            data = yaml.safe_load(path.read_text())  # JSON is YAML too
        except OSError as exc:
            raise EmbeddedError(f"cannot read the policy file {path}: {exc}") from None
        except yaml.YAMLError as exc:
            raise EmbeddedError(f"the policy file {path} is not YAML or JSON: {exc}") from None
        if not isinstance(data, dict):
            raise EmbeddedError(f"the policy file {path} must hold a mapping of Policy fields "
                                "(prefer, deadline_ms, rules, ...)")
        policy = _convert(data, f"the policy file {path}")
    try:
        CompiledPolicy(policy)  # the core's own check, so serve would accept it too
    except PolicyError as exc:
        raise EmbeddedError(f"bad policy: {exc}") from None
    return policy


def _convert(data: dict[str, Any], where: str) -> Policy:
    try:
        return msgspec.convert(data, Policy, strict=False)
    except msgspec.ValidationError as exc:
        raise EmbeddedError(f"{where} is no policy: {exc} (fields: prefer, deadline_ms, "
                            "rules, map_scores, prefer_in_time)") from None
