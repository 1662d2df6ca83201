"""Reference networks and boxes shared by the tests and ``tools/record_auto_lirpa.py``.

Each case is built deterministically from a NumPy seed: ReLU MLP kernels
``N(0, 2/fan_in)`` (He), biases ``N(0, 0.1²)``, and an L∞ box of ``radius``
around a centre drawn uniformly from ``[-1, 1]``. Only the seeds and sizes are
stored; ``tests/fixtures/auto_lirpa_bounds.json`` holds auto_LiRPA's bounds
of each case (recorded once by the tool), so the tests need neither torch
nor auto_LiRPA.
"""

import numpy as np

CASES = [
    {"name": "mlp-10-20-20-3", "sizes": [10, 20, 20, 3], "seed": 1, "radius": 0.3},
    {"name": "mlp-30-64x4-5", "sizes": [30, 64, 64, 64, 64, 5], "seed": 2, "radius": 0.1},
    {"name": "mlp-784-256x4-10", "sizes": [784] + [256] * 4 + [10], "seed": 3, "radius": 0.02},
    {"name": "mlp-5-50x6-5 wide box", "sizes": [5] + [50] * 6 + [5], "seed": 4, "radius": 1.0},
    {"name": "mlp-5-50x6-5 small box", "sizes": [5] + [50] * 6 + [5], "seed": 4, "radius": 0.1},
    {"name": "mlp-5-60x6-5", "sizes": [5] + [60] * 6 + [5], "seed": 5, "radius": 0.05},
]


def weights_and_box(case):
    """``(kernels [in, out], biases, lower, upper)`` of a case, from its seed."""
    rng = np.random.default_rng(case["seed"])
    sizes = case["sizes"]
    kernels = [
        rng.standard_normal((a, b)) * np.sqrt(2.0 / a) for a, b in zip(sizes[:-1], sizes[1:])
    ]
    biases = [rng.standard_normal(b) * 0.1 for b in sizes[1:]]
    center = rng.uniform(-1.0, 1.0, sizes[0])
    return kernels, biases, center - case["radius"], center + case["radius"]


def network(case):
    """``(tf1norm.bounds.Network, lower, upper)`` of a case."""
    from tf1norm import bounds

    kernels, biases, lower, upper = weights_and_box(case)
    return bounds.Network.from_numpy(kernels, biases), lower, upper
