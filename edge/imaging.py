"""Reading images from disk: listing folders, decoding, spotting truncated files."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge.errors import EdgeError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def list_images(folder: str | Path, recursive: bool = False) -> list[Path]:
    """Image files in a folder, sorted; a clear error when the folder is missing or has none."""
    folder = Path(folder)
    if not folder.exists():
        raise EdgeError(f"folder not found: {folder} (check the path)")
    if not folder.is_dir():
        raise EdgeError(f"not a folder: {folder} (pass a folder of images)")
    pattern = "**/*" if recursive else "*"
    files = sorted(p for p in folder.glob(pattern) if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise EdgeError(f"no images in {folder} (expected files ending in {', '.join(IMAGE_EXTENSIONS)})")
    return files


def _looks_truncated(data: bytes, suffix: str) -> bool:
    # OpenCV decodes a cut-off JPEG or PNG into a half-grey image with only a warning on stderr,
    # so check the end-of-image markers ourselves.
    tail = data[-64:]
    if suffix in (".jpg", ".jpeg"):
        return b"\xff\xd9" not in tail
    if suffix == ".png":
        return b"IEND" not in tail
    return False


def read_image(path: str | Path) -> np.ndarray | None:
    """Decode an image as uint8 (H, W) or (H, W, 3) BGR; None when the file is unreadable or truncated."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if not data or _looks_truncated(data, path.suffix.lower()):
        return None
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        return None
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    if image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    return image
