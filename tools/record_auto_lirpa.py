"""Record auto_LiRPA's CROWN and alpha-CROWN bounds of the reference cases into a fixture.

    PYTHONPATH=/tmp/auto_lirpa python tools/record_auto_lirpa.py [--rounds 3]

Needs torch and auto_LiRPA (https://github.com/Verified-Intelligence/auto_LiRPA;
any checkout on PYTHONPATH). The networks are rebuilt from the seeds in
``tests/reference_nets.py`` (the same function the tests use), run in float64
with auto_LiRPA's default settings (alpha-CROWN: 20 Adam iterations,
lr 0.5), and the bounds plus median times are written to
``tests/fixtures/auto_lirpa_bounds.json``. The test suite reads that file and
needs neither torch nor auto_LiRPA.
"""

import argparse
import json
import os
import statistics
import sys
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "tests"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from auto_LiRPA import BoundedModule, BoundedTensor, PerturbationLpNorm  # noqa: E402

import reference_nets  # noqa: E402

FIXTURE = os.path.join(here, "..", "tests", "fixtures", "auto_lirpa_bounds.json")


def torch_model(kernels, biases):
    """The ReLU MLP as a float64 ``torch.nn.Sequential``."""
    layers = []
    for index, (kernel, bias) in enumerate(zip(kernels, biases)):
        linear = torch.nn.Linear(*kernel.shape).double()
        linear.weight.data = torch.tensor(kernel.T.copy())
        linear.bias.data = torch.tensor(bias)
        layers.append(linear)
        if index < len(kernels) - 1:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def run(case, method):
    """``(low, high, seconds)`` of one auto_LiRPA bound computation, fresh module each time."""
    kernels, biases, lower, upper = reference_nets.weights_and_box(case)
    x_lower, x_upper = torch.tensor(lower)[None], torch.tensor(upper)[None]
    center = (x_lower + x_upper) / 2
    module = BoundedModule(torch_model(kernels, biases), center, verbose=0)
    x = BoundedTensor(center, PerturbationLpNorm(norm=np.inf, x_L=x_lower, x_U=x_upper))
    start = time.perf_counter()
    low, high = module.compute_bounds(x=(x,), method=method)
    seconds = time.perf_counter() - start
    return low.detach().numpy()[0].tolist(), high.detach().numpy()[0].tolist(), seconds


def record(case, rounds):
    entry = {
        "name": case["name"],
        "sizes": case["sizes"],
        "seed": case["seed"],
        "radius": case["radius"],
    }
    for method, key in (("CROWN", "crown"), ("alpha-CROWN", "alpha-crown")):
        runs = [run(case, method) for _ in range(rounds)]
        entry[key] = {
            "low": runs[-1][0],
            "high": runs[-1][1],
            "median_seconds": statistics.median(r[2] for r in runs),
        }
        width = np.mean(np.subtract(runs[-1][1], runs[-1][0]))
        print(
            f"{case['name']:24s} {method:12s} mean width {width:12.6g}  "
            f"median {entry[key]['median_seconds'] * 1e3:9.1f} ms",
            flush=True,
        )
    return entry


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float64)  # auto_LiRPA mixes dtypes otherwise
    import auto_LiRPA

    cases = [record(case, args.rounds) for case in reference_nets.CASES]
    payload = {
        "auto_LiRPA": auto_LiRPA.__version__,
        "torch": torch.__version__,
        "dtype": "float64",
        "threads": 1,
        "rounds": args.rounds,
        "cases": cases,
    }
    with open(FIXTURE, "w") as handle:
        json.dump(payload, handle, indent=1)
    print(f"wrote {os.path.normpath(FIXTURE)}")


if __name__ == "__main__":
    main()
