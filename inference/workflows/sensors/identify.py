"""Which sensor and product a scene is: from its MTL, metadata, file names (its own and a VRT stack's sources),
band names, band count, data type and value levels. Each answer carries its cue, for the log."""
from __future__ import annotations

import datetime
import os
import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ...engine.errors import InputError
from . import catalog
from .catalog import Sensor
from .mtl import Mtl, find_mtl, is_number, read_mtl
from .scene import Scene

_LEVEL_ID = re.compile(r"^L[CEOT]0[4-9]_(L1|L2)", re.IGNORECASE)
_S2_LEVEL = re.compile(r"(?:MSI|S2MSI|^|[^A-Z0-9])(L1C|L2A|1C|2A)(?=[^A-Z0-9]|$)")
_S2_DATE = re.compile(r"(?:^|_)(20\d{6})T\d{6}")
# The darkest percent of top-of-atmosphere reflectance keeps the atmosphere's path reflectance: at least about
# this much in B02, B03, B04, B05 (Rayleigh and aerosol scattering); surface reflectance falls well below it.
_TOA_FLOOR = {"b01": 0.08, "b02": 0.05, "b2": 0.05, "b03": 0.035, "b3": 0.035, "b04": 0.025, "b4": 0.025,
              "b05": 0.025, "b5": 0.025}
BASELINE_04_DATE = datetime.date(2022, 1, 25)


@dataclass(frozen=True)
class Identity:
    sensor: Sensor | None
    sensor_cue: str  # "the MTL LT05_..._MTL.txt", "the file name 'LC08_...'", "" when unknown
    product: str | None  # a key of products.LABELS; None: unknown (scene-relative)
    product_cue: str
    mtl: Mtl | None


def source_mtl(scene: Scene, mtl_path: str | None) -> Mtl | None:
    if mtl_path:
        if not os.path.isfile(mtl_path):
            raise InputError(f"MTL file not found: '{mtl_path}'. Check the path, or leave it empty.")
        return read_mtl(mtl_path)
    found = find_mtl(scene.path, scene.files) if not scene.path.startswith("/vsi") else None
    if found:
        return read_mtl(found)
    if any(k.startswith(("REFLECTANCE_MULT_BAND_", "RADIANCE_MULT_BAND_")) or k == "SPACECRAFT_ID"
           for k in scene.metadata):
        return Mtl(f"the metadata of '{scene.name}'", {"": dict(scene.metadata)})
    return None


def find_sensor(scene: Scene, mtl: Mtl | None) -> tuple[Sensor | None, str]:
    if mtl:
        found = catalog.from_mtl(mtl)
        if found:
            return found, f"from the MTL {mtl.name}"
    meta = catalog.from_metadata(scene)
    if meta:
        return meta[0], f"from {meta[1]}"
    named = catalog.from_names(scene.names)
    if named:
        return named[0], f"from the file name '{named[1]}'"
    bands = catalog.from_band_names(scene)
    if bands:
        return bands[0], f"from {bands[1]}"
    return None, ""


def landsat_marks(scene: Scene) -> bool:
    """SR_Bn band names or a Landsat product id: a Landsat scene of a sensor not told."""
    return any(k.startswith("srb") for keys in scene.keys for k in keys) or any(
        _LEVEL_ID.match(n) for n in scene.names)


def choose_bands(scene: Scene, family: str | None) -> tuple[list[int], str] | None:
    """The six bands by name, else by the sensor's layout for the band count; None if neither fits."""
    if any(scene.keys):
        tables = [catalog.WORDS] + ([catalog.NAMES[family]] if family else
                                    [catalog.NAMES["msi"], catalog.NAMES["oli"]])
        for table in tables:
            found = [next((i + 1 for alias in aliases for i, k in enumerate(scene.keys) if alias in k), 0)
                     for aliases in table]
            if all(found):
                return found, "matched by band name"
    layouts = catalog.LAYOUTS[family] if family else {**catalog.LAYOUTS["msi"], **catalog.LAYOUTS["oli"]}
    if scene.count not in layouts:
        return None
    chosen, how = layouts[scene.count]
    if family == "etm" and scene.count == 8 and not _thermal_pair(scene):
        chosen, how = catalog.ETM_WITH_PAN
    return list(chosen), f"by {how}"


