"""Training figures: loss curves and input / reconstruction / error-map rows (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    return plt


def plot_history(history: dict[str, list[float]], path: Path) -> Path:
    """Per-epoch training (and validation) loss on a log scale."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    epochs = np.arange(1, len(history.get("loss", [])) + 1)
    ax.plot(epochs, history["loss"], marker="o", label="training loss")
    if history.get("val_loss"):
        ax.plot(epochs, history["val_loss"], marker="o", label="validation loss")
        best = int(np.argmin(history["val_loss"]))
        ax.axvline(best + 1, color="grey", linestyle=":", label=f"best epoch ({best + 1})")
    ax.set_xlabel("epoch")
    ax.set_ylabel("MSE")
    if min(history["loss"] + history.get("val_loss", [])) > 0:
        ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_reconstructions(
    frames_u8: np.ndarray, reconstructions: np.ndarray, maps: np.ndarray, path: Path, title: str = ""
) -> Path:
    """Three rows: input, reconstruction, squared-error map (shared colour scale), one column per image."""
    plt = _pyplot()
    n = len(frames_u8)
    # constrained layout keeps every column the same width once the colour bar is added
    fig, axes = plt.subplots(3, n, figsize=(1.8 * n + 1.2, 5.8), squeeze=False, layout="constrained")
    vmax = float(maps.max()) if maps.size and maps.max() > 0 else 1.0
    grey = frames_u8.shape[-1] == 1
    for i in range(n):
        original = frames_u8[i, ..., 0] if grey else frames_u8[i]
        rec = np.clip(reconstructions[i], 0, 1)
        rec = rec[..., 0] if grey else rec
        axes[0, i].imshow(original, cmap="gray" if grey else None, vmin=0, vmax=255)
        axes[1, i].imshow(rec, cmap="gray" if grey else None, vmin=0, vmax=1)
        image = axes[2, i].imshow(maps[i], cmap="inferno", vmin=0, vmax=vmax)
        for ax in axes[:, i]:
            ax.set_xticks([])
            ax.set_yticks([])
    for ax, label in zip(axes[:, 0], ("input", "reconstruction", "error"), strict=True):
        ax.set_ylabel(label)
    fig.colorbar(image, ax=axes[2, :].tolist(), shrink=0.8, label="squared error")
    if title:
        fig.suptitle(title)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
