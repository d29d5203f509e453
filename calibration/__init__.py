"""Desktop calibration: score real images with the exported .tflite and write a deployable bundle.

`calibrate(model_path, normal, anomalous, method, out, ...)` is the entry point (also behind
`edge calibrate`). It runs on a device install too: its metrics are numpy
(calibration.binary_metrics); matplotlib, when installed, draws the report (else it is skipped).
`edge eval` (calibration.evaluate) stays a desktop command.
"""

from calibration.calibrate import calibrate

__all__ = ["calibrate"]
