"""`edge export RUN_DIR`: Keras model of a training run → .tflite (+ its model card).

TensorFlow is imported inside the command function only, so the device never loads it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from edge.commands._desktop import require_tensorflow

QUANTIZE_CHOICES = ("int8", "float16", "dynamic", "float32")


def register(app: typer.Typer) -> None:
    @app.command("export")
    def export(
        run_dir: Path = typer.Argument(..., help="Run folder written by `edge train` (holds model.keras and run.json)."),
        quantize: str = typer.Option(
            "int8", "--quantize", "-q",
            help="int8: full integer, uint8 in and out (smallest; usually fastest on ARM CPUs); float16: "
            "half-size weights; dynamic: int8 weights, float maths; float32: no quantization.",
        ),
        representative: Optional[Path] = typer.Option(
            None, "--representative", "-r",
            help="Folder of good images to set int8 ranges (default: the run's training images, up to 200).",
        ),
        out: Optional[Path] = typer.Option(
            None, "--out", "-o", help="Output .tflite file or existing folder (default: RUN_DIR/export/model_<quant>.tflite).",
        ),
        parity: bool = typer.Option(True, "--parity/--no-parity", help="Compare Keras and TFLite on held-back images."),
    ) -> None:
        """Convert a trained model to TFLite and write its card (<model>.json) beside it.

        Prints parity between the Keras model and the .tflite on the run's held-back
        images, both scored by edge's own code: score correlation (Pearson), max score
        difference, max reconstruction pixel difference.

        Progress goes to stderr; the last line on stdout is the .tflite path, for scripts:
        MODEL=$(edge export runs/ae --quantize int8 | tail -n1)
        """
        from edge.errors import EdgeError

        if quantize not in QUANTIZE_CHOICES:
            raise EdgeError(f"unknown --quantize {quantize!r}; choose one of {', '.join(QUANTIZE_CHOICES)}")
        require_tensorflow("export")
        from export.run import export_run

        path = export_run(run_dir, quantize, representative=representative, out=out, check_parity=parity)
        typer.echo(str(path))
