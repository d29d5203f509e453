"""Desktop calibration: score real images with the exported .tflite and write a deployable bundle.

`calibrate(model_path, normal, anomalous, method, out, ...)` is the entry point (also behind
`edge calibrate`). scikit-learn and matplotlib are used here only, never from `edge/`.
"""

from calibration.calibrate import calibrate

__all__ = ["calibrate"]
