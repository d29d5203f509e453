"""Bundle versions on the device: a folder of versions, one of them current.

    bundles/line1/            the history (pass it wherever a bundle goes: `edge run --bundle bundles/line1`)
      current                 a text file naming the version in use: "v3"
      v1/ v2/ v3/             whole bundles (model, bundle.json, mask), each a version

`edge calibrate --from` writes the next version beside the others (staged in a hidden folder, then
renamed into place, then `current` replaced in one rename), so a failure leaves the history as
it was. Only the last KEEP versions stay; `edge bundles` lists them and `--rollback` makes the
version before the current one current again. A plain text pointer, not a symlink: it survives
copying to a FAT-formatted card and a zip, and reads the same on every system.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from edge.bundle import CURRENT, MANIFEST, Bundle, current_version, load_bundle
from edge.errors import EdgeError

KEEP = 5  # versions kept: enough to roll back a few recalibrations, small on a device's card
_VERSION = re.compile(r"v(\d+)")


@dataclass
class VersionInfo:
    """One version folder as `edge bundles` lists it; `problem` says why it cannot be used."""

    number: int
    path: Path
    current: bool
    bundle: Optional[Bundle] = None
    problem: Optional[str] = None

    def as_dict(self) -> dict:
        row = {"version": self.number, "path": str(self.path), "current": self.current, "problem": self.problem}
        if self.bundle is not None:
            m = self.bundle.manifest
            calibration = m.calibration.model_dump() if m.calibration is not None else None
            row.update(id=self.bundle.id, parent=m.parent, created=m.created, threshold=m.threshold.value)
            row.update(method=m.threshold.method, calibration=calibration, model_sha256=m.model.sha256)
        return row


def is_history(path: Path) -> bool:
    return (Path(path) / CURRENT).is_file() and not (Path(path) / MANIFEST).exists()


def version_folders(history: Path) -> list[tuple[int, Path]]:
    """(number, folder) of every v<N> folder, oldest first."""
    found = []
    for child in Path(history).iterdir():
        match = _VERSION.fullmatch(child.name)
        if match and child.is_dir():
            found.append((int(match.group(1)), child))
    return sorted(found)


def current_number(history: Path) -> int:
    return int(_VERSION.fullmatch(current_version(Path(history)).name).group(1))


def list_versions(history: Path) -> list[VersionInfo]:
    """Every version, each loaded and hash-checked; a broken one is listed with its problem."""
    history = _require_history(history)
    current = current_number(history)
    rows = []
    for number, folder in version_folders(history):
        row = VersionInfo(number, folder, number == current)
        try:
            row.bundle = load_bundle(folder)
        except EdgeError as exc:
            row.problem = str(exc)
        rows.append(row)
    return rows


def rollback(history: Path) -> VersionInfo:
    """Make the newest sound version older than the current one current; returns it."""
    history = _require_history(history)
    current = current_number(history)
    earlier = [(n, f) for n, f in version_folders(history) if n < current]
    if not earlier:
        raise EdgeError(f"no version before v{current} in {history}: nothing to roll back to")
    number, folder = earlier[-1]
    try:
        bundle = load_bundle(folder)
    except EdgeError as exc:
        raise EdgeError(f"cannot roll back to v{number}: {exc}") from None
    set_current(history, folder.name)
    return VersionInfo(number, folder, True, bundle)


def set_current(history: Path, name: str) -> None:
    """Point `current` at version folder `name` in one rename: a reader sees the old or the new name."""
    staged = Path(history) / f".{CURRENT}.tmp"
    staged.write_text(name + "\n", encoding="utf-8")
    os.replace(staged, Path(history) / CURRENT)


def staging_folder(history: Path) -> Path:
    """An empty hidden folder in `history` to write the next version into before it is added."""
    staged = Path(history) / ".staging"
    if staged.exists():
        shutil.rmtree(staged)  # left by an interrupted calibration: never a version
    return staged


def add_version(history: Path, staged: Path, number: int) -> Path:
    """Rename a written bundle into place as v<number>, make it current, drop the oldest beyond KEEP."""
    target = Path(history) / f"v{number}"
    if target.exists():
        raise EdgeError(f"{target} already exists; the history in {history} is not as expected")
    os.replace(staged, target)
    set_current(history, target.name)
    for _, old in version_folders(history)[:-KEEP]:
        shutil.rmtree(old, ignore_errors=True)
    return target


def place_version(history: Path, folder: Path, number: int) -> Path:
    """Rename a checked bundle folder (on the history's file system) into place as v<number>, NOT made
    current: a bundle command (edge.bundle_command) makes it current only once the run swapped it in."""
    target = Path(history) / f"v{number}"
    if target.exists():
        raise EdgeError(f"{target} already exists; the history in {history} is not as expected")
    os.replace(folder, target)
    return target


def prune(history: Path, spare: tuple[Path, ...] = ()) -> None:
    """Drop the oldest versions beyond KEEP, never the current one nor those in `spare` (a running bundle)."""
    keep = {Path(p).resolve() for p in spare} | {current_version(Path(history)).resolve()}
    for _, old in version_folders(history)[:-KEEP]:
        if old.resolve() not in keep:
            shutil.rmtree(old, ignore_errors=True)


def start_history(bundle_dir: Path, history: Path) -> None:
    """A new history at `history` whose first version is a copy of the plain bundle `bundle_dir`."""
    if history.exists() and any(history.iterdir()):
        raise EdgeError(f"--out {history} is not empty and holds no bundle versions; choose a new folder")
    history.mkdir(parents=True, exist_ok=True)
    first = f"v{load_bundle(bundle_dir).version}"
    shutil.copytree(bundle_dir, history / first)
    set_current(history, first)


def _require_history(path: Path) -> Path:
    path = Path(path)
    if not path.is_dir():
        raise EdgeError(f"bundle history not found: {path}")
    if not is_history(path):
        raise EdgeError(
            f"{path} holds no bundle versions (no {CURRENT} file): versions are made by "
            "`edge calibrate --from BUNDLE --out HISTORY`"
        )
    return path
