"""The files a run reads (`Read`), which no output may overwrite (destinations.check_destinations). No GDAL here."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Read:
    """A file the run reads, and what it is to the user ("the input raster", "the model's external data")."""

    path: str
    what: str
