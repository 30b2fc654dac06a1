"""A data file (CSV or Parquet, by suffix) read into named columns of numbers or strings,
with pyarrow (no pandas): what ``model import`` checks a graph against and scores.

Numbers (integers, floats, booleans as 0/1) become float64 or int64 arrays, text an object
array of ``str``. A CSV column the caller names in ``text`` is read as text whatever it
looks like (``"01"`` stays ``"01"``), so a string input gets the values as written. Empty
values are counted, not filled: the importer refuses them in a column it uses.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa

from rendezvous.model.errors import ImportRefused

FORMATS = {".csv": "csv", ".tsv": "csv", ".parquet": "parquet", ".pq": "parquet"}
"""Data file suffixes (``.gz``/``.bz2`` after a CSV suffix: compressed) and their formats."""

Kind = Literal["integer", "number", "string", "other"]


@dataclass(frozen=True)
class Column:
    """One column of the file: ``values`` int64 (``integer``), float64 (``number``),
    ``str`` objects (``string``), or as pyarrow gave them (``other``: dates, lists...)."""

    name: str
    kind: Kind
    type: str
    """The column's pyarrow type, e.g. ``int64``, ``string``, ``timestamp[s]``."""
    values: np.ndarray
    first_missing: int | None
    """1-based row number of the first empty value, None when every row has one."""

    @property
    def numeric(self) -> bool:
        return self.kind in ("integer", "number")

    def describe(self) -> str:
        return f"{self.name} ({'text' if self.kind == 'string' else self.type})"


@dataclass(frozen=True)
class Table:
    """The columns of a data file, in file order."""

    path: Path
    columns: dict[str, Column]
    rows: int

    @property
    def names(self) -> list[str]:
        return list(self.columns)

    def column(self, name: str, wanted_by: str) -> Column:
        """The column ``name``; :class:`ImportRefused` listing the columns when there is none."""
        if name not in self.columns:
            raise ImportRefused(f"{wanted_by}: {self.path.name} has no column {name!r} "
                                f"(columns: {', '.join(self.names)})")
        return self.columns[name]


def data_format(path: Path) -> str:
    """``csv`` or ``parquet`` from the file's suffix; :class:`ImportRefused` otherwise."""
    suffixes = [s.lower() for s in path.suffixes]
    compressed = suffixes[-1:] in ([".gz"], [".bz2"])
    found = FORMATS.get(suffixes[-2 if compressed else -1] if len(suffixes) > compressed else "")
    if found is None or (compressed and found == "parquet"):
        raise ImportRefused(f"{path}: not a data file this reads (by its suffix): give a "
                            "CSV (.csv, .tsv, optionally .gz/.bz2) or Parquet (.parquet, .pq) "
                            "file")
    return found


def read_table(path: Path, text: Iterable[str] = ()) -> Table:
    """Read ``path`` (CSV or Parquet by suffix); CSV columns named in ``text`` as text.

    Raises :class:`ImportRefused` naming the file when it cannot be read or has no rows."""
    path = Path(path)
    kind = data_format(path)
    try:
        if kind == "csv":
            import pyarrow.csv as pacsv

            tab = ".tsv" in [x.lower() for x in path.suffixes]
            as_text = dict.fromkeys(text, pa.string())
            table = pacsv.read_csv(
                path, parse_options=pacsv.ParseOptions(delimiter="\t" if tab else ","),
                convert_options=pacsv.ConvertOptions(column_types=as_text))
        else:
            import pyarrow.parquet as pq

            table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise ImportRefused(f"{path}: cannot be read as {kind.upper()}: {exc}") from None
    if table.num_rows == 0:
        raise ImportRefused(f"{path}: no rows (columns: {', '.join(table.column_names)})")
    if len(set(table.column_names)) != len(table.column_names):
        twice = sorted({n for n in table.column_names if table.column_names.count(n) > 1})
        raise ImportRefused(f"{path}: column names appear more than once: {', '.join(twice)}")
    columns = {name: _column(name, table.column(name)) for name in table.column_names}
    return Table(path, columns, table.num_rows)


def _column(name: str, data: pa.ChunkedArray) -> Column:
    """One pyarrow column as a :class:`Column`."""
    nulls = data.null_count
    first_missing = None
    if nulls:
        flags = data.is_null().to_numpy(zero_copy_only=False)
        first_missing = int(np.argmax(flags)) + 1
    arrow_type = data.type
    if pa.types.is_dictionary(arrow_type):
        data = data.cast(arrow_type.value_type)
        arrow_type = data.type
    type_name = str(arrow_type)
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        values = np.array([("" if v is None else v) for v in data.to_pylist()], dtype=object)
        return Column(name, "string", type_name, values, first_missing)
    if pa.types.is_boolean(arrow_type) or (pa.types.is_integer(arrow_type) and not nulls):
        return Column(name, "integer", type_name,
                      data.cast(pa.int64()).to_numpy(zero_copy_only=False), first_missing)
    if pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type) or \
            pa.types.is_decimal(arrow_type):
        return Column(name, "number", type_name,
                      data.cast(pa.float64()).to_numpy(zero_copy_only=False), first_missing)
    return Column(name, "other", type_name, data.to_numpy(zero_copy_only=False), first_missing)


def usable(column: Column) -> Column:
    """``column`` when every row has a finite value; :class:`ImportRefused` otherwise."""
    bad = column.first_missing
    if bad is None and column.numeric and not np.isfinite(column.values).all():
        bad = int(np.argmax(~np.isfinite(column.values))) + 1
    if bad is not None:
        raise ImportRefused(f"column {column.name!r} has no usable value at row {bad} (empty, "
                            "NaN or infinite): fill or drop such rows first")
    return column
