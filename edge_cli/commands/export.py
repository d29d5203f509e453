"""`edge export RUN_DIR`: the model of a training run → .tflite (+ its model card).

TensorFlow is imported inside the command function only, so the device never loads it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from edge_cli.commands._desktop import require_tensorflow

QUANTIZE_CHOICES = ("int8", "float16", "dynamic", "float32")


def register(app: typer.Typer) -> None:
    @app.command("export")
    def export(
        run_dir: Path = typer.Argument(
            ...,
            help="Run folder written by `edge train`: padim.npz + run.json for the "
            "feature model, memory.npz + run.json for the memory model (the default --arch auto writes one "
            "of the two), model.keras + run.json for --arch conv/dense/draem and classifiers.",
        ),
        quantize: str = typer.Option(
            "int8",
            "--quantize",
            "-q",
            help="int8: full integer, uint8 in and out (smallest; usually fastest on ARM CPUs); float16: "
            "half-size weights; dynamic: int8 weights, float maths; float32: no quantization.",
        ),
        representative: Optional[Path] = typer.Option(
            None,
            "--representative",
            "-r",
            help="Folder of good images to set int8 ranges (default: the run's training images, up to 200). "
            "The feature model and --arch draem always use their training images plus synthetic defects.",
        ),
        out: Optional[Path] = typer.Option(
            None,
            "--out",
            "-o",
            help="Output .tflite file or existing folder (default: RUN_DIR/export/model_<quant>.tflite).",
        ),
        fmt: str = typer.Option(
            "tflite",
            "--format",
            help="tflite (LiteRT, the default) or onnx (ONNX Runtime: conv/dense autoencoders and the feature "
            "model; --quantize int8 as QDQ or float32; needs the onnx-export extra). Written as <model>.onnx "
            "with its card <model>.onnx.json.",
        ),
        parity: bool = typer.Option(
            True,
            "--parity/--no-parity",
            help="Autoencoder and classifier runs: compare the Keras model and the .tflite on held-back images.",
        ),
    ) -> None:
        """Convert a trained model to TFLite and write its card (<model>.json) beside it.

        The feature model (padim.npz) and the memory model (memory.npz) each become one .tflite whose
        output is the anomaly map; with int8 the feature model's Gaussians are refitted on the
        quantized backbone's features (a progress bar, or a line every few seconds in a log, shows
        the slow passes over the training images).

        Autoencoder runs (model.keras): prints parity between the Keras model and the .tflite on
        the run's held-back images, both scored by edge's own code: score correlation (Pearson),
        max score difference, max reconstruction pixel difference.

        Progress goes to stderr; the last line on stdout is the .tflite path, for scripts:
        MODEL=$(edge export runs/tile --quantize int8 | tail -n1)
        """
        from edge.errors import EdgeError

        if quantize not in QUANTIZE_CHOICES:
            raise EdgeError(f"unknown --quantize {quantize!r}; choose one of {', '.join(QUANTIZE_CHOICES)}")
        if fmt not in ("tflite", "onnx"):
            raise EdgeError(f"unknown --format {fmt!r}; choose tflite or onnx")
        require_tensorflow("export")
        if fmt == "onnx":
            from export.onnx import export_onnx as export_run
        else:
            from export.run import export_run

        path = export_run(run_dir, quantize, representative=representative, out=out, check_parity=parity)
        typer.echo(str(path))
