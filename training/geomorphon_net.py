"""The landform network: geomorphon lines of sight computed in the graph, at any cell size, and a learned head.

:class:`SightLines` is what geomorphons are made of (Jasiewicz & Stepinski 2013): for each of the eight
principal directions, the largest and smallest elevation angle from a cell to the cells along the line, out to
the search distance. It takes the DEM in metres with NaN wherever there is no data (card ``input.nodata:
"nan"``: also beyond the raster's edge) and the scale input ``[cell_x_m, cell_y_m, search_m]`` (card
``input.scale``), so one graph serves 1 m lidar and 1 km grids, square or geographic cells. A line ends at its
first NaN cell and is judged on the cells before it, as in :mod:`training.geomorphons`.

:class:`GeomorphonNet` turns the angles into classes with what can be learned:

- a soft ternary element per direction with a **learned flatness threshold** and sharpness (started at 2
  degrees; the labels' 1 degree has to be found);
- a line cut short by the raster's edge or a void is completed by the mirror of the opposite direction's
  element, in proportion to the length it lacks, as a plane through the cell would be: the terrain is continued,
  not reflected (a reflection turns every slope at an edge into a valley or a ridge), and a short line near the
  edge does not pass for a level one;
- the soft counts ``(n-, n+)`` of down and up elements, spread bilinearly over the paper's 9 x 9 table, and a
  learned linear map from the 45 reachable table cells to the ten forms (started from the paper's table);
- a small context branch (per-cell features, then two 3 x 3 layers; started at zero) that sees, per line, how
  much of it exists and its own element: trained on crops whose edges cut the lines, against the forms of the
  whole DEM, it learns what a cut-short line most likely sees, so edges and voids keep the map's proportions;
  fine-tuning on an analyst's own map uses it too.

Everything is a function of elevation differences over distances in metres, so absolute elevation and the cell
size cancel; the graph's reach is ``max_cells`` cells (the card's margin covers it).
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .geomorphons import FORMS

DIRECTIONS = ((0, 1), (-1, 1), (-1, 0), (-1, -1), (0, -1), (1, -1), (1, 0), (1, 1))  # E, NE, N, ... (rows south)
CELLS = [(a, b) for a in range(9) for b in range(9) if a + b <= 8]  # reachable (n-, n+)
_FAR = 1e4  # a "no valid cell" angle bound, far beyond any tan(angle) of terrain
FEATURES = 10 + 3 + 3 * 8  # the context branch's input: table logits, counts, and per line its share and elements


class SightLines(nn.Module):
    """(N, 1, H, W) elevations with NaN, scale (3,) -> (N, 8, H, W) max and min tan(elevation angle), and
    (N, 8, H, W) the share of the line's length that holds terrain before it ends (1 for a full line, 0 when
    its first cell is already beyond the edge or void). Lines without a valid cell read 0 in both angles."""

    def __init__(self, max_cells: int) -> None:
        super().__init__()
        self.max_cells = max_cells

    def forward(self, z: torch.Tensor, scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        p, h, w = self.max_cells, z.shape[-2], z.shape[-1]
        padded = F.pad(z, (p, p, p, p), value=float("nan"))
        z = torch.where(torch.isnan(z), torch.zeros_like(z), z)  # a nodata centre: finite values, masked later
        cx, cy, search = scale[0], scale[1], scale[2] * (1.0 + 1e-6)
        highs, lows, seen = [], [], []
        for dy, dx in DIRECTIONS:
            step = torch.sqrt((dx * cx) ** 2 + (dy * cy) ** 2)
            wanted = torch.clamp(torch.floor(search / step), 1.0, float(p))  # cells within the search
            high = torch.full_like(z, -_FAR)
            low = torch.full_like(z, _FAR)
            ended = torch.zeros_like(z, dtype=torch.bool)
            count = torch.zeros_like(z)
            for k in range(1, p + 1):
                cell = padded[:, :, p + dy * k:p + dy * k + h, p + dx * k:p + dx * k + w]
                ended = ended | torch.isnan(cell)
                usable = (~ended) & (k * step <= search)
                tan = (cell - z) / (k * step)
                high = torch.where(usable, torch.maximum(high, tan), high)
                low = torch.where(usable, torch.minimum(low, tan), low)
                count = count + usable.to(z.dtype)
            any_cell = high > -_FAR / 2
            highs.append(torch.where(any_cell, high, torch.zeros_like(high)))
            lows.append(torch.where(any_cell, low, torch.zeros_like(low)))
            seen.append(torch.clamp(count / wanted, 0.0, 1.0))
        return torch.cat(highs, 1), torch.cat(lows, 1), torch.cat(seen, 1)


def table_weights() -> torch.Tensor:
    """(10, 45): the paper's table as a linear map from the reachable (n-, n+) cells to the forms' logits."""
    weight = torch.zeros(10, len(CELLS))
    for j, (a, b) in enumerate(CELLS):
        weight[int(FORMS[a, b]) - 1, j] = 1.0
    return weight


class GeomorphonNet(nn.Module):
    """Ten geomorphon forms (logits) from elevations with NaN and the scale input; see the module docstring."""

    def __init__(self, max_cells: int, flat_deg: float = 2.0, context: int = 16) -> None:
        super().__init__()
        self.lines = SightLines(max_cells)
        self.log_flat = nn.Parameter(torch.tensor(math.log(math.radians(flat_deg))))
        self.log_sharp = nn.Parameter(torch.tensor(math.log(400.0)))  # per radian: ~7 per degree
        self.table = nn.Parameter(table_weights() * 8.0)
        self.bias = nn.Parameter(torch.full((10,), -4.0))
        last = nn.Conv2d(context, 10, 3, padding=1)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)  # type: ignore[arg-type]  # Conv2d has a bias unless asked not to
        self.context = nn.Sequential(nn.Conv2d(FEATURES, context, 1), nn.ReLU(),
                                     nn.Conv2d(context, context, 3, padding=1), nn.ReLU(), last)
        self.margin = max_cells + 2  # the lines, then the two 3 x 3 layers

    def elements(self, high: torch.Tensor, low: torch.Tensor,
                 seen: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Soft (down, up) ternary elements, (N, 8, H, W) each, in [0, 1] (level is 1 - down - up): each line's
        own, and the same with short lines completed."""
        up_angle, down_angle = torch.atan(high), torch.atan(low)
        flat, sharp = torch.exp(self.log_flat), torch.exp(self.log_sharp)
        level = torch.sigmoid(sharp * (flat - up_angle.abs())) * torch.sigmoid(sharp * (flat - down_angle.abs()))
        balance = torch.sigmoid(sharp * (up_angle + down_angle))
        up, down = (1 - level) * balance, (1 - level) * (1 - balance)
        # What a line cut short by the edge or a void does not see is taken from the opposite line, mirrored (a
        # plane through the cell): a line with a share s of its length counts s of its own element and 1 - s of
        # the opposite's mirror, itself weighted by how much of that line exists. Both missing: level. That is
        # right for slopes, not for a ridge that crosses the edge: the context branch learns the difference.
        opposite = [(i + 4) % 8 for i in range(8)]
        up_fill, down_fill = down[:, opposite] * seen[:, opposite], up[:, opposite] * seen[:, opposite]
        return down, up, seen * down + (1 - seen) * down_fill, seen * up + (1 - seen) * up_fill

    def forward(self, z: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        high, low, seen = self.lines(z, scale)
        return self.classify(high, low, seen, ~torch.isnan(z))

    def classify(self, high: torch.Tensor, low: torch.Tensor, seen: torch.Tensor,
                 valid: torch.Tensor) -> torch.Tensor:
        """Logits from the lines' angles (training runs this on lines computed once per DEM and scale)."""
        own_down, own_up, down, up = self.elements(high, low, seen)
        n_minus, n_plus = down.sum(1, keepdim=True), up.sum(1, keepdim=True)
        spread = torch.cat([F.relu(1 - (n_minus - a).abs()) * F.relu(1 - (n_plus - b).abs()) for a, b in CELLS], 1)
        logits = torch.einsum("kj,njhw->nkhw", self.table, spread) + self.bias[None, :, None, None]
        features = torch.cat([logits / 8, n_minus / 8, n_plus / 8, (8 - n_minus - n_plus) / 8, seen, own_down,
                              own_up], 1)
        # Cells without data (voids, and beyond the raster's edge where a tile reaches past it) hold zeros at every
        # layer, exactly as the zero padding at a raster's edge, so a tile edge and a raster edge read the same.
        inside = valid.to(features.dtype)
        hidden = features * inside
        for layer in self.context:
            hidden = layer(hidden)
            if isinstance(layer, nn.ReLU):
                hidden = hidden * inside
        logits = logits + hidden
        return torch.where(valid, logits, torch.zeros_like(logits))
