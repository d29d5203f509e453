"""`edge`: one command line for the desktop (train, export, calibrate) and the device (run).

Device commands import only the runtime; desktop commands import TensorFlow inside their
function bodies, so `edge run` on a Raspberry Pi never loads it.
"""

from __future__ import annotations

import math
import re
import sys

import typer
from typer.core import TyperCommand, TyperGroup

try:  # typer >= 0.28 carries its own click; older ones use click itself
    from typer._click.exceptions import ClickException, UsageError
except ImportError:  # pragma: no cover
    from click.exceptions import ClickException, UsageError

from edge.errors import EdgeError
from edge.messages import to_stderr


def _refuse_non_finite(command, params: dict) -> None:
    """nan and inf parse as floats (`--duration nan` ran forever): one line instead."""
    for name, value in params.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        if any(isinstance(v, float) and not math.isfinite(v) for v in values):
            flag = next((p.opts[0] for p in command.params if p.name == name and p.opts), name)
            raise EdgeError(f"{flag}: {value!r} is not a finite number")


def _plain_params(params: list) -> list:
    """Help that reads the same on every typer we support: typer 0.29 prints `<bool>` after on/off
    flags (they take no value: no metavar) and 0.27 `{run_dir}` for arguments (RUN_DIR, as click wrote it)."""
    for param in params:
        if getattr(param, "is_flag", False):
            param.metavar = ""
        elif param.param_type_name == "argument" and param.metavar is None:
            param.metavar = param.name.upper()
    return params


def _plain_usage(pieces: list[str]) -> list[str]:
    return [re.sub(r"\{([^{}]*)\}", r"\1", piece) for piece in pieces]  # typer >= 0.27 braces required arguments


class _Command(TyperCommand):
    def get_params(self, ctx):
        return _plain_params(super().get_params(ctx))

    def collect_usage_pieces(self, ctx):
        return _plain_usage(super().collect_usage_pieces(ctx))

    def invoke(self, ctx):
        _refuse_non_finite(self, ctx.params)
        return super().invoke(ctx)


class _Group(TyperGroup):
    def get_params(self, ctx):
        return _plain_params(super().get_params(ctx))


app = typer.Typer(
    name="edge",
    cls=_Group,
    help="Visual inspection on the edge: learn what good parts look like (by default a feature model on "
    "pretrained EfficientNet-Lite0 features: a Gaussian per grid cell, PaDiM-style, for aligned parts, or a "
    "memory of good cells, PatchCore-style, for parts that move, chosen by cross-validation on your good "
    "images; or an autoencoder), "
    "quantize it to TFLite, calibrate its threshold, and run it beside a conveyor.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _register() -> None:
    from edge_cli.commands import bench, bundles, calibrate, collect, demo, eval, events, export, info, run, train

    for module in (collect, train, export, calibrate, run, events, bundles, demo, eval, bench, info):
        module.register(app)
    # every command and sub-group gets the plain help above, without each module having to ask for it
    for group in app.registered_groups:
        group.cls = _Group
    for typer_app in (app, *(g.typer_instance for g in app.registered_groups)):
        for command in typer_app.registered_commands:
            command.cls = _Command


_register()


def _usage_line(exc: UsageError) -> str:
    """A bad flag or argument as one line, with where to read more (click prints a usage box)."""
    command = f"{exc.ctx.command_path} --help" if exc.ctx is not None else "edge --help"
    return f"error: {exc.format_message()} (see `{command}`)"


def main(argv: list[str] | None = None) -> None:
    """Console entry point: bad input is one line on stderr and a non-zero exit, never a traceback."""
    try:
        # not standalone: click's errors come here, to be said in one line like ours
        code = app(args=argv, standalone_mode=False)
    except EdgeError as exc:
        to_stderr(f"error: {exc}")
        sys.exit(exc.exit_code)
    except UsageError as exc:
        if type(exc).__name__ != "NoArgsIsHelpError":  # `edge` alone: the help is already printed
            to_stderr(_usage_line(exc))
        sys.exit(exc.exit_code)
    except ClickException as exc:
        to_stderr(f"error: {exc.format_message()}")
        sys.exit(exc.exit_code)
    except typer.Abort:
        to_stderr("error: aborted")
        sys.exit(1)
    if isinstance(code, int) and code != 0:  # typer.Exit(code) or Ctrl-C (130)
        sys.exit(code)
