"""`edge eval` for a classifier bundle on a class-folder data set (one sub-folder per class).

Every image goes through the bundle's Preprocessor and the device's ClassifierDetector (the exported
.tflite, int8 rounding included). Reported per bundle: accuracy at argmax and at the bundle's
calibrated threshold (positive class when its probability > threshold, the device's rule; otherwise
the likeliest other class), each with its exact binomial interval and confusion matrix, and the
positive-class AUROC with a bootstrap interval (calibration.bootstrap). Further bundles are compared
with the first by a paired bootstrap over the same images.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from calibration.bootstrap import DEFAULT_RESAMPLES, DEFAULT_SEED, Bootstrap, bootstrap, paired
from calibration.evaluate import EvalSet, _readable_batches, image_auroc
from edge.binomial import clopper_pearson
from edge.bundle import Bundle, load_bundle
from edge.cam import CamHead
from edge.decide import flagged
from edge.detector import make_detector
from edge.errors import EdgeError
from edge.imaging import list_images
from edge.preprocess import Preprocessor


def is_class_folders(root: Path, class_names: tuple[str, ...]) -> bool:
    """True when `root` has a sub-folder for every class of the bundle (and is not MVTec's test/ layout)."""
    return root.is_dir() and all((root / name).is_dir() for name in class_names)


def load_class_folders(root: str | Path, class_names: tuple[str, ...]) -> EvalSet:
    """Images of root/<class>/ for every class of the bundle; a missing or empty folder is one line."""
    root = Path(root)
    if not root.is_dir():
        raise EdgeError(f"--data folder not found: {root} (check the path)")
    missing = [n for n in class_names if not (root / n).is_dir()]
    if missing:
        found = sorted(d.name for d in root.iterdir() if d.is_dir())
        raise EdgeError(
            f"{root} has no folder for class {', '.join(missing)}: a classifier bundle is evaluated on one folder "
            f"per class ({', '.join(class_names)}); found {', '.join(found) or 'no folders'}"
        )
    files, groups = [], []
    for name in class_names:
        found = list_images(root / name)  # raises a clear line when a class folder holds no images
        files += found
        groups += [name] * len(found)
    return EvalSet(root, files, groups, [None] * len(files))


@dataclass
class ClassifierResult:
    name: str
    bundle: Path
    quantization: str
    class_names: tuple[str, ...]
    positive: int
    threshold: float
    truth: np.ndarray  # class index per image
    probabilities: np.ndarray  # (N, K)
    skipped: list[Path] = field(default_factory=list)
    auroc_intervals: Optional[Bootstrap] = None
    versus_first: Optional[Bootstrap] = None

    @property
    def argmax(self) -> np.ndarray:
        return self.probabilities.argmax(axis=1)

    @property
    def at_threshold(self) -> np.ndarray:
        """The device's decision: positive when its probability > threshold, else the likeliest other class."""
        others = self.probabilities.copy()
        others[:, self.positive] = -np.inf
        return np.where(flagged(self.scores, self.threshold), self.positive, others.argmax(axis=1))

    @property
    def scores(self) -> np.ndarray:
        return self.probabilities[:, self.positive]

    @property
    def is_positive(self) -> np.ndarray:
        return (self.truth == self.positive).astype(int)

    def auroc(self) -> float:
        return image_auroc(self.is_positive, self.scores)

    def confusion(self, predicted: np.ndarray) -> np.ndarray:
        k = len(self.class_names)
        matrix = np.zeros((k, k), int)
        np.add.at(matrix, (self.truth, predicted), 1)
        return matrix

    def accuracy_line(self, what: str, predicted: np.ndarray) -> str:
        right, n = int(np.sum(predicted == self.truth)), len(self.truth)
        low, high = clopper_pearson(right, n)
        return f"accuracy {what}: {right / n:.2%} ({right}/{n}; 95 % interval {low:.2%}–{high:.2%})"


def confusion_table(result: ClassifierResult, predicted: np.ndarray) -> list[str]:
    """A text table: rows true class, columns predicted class."""
    names = result.class_names
    width = max(10, *(len(n) + 2 for n in names))
    matrix = result.confusion(predicted)
    lines = ["true \\ predicted".ljust(width + 6) + "".join(n.rjust(width) for n in names)]
    for i, name in enumerate(names):
        lines.append(name.ljust(width + 6) + "".join(str(v).rjust(width) for v in matrix[i]))
    return lines


def evaluate_classifier_bundle(
    b: Bundle, data: EvalSet, batch_size: int = 16, threads: Optional[int] = None
) -> ClassifierResult:
    head = CamHead.from_extra(b.manifest.extra)
    detector = make_detector(b, threads)
    pre = Preprocessor(b.manifest.preprocessing)
    skipped: list[Path] = []
    probs, truth = [], []
    for images, idx in _readable_batches(data, b.manifest.preprocessing.roi, batch_size, skipped, None):
        probs.append(detector.probabilities(pre.prepare_batch(images)))
        truth += [head.class_names.index(data.groups[i]) for i in idx]
    if not truth:
        raise EdgeError(f"none of the {len(data.files)} images in {data.root} could be read")
    return ClassifierResult(
        name=b.path.name,
        bundle=b.path,
        quantization=b.manifest.model.quantization,
        class_names=head.class_names,
        positive=head.positive_index,
        threshold=b.threshold,
        truth=np.array(truth),
        probabilities=np.concatenate(probs),
        skipped=skipped,
    )


def _report_lines(r: ClassifierResult, first: Optional[ClassifierResult]) -> list[str]:
    positive = r.class_names[r.positive]
    auroc = f"{r.auroc():.4f}"
    i = r.auroc_intervals.intervals["image_auroc"] if r.auroc_intervals is not None else None
    if i is not None and np.isfinite(i.low):
        auroc += f" ({i.low:.4f}–{i.high:.4f})"
    lines = [
        f"{r.name} ({r.quantization}): {len(r.truth)} images; {positive} AUROC {auroc}",
        "  " + r.accuracy_line("at argmax", r.argmax),
        *("    " + line for line in confusion_table(r, r.argmax)),
        "  " + r.accuracy_line(f"at the threshold ({positive} probability > {r.threshold:.4g})", r.at_threshold),
        *("    " + line for line in confusion_table(r, r.at_threshold)),
    ]
    if r.skipped:
        lines.append(f"  {len(r.skipped)} unreadable image(s) skipped, e.g. {r.skipped[0]}")
    if r.versus_first is not None and first is not None:
        d = r.versus_first.intervals["image_auroc"]
        verdict = "within noise" if r.versus_first.within_noise("image_auroc") else "beyond noise"
        lines.append(f"  {r.name} − {first.name}: AUROC {d.point:+.4f} ({d.low:+.4f} to {d.high:+.4f}, {verdict})")
    return lines


def evaluate_classifiers(
    bundles: list[Bundle],
    data: str | Path,
    out: Optional[str | Path] = None,
    batch_size: int = 16,
    threads: Optional[int] = None,
    command: str = "",
    log: Callable[[str], None] = print,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> tuple[list[ClassifierResult], Optional[Path]]:
    """Evaluate classifier bundles on a class-folder data set; optionally write a markdown page."""
    heads = [CamHead.from_extra(b.manifest.extra) for b in bundles]
    for b, h in zip(bundles, heads, strict=True):
        if b.manifest.model.kind != "classifier" or h.class_names != heads[0].class_names:
            raise EdgeError(f"{b.path} is not a classifier of the same classes {heads[0].class_names}")
    eval_set = load_class_folders(data, heads[0].class_names)
    results: list[ClassifierResult] = []
    lines: list[str] = []
    for b in bundles:
        r = evaluate_classifier_bundle(b, eval_set, batch_size, threads)
        first = results[0] if results else None
        if resamples > 0:
            points = {"image_auroc": r.auroc()}
            r.auroc_intervals = bootstrap(r.is_positive, r.scores, points, resamples=resamples, seed=seed)
            if first is not None and len(first.truth) == len(r.truth) and not r.skipped and not first.skipped:
                r.versus_first = paired(
                    r.is_positive, first.scores, r.scores, {"image_auroc": first.auroc()}, points,
                    resamples=resamples, seed=seed,
                )  # fmt: skip
        results.append(r)
        block = _report_lines(r, first)
        for line in block:
            log(line)
        lines += block
    if resamples > 0:
        lines.append(f"(AUROC intervals: 95 % bootstrap, {resamples} stratified resamples, seed {seed})")
        log(lines[-1])
    if out is None:
        return results, None
    out = Path(out)
    report = out if out.suffix.lower() == ".md" else out / "quality.md"
    report.parent.mkdir(parents=True, exist_ok=True)
    head = ["# Classifier quality", "", f"Data: `{eval_set.root}` (one folder per class)."]
    if command:
        head += ["", "Command:", "", "```", command, "```"]
    report.write_text("\n".join([*head, "", "```", *lines, "```", ""]))
    log(f"report: {report}")
    return results, report


def classifier_bundles(paths: list[str | Path]) -> Optional[list[Bundle]]:
    """The loaded bundles when the first is a classifier; None for anomaly bundles (evaluate's path)."""
    first = load_bundle(paths[0])
    if first.manifest.model.kind != "classifier":
        return None
    return [first, *(load_bundle(p) for p in paths[1:])]
