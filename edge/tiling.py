"""Frame geometry: region of interest, inspection mask, and overlapping tiles.

A frame larger than the model input is cut into overlapping tiles so a small defect on a
1280x720 frame is not lost to down-scaling; all tiles of a frame go through the model in one
batched invoke and their error maps are stitched back into one map (averaged where tiles
overlap). The same `Tiler` is used by the device and by calibration, so the threshold is
calibrated on exactly the numbers the device computes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import cv2
import numpy as np
from pydantic import Field, field_validator

from edge.detection import Detection, Detector
from edge.errors import EdgeError
from edge.preprocess import Preprocessing, Preprocessor, Roi, crop_roi, to_color
from edge.schema import StrictModel, one_line_errors
from edge.scoring import ScoreConfig, frame_scores, peak_box, smooth


class TilingConfig(StrictModel):
    """Cut the (ROI of the) frame into overlapping tiles instead of resizing it to the model input."""

    # Tile size in frame pixels; each tile is resized to the model input. None: the model input
    # size itself, i.e. tiles at the camera's native resolution (no down-scaling at all).
    tile: Optional[tuple[int, int]] = Field(
        None, description="tile width, height in frame pixels; default: model input size"
    )
    overlap: float = Field(0.25, ge=0.0, lt=0.9, description="fraction of a tile shared with its neighbour")

    @field_validator("tile")
    @classmethod
    def _tile_positive(cls, tile):
        if tile is not None and (tile[0] <= 0 or tile[1] <= 0):
            raise ValueError("tile must be width,height > 0")
        return tile


class GeometryConfig(StrictModel):
    """Which part of the frame is inspected, and how it is fed to the model."""

    # x, y, w, h in frame pixels. When set it replaces the bundle's preprocessing.roi (the one it
    # was calibrated with): change it only when the camera moved, not to change what is inspected.
    roi: Optional[Roi] = Field(None, description="x,y,w,h in frame pixels; overrides the bundle's roi")
    # Grey image, the size of the frame or of the ROI: non-zero pixels are inspected, zero pixels
    # (fixtures, belt edges, labels) do not count in the score or the heatmap.
    mask: Optional[str] = Field(None, description="mask image: white = inspected, black = ignored")
    tiling: Optional[TilingConfig] = Field(None, description="tile the frame instead of resizing it")


# -- implementation ----------------------------------------------------------------------------


_LAYOUTS_KEPT = 8  # frame sizes whose cut (and buffers) are remembered


def load_mask(path: str | Path, base: Optional[str | Path] = None) -> np.ndarray:
    """Read a mask image as uint8 (H, W); a relative path is taken from `base` (a bundle folder)."""
    path = Path(path)
    if base is not None and not path.is_absolute():
        path = Path(base) / path
    if not path.is_file():
        raise EdgeError(f"mask image not found: {path}")
    mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if mask is None:
        raise EdgeError(f"mask {path} is not an image OpenCV can read (use a PNG, white = inspected)")
    if not mask.any():
        raise EdgeError(f"mask {path} is all black: nothing would be inspected (white = inspected)")
    return mask


def grid(length: int, tile: int, overlap: float) -> list[int]:
    """Start positions of tiles of size `tile` covering [0, length), overlapping at least `overlap`.

    The first tile starts at 0 and the last ends at `length`; the rest are spread evenly, so the
    actual overlap is at least the requested one.
    """
    if tile >= length:
        return [0]
    stride = max(1, int(tile * (1.0 - overlap)))
    n = -(-(length - tile) // stride) + 1  # ceil division
    return [int(round(i * (length - tile) / (n - 1))) for i in range(n)]


@dataclass
class Layout:
    """How one frame size is cut: tile rectangles in ROI pixels and their place in the map."""

    roi_hw: tuple[int, int]
    tiles: list[tuple[int, int, int, int]]  # x, y, w, h in ROI pixels
    places: list[tuple[int, int]]  # y, x of each tile's map in the stitched map
    map_hw: tuple[int, int]
    inv_count: np.ndarray  # 1 / number of tiles covering each map pixel
    mask: Optional[np.ndarray]  # bool at map resolution, or None
    mask_count: int


@dataclass
class Scored:
    score: float
    map: np.ndarray  # (H, W) float32 anomaly map over the ROI; zero outside the mask


class Tiler:
    """Frame -> model inputs (one, or overlapping tiles) and model maps -> one map over the ROI.

    Pure functions of the frame: the device and calibration call the same ones.

        tiler = Tiler(preprocessing, geometry, base=bundle_folder)
        batch = tiler.tiles(frame)               # uint8 (N, h, w, c), N = 1 without tiling
        heat = tiler.stitch(detector_maps)       # (H, W) over the ROI, overlaps averaged, masked
        score = tiler.score(heat, score_config)  # only mask pixels count

    Without tiling the map is at model resolution; with tiling it is at the tiles' resolution
    (frame pixels x model size / tile size; with the default tile size, frame pixels).
    The buffers returned by tiles() and stitch() are reused by the next call of the same frame
    size: copy them to keep them.
    """

    def __init__(
        self,
        preprocessing: Preprocessing,
        geometry: Optional[GeometryConfig] = None,
        base: Optional[str | Path] = None,
        mask: Optional[np.ndarray] = None,
    ):
        geometry = geometry or GeometryConfig()
        if geometry.roi is not None:
            preprocessing = preprocessing.model_copy(update={"roi": tuple(geometry.roi)})
        self.preprocessing = preprocessing
        self.geometry = geometry
        self.tiling = geometry.tiling
        self._pre = Preprocessor(preprocessing)
        if mask is None and geometry.mask is not None:
            mask = load_mask(geometry.mask, base)
        self._mask_image = mask
        self._layouts: dict[tuple[int, int], Layout] = {}
        self._batch: dict[tuple[int, int], np.ndarray] = {}
        self._maps: dict[tuple[int, int], np.ndarray] = {}
        self._interp = cv2.INTER_AREA if preprocessing.interpolation == "area" else cv2.INTER_LINEAR

    def twin(self) -> "Tiler":
        """A Tiler with the same settings and mask but buffers of its own (for another thread)."""
        return Tiler(self.preprocessing, self.geometry, mask=self._mask_image)

    @property
    def roi(self) -> Optional[tuple[int, int, int, int]]:
        return self.preprocessing.roi

    @property
    def masked(self) -> bool:
        return self._mask_image is not None

    def layout(self, frame_hw: tuple[int, int]) -> Layout:
        """The cut for frames of this size (computed once per size)."""
        key = (int(frame_hw[0]), int(frame_hw[1]))
        found = self._layouts.get(key)
        if found is not None:
            return found
        roi = self.roi
        if roi is not None and (roi[0] + roi[2] > key[1] or roi[1] + roi[3] > key[0]):
            raise EdgeError(
                f"region of interest {','.join(map(str, roi))} lies outside the {key[1]}x{key[0]} frame; fix the roi"
            )
        rh, rw = (roi[3], roi[2]) if roi is not None else key
        mh, mw = self.preprocessing.height, self.preprocessing.width
        if self.tiling is None:
            tiles, places, map_hw = [(0, 0, rw, rh)], [(0, 0)], (mh, mw)
        else:
            tw, th = self.tiling.tile or (mw, mh)
            tw, th = min(tw, rw), min(th, rh)
            sx, sy = mw / tw, mh / th
            xs, ys = grid(rw, tw, self.tiling.overlap), grid(rh, th, self.tiling.overlap)
            tiles = [(x, y, tw, th) for y in ys for x in xs]
            places = [(int(round(y * sy)), int(round(x * sx))) for y in ys for x in xs]
            map_hw = (max(py for py, _ in places) + mh, max(px for _, px in places) + mw)
        count = np.zeros(map_hw, np.float32)
        for py, px in places:
            count[py : py + mh, px : px + mw] += 1.0
        mask, mask_count = self._mask_at(key, (rh, rw), map_hw)
        layout = Layout((rh, rw), tiles, places, map_hw, 1.0 / count, mask, mask_count)
        if len(self._layouts) >= _LAYOUTS_KEPT:  # a folder of many sizes must not grow memory forever
            self._layouts.pop(next(iter(self._layouts)))
            self._batch.clear()
            self._maps.clear()
        self._layouts[key] = layout
        return layout

    def _mask_at(self, frame_hw, roi_hw, map_hw) -> tuple[Optional[np.ndarray], int]:
        mask = self._mask_image
        if mask is None:
            return None, 0
        if mask.shape[:2] == tuple(frame_hw):
            mask = crop_roi(mask, self.roi)
        elif mask.shape[:2] != tuple(roi_hw):
            raise EdgeError(
                f"mask is {mask.shape[1]}x{mask.shape[0]} but frames are {frame_hw[1]}x{frame_hw[0]} "
                f"(region of interest {roi_hw[1]}x{roi_hw[0]}); draw the mask at the frame or ROI size"
            )
        small = cv2.resize(mask, (map_hw[1], map_hw[0]), interpolation=cv2.INTER_AREA)
        keep = small >= 128
        if not keep.any():
            raise EdgeError("the mask leaves no pixel to inspect at model resolution; widen the white area")
        return keep, int(keep.sum())

    def tiles(self, frame: np.ndarray) -> np.ndarray:
        """uint8 frame (BGR or grey, any size) -> uint8 (N, h, w, c) model inputs."""
        if frame.dtype != np.uint8:
            raise EdgeError(f"frames must be 8-bit images, got {frame.dtype}")
        layout = self.layout(frame.shape[:2])
        if self.tiling is None:
            return self._pre.prepare(frame)[None]
        cfg = self.preprocessing
        key = layout.roi_hw
        batch = self._batch.get(key)
        if batch is None or batch.shape[0] != len(layout.tiles):
            batch = self._batch[key] = np.empty((len(layout.tiles), *cfg.input_shape), np.uint8)
        # Colour once for the whole ROI, then cut; a tile at the model size is a plain copy.
        roi = to_color(crop_roi(frame, cfg.roi), cfg.color)
        for i, (x, y, w, h) in enumerate(layout.tiles):
            piece = roi[y : y + h, x : x + w]
            if w == cfg.width and h == cfg.height:
                batch[i] = piece
            else:
                resized = cv2.resize(piece, (cfg.width, cfg.height), interpolation=self._interp)
                batch[i] = resized.reshape(cfg.input_shape)
        return batch

    def stitch(self, maps: np.ndarray, frame_hw: Optional[tuple[int, int]] = None) -> np.ndarray:
        """(N, h, w) model maps -> (H, W) map over the ROI: overlaps averaged, outside the mask zero."""
        layout = self._only_layout() if frame_hw is None else self.layout(frame_hw)
        if len(maps) != len(layout.places):
            raise ValueError(f"{len(maps)} maps for a layout of {len(layout.places)} tiles")
        mh, mw = maps.shape[1:3]
        out = self._maps.get(layout.map_hw)
        if out is None:
            out = self._maps[layout.map_hw] = np.empty(layout.map_hw, np.float32)
        if len(maps) == 1:
            out[...] = maps[0]
        else:
            out.fill(0.0)
            for m, (py, px) in zip(maps, layout.places, strict=True):
                out[py : py + mh, px : px + mw] += m
            out *= layout.inv_count
        if layout.mask is not None:
            out[~layout.mask] = 0.0
        return out

    def _only_layout(self) -> Layout:
        if len(self._layouts) != 1:
            raise ValueError("pass frame_hw: this tiler has seen frames of several sizes")
        return next(iter(self._layouts.values()))

    def score(self, heat: np.ndarray, config: ScoreConfig, frame_hw: Optional[tuple[int, int]] = None) -> float:
        """The frame score of a stitched map, as the bundle defines it; only mask pixels count."""
        layout = (
            None if self._mask_image is None else (self._only_layout() if frame_hw is None else self.layout(frame_hw))
        )
        if layout is None or layout.mask is None:
            return float(frame_scores(heat[None], config)[0])
        keep = layout.mask
        if config.kind == "mean":
            return float(heat.sum(dtype=np.float64) / layout.mask_count)  # outside is zero already
        if config.kind == "max_blur":
            return float(smooth(heat[None], config.blur_sigma)[0][keep].max())
        values = heat[keep]
        k = max(1, int(round(values.size * config.topk)))
        return float(np.partition(values, values.size - k)[-k:].mean())

    def box(self, heat: np.ndarray, frame_hw: tuple[int, int]) -> tuple[int, int, int, int]:
        """Box (x, y, w, h) in frame pixels around the highest-error region of a stitched map."""
        layout = self.layout(frame_hw)
        x, y, w, h = peak_box(heat, layout.roi_hw)
        if self.roi is not None:
            x, y = x + self.roi[0], y + self.roi[1]
        return x, y, w, h

    def frame_map(self, heat: np.ndarray, frame_hw: tuple[int, int]) -> np.ndarray:
        """The stitched map placed on a frame-sized canvas (zero outside the ROI), for drawing."""
        if self.roi is None:
            return heat
        layout = self.layout(frame_hw)
        rh, rw = layout.roi_hw
        # Canvas at the map's scale, so the heatmap keeps its resolution when drawn.
        sy, sx = heat.shape[0] / rh, heat.shape[1] / rw
        canvas = np.zeros((int(round(frame_hw[0] * sy)), int(round(frame_hw[1] * sx))), np.float32)
        x0, y0 = int(round(self.roi[0] * sx)), int(round(self.roi[1] * sy))
        h, w = min(heat.shape[0], canvas.shape[0] - y0), min(heat.shape[1], canvas.shape[1] - x0)
        canvas[y0 : y0 + h, x0 : x0 + w] = heat[:h, :w]
        return canvas


class FrameScorer:
    """One frame -> its score and map, through a detector and a Tiler (one batched invoke per frame).

    Map-scored detectors (they carry a ScoreConfig as `.score`) are scored on the stitched map,
    so the bundle's score definition applies to the whole frame. Detectors whose `.score` is None
    (the crack classifier) score each tile themselves; the frame takes the highest tile score.
    """

    def __init__(self, detector: Detector, tiler: Tiler, score: Optional[ScoreConfig] = None):
        self.detector = detector
        self.tiler = tiler
        self.score_config = score or detector.score
        # Untouched frames (no tiling, no mask) keep the detector's own score: same numbers as
        # scoring a batch of prepared frames directly.
        self._plain = tiler.tiling is None and not tiler.masked

    def __call__(self, frame: np.ndarray) -> Scored:
        return self.score(frame)

    def score(self, frame: np.ndarray) -> Scored:
        return self.combine(self.detector.detect(self.tiler.tiles(frame)), frame.shape[:2])

    def combine(self, detection: Detection, frame_hw: tuple[int, int]) -> Scored:
        """A detection of this frame's tiles -> the frame's score and stitched map."""
        hw = frame_hw
        heat = self.tiler.stitch(detection.maps, hw)
        if self._plain or self.score_config is None:
            value = float(detection.scores[0] if self._plain else np.max(detection.scores))
        else:
            value = self.tiler.score(heat, self.score_config, hw)
        return Scored(value, heat)


def parse_roi(text: str) -> tuple[int, int, int, int]:
    """'x,y,w,h' (frame pixels) -> a tuple; EdgeError with the expected form otherwise."""
    parts = text.replace(" ", "").split(",")
    if len(parts) != 4 or not all(p.isdigit() for p in parts):
        raise EdgeError(f"--roi {text!r}: give x,y,w,h in frame pixels, e.g. --roi 100,40,640,480")
    x, y, w, h = (int(p) for p in parts)
    if w <= 0 or h <= 0:
        raise EdgeError(f"--roi {text!r}: width and height must be > 0")
    return x, y, w, h


def parse_tile(text: str) -> Optional[tuple[int, int]]:
    """'model' (tiles of the model's input size: native resolution) or 'WxH' in frame pixels."""
    if text.lower() in ("model", "native", "auto"):
        return None
    w, sep, h = text.lower().partition("x")
    if not sep or not w.isdigit() or not h.isdigit() or int(w) <= 0 or int(h) <= 0:
        raise EdgeError(
            f"--tile {text!r}: give 'model' (tiles at the model input size) or WxH in frame pixels, e.g. 256x256"
        )
    return int(w), int(h)


def geometry_with_options(
    base: Optional[GeometryConfig] = None,
    roi: Optional[str] = None,
    mask: Optional[str] = None,
    tile: Optional[str] = None,
    overlap: Optional[float] = None,
) -> GeometryConfig:
    """A config file's geometry with command-line options laid over it (None: keep the file's).

    Only the fields that were set (in the file or here) count as set, so the bundle's own
    geometry still applies to the rest (see edge.pipeline.resolve_geometry).
    """
    data = base.model_dump(exclude_unset=True) if base is not None else {}
    if roi is not None:
        data["roi"] = parse_roi(roi)
    if mask is not None:
        data["mask"] = mask
    if tile is not None or overlap is not None:
        tiling = dict(data.get("tiling") or {})
        if tile is not None:
            tiling["tile"] = parse_tile(tile)
        if overlap is not None:
            tiling["overlap"] = overlap
        data["tiling"] = tiling
    with one_line_errors("bad geometry options"):
        return GeometryConfig.model_validate(data)
