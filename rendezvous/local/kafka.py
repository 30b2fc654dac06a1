"""A real single-node Apache Kafka broker (KRaft) from Maven Central jars."""

from __future__ import annotations

import base64
import logging
import os
import shutil
import signal
import subprocess
import time
import uuid
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rendezvous.local.errors import LocalStackError
from rendezvous.local.processes import alive, free_port, require, spawn, stop, wait_until

if TYPE_CHECKING:
    from rendezvous.local.security import Secure

JAVA_FIX = "install a Java 17+ runtime (e.g. `apt-get install openjdk-17-jre-headless`)"
MVN_FIX = "install Maven to fetch the Kafka jars once (e.g. `apt-get install maven`)"

# Single node: internal topics cannot be replicated, and few partitions make
# the first consumer group and the first transaction quick to set up.
BROKER_CONFIG = {
    "process.roles": "broker,controller",
    "node.id": "1",
    "controller.listener.names": "CONTROLLER",
    "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
    "inter.broker.listener.name": "PLAINTEXT",
    "auto.create.topics.enable": "false",
    "offsets.topic.replication.factor": "1",
    "offsets.topic.num.partitions": "4",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
    "transaction.state.log.num.partitions": "4",
    "share.coordinator.state.topic.replication.factor": "1",
    "group.initial.rebalance.delay.ms": "0",
}

LOG4J2 = """\
rootLogger.level=INFO
rootLogger.appenderRef.file.ref=file
appender.file.type=File
appender.file.name=file
appender.file.fileName={log}
appender.file.layout.type=PatternLayout
appender.file.layout.pattern=[%d] %p %m (%c)%n
logger.kafka.name=kafka
logger.kafka.level=WARN
logger.apache.name=org.apache.kafka
logger.apache.level=WARN
"""


def kafka_version() -> str:
    pom = resources.files("rendezvous.local").joinpath("pom.xml").read_text()
    return pom.split("<kafka.version>", 1)[1].split("<", 1)[0]


def ensure_jars(cache_dir: Path) -> Path:
    """The directory of the broker's jars, fetched with Maven only the first time."""
    libs = cache_dir / f"kafka-{kafka_version()}" / "libs"
    done = libs.parent / ".complete"
    if done.exists():
        return libs
    mvn = require("mvn", MVN_FIX)
    if libs.exists():
        shutil.rmtree(libs)  # a fetch that did not complete
    with resources.as_file(resources.files("rendezvous.local").joinpath("pom.xml")) as pom:
        result = subprocess.run(
            [mvn, "-q", "-B", "-f", str(pom), "dependency:copy-dependencies",
             f"-DoutputDirectory={libs}"],
            capture_output=True,
            text=True,
        )
    if result.returncode != 0 or not any(libs.glob("kafka_2.13-*.jar")):
        raise LocalStackError(
            "fetching the Kafka jars from Maven Central failed:\n"
            + (result.stdout + result.stderr)[-2000:]
        )
    done.touch()
    return libs


def _java_command(java: str, libs: Path, heap: str, log4j: Path, gc: str) -> list[str]:
    return [java, f"-Xmx{heap}", f"-Xms{heap}", *gc.split(), "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={log4j}", "-cp", f"{libs}/*"]


def threads_config(network: int, io: int) -> dict[str, str]:
    """A broker's request threads: ``network`` read and write sockets, ``io`` handle the
    requests (the ``[local]`` ``network_threads`` and ``io_threads`` settings)."""
    return {"num.network.threads": str(network), "num.io.threads": str(io)}


