"""Open-loop HTTP load with vegeta (github.com/tsenart/vegeta), a Go load generator.

The gateway's benchmark needs a load generator that keeps its schedule at 1,000
requests/s on a 2-core machine it shares with the pipeline; a Python one spends
more CPU per request than the gateway it measures (and fell 183 ms behind at
1,000/s). vegeta sends at a constant rate from goroutines, whatever the answers.

The binary is found on ``PATH`` or under ``<cache_dir>/bin``; else it is built
there once with ``go install`` (Go's module proxy, like the Kafka jars from Maven
Central). :func:`attack` runs one attack and returns every request's timing and
body, so the caller measures latency from each request's *due* time.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import msgspec

MODULE = "github.com/tsenart/vegeta/v12"
VERSION = "v12.13.0"


class Unavailable(RuntimeError):
    """vegeta is not installed and cannot be built here (no Go toolchain)."""


@dataclass(frozen=True)
class Hit:
    """One request of an attack."""

    seq: int
    sent_s: float
    """Wall-clock time the request was sent (seconds since the epoch)."""
    latency_ms: float
    """From sending to the end of the answer."""
    code: int
    """HTTP status; 0 when the request failed (see ``error``)."""
    error: str
    body: bytes


def _go() -> str | None:
    found = shutil.which("go")
    if found:
        return found
    default = Path("/usr/local/go/bin/go")  # where the official Go tarball installs
    return str(default) if default.exists() else None


def ensure(cache_dir: Path, say: Callable[[str], None] = print) -> str:
    """The vegeta binary: on PATH, in ``cache_dir/bin``, or built there with ``go install``."""
    found = shutil.which("vegeta")
    if found:
        return found
    binary = cache_dir / "bin" / "vegeta"
    if binary.exists():
        return str(binary)
    go = _go()
    if go is None:
        raise Unavailable("vegeta is not on PATH and no Go toolchain was found to build it "
                          f"(install Go, or vegeta {VERSION}, and run again)")
    say(f"building vegeta {VERSION} with go install (once; kept in {binary.parent})...")
    binary.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GOBIN": str(binary.parent), "CGO_ENABLED": "0"}
    done = subprocess.run([go, "install", f"{MODULE}@{VERSION}"], env=env,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0 or not binary.exists():
        raise Unavailable(f"go install {MODULE}@{VERSION} failed: {done.stderr.strip()[-500:]}")
    return str(binary)


class _Result(msgspec.Struct):
    seq: int
    timestamp: str
    latency: int
    code: int
    # vegeta writes null for a request that got no answer (a timeout, a reset connection).
    error: str | None = ""
    body: str | None = ""


def _epoch_s(timestamp: str) -> float:
    # RFC 3339 with nanoseconds; Python's parser takes at most microseconds.
    head, dot, rest = timestamp.partition(".")
    if dot:
        digits = "".join(c for c in rest if c.isdigit())
        zone = rest[len(digits):]
        timestamp = f"{head}.{digits[:6]}{zone}"
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def attack(binary: str, url: str, bodies: list[bytes], rate: float, seconds: float,
           connections: int = 256, timeout_s: float = 5.0) -> list[Hit]:
    """POST ``bodies`` (round robin) to ``url`` at ``rate``/s for ``seconds``; every hit."""
    targets = b"\n".join(msgspec.json.encode({
        "method": "POST", "url": url, "body": base64.b64encode(body).decode(),
        "header": {"Content-Type": ["application/json"]}}) for body in bodies) + b"\n"
    with tempfile.TemporaryDirectory(prefix="vegeta-") as tmp:
        target_file, results = Path(tmp) / "targets.json", Path(tmp) / "results.bin"
        target_file.write_bytes(targets)
        subprocess.run([binary, "attack", "-format=json", f"-targets={target_file}",
                        f"-rate={rate:g}/s", f"-duration={seconds:g}s",
                        f"-timeout={timeout_s:g}s", f"-max-connections={connections}",
                        "-http2=false", "-max-body=-1", f"-output={results}"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        encoded = subprocess.run([binary, "encode", "-to=json", str(results)], check=True,
                                 capture_output=True).stdout
    return parse(encoded)


def parse(encoded: bytes) -> list[Hit]:
    """The hits of ``vegeta encode -to=json`` output (one JSON object per line), by seq."""
    decoder = msgspec.json.Decoder(_Result)
    hits = []
    for line in encoded.splitlines():
        if not line.strip():
            continue
        r = decoder.decode(line)
        hits.append(Hit(r.seq, _epoch_s(r.timestamp), r.latency / 1e6, r.code, r.error or "",
                        base64.b64decode(r.body) if r.body else b""))
    hits.sort(key=lambda h: h.seq)
    return hits
