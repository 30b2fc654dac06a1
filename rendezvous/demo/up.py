"""``rendezvous up``: the whole pipeline for real clients, without load, until Ctrl-C.

Kafka and Redis are reused or started and left running afterwards (``rendezvous
local down`` stops a local pair); the components it starts are stopped by pid.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from rendezvous.demo.components import Components, how_to_use, new_run, printer, watch
from rendezvous.demo.data import ReferenceRows
from rendezvous.demo.gateway_call import GatewayAnswer, call_gateway
from rendezvous.demo.run import DemoOptions, warm_up
from rendezvous.demo.signals import Interrupted, deferred, interruptible
from rendezvous.demo.stack import lease
from rendezvous.demo.workload import LoadResult, warm_producer
from rendezvous.local.pipeline import PipelineSpec, gateway_address
from rendezvous.model import load_manifest, resolve_model
from rendezvous.settings import Settings
from rendezvous.transport.topics import apply_topics

WARM_UP_S = 3.0
"""Seconds of requests through Kafka before ``ready`` (then calls through the gateway, see
:func:`warm_gateway`): a fresh broker and fresh components answer their first requests
past a 50 ms deadline."""

GATEWAY_DEADLINE_MS = 50.0
"""The deadline of the warm-up's calls through the gateway (the curl line's)."""

GATEWAY_TRIES = 100
GATEWAY_BUDGET_S = 10.0
"""The warm-up calls the gateway until a call is answered in time, at most this many
times and for about this long. Right after the Kafka warm-up the first calls can miss the
deadline: on a replicated cluster the warm-up's backlog takes seconds to drain, and serve
replies to the gateway only once a result is acknowledged by every in-sync replica."""

READY_LINE = "rendezvous up: ready"
"""Printed on stdout once every component is ready (scripts and tests wait for it)."""

LOCAL_NOTE = "the local Kafka and Redis keep running (`rendezvous local down` stops them)"


def run_up(settings: Settings, archive: Path | None = None, out: TextIO | None = None,
           err: TextIO | None = None) -> int:
    """Start the components, print how to reach them, wait for Ctrl-C/SIGTERM, stop them.

    Returns 0 after the signal: that is how it is meant to end.
    """
    out, say = out or sys.stdout, printer(err or sys.stderr)
    try:
        with interruptible():
            _up(settings, archive, out, say)
    except Interrupted as exc:
        say(f"{exc}: every component is stopped")
    return 0


def _up(settings: Settings, archive: Path | None, out: TextIO,
        say: Callable[[str], None]) -> None:
    _, run_dir = new_run(settings, "up")
    say(f"run directory {run_dir}")
    with lease(settings, say, stop_started=False,
               guard=lambda reraise: deferred(say, reraise)) as stack:
        up_settings = stack.settings(settings)
        created = apply_topics(up_settings)
        say(f"topics {up_settings.topic_prefix}* from {up_settings.topics_file}: "
            f"{len(created)} created")
        spec = PipelineSpec(archive=archive or run_dir / "archive", gateway=True)
        components = Components(up_settings, run_dir, spec, say)
        # Rows like the served model's own data: any model is warmed and shown with them.
        source = ReferenceRows(load_manifest(resolve_model(up_settings.models_dir,
                                                           up_settings.gateway.features_from)))
        try:
            say("starting the pipeline:")
            components.start()
            _warm_up(up_settings, components, source, say)
            print("\n".join(how_to_use(up_settings, components, source.example())), file=out)
            note = "" if stack.origin == "environment" else f"; {LOCAL_NOTE}"
            print(f"{READY_LINE}: Ctrl-C stops the components{note}", file=out, flush=True)
            watch(components, say)
        finally:
            say("stopping the components...")
            with deferred(say, reraise=False):
                components.stop()
            if stack.origin != "environment":
                say(LOCAL_NOTE)


def _warm_up(settings: Settings, components: Components, source: ReferenceRows,
             say: Callable[[str], None]) -> None:
    """Requests through the pipeline and the gateway whose answers nobody keeps, so that
    the first request of the user's is answered in time."""
    options = DemoOptions(warm_up_s=WARM_UP_S)
    say(warm_up_line(warm_up(settings, options, warm_producer(settings), say, source),
                     options.deadline_ms))
    address = gateway_address(components.supervisor.components["gateway"])
    row = source.example()
    warm_gateway(lambda: call_gateway(settings, address, GATEWAY_DEADLINE_MS, row), say)


def warm_up_line(load: LoadResult, deadline_ms: float) -> str:
    """How the warm-up's requests were answered: a result for each is not yet one in time
    (on a busy replicated cluster every one can be ``timeout``)."""
    results = load.results
    limit_us = deadline_ms * 1000
    in_time = sum(1 for rid, r in results.items() if r.status in ("ok", "fallback")
                  and load.latency_us.get(rid, limit_us + 1) <= limit_us)
    statuses = Counter(r.status for r in results.values())
    by_status = ", ".join(f"{status} {n:,}" for status, n in statuses.most_common()) or "none"
    return (f"warm-up: {len(results):,} of {load.sent:,} requests answered ({by_status}); "
            f"{in_time:,} answered by a model within {deadline_ms:g} ms")


def warm_gateway(call: Callable[[], GatewayAnswer], say: Callable[[str], None],
                 deadline_ms: float = GATEWAY_DEADLINE_MS, tries: int = GATEWAY_TRIES,
                 budget_s: float = GATEWAY_BUDGET_S, pause_s: float = 0.1) -> GatewayAnswer:
    """``call`` the gateway until a call is answered ``ok`` or ``fallback`` within
    ``deadline_ms`` (at most ``tries`` calls, for about ``budget_s``); says how it went in
    one line. Not being answered in time is said, not raised: ``up`` goes on."""
    started = time.monotonic()
    answer, n = call(), 1
    while not answer.in_time(deadline_ms) and n < tries:
        if time.monotonic() - started + pause_s > budget_s:
            break
        time.sleep(pause_s)
        answer, n = call(), n + 1
    calls = f"{n} call{'s' if n > 1 else ''}"
    if answer.in_time(deadline_ms):
        say(f"warm-up: the gateway answered in time after {calls} ({answer.line})")
    else:
        say(f"warm-up: the gateway did not answer in time in {calls} over "
            f"{time.monotonic() - started:.1f} s (last: {answer.line}); the first "
            f"requests may be answered `timeout` too")
    return answer
