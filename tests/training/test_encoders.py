"""Pretrained encoders (issue #10): fixed stems, the deepstrata-encoder/1 checkpoint, band adaptation, the shipped
checkpoints, a tiny pretraining run and the pieces of the transfer-goal experiment."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from data_fixtures import write_raster

from training import encoder_checkpoint as ec
from training import encoder_report as er
from training import encoder_sources as es
from training import pretrain_encoders as pe
from training import transfer_goal as tg
from training.nets import Encoder, LineOfSight, RelativeRelief
from training.resnet import adapt_conv1
from training.stems import NormalizedRelief, make_stem, stem_channels, stem_radius, terrain_spec

REPO = Path(__file__).resolve().parents[2]
SPECS = [
    None,
    {"type": "relative_relief", "radius": 3, "scale": 10.0},
    {"type": "relative_relief", "radius": [2, 5], "scale": 10.0},
    {"type": "line_of_sight", "cell_m": 30.0, "radius_m": 150.0, "flat_deg": 1.0},
    {"type": "line_of_sight", "cell_m": 30.0, "radius_m": 90.0},
    terrain_spec(),
    terrain_spec(radius=(1, 3), window=3, magnitude=False),
]


def terrain(size: int = 48, seed: int = 0, relief: float = 100.0) -> torch.Tensor:
    """(1, 1, size, size) smooth random hills plus a ridge, in metres around 500 m."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    z = sum(rng.normal() * np.sin(2 * math.pi * (k * x + m * y) + rng.uniform(0, 6)) / (k + m)
            for k in range(1, 4) for m in range(1, 4))
    z = z + 2 * np.exp(-((x - 0.5) / 0.08) ** 2)
    return torch.from_numpy((500 + relief * z).astype(np.float32))[None, None]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: "none" if s is None else f"{s['type']}-{s.get('radius', '')}")
def test_every_stem_builds_with_the_channels_it_declares_and_ignores_absolute_elevation(spec) -> None:
    stem = make_stem(spec)
    for bands in (1, 3):
        z = terrain().repeat(1, bands, 1, 1) + torch.arange(bands, dtype=torch.float32)[None, :, None, None] * 7
        out = stem(z)
        assert out.shape == (1, stem_channels(spec, bands), 48, 48)
        assert torch.isfinite(out).all()
        if spec is None:
            assert torch.equal(out, z)
        else:
            assert torch.allclose(stem(z + 1000.0), out, atol=2e-3), spec


def test_specs_map_to_the_nets_stems_and_bad_specs_are_refused() -> None:
    assert isinstance(make_stem(SPECS[1]), RelativeRelief) and isinstance(make_stem(SPECS[3]), LineOfSight)
    assert isinstance(make_stem(terrain_spec()), NormalizedRelief)
    assert stem_radius(None) == 0 and stem_radius(SPECS[2]) == 5 and stem_radius(SPECS[3]) == 5
    assert stem_radius(terrain_spec()) == 16 and stem_channels(terrain_spec(), 1) == 5
    for bad in ({"type": "nope"}, {"type": "relative_relief", "radius": 2}, {**terrain_spec(), "colour": 1}):
        with pytest.raises(ValueError):
            make_stem(bad)


def test_normalized_relief_reads_no_further_than_its_radius() -> None:
    spec = terrain_spec(radius=(1, 2), window=3)
    stem, r = make_stem(spec), stem_radius(spec)
    z = terrain(40)
    changed = z.clone()
    changed[..., 20 + r + 1:, :] += 50.0          # rows beyond the radius of row 20
    changed[..., :, 20 + r + 1:] -= 30.0
    assert torch.allclose(stem(z)[..., :21, :21], stem(changed)[..., :21, :21], atol=1e-4)
    nearer = z.clone()
    nearer[..., 20 + r, 20] += 50.0
    assert not torch.allclose(stem(z)[..., 20, 20], stem(nearer)[..., 20, 20])


def test_normalized_relief_shape_is_scale_free_and_its_magnitude_counts_decades() -> None:
    stem = make_stem(terrain_spec())
    z = terrain(64, relief=200.0)
    base, scaled = stem(z), stem(500 + (z - 500) * 10)     # the same landscape with 10x the relief
    assert torch.allclose(base[:, :4], scaled[:, :4], atol=0.02)
    shift = (scaled[:, 4] - base[:, 4]).flatten()
    assert torch.allclose(shift, torch.ones_like(shift), atol=0.01)         # log10(10)
    flat = stem(torch.full((1, 1, 32, 32), 250.0))
    assert torch.allclose(flat[:, :4], torch.zeros(1, 4, 32, 32)) and torch.allclose(
        flat[:, 4], torch.full((1, 32, 32), math.log10(0.25 / 10)))


