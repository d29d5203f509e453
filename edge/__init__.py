"""edge-inspect: visual inspection on the edge.

`edge/` is the device runtime and the shared core (preprocessing, bundle format, scoring).
It must never import TensorFlow: the desktop packages (`train`, `export`, `calibration`)
import from here, never the other way round.
"""

import os

# OpenCV's own WARN lines ("can't open camera by index") would precede our one-line errors;
# the runtime reports what failed itself. An operator can still set OPENCV_LOG_LEVEL=INFO.
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")

__version__ = "0.1.0"