def start_kafka(run_dir: Path, cache_dir: Path, heap: str, gc: str, *,
                threads: dict[str, str], timeout_s: float = 90,
                secure: Secure | None = None) -> tuple[int, str]:
    """Format storage and start the broker with ``threads`` (:func:`threads_config`);
    returns (pid, bootstrap) once it answers.

    With ``secure`` (:mod:`rendezvous.local.security`) its only client listener is
    SASL_SSL, with ACLs, and the admin's SCRAM credential is added at format."""
    port, controller = free_port(), free_port()
    bootstrap = f"127.0.0.1:{port}"
    config = {**BROKER_CONFIG, **threads}
    config.update({
        "listeners": f"PLAINTEXT://{bootstrap},CONTROLLER://127.0.0.1:{controller}",
        "advertised.listeners": f"PLAINTEXT://{bootstrap}",
        "controller.quorum.bootstrap.servers": f"127.0.0.1:{controller}",
    })
    probe: dict[str, Any] = {}
    if secure is not None:
        from rendezvous.local.security import broker_config

        config.update(broker_config(secure, bootstrap, f"127.0.0.1:{controller}"))
        probe = secure.admin_config()
    command = _prepare(run_dir, cache_dir, heap, gc, config, _cluster_id(), standalone=True,
                       secure=secure)
    log = run_dir / "kafka.log"
    pid = spawn([*command, "kafka.Kafka", str(run_dir / "server.properties")], log, cwd=run_dir)
    wait_until(lambda: kafka_answers(bootstrap, **probe), timeout_s, "Kafka broker", pid, log)
    return pid, bootstrap


def broker_dir(run_dir: Path, node: int) -> Path:
    """Where broker ``node`` (1, 2, ...) of a local cluster keeps its config, data and logs."""
    return run_dir / f"broker-{node}"


def start_cluster(run_dir: Path, cache_dir: Path, heap: str, gc: str, brokers: int, *,
                  threads: dict[str, str], timeout_s: float = 120) -> tuple[list[int], str]:
    """Format and start ``brokers`` KRaft nodes (each broker and controller, a static quorum
    of all of them), replicated: internal topics and new topics get replication factor
    ``min(3, brokers)`` and ``min.insync.replicas`` one less (at least 1). Returns (pids,
    bootstrap servers) once every broker is registered."""
    ports = [(free_port(), free_port()) for _ in range(brokers)]
    voters = ",".join(f"{n}@127.0.0.1:{c}" for n, (_p, c) in enumerate(ports, start=1))
    replicas = str(min(3, brokers))
    in_sync = str(max(1, min(3, brokers) - 1))
    cluster_id = _cluster_id()
    started: list[tuple[int, Path]] = []
    try:
        for node, (port, controller) in enumerate(ports, start=1):
            config = {**BROKER_CONFIG, **threads}
            config.update({
                "node.id": str(node),
                "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}",
                "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
                "controller.quorum.voters": voters,
                "offsets.topic.replication.factor": replicas,
                "transaction.state.log.replication.factor": replicas,
                "transaction.state.log.min.isr": in_sync,
                "share.coordinator.state.topic.replication.factor": replicas,
                "default.replication.factor": replicas,
                "min.insync.replicas": in_sync,
                # A killed broker keeps leading its partitions (group coordinators too) until
                # the controller fences it: 9 s by default, close to the clients' 10 s session
                # timeout, so consumers' sessions expired (and static members got fenced).
                "broker.session.timeout.ms": "3000",
                "broker.heartbeat.interval.ms": "500",
            })
            home = broker_dir(run_dir, node)
            command = _prepare(home, cache_dir, heap, gc, config, cluster_id, standalone=False)
            pid = spawn([*command, "kafka.Kafka", str(home / "server.properties")],
                        home / "kafka.log", cwd=home)
            started.append((pid, home / "kafka.log"))
        bootstrap = ",".join(f"127.0.0.1:{port}" for port, _c in ports)
        pid, log = started[0]
        wait_until(lambda: kafka_answers(bootstrap, brokers=brokers), timeout_s,
                   f"Kafka cluster of {brokers} brokers", pid, log)
    except BaseException:
        for pid, _log in started:
            stop(pid)
        raise
    return [pid for pid, _log in started], bootstrap


