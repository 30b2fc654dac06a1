"""A request's story as text lines (for people) or JSON (for machines)."""

from __future__ import annotations

import msgspec

from rendezvous.demo.wording import describe_value
from rendezvous.inspect.parts import AnswerPart, Place, PolicyPart, Story

LABEL_WIDTH = 12


def _line(label: str, text: str) -> str:
    return f"  {label:<{LABEL_WIDTH}} {text}"


def _at(place: Place) -> str:
    return f"{place.topic}[{place.partition}]@{place.offset}"


def text(story: Story) -> list[str]:
    """The story, one line per step, in the order things happened."""
    lines = [f"request {story.id}"]
    if story.input is None:
        lines.append(_line("input", "not found (its other records are below)"))
    else:
        i = story.input
        said = [f"{i.place.time or 'no record time'} at {_at(i.place)} ({i.place.source})",
                f"{i.size_bytes} bytes",
                f"ts {i.ts}" if i.ts else "no ts (the record time counts)",
                f"deadline {i.deadline_ms:g} ms" if i.deadline_ms is not None
                else "deadline: the policy's"]
        if i.progressive:
            said.append("progressive")
        if i.reply_to:
            said.append(f"reply to {i.reply_to}")
        if i.copies > 1:
            said.append(f"sent {i.copies} times")
        if i.arrival:
            said.append(f"archived at {i.arrival}")
        lines.append(_line("input", ", ".join(said)))
        lines.append(_line("redactions", "; ".join(i.redactions)))
    if story.dead_letter is not None:
        lines.append(_line("dead letter", story.dead_letter))
    if story.policy is not None:
        lines.append(_line("policy", _policy(story.policy)))
    lines += [_line("answer", _answer(a)) for a in story.answers]
    if not story.answers and (story.decision is None or story.decision.status != "rejected"):
        lines.append(_line("answer", "none found"))
    for p in story.provisional:
        lines.append(_line("provisional", f"{p.words}; appended {p.place.time} at "
                                          f"{_at(p.place)}, +{p.latency_ms:g} ms"))
    d = story.decision
    if d is None:
        lines.append(_line("decision", "none found"))
    else:
        chosen = f"{d.chosen} {d.version}" if d.chosen else "no model"
        lines.append(_line("decision", f"{d.status}: {chosen} at {d.decided} "
                                       f"(+{d.after_request_ms:g} ms, due {d.due})"))
        lines.append(_line("why", d.why))
    s = story.scored
    lines.append(_line("scored", "none found" if s is None else
                       f"{s.words}; appended {s.place.time} at {_at(s.place)}, latency "
                       f"{s.latency_ms:g} ms"))
    lines += [_line("feedback", f"{describe_value('label', f.label)}, appended "
                                f"{f.place.time} at {_at(f.place)}") for f in story.feedback]
    if not story.feedback:
        lines.append(_line("feedback", "none found"))
    r = story.reply
    if r is not None:
        held = f", {r.words}" if r.words else ""
        expires = f", expires in {r.ttl_s} s" if r.ttl_s is not None and r.ttl_s >= 0 else ""
        lines.append(_line("reply", f"{r.key}: {r.state}{held}{expires}"))
    if story.missing:
        lines.append(_line("not read", "; ".join(story.missing)))
    return lines


def _policy(p: PolicyPart) -> str:
    rules = ", ".join(f"{m} {_rule(r)}" for m, r in p.rules.items()) or "none"
    when = (f"published {p.published} by {p.by or 'unknown'}" if p.published
            else "serve's default (no policy published before the request)")
    newer = f"; a newer one was published at {p.newer}, after it arrived" if p.newer else ""
    return (f"prefer {' > '.join(p.prefer)}, deadline {p.deadline_ms:g} ms, rules {rules}, "
            f"map scores {'on' if p.map_scores else 'off'}, prefer in time "
            f"{'on' if p.prefer_in_time else 'off'}; {when}{newer}")


def _rule(rule: dict[str, float | None]) -> str:
    return " ".join(f"{k}={v:g}" for k, v in rule.items() if v)


def _answer(a: AnswerPart) -> str:
    said = [describe_value("score", a.score)]
    if a.label is not None:
        said.append(describe_value("label", a.label))
    if a.latency_ms is not None:
        said.append(f"+{a.latency_ms:g} ms")
    if a.worker_ms is not None:
        said.append(f"worker {a.worker_ms:g} ms")
    if a.valid is None and a.reason:
        said.append(f"error: {a.reason}")
    if a.after_decision_ms is not None:
        said.append(f"{a.after_decision_ms:g} ms after the decision")
    elif a.valid is True:
        said.append("valid")
    elif a.valid is False:
        said.append(f"invalid: {a.reason}")
    shadow = " (shadow)" if a.shadow else ""
    return f"{a.model} {a.version}{shadow}: " + ", ".join(said)


def json_text(stories: list[Story], searched: str, window: str) -> str:
    """Every story and what was searched, as one JSON document."""
    return msgspec.json.encode({"searched": searched, "window": window,
                                "requests": stories}).decode()
