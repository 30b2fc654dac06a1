"""A result without a score (``timeout``, ``rejected``) is said in words by every printer:
the demo's gateway line and summary, ``up``'s warm-up, ``rendezvous status`` (issue 37:
``call_once`` formatted a JSON ``null`` score with ``:.4f`` and died)."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from rendezvous.demo import up
from rendezvous.demo.gateway_call import NO_LABEL, GatewayAnswer, call_once, describe_answer
from rendezvous.demo.summary import Summary, render
from rendezvous.demo.wording import describe_result
from rendezvous.demo.workload import LoadResult
from rendezvous.messages import Scored
from rendezvous.monitor.status import render as render_status
from rendezvous.monitor.status import summarise
from rendezvous.settings import Settings

TIMEOUT_WORDS = "status timeout: no model answered in time (no score)"


def gateway_answer(status: str, score: float | None, model: str = "",
                   gateway_ms: float = 61.3) -> dict[str, Any]:
    """The gateway's JSON answer of one row, as it sends it (null score: no score)."""
    return {"model_name": "rendezvous", "model_version": "1", "id": "r1",
            "parameters": {"deadline_ms": 50.0, "gateway_ms": gateway_ms,
                           "timeouts_at_gateway": int(status == "timeout")},
            "outputs": [{"name": "score", "datatype": "FP32", "shape": [1], "data": [score]},
                        {"name": "label", "datatype": "INT64", "shape": [1],
                         "data": [NO_LABEL]},
                        {"name": "status", "datatype": "BYTES", "shape": [1], "data": [status]},
                        {"name": "model", "datatype": "BYTES", "shape": [1], "data": [model]}]}


@pytest.mark.parametrize(("args", "words"), [
    (("timeout", None, None), TIMEOUT_WORDS),
    (("timeout", float("nan"), ""), TIMEOUT_WORDS),
    (("rejected", None, None), "status rejected: the pipeline rejected the input (no score)"),
    (("ok", 0.97312, "primary"), "status ok, model primary, score 0.9731"),
    (("fallback", 0.1, "canary"), "status fallback, model canary, score 0.1000"),
    (("ok", "malignant", "primary"), "status ok, model primary, score malignant"),
    (("ok", None, "primary", "benign"), "status ok, model primary, no score, label benign"),
    ((None,), "status none: no result (no score)"),
])
def test_describe_result_says_every_status_in_words(args: tuple[Any, ...], words: str) -> None:
    assert describe_result(*args) == words


def test_a_reason_replaces_the_standard_words() -> None:
    assert (describe_result("rejected", reason="feature 3 is NaN")
            == "status rejected: feature 3 is NaN (no score)")


def test_no_label_is_the_gateways() -> None:
    from rendezvous.gateway.codec import NO_LABEL as CODEC_NO_LABEL

    assert NO_LABEL == CODEC_NO_LABEL


def test_describe_answer_of_a_timeout_row_has_no_score() -> None:
    answer = describe_answer(gateway_answer("timeout", None), took_ms=62.0)
    assert answer.line == f"HTTP 200 in 62.0 ms: {TIMEOUT_WORDS}"
    assert answer.status == "timeout" and not answer.in_time(50.0)
    ok = describe_answer(gateway_answer("ok", 0.25, "primary", gateway_ms=12.0), took_ms=13.0)
    assert ok.line == "HTTP 200 in 13.0 ms: status ok, model primary, score 0.2500"
    assert ok.in_time(50.0) and not ok.in_time(10.0)


@pytest.fixture
def gateway_url() -> Iterator[str]:
    """A stand-in gateway on a free port that answers every call with a timeout row."""
    body = json.dumps(gateway_answer("timeout", None)).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (the http.server API)
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_call_once_of_a_timeout_row_says_so(gateway_url: str) -> None:
    line = call_once(Settings(), gateway_url)
    assert line.startswith("HTTP 200 in ") and line.endswith(TIMEOUT_WORDS), line


