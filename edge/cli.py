"""`edge`: one command line for the desktop (train, export, calibrate) and the device (run).

Device commands import only the runtime; desktop commands import TensorFlow inside their
function bodies, so `edge run` on a Raspberry Pi never loads it.
"""

from __future__ import annotations

import sys

import typer

from edge.errors import EdgeError

app = typer.Typer(
    name="edge",
    help="Visual inspection on the edge: train an anomaly autoencoder on good parts, quantize it to "
    "TFLite, calibrate its threshold, and run it beside a conveyor.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _register() -> None:
    from edge.commands import bench, calibrate, demo, eval, events, export, info, run, train

    for module in (train, export, calibrate, run, events, demo, eval, bench, info):
        module.register(app)


_register()


def main(argv: list[str] | None = None) -> None:
    """Console entry point: bad input is one line on stderr and a non-zero exit, never a traceback."""
    try:
        app(args=argv)
    except EdgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
