"""``rendezvous decoy``: record the input and decisions topics into the raw archive."""

from __future__ import annotations

from pathlib import Path

import click

from rendezvous.cli.common import clear_errors, settings
from rendezvous.decoy import DecoyConfig
from rendezvous.decoy import run as run_decoy

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
@click.option("--archive", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Root directory of the Parquet archive (created if missing).")
@click.option("--record", "topics", multiple=True, default=("input", "decisions"),
              show_default=True, help="Logical topic to record; repeat for several.")
@click.option("--roll-bytes", default="64MiB", show_default=True,
              help="Roll files when this much (uncompressed) is buffered, e.g. 64MiB.")
@click.option("--roll-seconds", type=float, default=60.0, show_default=True,
              help="Roll files when the oldest buffered record is this old.")
@click.option("--compression", default="zstd", show_default=True,
              type=click.Choice(["zstd", "snappy", "lz4", "gzip", "none"]),
              help="Parquet compression codec.")
@click.option("--batch-size", type=int, default=10_000, show_default=True,
              help="Most records per poll.")
@click.option("--instance-id", default=None,
              help="Static group membership id: a restarted decoy gets its partitions "
                   "back at once. Give each decoy process its own.")
def decoy(archive: Path, topics: tuple[str, ...], roll_bytes: str, roll_seconds: float,
          compression: str, batch_size: int, instance_id: str | None) -> None:
    """Record every input and decision record, raw, into a Parquet archive.

    Offsets are committed only after the file holding the records is durable.
    SIGTERM rolls what is buffered, commits and exits 0.
    """
    config = DecoyConfig(archive=archive, topics=topics, roll_bytes=_size(roll_bytes),
                         roll_seconds=roll_seconds, batch_size=batch_size,
                         compression=compression, instance_id=instance_id)
    with clear_errors():
        run_decoy(settings(), config)
