"""Test fixtures shared by every test suite and the benchmarks: tiny analytic ONNX models and seeded rasters."""
from __future__ import annotations

from . import models, rasters

__all__ = ["models", "rasters"]
