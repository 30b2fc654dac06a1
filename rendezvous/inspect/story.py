"""The records found of a request, put in the order things happened, with the decision's
reason in words."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

import msgspec

from rendezvous.decoy.redaction import HASH_PREFIX, REDACTION_HEADER
from rendezvous.demo.wording import describe_result, describe_value
from rendezvous.inspect.control import Published, in_force
from rendezvous.inspect.parts import (
    AnswerPart,
    DecisionPart,
    FeedbackPart,
    InputPart,
    Place,
    PolicyPart,
    ReplyPart,
    ResultPart,
    Story,
)
from rendezvous.inspect.records import Found
from rendezvous.inspect.window import iso
from rendezvous.messages import (
    DEADLETTER_REASON_HEADER,
    Decision,
    InputEvent,
    Invalid,
    Policy,
    Score,
    Scored,
    Undecodable,
    decode_decision,
    decode_feedback,
    decode_input,
    decode_score,
    decode_scored,
    is_provisional,
    max_score_bytes,
)

ReplyLookup = Callable[[str, str], ReplyPart]
"""``(reply_to, request id)`` -> what Redis holds for it."""


def stories(found: Iterable[Found], history: list[Published], source: str,
            reply: ReplyLookup | None = None, missing: Iterable[str] = ()) -> list[Story]:
    """One story per request id among ``found`` (records of either source), in the order
    their inputs came (requests with no input found last)."""
    by_id: dict[str, list[Found]] = defaultdict(list)
    for record in found:
        by_id[record.request_id].append(record)
    built = [_story(rid, records, history, source, reply, list(missing))
             for rid, records in by_id.items()]
    return sorted(built, key=lambda s: (s.input is None, s.input.place.time if s.input else "",
                                        s.id))


def _place(record: Found, source: str) -> Place:
    return Place(record.topic, record.partition, record.offset,
                 iso(record.timestamp_ms) if record.timestamp_ms is not None else None, source)


def _story(rid: str, records: list[Found], history: list[Published], source: str,
           reply: ReplyLookup | None, missing: list[str]) -> Story:
    of = defaultdict(list)
    for record in sorted(records, key=lambda r: (r.timestamp_ms or 0, r.offset)):
        of[record.topic].append(record)
    inputs = of["input"]
    event = _event(inputs[0]) if inputs else None
    input_part = _input(inputs, event, source) if inputs else None
    decision, decision_record = _decision(of["decisions"])
    finals, provisionals = _results(of["scored"], source)
    arrived = float(inputs[0].timestamp_ms or 0) if inputs else None
    request_ms = (decision.ts if decision is not None
                  else event.ts if event is not None and event.ts is not None else arrived)
    policy = _policy(history, arrived if arrived is not None else
                     decision.decided_ms if decision else None,
                     decision.decided_ms if decision else None)
    scores = [(s, r) for r in of["scores"] if (s := _score(r)) is not None]
    answers = _answers(decision, scores, request_ms)
    decision_part = None
    if decision is not None and decision_record is not None:
        decision_part = DecisionPart(
            decision.status, decision.chosen, decision.version, iso(decision.decided_ms),
            iso(decision.deadline_ms), round(decision.decided_ms - decision.ts, 1),
            why(decision, finals[0][0] if finals else None, answers, policy),
            decision.quantiles, _place(decision_record, source))
    dead = next((r.header(DEADLETTER_REASON_HEADER) for r in of["deadletter"]), None)
    feedback = [FeedbackPart(f.label, _place(r, source)) for r in of["feedback"]
                if (f := _feedback(r)) is not None]
    reply_part = None
    if reply is not None and event is not None and event.reply_to:
        reply_part = reply(event.reply_to, rid)
    return Story(rid, input_part, dead.decode(errors="replace") if dead else None, policy,
                 answers, decision_part, [p for _, p in provisionals],
                 finals[0][1] if finals else None, feedback, reply_part, missing)


def _event(record: Found) -> InputEvent | None:
    event = decode_input(record.value)
    return None if isinstance(event, Invalid) else event


def _input(records: list[Found], event: InputEvent | None, source: str) -> InputPart:
    first = records[0]
    size = len(first.value or b"") + len(first.key or b"")
    redactions = (_redactions(first) if source == "archive"
                  else ["none: Kafka holds the input as sent"])
    return InputPart(
        _place(first, source), size,
        iso(event.ts) if event is not None and event.ts is not None else None,
        event.deadline_ms if event is not None else None,
        bool(event and event.progressive), event.reply_to if event is not None else None,
        redactions, len(records),
        iso(first.arrival_ms) if first.arrival_ms is not None else None)


def _redactions(record: Found) -> list[str]:
    """What the decoy's redaction changed in an archived input, as far as the row shows
    (a dropped field leaves no trace in it)."""
    if record.header(REDACTION_HEADER) is not None:
        return ["value archived empty: it was not a JSON object, so it could not be redacted"]
    said = []
    try:
        body = msgspec.json.decode(record.value or b"{}")
    except msgspec.DecodeError:
        body = None
    said += [f"{path} hashed" for path in _hashed(body)]
    if record.key is None:
        said.append("key dropped")
    elif record.key.startswith(HASH_PREFIX.encode()):
        said.append("key hashed")
    return said or ["none seen (hashed fields show as hmac-sha256:...; dropped ones leave "
                    "no trace)"]


def _hashed(body: Any, path: str = "") -> list[str]:
    if isinstance(body, dict):
        return [p for k, v in body.items() for p in _hashed(v, f"{path}.{k}" if path else k)]
    return [path] if isinstance(body, str) and body.startswith(HASH_PREFIX) else []


def _decision(records: list[Found]) -> tuple[Decision | None, Found | None]:
    for record in records:
        try:
            return decode_decision(record.value), record
        except Undecodable:
            continue
    return None, None


def _results(records: list[Found], source: str
             ) -> tuple[list[tuple[Scored, ResultPart]], list[tuple[Scored, ResultPart]]]:
    finals: list[tuple[Scored, ResultPart]] = []
    provisionals: list[tuple[Scored, ResultPart]] = []
    for record in records:
        try:
            scored = decode_scored(record.value)
        except Undecodable:
            continue
        part = ResultPart(
            scored.status, describe_result(scored.status, scored.score, scored.model,
                                           scored.label, scored.reason),
            scored.model, scored.version, scored.score, scored.raw_score, scored.label,
            round(scored.latency_ms, 1), scored.reason, _place(record, source))
        flagged = is_provisional(record.headers) or scored.provisional
        (provisionals if flagged else finals).append((scored, part))
    return finals, provisionals


def _score(record: Found) -> Score | None:
    try:
        return decode_score(record.value, max_score_bytes(range(1000)))
    except Undecodable:
        return None


def _feedback(record: Found) -> Any:
    try:
        return decode_feedback(record.value)
    except Undecodable:
        return None


def _policy(history: list[Published], arrived_ms: float | None, decided_ms: float | None
            ) -> PolicyPart | None:
    if arrived_ms is None:
        return None
    current, following = in_force(history, arrived_ms)
    policy = current.policy if current is not None else Policy()
    newer = (iso(following.at_ms) if following is not None and decided_ms is not None
             and following.at_ms <= decided_ms else None)
    rules = {m: msgspec.structs.asdict(r) for m, r in policy.rules.items()}
    return PolicyPart(list(policy.prefer), policy.deadline_ms, rules, policy.map_scores,
                      policy.prefer_in_time, iso(current.at_ms) if current else None,
                      current.policy.actor if current else None, newer)


def _answers(decision: Decision | None, scores: list[tuple[Score, Found]],
             request_ms: float | None) -> list[AnswerPart]:
    """Each model's answer: those the decision weighed, then those that came after it."""
    answers = []
    weighed = set()
    for c in decision.candidates if decision is not None else []:
        weighed.add((c.model, c.version, c.shadow))
        answers.append(AnswerPart(c.model, c.version, c.shadow, c.score, c.label,
                                  round(c.latency_ms, 1), c.valid, c.reason,
                                  worker_ms=None if c.service_ms is None
                                  else round(c.service_ms, 1)))
    for score, record in scores:
        if (score.model, score.version, score.shadow) in weighed:
            continue
        weighed.add((score.model, score.version, score.shadow))
        at = float(record.timestamp_ms or score.scored_ms)
        late = (round(at - decision.decided_ms, 1) if decision is not None
                and at > decision.decided_ms else None)
        answers.append(AnswerPart(
            score.model, score.version, score.shadow, score.score, score.label,
            round(at - request_ms, 1) if request_ms is not None else None,
            None if decision is not None else score.status == "ok",
            score.reason if score.status != "ok" else None, late,
            round(score.scored_ms - score.received_ms, 1) if score.scored_ms else None))
    return answers


