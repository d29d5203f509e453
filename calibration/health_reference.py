"""What the device's image checks (edge/health.py) compare with: measured here on the calibration
images and written into the bundle as health/reference.png (the small grey view the camera-moved
check correlates against) and health/reference.json (the images' median sharpness and mean grey).

numpy and OpenCV only, so calibration on the device can write it too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Optional

import cv2
import numpy as np

from edge.health import REFERENCE_DIR, REFERENCE_JSON, REFERENCE_PNG, HealthConfig, sharpness, small_grey

MAX_IMAGES = 100  # medians settle long before this; more only costs time


def _read(paths: list) -> list[np.ndarray]:
    step = max(len(paths) // MAX_IMAGES, 1)
    images = (cv2.imread(str(p), cv2.IMREAD_COLOR) for p in paths[::step][:MAX_IMAGES])
    return [image for image in images if image is not None]


def write_health_reference(bundle_dir: Path, image_paths: Iterable, width: Optional[int] = None) -> Optional[Path]:
    """Measure the images and write BUNDLE/health/; None (nothing written) when none could be read."""
    width = width or HealthConfig().width
    greys = [small_grey(image, width) for image in _read(sorted(map(str, image_paths)))]
    if not greys:
        return None
    folder = Path(bundle_dir) / REFERENCE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    # The first image is the reference view: the camera's position then is the one to keep.
    cv2.imwrite(str(folder / REFERENCE_PNG), greys[0])
    stats = {
        "width": width,
        "images": len(greys),
        "sharpness": float(np.median([sharpness(g) for g in greys])),
        "mean": float(np.median([g.mean() for g in greys])),
    }
    (folder / REFERENCE_JSON).write_text(json.dumps(stats, indent=1) + "\n")
    return folder
