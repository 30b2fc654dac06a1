"""``rendezvous.Embedded`` with the bundled models: deadlines, failures, the in-flight bound,
features, policies, asyncio and batches."""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from rendezvous.core import Scales
from rendezvous.embedded import ClosedError, Embedded, EmbeddedError
from rendezvous.embedded.models import BUNDLED
from rendezvous.model import load_dataset, load_model, reference_quantiles, resolve_model
from tests.unit.embedded.doubles import Blocked, Raising, Slowed

DATA = load_dataset()
PRIMARY = load_model(resolve_model(BUNDLED, "primary"))
CANARY = load_model(resolve_model(BUNDLED, "canary"))
TO_PRIMARY = Scales(reference_quantiles(BUNDLED)).towards("primary")["canary"][CANARY.version]


def row(i: int) -> list[float]:
    return [float(v) for v in DATA.X[i]]


@pytest.fixture
def release() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()


def test_import_rendezvous_does_not_load_onnx_runtime() -> None:
    code = ("import sys, rendezvous\n"
            "assert 'onnxruntime' not in sys.modules, 'import rendezvous loaded onnxruntime'\n"
            "from rendezvous.embedded import Embedded\n"
            "assert rendezvous.Embedded is Embedded\n"
            "print('ok')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_bundled_models_answer_with_the_primary() -> None:
    with Embedded() as embedded:
        result = embedded.score(dict(zip(DATA.feature_names, row(0), strict=True)), id="a")
    assert (result.id, result.status, result.model, result.version) == ("a", "ok", "primary", "1")
    assert result.score == float(PRIMARY.predict(DATA.X[:1]).scores[0])
    assert result.latency_ms <= 50.0 + 100.0


def test_a_slow_primary_gives_the_canary_by_the_deadline() -> None:
    with Embedded(models=[Slowed(PRIMARY, delay_ms=1500)]) as embedded:
        started = time.perf_counter()
        result = embedded.score(row(3), deadline_ms=100)
        elapsed_ms = (time.perf_counter() - started) * 1000
        assert elapsed_ms < 1000, "the call waited for the slow model"
    assert (result.status, result.model) == ("fallback", "canary")
    assert result.reason == "primary: no answer by deadline"
    raw = float(CANARY.predict(DATA.X[3:4]).scores[0])
    assert result.raw_score == raw and result.score == TO_PRIMARY(raw)
    assert result.latency_ms >= 100


def test_a_primary_that_raises_gives_a_fallback_with_the_reason() -> None:
    with Embedded(models=[Raising("primary", "out of memory", PRIMARY.schema)]) as embedded:
        result = embedded.score(row(1))
        stats = embedded.stats()
    assert (result.status, result.model) == ("fallback", "canary")
    assert result.reason == "primary: status error: model failed: out of memory"
    assert [m.failed for m in stats.models if m.name == "primary"] == [1]


def test_a_model_busy_with_earlier_calls_does_not_answer(release: threading.Event) -> None:
    blocked = Blocked("primary", release, schema=PRIMARY.schema)
    with Embedded(models=[blocked], max_in_flight=1) as embedded:
        first = embedded.score(row(0), deadline_ms=50)
        started = time.perf_counter()
        second = embedded.score(row(0), deadline_ms=5000)
        elapsed_ms = (time.perf_counter() - started) * 1000
        stats = embedded.stats()
        release.set()
    assert (first.status, first.reason) == ("fallback", "primary: no answer by deadline")
    assert second.status == "fallback" and second.reason is not None
    assert second.reason.startswith("primary: status error: busy: its max_in_flight=1 ")
    assert elapsed_ms < 2500, "a busy model was waited for instead of counted as no answer"
    assert [m.busy for m in stats.models if m.name == "primary"] == [1]


def test_features_that_do_not_fit_are_rejected_with_serves_reason() -> None:
    with Embedded() as embedded:
        missing = embedded.score({"mean_radius": 1.0})
        short = embedded.score([1.0, 2.0])
        nan = embedded.score([math.nan] + row(0)[1:])
        text = embedded.score(["a"] + row(0)[1:])
        as_ints = embedded.score([int(v) for v in row(5)])
        as_array = embedded.score(DATA.X[5])
    assert missing.status == "rejected" and "feature mismatch: missing" in (missing.reason or "")
    assert (short.status, short.reason) == ("rejected", "expected 30 features, got 2")
    assert nan.status == "rejected" and "finite" in (nan.reason or "")
    assert text.status == "rejected" and "must be a number" in (text.reason or "")
    assert as_ints.status == "ok"
    assert as_array.status == "ok"
    assert as_array.score == float(PRIMARY.predict(DATA.X[5:6]).scores[0])


def test_policy_from_a_dict_a_yaml_file_and_a_json_file(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text("prefer: [canary]\ndeadline_ms: 20\n")
    (tmp_path / "p.json").write_text(json.dumps({"prefer": ["canary", "primary"]}))
    for source in ({"prefer": ["canary"]}, tmp_path / "p.yaml", str(tmp_path / "p.json")):
        with Embedded(policy=source) as embedded:
            assert embedded.score(row(2)).model == "canary"
    with Embedded(policy=tmp_path / "p.yaml") as embedded:
        assert embedded.policy.deadline_ms == 20


@pytest.mark.parametrize(("policy", "says"), [
    ({"prefer": []}, "prefer must name at least one model"),
    ({"deadline_ms": "soon"}, "is no policy"),
    ({"prefer": ["primary", "shadow"]}, "no model named .shadow."),
    ("no-such-policy.yaml", "cannot read the policy file"),
])
def test_a_bad_policy_says_what_is_wrong(policy: object, says: str) -> None:
    with pytest.raises(EmbeddedError, match=says):
        Embedded(policy=policy)  # type: ignore[arg-type]


def test_set_policy_applies_to_later_calls_and_a_bad_one_keeps_the_old() -> None:
    with Embedded() as embedded:
        embedded.set_policy({"prefer": ["canary", "primary"]})
        assert embedded.score(row(0)).model == "canary"
        with pytest.raises(EmbeddedError):
            embedded.set_policy({"prefer": ["nobody"]})
        assert embedded.policy.prefer == ["canary", "primary"]


def test_ascore_and_a_batch_give_what_score_gives() -> None:
    rows = [row(i) for i in range(64)]
    expected = PRIMARY.predict(DATA.X[:64]).scores.tolist()

    async def both() -> list:
        return await asyncio.gather(*(embedded.ascore(r, id=str(i)) for i, r in enumerate(rows)))

    with Embedded(max_in_flight=64) as embedded:
        batch = embedded.score_batch(rows, deadline_ms=2000)
        single = [embedded.score(r, deadline_ms=2000) for r in rows[:8]]
        concurrent = asyncio.run(both())
    assert [r.status for r in batch] == ["ok"] * 64
    assert [r.score for r in batch] == expected
    assert [r.score for r in single] == expected[:8]
    assert [r.id for r in concurrent] == [str(i) for i in range(64)]
    ok = [r for r in concurrent if r.status == "ok"]
    assert ok and all(r.score == expected[int(r.id)] for r in ok)


def test_a_batch_with_ids_and_one_bad_row() -> None:
    rows = [row(0), [1.0], row(1)]
    with Embedded() as embedded:
        results = embedded.score_batch(rows, ids=["a", "b", "a"])
        with pytest.raises(EmbeddedError, match="one id per row"):
            embedded.score_batch(rows, ids=["a"])
    assert [(r.id, r.status) for r in results] == [("a", "ok"), ("b", "rejected"), ("a", "ok")]


def test_a_closed_embedded_refuses_calls() -> None:
    embedded = Embedded()
    embedded.close()
    with pytest.raises(ClosedError):
        embedded.score(row(0))


def test_scores_stay_exact_for_float32_rows() -> None:
    with Embedded() as embedded:
        result = embedded.score(np.asarray(DATA.X[7], dtype=np.float32))
    assert result.score == float(PRIMARY.predict(DATA.X[7:8]).scores[0])


def test_a_cancelled_ascore_is_decided_by_a_later_call(release: threading.Event) -> None:
    blocked = Blocked("primary", release, schema=PRIMARY.schema)
    canary = Blocked("canary", release, schema=CANARY.schema)

    async def cancelled() -> None:
        task = asyncio.ensure_future(embedded.ascore(row(0), deadline_ms=30))
        await asyncio.sleep(0.005)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    with Embedded(models=[blocked, canary]) as embedded:
        asyncio.run(cancelled())
        time.sleep(0.05)  # its deadline has passed; nobody waits for it
        assert embedded.stats().decided == 0
        embedded.set_policy({"prefer": ["canary"]})
        later = embedded.score(row(1), deadline_ms=30)
        stats = embedded.stats()
        release.set()
    assert later.status == "timeout"
    assert stats.decided == 2