def why(decision: Decision, scored: Scored | None, answers: list[AnswerPart],
        policy: PolicyPart | None) -> str:
    """The decision's reason in words: why each more preferred model was passed over (a
    late answer says how late), and how a fallback's score was mapped."""
    if decision.status == "rejected":
        return f"the input was rejected: {scored.reason if scored else 'see the dead letter'}"
    prefer = policy.prefer if policy is not None else []
    chosen = decision.chosen
    passed = prefer[:prefer.index(chosen)] if chosen in prefer else prefer
    reason = scored.reason or "" if scored is not None else ""
    head = ""
    if decision.status == "timeout" and reason.endswith(")") and " (" in reason:
        head, reason = reason[:-1].split(" (", 1)  # "no valid answer by deadline (...)"
    said = _passed_over(decision)  # what the decision record says (the archive has no more)
    for part in reason.split("; "):
        model, colon, what = part.partition(": ")
        if colon:
            said[model] = what
    late = {a.model: a for a in answers if not a.shadow and a.after_decision_ms is not None}
    parts = []
    if decision.status == "ok":
        parts.append(f"{chosen}, the most preferred model, answered in time")
    for model in passed if decision.status != "ok" else []:
        if model in late:
            parts.append(f"{model} answered {late[model].after_decision_ms:.0f} ms after "
                         "the decision")
        elif model in said:
            parts.append(f"{model}: {said[model]}")
        else:
            parts.append(f"{model}: no answer by deadline")
    if decision.status == "fallback":
        parts.append(_mapping(decision, scored, prefer))
    if head:
        return f"{head}: " + "; ".join(parts)
    return "; ".join(parts)


