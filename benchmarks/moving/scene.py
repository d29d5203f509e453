"""A conveyor scene drawn from scratch: a dark textured belt, light parts at any place and angle.

Good frames hold one or two parts (a light plate with a round hole and a slot) anywhere on the
belt, at any angle. The anomalies are what a line sees: a foreign object (an orange scrap of
another shape) lying on the belt, or a defective part (its hole missing or a corner broken off).
Everything is seeded; frames are BGR uint8 like OpenCV's.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

BELT = 38  # grey level of the belt
PART = (212, 214, 218)  # BGR: a light grey plate
ORANGE = (20, 120, 235)  # BGR: the foreign object
ANOMALIES = ("foreign", "no_hole", "broken")


@dataclass
class Part:
    x: float  # centre, pixels
    y: float
    angle: float  # degrees
    flaw: str = ""  # "", "no_hole" or "broken"


def belt(size: int, offset: float, rng: np.random.Generator) -> np.ndarray:
    """The belt at `offset` pixels of travel: fabric grain and seams that move with it, fresh sensor noise."""
    h = w = size
    xs = np.arange(w) + offset
    grain = 6 * np.sin(xs * 0.9) * np.cos(np.arange(h)[:, None] * 1.7)  # the weave
    seams = np.where((xs % (size * 0.6)) < 3, -14.0, 0.0)  # a seam every 0.6 frame widths
    image = BELT + grain + seams + rng.normal(0, 3, (h, w))
    return np.repeat(np.clip(image, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def draw_part(image: np.ndarray, part: Part, scale: float) -> None:
    """A plate 0.26 x 0.15 frame widths with a round hole and a slot; `flaw` breaks it."""
    length, width = 0.26 * scale, 0.15 * scale
    box = cv2.boxPoints(((part.x, part.y), (length, width), part.angle))
    if part.flaw == "broken":  # a corner broken off: the plate's outline loses a triangle
        corner = box[0]
        box = np.array([corner + 0.45 * (box[1] - corner), *box[1:], corner + 0.45 * (box[3] - corner)])
    cv2.fillPoly(image, [np.round(box).astype(np.int32)], PART, cv2.LINE_AA)
    shade = tuple(int(c * 0.8) for c in PART)
    cv2.polylines(image, [np.round(box).astype(np.int32)], True, shade, max(1, int(scale / 128)), cv2.LINE_AA)
    a = np.deg2rad(part.angle)
    axis = np.array([np.cos(a), np.sin(a)])
    if part.flaw != "no_hole":
        hole = np.array([part.x, part.y]) + 0.25 * length * axis
        cv2.circle(image, tuple(np.round(hole).astype(int)), int(round(0.3 * width)), (BELT,) * 3, -1, cv2.LINE_AA)
    slot_a = np.array([part.x, part.y]) - 0.38 * length * axis
    slot_b = np.array([part.x, part.y]) - 0.1 * length * axis
    cv2.line(
        image,
        tuple(np.round(slot_a).astype(int)),
        tuple(np.round(slot_b).astype(int)),
        (60, 60, 60),
        max(1, int(0.12 * width)),
        cv2.LINE_AA,
    )


def draw_foreign(image: np.ndarray, x: float, y: float, scale: float, rng: np.random.Generator) -> None:
    """An orange scrap: an irregular polygon about a third of a part's length."""
    n = 7
    angles = np.sort(rng.uniform(0, 2 * np.pi, n))
    radii = 0.06 * scale * rng.uniform(0.6, 1.3, n)
    pts = np.stack([x + radii * np.cos(angles), y + radii * np.sin(angles)], 1)
    cv2.fillPoly(image, [np.round(pts).astype(np.int32)], ORANGE, cv2.LINE_AA)


def random_parts(rng: np.random.Generator, size: int, n: int, x_range: tuple[float, float] = (-0.1, 1.1)) -> list[Part]:
    """`n` parts anywhere (centre x within `x_range` of the frame width: by default some are cut by the
    frame's edge as they enter or leave it, as on a belt), any angle, not on top of each other."""
    parts: list[Part] = []
    for _ in range(50 * n):
        if len(parts) == n:
            break
        x = size * rng.uniform(*x_range)
        y = size * rng.uniform(0.2, 0.8)
        if all(np.hypot(p.x - x, p.y - y) > 0.3 * size for p in parts):
            parts.append(Part(x, y, rng.uniform(0, 180)))
    return parts


def render(
    rng: np.random.Generator,
    size: int,
    anomaly: str = "",
    offset: float | None = None,
    x_range: tuple[float, float] = (-0.1, 1.1),
) -> np.ndarray:
    """One still frame: one or two good parts, plus the anomaly if asked (one of ANOMALIES)."""
    image = belt(size, rng.uniform(0, 1000) if offset is None else offset, rng)
    parts = random_parts(rng, size, int(rng.integers(1, 3)), x_range)
    if anomaly in ("no_hole", "broken"):
        # the defective part in full view: a defect that is out of the frame is not in the frame
        parts[0].x = float(np.clip(parts[0].x, 0.2 * size, 0.8 * size))
        parts[0].flaw = anomaly
    for part in parts:
        draw_part(image, part, size)
    if anomaly == "foreign":
        x, y = free_spot(rng, size, parts)
        draw_foreign(image, x, y, size, rng)
    return cv2.GaussianBlur(image, (3, 3), 0.6)


def free_spot(rng: np.random.Generator, size: int, parts: list[Part]) -> tuple[float, float]:
    """A place on the belt away from every part (a scrap lies beside them, not on them)."""
    for _ in range(200):
        x, y = size * rng.uniform(0.1, 0.9, 2)
        if all(np.hypot(p.x - x, p.y - y) > 0.2 * size for p in parts):
            return float(x), float(y)
    return float(size * 0.1), float(size * 0.1)
