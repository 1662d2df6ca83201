"""Offline data for the legacy examples.

* ``--data PATH`` pointing at the standard Keras ``mnist.npz`` (keys
  ``x_train, y_train, x_test, y_test``): real MNIST, 784 features in [0, 1].
* otherwise scikit-learn's bundled handwritten digits (1,797 8x8 images,
  64 features in [0, 1], 10 classes), split 75/25 with a fixed seed. Nothing
  is downloaded.
"""

import collections

import numpy as np

Dataset = collections.namedtuple("Dataset", "name x_train y_train x_test y_test")


def load(path=None, seed=0, test_fraction=0.25):
    """Return a ``Dataset`` with float32 features and int64 labels."""
    if path:
        return _load_mnist(path)
    return _load_digits(seed, test_fraction)


def _load_mnist(path):
    with np.load(path) as data:
        missing = {"x_train", "y_train", "x_test", "y_test"} - set(data.files)
        if missing:
            raise ValueError(f"--data {path}: not a Keras mnist.npz (missing {sorted(missing)})")
        flat = lambda x: x.reshape(len(x), -1).astype(np.float32) / 255.0  # noqa: E731
        return Dataset(
            "mnist",
            flat(data["x_train"]),
            data["y_train"].astype(np.int64),
            flat(data["x_test"]),
            data["y_test"].astype(np.int64),
        )


def _load_digits(seed, test_fraction):
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise SystemExit(
            "the examples' default data is scikit-learn's bundled digits, and "
            "scikit-learn is not installed: pip install '.[examples]' (or pip "
            "install scikit-learn); seed_002 also takes --data path/to/mnist.npz"
        ) from None

    digits = load_digits()
    x = digits.data.astype(np.float32) / 16.0
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    cut = int(len(x) * (1 - test_fraction))
    train, test = order[:cut], order[cut:]
    return Dataset("sklearn-digits", x[train], y[train], x[test], y[test])


def batches(x, y, batch_size, rng):
    """Yield shuffled ``(x, y)`` mini-batches covering one epoch."""
    order = rng.permutation(len(x))
    for start in range(0, len(x) - batch_size + 1, batch_size):
        index = order[start : start + batch_size]
        yield x[index], y[index]
