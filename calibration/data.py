"""Which images calibration scores: plain folders or an MVTec AD root.

- ``--normal DIR`` is a folder of good images, or an MVTec AD root (a folder with ``test/good``).
  For an MVTec root the normal set is ``test/good``, NOT ``train/good``: those images trained the
  autoencoder, which reconstructs them better than unseen parts, so a threshold set on them
  would be too low and raise false alarms on the line.
- Anomalous images come from ``--anomalous DIR`` (a plain folder, or an MVTec root whose
  ``test/<defect>`` folders are all used). When it is not given and ``--normal`` is an MVTec
  root, every ``test/<defect>`` folder other than ``good`` is used as anomalous.
- ``ground_truth/`` masks are never read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from edge.errors import EdgeError
from edge.imaging import list_images


@dataclass
class CalibrationSet:
    normal: list[Path]
    normal_source: Path
    anomalous: list[Path] = field(default_factory=list)
    anomalous_groups: list[str] = field(default_factory=list)  # folder name of each anomalous file
    anomalous_sources: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def is_mvtec_root(folder: Path) -> bool:
    return (folder / "test").is_dir() and ((folder / "test" / "good").is_dir() or (folder / "train" / "good").is_dir())


def _defect_folders(root: Path) -> list[Path]:
    return sorted(d for d in (root / "test").iterdir() if d.is_dir() and d.name != "good")


def _anomalous_from(folder: Path) -> tuple[list[Path], list[str], list[Path]]:
    if is_mvtec_root(folder):
        files, groups, sources = [], [], []
        for d in _defect_folders(folder):
            try:
                found = list_images(d)
            except EdgeError:
                continue  # an empty defect folder is not an error when others have images
            files += found
            groups += [d.name] * len(found)
            sources.append(d)
        if not files:
            raise EdgeError(f"no defect images in {folder / 'test'}/<defect>/ (MVTec AD layout); pass --anomalous DIR")
        return files, groups, sources
    found = list_images(folder)
    return found, [folder.name] * len(found), [folder]


def resolve(normal: str | Path, anomalous: Optional[str | Path] = None) -> CalibrationSet:
    """List the normal and anomalous files as described in the module docstring."""
    normal = Path(normal)
    if not normal.exists():
        raise EdgeError(f"--normal folder not found: {normal} (check the path)")
    notes = []
    mvtec = normal.is_dir() and is_mvtec_root(normal)
    if mvtec:
        good = normal / "test" / "good"
        if not good.is_dir():
            raise EdgeError(
                f"{normal} looks like an MVTec AD root but has no test/good; its train/good images trained the "
                "model and would set the threshold too low: pass a folder of held-out good images as --normal"
            )
        normal_files = list_images(good)
        normal_source = good
    else:
        normal_files = list_images(normal)
        normal_source = normal
        parts = [p.lower() for p in normal.resolve().parts]
        if parts[-2:] == ["train", "good"] or parts[-1:] == ["train"]:
            notes.append(
                f"{normal} looks like training images: an autoencoder reconstructs images it was trained on "
                "better than new ones, so the threshold may come out too low; prefer held-out good images"
            )
    cal = CalibrationSet(normal_files, normal_source, notes=notes)
    if anomalous is not None:
        anomalous = Path(anomalous)
        if not anomalous.exists():
            raise EdgeError(f"--anomalous folder not found: {anomalous} (check the path)")
        cal.anomalous, cal.anomalous_groups, cal.anomalous_sources = _anomalous_from(anomalous)
    elif mvtec and _defect_folders(normal):
        cal.anomalous, cal.anomalous_groups, cal.anomalous_sources = _anomalous_from(normal)
    overlap = set(p.resolve() for p in cal.normal) & set(p.resolve() for p in cal.anomalous)
    if overlap:
        raise EdgeError(
            f"{len(overlap)} file(s) are in both the normal and the anomalous set (e.g. {sorted(overlap)[0]}); "
            "pass separate folders"
        )
    return cal
