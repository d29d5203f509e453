"""Frame geometry: region of interest, inspection mask, and overlapping tiles.

A frame larger than the model input is cut into overlapping tiles so a small defect on a
1280x720 frame is not lost to down-scaling; all tiles of a frame go through the model in one
batched invoke and their error maps are stitched back into one map (averaged where tiles
overlap). The same `Tiler` is used by the device and by calibration, so the threshold is
calibrated on exactly the numbers the device computes.
"""

from __future__ import annotations

from typing import Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator


class TilingConfig(BaseModel):
    """Cut the (ROI of the) frame into overlapping tiles instead of resizing it to the model input."""

    model_config = ConfigDict(extra="forbid")
    # Tile size in frame pixels; each tile is resized to the model input. None: the model input
    # size itself, i.e. tiles at the camera's native resolution (no down-scaling at all).
    tile: Optional[tuple[int, int]] = Field(None, description="tile width, height in frame pixels; default: model input size")
    overlap: float = Field(0.25, ge=0.0, lt=0.9, description="fraction of a tile shared with its neighbour")

    @field_validator("tile")
    @classmethod
    def _tile_positive(cls, tile):
        if tile is not None and (tile[0] <= 0 or tile[1] <= 0):
            raise ValueError("tile must be width,height > 0")
        return tile


class GeometryConfig(BaseModel):
    """Which part of the frame is inspected, and how it is fed to the model."""

    model_config = ConfigDict(extra="forbid")
    # x, y, w, h in frame pixels. When set it replaces the bundle's preprocessing.roi (the one it
    # was calibrated with): change it only when the camera moved, not to change what is inspected.
    roi: Optional[tuple[int, int, int, int]] = Field(None, description="x,y,w,h in frame pixels; overrides the bundle's roi")
    # Grey image, the size of the frame or of the ROI: non-zero pixels are inspected, zero pixels
    # (fixtures, belt edges, labels) do not count in the score or the heatmap.
    mask: Optional[str] = Field(None, description="mask image: white = inspected, black = ignored")
    tiling: Optional[TilingConfig] = Field(None, description="tile the frame instead of resizing it")

    @field_validator("roi")
    @classmethod
    def _roi_positive(cls, roi):
        if roi is not None and (roi[2] <= 0 or roi[3] <= 0 or roi[0] < 0 or roi[1] < 0):
            raise ValueError("roi must be x,y,w,h with x,y >= 0 and w,h > 0")
        return roi
