"""The geology recipe: its log-reflectance first layer, the relabelled radiometric augmentation, and a one-epoch
smoke run at tiny settings (pretrain, fine-tune, export, card validation, engine run, report files)."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch

from deepstrata.inference.engine.card import parse_card
from training import geology, geology_cli
from training.ratios import CLASSES, label
from training.sensors import SENSOR_BANDS, from_oli_dn, to_oli_dn
from training.spectral import LogReflectance, log_reflectance, log_stats, relabelled_jitter
from training.workflow import engine_output

NORMALIZATION = {"method": "zscore", "mean": [9000.0, 8500, 8000, 15000, 11000, 8500],
                 "std": [1500.0, 2000, 2400, 4500, 4300, 3800]}


def test_log_reflectance_layer_matches_numpy() -> None:
    rng = np.random.default_rng(0)
    dn = rng.uniform(5100, 30000, (3, 6, 8, 8))
    mean, std = log_stats(dn)
    z = (dn - np.array(NORMALIZATION["mean"])[None, :, None, None]) / np.array(NORMALIZATION["std"])[None, :, None,
                                                                                                     None]
    got = LogReflectance(NORMALIZATION, mean, std)(torch.from_numpy(z.astype(np.float32))).numpy()
    want = (log_reflectance(dn) - np.array(mean)[None, :, None, None]) / np.array(std)[None, :, None, None]
    assert np.allclose(got, want, atol=2e-4)
    assert np.allclose(want.mean(axis=(0, 2, 3)), 0, atol=1e-9)
    # A band ratio is a difference of two inputs up to the standardisation: brightness cancels.
    brighter = LogReflectance(NORMALIZATION, mean, std)(torch.from_numpy(
        ((to_oli_dn(from_oli_dn(dn) * 1.5) - np.array(NORMALIZATION["mean"])[None, :, None, None])
         / np.array(NORMALIZATION["std"])[None, :, None, None]).astype(np.float32))).numpy()
    shift = (brighter - got) * np.array(std)[None, :, None, None]
    assert np.allclose(shift, np.log(1.5), atol=2e-3)
    with pytest.raises(ValueError, match="zscore"):
        LogReflectance({"method": "none"}, mean, std)


def test_relabelled_jitter_keeps_labels_consistent_with_the_rules() -> None:
    rng = np.random.default_rng(1)
    rho = rng.uniform(0.02, 0.4, (4, 6, 6, 6))
    dn = to_oli_dn(rho)
    same, labels = relabelled_jitter(dn, [None] * 4, 0.0, rng)
    assert np.allclose(same, dn, rtol=1e-6) and np.array_equal(labels, np.stack([label(c) for c in rho]))
    moved, relabelled = relabelled_jitter(dn, [30.0, None, 30.0, None], 0.2, rng)
    assert not np.allclose(moved, dn)
    sun = np.array([0.5, 1.0, 0.5, 1.0])[:, None, None, None]
    assert np.array_equal(relabelled, np.stack([label(c) for c in from_oli_dn(moved) / sun]))


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    folder = tmp_path_factory.mktemp("geology")
    argv = ["--output", str(folder / "geology.onnx"), "--reports", str(folder / "reports"), "--width", "4",
            "--depth", "2", "--pretrain-epochs", "1", "--epochs", "1", "--freeze-epochs", "1",
            "--jitter-copies", "1", "--threads", "1"]
    assert geology_cli.main(argv) == 0
    return folder


def test_smoke_run_exports_a_valid_model_with_its_card(smoke) -> None:
    path = smoke / "geology.onnx"
    assert path.stat().st_size < 10e6
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    card = json.loads(props["deepstrata"])
    parsed = parse_card(card)
    assert [c.name for c in parsed.output.classes] == [name for _, name, *_ in CLASSES]
    assert [b.name for b in parsed.input.bands] == list(SENSOR_BANDS["oli"])
    assert parsed.input.size_multiple == 4 and card["input"]["margin"] >= 0
    assert len(card["input"]["normalization"]["mean"]) == 6
    training = card["training"]
    assert set(training["metrics"]) >= {"overall_accuracy", "macro_f1"}
    assert training["command"].startswith("python -m training geology --output")
    assert "Xu" in " ".join(training["citations"]) and training["pretrained_from"].startswith("ConvAutoencoder")


def test_smoke_run_runs_in_the_engine_and_writes_the_report(smoke) -> None:
    classes, _ = engine_output(smoke / "geology.onnx", geology.SCENES[0].path)
    assert classes.shape == (384, 384) and set(np.unique(classes)) <= set(range(1, 8))
    reports = smoke / "reports"
    for name in ("geology.json", "geology_confusion.csv", "geology_confusion.png", "README.md",
                 "map_landsat8_florida.png", "map_sentinel2_para.png", "map_landsat5_amazon.png"):
        assert (reports / name).stat().st_size > 0, name
    document = json.loads((reports / "geology.json").read_text())
    assert 0 <= document["overall_accuracy"] <= 1 and document["total"] > 1000
    assert set(document["test_scenes"]) == {"landsat8_florida", "sentinel2_para"}
    assert "python -m training geology" in (reports / "README.md").read_text()
