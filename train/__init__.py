"""Desktop side: training models on images of good parts (TensorFlow / Keras 3).

Nothing here is imported by `edge/` at module level; the `edge train` command imports it
inside its function so the device never loads TensorFlow.
"""
