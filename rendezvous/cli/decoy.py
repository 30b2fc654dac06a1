"""``rendezvous decoy``: record the input and decisions topics into the raw archive."""

from __future__ import annotations

from pathlib import Path

import click

from rendezvous.cli.common import METRICS_PORT_HELP, clear_errors, default, settings
from rendezvous.decoy import run as run_decoy
from rendezvous.settings import DecoySettings

_UNITS = {"": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": 1024**2, "mb": 1024**2,
          "mib": 1024**2, "g": 1024**3, "gb": 1024**3, "gib": 1024**3}


def _size(text: str) -> int:
    """``"64MiB"`` -> 67108864; a plain number is bytes."""
    number = text.strip().lower()
    digits = number.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = number[len(digits):].strip()
    if unit not in _UNITS or not digits.strip():
        raise click.BadParameter(f"{text!r} is not a size like 64MiB, 500k or 1000000")
    return int(float(digits) * _UNITS[unit])


@click.command("decoy")
@click.option("--archive", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Root directory of the Parquet archive (created if missing); required here "
                   "or as RENDEZVOUS_DECOY__ARCHIVE.")
@click.option("--record", "topics", multiple=True,
              help="Logical topic to record; repeat for several."
                   + default(DecoySettings, "topics"))
@click.option("--roll-bytes", default=None,
              help="Roll files when this much (uncompressed) is buffered, e.g. 64MiB."
                   + default(DecoySettings, "roll_bytes", " bytes"))
@click.option("--roll-seconds", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Roll files when the oldest buffered record is this old."
                   + default(DecoySettings, "roll_seconds"))
@click.option("--compression", default=None,
              type=click.Choice(["zstd", "snappy", "lz4", "gzip", "none"]),
              help="Parquet compression codec." + default(DecoySettings, "compression"))
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help="Most records per poll." + default(DecoySettings, "batch_size"))
@click.option("--instance-id", default=None,
              help="Static group membership id: a restarted decoy gets its partitions "
                   "back at once. Give each decoy process its own.")
@click.option("--max-cpu", type=click.FloatRange(min=0, max=1, min_open=True), default=None,
              help="Share of one core the decoy may use, rolls included; it lags under a "
                   "burst and catches up after (1 = no limit)." + default(DecoySettings, "max_cpu"))
@click.option("--redaction", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              default=None,
              help="Redaction policy (YAML: `drop` and `hash` lists of input field paths) "
                   "applied before input is archived; hashing needs the HMAC secret in "
                   "RENDEZVOUS_DECOY__REDACTION_KEY. [env RENDEZVOUS_DECOY__REDACTION]")
@click.option("--metrics-port", type=click.IntRange(min=0), default=None, help=METRICS_PORT_HELP)
def decoy(archive: Path | None, topics: tuple[str, ...], roll_bytes: str | None,
          roll_seconds: float | None, compression: str | None, batch_size: int | None,
          instance_id: str | None, max_cpu: float | None, redaction: Path | None,
          metrics_port: int | None) -> None:
    """Record every input and decision record, raw, into a Parquet archive.

    Offsets are committed only after the file holding the records is durable.
    SIGTERM rolls what is buffered, commits and exits 0.
    """
    s = settings(metrics_port=metrics_port, decoy={
        "archive": archive, "topics": topics or None,
        "roll_bytes": _size(roll_bytes) if roll_bytes is not None else None,
        "roll_seconds": roll_seconds, "batch_size": batch_size, "compression": compression,
        "instance_id": instance_id, "max_cpu": max_cpu, "redaction": redaction})
    if s.decoy.archive is None:
        raise click.UsageError("no archive: pass --archive DIR (or RENDEZVOUS_DECOY__ARCHIVE)")
    with clear_errors():
        run_decoy(s)
