"""Every model kind in one table: how it is trained, how it is exported, which device detector runs it.

A row per run.json "arch" (train/runinfo.run_arch reads it, and infers it for older runs):

    arch           trainer (train/)                      exporter (export/)       detector (card kind)
    padim          padim.train_padim                     padim.export_padim       anomaly_map
    memory         memory.train_memory                   memory.export_memory     anomaly_map
    draem          draem.train_draem                     draem.export_draem       anomaly_map
    conv, dense    autoencoder.train_autoencoder         autoencoder.export_…     autoencoder
    latent_kmeans  latent_kmeans.fit_latent_kmeans (on   latent_kmeans.export_…   anomaly_map
                   an autoencoder run)
    classifier     classifier.train_classifier           classifier.export_…      classifier
    signal_dense,  signal.train_signal (a signal file)   signal.export_signal     autoencoder
    signal_conv1d

`detector` is the model card's kind, the key into edge.detector.DETECTOR_FACTORIES; each exporter
module declares it (CARD_KIND) as it writes the card, and this table reads it from there.

A new kind: train/<kind>.py (writes run.json with "kind" and "arch"), export/<kind>.py (writes
the .tflite and its card), a detector in edge/ if no existing one scores its output, and a row here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from edge.errors import EdgeError
from edge.messages import Log
from export import autoencoder, classifier, draem, latent_kmeans, memory, padim, signal
from train.autoencoder import train_autoencoder
from train.classifier import train_classifier
from train.draem import train_draem
from train.latent_kmeans import fit_latent_kmeans
from train.memory import train_memory
from train.padim import train_padim
from train.runinfo import read_run_json, run_arch
from train.signal import train_signal


@dataclass(frozen=True)
class ExportRequest:
    """What `edge export` was asked; each kind's exporter takes the parts that apply to it."""

    quantize: str
    representative: Optional[Path]  # a folder of good images for int8 ranges (Keras autoencoders, classifiers)
    out: Optional[Path]
    check_parity: bool
    log: Log


@dataclass(frozen=True)
class ModelKind:
    arch: str  # run.json "arch": this row's key
    trainer: Callable[..., Path]  # writes the run folder (their options differ: see edge_cli/commands/train.py)
    exporter: Callable[[Path, ExportRequest], Path]  # run folder → .tflite + card
    detector: str  # the card's kind: the key into edge.detector.DETECTOR_FACTORIES


def _export_padim(run_dir: Path, request: ExportRequest) -> Path:
    # int8 ranges always from the training images plus drawn defects; no Keras model to compare with
    return padim.export_padim(run_dir, request.quantize, out=request.out, log=request.log)


def _export_memory(run_dir: Path, request: ExportRequest) -> Path:
    # int8 ranges always from the training images plus drawn defects; the bank rebuilt on int8 features
    return memory.export_memory(run_dir, request.quantize, out=request.out, log=request.log)


def _export_draem(run_dir: Path, request: ExportRequest) -> Path:
    # int8 ranges always from the training images plus synthetic defects
    return draem.export_draem(run_dir, request.quantize, out=request.out, log=request.log)


def _with_every_option(export: Callable[..., Path]) -> Callable[[Path, ExportRequest], Path]:
    """Keras autoencoders and classifiers take every export option (a --representative folder, parity)."""

    def export_run(run_dir: Path, request: ExportRequest) -> Path:
        return export(
            run_dir,
            request.quantize,
            representative=request.representative,
            out=request.out,
            check_parity=request.check_parity,
            log=request.log,
        )

    return export_run


_export_autoencoder = _with_every_option(autoencoder.export_autoencoder)
_export_classifier = _with_every_option(classifier.export_classifier)
_export_signal = _with_every_option(signal.export_signal)


def _export_latent_kmeans(run_dir: Path, request: ExportRequest) -> Path:
    # parity is always checked: it is cheap on this small model
    return latent_kmeans.export_latent_kmeans(
        run_dir, request.quantize, out=request.out, representative=request.representative, log=request.log
    )


MODEL_KINDS: dict[str, ModelKind] = {
    kind.arch: kind
    for kind in (
        ModelKind("padim", train_padim, _export_padim, padim.CARD_KIND),
        ModelKind("memory", train_memory, _export_memory, memory.CARD_KIND),
        ModelKind("draem", train_draem, _export_draem, draem.CARD_KIND),
        ModelKind("conv", train_autoencoder, _export_autoencoder, autoencoder.CARD_KIND),
        ModelKind("dense", train_autoencoder, _export_autoencoder, autoencoder.CARD_KIND),
        ModelKind("latent_kmeans", fit_latent_kmeans, _export_latent_kmeans, latent_kmeans.CARD_KIND),
        ModelKind("classifier", train_classifier, _export_classifier, classifier.CARD_KIND),
        ModelKind("signal_dense", train_signal, _export_signal, signal.CARD_KIND),
        ModelKind("signal_conv1d", train_signal, _export_signal, signal.CARD_KIND),
    )
}


def model_kind(arch: str) -> ModelKind:
    try:
        return MODEL_KINDS[arch]
    except KeyError:
        raise EdgeError(
            f"unknown model arch {arch!r}; this edge-inspect knows {', '.join(MODEL_KINDS)} "
            "(re-run `edge train`, or upgrade edge-inspect)"
        ) from None


def model_kind_of_run(run_dir: str | Path) -> ModelKind:
    """The row of the run in RUN_DIR, by its run.json "arch" (inferred for runs of earlier versions)."""
    return model_kind(run_arch(read_run_json(run_dir)))
