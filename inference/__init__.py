"""DeepStrata's inference engine: QGIS-free (numpy, onnxruntime, GDAL). See docs/architecture.md.

Two layers: ``engine`` (models, cards, providers, the run plan, streamed reading, staged writing, heads, errors)
and ``workflows`` (resampling, band presets, class statistics, polygons, anomaly outputs, inspection), which
builds on the engine. The public API is re-exported here. Also runnable as ``python -m deepstrata.inference``.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .engine.card import SCHEMA, BandInfo, ClassInfo, ModelCard, parse_card
from .engine.deepness import CardOverrides
from .engine.errors import CancelledError, CardError, DeepStrataError, InputError, ModelError, OutputError
from .engine.model import Model, load_model, model_info
from .engine.options import RunOptions, RunResult
from .engine.pipeline import run_array
from .engine.providers import DEVICES, available_providers, choose_provider

if TYPE_CHECKING:
    from .engine.run import run_model
    from .engine.staging import Staging

# Imported on first use: they need GDAL, and the compute path (run_array, engine.pipeline) must import without it
_WITH_GDAL = {"run_model": ".engine.run", "Staging": ".engine.staging"}

__all__ = [
    "SCHEMA", "BandInfo", "ClassInfo", "ModelCard", "parse_card", "RunOptions", "RunResult", "run_model",
    "run_array", "CancelledError", "CardError", "DeepStrataError", "InputError", "ModelError", "OutputError",
    "Model", "load_model", "model_info", "DEVICES", "available_providers", "choose_provider", "CardOverrides",
    "Staging",
]


def __getattr__(name: str) -> Any:
    if name in _WITH_GDAL:
        return getattr(importlib.import_module(_WITH_GDAL[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
