"""The gateway benchmark's reader of vegeta's results (bench/vegeta.py)."""

from __future__ import annotations

import base64

import pytest

from bench import vegeta

ANSWERED = (b'{"attack":"","seq":1,"code":200,"timestamp":"2026-12-06T10:38:37.225310325Z",'
            b'"latency":2500000,"bytes_out":10,"bytes_in":2,"error":"","body":"'
            + base64.b64encode(b'{"outputs":[]}') + b'","method":"POST","url":"u","headers":{}}')
# As vegeta writes a request that got no answer: error set, body and headers null.
REFUSED = (b'{"attack":"","seq":0,"code":0,"timestamp":"2026-12-06T10:38:36.725897917Z",'
           b'"latency":664259,"bytes_out":0,"bytes_in":0,"error":"Post \\"u\\": connect: '
           b'connection refused","body":null,"method":"POST","url":"u","headers":null}')


def test_a_request_without_an_answer_is_a_hit_with_its_error() -> None:
    hits = vegeta.parse(ANSWERED + b"\n" + REFUSED + b"\n\n")

    assert [h.seq for h in hits] == [0, 1]  # by seq, whatever the file's order
    refused, answered = hits
    assert (refused.code, refused.body) == (0, b"")
    assert refused.error == 'Post "u": connect: connection refused'
    assert refused.latency_ms == pytest.approx(0.664259)
    assert (answered.code, answered.error, answered.body) == (200, "", b'{"outputs":[]}')
    assert answered.latency_ms == pytest.approx(2.5)
    assert answered.sent_s - refused.sent_s == pytest.approx(0.499413, abs=2e-6)
