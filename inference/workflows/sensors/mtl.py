"""Landsat MTL metadata files: parsing, finding the scene's MTL, and the keys every generation of MTL spells
differently (Collection 2 and 1, and the pre-collection TM/ETM+ files with LMAX/LMIN/QCALMAX/QCALMIN)."""
from __future__ import annotations

import datetime
import os
import re
from dataclasses import dataclass
from typing import Iterable

from ...engine.errors import InputError
from .beside import files_beside

_SENSORS = {"TM": "TM", "ETM": "ETM+", "ETM+": "ETM+", "OLI": "OLI", "OLI_TIRS": "OLI", "MSS": "MSS"}


def is_number(text: str) -> bool:
    return bool(re.fullmatch(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*", text))


@dataclass(frozen=True)
class Mtl:
    """A Landsat MTL file (or a raster's metadata holding its keys): ``KEY = VALUE`` pairs per innermost group."""

    source: str
    groups: dict[str, dict[str, str]]

    @property
    def name(self) -> str:
        return os.path.basename(self.source) if self.source.upper().endswith(".TXT") else self.source

    def get(self, key: str, *groups: str) -> str | None:
        """The value of `key` in the first of `groups` that has it, else its first occurrence anywhere."""
        ordered = [self.groups.get(g, {}) for g in groups] + list(self.groups.values())
        return next((values[key] for values in ordered if key in values), None)

    def number(self, *keys: str) -> float | None:
        """The first of `keys` holding a number."""
        for key in keys:
            value = self.get(key)
            if value is not None and is_number(value):
                return float(value)
        return None

    @property
    def level(self) -> str | None:
        """"l1" or "l2" from PROCESSING_LEVEL (Collection 2) or DATA_TYPE (Collection 1); None if neither says."""
        text = (self.get("PROCESSING_LEVEL", "PRODUCT_CONTENTS") or self.get("DATA_TYPE")
                or self.get("PRODUCT_TYPE") or "").upper()
        return "l2" if text.startswith("L2") else "l1" if text.startswith(("L1", "LEVEL1")) else None

    @property
    def satellite(self) -> int | None:
        """4..9 from SPACECRAFT_ID ("LANDSAT_5", "Landsat5") or the scene id."""
        text = (self.get("SPACECRAFT_ID") or "").upper()
        match = re.search(r"(\d)\s*$", text)
        if match:
            return int(match.group(1))
        scene = (self.get("LANDSAT_PRODUCT_ID") or self.get("LANDSAT_SCENE_ID") or "").upper()
        match = re.match(r"L[CEOTM]0?(\d)", scene)
        return int(match.group(1)) if match else None

    @property
    def sensor(self) -> str | None:
        """"TM", "ETM+", "OLI" or "MSS" from SENSOR_ID."""
        return _SENSORS.get((self.get("SENSOR_ID") or "").upper().replace(" ", ""))

    @property
    def collection(self) -> int | None:
        value = self.number("COLLECTION_NUMBER")
        return int(value) if value is not None else None

    @property
    def date(self) -> datetime.date | None:
        text = self.get("DATE_ACQUIRED") or self.get("ACQUISITION_DATE") or ""
        try:
            return datetime.date.fromisoformat(text.strip()[:10])
        except ValueError:
            return None

    @property
    def sun_elevation(self) -> float | None:
        return self.number("SUN_ELEVATION")

    def rescaling(self, band: int, level: str) -> tuple[float, float] | None:
        """(REFLECTANCE_MULT_BAND_n, REFLECTANCE_ADD_BAND_n) of `level`'s group, None where the MTL lacks them."""
        if level == "l2":  # only the Level-2 group: elsewhere the same keys hold the Level-1 rescaling
            group = self.groups.get("LEVEL2_SURFACE_REFLECTANCE_PARAMETERS", {})
            mult, add = group.get(f"REFLECTANCE_MULT_BAND_{band}"), group.get(f"REFLECTANCE_ADD_BAND_{band}")
        else:
            mult, add = (self.get(f"REFLECTANCE_{k}_BAND_{band}", "LEVEL1_RADIOMETRIC_RESCALING",
                                  "RADIOMETRIC_RESCALING") for k in ("MULT", "ADD"))
        return (float(mult), float(add)) if mult and add and is_number(mult) and is_number(add) else None

    def radiance(self, band: int) -> tuple[float, float] | None:
        """(gain, bias) of radiance L = gain * DN + bias in W/(m² sr µm): RADIANCE_MULT/ADD_BAND_n, else from
        LMAX/LMIN and QCALMAX/QCALMIN (Chander et al. 2009, eq. 1), in either spelling of the old MTLs."""
        gain, bias = self.number(f"RADIANCE_MULT_BAND_{band}"), self.number(f"RADIANCE_ADD_BAND_{band}")
        if gain is not None and bias is not None:
            return gain, bias
        lmax = self.number(f"RADIANCE_MAXIMUM_BAND_{band}", f"LMAX_BAND{band}")
        lmin = self.number(f"RADIANCE_MINIMUM_BAND_{band}", f"LMIN_BAND{band}")
        qmax = self.number(f"QUANTIZE_CAL_MAX_BAND_{band}", f"QCALMAX_BAND{band}")
        qmin = self.number(f"QUANTIZE_CAL_MIN_BAND_{band}", f"QCALMIN_BAND{band}")
        if None in (lmax, lmin, qmax, qmin) or qmax == qmin:
            return None
        assert lmax is not None and lmin is not None and qmax is not None and qmin is not None
        gain = (lmax - lmin) / (qmax - qmin)
        return gain, lmin - gain * qmin


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
    if not any(k.startswith(("REFLECTANCE_MULT_BAND_", "RADIANCE_MULT_BAND_", "LMAX_BAND"))
               for g in groups.values() for k in g) \
            and not {"LANDSAT_METADATA_FILE", "L1_METADATA_FILE"} & set(groups):
        raise InputError(f"'{os.path.basename(path)}' is not a Landsat MTL file (no REFLECTANCE_MULT_BAND_n). "
                         "Give the scene's *_MTL.txt, or leave the MTL empty to assume the standard rescaling.")
    return Mtl(path, groups)


def _matches(scene: str, stem: str) -> bool:
    return stem.startswith(scene) or (scene.count("_") >= 3 and stem.split("_")[:4] == scene.split("_")[:4])


def find_mtl(path: str, names: Iterable[str] = ()) -> str | None:
    """A ``*_MTL.txt`` beside the raster whose scene id (sensor, level, path/row, date) starts the raster's name,
    or the name of one of `names` (the files a VRT stack reads)."""
    files = [path, *names]
    stems = [os.path.basename(f).upper() for f in files]
    for folder, name in files_beside(files):
        if name.upper().endswith("_MTL.TXT") and any(_matches(name[:-8].upper(), stem) for stem in stems):
            return os.path.join(folder, name)
    return None
