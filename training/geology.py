"""``python -m training geology``: the shipped surface-material (geology) model, trained by transfer learning.

1. Scenes of three sensors are brought to one input (:mod:`training.sensors`: Landsat 8/9 Level-1 DN of OLI bands
   2-7, other sensors converted to it) and labelled per pixel by the cited band-ratio rules (:mod:`training.ratios`).
2. Chips are split by spatial blocks; the test blocks are held out of everything, pretraining included.
3. A convolutional autoencoder is pretrained on the unlabelled chips (no labels), its encoder seeds a U-Net, which
   is trained with the encoder frozen for a few epochs and then fine-tuned whole.
4. The exported model is scored on the test blocks through the plugin's engine (:mod:`training.geology_eval`).

Run from the repository root; ``--help`` lists the knobs.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .data import ChipSet, Split, band_stats, block_keys, block_split, class_weights, extract_chips, normalise
from .nets import ConvAutoencoder, UNet
from .ratios import CLASSES, label
from .receptive import MarginCheck, effective_margin
from .spectral import LogReflectance, log_stats, relabelled_jitter
from .sensors import SENSOR_BANDS, Calibrated, Scene, calibrate, write_raster
from .train import TrainConfig, TrainResult, seed_everything, train
from .transfer import unet_from_autoencoder

log = logging.getLogger(__name__)

DATA = "training/datasets"
SCENES = (
    Scene("landsat8_florida", f"{DATA}/landsat8_florida/LC80200392015216LGN00_B2-B7_crop.tif", "oli",
          mtl=f"{DATA}/landsat8_florida/LC80200392015216LGN00_MTL.txt"),
    Scene("sentinel2_para", f"{DATA}/sentinel2_para/S2_L2A_B02-B04_B8A_B11_B12_x10000.tif", "msi"),
)
OTHER_SENSOR = Scene("landsat5_amazon", f"{DATA}/landsat5_amazon/LT52240631988227CUB02_B1-5_7.tif", "tm",
                     mtl=f"{DATA}/landsat5_amazon_mtl/LT52240631988227CUB02_MTL.txt")
OUTPUT = "resources/models/geology_oli.onnx"
REPORTS = "training/reports/geology"
IDS = [value for value, *_ in CLASSES]


@dataclass(frozen=True)
class Recipe:
    width: int = 16
    depth: int = 3
    chip: int = 32
    stride: int = 16
    block: int = 64
    pretrain_epochs: int = 30
    epochs: int = 80
    freeze_epochs: int = 5
    patience: int = 20
    lr: float = 2e-3
    encoder_lr_factor: float = 0.1  # the unfrozen encoder's learning rate, relative to lr
    batch_size: int = 16
    max_weight: float = 10.0
    weight_power: float = 0.5     # class weights: median-frequency weights to this power, capped at max_weight
    jitter_copies: int = 2        # relabelled radiometric copies of the training chips (spectral.relabelled_jitter)
    jitter_sigma: float = 0.1     # standard deviation of the log band gains of those copies
    seed: int = 0
    threads: int = 2


@dataclass
class Prepared:
    """Calibrated scenes, the model-input rasters the engine reads, rule labels, chips and their block split."""

    scenes: list[Calibrated]
    inputs: list[str]
    labels: list[np.ndarray]
    chips: ChipSet
    split: Split
    normalization: dict[str, Any]
    log_mean: list[float]
    log_std: list[float]

    def stem(self) -> LogReflectance:
        return LogReflectance(self.normalization, self.log_mean, self.log_std)


@dataclass
class Trained:
    model: UNet
    pretrain: TrainResult
    finetune: TrainResult
    train_chips: int
    pretrain_chips: int
    margin: MarginCheck
    seconds: float


def write_inputs(scene: Calibrated, labels: np.ndarray, folder: Path) -> tuple[str, str]:
    """The scene's model input (Float32, OLI DN) and its labels (Byte) as GeoTIFFs in ``folder``."""
    image = write_raster(folder / f"{scene.scene.name}_input.tif", scene.model_input, scene, SENSOR_BANDS["oli"])
    return image, write_raster(folder / f"{scene.scene.name}_labels.tif", labels, scene, ())


def prepare(recipe: Recipe, scenes: Sequence[Scene], folder: Path) -> Prepared:
    """Calibrate and label every scene, cut chips per block, split blocks 70/15/15; the normalisation and the
    log-reflectance statistics of the stem come from the train chips."""
    calibrated = [calibrate(s) for s in scenes]
    labels = [label(c.reflectance) for c in calibrated]
    pairs = [write_inputs(c, found, folder) for c, found in zip(calibrated, labels)]
    chips = extract_chips(pairs, recipe.chip, recipe.stride, block=recipe.block)
    split = block_split(chips.origins, recipe.chip, recipe.block, (0.7, 0.15, 0.15), recipe.seed)
    for warning in split.warnings:
        log.warning(warning)
    train_images = chips.images[split.indices("train")]
    return Prepared(calibrated, [image for image, _ in pairs], labels, chips, split, band_stats(train_images).card(),
                    *log_stats(train_images))


