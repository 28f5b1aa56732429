"""Provenance: what made an output, stored in its metadata (DeepStrata's version, the model and the run's
parameters), so a file found later says how to make it again."""
from __future__ import annotations

import configparser
import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

METADATA_TXT = Path(__file__).resolve().parents[2] / "metadata.txt"
KEYS = ("DEEPSTRATA_VERSION", "DEEPSTRATA_MODEL", "DEEPSTRATA_MODEL_VERSION", "DEEPSTRATA_MODEL_SHA256",
        "DEEPSTRATA_PARAMETERS")


@lru_cache(maxsize=1)
def version() -> str:
    """The plugin's version from metadata.txt ("unknown" where the engine runs without it)."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(METADATA_TXT, encoding="utf-8")
        return parser.get("general", "version")
    except (configparser.Error, OSError):
        return "unknown"


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float):
        return float(f"{value:.12g}")
    return value


def provenance(model_name: str = "", model_version: str = "", model_sha256: str = "",
               parameters: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Metadata items for an output: DEEPSTRATA_VERSION, _MODEL, _MODEL_VERSION, _MODEL_SHA256 and
    _PARAMETERS (a JSON object of the run's parameters; empty ones left out)."""
    params = {k: _plain(v) for k, v in (parameters or {}).items() if v not in (None, "", [], ())}
    items = {"DEEPSTRATA_VERSION": version(), "DEEPSTRATA_MODEL": model_name,
             "DEEPSTRATA_MODEL_VERSION": model_version, "DEEPSTRATA_MODEL_SHA256": model_sha256,
             "DEEPSTRATA_PARAMETERS": json.dumps(params, sort_keys=True, ensure_ascii=False)}
    return {k: v for k, v in items.items() if v}
