"""`edge calibrate --from BUNDLE`: a new version of a bundle, calibrated on the device's own frames.

Same model (the bundle's file, hash-checked), same preprocessing, score and geometry; a new
threshold and normal statistics from the frames in NORMAL (as `edge collect` or the review
folder gathered them), scored through calibration.calibrate like any calibration. The version
records its lineage: `id`, `version` (the parent's + 1), `parent` (the parent's id) and
`calibration` (method, data folder, counts). It is added to a history of versions
(edge/bundle_history.py): BUNDLE itself when it is one, else a new one at --out whose first
version is a copy of BUNDLE.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Callable, Optional

from calibration import data as cal_data
from calibration.calibrate import FEW_NORMAL, calibrate
from calibration.variants import onnx_only
from edge import bundle_history
from edge.bundle import MANIFEST, Bundle, Calibration, current_version, load_bundle, sha256_file
from edge.errors import EdgeError
from edge.messages import to_stderr
from edge.runtime import RuntimeOptions
from edge.tiling import GeometryConfig

MIN_FRAMES = FEW_NORMAL  # below this a threshold is a guess: the desktop warns, a recalibration refuses


def recalibrate(
    source: str | Path,
    normal: str | Path,
    method: str = "quantile:0.999",
    out: Optional[str | Path] = None,
    *,
    model: Optional[str | Path] = None,
    log: Callable[[str], None] = to_stderr,
    **options,
) -> Bundle:
    """Write the next version of `source` (a bundle or a history of versions) and make it current.

    out:     the history to add to; default `source` when it is a history (required otherwise).
    model:   when given, must be the bundle's model (same sha256): a guard against the wrong bundle.
    options: calibrate()'s keyword options (batch_size, threads, progress, score, ...).
    Nothing is changed when any check or the scoring fails.
    """
    source = Path(source)
    history = _history_for(source, out)
    parent = load_bundle(source)
    _check_model(parent, model, history)
    images = cal_data.resolve(normal)
    if len(images.normal) < MIN_FRAMES:
        raise EdgeError(
            f"only {len(images.normal)} normal frame(s) in {normal}; a new bundle version needs at least "
            f"{MIN_FRAMES} (gather more with `edge collect`)"
        )
    created_history = not bundle_history.is_history(history)
    if created_history:
        bundle_history.start_history(parent.path, history)
    try:
        return _add_version(parent, history, images, method, log, options)
    except BaseException:
        if created_history:
            shutil.rmtree(history, ignore_errors=True)
        raise


def _history_for(source: Path, out: Optional[str | Path]) -> Path:
    if out is not None:
        return Path(out)
    if bundle_history.is_history(source):
        return source
    raise EdgeError(
        f"{source} is a single bundle, not a history of versions: pass --out HISTORY, a new folder "
        "that keeps this bundle as v1 and the new calibration as v2"
    )


def _check_model(parent: Bundle, model: Optional[str | Path], history: Path) -> None:
    """The same model everywhere: the one given, the parent's, the history's current one."""
    expected = parent.manifest.model.sha256
    if model is not None and sha256_file(model) != expected:
        raise EdgeError(f"{parent.path} is a bundle for another model than {model} (its sha256 differs)")
    if bundle_history.is_history(history):
        current = load_bundle(current_version(history), verify=False)
        if current.manifest.model.sha256 != expected:
            raise EdgeError(f"{history} holds versions of another model than {parent.path}'s; choose another --out")


def _add_version(parent: Bundle, history: Path, images, method: str, log, options: dict) -> Bundle:
    number = max([parent.version, *(n for n, _ in bundle_history.version_folders(history))]) + 1
    staged = bundle_history.staging_folder(history)
    try:
        calibrate(
            parent.model_path,
            images.normal_source,
            None,
            method,
            staged,
            card=parent.manifest.card(),
            geometry=_parent_geometry(parent),
            log=log,
            # the accelerator models it keeps go on into the new version (edge.runtime)
            variants={k: parent.path / v for k, v in parent.manifest.model.variants.items()},
            keep=parent,  # the calibration of the model not run now (main or ONNX) is kept
            **options,
        )
        _record_lineage(staged, parent, images, number, _recalibrated_variant(parent, options.get("runtime")))
        added = bundle_history.add_version(history, staged, number)
    finally:
        if staged.exists():
            shutil.rmtree(staged, ignore_errors=True)
    log(f"version v{number} of {history} is current (parent {parent.id}, v{parent.version})")
    return load_bundle(added)


def _parent_geometry(parent: Bundle) -> Optional[GeometryConfig]:
    """The parent's tiling and mask (its mask file, read from the parent's folder); None without them."""
    stored = parent.manifest.geometry
    if stored is None:
        return None
    mask = str(parent.path / stored.mask) if stored.mask is not None else None
    return GeometryConfig(mask=mask, tiling=stored.tiling)


def _recalibrated_variant(parent: Bundle, runtime: Optional[RuntimeOptions]) -> Optional[str]:
    """The ONNX variant ("onnxruntime") when this recalibration scores only the ONNX model kept beside the .tflite."""
    onnx = parent.manifest.model.variants.get("onnxruntime")
    return "onnxruntime" if onnx is not None and onnx_only(parent, parent.path / onnx, runtime) else None


def _record_lineage(
    staged: Path, parent: Bundle, images: cal_data.CalibrationSet, number: int, variant: Optional[str]
) -> None:
    """Add id, version, parent and why to the staged bundle.json (the hashes cover the model and mask only)."""
    bundle = load_bundle(staged)
    manifest = bundle.manifest
    # What was calibrated now: the ONNX model's own threshold and scores, or the main ones
    now = bundle.for_variant(variant).manifest if variant is not None else manifest
    scored = now.normal_scores.count if now.normal_scores is not None else 0
    manifest.id = uuid.uuid4().hex[:12]
    manifest.version = number
    manifest.parent = parent.id
    manifest.calibration = Calibration(
        method=now.threshold.method,
        data=str(images.normal_source),
        normal=scored,
        skipped=len(images.normal) - scored,
    )
    (staged / MANIFEST).write_text(manifest.model_dump_json(indent=2) + "\n")
