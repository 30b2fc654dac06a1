"""Issue 31, item 6, through the real broker: a model's worker cannot answer as another.

serve holds every model's key; a real canary worker signs with the canary's key. A score
that names the primary is taken only when signed with the primary's key: the canary's
key, no signature, or a model serve has no key for are skipped and counted, and the
request is answered by the canary (fallback) as if the primary were silent.
"""

from __future__ import annotations

import json
import secrets
import time

import pytest

from rendezvous.local.errors import LocalStackError
from rendezvous.local.supervisor import Supervisor
from rendezvous.messages import SCHEMA_VERSION, Score, encode
from rendezvous.settings import Settings
from rendezvous.signing import ScoreSigner, new_key
from rendezvous.transport.clients import flush_or_raise
from tests.integration.test_security_serve import (
    features,
    metric,
    produce,
    results_by_id,
    start_serve,
)
from tests.streams import producer_for

pytestmark = pytest.mark.integration


def forged_scores(settings: Settings, rid: str, signers: list[ScoreSigner | None],
                  model: str = "primary") -> None:
    """Scores of ``rid`` that name ``model``, one per signer (None: unsigned)."""
    producer = producer_for(settings)
    now = time.time() * 1000
    for signer in signers:
        value = encode(Score(rid, model, "1", "ok", 0.999, 1, now, now, None, SCHEMA_VERSION))
        headers = signer.headers(value) if signer is not None else None
        producer.produce(settings.topic("scores"), value, rid.encode(), partition=0,
                         headers=headers)
    flush_or_raise(producer)


def test_a_score_signed_with_another_models_key_is_not_taken(settings: Settings,
                                                             supervisor: Supervisor) -> None:
    keys = {"primary": new_key(), "canary": new_key()}
    port = start_serve(supervisor, env={"RENDEZVOUS_SERVE__SCORE_KEYS": json.dumps(keys)})
    supervisor.start("canary", ["worker", "--model", "canary"],
                     env={"RENDEZVOUS_WORKER__SCORE_KEY": keys["canary"]})
    canary, primary = ScoreSigner(keys["canary"]), ScoreSigner(keys["primary"])

    forged = [f"forged-{secrets.token_hex(4)}-{i}" for i in range(3)]
    genuine = f"genuine-{secrets.token_hex(4)}"
    for rid in forged:  # the forgeries are in before the request: they would win
        forged_scores(settings, rid, [canary, None])
        forged_scores(settings, rid, [canary], model="intruder")  # no key for it
    forged_scores(settings, genuine, [primary])
    produce(settings, *[{"id": rid, "features": features(i), "deadline_ms": 2000,
                         "ts": time.time() * 1000}
                        for i, rid in enumerate([*forged, genuine])])

    found = results_by_id(settings, {*forged, genuine})
    for rid in forged:
        [result] = found[rid]
        assert (result.status, result.model) == ("fallback", "canary"), result
        assert result.score != 0.999
    [taken] = found[genuine]
    assert (taken.status, taken.model, taken.score) == ("ok", "primary", 0.999)
    deadline = time.monotonic() + 5
    skipped = 0.0
    while time.monotonic() < deadline:
        skipped = metric(port, "rendezvous_bad_records_total",
                         'component="serve",topic="scores"')
        if skipped >= 9:
            break
        time.sleep(0.2)
    assert skipped == 9.0  # 3 requests x (canary's key, unsigned, no key for the model)


def test_serve_refuses_to_start_with_a_key_that_is_no_key(supervisor: Supervisor) -> None:
    env = {"RENDEZVOUS_SERVE__SCORE_KEYS": json.dumps({"primary": "not hex"})}
    with pytest.raises(LocalStackError, match="SCORE_KEYS: a score key must be hex"):
        supervisor.start("serve", ["serve"], env=env)
