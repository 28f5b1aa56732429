"""DeepStrata's inference engine: QGIS-free (numpy, onnxruntime, GDAL). See docs/architecture.md.

Two layers: ``engine`` (models, cards, providers, the run plan, streamed reading, staged writing, heads, errors)
and ``workflows`` (resampling, band presets, class statistics, polygons, anomaly outputs, inspection), which
builds on the engine. The public API is re-exported here. Also runnable as ``python -m deepstrata.inference``.
"""
from __future__ import annotations

from .engine.card import SCHEMA, BandInfo, ClassInfo, ModelCard, parse_card
from .engine.deepness import CardOverrides
from .engine.errors import CancelledError, CardError, DeepStrataError, InputError, ModelError, OutputError
from .engine.model import Model, load_model, model_info
from .engine.options import RunOptions, RunResult
from .engine.providers import DEVICES, available_providers, choose_provider
from .engine.run import run_model
from .engine.staging import Staging

__all__ = [
    "SCHEMA", "BandInfo", "ClassInfo", "ModelCard", "parse_card", "RunOptions", "RunResult", "run_model",
    "CancelledError", "CardError", "DeepStrataError", "InputError", "ModelError", "OutputError", "Model",
    "load_model", "model_info", "DEVICES", "available_providers", "choose_provider", "CardOverrides", "Staging",
]
