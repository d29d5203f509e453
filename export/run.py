"""`edge export`: a training run folder → a .tflite and its model card, by the run's model kind.

The run's run.json "arch" picks the exporter from the table in export/kinds.py; each kind's
exporter lives in export/<kind>.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from edge.errors import EdgeError
from edge.messages import Log
from edge.messages import to_stderr as _stderr
from export.convert import QUANTIZE_CHOICES
from export.kinds import ExportRequest, model_kind_of_run


def export_run(
    run_dir: str | Path,
    quantize: str = "int8",
    *,
    representative: Optional[str | Path] = None,
    out: Optional[str | Path] = None,
    check_parity: bool = True,
    log: Log = _stderr,
) -> Path:
    """Convert the model of RUN_DIR to TFLite; write the .tflite and its card; return the .tflite path.

    quantize: int8 (full integer, uint8 input and output; needs representative images: the
    run's training images, or `representative`, a folder, where the kind takes one), float16,
    dynamic (int8 weights, float activations) or float32. The default output is
    RUN_DIR/export/<stem>_<quantize>.tflite; `out` may be a file or an existing folder.
    """
    if quantize not in QUANTIZE_CHOICES:
        raise EdgeError(f"unknown quantization {quantize!r}; choose one of {', '.join(QUANTIZE_CHOICES)}")
    run_dir = Path(run_dir)
    request = ExportRequest(
        quantize=quantize,
        representative=Path(representative) if representative is not None else None,
        out=Path(out) if out is not None else None,
        check_parity=check_parity,
        log=log,
    )
    return model_kind_of_run(run_dir).exporter(run_dir, request)
