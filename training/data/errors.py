"""The data pipeline's one error type: its message says what is wrong and how to fix it."""
from __future__ import annotations


class DataError(ValueError):
    """A training input (raster, label source, chip or split parameter) cannot be used as given."""
