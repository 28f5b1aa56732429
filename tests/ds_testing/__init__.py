"""Test fixtures shared by every test suite and the benchmarks: tiny analytic ONNX models and seeded rasters.

Import the parts you use (`from ds_testing import models, rasters`): `models` needs only numpy and onnx (the GPU
machine has no GDAL), `rasters` needs GDAL.
"""
from __future__ import annotations

__all__ = ["models", "rasters"]