def test_summary_with_timeout_rows_and_a_timeout_gateway_call(gateway_url: str) -> None:
    results = {"a": Scored("a", "timeout", latency_ms=60.0),
               "b": Scored("b", "rejected", reason="bad input"),
               "c": Scored("c", "ok", 0.5, model="primary", latency_ms=12.0)}
    load = LoadResult(3, 0, 1.0, results, {"a": 61_000, "b": 2_000, "c": 13_000}, 0, [])
    summary = Summary(3, 200.0, 50.0, load, gateway=("curl ...", call_once(Settings(),
                                                                           gateway_url)))
    text = render(summary)
    assert f"ms: {TIMEOUT_WORDS}" in text, text
    assert "by status" in text and "timeout 1" in text and "(none) 2" in text


def test_up_warm_up_says_plainly_when_the_gateway_never_answers_in_time() -> None:
    said: list[str] = []
    calls = []

    def call() -> GatewayAnswer:
        calls.append(1)
        return describe_answer(gateway_answer("timeout", None), took_ms=62.0)

    answer = up.warm_gateway(call, said.append, tries=3, pause_s=0.0)
    assert answer.status == "timeout" and len(calls) == 3
    assert len(said) == 1 and said[0].startswith("warm-up: the gateway did not answer in time "
                                                 "in 3 calls"), said
    assert TIMEOUT_WORDS in said[0] and "Traceback" not in said[0]


def test_up_warm_up_calls_again_until_answered_in_time() -> None:
    said: list[str] = []
    answers = iter([describe_answer(gateway_answer("timeout", None), 62.0),
                    describe_answer(gateway_answer("ok", 0.5, "primary", 8.0), 9.0),
                    describe_answer(gateway_answer("timeout", None), 62.0)])
    answer = up.warm_gateway(lambda: next(answers), said.append, tries=5, pause_s=0.0)
    assert answer.status == "ok"
    assert said == ["warm-up: the gateway answered in time after 2 calls (HTTP 200 in 9.0 ms: "
                    "status ok, model primary, score 0.5000)"]


def test_up_warm_up_without_any_answer_is_a_line_too() -> None:
    said: list[str] = []
    answer = up.warm_gateway(lambda: GatewayAnswer("no answer: connection refused"),
                             said.append, tries=2, pause_s=0.0)
    assert answer.status is None
    assert "(last: no answer: connection refused)" in said[0]


GATEWAY_ONLY_TIMEOUTS = """\
# TYPE rendezvous_gateway_rows_total counter
rendezvous_gateway_rows_total{status="timeout"} 3.0
# TYPE rendezvous_gateway_requests_total counter
rendezvous_gateway_requests_total{code="200"} 3.0
# TYPE rendezvous_gateway_pending_rows gauge
rendezvous_gateway_pending_rows 0.0
"""

SERVE_TIMEOUTS_AND_REJECTED = """\
# TYPE rendezvous_serve_results_total counter
rendezvous_serve_results_total{status="timeout"} 4.0
rendezvous_serve_results_total{status="rejected"} 2.0
"""


def test_status_of_components_whose_results_all_lack_a_score() -> None:
    table = render_status([summarise("gateway", GATEWAY_ONLY_TIMEOUTS),
                           summarise("serve", SERVE_TIMEOUTS_AND_REJECTED)])
    gateway, serve = table.splitlines()[1:]
    assert gateway.split() == ["gateway", "gateway", "3", "0", "0", "-"], table
    assert serve.split() == ["serve", "serve", "6", "2", "-", "-"], table


def test_up_warm_up_line_counts_results_answered_in_time_not_just_results() -> None:
    results = {"a": Scored("a", "timeout", latency_ms=515.0),
               "b": Scored("b", "ok", 0.5, model="primary"),
               "c": Scored("c", "fallback", 0.4, model="canary")}
    load = LoadResult(4, 0, 1.0, results, {"a": 1_200_000, "b": 20_000, "c": 70_000}, 0, ["d"])
    assert up.warm_up_line(load, 50.0) == ("warm-up: 3 of 4 requests answered (timeout 1, "
                                           "ok 1, fallback 1); 1 answered by a model within "
                                           "50 ms")
