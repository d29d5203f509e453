"""The `edge` command line: one CLI over the device runtime (`edge/`) and the desktop packages.

It sits outside `edge/` so the device package stands alone: `edge/` imports nothing from here,
nor from `train/`, `export/` or `calibration/`. Device commands (run, demo, events, info, bench)
import only `edge`; desktop commands import the desktop packages inside their function bodies.
"""