def _passed_over(decision: Decision) -> dict[str, str]:
    """Why each model that answered got no say, from the decision's candidates alone: its
    invalid answer's reason (a model with no candidate had not answered by the deadline)."""
    return {c.model: c.reason or "invalid answer" for c in decision.candidates
            if not c.shadow and not c.valid}


def _mapping(decision: Decision, scored: Scored | None, prefer: list[str]) -> str:
    """How a fallback's score was put on the preferred model's scale. Without the scored
    record (the archive keeps decisions), the chosen answer's own score is the decision's
    and the mapped one is not known."""
    chosen, label = decision.chosen, decision.quantiles
    own = next((c.score for c in decision.candidates
                if c.model == chosen and c.version == decision.version and not c.shadow), None)
    raw_score = scored.raw_score if scored is not None else own
    raw = describe_value("score", raw_score).removeprefix("score ")
    if label is None:
        return f"{chosen}'s {raw} kept on its own scale (no score mapping)"
    if label.startswith("unmapped:"):
        return f"{chosen}'s {raw} kept on its own scale ({label.removeprefix('unmapped:')})"
    target = label.rsplit("->", 1)[-1].split("/", 1)[0] or (prefer[0] if prefer else "?")
    if scored is None:
        return (f"{chosen}'s {raw} mapped onto {target}'s scale by {label} (the mapped score "
                "is in the scored record, not read)")
    mapped = describe_value("score", scored.score).removeprefix("score ")
    return f"{chosen}'s {raw} mapped to {mapped} on {target}'s scale by {label}"
