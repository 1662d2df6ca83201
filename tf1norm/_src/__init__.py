"""The bottom layer: the one TensorFlow import, argument checks, eager-mode helpers (private)."""
