"""Fixed-length signal windows (heartbeats, vibration): reading them and turning them into model input.

numpy only: the device replays files and reads streams with it, calibration and training read
files with it, so every side parses and normalises a window the same way.

Files (`read_signal_file`), one of:
  * one window per line: the UCR text format (class label first, then the samples, whitespace
    separated, e.g. ECG5000), or CSV with or without a label column (a header line is allowed);
  * a recording: one sample per line (a single column), or one long line, cut into windows of
    `length` samples every `hop` samples.
Streams (stdin, a serial port) go through `WindowAssembler`: a line with `length` values is a
window (`length + 1`: a label, then the window), a line with one value is the next sample.

A window becomes the model's input as a 1 x length grey "image" of uint8 (`to_frame`): normalised
to [0, 1] as the bundle's `SignalSpec` says, then 8 bits, which is what a full-int8 model's input
resolves anyway. So the image models' interpreter wrapper, detector and score serve signals
unchanged (edge.model, edge.autoencoder, edge.scoring).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

import numpy as np
from pydantic import Field, model_validator

from edge.errors import EdgeError
from edge.schema import StrictModel

# minmax: each window to [0, 1] by its own min and max (gain and offset of the sensor drop out).
# zscore: each window by its own mean and std, ±ZSCORE_RANGE std mapped onto [0, 1].
# global: one range for all windows, the training windows' min and max (the tutorials'): the
# amplitude itself is then part of what the model learns.
Normalise = Literal["minmax", "zscore", "global"]
NORMALISE_CHOICES = ("minmax", "zscore", "global")
ZSCORE_RANGE = 4.0
FLAT = 1e-12  # a window whose range (or std) is below this is a flatline: it maps to 0.5
LABEL_HEADERS = ("label", "class", "target", "y")
_SPLIT = re.compile(r"[,;\s]+")


class SignalSpec(StrictModel):
    """Stored in the run, the model card and the bundle: what a window is and how it is normalised."""

    length: int = Field(gt=1, description="samples per window")
    normalise: Normalise = "minmax"
    # global only: the training windows' range, mapped onto [0, 1] (values outside are clipped)
    low: Optional[float] = None
    high: Optional[float] = None
    hop: Optional[int] = Field(None, gt=0, description="recordings and sample streams: samples between windows")
    # the class label the model was trained on as normal (None: an unlabelled file); calibration and
    # evaluation take the same label as normal in their labelled files unless told otherwise
    normal_label: Optional[float] = None

    @model_validator(mode="after")
    def _range_for_global(self):
        if self.normalise == "global" and (self.low is None or self.high is None or not self.high > self.low):
            raise ValueError("normalise: global needs low < high (the training windows' range)")
        return self

    def describe(self) -> str:
        return f"{self.length}-sample windows, {self.normalise} normalised"


# ----------------------------------------------------------------------------- normalisation


def fit_spec(
    windows: np.ndarray, normalise: str = "minmax", hop: Optional[int] = None, normal_label: Optional[float] = None
) -> SignalSpec:
    """The spec of training windows (N, L): their length, and their range when normalised globally."""
    if normalise not in NORMALISE_CHOICES:
        raise EdgeError(f"--normalise {normalise!r} must be one of {', '.join(NORMALISE_CHOICES)}")
    low = high = None
    if normalise == "global":
        low, high = float(np.min(windows)), float(np.max(windows))
        if not high > low:
            raise EdgeError("the training windows are all one value: nothing to learn; check the data file")
    return SignalSpec(
        length=int(windows.shape[1]),
        normalise=normalise,  # type: ignore[arg-type]
        low=low,
        high=high,
        hop=hop,
        normal_label=normal_label,
    )


def normalise(windows: np.ndarray, spec: SignalSpec) -> np.ndarray:
    """float (N, L) or (L,) windows → float32 in [0, 1], as the spec says."""
    x = np.asarray(windows, np.float64)
    one = x.ndim == 1
    x = np.atleast_2d(x)
    if x.shape[1] != spec.length:
        raise EdgeError(
            f"windows of {x.shape[1]} samples, but the bundle's model takes {spec.length}; "
            "give windows of that length (or a recording with one sample per line)"
        )
    if spec.normalise == "global":
        u = (x - spec.low) / (spec.high - spec.low)  # type: ignore[operator]
    elif spec.normalise == "minmax":
        lo, span = x.min(axis=1, keepdims=True), np.ptp(x, axis=1, keepdims=True)
        u = np.where(span > FLAT, (x - lo) / np.maximum(span, FLAT), 0.5)
    else:
        mean, std = x.mean(axis=1, keepdims=True), x.std(axis=1, keepdims=True)
        z = np.where(std > FLAT, (x - mean) / np.maximum(std, FLAT), 0.0)
        u = (z + ZSCORE_RANGE) / (2 * ZSCORE_RANGE)
    u = np.clip(u, 0.0, 1.0).astype(np.float32)
    return u[0] if one else u


def to_frame(windows: np.ndarray, spec: SignalSpec) -> np.ndarray:
    """float windows (N, L) → uint8 (N, 1, L, 1) model input; one window (L,) → the (1, L) frame a source hands on."""
    u8 = np.round(normalise(windows, spec) * 255.0).astype(np.uint8)
    return u8[None] if u8.ndim == 1 else u8[:, None, :, None]


# ----------------------------------------------------------------------------- files


@dataclass
class SignalSet:
    """Windows read from a file: float64 (N, L), their labels when the file has them, and where each came from."""

    windows: np.ndarray
    labels: Optional[np.ndarray]  # float (N,) or None
    rows: list[str]  # "FILE:LINE" (one window per line) or "FILE:@SAMPLE" (a recording)
    path: Path
    recording: bool = False

    def normal_label(self, given: Optional[float] = None) -> Optional[float]:
        """The label of normal windows: `given`, else the commonest label; None without labels.

        Training takes the commonest (ECG5000's training file: 1, 58 %); calibration and evaluation
        pass the label the model was trained on (SignalSpec.normal_label), as a test file's
        commonest label may be an abnormal class."""
        if self.labels is None:
            return None
        values, counts = np.unique(self.labels, return_counts=True)
        if given is not None:
            if given not in values:
                found = ", ".join(f"{v:g}" for v in values)
                raise EdgeError(f"--normal-label {given:g} is not a label in {self.path.name} (it has {found})")
            return float(given)
        return float(values[np.argmax(counts)])

    def split(self, normal_label: Optional[float] = None) -> tuple[np.ndarray, np.ndarray]:
        """(normal, anomalous) masks (N,): the normal label's windows and the rest; all normal without labels."""
        label = self.normal_label(normal_label)
        if label is None:
            return np.ones(len(self.windows), bool), np.zeros(len(self.windows), bool)
        normal = self.labels == label  # type: ignore[operator]
        return normal, ~normal


def parse_values(text: str, where: str) -> list[float]:
    """'1.0, 2e-3  4' → floats; a token that is not a number is one line naming where it is."""
    tokens = [t for t in _SPLIT.split(text.strip()) if t]
    values = []
    for t in tokens:
        try:
            v = float(t)
        except ValueError:
            raise EdgeError(f"{where}: {t[:30]!r} is not a number; a signal file holds numbers only") from None
        if not np.isfinite(v):
            raise EdgeError(f"{where}: {t!r} is not a finite number")
        values.append(v)
    return values


def _is_header(line: str) -> bool:
    tokens = [t for t in _SPLIT.split(line.strip()) if t]
    return bool(tokens) and all(_not_number(t) for t in tokens)


def _not_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return True
    return False


def _rows(path: Path) -> tuple[list[list[float]], list[int], Optional[list[str]]]:
    """Numeric rows with their line numbers, and the header's names when the first line is one."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise EdgeError(f"signal file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise EdgeError(f"cannot read {path} as text ({exc}); a signal file is numbers as text") from None
    rows, numbers, header = [], [], None
    for i, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not rows and header is None and _is_header(line):
            header = [t.lower() for t in _SPLIT.split(line.strip()) if t]
            continue
        rows.append(parse_values(line, f"{path.name} line {i}"))
        numbers.append(i)
    if not rows:
        raise EdgeError(f"{path} holds no samples")
    return rows, numbers, header


def _label_first(table: np.ndarray, header: Optional[list[str]], length: Optional[int], label: str) -> bool:
    if label != "auto":
        return label == "first"
    if header and header[0] in LABEL_HEADERS:
        return True
    if length is not None:
        return table.shape[1] == length + 1
    first, rest = table[:, 0], table[:, 1:]
    # a class column: whole numbers, few of them, beside samples that are not all whole numbers
    integral = np.all(first == np.round(first)) and len(np.unique(first)) <= 20
    return bool(integral and not np.all(rest == np.round(rest)))


def read_signal_file(
    path: str | Path, length: Optional[int] = None, hop: Optional[int] = None, label: str = "auto"
) -> SignalSet:
    """Windows of a signal file (see the module doc). `length` is required for a recording.

    `label`: "first" (the first column is a class label), "none", or "auto": the first column is a
    label when a header names it (label, class, target, y), when each row has `length` + 1 values,
    or, with no length to go by, when it holds only a few whole numbers beside non-integral samples.
    """
    path = Path(path)
    if label not in ("auto", "first", "none"):
        raise EdgeError(f"--label-column {label!r} must be auto, first or none")
    rows, numbers, header = _rows(path)
    widths = {len(r) for r in rows}
    if len(widths) > 1:
        first = len(rows[0])
        bad = next(i for i, r in enumerate(rows) if len(r) != first)
        raise EdgeError(
            f"{path.name} line {numbers[bad]} has {len(rows[bad])} values, line {numbers[0]} has {first}: "
            "every line must be one window of the same length (or one sample per line for a recording)"
        )
    table = np.asarray(rows, np.float64)
    if table.shape[1] == 1 or (len(table) == 1 and length is not None and table.shape[1] > length + 1):
        return _recording(table.reshape(-1), path, length, hop)
    has_label = _label_first(table, header, length, label)
    windows = table[:, 1:] if has_label else table
    if length is not None and windows.shape[1] != length:
        raise EdgeError(
            f"{path.name} has windows of {windows.shape[1]} samples"
            + (" after its label column" if has_label else "")
            + f", but the bundle's model takes {length}; give windows of that length"
        )
    if windows.shape[1] < 2:
        raise EdgeError(f"{path.name}: a window needs at least 2 samples")
    rows_named = [f"{path.name}:{n}" for n in numbers]
    return SignalSet(windows, table[:, 0] if has_label else None, rows_named, path)


def _recording(samples: np.ndarray, path: Path, length: Optional[int], hop: Optional[int]) -> SignalSet:
    if length is None:
        raise EdgeError(f"{path.name} is a recording (one sample per line): give the window length with --window N")
    hop = hop or length
    if len(samples) < length:
        raise EdgeError(f"{path.name} has {len(samples)} samples, fewer than one window of {length}")
    starts = np.arange(0, len(samples) - length + 1, hop)
    windows = np.stack([samples[s : s + length] for s in starts])
    return SignalSet(windows, None, [f"{path.name}:@{s}" for s in starts], path, recording=True)


# ----------------------------------------------------------------------------- streams


class WindowAssembler:
    """Lines of a stream → windows: a line of `length` values (or `length` + 1, label first) is a window;
    a line of one value is the next sample, and every `hop` samples the last `length` make a window."""

    def __init__(self, length: int, hop: Optional[int] = None):
        self.length = length
        self.hop = hop or length
        self._samples: list[float] = []
        self._since = 0  # samples since the last window

    def feed(self, values: list[float], where: str) -> Optional[np.ndarray]:
        """The window this line completes, or None; a line of another width is one EdgeError."""
        n = len(values)
        if n == self.length:
            return np.asarray(values, np.float64)
        if n == self.length + 1:
            return np.asarray(values[1:], np.float64)
        if n != 1:
            raise EdgeError(
                f"{where}: {n} values; a line is one sample, or one window of {self.length} "
                f"(or {self.length + 1}, label first)"
            )
        self._samples.append(values[0])
        self._since += 1
        if len(self._samples) > self.length:
            del self._samples[: len(self._samples) - self.length]
        if len(self._samples) == self.length and self._since >= self.hop:
            self._since = 0
            return np.asarray(self._samples, np.float64)
        return None
