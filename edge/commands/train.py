"""`edge train …`: desktop training commands, one per model kind (`edge train autoencoder`).

TensorFlow is imported inside the command functions only, so the device never loads it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from edge.commands._desktop import require_tensorflow

train_app = typer.Typer(
    name="train",
    help="Train a model on the desktop (needs TensorFlow). Then `edge export RUN_DIR`.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(train_app, name="train")

    @train_app.command("autoencoder")
    def autoencoder(
        data: Path = typer.Option(
            ..., "--data", "-d",
            help="Folder of images of GOOD parts, or an MVTec AD root (its train/good is used). "
            "Sizes may differ: every image is resized to --size the way the device does it.",
        ),
        out: Path = typer.Option(..., "--out", "-o", help="Run folder to write (created if missing)."),
        size: int = typer.Option(128, "--size", min=8, help="Model input side in pixels (square)."),
        color: Optional[str] = typer.Option(
            None, "--color", help="grey or rgb. Default: what the images are; a folder mixing both needs this.",
        ),
        filters: str = typer.Option("32,64", "--filters", help="Encoder filters per block; each block halves the image."),
        latent: int = typer.Option(64, "--latent", min=1, help="Size of the dense bottleneck vector."),
        epochs: int = typer.Option(50, "--epochs", min=1, help="Most epochs to train (early stopping may end sooner)."),
        batch_size: int = typer.Option(32, "--batch-size", min=1, help="Images per training step."),
        val_split: float = typer.Option(0.1, "--val-split", min=0.0, max=0.9,
                                        help="Fraction of images held back for validation and export parity."),
        patience: int = typer.Option(5, "--patience", min=0,
                                     help="Stop after this many epochs without a better validation loss (0: never); "
                                     "the best epoch's weights are kept."),
        seed: int = typer.Option(0, "--seed", help="Random seed (Python, NumPy, Keras and the split): same seed, same model."),
        learning_rate: float = typer.Option(1e-3, "--learning-rate", min=0.0, help="Adam learning rate."),
        threads: Optional[int] = typer.Option(None, "--threads", min=1, help="CPU threads for TensorFlow (default: all)."),
    ) -> None:
        """Train a convolutional autoencoder on good parts: a defect is what it cannot reconstruct.

        Strided Conv2D + LeakyReLU + BatchNorm encoder, dense latent vector, Conv2DTranspose
        decoder with a sigmoid output; MSE loss, Adam. Images pass through the device's own
        preprocessing, then /255. Unreadable or truncated files are skipped and counted.

        Writes OUT/model.keras, OUT/run.json (preprocessing, score, file lists, seed, architecture,
        best validation loss), OUT/history.json + history.png and OUT/reconstructions.png
        (input / reconstruction / error map of validation images).
        """
        from edge.errors import EdgeError

        if color is not None and color not in ("grey", "rgb"):
            raise EdgeError(f"--color {color!r} must be grey or rgb")
        require_tensorflow("train autoencoder")
        from train.autoencoder import train_autoencoder

        train_autoencoder(
            data, out, size=size, color=color, filters=filters, latent=latent, epochs=epochs,  # type: ignore[arg-type]
            batch_size=batch_size, val_split=val_split, patience=patience, seed=seed,
            learning_rate=learning_rate, threads=threads,
        )
