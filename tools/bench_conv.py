"""Benchmark: convolutions in CROWN as NumPy taps, as TF eager ops, and as dense matrices.

    python tools/bench_conv.py [--rounds 5]

A small CNN on a 32x32x3 input (conv 3x3x3x8 stride 2 SAME, ReLU, conv
3x3x8x8 stride 2 SAME, ReLU, dense 512->10; random weights, seed 0), the box
an L∞ ball of radius 0.01. Variants, interleaved (``tools/benchlib.py``):

* ``numpy``: ``tf1norm.bounds.Conv2D`` with ``engine = "numpy"`` (a loop
  over kernel taps);
* ``tf``: the default engine, ``tf.nn.conv2d`` / ``tf.nn.conv2d_transpose``
  (float64, eager);
* ``dense``: each convolution replaced by its dense matrix (what
  ``from_keras`` built before; the matrices are built once, outside the timing).

It prints the median time of one ``crown`` call and of one ``backward`` of the
first layer with ``m = out_size`` rows, with ratios to ``numpy``, and the size
of the dense matrices the ``dense`` variant holds.
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402

import benchlib  # noqa: E402
from tf1norm import bounds  # noqa: E402
from tf1norm.bounds.conv import Conv2D  # noqa: E402


def networks(seed=0):
    rng = np.random.default_rng(seed)
    k1, k2 = rng.normal(size=(3, 3, 3, 8)) * 0.3, rng.normal(size=(3, 3, 8, 8)) * 0.2
    dense = bounds.Dense(rng.normal(size=(512, 10)) * 0.1)
    built = {}
    for engine in ("numpy", "tf"):
        first = Conv2D(k1, (32, 32, 3), strides=2, padding="SAME")
        second = Conv2D(k2, (16, 16, 8), strides=2, padding="SAME")
        first.engine = second.engine = engine
        built[engine] = bounds.Network(
            [first, bounds.Activation("relu"), second, bounds.Activation("relu"), dense]
        )
    built["dense"] = bounds.Network(
        [
            bounds.Dense(layer.as_matrix(), layer.bias_vector)
            if isinstance(layer, Conv2D)
            else layer
            for layer in built["numpy"].layers
        ]
    )
    return built


class Variant:
    def __init__(self, name, fn):
        self.name, self.fn = name, fn

    def steps(self, count):
        start = time.perf_counter()
        for _ in range(count):
            self.fn()
        return (time.perf_counter() - start) / max(count, 1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    nets = networks()
    center = np.random.default_rng(1).uniform(0.1, 0.9, 3072)
    lower, upper = center - 0.01, center + 0.01
    results = [bounds.output_bounds(net, lower, upper, "crown") for net in nets.values()]
    for other in results[1:]:
        np.testing.assert_allclose(other, results[0], rtol=1e-8, atol=1e-8)
    crown = [
        Variant(name, lambda net=net: bounds.output_bounds(net, lower, upper, "crown"))
        for name, net in nets.items()
    ]
    benchlib.report(
        "crown on the 32x32x3 CNN (one call)", benchlib.measure(crown, args.rounds, 1, 1)
    )
    a = np.random.default_rng(2).normal(size=(2048, 2048))
    backward = [
        Variant(name, lambda layer=net.layers[0]: layer.backward(a)) for name, net in nets.items()
    ]
    benchlib.report(
        "backward of the first layer, m = 2048 rows", benchlib.measure(backward, args.rounds, 1, 1)
    )
    held = sum(
        layer.kernel.nbytes for layer in nets["dense"].layers if isinstance(layer, bounds.Dense)
    )
    print(
        f"\ndense variant holds {held / 2**20:.1f} MiB of matrices; Conv2D kernels: "
        f"{sum(l.kernel.nbytes for l in nets['numpy'].layers if isinstance(l, Conv2D))} bytes"
    )


if __name__ == "__main__":
    main()
