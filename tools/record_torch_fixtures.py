"""Record PyTorch reference values used by the tests (run by hand, not by CI).

The test suite must not need torch, so this script computes the references
once and stores them with their inputs in ``tests/fixtures/``. Re-run it after
changing the cases:

    pip install torch==2.13.0
    python tools/record_torch_fixtures.py

Cases:

* ``torch_renorm.npz``: ``torch.renorm`` for p in {1, 2, 3.5} on every axis of
  float32 tensors of rank 2, 3 and 4, with ``maxnorm`` at the median slice norm
  so that about half of the slices are rescaled and half are left alone, plus
  an all-zero slice.
* ``torch_decay.npz``: 20 float64 steps of a 5-8-3 tanh MLP on fixed data
  (MSE loss) with (a) ``torch.optim.AdamW`` and (b) ``torch.optim.SGD`` with
  momentum 0.9 plus decoupled decay ``p.mul_(1 - lr * wd)`` before each step;
  the learning rate follows ``lr0 * 0.9 ** step``. Adam's epsilon is 1e-12 so
  that TF1's epsilon-hat convention cannot matter. Parameters after every step
  are stored.
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


DECAY = {"lr0": 0.05, "weight_decay": 0.3, "steps": 20, "eps": 1e-12}


def mlp_problem(seed=1):
    """Fixed data and initial parameters shared with the tests."""
    rng = np.random.default_rng(seed)
    return {
        "x": rng.standard_normal((16, 5)),
        "y": rng.standard_normal((16, 3)),
        "w1": rng.standard_normal((5, 8)) * 0.5,
        "b1": rng.standard_normal(8) * 0.1,
        "w2": rng.standard_normal((8, 3)) * 0.5,
        "b2": rng.standard_normal(3) * 0.1,
    }


def decay_trajectory(kind):
    """Parameters after each step, stacked per parameter name."""
    problem = mlp_problem()
    names = ("w1", "b1", "w2", "b2")
    params = [torch.tensor(problem[n], dtype=torch.float64, requires_grad=True) for n in names]
    x, y = (torch.tensor(problem[k], dtype=torch.float64) for k in ("x", "y"))
    lr0, wd = DECAY["lr0"], DECAY["weight_decay"]
    if kind == "adamw":
        opt = torch.optim.AdamW(params, lr=lr0, weight_decay=wd, eps=DECAY["eps"])
    else:
        opt = torch.optim.SGD(params, lr=lr0, momentum=0.9)
    history = {n: [] for n in names}
    for step in range(DECAY["steps"]):
        lr = lr0 * 0.9**step
        for group in opt.param_groups:
            group["lr"] = lr
        opt.zero_grad()
        w1, b1, w2, b2 = params
        loss = torch.mean((torch.tanh(x @ w1 + b1) @ w2 + b2 - y) ** 2)
        loss.backward()
        if kind == "sgdw":
            with torch.no_grad():
                for p in params:
                    p.mul_(1 - lr * wd)
        opt.step()
        for n, p in zip(names, params):
            history[n].append(p.detach().numpy().copy())
    return {f"{kind}_{n}": np.stack(v) for n, v in history.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(FIXTURES / "torch_renorm.npz"))
    args = parser.parse_args()
    arrays = dict(renorm_cases())
    arrays["torch_version"] = np.array(torch.__version__)
    np.savez_compressed(args.out, **arrays)
    print(f"wrote {len(arrays) // 3} renorm cases to {args.out} (torch {torch.__version__})")
    decay = {
        **decay_trajectory("adamw"),
        **decay_trajectory("sgdw"),
        **{k: np.array(v) for k, v in DECAY.items()},
        **{f"problem_{k}": v for k, v in mlp_problem().items()},
        "torch_version": np.array(torch.__version__),
    }
    np.savez_compressed(FIXTURES / "torch_decay.npz", **decay)
    print(f"wrote AdamW and SGD+decoupled-decay trajectories to {FIXTURES / 'torch_decay.npz'}")


if __name__ == "__main__":
    main()
