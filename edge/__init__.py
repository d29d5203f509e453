"""edge-inspect: visual inspection on the edge.

`edge/` is the device runtime and the shared core (preprocessing, bundle format, scoring).
It must never import TensorFlow: the desktop packages (`train`, `export`, `calibration`)
import from here, never the other way round.
"""

__version__ = "0.1.0"
