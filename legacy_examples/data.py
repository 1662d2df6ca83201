"""Offline data for the legacy examples.

* ``--data PATH`` pointing at the standard Keras ``mnist.npz`` (keys
  ``x_train, y_train, x_test, y_test``): real MNIST, 784 features in [0, 1].
* otherwise scikit-learn's bundled handwritten digits (1,797 8x8 images,
  64 features in [0, 1], 10 classes), split 75/25 with a fixed seed. Nothing
  is downloaded.
"""

import collections
import sys

import numpy as np

VERBOSE_FLAG = "--verbose"


def quiet_tensorflow(argv=None):
    """Import TensorFlow with its C++ log lines hidden unless ``--verbose`` is in ``argv``.

    Call it before the example's first TensorFlow import. TensorFlow's C++
    runtime logs while it loads ("All log messages before absl::InitializeLog()",
    "oneDNN custom operations are on", "Could not find cuda drivers"), some of
    it straight to file descriptor 2, so ``TF_CPP_MIN_LOG_LEVEL`` alone does not
    hide it; this is the command line's mechanism (``tf1norm.cli.app.quiet_tensorflow``),
    with the example's own Python warnings filters kept. ``argv`` defaults to
    ``sys.argv[1:]``. Nothing happens when TensorFlow is already imported (an
    example imported by a test).
    """
    if "tensorflow" in sys.modules:
        return
    from tf1norm.cli.app import quiet_tensorflow as quiet

    quiet(VERBOSE_FLAG in (sys.argv[1:] if argv is None else argv), hide_warnings=False)


def add_verbose_argument(parser):
    """``--verbose`` on an example's parser (read early by ``quiet_tensorflow``)."""
    parser.add_argument(
        VERBOSE_FLAG, action="store_true", help="show TensorFlow's log lines (hidden by default)"
    )


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
