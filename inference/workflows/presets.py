"""Sensor band presets: which raster bands feed a multispectral model, and how their values become its unit.

DeepStrata's multispectral models take the six common bands blue, green, red, NIR, SWIR1, SWIR2: Landsat 4/5 TM
and 7 ETM+ B1-B5, B7; Landsat 8/9 OLI B2-B7; Sentinel-2 MSI B02, B03, B04, B8A, B11, B12. Two units exist
(sensors/units.py): B2..B7 in OLI Level-1 DN (the bundled models) and blue..swir2 in reflectance 0..1.

``auto`` recognises the sensor (MTL, metadata, file names, band names) and the product (MTL, product metadata,
file names, data type and value levels; sensors/identify.py), and states the product's reflectance per band as
``rho = value * m + a`` (sensors/products.py); the model input is then ``value * scale + offset`` in the model's
unit, applied by the engine (RunOptions.input_scale / input_offset). Where the product cannot be told, a
scene-relative scaling stands in (sensors/relative.py) and the description says so and how to be exact. A QA_PIXEL,
BQA or SCL raster given or found beside the scene masks clouds (sensors/masks.py; RunOptions.valid_mask).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Sequence

from ..engine.card import ModelCard
from ..engine.errors import InputError
from ..engine.raster import map_bands
from .sensors import calibration, catalog
from .sensors.catalog import COMMON, Sensor
from .sensors.identify import (Identity, choose_bands, find_product, find_sensor, landsat_date, landsat_marks,
                               looks_like_reflectance, source_mtl)
from .sensors.identify import s2_offset as find_s2_offset
from .sensors.masks import MaskSource, find_mask, kind_of
from .sensors.mtl import Mtl, find_mtl, read_mtl
from .sensors.products import L2_ADD, L2_MULT, LABELS, OLI_ADD, OLI_MULT, S2_QUANTIFICATION, Radiometry, uniform
from .sensors.relative import scene_relative
from .sensors.scene import Scene, open_scene
from .sensors.units import OLI_BANDS, formula, model_unit, to_model

__all__ = ["COMMON", "OLI_ADD", "OLI_BANDS", "OLI_MULT", "PRESETS", "InputMapping", "Mtl", "expects_oli_dn", "find_mtl",
           "identify", "read_mtl", "resolve_preset"]

PRESETS: dict[str, str] = {
    "auto": "Automatic (sensor and product from the MTL, metadata, file and band names, values)",
    "landsat_l1": "Landsat Level-1 DN (MTL; without one, the OLI rescaling)",
    "landsat_l2": "Landsat Collection 2 Level-2 surface reflectance (scale factors 2.75e-5, -0.2)",
    "sentinel2_l1c": "Sentinel-2 L1C (DN = reflectance x 10000; RADIO_ADD_OFFSET -1000 from processing baseline 04.00)",
    "sentinel2_l2a": "Sentinel-2 L2A (DN = reflectance x 10000; BOA_ADD_OFFSET -1000 from processing baseline 04.00)",
    "reflectance": "Reflectance 0..1, any sensor, bands in the model's order",
    "custom": "Custom: the BANDS you pick, used as they are",
    "landsat_tm_l1": "Landsat 4/5 TM Level-1 DN (MTL; without one, typical gains)",
    "landsat_etm_l1": "Landsat 7 ETM+ Level-1 DN (MTL; without one, typical high gains)",
    "landsat_sr": "Landsat Collection 1 surface reflectance (x 10000)",
    "reflectance_x10000": "Reflectance x 10000 (TOA or surface), any sensor",
    "scene_relative": "Scene-relative (unknown product: each band's range mapped to typical reflectance)",
}
_FORCED = {"landsat_l1": "l1", "landsat_l2": "l2", "sentinel2_l1c": "l1c", "sentinel2_l2a": "l2a",
           "reflectance": "reflectance", "landsat_tm_l1": "l1", "landsat_etm_l1": "l1", "landsat_sr": "sr",
           "reflectance_x10000": "x10000"}
_PRESET_OF = {"l1": "landsat_l1", "l2": "landsat_l2", "sr": "landsat_sr", "toa": "reflectance_x10000",
              "x10000": "reflectance_x10000", "l1c": "sentinel2_l1c", "l2a": "sentinel2_l2a",
              "reflectance": "reflectance"}
_NATIVE = {"tm": (1, 2, 3, 4, 5, 7), "etm": (1, 2, 3, 4, 5, 7), "oli": (2, 3, 4, 5, 6, 7)}


@dataclass(frozen=True)
class InputMapping:
    """Raster bands (1-based) feeding each model channel, and the per-channel scale and offset to its unit."""

    bands: list[int]
    scale: list[float]
    offset: list[float]
    preset: str
    description: str  # for the log: the sensor and product assumed and the cue, the bands, the scaling
    sensor: str = ""  # "Landsat 7 ETM+"; "" when not told
    product: str = ""  # "Level-1 DN"; "scene-relative" for the fallback
    mask: MaskSource | None = None  # a QA/SCL raster to mask clouds with (write it with masks.write_valid_mask)
    assumed: bool = False  # a standard, typical or assumed value stood in for what the product did not say
    scene_relative: bool = False


def expects_oli_dn(card: ModelCard) -> bool:
    """True for models whose inputs are the six OLI bands B2-B7 in Level-1 DN (the presets apply to them)."""
    return model_unit(card) == "dn"


def identify(path: str, mtl_path: str | None = None) -> Identity:
    """The sensor and product of the scene at `path` with their cues (product None: it cannot be told)."""
    scene = open_scene(path)
    mtl = source_mtl(scene, mtl_path)
    found, cue = find_sensor(scene, mtl)
    picked = choose_bands(scene, found.family if found else None)
    if picked is None or scene.count < 6:
        return Identity(found, cue, None, "its bands do not hold the six common bands", mtl)
    product, why = find_product(scene, found, mtl, picked[0])
    return Identity(found, cue, product, why, mtl)


def _bands_error(scene: Scene, card: ModelCard, problem: str, six: str = "") -> InputError:
    return InputError(f"'{scene.name}' {problem}; the model '{card.name}' needs the six OLI bands B2-B7 ({COMMON}) or "
                      "the same bands of another sensor (Landsat 4/5/7 B1-B5, B7; Sentinel-2 B02, B03, B04, B8A, "
                      f"B11, B12){six}. Use a raster with these bands, or pick a preset and the bands (Bands) that "
                      "hold them, in that order.")


def _named_bands(scene: Scene) -> list[str]:
    return [next((k.upper() for k in sorted(keys) if re.fullmatch(r"b\d{1,2}a?", k)), "") for keys in scene.keys]


def _choose(scene: Scene, card: ModelCard, family: str | None, bands: Sequence[int] | None) -> tuple[list[int], str]:
    if scene.count == 1:
        raise InputError(f"'{scene.name}' looks like a single-band raster (e.g. a DEM), but the model '{card.name}' "
                         f"needs six multispectral bands ({COMMON}). For a DEM use Classify landforms or Detect "
                         "anomalies; for this model use a Landsat 4-9 or Sentinel-2 scene.")
    if bands:
        return map_bands(scene.ds, card, bands, scene.path), "as selected"
    if scene.count <= 4:
        raise _bands_error(scene, card, f"has {scene.count} bands")
    picked = choose_bands(scene, family)
    names = _named_bands(scene)
    numbered = [re.sub(r"^B0*", "", n) for n in names] == [str(i) for i in range(1, scene.count + 1)]
    if picked and picked[1] != "matched by band name" and all(names) and not numbered:
        picked = None  # band names (B05, B8A ...) that say the layout's bands are not there
    if picked is None:
        if all(names):
            raise _bands_error(scene, card, f"holds the bands {', '.join(names)}, which lack some of the six")
        label = {"tm": "a Landsat 4/5 TM", "etm": "a Landsat 7 ETM+", "oli": "a Landsat 8/9",
                 "msi": "a Sentinel-2"}.get(family or "", "a standard")
        raise _bands_error(scene, card, f"has {scene.count} bands, which is not {label} band layout")
    return picked


def _complete(pairs: list[tuple[float, float] | None]) -> list[tuple[float, float]] | None:
    """The pairs when every band has one, else None."""
    found = [p for p in pairs if p is not None]
    return found if len(found) == len(pairs) else None


def _landsat_l1(scene: Scene, found: Sensor, mtl: Mtl | None) -> Radiometry:
    native = _NATIVE[found.family]
    if mtl:
        pairs = _complete([mtl.rescaling(b, "l1") for b in native])
        if pairs:
            note = "; the MTL says Level-2" if mtl.level == "l2" else ""
            return Radiometry([p[0] for p in pairs], [p[1] for p in pairs], f"rescaled with {mtl.name}{note}",
                              sun_corrected=False, sun_elevation=mtl.sun_elevation)
        radiance = _complete([mtl.radiance(b) for b in native])
        elevation = mtl.sun_elevation
        if found.family in ("tm", "etm") and radiance and elevation:
            key = calibration.esun_key(found.satellite or mtl.satellite, found.label.split()[-1])
            d = calibration.earth_sun_distance(mtl.date)
            pairs2 = [calibration.radiance_to_reflectance(g, b, e, d, elevation)
                      for (g, b), e in zip(radiance, calibration.ESUN[key])]
            return Radiometry([p[0] for p in pairs2], [p[1] for p in pairs2],
                              f"radiance rescaling of {mtl.name} to TOA reflectance with ESUN ({key}), sun "
                              f"elevation {elevation:g}° and Earth-Sun distance {d:.4f} AU (Chander et al. 2009)")
    if found.family in ("tm", "etm"):
        key = calibration.esun_key(found.satellite, "ETM+" if found.family == "etm" else "TM")
        date = landsat_date(scene)
        pairs3 = [calibration.radiance_to_reflectance(*calibration.typical_radiance(key, i, date), e,
                                                      calibration.earth_sun_distance(date),
                                                      calibration.TYPICAL_SUN_ELEVATION)
                  for i, e in enumerate(calibration.ESUN[key])]
        gains = "high gains" if key == "ETM+" else "gains"
        return Radiometry([p[0] for p in pairs3], [p[1] for p in pairs3],
                          f"typical {key} {gains} of Chander et al. (2009), sun elevation 45° and "
                          f"{'the Earth-Sun distance of ' + date.isoformat() if date else 'Earth-Sun distance 1'} "
                          "assumed (an approximation: no MTL found; give the scene's MTL for exact values)",
                          assumed=True)
    why = "the MTL lacks it" if mtl else "no MTL found"
    return uniform(OLI_MULT, OLI_ADD, f"standard rescaling MULT {OLI_MULT:g}, ADD {OLI_ADD:g} assumed ({why})",
                   sun_corrected=False, sun_elevation=mtl.sun_elevation if mtl else None, assumed=True)


def _radiometry(scene: Scene, product: str, found: Sensor | None, mtl: Mtl | None, bands: list[int],
                s2: float | None) -> Radiometry:
    if product == "l1":
        return _landsat_l1(scene, found if found and found.landsat else catalog.sensor("oli"), mtl)
    if product == "l2":
        native = _NATIVE[found.family if found and found.landsat else "oli"]
        l2 = _complete([mtl.rescaling(b, "l2") for b in native]) if mtl else None
        if l2 and mtl:
            return Radiometry([p[0] for p in l2], [p[1] for p in l2], f"scale factors of {mtl.name}")
        why = "the MTL lacks them" if mtl else "no MTL found"
        return uniform(L2_MULT, L2_ADD, f"standard scale factors {L2_MULT:g}, {L2_ADD:g} assumed ({why})",
                       assumed=True)
    if product in ("sr", "toa", "x10000"):
        return uniform(1e-4, 0.0, "value / 10000")
    if product in ("l1c", "l2a") and looks_like_reflectance(scene, bands):
        return uniform(1.0, 0.0, "used as reflectance")
    if product in ("l1c", "l2a"):
        offset, how, assumed = find_s2_offset(scene, s2, bands)
        q = next((float(scene.metadata[k]) for k in ("BOA_QUANTIFICATION_VALUE", "QUANTIFICATION_VALUE")
                  if (scene.metadata.get(k, "") or "x").replace(".", "", 1).isdigit() and float(scene.metadata[k]) > 0),
                 S2_QUANTIFICATION)
        return uniform(1 / q, offset / q, f"(DN + offset) / {q:g} with offset {offset:g} {how}", assumed=assumed)
    if product == "reflectance":
        return uniform(1.0, 0.0, "used as reflectance")
    return uniform(1.0, 0.0, "values used as they are")


def _label(found: Sensor | None, product: str, scene: Scene) -> str:
    if product in ("l1c", "l2a"):
        return f"{found.label if found else 'Sentinel-2 MSI'} {product.upper()}"
    if product == "reflectance":
        return f"{found.label + ' ' if found else ''}reflectance 0..1"
    if product in ("l1", "l2", "sr"):
        who = found.label if found and found.landsat else ("Landsat" if landsat_marks(scene) or product != "l1"
                                                           else "Landsat 8/9 OLI")
        return f"{who} {LABELS[product]}"
    return f"{found.label + ' ' if found else ''}{LABELS[product]}"


def resolve_preset(path: str, card: ModelCard, preset: str = "auto", bands: Sequence[int] | None = None,
                   mtl_path: str | None = None, s2_offset: float | None = None,
                   mask_path: str | None = None) -> InputMapping:
    """Raster bands and per-band scale/offset for `card`'s input (see the module docstring)."""
    if preset not in PRESETS:
        raise InputError(f"Unknown band preset '{preset}'. Choose one of: {', '.join(PRESETS)}.")
    scene = open_scene(path)
    unit = model_unit(card)
    if unit is None:
        if preset not in ("auto", "custom"):
            raise InputError(f"The '{PRESETS[preset]}' preset converts to Landsat 8/9 OLI Level-1 DN or "
                             f"reflectance, but the model '{card.name}' takes "
                             f"{', '.join(b.name for b in card.input.bands)}. Use the Automatic or Custom preset "
                             "for this model.")
        chosen = map_bands(scene.ds, card, bands, path)
        n = len(chosen)
        return InputMapping(chosen, [1.0] * n, [0.0] * n, preset,
                            f"{_bands(chosen)} of '{scene.name}' feed{'s' if n == 1 else ''} the model's "
                            f"{', '.join(b.name for b in card.input.bands)}, used as "
                            f"{'it is' if n == 1 else 'they are'}.")
    mtl = source_mtl(scene, mtl_path) if preset in ("auto", "landsat_l1", "landsat_l2", "landsat_tm_l1",
                                                    "landsat_etm_l1") else None
    found, sensor_cue = find_sensor(scene, mtl)
    if preset.startswith("sentinel2") and (not found or found.family != "msi"):
        found, sensor_cue = catalog.sensor("msi"), "as chosen"
    elif preset in ("landsat_tm_l1", "landsat_etm_l1"):
        family = preset.split("_")[1]
        if not found or found.family != family:
            found, sensor_cue = catalog.sensor(family), "as chosen"
    elif preset in ("landsat_l1", "landsat_l2", "landsat_sr") and found and not found.landsat:
        found, sensor_cue = None, ""
    chosen, how = _choose(scene, card, found.family if found else None, bands)
    if preset == "custom":
        product, cue = "custom", "as chosen"
    elif preset == "scene_relative":
        product, cue = "relative", "as chosen"
    elif preset in _FORCED:
        product, cue = _FORCED[preset], "as chosen"
    else:
        found_product, cue = find_product(scene, found, mtl, chosen)
        product = found_product or "relative"
    if product == "custom":
        scale, offset, assumed = [1.0] * 6, [0.0] * 6, False
        text = ("used as they are (the values must already be OLI Level-1 DN)" if unit == "dn" else
                "used as they are (the values must already be reflectance 0..1)")
    else:
        if product == "relative":
            rad = scene_relative(scene, chosen, cue if preset == "auto" else "scene-relative preset chosen")
            what = f"{found.label + ' ' if found else ''}scene-relative"
        else:
            rad, what = _radiometry(scene, product, found, mtl, chosen, s2_offset), _label(found, product, scene)
        scale, offset, note = to_model(rad, unit)
        assumed = rad.assumed
        surface = product in ("l2", "sr") and unit == "dn"
        cues = "; ".join(c for c in ("" if cue.startswith(sensor_cue) else sensor_cue, cue)
                         if c and c != "as chosen")
        text = (f"{what}{', ' + cues if cues else ''}: {rad.text}{note}"
                + (" (an approximation: the model was trained on top-of-atmosphere values)" if surface else ""))
    mask = _mask(scene, mask_path, mtl)
    channels = "B2-B7" if unit == "dn" else "blue-SWIR2"
    masked = f" Clouds masked with {mask.description}." if mask else ""
    resolved = preset if preset != "auto" else _preset_for(product, found)
    return InputMapping(chosen, scale, offset, resolved,
                        f"{_bands(chosen)} of '{scene.name}' ({how}) feed the model's {channels} ({COMMON}); "
                        f"{text}: {formula(unit, scale, offset)}.{masked}",
                        found.label if found else "", LABELS.get(product, product), mask, assumed,
                        product == "relative")


def _preset_for(product: str, found: Sensor | None) -> str:
    if product == "l1" and found and found.family in ("tm", "etm"):
        return f"landsat_{found.family}_l1"
    return _PRESET_OF.get(product, "scene_relative")


def _mask(scene: Scene, mask_path: str | None, mtl: Mtl | None) -> MaskSource | None:
    pre = bool(mtl and mtl.collection is None and mtl.satellite in (8, 9))
    if mask_path:
        if not os.path.isfile(mask_path):
            raise InputError(f"Mask file not found: '{mask_path}'. Check the path, or leave it empty.")
        return MaskSource(mask_path, kind_of(mask_path, pre), "given")
    if scene.path.startswith("/vsi"):
        return None
    return find_mask(scene.path, scene.files, pre)


def _bands(chosen: Sequence[int]) -> str:
    return f"Band {chosen[0]}" if len(chosen) == 1 else "Bands " + ", ".join(map(str, chosen))

