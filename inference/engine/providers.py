"""onnxruntime execution providers: which exist here, which one to use, and a session that falls back to CPU."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .errors import DependencyError, DeviceError, ModelError

log = logging.getLogger(__name__)

# Best first; `auto` takes the first one onnxruntime offers on this machine.
PREFERENCE = (
    ("tensorrt", "TensorrtExecutionProvider"),
    ("cuda", "CUDAExecutionProvider"),
    ("directml", "DmlExecutionProvider"),
    ("coreml", "CoreMLExecutionProvider"),
    ("openvino", "OpenVINOExecutionProvider"),
    ("cpu", "CPUExecutionProvider"),
)
DEVICES = ("auto",) + tuple(short for short, _ in PREFERENCE)
CPU = "CPUExecutionProvider"
_GPU = {"TensorrtExecutionProvider", "CUDAExecutionProvider", "DmlExecutionProvider"}


def _ort() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise DependencyError(
            "onnxruntime is not installed in this Python. Install it with "
            "'python -m pip install onnxruntime' (or onnxruntime-gpu for NVIDIA GPUs) and restart QGIS.") from exc
    return onnxruntime


def available_providers() -> list[str]:
    """The execution providers onnxruntime offers on this machine, best first."""
    offered = set(_ort().get_available_providers())
    return [name for _, name in PREFERENCE if name in offered]


# Providers whose runs bind inputs and outputs, and the device their outputs are bound to
BINDS_IO = {"CUDAExecutionProvider": "cuda", "TensorrtExecutionProvider": "cuda"}
GPU_BATCH = 16  # tiles per run on a GPU by default (4 on CPU: plan.DEFAULT_BATCH)


def is_gpu(provider: str) -> bool:
    return provider in _GPU


def run_bound(session: Any, feeds: dict[str, np.ndarray], names: Sequence[str], device: str) -> list[np.ndarray]:
    """One run through IOBinding: the inputs copied to the device once, the outputs written on `device` ('cuda',
    or 'cpu'), then copied back as numpy arrays."""
    binding = session.io_binding()
    for name, value in feeds.items():
        binding.bind_cpu_input(name, np.ascontiguousarray(value))
    for name in names:
        binding.bind_output(name, device)
    session.run_with_iobinding(binding)
    return [np.asarray(a) for a in binding.copy_outputs_to_cpu()]


@dataclass(frozen=True)
class Choice:
    provider: str
    note: str


def choose_provider(device: str = "auto") -> Choice:
    """The provider to try for `device` (auto or a short name), and why."""
    device = (device or "auto").lower()
    if device not in DEVICES:
        raise DeviceError(f"Unknown device '{device}'. Use one of: {', '.join(DEVICES)}.")
    available = available_providers()
    if device == "auto":
        best = available[0] if available else CPU
        kind = "GPU" if is_gpu(best) else "CPU"
        return Choice(best, f"auto: {best} is the best provider available here ({kind})")
    wanted = dict(PREFERENCE)[device]
    if wanted in available:
        return Choice(wanted, f"{device} requested")
    return Choice(CPU, f"{device} requested but {wanted} is not available in this onnxruntime "
                       f"(available: {', '.join(available) or 'none'}); running on CPU instead. "
                       "Install onnxruntime-gpu (CUDA) or the matching build to use it")


def create_session(model: bytes | str, device: str = "auto", threads: int = 0) -> tuple[Any, str, list[str]]:
    """An InferenceSession on the chosen provider, falling back to CPU with a warning if it fails to start.

    `model` is the file's bytes, or its path (then onnxruntime resolves external data beside the file).
    Returns (session, provider that runs, warnings).
    """
    ort = _ort()
    choice = choose_provider(device)
    warnings = [choice.note] if choice.provider == CPU and device not in ("auto", "cpu") else []
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Idle onnxruntime workers would otherwise spin between runs and take the cores from the reader thread and
    # the blending (measured: 12% faster end to end on 2 cores), and from QGIS itself.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads:
        options.intra_op_num_threads = threads
    providers = [choice.provider] + ([CPU] if choice.provider != CPU else [])
    try:
        session = ort.InferenceSession(model, sess_options=options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/RuntimeError types
        if choice.provider == CPU:
            raise ModelError(f"onnxruntime cannot load this model: {str(exc).splitlines()[0][:300].rstrip('.')}. "
                             "Check that it was exported with opset 17 or later and passes onnx.checker") from exc
        warnings.append(f"{choice.provider} failed to start ({str(exc).splitlines()[0][:200]}); "
                        "falling back to CPU")
        return create_session(model, "cpu", threads)[0], CPU, warnings
    ran = session.get_providers()[0]
    if ran != choice.provider:
        warnings.append(f"{choice.provider} could not be initialised (missing GPU libraries or driver?); "
                        f"onnxruntime runs on {ran} instead")
    for w in warnings:
        log.warning(w)
    return session, ran, warnings
