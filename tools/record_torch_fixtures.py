"""Record PyTorch reference values used by the tests (run by hand, not by CI).

The test suite must not need torch, so this script computes the references
once and stores them with their inputs in ``tests/fixtures/``. Re-run it after
changing the cases:

    pip install torch==2.13.0
    python tools/record_torch_fixtures.py

Cases: ``torch.renorm`` for p in {1, 2, 3.5} on every axis of float32 tensors
of rank 2, 3 and 4, with ``maxnorm`` at the median slice norm so that about
half of the slices are rescaled and half are left alone, plus an all-zero slice.
"""

import argparse
import pathlib

import numpy as np
import torch

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures"
SHAPES = ((6, 5), (4, 3, 5), (3, 2, 4, 5))
PS = (1.0, 2.0, 3.5)


def renorm_cases(seed=0):
    """Yield (key, array) pairs: inputs, parameters and torch outputs."""
    rng = np.random.default_rng(seed)
    index = 0
    for shape in SHAPES:
        x = (rng.standard_normal(shape) * rng.uniform(0.5, 3.0)).astype(np.float32)
        x[(0,) * (len(shape) - 1)] = 0.0  # zeroes part of slice 0 of every axis
        for p in PS:
            for axis in range(len(shape)):
                other = tuple(a for a in range(len(shape)) if a != axis)
                norms = np.sum(np.abs(x.astype(np.float64)) ** p, axis=other) ** (1 / p)
                maxnorm = float(np.float32(np.median(norms)))
                out = torch.renorm(torch.from_numpy(x), p, axis, maxnorm).numpy()
                yield f"case{index}_x", x
                yield f"case{index}_params", np.array([p, axis, maxnorm])
                yield f"case{index}_out", out
                index += 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(FIXTURES / "torch_renorm.npz"))
    args = parser.parse_args()
    arrays = dict(renorm_cases())
    arrays["torch_version"] = np.array(torch.__version__)
    np.savez_compressed(args.out, **arrays)
    print(f"wrote {len(arrays) // 3} renorm cases to {args.out} (torch {torch.__version__})")


if __name__ == "__main__":
    main()
