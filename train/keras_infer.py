"""A Keras model's outputs on a batch of images, without paying for a traced graph when it does not pay back.

`model.predict` first traces the model into a graph (0.3 s for the tests' tiny autoencoder, 1.5 s for
MobileNetV2), then runs it fast. The exports' parity checks, the training figures and the small
splits run a handful of images once: called eagerly, batch by batch, they cost a fraction of that
trace, with the same outputs to the bit. Large inputs still go through `predict`, whose graph is
faster per image (256 MobileNetV2 images of 128 px: 6.3 s traced, 8.5 s eager).
"""

from __future__ import annotations

import warnings

import numpy as np

# Pixels (images x height x width) up to which eager calls are cheaper than a trace plus run:
# 128 MobileNetV2 images of 32 px (131k pixels) take 0.9 s eager and 1.7 s through predict.
EAGER_MAX_PIXELS = 1 << 20


def keras_outputs(model, x: np.ndarray, batch_size: int = 32) -> np.ndarray | list[np.ndarray]:
    """The model's inference outputs (training=False) on float input `x` (N, H, W, C), as numpy:
    one array, or a list in the model's output order when it has several (as `model.predict`)."""
    if not len(x) or len(x) * int(np.prod(x.shape[1:3])) > EAGER_MAX_PIXELS:
        return model.predict(x, batch_size=batch_size, verbose=0)
    with warnings.catch_warnings():
        # A backbone built on `base.inputs` (a one-item list) warns at each eager call that it got a
        # tensor, not a list; Keras takes it all the same (predict's trace says nothing of it).
        warnings.filterwarnings("ignore", message="The structure of `inputs` doesn't match")
        batches = [model(x[i : i + batch_size], training=False) for i in range(0, len(x), batch_size)]
    if isinstance(batches[0], (list, tuple)):
        return [np.concatenate([np.asarray(b[k]) for b in batches]) for k in range(len(batches[0]))]
    return np.concatenate([np.asarray(b) for b in batches])
