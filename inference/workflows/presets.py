"""Sensor band presets: which raster bands feed a multispectral model, and how their values become its unit.

DeepStrata's multispectral models (resources/models/geology_oli.onnx, anomaly_multispectral.onnx) take six
channels B2-B7 in unit "DN": Landsat 8/9 OLI Level-1 digital numbers, ``DN = (rho' - ADD) / MULT`` with the fixed
OLI rescaling ``MULT = 2e-5``, ``ADD = -0.1``, where ``rho'`` is TOA reflectance without the sun-angle correction.
The common bands blue, green, red, NIR, SWIR1, SWIR2 are OLI B2-B7 and Sentinel-2 MSI B02, B03, B04, B8A, B11, B12.

Every preset states the reflectance of a raw value ``v`` as ``rho = v * m + a``, and the model input is
``DN_oli = (rho - ADD) / MULT = v * (m / MULT) + (a - ADD) / MULT``, i.e. per band ``scale = m / 2e-5`` and
``offset = (a + 0.1) / 2e-5``, applied by the engine (RunOptions.input_scale / input_offset):

- ``landsat_l1``: ``m, a`` = REFLECTANCE_MULT_BAND_n / REFLECTANCE_ADD_BAND_n of the MTL (the scene's ``*_MTL.txt``
  or the raster's own metadata); without them the standard 2e-5 / -0.1, so scale 1, offset 0.
- ``landsat_l2``: Collection 2 surface reflectance, ``m = 2.75e-5, a = -0.2`` (DN 10000 -> 0.075 -> 8750). Surface
  reflectance is sun- and atmosphere-corrected: an approximation of the TOA values the model was trained on.
- ``sentinel2_l1c`` / ``sentinel2_l2a``: ``rho = (v + o) / 10000``, ``o`` = the BOA/RADIO_ADD_OFFSET (-1000 from
  processing baseline 04.00, January 2022; 0 before), so ``scale = 5``, ``offset = 5 o + 5000``
  (DN 1500, o = -1000 -> 0.05 -> 7500). Sentinel-2 reflectance is sun-corrected, used as is (as in training).
- ``reflectance``: ``m = 1, a = 0`` (scale 50000, offset 5000); ``custom``: the values as they are.

``auto`` picks: reflectance for float rasters whose (decimated) values lie mostly within [-0.2, 1.5]; Landsat
Level-1 or Level-2 from an MTL beside the raster, the file name (LC08_L2SP_...) or SR_Bn band names; Sentinel-2
from band names (B8A, B02...), metadata (SPACECRAFT_NAME, PRODUCT_TYPE) or the file name (MSIL2A). Bands: as
given, else by band name, else by the sensor's standard band order for the raster's band count.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Sequence

from osgeo import gdal

from ..engine.card import ModelCard
from ..engine.errors import InputError
from ..engine.raster import map_bands, open_raster
from .inspect import decimated

gdal.UseExceptions()

OLI_MULT, OLI_ADD = 2.0e-5, -0.1
L2_MULT, L2_ADD = 2.75e-5, -0.2
S2_QUANTIFICATION, S2_OFFSET = 10000.0, -1000.0
OLI_BANDS = ("B2", "B3", "B4", "B5", "B6", "B7")
COMMON = "blue, green, red, NIR, SWIR1, SWIR2"
PRESETS: dict[str, str] = {
    "auto": "Automatic (from band names / MTL / metadata)",
    "landsat_l1": "Landsat 8/9 OLI Level-1 DN (MTL)",
    "landsat_l2": "Landsat 8/9 OLI Level-2 surface reflectance (Collection 2 scale factors)",
    "sentinel2_l1c": "Sentinel-2 L1C (DN = reflectance x 10000; RADIO_ADD_OFFSET -1000 from processing baseline 04.00)",
    "sentinel2_l2a": "Sentinel-2 L2A (DN = reflectance x 10000; BOA_ADD_OFFSET -1000 from processing baseline 04.00)",
    "reflectance": "Reflectance 0..1, any sensor, bands in the model's order",
    "custom": "Custom: the BANDS you pick, used as they are",
}
_FAMILY = {p: p.split("_")[0] for p in PRESETS if p.startswith(("landsat", "sentinel2"))}
_WORDS = (("blue",), ("green",), ("red",), ("nir08", "nirnarrow", "nir"), ("swir16", "swir1"), ("swir22", "swir2"))
_NAMES = {"landsat": (("b2",), ("b3",), ("b4",), ("b5",), ("b6",), ("b7",)),
          "sentinel2": (("b02", "b2"), ("b03", "b3"), ("b04", "b4"), ("b8a", "b08", "b8"), ("b11",), ("b12",))}
_S2_NAME = re.compile(r"^b(0\d|8a|12)$")
_LANDSAT_ID = re.compile(r"^L[CO]0[89]_(L1|L2)", re.IGNORECASE)
_LAYOUTS: dict[str, dict[int, tuple[tuple[int, ...], str]]] = {
    "landsat": {6: ((1, 2, 3, 4, 5, 6), "the six bands taken as B2-B7 in order"),
                7: ((2, 3, 4, 5, 6, 7), "the 7 bands taken as Landsat 8/9 B1-B7"),
                **{n: ((2, 3, 4, 5, 6, 7), f"the standard Landsat 8/9 order B1-B{n}") for n in range(8, 12)}},
    "sentinel2": {6: ((1, 2, 3, 4, 5, 6), "the six bands taken as B02, B03, B04, B8A, B11, B12 in order"),
                  10: ((1, 2, 3, 8, 9, 10), "the 10-band Sentinel-2 order B02-B08, B8A, B11, B12"),
                  12: ((2, 3, 4, 9, 11, 12), "the 12-band Sentinel-2 order B01-B12 without B10"),
                  13: ((2, 3, 4, 9, 12, 13), "the 13-band Sentinel-2 order B01-B12 with B10")},
}


@dataclass(frozen=True)
class InputMapping:
    """Raster bands (1-based) feeding each model channel, and the per-channel scale and offset to its unit."""

    bands: list[int]
    scale: list[float]
    offset: list[float]
    preset: str
    description: str  # one sentence for the log: which bands went where, how they were scaled


@dataclass(frozen=True)
class Mtl:
    """A Landsat MTL file (or a raster's metadata holding its keys): ``KEY = VALUE`` pairs per innermost group."""

    source: str
    groups: dict[str, dict[str, str]]

    def get(self, key: str, *groups: str) -> str | None:
        """The value of `key` in the first of `groups` that has it, else its first occurrence anywhere."""
        ordered = [self.groups.get(g, {}) for g in groups] + list(self.groups.values())
        return next((values[key] for values in ordered if key in values), None)

    @property
    def level(self) -> str | None:
        """"l1" or "l2" from PROCESSING_LEVEL (Collection 2) or DATA_TYPE (Collection 1); None if neither says."""
        text = (self.get("PROCESSING_LEVEL", "PRODUCT_CONTENTS") or self.get("DATA_TYPE") or "").upper()
        return "l2" if text.startswith("L2") else "l1" if text.startswith(("L1", "LEVEL1")) else None

    def rescaling(self, band: int, level: str) -> tuple[float, float] | None:
        """(REFLECTANCE_MULT_BAND_n, REFLECTANCE_ADD_BAND_n) of `level`'s group, None where the MTL lacks them."""
        if level == "l2":  # only the Level-2 group: elsewhere the same keys hold the Level-1 rescaling
            group = self.groups.get("LEVEL2_SURFACE_REFLECTANCE_PARAMETERS", {})
            mult, add = group.get(f"REFLECTANCE_MULT_BAND_{band}"), group.get(f"REFLECTANCE_ADD_BAND_{band}")
        else:
            mult, add = (self.get(f"REFLECTANCE_{k}_BAND_{band}", "LEVEL1_RADIOMETRIC_RESCALING",
                                  "RADIOMETRIC_RESCALING") for k in ("MULT", "ADD"))
        return (float(mult), float(add)) if mult and add and _is_number(mult) and _is_number(add) else None


def read_mtl(path: str) -> Mtl:
    """Parse a Landsat ``*_MTL.txt``; InputError if it is missing or not an MTL."""
    try:
        with open(path, "rb") as handle:
            text = handle.read(1 << 20).replace(b"\x00", b"").decode("ascii", errors="replace")
    except OSError as exc:
        raise InputError(f"Cannot read the MTL file '{path}' ({exc.strerror}). Check the path.") from exc
    groups: dict[str, dict[str, str]] = {}
    stack = [""]
    for line in text.splitlines():
        key, sep, value = (part.strip() for part in line.partition("="))
        if not sep:
            continue
        value = value.strip('"')
        if key == "GROUP":
            stack.append(value)
        elif key == "END_GROUP":
            stack = stack[:-1] or [""]
        else:
            groups.setdefault(stack[-1], {})[key] = value
    if not any(k.startswith("REFLECTANCE_MULT_BAND_") for g in groups.values() for k in g) \
            and not {"LANDSAT_METADATA_FILE", "L1_METADATA_FILE"} & set(groups):
        raise InputError(f"'{os.path.basename(path)}' is not a Landsat MTL file (no REFLECTANCE_MULT_BAND_n). "
                         "Give the scene's *_MTL.txt, or leave the MTL empty to assume the standard rescaling.")
    return Mtl(path, groups)


def find_mtl(path: str) -> str | None:
    """A ``*_MTL.txt`` beside the raster whose scene id (sensor, level, path/row, date) starts the raster's name."""
    folder = os.path.dirname(os.path.abspath(path))
    stem = os.path.basename(path).upper()
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return None
    for name in names:
        if name.upper().endswith("_MTL.TXT"):
            scene = name[:-8].upper()
            if stem.startswith(scene) or (scene.count("_") >= 3 and stem.split("_")[:4] == scene.split("_")[:4]):
                return os.path.join(folder, name)
    return None


def expects_oli_dn(card: ModelCard) -> bool:
    """True for models whose inputs are the six OLI bands B2-B7 in Level-1 DN (the presets apply to them)."""
    bands = card.input.bands
    return tuple(b.name.upper() for b in bands) == OLI_BANDS and all(b.unit.upper() == "DN" for b in bands)


def _keys(description: str) -> set[str]:
    """Normalised forms of a band description: 'SR_B2' -> b2, 'Band 2' -> b2, 'B4, central wavelength...' -> b4."""
    keys = set()
    for part in (description, description.split(",")[0], description.split("(")[0]):
        compact = re.sub(r"[^a-z0-9]", "", part.lower())
        keys.add(compact)
        keys.add(re.sub(r"^(sr|toa|boa|band)(?=b?\d)", "", compact))
    keys.update("b" + k if k[:1].isdigit() else k for k in list(keys))
    return keys - {""}


def _by_names(keys: list[set[str]], table: Sequence[tuple[str, ...]]) -> list[int] | None:
    """1-based bands matching each entry of `table` (aliases in order of preference); None unless all match."""
    found = [next((i + 1 for alias in aliases for i, k in enumerate(keys) if alias in k), 0) for aliases in table]
    return found if all(found) else None


@dataclass
class _Raster:
    path: str
    name: str
    ds: gdal.Dataset
    count: int
    type_name: str  # GDAL's name of band 1's data type
    keys: list[set[str]]  # per band, normalised forms of its description
    metadata: dict[str, str]  # the dataset's, then the bands' metadata, keys in upper case

    def sentinel2(self) -> bool:
        marks = (self.metadata.get("SPACECRAFT_NAME", "") + self.metadata.get("PRODUCT_TYPE", "")).upper()
        return any(_S2_NAME.match(k) for keys in self.keys for k in keys) or "SENTINEL-2" in marks \
            or "S2MSI" in marks or "MSIL1C" in self.name.upper() or "MSIL2A" in self.name.upper()

    def landsat_level(self) -> str | None:
        """Level told by the file name (LC08_L2SP_...) or SR_Bn band names; None if neither does."""
        match = _LANDSAT_ID.match(self.name)
        if match:
            return match.group(1).lower()
        return "l2" if any(k.startswith("srb") for keys in self.keys for k in keys) else None


def _open(path: str) -> _Raster:
    ds = open_raster(path)
    keys = [_keys(ds.GetRasterBand(i).GetDescription().strip()) for i in range(1, ds.RasterCount + 1)]
    metadata: dict[str, str] = {}
    for item in [ds] + [ds.GetRasterBand(i) for i in range(1, ds.RasterCount + 1)]:
        for key, value in (item.GetMetadata() or {}).items():
            metadata.setdefault(str(key).upper(), str(value))
    return _Raster(path, os.path.basename(path), ds, ds.RasterCount,
                   str(gdal.GetDataTypeName(ds.GetRasterBand(1).DataType)), keys, metadata)


def _bands_error(r: _Raster, card: ModelCard, problem: str) -> InputError:
    return InputError(f"'{r.name}' {problem}; the model '{card.name}' needs the six OLI bands B2-B7 ({COMMON}) or "
                      "the same bands of another sensor (Sentinel-2 B02, B03, B04, B8A, B11, B12). Use a raster "
                      "with these bands, or pick a preset and the bands (Bands) that hold them, in that order.")


def _choose_bands(r: _Raster, card: ModelCard, family: str | None,
                  bands: Sequence[int] | None) -> tuple[list[int], str]:
    """Raster bands feeding B2-B7, and how they were chosen."""
    if r.count == 1:
        raise InputError(f"'{r.name}' looks like a single-band raster (e.g. a DEM), but the model '{card.name}' "
                         f"needs six multispectral bands (OLI B2-B7: {COMMON}). For a DEM use Classify landforms "
                         "or Detect anomalies; for this model use a Landsat 8/9 or Sentinel-2 scene.")
    if bands:  # the engine's checks: six bands, each in the raster
        return map_bands(r.ds, card, bands, r.path), "as selected"
    if r.count <= 4:
        raise _bands_error(r, card, f"has {r.count} bands")
    if any(r.keys):
        named = _by_names(r.keys, _WORDS) or _by_names(r.keys, _NAMES[family or (
            "sentinel2" if r.sentinel2() else "landsat")])
        if named:
            return named, "matched by band name"
    layouts = _LAYOUTS[family] if family else {**_LAYOUTS["sentinel2"], **_LAYOUTS["landsat"]}
    if r.count not in layouts:
        sensor = {"landsat": "a Landsat 8/9", "sentinel2": "a Sentinel-2"}.get(family or "", "a standard")
        raise _bands_error(r, card, f"has {r.count} bands, which is not {sensor} band layout")
    chosen_layout, how = layouts[r.count]
    return list(chosen_layout), f"by {how}"


def _looks_like_reflectance(r: _Raster, bands: Sequence[int]) -> bool:
    """Float values mostly (90 %) within [-0.2, 1.5], judged on a decimated read of at most 256 x 256 pixels."""
    if not r.type_name.startswith("Float"):
        return False
    values, valid = decimated(r.path, bands, side=256)
    inside = valid & (values >= -0.2) & (values <= 1.5)
    total = int(valid.sum()) * len(values)
    return total > 0 and int(inside.sum()) >= 0.9 * total


def _source_mtl(r: _Raster, mtl_path: str | None) -> Mtl | None:
    if mtl_path:
        if not os.path.isfile(mtl_path):
            raise InputError(f"MTL file not found: '{mtl_path}'. Check the path, or leave it empty.")
        return read_mtl(mtl_path)
    found = find_mtl(r.path) if not r.path.startswith("/vsi") else None
    if found:
        return read_mtl(found)
    if any(k.startswith("REFLECTANCE_MULT_BAND_") for k in r.metadata):
        return Mtl(f"the metadata of '{r.name}'", {"": dict(r.metadata)})
    return None


def _s2_offset(r: _Raster, given: float | None) -> tuple[float, str]:
    if given is not None:
        return float(given), "(as given)"
    for key, value in r.metadata.items():
        if ("BOA_ADD_OFFSET" in key or "RADIO_ADD_OFFSET" in key) and _is_number(value):
            return float(value), f"({key})"
    baseline = r.metadata.get("PROCESSING_BASELINE")
    where = "in the metadata"
    if not (baseline and _is_number(baseline)):
        match = re.search(r"_N(\d{4})(?=[_.]|$)", r.name.upper())
        baseline, where = (f"{int(match.group(1)) / 100:05.2f}", "in the file name") if match else (None, "")
    if baseline is not None:
        return (S2_OFFSET if float(baseline) >= 4.0 else 0.0), f"(processing baseline {baseline} {where})"
    return 0.0, ("assumed (no processing baseline in the metadata; products of baseline 04.00 or later, from "
                 "January 2022, need -1000: set the offset)")


def _is_number(text: str) -> bool:
    return bool(re.fullmatch(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*", text))


_Scaling = tuple[list[float], list[float], str]


def _to_oli(mult: Sequence[float], add: Sequence[float], text: str) -> _Scaling:
    """rho = v * mult + add, per band -> (scale, offset) of v to OLI Level-1 DN (12 significant digits)."""
    return ([float(f"{m / OLI_MULT:.12g}") for m in mult],
            [float(f"{(a - OLI_ADD) / OLI_MULT:.12g}") + 0.0 for a in add], text)


def _scaling(r: _Raster, preset: str, mtl: Mtl | None, s2_offset: float | None) -> _Scaling:
    n = len(OLI_BANDS)
    if preset in ("landsat_l1", "landsat_l2"):
        level = preset[-2:]
        pairs = [mtl.rescaling(b, level) if mtl else None for b in range(2, 8)]
        standard = (OLI_MULT, OLI_ADD) if level == "l1" else (L2_MULT, L2_ADD)
        mult, add = zip(*(p or standard for p in pairs))
        if all(pairs) and mtl:
            text = f"rescaled with {os.path.basename(mtl.source) if mtl.source.endswith('.txt') else mtl.source}"
        else:
            text = (f"standard rescaling MULT {standard[0]:g}, ADD {standard[1]:g} assumed "
                    f"({'the MTL lacks it' if mtl else 'no MTL found'})")
        if level == "l1":
            note = "; the MTL says Level-2" if mtl and mtl.level == "l2" else ""
            return _to_oli(mult, add, f"Landsat 8/9 Level-1 DN, {text}{note}")
        return _to_oli(mult, add, f"Landsat 8/9 Level-2 surface reflectance, {text} (an approximation: the model "
                                  "was trained on top-of-atmosphere values)")
    if preset.startswith("sentinel2"):
        offset, how = _s2_offset(r, s2_offset)
        q = next((float(r.metadata[k]) for k in ("BOA_QUANTIFICATION_VALUE", "QUANTIFICATION_VALUE")  # not AOT's
                  if _is_number(r.metadata.get(k, "")) and float(r.metadata[k]) > 0), S2_QUANTIFICATION)
        text = f"Sentinel-2 {preset[-3:].upper()} (DN + offset) / {q:g} with offset {offset:g} {how}"
        return _to_oli([1 / q] * n, [offset / q] * n, text)
    if preset == "reflectance":
        return _to_oli([1.0] * n, [0.0] * n, "reflectance 0..1")
    return [1.0] * n, [0.0] * n, "used as they are (the values must already be OLI Level-1 DN)"


def _auto(r: _Raster, bands: Sequence[int], mtl: Mtl | None, card: ModelCard) -> str:
    if _looks_like_reflectance(r, bands):
        return "reflectance"
    if mtl:
        return "landsat_l2" if mtl.level == "l2" else "landsat_l1"
    level = r.landsat_level()
    if level:
        return f"landsat_{level}"
    if r.sentinel2():
        product = (r.metadata.get("PRODUCT_TYPE", "") + r.name).upper()
        return "sentinel2_l2a" if "L2A" in product or "MSI2A" in product else "sentinel2_l1c"
    values = {"Byte": "8-bit", "UInt16": "16-bit", "Int16": "16-bit", "UInt32": "32-bit integer",
              "Int32": "32-bit integer"}.get(r.type_name, "floating-point (not reflectance 0..1)")
    names = "band names that do not tell the product" if any(r.keys) else "no band names"
    raise InputError(f"Can't tell which sensor and product '{r.name}' comes from ({values} values, no MTL, "
                     f"{names}): choose the band preset (Landsat 8/9 Level-1, Level-2, Sentinel-2 L1C/L2A, "
                     f"reflectance) so the values can be scaled to what the model '{card.name}' expects.")


def _bands(chosen: Sequence[int]) -> str:
    return f"Band {chosen[0]}" if len(chosen) == 1 else "Bands " + ", ".join(map(str, chosen))


def _formula(scale: Sequence[float], offset: Sequence[float]) -> str:
    if len(set(scale)) == 1 and len(set(offset)) == 1:
        sign = "-" if offset[0] < 0 else "+"
        return f"OLI DN = {scale[0]:g} x value {sign} {abs(offset[0]):g}"
    return "OLI DN = scale x value + offset, scales " + ", ".join(f"{s:g}" for s in scale) + ", offsets " + \
        ", ".join(f"{o:g}" for o in offset)


def resolve_preset(path: str, card: ModelCard, preset: str = "auto", bands: Sequence[int] | None = None,
                   mtl_path: str | None = None, s2_offset: float | None = None) -> InputMapping:
    """Raster bands and per-band scale/offset for `card`'s input (see the module docstring for the formulas)."""
    if preset not in PRESETS:
        raise InputError(f"Unknown band preset '{preset}'. Choose one of: {', '.join(PRESETS)}.")
    r = _open(path)
    if not expects_oli_dn(card):
        if preset not in ("auto", "custom"):
            raise InputError(f"The '{PRESETS[preset]}' preset converts to Landsat 8/9 OLI Level-1 DN, but the "
                             f"model '{card.name}' takes {', '.join(b.name for b in card.input.bands)}. Use "
                             "the Automatic or Custom preset for this model.")
        chosen = map_bands(r.ds, card, bands, path)
        n = len(chosen)
        return InputMapping(chosen, [1.0] * n, [0.0] * n, preset,
                            f"{_bands(chosen)} of '{r.name}' feed{'s' if n == 1 else ''} the model's "
                            f"{', '.join(b.name for b in card.input.bands)}, used as "
                            f"{'it is' if n == 1 else 'they are'}.")
    mtl = _source_mtl(r, mtl_path) if preset in ("auto", "landsat_l1", "landsat_l2") else None
    family = _FAMILY.get(preset) or ("landsat" if mtl or r.landsat_level() else
                                     "sentinel2" if r.sentinel2() else None)
    chosen, how = _choose_bands(r, card, family, bands)
    resolved = _auto(r, chosen, mtl, card) if preset == "auto" else preset
    scale, offset, text = _scaling(r, resolved, mtl, s2_offset)
    return InputMapping(chosen, scale, offset, resolved,
                        f"{_bands(chosen)} of '{r.name}' ({how}) feed the model's B2-B7 "
                        f"({COMMON}); {text}: {_formula(scale, offset)}.")
