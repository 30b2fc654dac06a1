"""``rendezvous serve`` on Kafka: exactly one result per request, in time.

This module only wires: a :class:`~.kafka.KafkaSource`, the sink of the chosen
mode, and the loop between them (:mod:`.loop`). How "exactly one" holds across
kill -9, restarts and rebalances:

* one consumer group reads ``input`` and ``scores`` with the ``range``
  assignor, which gives one member the same partition numbers of both
  co-partitioned topics;
* by default (``dedup``) results, decisions and dead letters are produced the
  moment they are decided by the idempotent producer (:mod:`.publisher`), and
  input offsets are committed only once every result before them is
  acknowledged; with ``--exactly-once transactions`` they commit in a Kafka
  transaction with the consumed offsets instead (:mod:`.committer`: zombie
  fencing, at the price of a commit round trip on every result);
* an input partition is committed only up to its lowest *unanswered* request,
  so a restart re-reads every request still waiting, and
* on assignment, the ids already answered on the same-numbered ``scored``
  partition are read back (:mod:`.recovery`) and never answered again.

In time: a request is decided by its deadline less a *delivery margin*, the
time a result takes to reach a reader, measured on this process's own output
path (produce to acknowledgement, p99 over the last results) and bounded by
``margin_min_ms``/``margin_max_ms`` (:mod:`.margin`). Workers shed by the same rule.

Scores are committed as consumed: a request re-read after a crash is past its
deadline anyway and is decided at once with what has arrived again.

A stable ``--instance-id`` is the static group membership (it takes its
partitions back without waiting for the session timeout) and, with
transactions, the transactional id.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from rendezvous.core import Scales
from rendezvous.metrics import serve_metrics
from rendezvous.process import watch_gc
from rendezvous.readiness import announce_ready
from rendezvous.service.committer import CommitFailed, TransactionSink
from rendezvous.service.kafka import KafkaSource, serve_consumer
from rendezvous.service.loop import ServeLoop
from rendezvous.service.ports import Sink
from rendezvous.service.publisher import Publisher
from rendezvous.service.replies import Replies
from rendezvous.settings import Settings
from rendezvous.transport.clients import Stopper, make_producer
from rendezvous.transport.connect import redis_client

if TYPE_CHECKING:  # the model package loads ONNX Runtime: serve needs only the type
    from rendezvous.model.deployment import Deployment

log = logging.getLogger(__name__)


def run(settings: Settings, instance_id: str = "0",
        deployment: Deployment | None = None, scales: Scales | None = None) -> None:
    """Run ``rendezvous serve`` (``settings.serve``) until SIGTERM/SIGINT.

    ``deployment``: inputs whose features do not fit its schema are rejected, scores larger
    than its bound are skipped; ``scales``:
    each model version's quantile function, to put fallbacks on the preferred one's scale.
    """
    stopper = Stopper()
    opts = settings.serve
    group = settings.group("rendezvous")
    consumer = serve_consumer(settings, instance_id)
    replies = Replies(redis_client(settings))
    sink: Sink
    if opts.exactly_once == "transactions":
        producer = make_producer(settings, **{
            "transactional.id": f"{group}-{instance_id}",
            "transaction.timeout.ms": 10000,
            "linger.ms": 0,
            # The coordinator answers CONCURRENT_TRANSACTIONS while the previous
            # commit's markers are written; librdkafka's default 100 ms retry
            # backoff then made a commit ~100 ms, 2 ms made it ~20 (measured).
            "retry.backoff.ms": 2,
            "retry.backoff.max.ms": 20,
        })
        sink = TransactionSink(consumer, producer, replies.deliver, opts.commit_interval_ms,
                               opts.stuck_commit_s)
    else:
        sink = Publisher(consumer, make_producer(settings), replies.deliver,
                         stuck_s=opts.stuck_commit_s)
    source = KafkaSource(settings, consumer)
    loop = ServeLoop(settings, source, sink, deployment=deployment, scales=scales)
    metrics_port = serve_metrics(settings)
    source.on_assigned = lambda: announce_ready(
        "serve", f"partitions={sorted(loop.partitions)} metrics={metrics_port}")
    watch_gc()
    loop.start()
    try:
        while not stopper.stopped:
            loop.step()
    except CommitFailed:
        # Nothing more can be committed: no drain, no consumer close (its revoke
        # callback would wait on the hung commit again); a restart recovers.
        log.error("exiting without draining: a commit failed or hung")
        raise
    loop.close()
    log.info("stopped")