def unlabelled_chips(prepared: Prepared, recipe: Recipe) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) images for pretraining: every chip of the inputs outside the test blocks (blocks
    without a labelled chip count as training), labels ignored."""
    chips = extract_chips([(path, None) for path in prepared.inputs], recipe.chip, recipe.stride, block=recipe.block)
    keys, _ = block_keys(chips.origins, recipe.chip, recipe.block)
    where = np.array([prepared.split.blocks.get(k, "train") for k in keys])
    return chips.images[where == "train"], chips.images[where == "validation"]


def pretrain(prepared: Prepared, recipe: Recipe) -> tuple[ConvAutoencoder, TrainResult, int]:
    """The autoencoder trained to reconstruct the unlabelled chips (normalised as the final model's card says)."""
    train_images, val_images = unlabelled_chips(prepared, recipe)
    seed_everything(recipe.seed)
    autoencoder = ConvAutoencoder(len(SENSOR_BANDS["oli"]), recipe.width, recipe.depth, stem=prepared.stem())
    config = TrainConfig(epochs=recipe.pretrain_epochs, batch_size=16, lr=1e-3, seed=recipe.seed,
                         patience=recipe.patience, normalization=prepared.normalization, threads=recipe.threads)
    result = train(autoencoder, (train_images, None), (val_images, None), config, "anomaly")
    log.info("pretrained on %d unlabelled chips: best reconstruction error %.4f at epoch %d", len(train_images),
             result.best_metric, result.best_epoch)
    return autoencoder, result, len(train_images)


def finetune_config(recipe: Recipe, normalization: dict[str, Any], weights: Sequence[float],
                    freeze_epochs: int) -> TrainConfig:
    return TrainConfig(epochs=recipe.epochs, batch_size=recipe.batch_size, lr=recipe.lr, seed=recipe.seed,
                       patience=recipe.patience, encoder_lr_factor=recipe.encoder_lr_factor,
                       class_weights=[min(w ** recipe.weight_power, recipe.max_weight) for w in weights],
                       freeze_encoder_epochs=freeze_epochs, normalization=normalization, threads=recipe.threads)


def fit(prepared: Prepared, recipe: Recipe) -> Trained:
    """Pretrain, then freeze-then-fine-tune the U-Net on the train blocks; measure its margin."""
    started = time.perf_counter()
    autoencoder, pretrained, unlabelled = pretrain(prepared, recipe)
    train_set = augmented(prepared, recipe)
    val_set = prepared.chips.subset(prepared.split.indices("validation"))
    weights = class_weights(train_set.labels, IDS, "median")
    if weights.missing:
        log.warning("classes without a training pixel (never predicted): %s", weights.missing)
    seed_everything(recipe.seed)
    model = unet_from_autoencoder(autoencoder, len(IDS))
    config = finetune_config(recipe, prepared.normalization, weights.weights, recipe.freeze_epochs)
    result = train(model, train_set, val_set, config, "segmentation")
    margin = effective_margin(model, margin_sample(prepared), model.size_multiple)
    log.info("effective margin %d px (class changes beyond it %.2g%%, probability shift %.3f)",
             margin.margin, 100 * margin.changed, margin.max_shift)
    return Trained(model, pretrained, result, len(train_set), unlabelled, margin, time.perf_counter() - started)


def augmented(prepared: Prepared, recipe: Recipe) -> ChipSet:
    """The training chips and ``jitter_copies`` relabelled radiometric copies of them."""
    chips = prepared.chips.subset(prepared.split.indices("train"))
    rng = np.random.default_rng(recipe.seed)
    sun = [prepared.scenes[int(i)].sun_elevation for i in chips.origins[:, 0]]
    images, labels = [chips.images], [chips.labels]
    for _ in range(recipe.jitter_copies):
        image, label_ = relabelled_jitter(chips.images, sun, recipe.jitter_sigma, rng)
        images.append(image)
        labels.append(label_)
    copies = recipe.jitter_copies + 1
    return ChipSet(np.concatenate(images), np.concatenate(labels), np.tile(chips.origins, (copies, 1)),
                   chips.classes, chips.bands, chips.size)


def margin_sample(prepared: Prepared, size: int = 256) -> np.ndarray:
    """A normalised (6, size, size) window from the middle of the largest scene."""
    image = max((c.model_input for c in prepared.scenes), key=lambda a: a.shape[1] * a.shape[2])
    y, x = max((image.shape[1] - size) // 2, 0), max((image.shape[2] - size) // 2, 0)
    return normalise(image[None, :, y:y + size, x:x + size], prepared.normalization)[0]
