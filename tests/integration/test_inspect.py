"""``rendezvous inspect ID`` through the real broker, Redis and a running pipeline: one
pipeline for the module (a slow primary, a canary, a shadow canary version, serve, the
decoy and the gateway), one request of each kind, and each story's lines checked
against what the test saw happen (the results on the scored topic, the gateway's
answer, the policy it published)."""

from __future__ import annotations

import json
import re
import shutil
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from rendezvous.archive.retention import Selector
from rendezvous.cli import main
from rendezvous.client import Client
from rendezvous.demo.gateway_call import infer_body, infer_url
from rendezvous.inspect.archive import search_archive
from rendezvous.inspect.window import iso, window
from rendezvous.local.pipeline import component_env, gateway_address
from rendezvous.local.supervisor import Supervisor
from rendezvous.messages import (
    Feedback,
    Policy,
    Scored,
    decode_score,
    decode_scored,
    encode,
    is_provisional,
)
from rendezvous.model import sample_events
from rendezvous.registry.commands import change
from rendezvous.service.control import publish_policy
from rendezvous.settings import PACKAGE_DIR, Settings
from rendezvous.transport.clients import flush_or_raise, make_producer
from rendezvous.transport.reader import TopicReader
from rendezvous.transport.topics import apply_topics

pytestmark = pytest.mark.integration

PRIMARY_DELAY_MS = 2000
"""The primary answers this late: in time for a 10 s deadline, too late for a 1 s one."""
ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


@dataclass
class Happened:
    """What the module's pipeline was sent and what came of it."""

    settings: Settings
    env: dict[str, str]
    archive: Path
    ids: dict[str, str]
    """Kind of request -> its id."""
    finals: dict[str, Scored]
    """Request id -> its final result, as read from the scored topic."""
    provisional: dict[str, Scored]
    gateway_rows: list[str]
    gateway_id: str
    policy: Policy


def _models(root: Path) -> Path:
    """The bundled models, and canary 2: canary 1's artifact under a new version (the
    shadow worker scores it)."""
    models = root / "models"
    shutil.copytree(PACKAGE_DIR / "models", models)
    shutil.copytree(models / "canary" / "1", models / "canary" / "2")
    manifest = models / "canary" / "2" / "model.yaml"
    manifest.write_text(manifest.read_text().replace("version: '1'", "version: '2'", 1))
    return models


def _scored(settings: Settings, ids: set[str], timeout_s: float = 90
            ) -> tuple[dict[str, Scored], dict[str, Scored]]:
    """The final and provisional results of ``ids``, once every final one is in."""
    finals: dict[str, Scored] = {}
    provisional: dict[str, Scored] = {}
    give_up = time.monotonic() + timeout_s
    with TopicReader(settings, settings.topic("scored")) as reader:
        while not ids <= finals.keys():
            assert time.monotonic() < give_up, f"no result for {ids - finals.keys()}"
            for record in reader.poll(0.2):
                result = decode_scored(record.value())
                (provisional if is_provisional(record.headers()) else finals)[result.id] = result
    return finals, provisional


def _late_answer(settings: Settings, rid: str, model: str, timeout_s: float = 60) -> None:
    """Wait until ``model``'s answer to ``rid`` is on the scores topic (after its decision)."""
    give_up = time.monotonic() + timeout_s
    with TopicReader(settings, settings.topic("scores")) as reader:
        while True:
            assert time.monotonic() < give_up, f"{model} never answered {rid}"
            if any(score.id == rid and score.model == model
                   for score in map(decode_score, (r.value() for r in reader.poll(0.2)))):
                return


