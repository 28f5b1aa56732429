"""The scene parameters Map geology and Detect anomalies share (the Landsat MTL, the Sentinel-2 offset, a cloud /
QA mask) and the cloud mask written for the run: see inference/workflows/presets.py and sensors/masks.py."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingParameterFile,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
)

from ..compat import ProcessingNumberParameterType

if TYPE_CHECKING:
    from ..inference import RunOptions
    from ..inference.engine.staging import Staging
    from ..inference.workflows.presets import InputMapping
    from .workflow import Run, WorkflowAlgorithm

MTL = "MTL"
S2_OFFSET = "S2_OFFSET"
QA_MASK = "QA_MASK"


def add_mtl(alg: "WorkflowAlgorithm") -> None:
    alg.add(QgsProcessingParameterFile(MTL, alg.tr("Landsat MTL file"), extension="txt", optional=True),
            "The scene's *_MTL.txt (Landsat Level-1 or Level-2, any collection). Empty: looked for beside the "
            "raster (or beside the band files of a VRT stack).", advanced=True)


def add_scene_parameters(alg: "WorkflowAlgorithm") -> None:
    """The Sentinel-2 offset and the cloud / QA mask, advanced and optional."""
    alg.add(QgsProcessingParameterNumber(S2_OFFSET, alg.tr("Sentinel-2 offset (empty = from the product)"),
                                         ProcessingNumberParameterType.Double, optional=True),
            "The BOA_ADD_OFFSET (L2A) or RADIO_ADD_OFFSET (L1C) of a Sentinel-2 product: -1000 from processing "
            "baseline 04.00 (January 2022), 0 before. Empty: read from the metadata, the file name (_N0400...) or "
            "the values.", advanced=True)
    alg.add(QgsProcessingParameterRasterLayer(QA_MASK, alg.tr("Cloud / QA mask (QA_PIXEL, BQA or SCL)"),
                                              optional=True),
            "A Landsat QA_PIXEL or BQA band or a Sentinel-2 SCL raster: clouds, cloud shadows, cirrus and fill "
            "become nodata in the outputs. Empty: one found beside the scene (<scene>_QA_PIXEL.TIF, *_BQA.TIF, "
            "*_SCL*.tif) is used.", advanced=True)


def scene_arguments(alg: "WorkflowAlgorithm", parameters: dict[str, Any],
                    context: QgsProcessingContext) -> dict[str, Any]:
    """resolve_preset's mtl_path, s2_offset and mask_path from the parameters (None when empty)."""
    offset = (alg.parameterAsDouble(parameters, S2_OFFSET, context)
              if parameters.get(S2_OFFSET) not in (None, "") else None)
    layer = alg.parameterAsRasterLayer(parameters, QA_MASK, context) if parameters.get(QA_MASK) else None
    return {"mtl_path": alg.parameterAsFile(parameters, MTL, context) or None, "s2_offset": offset,
            "mask_path": layer.source() if layer is not None else None}


def scene_reads(alg: "WorkflowAlgorithm", parameters: dict[str, Any], context: QgsProcessingContext,
                path: str) -> list:
    """The MTL and the mask the run reads (given, or found beside the raster), so no output overwrites them."""
    from ..inference.engine.destinations import Read
    from ..inference.workflows.presets import find_mtl
    from ..inference.workflows.sensors.masks import find_mask
    from ..inference.workflows.sensors.scene import open_scene

    given = scene_arguments(alg, parameters, context)
    files = open_scene(path).files
    reads = []
    mtl = given["mtl_path"] or find_mtl(path, files)
    if mtl:
        reads.append(Read(mtl, "the Landsat MTL file"))
    mask = given["mask_path"] or (None if path.startswith("/vsi") else getattr(find_mask(path, files), "path", None))
    if mask:
        reads.append(Read(mask, "the cloud / QA mask"))
    return reads


def apply_mask(run: "Run", mapping: "InputMapping", options: "RunOptions", stage: "Staging", output: str) -> None:
    """Write the mapping's cloud mask (if any) on the input's grid into scratch space and hand it to the engine."""
    from ..inference.workflows.sensors.masks import write_valid_mask

    if mapping.mask is None:
        return
    path, share = write_valid_mask(mapping.mask, run.path, os.path.join(stage.folder(output, "scratch"),
                                                                        "valid_mask.tif"))
    options.valid_mask = path
    run.report.info(f"Cloud mask: {100 * share:.2f} % of the pixels masked (written as nodata).")