def _prepare(run_dir: Path, cache_dir: Path, heap: str, gc: str, config: dict[str, str],
             cluster_id: str, standalone: bool, secure: Secure | None = None) -> list[str]:
    """Write one node's ``server.properties`` and ``log4j2.properties`` into ``run_dir`` and
    format its (fresh) storage; returns the java command line, up to the main class."""
    java = require("java", JAVA_FIX)
    libs = ensure_jars(cache_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    data = run_dir / "kafka-data"
    shutil.rmtree(data, ignore_errors=True)
    config = {**config, "log.dirs": str(data)}
    props = run_dir / "server.properties"
    if secure is not None:  # it holds the admin's password: this user only, from the start
        props.unlink(missing_ok=True)
        props.touch(mode=0o600)
    props.write_text("".join(f"{k}={v}\n" for k, v in config.items()))
    log4j = run_dir / "log4j2.properties"
    log4j.write_text(LOG4J2.format(log=run_dir / "kafka-server.log"))
    command = _java_command(java, libs, heap, log4j, gc)
    # StorageTool calls System.exit, so it runs in a JVM of its own. A static quorum
    # (controller.quorum.voters) is formatted without --standalone.
    format_args = ["kafka.tools.StorageTool", "format", *(["--standalone"] if standalone else []),
                   "-t", cluster_id, "-c", str(props)]
    if secure is not None:
        from rendezvous.local.security import format_argfile

        format_args = [f"@{format_argfile(secure, run_dir, format_args)}"]
    try:
        fmt = subprocess.run([*command, *format_args], capture_output=True, text=True)
    finally:
        (run_dir / "format.args").unlink(missing_ok=True)
    if fmt.returncode != 0:
        raise LocalStackError(f"formatting Kafka storage failed:\n{fmt.stdout}{fmt.stderr}")
    return command


def _cluster_id() -> str:
    """A random Kafka cluster id (base64 of a UUID), never starting with '-': the storage
    tool would take that for an option (it failed 1 start in 64 before)."""
    while True:
        found = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not found.startswith("-"):
            return found


def kafka_answers(bootstrap: str, timeout_s: float = 1.0, brokers: int = 1,
                  **config: Any) -> bool:
    """Whether an AdminClient (with ``config``: credentials) gets metadata with at least
    ``brokers`` brokers."""
    from confluent_kafka.admin import AdminClient

    conf: dict[str, Any] = {"bootstrap.servers": bootstrap, "log_level": 0,
                            "logger": _quiet_logger(), **config}
    admin = AdminClient(conf)
    try:
        return len(admin.list_topics(timeout=timeout_s).brokers) >= brokers
    except Exception:  # KafkaException while the broker is still starting
        return False


def _quiet_logger() -> logging.Logger:
    logger = logging.getLogger("rendezvous.local.probe")
    logger.addHandler(logging.NullHandler())
    logger.propagate = False
    return logger


def restart_kafka(run_dir: Path, cache_dir: Path, heap: str, gc: str, pid: int, *,
                  kill: bool = False,
                  timeout_s: float = 90) -> tuple[int, str]:
    """Stop the broker ``pid`` and start it again on the same ports and data; (new pid, bootstrap).

    ``kill`` stops it with SIGKILL (a crash) instead of SIGTERM (a clean shutdown).
    The storage is not formatted again: the broker comes back with its topics,
    committed offsets and transactions, from ``run_dir``'s ``server.properties`` and
    ``log4j2.properties`` written by
    :func:`start_kafka` (or :func:`start_cluster`, in :func:`broker_dir`).
    """
    props, log4j = run_dir / "server.properties", run_dir / "log4j2.properties"
    if not props.exists() or not log4j.exists():
        raise LocalStackError(f"no broker configuration in {run_dir}: start it first")
    config = dict(line.split("=", 1) for line in props.read_text().splitlines() if "=" in line)
    bootstrap = config["advertised.listeners"].split("://", 1)[1]
    command = _java_command(require("java", JAVA_FIX), ensure_jars(cache_dir), heap, log4j, gc)
    if kill:
        kill9(pid)
    else:
        stop(pid, grace_s=60)  # a clean shutdown writes its checkpoints; SIGKILL only if stuck
    log = run_dir / "kafka.log"
    new_pid = spawn([*command, "kafka.Kafka", str(props)], log, cwd=run_dir)
    from rendezvous.local.security import load

    secure = load(run_dir / "security")  # a secure broker answers its admin only
    probe = secure.admin_config() if secure else {}
    wait_until(lambda: kafka_answers(bootstrap, **probe), timeout_s, "Kafka broker", new_pid,
               log)
    return new_pid, bootstrap


def kill9(pid: int, timeout_s: float = 10.0) -> None:
    """SIGKILL the broker's process group (it was started in a session of its own)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while alive(pid):
        if time.monotonic() > deadline:
            raise LocalStackError(f"Kafka broker {pid} did not die after SIGKILL")
        time.sleep(0.02)