def _gateway_call(settings: Settings, address: str, caller_id: str) -> dict:
    body = infer_body(caller_id)
    features = body["inputs"][0]
    features["shape"] = [2, features["shape"][1]]
    features["data"] = features["data"] * 2
    request = urllib.request.Request(
        infer_url(settings, address), data=json.dumps(body).encode(),
        headers={"X-Deadline-Ms": "10000", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return dict(json.loads(response.read()))


@pytest.fixture(scope="module")
def happened(stack: tuple[str, str], tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[Happened]:
    root = tmp_path_factory.mktemp("inspect")
    bootstrap, redis_url = stack
    settings = Settings(bootstrap_servers=bootstrap, redis_url=redis_url,
                        topic_prefix=f"t{uuid.uuid4().hex[:10]}.", models_dir=_models(root))
    apply_topics(settings)
    policy = publish_policy(settings, Policy(prefer=["primary", "canary"], deadline_ms=50),
                            actor="inspect-test")
    change(settings, "canary", "shadow", "2", actor="inspect-test")
    env = component_env(settings)
    archive = root / "archive"
    supervisor = Supervisor(root / "logs", env)
    try:
        supervisor.start("primary", ["worker", "--model", "primary",
                                     "--delay-ms", str(PRIMARY_DELAY_MS)])
        supervisor.start("canary", ["worker", "--model", "canary"])
        supervisor.start("canary-shadow", ["worker", "--model", "canary", "--shadow"])
        supervisor.start("serve", ["serve"])
        supervisor.start("decoy", ["decoy", "--archive", str(archive), "--roll-seconds", "1"])
        address = gateway_address(supervisor.start("gateway", ["gateway", "--port", "0"]))

        run = uuid.uuid4().hex[:8]
        ids = {kind: f"{kind}-{run}" for kind in ("fallback", "timeout", "rejected",
                                                    "progressive")}
        features = sample_events(1, seed=5)[0]["features"]
        events = [
            {"id": ids["fallback"], "features": features, "deadline_ms": 1000},
            {"id": ids["timeout"], "features": features, "deadline_ms": 1,
             "ts": time.time() * 1000},
            {"id": ids["rejected"], "features": [1.0, 2.0], "deadline_ms": 10000},
            {"id": ids["progressive"], "features": features, "deadline_ms": 10000,
             "progressive": True},
        ]
        producer = make_producer(settings)
        for event in events:
            producer.produce(settings.topic("input"), json.dumps(event).encode(), event["id"])
        flush_or_raise(producer)
        with Client(settings) as client:  # a return address: its reply is kept in Redis
            ids["ok"] = client.send(features, deadline_ms=10000)
            client.wait(ids["ok"], timeout_s=30)
        answer = _gateway_call(settings, address, f"gw-{run}")
        gateway_id = answer["parameters"]["rendezvous_id"]
        rows = [f"{gateway_id}.0", f"{gateway_id}.1"]
        producer.produce(settings.topic("feedback"), encode(Feedback(ids["ok"], 1)),
                         ids["ok"].encode())
        flush_or_raise(producer)
        finals, provisional = _scored(settings, {*ids.values(), *rows})
        _late_answer(settings, ids["fallback"], "primary")
        yield Happened(settings, env, archive, ids, finals, provisional, rows, gateway_id,
                       policy)
    finally:
        supervisor.stop_all()


def inspect(happened: Happened, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["inspect", *args], env=happened.env)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def lines(text: str) -> dict[str, list[str]]:
    """The story's lines by label (``input``, ``answer``...), in order."""
    found: dict[str, list[str]] = {}
    for line in text.splitlines()[1:]:
        label, _, rest = line.strip().partition(" ")
        if label == "dead":  # "dead letter"
            label, rest = "dead letter", rest.removeprefix("letter").strip()
        elif label == "not":
            label, rest = "not read", rest.removeprefix("read").strip()
        found.setdefault(label, []).append(rest.strip())
    return found


def four(value: float | None) -> str:
    assert value is not None
    return f"{value:.4f}"


def check_policy(story: dict[str, list[str]], happened: Happened) -> None:
    [policy] = story["policy"]
    assert policy == ("prefer primary > canary, deadline 50 ms, rules none, map scores on, "
                      f"prefer in time off; published {iso(happened.policy.at_ms or 0)} by "
                      "inspect-test")


def test_ok_answer_with_its_shadow_feedback_and_redis_reply(happened: Happened) -> None:
    rid = happened.ids["ok"]
    code, out, err = inspect(happened, rid)
    assert code == 0, out + err
    assert out.splitlines()[0] == f"request {rid}"
    story = lines(out)
    result = happened.finals[rid]
    [received] = story["input"]
    assert re.fullmatch(rf"{ISO} at input\[\d\]@\d+ \(kafka\), \d+ bytes, ts {ISO}, deadline "
                        r"10000 ms, reply to t\w+\.reply\.client\.[0-9a-f]{32}", received), \
        received
    assert story["redactions"] == ["none: Kafka holds the input as sent"]
    check_policy(story, happened)
    answers = {a.split(":", 1)[0]: a for a in story["answer"]}
    assert set(answers) == {"primary 1", "canary 1", "canary 2 (shadow)"}, answers
    assert answers["primary 1"].startswith(f"primary 1: score {four(result.score)}, label "
                                           f"{result.label}, +")
    assert answers["primary 1"].endswith(", valid")
    assert answers["canary 2 (shadow)"].endswith(", valid")
    # canary 2 is canary 1's artifact: the shadow's score is the live canary's
    assert answers["canary 2 (shadow)"].split(",")[0].split(": ")[1] == \
        answers["canary 1"].split(",")[0].split(": ")[1]
    [decision] = story["decision"]
    assert re.fullmatch(rf"ok: primary 1 at {ISO} \(\+[\d.]+ ms, due {ISO}\)", decision)
    assert story["why"] == ["primary, the most preferred model, answered in time"]
    [scored] = story["scored"]
    assert scored.startswith(f"status ok, model primary, score {four(result.score)}, label "
                             f"{result.label}; appended ")
    assert f"latency {round(result.latency_ms, 1):g} ms" in scored
    assert re.fullmatch(r"label 1, appended " + ISO + r" at feedback\[\d\]@\d+",
                        story["feedback"][0])
    [reply] = story["reply"]
    assert re.fullmatch(rf"t\w+\.reply\.client\.[0-9a-f]{{32}}:{rid}: held, status ok, model "
                        rf"primary, score {four(result.score)}, label {result.label}, "
                        r"expires in \d+ s", reply), reply


def test_fallback_says_how_late_the_primary_was_and_how_the_score_was_mapped(
        happened: Happened) -> None:
    rid = happened.ids["fallback"]
    code, out, err = inspect(happened, rid, "--since", "30m")
    assert code == 0, out + err
    print(out)  # what an operator sees (pytest -s)
    story = lines(out)
    result = happened.finals[rid]
    assert result.status == "fallback" and result.model == "canary"
    [decision] = story["decision"]
    assert decision.startswith("fallback: canary 1 at ")
    [why] = story["why"]
    assert re.fullmatch(
        rf"primary answered \d+ ms after the decision; canary's {four(result.raw_score)} "
        rf"mapped to {four(result.score)} on primary's scale by "
        r"reference:canary/1->primary/1", why), why
    answers = {a.split(":", 1)[0]: a for a in story["answer"]}
    assert re.search(r", \d+(\.\d+)? ms after the decision$", answers["primary 1"])
    assert answers["canary 1"].endswith(", valid")
    assert story["scored"][0].startswith(
        f"status fallback, model canary, score {four(result.score)}")
    assert story["feedback"] == ["none found"]
    assert "reply" not in story  # no return address: nothing to ask Redis


def test_timeout(happened: Happened) -> None:
    rid = happened.ids["timeout"]
    code, out, err = inspect(happened, rid)
    assert code == 0, out + err
    story = lines(out)
    assert happened.finals[rid].status == "timeout"
    [decision] = story["decision"]
    assert decision.startswith("timeout: no model at ")
    assert story["why"] == ["no valid answer by deadline: primary: no answer by deadline; "
                            "canary: no answer by deadline"]
    assert story["scored"][0].startswith("status timeout: no valid answer by deadline")


def test_rejected_input_and_its_dead_letter(happened: Happened) -> None:
    rid = happened.ids["rejected"]
    code, out, err = inspect(happened, rid)
    assert code == 0, out + err
    story = lines(out)
    result = happened.finals[rid]
    assert result.status == "rejected" and result.reason
    assert story["dead letter"] == [result.reason]
    assert story["decision"][0].startswith("rejected: no model at ")
    assert story["why"] == [f"the input was rejected: {result.reason}"]
    assert story["scored"][0].startswith(f"status rejected: {result.reason} (no score)")


def test_progressive_shows_its_provisional_result_before_the_final_one(
        happened: Happened) -> None:
    rid = happened.ids["progressive"]
    code, out, err = inspect(happened, rid)
    assert code == 0, out + err
    story = lines(out)
    early, final = happened.provisional[rid], happened.finals[rid]
    [provisional] = story["provisional"]
    assert provisional.startswith(f"status fallback, model canary, score {four(early.score)}")
    assert re.search(rf"; appended {ISO} at scored\[\d\]@\d+, \+[\d.]+ ms$", provisional)
    assert story["scored"][0].startswith(f"status ok, model primary, score {four(final.score)}")
    assert ", progressive" in story["input"][0]
    labels = [line.strip().split(" ")[0] for line in out.splitlines()[1:]]
    assert labels.index("provisional") < labels.index("decision") < labels.index("scored")


def test_gateway_call_shows_each_row_by_the_callers_id_and_by_its_rendezvous_id(
        happened: Happened) -> None:
    for asked in (happened.gateway_id.rsplit(".", 1)[0], happened.gateway_id):
        code, out, _ = inspect(happened, asked, "--format", "json")
        assert code == 0, out
        found = json.loads(out)
        assert [s["id"] for s in found["requests"]] == happened.gateway_rows
        for story in found["requests"]:
            result = happened.finals[story["id"]]
            assert story["scored"]["status"] == result.status == "ok"
            assert story["scored"]["score"] == result.score
            assert story["reply"]["state"] == "held"
            assert re.fullmatch(r"t\w+\.reply\.gateway\.[0-9a-f]{32}", story["input"]["reply_to"])
    code, out, _ = inspect(happened, happened.gateway_rows[1])
    assert code == 0 and out.splitlines()[0] == f"request {happened.gateway_rows[1]}"
    assert out.count("\nrequest ") == 0  # one row asked for, one story


def test_an_id_never_sent_is_not_found_with_where_and_when(happened: Happened) -> None:
    code, out, err = inspect(happened, f"never-{uuid.uuid4().hex}")
    assert code == 1 and out == ""
    assert re.fullmatch(r"'never-[0-9a-f]+' not found in the topics input, deadletter, scores, "
                        r"scored, decisions, feedback, control \(prefix 't\w+\.'\), searched "
                        rf"{ISO} \.\. {ISO}\n", err), err
    code, _, err = inspect(happened, happened.ids["ok"], "--since", "2h", "--until", "90m")
    assert code == 1 and "not found" in err  # it was sent in the last minutes, not then


def test_the_archive_tells_the_same_decision(happened: Happened) -> None:
    rid = happened.ids["fallback"]
    span = window(None, None)
    give_up = time.monotonic() + 60
    while {r.topic for r in search_archive(happened.archive, Selector(ids=(rid,)), span)} \
            != {"input", "decisions"}:
        assert time.monotonic() < give_up, "the decoy did not archive the request"
        time.sleep(0.5)
    code, archived, _ = inspect(happened, rid, "--archive", str(happened.archive))
    assert code == 0, archived
    _, from_topics, _ = inspect(happened, rid)
    story, topics = lines(archived), lines(from_topics)
    assert re.fullmatch(rf"{ISO} at input\[\d\]@\d+ \(archive\), .*, archived at {ISO}",
                        story["input"][0])
    assert story["input"][0].split(" (archive)")[0] == topics["input"][0].split(" (kafka)")[0]
    assert story["decision"] == topics["decision"]
    assert story["policy"] == topics["policy"]
    # the archive has no scores topic: the primary's late answer is not in it
    result = happened.finals[rid]
    assert story["why"] == [f"primary: no answer by deadline; canary's {four(result.raw_score)} "
                            "mapped onto primary's scale by reference:canary/1->primary/1 (the "
                            "mapped score is in the scored record, not read)"]
    assert story["scored"] == ["none found"]
    assert story["not read"][0].startswith("deadletter, scores, scored, feedback: not in the "
                                           "archive")
    as_json = json.loads(inspect(happened, rid, "--archive", str(happened.archive),
                                 "--format", "json")[1])
    assert as_json["requests"][0]["decision"]["quantiles"] == "reference:canary/1->primary/1"
    assert as_json["requests"][0]["input"]["redactions"] == [
        "none seen (hashed fields show as hmac-sha256:...; dropped ones leave no trace)"]
