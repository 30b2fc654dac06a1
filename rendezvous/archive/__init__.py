"""The raw archive: plain Parquet written by the decoy, read back deduplicated.

See :mod:`rendezvous.archive.schema` for the columns and the file layout.
"""

from rendezvous.archive.errors import ArchiveError, UnreadableFile
from rendezvous.archive.layout import TimeLike, to_epoch_ms
from rendezvous.archive.reader import read_archive, read_file, skipped_files
from rendezvous.archive.schema import ARCHIVE_SCHEMA, SCHEMA_VERSION

__all__ = [
    "ARCHIVE_SCHEMA",
    "SCHEMA_VERSION",
    "ArchiveError",
    "TimeLike",
    "UnreadableFile",
    "read_archive",
    "read_file",
    "skipped_files",
    "to_epoch_ms",
]
