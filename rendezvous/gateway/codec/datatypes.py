"""The OIP datatypes this gateway reads, and the range of numbers each holds."""

from __future__ import annotations

import numpy as np

NUMERIC_DATATYPES = ("FP32", "FP64", "INT64")
DATATYPES = (*NUMERIC_DATATYPES, "BYTES")
"""Input datatypes this gateway reads."""
FEATURE_DATATYPES = {"float32": "FP32", "float64": "FP64", "int64": "INT64", "string": "BYTES"}
"""The OIP datatype of each manifest dtype (what the metadata lists for a feature)."""
ITEM_BYTES = {"FP32": 4, "FP64": 8, "INT64": 8}
"""Bytes of one element of a numeric datatype in the binary extension."""
NUMPY_DTYPES = {"FP32": "<f4", "FP64": "<f8", "INT64": "<i8"}
"""The little-endian numpy dtype of a numeric datatype's binary data."""
INT64_LIMIT = float(2**63)
FP32_MAX = float(np.finfo(np.float32).max)


def is_number(value: object) -> bool:
    """An int or a float, not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_int(value: object) -> bool:
    """An int, not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)
