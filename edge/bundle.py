"""The unit of deployment: a folder with the model, bundle.json and a calibration report.

bundle.json names the model file and its sha256, the preprocessing, the score definition and
the calibrated threshold. `load_bundle` checks all of it before a single frame is read.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import Field, ValidationError

from edge import __version__
from edge.errors import EdgeError
from edge.preprocess import Preprocessing
from edge.schema import StrictModel, first_problem, non_finite_at
from edge.scoring import ScoreConfig
from edge.signal_data import SignalSpec
from edge.tiling import GeometryConfig

SCHEMA_VERSION = 1
MANIFEST = "bundle.json"
# In a folder of bundle versions (edge/bundle_history.py): the file naming the version in use, e.g. "v3".
CURRENT = "current"
Quantization = Literal["int8", "float16", "dynamic", "float32"]
# anomaly_map: the model outputs the anomaly map itself (edge/anomaly_map.py; pretrained-feature models)
ModelKind = Literal["autoencoder", "classifier", "anomaly_map"]


class TensorSpec(StrictModel):
    name: str = ""
    shape: list[int]
    dtype: str
    scale: float = 0.0
    zero_point: int = 0


class ModelInfo(StrictModel):
    file: str
    sha256: str
    kind: ModelKind = "autoencoder"
    quantization: Quantization
    input: TensorSpec
    outputs: list[TensorSpec]
    # The same model for an accelerator, kept beside `file` (the CPU model): accelerator -> file name,
    # each hashed in Manifest.files. "edgetpu": compiled by edgetpu_compiler, run with --delegate
    # edgetpu; "onnxruntime": the .onnx, run with --runtime onnxruntime (edge.runtime.model_file_for).
    variants: dict[Literal["edgetpu", "onnxruntime"], str] = Field(default_factory=dict)


class RateInterval(StrictModel):
    """A rate measured on calibration images (k of n) and its exact (Clopper–Pearson) interval."""

    k: int
    n: int
    low: float
    high: float

    @property
    def rate(self) -> float:
        return self.k / self.n if self.n else 0.0


class ImagesNeeded(StrictModel):
    """How many normal images pin the target false-alarm rate down to ± half_width."""

    rate: float
    half_width: float
    images: int


class Threshold(StrictModel):
    value: float
    method: str
    # What scored the calibration images (edge.runtime: "ai-edge-litert on the CPU", "... + Edge TPU
    # delegate", "onnxruntime, CPUExecutionProvider"); absent in bundles made before it was recorded.
    runtime: Optional[str] = None
    # How sure the calibration is (edge.binomial; absent in bundles made before it was recorded):
    # the confidence of the intervals (and of fpr-upper's bound), the false-alarm rate on the normal
    # images and its interval, its one-sided upper bound, recall with its interval (anomalous images
    # given), and how many normal images the target rate of an fpr-type method needs.
    confidence: Optional[float] = None
    false_alarm: Optional[RateInterval] = None
    false_alarm_upper: Optional[float] = None
    recall: Optional[RateInterval] = None
    normal_needed: Optional[ImagesNeeded] = None

    def describe_confidence(self) -> list[str]:
        """Lines for `edge calibrate` and `edge info`; none for an older bundle."""
        if self.confidence is None or self.false_alarm is None:
            return []
        c, f = self.confidence, self.false_alarm
        lines = [
            f"false alarms {f.rate:.2%} of {f.n} normal images; {c:.0%} interval {f.low:.2%}–{f.high:.2%}, "
            f"at most {self.false_alarm_upper:.2%} with {c:.0%} confidence"
        ]
        if self.recall is not None:
            r = self.recall
            lines.append(f"recall {r.rate:.2%} of {r.n} anomalous images; {c:.0%} interval {r.low:.2%}–{r.high:.2%}")
        need = self.normal_needed
        if need is not None:
            lines.append(
                f"to know a false-alarm rate of {need.rate:g} within ±{need.half_width:g} at {c:.0%} needs about "
                f"{need.images} normal images (these {f.n} give ±{max(f.rate - f.low, f.high - f.rate):.3f})"
            )
        return lines


class ScoreStats(StrictModel):
    count: int
    mean: float
    std: float
    min: float
    max: float
    quantiles: dict[str, float] = Field(default_factory=dict)


class VariantCalibration(StrictModel):
    """A variant model's own calibration: its scores are not the main model's (another quantization,
    another runtime), so its threshold is set on its own scores of the same images (calibrate what you deploy)."""

    threshold: Threshold
    normal_scores: Optional[ScoreStats] = None
    anomalous_scores: Optional[ScoreStats] = None
    metrics: Optional[dict[str, Any]] = None
    quantization: Optional[Quantization] = None  # the variant model's (its card's); None: as model.quantization


# The variants that carry their own threshold. The Edge TPU's does not: it is recalibrated on the
# device into the main threshold (`edge calibrate --from --delegate edgetpu`), and a run that falls
# back to the CPU model keeps it.
OwnThresholdVariant = Literal["onnxruntime"]


class Calibration(StrictModel):
    """Why a bundle version has its threshold: how it was calibrated, on what, and how many images."""

    method: str
    data: str  # the folder of normal frames
    normal: int  # images scored
    skipped: int = 0  # unreadable or truncated
    on: str = "device"  # where: "device" (`edge calibrate --from`) or "desktop"


class Manifest(StrictModel):
    """bundle.json. Unknown keys are refused so a typo never silently changes behaviour."""

    schema_version: int = SCHEMA_VERSION
    created: str = Field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    edge_inspect_version: str = __version__
    model: ModelInfo
    preprocessing: Preprocessing
    score: ScoreConfig
    threshold: Threshold
    normal_scores: Optional[ScoreStats] = None
    anomalous_scores: Optional[ScoreStats] = None
    metrics: Optional[dict[str, Any]] = None
    # Tiling / mask the threshold was calibrated with (edge.tiling); a mask path is relative to the bundle.
    geometry: Optional[GeometryConfig] = None
    # sha256 of every other file of the bundle the device reads (the inspection mask), by relative path
    files: dict[str, str] = Field(default_factory=dict)
    extra: dict[str, Any] = Field(default_factory=dict, description="model-specific data (e.g. CAM weights)")
    # Lineage (edge/bundle_history.py): set on the versions `edge calibrate --from` writes; a bundle
    # without them is version 1 of itself, its id derived from its bundle.json (Bundle.id).
    id: Optional[str] = None
    version: Optional[int] = None
    parent: Optional[str] = None  # the id of the bundle this one was recalibrated from
    calibration: Optional[Calibration] = None
    # A signal model (edge/signal_data.py): windows of `length` samples, normalised as it says, fed
    # as a 1 x length grey frame. None: an image model. Absent from every image bundle, so they read as before.
    signal: Optional[SignalSpec] = None
    # The ONNX variant's own threshold and score statistics (model.variants["onnxruntime"]), set on its
    # own scores; `edge run --runtime onnxruntime` uses it (Bundle.for_variant). Absent: none (older bundles).
    variant_calibration: dict[OwnThresholdVariant, VariantCalibration] = Field(default_factory=dict)

    def describe_score(self) -> str:
        """What the score is, for logs and reports (a classifier's is its positive-class probability)."""
        return describe_score(self.model.kind, self.score, self.extra)

    def card(self) -> "ModelCard":
        """The model card this bundle's model was exported with (what edge.detector's factories read)."""
        return ModelCard(
            kind=self.model.kind,
            quantization=self.model.quantization,
            preprocessing=self.preprocessing,
            score=self.score,
            extra=self.extra,
            signal=self.signal,
        )


def describe_score(kind: str, score: ScoreConfig, extra: dict[str, Any]) -> str:
    """e.g. "max_blur(sigma=4)", or "crack probability" for a classifier, whose ScoreConfig is unused
    (its default kind, "mean", would name a score the classifier does not compute)."""
    if kind == "classifier":
        return f"{extra.get('positive_class', 'positive-class')} probability"
    return score.describe()


class Bundle:
    def __init__(self, path: Path, manifest: Manifest, variant: Optional[str] = None):
        self.path = path
        self.manifest = manifest
        # The variant whose own calibration is in force (for_variant); None: the main model's.
        self.variant = variant

    @property
    def model_path(self) -> Path:
        return self.path / self.manifest.model.file

    @property
    def model_file(self) -> str:
        """The name of the model file that runs: the variant's when one is in force."""
        if self.variant is None:
            return self.manifest.model.file
        return self.manifest.model.variants[self.variant]  # type: ignore[index]

    @property
    def model_sha256(self) -> str:
        """The sha256 of the model file that runs: the variant's when one is in force (a page override names it)."""
        return self.manifest.model.sha256 if self.variant is None else self.manifest.files[self.model_file]

    def for_variant(self, variant: str) -> "Bundle":
        """This bundle as its `variant` model runs it: that model's own threshold, score statistics, metrics
        (and quantization) in the manifest's place, so all that reads them (decider, drift, page) gets the
        one in force."""
        own = self.manifest.variant_calibration.get(variant)  # type: ignore[call-overload]
        if own is None:
            raise EdgeError(
                f"bundle {self.path} keeps the {variant} model {self.manifest.model.variants.get(variant)} but no "  # type: ignore[call-overload]
                f"threshold calibrated on it (the main one, set on {self.manifest.model.file}'s scores, does not fit "
                f"its scores): recalibrate it, `edge calibrate --from {self.path} --normal GOOD_FRAMES --runtime "
                f"{variant} --out HISTORY`"
            )
        fields = ("threshold", "normal_scores", "anomalous_scores", "metrics")
        update: dict[str, Any] = {k: getattr(own, k) for k in fields}
        if own.quantization is not None:  # e.g. an ONNX float32 model beside an int8 .tflite
            update["model"] = self.manifest.model.model_copy(update={"quantization": own.quantization})
        return Bundle(self.path, self.manifest.model_copy(update=update), variant)

    @property
    def threshold(self) -> float:
        return self.manifest.threshold.value

    @cached_property
    def id(self) -> str:
        """The manifest's id; for a bundle written before ids, the start of its bundle.json's sha256."""
        if self.manifest.id:
            return self.manifest.id
        try:
            return sha256_file(self.path / MANIFEST)[:12]
        except OSError:
            return ""

    @property
    def version(self) -> int:
        return self.manifest.version or 1


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _read_json(path: Path) -> Any:
    """The parsed JSON of `path`; unreadable, not UTF-8 or not JSON is one line."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise EdgeError(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise EdgeError(f"{path} is not valid JSON ({exc})") from None


def _validated(model: type[StrictModel], raw: Any, path: Path) -> Any:
    """`raw` as a `model`; NaN or infinity anywhere (free-form fields too) or a violation is one line."""
    found = non_finite_at(raw)
    if found is not None:
        raise EdgeError(f"{path} is invalid: {found[0]}: must be a finite number, not {found[1]!r}")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise EdgeError(f"{path} is invalid: {first_problem(exc, with_key=True)}") from None


def load_bundle(path: str | Path, verify: bool = True) -> Bundle:
    """Read and check a bundle folder (or its bundle.json)."""
    path = Path(path)
    if path.is_file() and path.name == MANIFEST:
        path = path.parent
    path = current_version(path)
    manifest_path = path / MANIFEST
    if not path.is_dir():
        raise EdgeError(f"bundle not found: {path} (make one with `edge calibrate`)")
    if not manifest_path.is_file():
        raise EdgeError(f"{path} is not a bundle: no {MANIFEST} in it (make one with `edge calibrate`)")
    raw = _read_json(manifest_path)
    version = raw.get("schema_version") if isinstance(raw, dict) else None
    if version != SCHEMA_VERSION:
        raise EdgeError(
            f"{manifest_path} has schema version {version!r}; this edge-inspect {__version__} reads "
            f"version {SCHEMA_VERSION} (re-run `edge calibrate` or upgrade edge-inspect)"
        )
    manifest = _validated(Manifest, raw, manifest_path)
    bundle = Bundle(path, manifest)
    if verify:
        if not bundle.model_path.is_file():
            raise EdgeError(f"bundle model missing: {bundle.model_path}")
        actual = sha256_file(bundle.model_path)
        if actual != manifest.model.sha256:
            raise EdgeError(
                f"model hash mismatch in {path}: {manifest.model.file} has sha256 {actual[:12]}…, "
                f"bundle.json says {manifest.model.sha256[:12]}…; the model was changed after calibration, "
                "re-run `edge calibrate`"
            )
        for name, expected in manifest.files.items():
            path = bundle.path / name
            if not path.is_file():
                raise EdgeError(f"bundle file missing: {path} (bundle.json lists it); copy the whole bundle folder")
            if sha256_file(path) != expected:
                raise EdgeError(
                    f"hash mismatch in {bundle.path}: {name} was changed after calibration; re-run `edge calibrate`"
                )
    return bundle


def current_version(path: Path) -> Path:
    """A folder of bundle versions → its current version's folder; any other path as it is."""
    pointer = path / CURRENT
    if (path / MANIFEST).exists() or not pointer.is_file():
        return path
    try:
        name = pointer.read_text(encoding="utf-8").strip()
    except (OSError, ValueError) as exc:
        raise EdgeError(f"cannot read {pointer}: {exc}") from None
    if not name or "/" in name or name.startswith(".") or not (path / name).is_dir():
        raise EdgeError(
            f"{pointer} names {name!r}, which is not a version folder in {path}; "
            "see `edge bundles PATH` and make one current with `edge bundles PATH --rollback`"
        )
    return path / name


def write_bundle(out_dir: str | Path, manifest: Manifest, model_file: str | Path) -> Bundle:
    """Copy the model in, fill its hash, write bundle.json."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model_file = Path(model_file)
    target = out_dir / manifest.model.file
    if model_file.resolve() != target.resolve():
        shutil.copyfile(model_file, target)
    manifest.model.sha256 = sha256_file(target)
    mask = manifest.geometry.mask if manifest.geometry is not None else None
    if mask is not None and not Path(mask).is_absolute() and (out_dir / mask).is_file():
        manifest.files[mask] = sha256_file(out_dir / mask)
    (out_dir / MANIFEST).write_text(manifest.model_dump_json(indent=2) + "\n")
    return Bundle(out_dir, manifest)


class ModelCard(StrictModel):
    """Sidecar `<model>.json` written by `edge export`: what calibration needs to know of a model."""

    kind: ModelKind = "autoencoder"
    quantization: Quantization
    preprocessing: Preprocessing
    score: ScoreConfig = Field(default_factory=ScoreConfig)
    source: str = Field("", description="the Keras model it was exported from")
    extra: dict[str, Any] = Field(default_factory=dict)
    signal: Optional[SignalSpec] = None  # a signal model's windows (edge/signal_data.py); None: images

    def describe_score(self) -> str:
        return describe_score(self.kind, self.score, self.extra)


def card_path(model_path: str | Path) -> Path:
    """model_int8.tflite -> model_int8.json; an ONNX model's is model_int8.onnx.json (both may share a folder)."""
    path = Path(model_path)
    return path.with_name(path.name + ".json") if path.suffix.lower() == ".onnx" else path.with_suffix(".json")


def write_card(model_path: str | Path, card: ModelCard) -> Path:
    path = card_path(model_path)
    path.write_text(card.model_dump_json(indent=2) + "\n")
    return path


def read_card(model_path: str | Path) -> ModelCard:
    path = card_path(model_path)
    if not path.is_file():
        raise EdgeError(
            f"{path.name} not found beside {Path(model_path).name}: it holds the model's preprocessing; "
            "export the model with `edge export`, which writes it"
        )
    return _validated(ModelCard, _read_json(path), path)
