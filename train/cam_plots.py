"""Classifier figures: training curves and a grid of CAM overlays (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge.annotate import heatmap_overlay


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_history(history: dict[str, list[float]], path: Path) -> Path:
    """Loss and accuracy per epoch, training and validation."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    epochs = np.arange(1, len(history.get("loss", [])) + 1)
    for ax, key, label in ((axes[0], "loss", "cross-entropy"), (axes[1], "accuracy", "accuracy")):
        if key in history:
            ax.plot(epochs, history[key], marker="o", label="training")
        if f"val_{key}" in history:
            ax.plot(epochs, history[f"val_{key}"], marker="o", label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def cam_overlay_rgb(frame_u8: np.ndarray, cam: np.ndarray, scale: float) -> np.ndarray:
    """RGB or grey model frame + CAM -> RGB overlay (edge.annotate draws in BGR, as the device does)."""
    bgr = (
        cv2.cvtColor(frame_u8, cv2.COLOR_GRAY2BGR)
        if frame_u8.shape[-1] == 1
        else cv2.cvtColor(frame_u8, cv2.COLOR_RGB2BGR)
    )
    return cv2.cvtColor(heatmap_overlay(bgr, cam, scale), cv2.COLOR_BGR2RGB)


def plot_cam_grid(
    frames_u8: np.ndarray,
    cams: np.ndarray,
    labels: np.ndarray,
    probs: np.ndarray,
    class_names: list[str],
    positive_index: int,
    path: Path,
    cols: int = 6,
) -> Path:
    """Image + CAM overlay pairs, titled with the true class and the positive-class probability.

    One colour scale for the whole grid (99th percentile of all maps), so a clean surface looks
    cold instead of having its faint evidence stretched to red.
    """
    plt = _pyplot()
    n = len(frames_u8)
    rows = int(np.ceil(n / cols))
    scale = float(np.percentile(cams, 99)) if cams.size and cams.max() > 0 else 1.0
    fig, axes = plt.subplots(2 * rows, cols, figsize=(1.9 * cols, 3.9 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    grey = frames_u8.shape[-1] == 1
    for i in range(n):
        r, c = 2 * (i // cols), i % cols
        axes[r, c].imshow(
            frames_u8[i, ..., 0] if grey else frames_u8[i], cmap="gray" if grey else None, vmin=0, vmax=255
        )
        ok = probs[i].argmax() == labels[i]
        axes[r, c].set_title(f"{class_names[labels[i]]}", fontsize=8, color="black" if ok else "red")
        axes[r + 1, c].imshow(cam_overlay_rgb(frames_u8[i], cams[i], scale))
        axes[r + 1, c].set_title(f"p({class_names[positive_index]})={probs[i, positive_index]:.2f}", fontsize=8)
    fig.suptitle("class activation maps (validation images; red title = misclassified)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