def tiny_document(stem: dict | None, bands: int, seed: int = 0) -> tuple[Encoder, dict]:
    torch.manual_seed(seed)
    encoder = Encoder(stem_channels(stem, bands), 4, 1)
    for m in encoder.modules():              # non-trivial batch-norm statistics, so a bad load shows
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    encoder.eval()
    document = ec.checkpoint(encoder, bands=bands, stem=stem, input="raw" if stem else "zscore", source="test",
                             pretrained_on=["a.tif"], held_out=["b.tif"], band_names=[f"b{i}" for i in range(bands)],
                             pixel_sizes_m=[30.0])
    return encoder, document


@pytest.mark.parametrize("stem", [terrain_spec(radius=(1, 2), window=2), None])
def test_a_checkpoint_round_trips_into_a_unet_with_the_same_features(tmp_path, stem) -> None:
    bands = 1 if stem else 6
    encoder, document = tiny_document(stem, bands)
    path = ec.save(document, tmp_path / "enc.pt")
    loaded = ec.load(path)
    assert set(loaded) == set(ec.KEYS) and loaded["format"] == ec.FORMAT and loaded["depth"] == 1
    unet = ec.unet_from_checkpoint(path, bands, classes=3).eval()
    x = terrain(32).repeat(1, bands, 1, 1)
    with torch.no_grad():
        expected = encoder(make_stem(stem)(x))
        got = unet.encoder(unet.stem(x))
    assert all(torch.allclose(a, b) for a, b in zip(expected, got))
    assert unet(x).shape == (1, 3, 32, 32)
    torch.save({"format": "something else"}, tmp_path / "bad.pt")
    with pytest.raises(ValueError):
        ec.load(tmp_path / "bad.pt")


def test_band_adaptation_averages_and_rescales_the_first_kernels() -> None:
    encoder, document = tiny_document(None, 6)
    weight = document["state"][ec.FIRST_CONV]
    adapted = ec.encoder_state(document, 3)[ec.FIRST_CONV]
    assert adapted.shape == (4, 3, 3, 3) and torch.allclose(adapted, adapt_conv1(weight, 3))
    grey = torch.randn(1, 1, 16, 16)
    conv = torch.nn.functional.conv2d
    assert torch.allclose(conv(grey.repeat(1, 3, 1, 1), adapted, padding=1), conv(grey.repeat(1, 6, 1, 1), weight,
                                                                                 padding=1), atol=1e-5)
    assert torch.equal(ec.encoder_state(document, 6)[ec.FIRST_CONV], weight)
    # With a stem the channels are feature-major: each stem feature is adapted on its own.
    stem = terrain_spec(radius=(1, 2), window=2)
    _, document = tiny_document(stem, 1)
    weight = document["state"][ec.FIRST_CONV]                      # (4, 3 features x 1 band, 3, 3)
    two = ec.encoder_state(document, 2)[ec.FIRST_CONV]
    assert two.shape == (4, 6, 3, 3)
    for f in range(3):
        for b in range(2):
            assert torch.allclose(two[:, 2 * f + b], weight[:, f] / 2)
    z = terrain(24)
    unet = ec.unet_from_document(document, 2, 3).eval()
    with torch.no_grad():
        features = make_stem(stem)(z.repeat(1, 2, 1, 1))
        assert torch.allclose(conv(features, two, padding=1), conv(make_stem(stem)(z), weight, padding=1), atol=1e-5)
        assert unet(z.repeat(1, 2, 1, 1)).shape == (1, 3, 24, 24)


@pytest.mark.parametrize("kind", ["terrain", "spectral"])
def test_the_shipped_checkpoints_load_with_the_documented_keys(kind) -> None:
    path = REPO / "training" / "encoders" / f"{kind}.pt"
    if not path.exists():
        pytest.skip(f"{path} not built yet: python -m training pretrain-encoders")
    assert path.stat().st_size < 2 * 1024 * 1024
    document = ec.load(path)
    assert set(document) == set(ec.KEYS)
    assert isinstance(document["source"], str) and "\n" not in document["source"]
    assert len(document["band_names"]) == document["bands"] and document["pixel_sizes_m"]
    assert not set(document["pretrained_on"]) & set(document["held_out"])
    if kind == "terrain":
        assert document["input"] == "raw" and document["bands"] == 1 and document["stem"]["type"] == "normalized_relief"
        assert "geology/hamersley_wa/dtm_rp.tif" in document["held_out"]
        assert min(document["pixel_sizes_m"]) < 5 and max(document["pixel_sizes_m"]) > 500
    else:
        assert document["input"] == "zscore" and document["stem"] is None
        assert document["band_names"] == ["blue", "green", "red", "nir", "swir1", "swir2"]
        assert any("LT52240631988227CUB02" in p for p in document["held_out"])
        assert not any("LT52240631988227CUB02" in p or "trainingPolygons" in p for p in document["pretrained_on"])
    for bands in (document["bands"], 3):
        unet = ec.unet_from_checkpoint(path, bands, classes=4).eval()
        with torch.no_grad():
            assert unet(terrain(32).repeat(1, bands, 1, 1)).shape == (1, 4, 32, 32)


