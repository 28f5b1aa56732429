"""The labels of a run on every raster's grid, with the traps counted: classes (segmentation) or values
(regression), labelled pixels on nodata, lost classes, classes too small to learn, merges and drops asked for.
Labelled pixels are counted once each, on the label rasters, never per chip."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import numpy as np

from ..data.labels import is_vector
from .findings import Findings, Refused
from .inputs import Scene, provenance
from .raster_labels import merge_names, read_raster_labels
from .vector_labels import VectorFile, outside, rasterise, read_vector

MIN_VALUES = 50  # regression: fewer labelled pixels than this is refused


@dataclass(frozen=True)
class ClassInfo:
    id: int          # the training id 1..m (output channel id - 1)
    value: int       # the value the plugin writes for it (the card's class value)
    name: str
    pixels: int      # labelled pixels, each counted once


@dataclass
class Dataset:
    task: str                              # "segmentation" or "regression"
    scenes: list[Scene]
    truth: list[np.ndarray]                # per scene: int64 ids (0 = unlabelled) or float32 values (NaN)
    classes: list[ClassInfo] = field(default_factory=list)
    value_name: str = ""
    labels: list[dict[str, Any]] = field(default_factory=list)

    def labelled(self, index: int) -> np.ndarray:
        t = self.truth[index]
        return np.isfinite(t) if self.task == "regression" else t > 0

    @property
    def pixels(self) -> int:
        return int(sum(self.labelled(i).sum() for i in range(len(self.scenes))))

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.classes]

    @property
    def ids(self) -> list[int]:
        return [c.id for c in self.classes]


@dataclass(frozen=True)
class LabelOptions:
    field: Optional[str] = None
    min_class_pixels: int = 50
    drop: tuple[str, ...] = ()
    merge: tuple[str, ...] = ()       # "FROM=TO"


def pair_labels(images: Sequence[str], labels: Sequence[str]) -> list[str]:
    if len(labels) == 1:
        return [labels[0]] * len(images)
    if len(labels) != len(images):
        raise Refused(f"{len(images)} --image but {len(labels)} --labels: give one --labels per --image (same "
                      "order), or a single --labels covering them all.")
    return list(labels)


def _merges(options: LabelOptions) -> dict[str, str]:
    out = {}
    for spec in options.merge:
        if "=" not in spec:
            raise Refused(f"--merge-class takes FROM=TO (e.g. 'basalt=mafic'), not {spec!r}.")
        a, b = (s.strip() for s in spec.split("=", 1))
        out[a] = b
    return out


def _vector_truth(scenes: Sequence[Scene], paths: Sequence[str], options: LabelOptions, findings: Findings,
                  numeric: bool) -> tuple[list[np.ndarray], dict[str, int], list[dict[str, Any]]]:
    if not options.field:
        raise Refused("polygon labels need the field holding the class (--class-field) or value (--value-field).")
    files: dict[str, VectorFile] = {}
    for path in dict.fromkeys(paths):
        files[path] = read_vector(path, options.field, scenes[0].grid, findings, numeric)
        owners = [s.grid for s, p in zip(scenes, paths) if p == path]
        outside([files[path]], owners, findings)
    merges = _merges(options)
    raw = {str(f.value) for vf in files.values() for f in vf.features}
    unknown = sorted(set(merges) - raw)
    if unknown:
        raise Refused(f"--merge-class names {unknown}, which are not classes of {options.field!r}: {sorted(raw)}.")
    names: dict[str, int] = {}
    if not numeric:
        values = {merges.get(str(f.value), str(f.value)): f.value for vf in files.values() for f in vf.features}
        integer = all(isinstance(v, int) for v in values.values())
        order = sorted(values, key=lambda n: (values[n] if integer and n == str(values[n]) else 0, n))
        names = {n: (int(values[n]) if integer and n == str(values[n]) else i) for i, n in enumerate(order, 1)}
        if len(set(names.values())) != len(names):
            names = {n: i for i, n in enumerate(order, 1)}
    truth = []
    for scene, path in zip(scenes, paths):
        vf = files[path]
        burn = [float(f.value) if numeric else float(names[merges.get(str(f.value), str(f.value))])
                for f in vf.features]
        array, overlaps = rasterise(vf.features, burn, scene.grid, numeric)
        if overlaps:
            findings.add("overlap", f"{overlaps} px of {scene.path} lie under two or more features of {path}: the "
                                    "later feature's label wins there", overlaps, "reported", labels=path)
        truth.append(array)
    info = [{**provenance(p), "features": vf.total, "used": len(vf.features), "per_value": vf.per_value}
            for p, vf in files.items()]
    return truth, names, info


def _raster_truth(scenes: Sequence[Scene], paths: Sequence[str], findings: Findings,
                  numeric: bool) -> tuple[list[np.ndarray], dict[str, int], list[dict[str, Any]]]:
    truth: list[np.ndarray] = []
    by_value: dict[int, str] = {}
    for scene, path in zip(scenes, paths):
        array, found = read_raster_labels(path, scene.grid, findings, numeric, scene.path)
        merge_names(by_value, found, path, findings)
        truth.append(array)
    return truth, {name: value for value, name in sorted(by_value.items())}, [provenance(p) for p in dict.fromkeys(paths)]


def _mask_nodata(scenes: Sequence[Scene], truth: list[np.ndarray], findings: Findings, numeric: bool) -> None:
    for scene, t in zip(scenes, truth):
        on_nodata = (np.isfinite(t) if numeric else t > 0) & ~scene.valid
        if on_nodata.any():
            n = int(on_nodata.sum())
            findings.add("nodata_labels", f"{n} labelled px of {scene.path} fall on nodata pixels of the image: "
                                          "dropped", n, "dropped", image=scene.path)
            t[on_nodata] = np.nan if numeric else 0


def _classes(truth: list[np.ndarray], names: dict[str, int], options: LabelOptions, findings: Findings,
             raster_labels: bool) -> list[ClassInfo]:
    merges = _merges(options)
    for name in list(options.drop) + [m for m in merges if raster_labels]:
        if name not in names and name not in merges.values():
            raise Refused(f"there is no class {name!r} to drop or merge; the classes are {sorted(names)}.")
    if raster_labels:  # merging raster classes relabels their pixels
        for source, target in merges.items():
            if target not in names:
                names[target] = names[source]
            for t in truth:
                t[t == names[source]] = names[target]
            names.pop(source)
    for name in options.drop:
        value = names.pop(name)
        dropped = int(sum((t == value).sum() for t in truth))
        for t in truth:
            t[t == value] = 0
        findings.add("dropped_class", f"class {name!r} dropped as asked (--drop-class): its {dropped} px are left "
                                      "unlabelled", dropped, "dropped", name=name)
    pixels = {n: int(sum((t == v).sum() for t in truth)) for n, v in names.items()}
    for name in [n for n, p in pixels.items() if p == 0]:
        findings.add("lost_class", f"class {name!r} has labels but no labelled pixel on the raster(s) (its features "
                                   "lie outside, cover no pixel centre, or are overwritten): it is lost", 1,
                     "dropped", name=name)
        names.pop(name)
    small = {n: p for n, p in pixels.items() if 0 < p < options.min_class_pixels}
    if small:
        listed = ", ".join(f"{n!r} {p} px" for n, p in sorted(small.items(), key=lambda kv: kv[1]))
        first = min(small, key=lambda n: small[n])
        raise findings.refuse("too_few_pixels", f"{len(small)} classes have fewer than {options.min_class_pixels} "
                                                f"labelled pixels: {listed}. Too few to learn or to score on held-out "
                                                f"blocks. Fix: drop them (--drop-class {first!r}), merge them into "
                                                f"another class (--merge-class '{first}=OTHER'), or lower the "
                                                "threshold (--min-class-pixels N)", len(small), classes=small)
    if len(names) < 2:
        raise Refused(f"only {len(names)} class is left ({sorted(names)}): segmentation needs at least 2.")
    lookup = np.zeros(max(max(names.values()), max(int(t.max(initial=0)) for t in truth)) + 1, dtype=np.int64)
    classes = []
    for new, (name, value) in enumerate(sorted(names.items(), key=lambda kv: kv[1]), start=1):
        lookup[value] = new
        classes.append(ClassInfo(new, value, name, pixels[name]))
    for i, t in enumerate(truth):
        truth[i] = lookup[t]
    return classes


def build_dataset(task: str, scenes: list[Scene], label_paths: Sequence[str], options: LabelOptions,
                  findings: Findings) -> Dataset:
    paths = pair_labels([s.path for s in scenes], label_paths)
    numeric = task == "regression"
    kinds = {is_vector(p) for p in paths}
    if len(kinds) > 1:
        raise Refused("the --labels mix polygon files and label rasters: give them all as one kind.")
    vector = kinds == {True}
    if vector:
        truth, names, info = _vector_truth(scenes, paths, options, findings, numeric)
    else:
        truth, names, info = _raster_truth(scenes, paths, findings, numeric)
    _mask_nodata(scenes, truth, findings, numeric)
    dataset = Dataset(task, scenes, truth, labels=info)
    if numeric:
        dataset.value_name = options.field or "value"
        n = dataset.pixels
        values = np.concatenate([t[np.isfinite(t)] for t in truth])
        if n < MIN_VALUES or float(values.std()) == 0.0:
            raise Refused(f"{n} labelled pixels (values {'all equal' if n and values.std() == 0 else 'given'}): "
                          f"regression needs at least {MIN_VALUES} labelled pixels whose values differ.")
        return dataset
    dataset.classes = _classes(truth, names, options, findings, not vector)
    return dataset
