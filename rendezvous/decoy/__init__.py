"""The decoy: records every input and decision record, raw, into the Parquet archive."""

from rendezvous.decoy.recorder import DecoyConfig, Recorder, run
from rendezvous.decoy.writer import ArchiveWriter

__all__ = ["ArchiveWriter", "DecoyConfig", "Recorder", "run"]