def _thermal_pair(scene: Scene) -> bool:
    """Bands 6 and 7 of an 8-band ETM+ stack are the two gains of thermal B6 when they move together."""
    levels = scene.percentiles([6, 7], (10, 50, 90))
    spread = np.abs(levels[0] - levels[1]).max()
    return bool(np.isfinite(spread) and spread <= 0.25 * max(1.0, float(np.ptp(levels[0]))) + 20)


def looks_like_reflectance(scene: Scene, bands: Sequence[int]) -> bool:
    """Float values mostly within [-0.2, 1.5] (the 2nd and 98th percentiles of every band)."""
    if scene.integer_type:
        return False
    levels = scene.percentiles(bands, (2, 98))
    return bool(np.isfinite(levels).all() and levels.min() >= -0.2 and levels.max() <= 1.5)


def _s2_level(scene: Scene, bands: Sequence[int], scale: float) -> tuple[str | None, str]:
    marks = scene.metadata.get("PRODUCT_TYPE", "") + " " + scene.metadata.get("PROCESSING_LEVEL", "")
    for text, where in [(marks, "its metadata")] + [(n, f"the file name '{n}'") for n in scene.names]:
        match = _S2_LEVEL.search(os.path.splitext(text.upper())[0].replace("LEVEL-", "L"))
        if match:
            return ("l2a" if "2A" in match.group(1) else "l1c"), f"from {where}"
    first = bands[0]
    floor = next((_TOA_FLOOR[k] for k in sorted(scene.keys[first - 1]) if k in _TOA_FLOOR), None)
    if floor is None and not any(scene.keys):
        floor = _TOA_FLOOR["b02"]  # a stack without names: its first band is blue
    if floor is None:
        return None, ""
    dark = float(scene.percentiles([first], (1,))[0, 0]) / scale
    level = "l1c" if dark >= floor else "l2a"
    what = "top-of-atmosphere (L1C)" if level == "l1c" else "surface (L2A)"
    return level, (f"judged from its darkest pixels: 1 % of band {first} below reflectance {dark:.3f}, "
                   f"{'above' if level == 'l1c' else 'below'} the {floor:g} that haze leaves at the top of "
                   f"the atmosphere, so {what} reflectance")


_LANDSAT_DATE = re.compile(r"^L[CEOT]0[4-9]_L\w{3}_\d{6}_(\d{8})_|^L[CEOT][4-9]\d{6}(\d{4})(\d{3})")


def landsat_date(scene: Scene) -> datetime.date | None:
    """The acquisition date a Landsat product id tells (LT05_L1TP_PPPRRR_YYYYMMDD_..., LT5PPPRRRYYYYDDD...)."""
    for name in scene.names:
        match = _LANDSAT_DATE.match(name.upper())
        if match and match.group(1):
            text = match.group(1)
            return datetime.date(int(text[:4]), int(text[4:6]), int(text[6:]))
        if match:
            return datetime.date(int(match.group(2)), 1, 1) + datetime.timedelta(days=int(match.group(3)) - 1)
    return None


