#!/usr/bin/env python3
"""Turn a clone of the magnetic-tile defect data set into the MVTec AD layout edge-inspect reads.

    git clone https://github.com/abin24/Magnetic-tile-defect-datasets. magnetic-tile-src
    python scripts/prepare_magnetic_tile.py --src magnetic-tile-src --out datasets/magnetic-tile

The clone holds one folder per class, `MT_<Class>/Imgs/`, each with `<stem>.jpg` images and a
`<stem>.png` mask of the same stem. `MT_Free` is defect-free; the others (Blowhole, Break, Crack,
Fray, Uneven) are defects. Written under --out:

    train/good/                           MT_Free, less the test part
    test/good/                            --test-good images of MT_Free, drawn with --seed
    test/<defect>/                        every MT_<Defect> image (folder name in lower case)
    ground_truth/<defect>/<stem>_mask.png its mask, binarised to 0/255

Images are hard-linked when --out is on the same file system, copied otherwise: never re-encoded,
so the model sees the published JPEG bytes. The same --seed gives the same split.

Data: Huang, Qiu, Yuan, "Saliency of magnetic tile surface defects", The Visual Computer 2020
(repository abin24/Magnetic-tile-defect-datasets.); the authors welcome use with citation.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
from pathlib import Path

import cv2

GOOD_CLASS = "MT_Free"
SOURCE_URL = "https://github.com/abin24/Magnetic-tile-defect-datasets."
MASK_LEVEL = 127  # the published masks are grey-ish PNGs; edge eval also reads mask > 127 as defect


class PrepareError(Exception):
    """Bad input: reported as one line on stderr, exit 2."""


def find_classes(src: Path) -> dict[str, list[Path]]:
    """MT_<Class> folder name -> its images (sorted), from MT_<Class>/Imgs/*.jpg."""
    if not src.is_dir():
        raise PrepareError(f"--src {src} is not a folder; pass the root of a clone of {SOURCE_URL}")
    classes = {d.name: sorted((d / "Imgs").glob("*.jpg")) for d in sorted(src.glob("MT_*")) if (d / "Imgs").is_dir()}
    if not classes:
        raise PrepareError(
            f"--src {src} has no MT_*/Imgs folders (MT_Free, MT_Blowhole, …); pass the root of a clone of {SOURCE_URL}"
        )
    if not classes.get(GOOD_CLASS):
        raise PrepareError(
            f"--src {src} has no images in {GOOD_CLASS}/Imgs: the defect-free images are needed for train/good"
        )
    return classes


def split_good(images: list[Path], test_good: int, seed: int) -> tuple[list[Path], list[Path]]:
    """(train, test): a seeded random draw of `test_good` images for test, the rest for training."""
    if not 0 <= test_good < len(images):
        raise PrepareError(
            f"--test-good {test_good} must be at least 0 and leave training images: {GOOD_CLASS} has {len(images)}"
        )
    # Shuffle a sorted list, so the split depends on the seed only, not on directory order.
    drawn = random.Random(seed).sample(sorted(images), len(images))
    return sorted(drawn[test_good:]), sorted(drawn[:test_good])


def place(src: Path, dst: Path) -> None:
    """Hard-link (no extra disk space), or copy where links are impossible (other file system)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def write_mask(image: Path, dst: Path) -> bool:
    """The image's <stem>.png mask, binarised to 0/255, to dst; False when missing or unreadable."""
    source = image.with_suffix(".png")
    mask = cv2.imread(str(source), cv2.IMREAD_GRAYSCALE) if source.is_file() else None
    if mask is None:
        return False
    dst.parent.mkdir(parents=True, exist_ok=True)
    binary = ((mask > MASK_LEVEL) * 255).astype("uint8")
    if not cv2.imwrite(str(dst), binary):
        raise PrepareError(f"could not write {dst}; check the folder is writable and the disk not full")
    return True


def check_out(out: Path) -> None:
    """Refuse to mix with an earlier split: stale files would leak between train and test."""
    if out.exists() and not out.is_dir():
        raise PrepareError(f"--out {out} is a file; pass a folder")
    taken = [name for name in ("train", "test", "ground_truth") if (out / name).exists()]
    if taken:
        raise PrepareError(f"--out {out} already holds {', '.join(taken)}/; remove it or choose a new folder")


def prepare(src: Path, out: Path, test_good: int = 100, seed: int = 0) -> dict[str, int]:
    """Write the MVTec AD layout; returns image counts per folder ('test/crack': n, 'ground_truth/crack': n, …)."""
    classes = find_classes(src)
    train, test = split_good(classes.pop(GOOD_CLASS), test_good, seed)
    check_out(out)
    counts = {}
    for folder, images in (("train/good", train), ("test/good", test)):
        for image in images:
            place(image, out / folder / image.name)
        counts[folder] = len(images)
    for name, images in classes.items():
        defect = name[len("MT_") :].lower()
        masks = 0
        for image in images:
            place(image, out / "test" / defect / image.name)
            masks += write_mask(image, out / "ground_truth" / defect / f"{image.stem}_mask.png")
        counts[f"test/{defect}"] = len(images)
        counts[f"ground_truth/{defect}"] = masks
    return counts


def summary(out: Path, counts: dict[str, int], seed: int) -> str:
    lines = [f"wrote {out} (MVTec AD layout, test/good drawn with seed {seed}):"]
    lines += [f"  {folder:<24} {n:5d}" for folder, n in counts.items()]
    for folder, masks in counts.items():
        if not folder.startswith("ground_truth/"):
            continue
        defect = folder.removeprefix("ground_truth/")
        missing = counts[f"test/{defect}"] - masks
        if missing:
            lines.append(
                f"  note: {missing} image(s) in test/{defect} have no readable mask: "
                "edge eval leaves them out of pixel AUROC"
            )
    lines.append(f"next: edge train autoencoder --data {out} --out runs/tile")
    return "\n".join(lines)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, like every other bad input here (argparse adds usage)
        self.exit(2, f"error: {message} (see --help)\n")


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", type=Path, required=True, help=f"root of a clone of {SOURCE_URL}")
    parser.add_argument("--out", type=Path, required=True, help="folder to write (new, or without train/ test/)")
    parser.add_argument("--test-good", type=int, default=100, help="defect-free images held out for test/good (100)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the test/good draw (0); same seed, same split")
    args = parser.parse_args(argv)
    try:
        counts = prepare(args.src, args.out, args.test_good, args.seed)
    except PrepareError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # unwritable --out, disk full: say which file, no traceback
        print(f"error: {exc.filename or args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(summary(args.out, counts, args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
