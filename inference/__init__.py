"""DeepStrata's inference engine: QGIS-free (numpy, onnxruntime, GDAL). See docs/architecture.md.

Paths and arrays in, files out; progress and cancellation are plain callables. Also runnable as
``python -m deepstrata.inference``.
"""
from __future__ import annotations

from .card import SCHEMA, BandInfo, ClassInfo, ModelCard, parse_card
from .engine import RunOptions, RunResult, run_model
from .errors import CancelledError, CardError, DeepStrataError, InputError, ModelError, OutputError
from .model import Model, load_model, model_info
from .providers import DEVICES, available_providers, choose_provider

__all__ = [
    "SCHEMA", "BandInfo", "ClassInfo", "ModelCard", "parse_card", "RunOptions", "RunResult", "run_model",
    "CancelledError", "CardError", "DeepStrataError", "InputError", "ModelError", "OutputError", "Model",
    "load_model", "model_info", "DEVICES", "available_providers", "choose_provider",
]
