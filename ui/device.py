"""Which execution provider 'auto' would pick on this machine, in words for a toolbar label and tooltip."""
from __future__ import annotations

from dataclasses import dataclass

from ..support import onnxruntime_problem, tr

GPU_PROVIDERS = {"TensorrtExecutionProvider": "NVIDIA GPU (TensorRT)", "CUDAExecutionProvider": "NVIDIA GPU (CUDA)",
                 "DmlExecutionProvider": "GPU (DirectML)"}
ACCELERATORS = {"CoreMLExecutionProvider": "Apple Neural Engine / GPU (Core ML)",
                "OpenVINOExecutionProvider": "Intel CPU/GPU (OpenVINO)"}


@dataclass(frozen=True)
class DeviceSummary:
    label: str  # short: shown on the toolbar
    tooltip: str  # why, and what to install for a GPU
    provider: str | None = None  # the onnxruntime execution provider 'auto' uses, None if none can run


def device_summary() -> DeviceSummary:
    """Never raises: without onnxruntime (or if it fails to load) the summary says so."""
    problem = onnxruntime_problem()
    if problem:
        return DeviceSummary(tr("No onnxruntime"), problem)
    try:
        from ..inference import available_providers

        available = available_providers()
    except Exception as exc:  # noqa: BLE001 (a broken onnxruntime must not break the toolbar)
        return DeviceSummary(tr("Device: unknown"), tr("onnxruntime could not list its execution providers: ")
                             + str(exc))
    best = available[0] if available else "CPUExecutionProvider"
    listed = ", ".join(available) or "none"
    if best in GPU_PROVIDERS:
        what = GPU_PROVIDERS[best]
        return DeviceSummary(tr("Device: GPU"), tr("Models run on the {0}: device 'auto' picks {1}, the best "
                                                   "execution provider onnxruntime offers here ({2}).").format(
                                                       what, best, listed), best)
    if best in ACCELERATORS:
        what = ACCELERATORS[best]
        return DeviceSummary(tr("Device: accelerator"), tr("Models run on {0}: device 'auto' picks {1}, the best "
                                                           "execution provider onnxruntime offers here ({2}).").format(
                                                               what, best, listed), best)
    return DeviceSummary(tr("Device: CPU"), tr(
        "Models run on the CPU ({0}): this onnxruntime offers no GPU execution provider (available: {1}). "
        "For an NVIDIA GPU install onnxruntime-gpu with matching CUDA/cuDNN libraries, then restart QGIS.").format(
            best, listed), best)
