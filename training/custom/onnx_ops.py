"""A preflight export of the untrained model, so that a ``--from`` that cannot be exported is refused before any
training (training.export registers the symbolics the exporter lacks, such as the terrain stem's asinh)."""
from __future__ import annotations

from torch import nn

from ..export import ExportError, _to_onnx
from .findings import Refused

def preflight(model: nn.Module, bands: int, size: int, what: str) -> None:
    """Export ``model`` once (not written anywhere); a clear refusal when the exporter cannot."""
    try:
        _to_onnx(model.eval(), bands, size, per_pixel=True)
    except (ExportError, RuntimeError, ValueError) as exc:
        raise Refused(f"a model built on {what} cannot be exported to ONNX (opset 17): {str(exc).strip()[:300]}. "
                      "Start from another encoder (--from) or none.") from exc
