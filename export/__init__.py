"""Desktop side: Keras model → TFLite (float32, float16, dynamic-range, full int8)."""
