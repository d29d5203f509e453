"""Compile a Keras model so that `fit` traces its training step once, not twice.

Keras 3 on TensorFlow, with no distribution strategy, builds the optimizer inside the first training
step, which runs in a tf.function. A tf.function that creates variables is traced twice, and every
slot variable made in it gets a lazy-initialisation conditional in the graph. Built right after
`compile`, the slots exist before the trace: a 2-epoch 16 px autoencoder trains in 3.7 CPU-s instead
of 5.4 (benchmarks/train_overhead.py; benchmarks/results/train_overhead.md). The weights come out the
same to the bit: the slots start at zero either way and building them draws no random numbers.
"""

from __future__ import annotations


def compile_for_fit(model, optimizer, **compile_args) -> None:
    """`model.compile(optimizer=optimizer, **compile_args)`, then the optimizer's slot variables for
    the model's trainable weights (freeze layers before calling this, as before compile)."""
    model.compile(optimizer=optimizer, **compile_args)
    optimizer.build(model.trainable_variables)