def s2_offset(scene: Scene, given: float | None, bands: Sequence[int]) -> tuple[float, str, bool]:
    """The Sentinel-2 BOA/RADIO_ADD_OFFSET, how it is known, and whether it was assumed."""
    if given is not None:
        return float(given), "(as given)", False
    for key, value in scene.metadata.items():
        if ("BOA_ADD_OFFSET" in key or "RADIO_ADD_OFFSET" in key) and is_number(value):
            return float(value), f"({key})", False
    baseline = scene.metadata.get("PROCESSING_BASELINE")
    where = "in the metadata"
    if not (baseline and is_number(baseline)):
        match = next((m for m in (re.search(r"_N(\d{4})(?=[_.]|$)", n.upper()) for n in scene.names) if m), None)
        baseline, where = (f"{int(match.group(1)) / 100:05.2f}", "in the file name") if match else (None, "")
    if baseline is not None:
        return (-1000.0 if float(baseline) >= 4.0 else 0.0), f"(processing baseline {baseline} {where})", False
    low = float(np.nanmin(scene.percentiles(bands, (0.1,))))
    if low < 900:
        return 0.0, (f"(values down to {low:g} occur, impossible with the -1000 offset of processing baseline "
                     "04.00 and later)"), False
    date = next((m.group(1) for m in (_S2_DATE.search(n.upper()) for n in scene.names) if m), None)
    if date and datetime.date(int(date[:4]), int(date[4:6]), int(date[6:])) >= BASELINE_04_DATE:
        return -1000.0, (f"assumed from the acquisition date {date} (processing baseline 04.00 or later; if the "
                         "product is older, set the offset to 0)"), True
    return 0.0, ("assumed (no processing baseline in the metadata; products of baseline 04.00 or later, from "
                 "January 2022, need -1000: set the offset)"), True


def find_product(scene: Scene, sensor: Sensor | None, mtl: Mtl | None, bands: list[int]) -> tuple[str | None, str]:
    """The product key (see products.LABELS) and its cue; (None, why not) when it cannot be told."""
    if sensor and sensor.family == "msi":
        floats = looks_like_reflectance(scene, bands)
        level, cue = _s2_level(scene, bands, 1.0 if floats else 10000.0)
        if floats:
            return (level, f"{cue}, float values 0..1") if level else ("reflectance", "float values 0..1")
        return (level, cue) if level else ("l1c", "L1C assumed (no product level in the name or metadata)")
    if looks_like_reflectance(scene, bands):
        return "reflectance", "float values 0..1"
    landsat = bool(sensor and sensor.landsat) or landsat_marks(scene) or mtl is not None
    if mtl and landsat:
        return ("l2" if mtl.level == "l2" else "l1"), f"from the MTL {mtl.name}"
    if landsat:
        match = next((m for m in (_LEVEL_ID.match(n) for n in scene.names) if m), None)
        if match:
            return match.group(1).lower(), f"from the file name '{match.string}'"
        if any(k.startswith("srb") for keys in scene.keys for k in keys):
            signed = scene.type_name.startswith("Int")
            return ("sr" if signed else "l2"), (f"from its SR_Bn band names and {scene.type_name} values")
    levels = scene.percentiles(bands)
    top, low, median = float(np.nanmax(levels[:, 5])), float(np.nanmin(levels[:, 0])), levels[:, 3]
    whole = scene.integral(bands)
    if whole and top <= 255 and low >= 0:
        if sensor and sensor.family in ("tm", "etm"):
            return "l1", f"8-bit values 0-255 {'' if scene.type_name == 'Byte' else f'({scene.type_name}) '}" \
                         "without an MTL"
        return None, "8-bit values of an unknown sensor, no MTL"
    if whole and top <= 16000 and float(np.nanmin(median)) < 4000:
        dark = float(scene.percentiles(bands[:1], (1,))[0, 0])  # blue: haze keeps TOA above about 0.05
        kind = "sr" if (low < 0 or dark < 400) else "toa"
        if kind == "sr" and not landsat:
            kind = "x10000"
        why = "negative values" if low < 0 else f"the darkest blue pixels at {dark:g}"
        return kind, f"{scene.type_name} values up to {top:.0f} with {why}"
    what = {"Byte": "8-bit", "UInt16": "16-bit", "Int16": "16-bit", "UInt32": "32-bit integer",
            "Int32": "32-bit integer"}.get(scene.type_name, "floating-point (not reflectance 0..1)")
    names = "band names that do not tell the product" if any(scene.keys) else "no band names"
    return None, f"{what} values up to {top:g}, no MTL, {names}"