def test_a_tiny_pretraining_run_writes_a_loadable_encoder(tmp_path) -> None:
    rng = np.random.default_rng(1)
    dem = (terrain(80, seed=2)[0, 0].numpy() + rng.normal(0, 0.5, (80, 80))).astype(np.float32)
    write_raster(tmp_path / "dem.tif", dem, pixel=10.0)
    write_raster(tmp_path / "other.tif", dem[::-1].copy(), pixel=10.0)
    scene = (rng.normal(100, 20, (6, 48, 48))).astype(np.float32)
    write_raster(tmp_path / "scene.tif", scene)
    recipe = pe.Recipe("terrain", width=4, depth=1, chip=16, stride=16, scales=(1, 2), max_chips=12, eval_chips=4,
                       epochs=2, batch_size=8, stem=terrain_spec(radius=(1, 2), window=2))
    built = pe.build(recipe, tmp_path, [es.single("dem", "dem.tif")], [es.single("other", "other.tif")],
                     [("x.tif", "a reason")])
    document, report = built.document, built.report
    assert report["chips"] == 12 + 4 and len(report["epoch_losses"]) == 2
    rec = report["held_out"][0]["reconstruction"]
    assert rec["chips"] == 4 and rec["autoencoder"]["hidden_pixels"] > 0 and rec["zero"]["all_pixels"] > 0
    assert document["pretrained_on"] == ["dem.tif"] and document["held_out"] == ["other.tif", "x.tif"]
    assert document["pixel_sizes_m"] == [10.0, 20.0]
    path = ec.save(document, tmp_path / "terrain.pt")
    assert ec.unet_from_checkpoint(path, 1, 2)(torch.from_numpy(dem[None, None, :32, :32])).shape == (1, 2, 32, 32)
    again = pe.build(recipe, tmp_path, [es.single("dem", "dem.tif")], [es.single("other", "other.tif")])
    assert all(torch.equal(a, again.document["state"][k]) for k, a in document["state"].items())   # seeded
    spectral = pe.Recipe("spectral", width=4, depth=1, chip=16, stride=16, max_chips=9, eval_chips=2, epochs=1)
    built = pe.build(spectral, tmp_path, [es.stack("scene", "scene.tif", range(1, 7))], [])
    assert built.document["input"] == "zscore" and built.document["bands"] == 6 and built.report["chips"] == 9
    assert er.readme({"terrain": {**report, "size_bytes": 1000, "checkpoint": "t.pt", "command": "c"}}, "out")


def test_zscore_pool_and_patch_mask() -> None:
    image = np.arange(2 * 4 * 4, dtype=np.float32).reshape(2, 4, 4)
    image[0, 0, 0] = np.nan
    z, mean, std = es.zscore(image)
    assert np.isnan(z[0, 0, 0]) and abs(float(np.nanmean(np.where(np.isnan(z[0]), np.nan, z[1])))) < 1e-5 and len(mean) == len(std) == 2
    pooled = es.pool(image, 2)
    assert pooled.shape == (2, 2, 2) and np.isnan(pooled[0, 0, 0]) and pooled[1, 1, 1] == image[1, 2:, 2:].mean()
    keep = pe.patch_mask((3, 1, 16, 16), 0.5, 4, torch.Generator().manual_seed(0))
    assert set(keep.unique().tolist()) <= {0.0, 1.0} and 0.2 < float(1 - keep.mean()) < 0.8
    assert torch.equal(keep[:, :, ::4, ::4].repeat_interleave(4, 2).repeat_interleave(4, 3), keep)
    assert torch.equal(pe.patch_mask((1, 1, 8, 8), 0.0, 4, torch.Generator()), torch.ones(1, 1, 8, 8))


def test_goal_arms_differ_only_in_the_encoder_and_prediction_pads_at_the_edges() -> None:
    _, document = tiny_document(terrain_spec(radius=(1, 2), window=2), 1)
    arms = tg.arms(document, 1, 3, seed=5)
    a, b = arms["scratch"].state_dict(), arms["transfer"].state_dict()
    for key in a:
        if key.startswith("encoder."):
            if key.endswith("weight") and a[key].dim() == 4:
                assert not torch.equal(a[key], b[key]) and torch.equal(b[key], document["state"][key[8:]])
        else:
            assert torch.equal(a[key], b[key]), key
    ids = tg.predict(arms["transfer"], terrain(30)[None, 0].numpy()[None].reshape(1, 1, 30, 30))
    assert ids.shape == (30, 30) and ids.min() >= 1 and ids.max() <= 3
    filled = tg.fill_invalid(np.array([[[1.0, np.nan, 3.0], [np.nan, np.nan, np.nan]]], dtype=np.float32))
    assert np.isfinite(filled).all() and filled[0, 0, 1] == 2.0
    rows = [{"requested": n, "fold": f, "draw": 0, "method": m, "overall_accuracy": v}
            for n in (4, 8) for f in range(3) for m, v in (("scratch", 0.5), ("transfer", 0.6 if f else 0.4))]
    result = tg.pooled(rows, (4, 8), "overall_accuracy")
    assert (result["pairs"], result["transfer_ahead"], result["scratch_ahead"]) == (6, 4, 2)
    assert result["sign_test_p"] == pytest.approx(0.6875)
