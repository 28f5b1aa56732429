"""Where the outputs of one run land in the Layers panel: together on top of the layer tree, in a group named after
the run (unless the setting below turns grouping off), in an order that keeps each one in sight: polygons over the
mask over the score or classes, visible, the legends expanded and titled with what they show. Inside the group a
layer's name leaves out what the group's name says ("Landforms confidence", not "Landforms confidence - dem"), so
it fits the panel; the full name is its title (tooltip) and in its metadata.

QGIS inserts Processing results above the selected layer, one by one (in 3.22 in the order of their file names),
so outputs of one run could land under an opaque layer or under one another. A post-processor (styling.py) calls
`place` for each loaded layer once it is in the project: 3.22 calls it as each layer is added, 3.40 after all are;
the rank of the layers already placed decides where the next one goes, so either order ends the same.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from qgis.core import (QgsLayerTreeGroup, QgsLayerTreeLayer, QgsMapLayer, QgsMapLayerLegendUtils, QgsProject,
                       QgsRasterLayer, QgsSettings)

# The Processing setting (Settings > Options > Processing > Providers > DeepStrata), stored where Processing keeps
# its settings; provider.py shows it in the options dialog.
GROUP_SETTING = "DEEPSTRATA_GROUP_OUTPUTS"
GROUP_SETTING_KEY = f"Processing/Configuration/{GROUP_SETTING}"
GROUP_SETTING_LABEL = "Load the outputs of each run into a group named after the run"
RESULTS_GROUP_KEY = "Processing/Configuration/RESULTS_GROUP_NAME"  # Processing's own "Results group name"
RUN_PROPERTY = "deepstrata/run"  # custom property of the run's group and layer nodes: the run's id
RANK_PROPERTY = "deepstrata/rank"  # custom property of the run's layer nodes: higher ranks lie above

# Ranks of the outputs in the Layers panel, higher above: what marks a place over what colours an area.
RANK_TABLE, RANK_INDICES, RANK_CONFIDENCE, RANK_UNITS, RANK_VALUES, RANK_MASK, RANK_POLYGONS = 0, 1, 2, 3, 4, 5, 6


def grouping() -> bool:
    """Whether outputs of a run go into a group (the Processing setting; on by default)."""
    value = QgsSettings().value(GROUP_SETTING_KEY, True)
    return str(value).lower() not in ("false", "0", "no", "")


@dataclass
class RunLayers:
    """The layers one run loads: the group they go into (named after the run) and their ranks."""

    name: str
    group: bool = field(default_factory=grouping)
    key: str = field(default_factory=lambda: uuid.uuid4().hex)

    def place(self, layer: QgsMapLayer, rank: int, legend_title: str = "",
              project: QgsProject | None = None) -> QgsLayerTreeLayer | None:
        """Move `layer`'s node to the top of the layer tree (into the run's group), above the run's layers of lower
        rank, visible and expanded; `legend_title` replaces a raster legend's "Band 1: ... (Gray)" heading."""
        root = (project or QgsProject.instance()).layerTreeRoot()
        node = root.findLayer(layer.id())
        if node is None:
            return None
        parent = top(root)
        target = self._group(parent) if self.group else parent
        if self.group:
            shorten(layer, self.short(layer.name()))
        placed = node.clone()
        placed.setCustomProperty(RUN_PROPERTY, self.key)
        placed.setCustomProperty(RANK_PROPERTY, rank)
        placed.setItemVisibilityChecked(True)
        placed.setExpanded(True)
        if legend_title and isinstance(layer, QgsRasterLayer):
            QgsMapLayerLegendUtils.setLegendNodeUserLabel(placed, 0, legend_title)
        target.insertChildNode(self._index(target, node, self.key, rank), placed)
        if node.parent() is not None:
            node.parent().removeChildNode(node)
        return placed

    def short(self, name: str) -> str:
        """A layer's name inside the run's group, without what the group's name says already: "Landforms confidence
        - dem" in the group "Landforms - dem" is "Landforms confidence"."""
        _, sep, tail = self.name.rpartition(" - ")
        end = sep + tail
        return name[:-len(end)] if sep and name.endswith(end) and len(name) > len(end) else name

    def _group(self, root: QgsLayerTreeGroup) -> QgsLayerTreeGroup:
        """This run's group: found by its id (an earlier run of the same name keeps its own), else made on top."""
        for child in root.children():
            if isinstance(child, QgsLayerTreeGroup) and child.customProperty(RUN_PROPERTY) == self.key:
                return child
        group = root.insertGroup(0, self.name)
        group.setCustomProperty(RUN_PROPERTY, self.key)
        group.setExpanded(True)
        group.setItemVisibilityChecked(True)
        return group

    @staticmethod
    def _index(target: QgsLayerTreeGroup, moving: QgsLayerTreeLayer, key: str, rank: int) -> int:
        """Below this run's layers of higher (or equal) rank at the top of `target`, above everything else."""
        children = target.children()
        for index, child in enumerate(children):
            if child is moving:
                continue
            if child.customProperty(RUN_PROPERTY) != key or int(child.customProperty(RANK_PROPERTY, 0)) < rank:
                return index
        return len(children)


def shorten(layer: QgsMapLayer, name: str) -> None:
    """Rename `layer` to `name`, keeping its full name as its title (the Layers panel's tooltip) and in its
    metadata (Layer Properties > Metadata)."""
    full = layer.name()
    if name == full:
        return
    metadata = layer.metadata()
    metadata.setTitle(full)
    layer.setMetadata(metadata)
    server = layer.serverProperties() if hasattr(layer, "serverProperties") else None
    (server if server is not None and hasattr(server, "setTitle") else layer).setTitle(full)
    layer.setName(name)


def top(root: QgsLayerTreeGroup) -> QgsLayerTreeGroup:
    """Where results go: the root, or the group Processing's "Results group name" setting names (made on top)."""
    name = str(QgsSettings().value(RESULTS_GROUP_KEY, "") or "")
    if not name:
        return root
    group = root.findGroup(name)
    return group if group is not None else root.insertGroup(0, name)
