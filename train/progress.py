"""A Keras callback that drives a rich progress bar (epochs and batches) on stderr."""

from __future__ import annotations

import math

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


def _fmt(logs: dict | None, keys=("loss", "val_loss")) -> str:
    logs = logs or {}
    return "  ".join(f"{k} {logs[k]:.5f}" for k in keys if k in logs)


def rich_progress_callback(epochs: int, steps_per_epoch: int, console: Console | None = None):
    """Build the callback lazily so importing this module does not import Keras."""
    import keras

    class RichProgress(keras.callbacks.Callback):
        """One bar over epochs, one over the current epoch's batches; a log line per epoch."""

        def __init__(self):
            super().__init__()
            self.console = console or Console(stderr=True)
            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[metrics]}"),
                console=self.console,
                transient=True,  # the per-epoch log lines stay; the bars go when done
                # in a log file or pipe, bars are noise (and leave blank lines): epoch lines only
                disable=not self.console.is_terminal,
            )

        def on_train_begin(self, logs=None):
            self.progress.start()
            self.epoch_task = self.progress.add_task("epochs ", total=epochs, metrics="")
            self.batch_task = self.progress.add_task("batches", total=max(1, steps_per_epoch), metrics="")

        def on_epoch_begin(self, epoch, logs=None):
            self.progress.reset(self.batch_task, total=max(1, steps_per_epoch), metrics="")

        def on_train_batch_end(self, batch, logs=None):
            self.progress.update(self.batch_task, completed=batch + 1, metrics=_fmt(logs, ("loss",)))

        def on_epoch_end(self, epoch, logs=None):
            self.progress.update(self.epoch_task, completed=epoch + 1, metrics=_fmt(logs))
            self.progress.console.print(f"epoch {epoch + 1}/{epochs}: {_fmt(logs)}", highlight=False)

        def on_train_end(self, logs=None):
            self.progress.stop()

    return RichProgress()


def steps_for(n: int, batch_size: int) -> int:
    return max(1, math.ceil(n / batch_size))
