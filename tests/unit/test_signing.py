"""Issue 31, item 6: scores signed per model (rendezvous.signing), and each key given only
to its model's workers and to serve by ``local up --secure``. Through the real broker:
tests/integration/test_signed_scores.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rendezvous.local.security import component_environment, prepare
from rendezvous.signing import SIGNATURE_HEADER, ScoreSigner, ScoreVerifier, new_key, verifier


def test_a_score_is_taken_only_with_the_key_of_the_model_it_names() -> None:
    keys = {"primary": new_key(), "canary": new_key()}
    check = ScoreVerifier(keys)
    value = b'{"id":"a","model":"primary"}'
    assert check.refusal("primary", value, ScoreSigner(keys["primary"]).headers(value)) is None
    as_dict = dict(ScoreSigner(keys["primary"]).headers(value))
    assert check.refusal("primary", value, as_dict) is None  # headers as a mapping too
    assert check.refusal("primary", value, ScoreSigner(keys["canary"]).headers(value)) == \
        "a score of model 'primary' is not signed with its key"
    assert check.refusal("primary", value, None) == "a score of model 'primary' is not signed"
    assert check.refusal("primary", value, [(SIGNATURE_HEADER, None)]) == \
        "a score of model 'primary' is not signed"
    tampered = value.replace(b'"a"', b'"b"')
    assert check.refusal("primary", tampered, ScoreSigner(keys["primary"]).headers(value))
    assert "no score key for model 'intruder'" in (
        check.refusal("intruder", value, ScoreSigner(keys["canary"]).headers(value)) or "")


def test_keys_must_be_long_hex_and_none_means_no_check() -> None:
    assert verifier({}) is None
    with pytest.raises(ValueError, match="must be hex"):
        ScoreSigner("not hex")
    with pytest.raises(ValueError, match="at least 16 bytes"):
        ScoreVerifier({"primary": "00" * 8})
    assert len(bytes.fromhex(new_key())) == 32 and new_key() != new_key()


def test_each_models_key_goes_to_its_workers_and_to_serve_only(tmp_path: Path) -> None:
    material = prepare(tmp_path / "s", "p.", ["primary", "canary", "fraud"])
    files = {f.stem: json.loads(f.read_text()) for f in material.users.iterdir()}
    keys = files["serve"]["score_keys"]
    assert sorted(keys) == ["canary", "fraud", "primary"] and len(set(keys.values())) == 3
    for model, key in keys.items():
        assert files[f"worker-{model}"]["score_key"] == key
    holders = {p for p, body in files.items() if "score_key" in body or "score_keys" in body}
    assert holders == {"serve", "worker-primary", "worker-canary", "worker-fraud"}

    operator = {"RENDEZVOUS_WORKER__SCORE_KEY": "operator's", **material.component_env()}
    canary = component_environment(operator, ["worker", "--model", "canary"])
    assert canary["RENDEZVOUS_WORKER__SCORE_KEY"] == keys["canary"]
    assert "RENDEZVOUS_SERVE__SCORE_KEYS" not in canary
    serve = component_environment(operator, ["serve"])
    assert json.loads(serve["RENDEZVOUS_SERVE__SCORE_KEYS"]) == keys
    assert "RENDEZVOUS_WORKER__SCORE_KEY" not in serve
    gateway = component_environment(operator, ["gateway"])
    assert not [k for k in gateway if "SCORE_KEY" in k]
