"""The sensors whose blue, green, red, NIR, SWIR1 and SWIR2 bands DeepStrata's multispectral models take, their
band names and the band orders of their usual stacks, and how a scene's name, MTL, metadata or band names tell
which one it is."""
from __future__ import annotations

import re
from dataclasses import dataclass

from .mtl import Mtl
from .scene import Scene

COMMON = "blue, green, red, NIR, SWIR1, SWIR2"
WORDS = (("blue",), ("green",), ("red",), ("nir08", "nirnarrow", "nir"), ("swir16", "swir1"), ("swir22", "swir2"))
_TM_NAMES = (("b1", "b01"), ("b2", "b02"), ("b3", "b03"), ("b4", "b04"), ("b5", "b05"), ("b7", "b07"))


@dataclass(frozen=True)
class Sensor:
    family: str  # "tm", "etm", "oli", "msi"
    label: str  # "Landsat 5 TM"
    satellite: int | None = None  # 4..9 for Landsat

    @property
    def landsat(self) -> bool:
        return self.family != "msi"

    @property
    def six(self) -> str:
        """The sensor's names of the six bands."""
        return {"tm": "B1-B5, B7", "etm": "B1-B5, B7", "oli": "B2-B7"}.get(self.family,
                                                                           "B02, B03, B04, B8A, B11, B12")


def sensor(family: str, satellite: int | None = None, msi: str = "") -> Sensor:
    if family == "msi":
        return Sensor("msi", f"Sentinel-2{msi} MSI")
    if family == "tm":
        return Sensor("tm", f"Landsat {satellite or '4/5'} TM", satellite)
    if family == "etm":
        return Sensor("etm", "Landsat 7 ETM+", 7)
    return Sensor("oli", {8: "Landsat 8 OLI", 9: "Landsat 9 OLI-2"}.get(satellite or 0, "Landsat 8/9 OLI"),
                  satellite)


def _landsat(satellite: int | None, letter: str = "") -> Sensor | None:
    if letter in ("C", "O") or satellite in (8, 9):
        return sensor("oli", satellite if satellite in (8, 9) else None)
    if letter == "E" or satellite == 7:
        return sensor("etm")
    if satellite in (4, 5):
        return sensor("tm", satellite)
    return None


NAMES: dict[str, tuple[tuple[str, ...], ...]] = {
    "tm": _TM_NAMES, "etm": _TM_NAMES,
    "oli": (("b2", "b02"), ("b3", "b03"), ("b4", "b04"), ("b5", "b05"), ("b6", "b06"), ("b7", "b07")),
    "msi": (("b02", "b2"), ("b03", "b3"), ("b04", "b4"), ("b8a", "b08", "b8"), ("b11",), ("b12",)),
}
LAYOUTS: dict[str, dict[int, tuple[tuple[int, ...], str]]] = {
    "tm": {6: ((1, 2, 3, 4, 5, 6), "the six bands taken as TM B1-B5, B7 in order"),
           7: ((1, 2, 3, 4, 5, 7), "the 7-band TM order B1-B7 (thermal B6 left out)")},
    "etm": {6: ((1, 2, 3, 4, 5, 6), "the six bands taken as ETM+ B1-B5, B7 in order"),
            7: ((1, 2, 3, 4, 5, 7), "the 7-band ETM+ order B1-B7 (thermal B6 left out)"),
            8: ((1, 2, 3, 4, 5, 8), "the 8-band ETM+ order B1-B5, B6_VCID_1, B6_VCID_2, B7")},
    "oli": {6: ((1, 2, 3, 4, 5, 6), "the six bands taken as B2-B7 in order"),
            7: ((2, 3, 4, 5, 6, 7), "the 7 bands taken as Landsat 8/9 B1-B7"),
            **{n: ((2, 3, 4, 5, 6, 7), f"the standard Landsat 8/9 order B1-B{n}") for n in range(8, 12)}},
    "msi": {6: ((1, 2, 3, 4, 5, 6), "the six bands taken as B02, B03, B04, B8A, B11, B12 in order"),
            10: ((1, 2, 3, 8, 9, 10), "the 10-band Sentinel-2 order B02-B08, B8A, B11, B12"),
            12: ((2, 3, 4, 9, 11, 12), "the 12-band Sentinel-2 order B01-B12 without B10"),
            13: ((2, 3, 4, 9, 12, 13), "the 13-band Sentinel-2 order B01-B12 with B10")},
}
ETM_WITH_PAN = ((1, 2, 3, 4, 5, 7), "the 8-band ETM+ order B1-B8 (thermal B6 and pan B8 left out)")

_LANDSAT_ID = re.compile(r"^L([CEOTM])0?([4-9])(?=[_\d])")  # LC08_, LE07_, LT05_, LT5..., LC8...
_LANDSAT_WORD = re.compile(r"(?:^|[^A-Z0-9])(?:LANDSAT|LSAT|LS|L)[-_ ]?0?([4-9])(?=[^0-9]|$)")
_S2_ID = re.compile(r"(?:^|[^A-Z0-9])(?:S2([ABC])_|S2_|SEN2|SENTINEL-?_?2([ABC])?)|MSIL1C|MSIL2A")
_S2_NAME = re.compile(r"^b(0\d|8a|1[012])$")


def from_mtl(mtl: Mtl) -> Sensor | None:
    sat = mtl.satellite
    letter = {"TM": "T", "ETM+": "E", "OLI": "C"}.get(mtl.sensor or "", "")
    return _landsat(sat, letter) if (sat or letter) else None


def from_names(names: list[str]) -> tuple[Sensor, str] | None:
    """The sensor a file name tells, and that name."""
    for name in names:
        upper = name.upper()
        match = _LANDSAT_ID.match(upper)
        if match:
            found = _landsat(int(match.group(2)), match.group(1) if match.group(1) != "T" else "")
            if found:
                return found, name
        match = _S2_ID.search(upper)
        if match:
            unit = match.group(1) or match.group(2) or ""
            return sensor("msi", msi=unit), name
        match = _LANDSAT_WORD.search(upper)
        if match:
            found = _landsat(int(match.group(1)))
            if found:
                return found, name
    return None


def from_metadata(scene: Scene) -> tuple[Sensor, str] | None:
    marks = (scene.metadata.get("SPACECRAFT_NAME", "") + " " + scene.metadata.get("PRODUCT_TYPE", "")).upper()
    if "SENTINEL-2" in marks or "S2MSI" in marks:
        unit = re.search(r"SENTINEL-2([ABC])", marks)
        return sensor("msi", msi=unit.group(1) if unit else ""), "its metadata (SPACECRAFT_NAME / PRODUCT_TYPE)"
    return None


def from_band_names(scene: Scene) -> tuple[Sensor, str] | None:
    """Sentinel-2's own band names (B8A, two-digit B02..B12): Sentinel-2; SR_Bn or other names: nothing."""
    s2 = [k for keys in scene.keys for k in keys if _S2_NAME.match(k)]
    if "b8a" in s2 or any(k.startswith("b0") for k in s2) or {"b11", "b12"} <= set(s2) and "b10" not in s2:
        return sensor("msi"), "its band names (B8A, B02 ...)"
    return None
