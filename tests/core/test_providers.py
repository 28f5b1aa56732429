"""Execution providers: auto picks the best, explicit choices fall back to CPU with a warning."""
from __future__ import annotations

from pathlib import Path

import onnxruntime
import pytest

from deepstrata.inference import DEVICES, DeepStrataError, RunOptions, available_providers, choose_provider, run_model
from deepstrata.inference.engine import providers
from ds_testing import models
from ds_testing.paths import LANDSAT


def test_auto_picks_the_best_available() -> None:
    assert available_providers()[-1] == "CPUExecutionProvider"
    choice = choose_provider("auto")
    assert choice.provider == available_providers()[0] and "best provider available" in choice.note


def test_auto_prefers_gpu_providers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(onnxruntime, "get_available_providers",
                        lambda: ["CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"])
    assert choose_provider("auto").provider == "TensorrtExecutionProvider"
    assert choose_provider("cuda").provider == "CUDAExecutionProvider"
    assert "(GPU)" in choose_provider("auto").note


def test_unavailable_device_falls_back_to_cpu_and_says_so(tmp_path: Path) -> None:
    if "CUDAExecutionProvider" in available_providers():
        pytest.skip("CUDA is available here")
    model = models.conv_segmenter(tmp_path / "seg.onnx")
    result = run_model(model, str(LANDSAT), str(tmp_path / "out.tif"), RunOptions(device="cuda"))
    assert result.provider == "CPUExecutionProvider"
    assert any("cuda requested but CUDAExecutionProvider is not available" in w for w in result.warnings)


def test_provider_that_fails_to_start_falls_back_to_cpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = onnxruntime.InferenceSession
    monkeypatch.setattr(onnxruntime, "get_available_providers",
                        lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])

    def session(model, sess_options=None, providers=None):
        if providers and providers[0] == "CUDAExecutionProvider":
            raise RuntimeError("CUDA driver version is insufficient for CUDA runtime version")
        return real(model, sess_options=sess_options, providers=providers)

    monkeypatch.setattr(onnxruntime, "InferenceSession", session)
    model = models.conv_segmenter(tmp_path / "seg.onnx")
    result = run_model(model, str(LANDSAT), str(tmp_path / "out.tif"))
    assert result.provider == "CPUExecutionProvider"
    assert any("CUDAExecutionProvider failed to start (CUDA driver version" in w and "falling back to CPU" in w
               for w in result.warnings)


def test_unknown_device_is_refused() -> None:
    assert "cuda" in DEVICES and "auto" in DEVICES
    with pytest.raises(DeepStrataError, match="Unknown device 'tpu'. Use one of: auto, tensorrt"):
        providers.choose_provider("tpu")
