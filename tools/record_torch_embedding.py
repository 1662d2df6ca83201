"""Record torch.nn.Embedding(max_norm=, norm_type=) + SGD trajectories (run by hand, not by CI).

The test suite must not need torch, so this script computes the references
once and stores them, with their inputs, in ``tests/fixtures/torch_embedding.npz``
(``tests/test_embedding.py`` reads it). Re-run it after changing the cases:

    pip install torch==2.13.0
    python tools/record_torch_embedding.py

The problem: a 12 x 5 table whose rows start at norms between 0.3 and 3 times
``max_norm`` (1.3, not a float32 number, so the float64 comparison of
torch's kernel matters); 10 steps of ``torch.optim.SGD`` (lr 0.25, a float32
number: TF1 optimizers round the learning rate to float32) on the loss
``0.5 * sum((emb(ids) · v - y)²)`` with ``ids`` of shape [3, 2] holding a
repeated id every step and never ids 10 and 11; targets large enough to push
updated rows back above ``max_norm``. For p in {1, 2, 3} and float32 and
float64 tables, the table after every step and the looked-up rows of every
step are stored.
"""

import argparse
import pathlib

import numpy as np
import torch

FIXTURE = (
    pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "torch_embedding.npz"
)
SETTINGS = {"vocabulary": 12, "dim": 5, "max_norm": 1.3, "lr": 0.25, "steps": 10}
NORM_TYPES = (1.0, 2.0, 3.0)
DTYPES = ("float32", "float64")


def problem(seed=0):
    """Initial table (float64), ids [steps, 3, 2], targets [steps, 3, 2] and v [dim]."""
    rng = np.random.default_rng(seed)
    steps, vocabulary, dim = SETTINGS["steps"], SETTINGS["vocabulary"], SETTINGS["dim"]
    table = rng.standard_normal((vocabulary, dim))
    norms = rng.uniform(0.3, 3.0, (vocabulary, 1)) * SETTINGS["max_norm"]
    table *= norms / np.linalg.norm(table, axis=1, keepdims=True)
    ids = rng.integers(0, vocabulary - 2, (steps, 3, 2))
    ids[:, 2, 1] = ids[:, 0, 0]  # an id repeated in every batch
    return {
        "table": table,
        "ids": ids,
        "targets": rng.uniform(-6.0, 6.0, (steps, 3, 2)),
        "v": rng.standard_normal(dim),
    }


def trajectory(data, norm_type, dtype):
    """(tables after every step [steps, V, D], looked-up rows [steps, 3, 2, D])."""
    torch_dtype = getattr(torch, dtype)
    embedding = torch.nn.Embedding(
        SETTINGS["vocabulary"],
        SETTINGS["dim"],
        max_norm=SETTINGS["max_norm"],
        norm_type=norm_type,
        dtype=torch_dtype,
    )
    with torch.no_grad():
        embedding.weight.copy_(torch.from_numpy(data["table"].astype(dtype)))
    optimizer = torch.optim.SGD(embedding.parameters(), lr=SETTINGS["lr"])
    v = torch.from_numpy(data["v"].astype(dtype))
    tables, rows = [], []
    for ids, targets in zip(data["ids"], data["targets"]):
        optimizer.zero_grad()
        looked_up = embedding(torch.from_numpy(ids))
        loss = 0.5 * torch.sum((looked_up @ v - torch.from_numpy(targets.astype(dtype))) ** 2)
        loss.backward()
        optimizer.step()
        rows.append(looked_up.detach().numpy().copy())
        tables.append(embedding.weight.detach().numpy().copy())
    return np.stack(tables), np.stack(rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(FIXTURE))
    args = parser.parse_args()
    data = problem()
    arrays = {
        **data,
        **{k: np.array(v) for k, v in SETTINGS.items()},
        "norm_types": np.array(NORM_TYPES),
        "torch_version": np.array(torch.__version__),
    }
    for dtype in DTYPES:
        for norm_type in NORM_TYPES:
            tables, rows = trajectory(data, norm_type, dtype)
            arrays[f"{dtype}_p{norm_type:g}_tables"] = tables
            arrays[f"{dtype}_p{norm_type:g}_rows"] = rows
    np.savez_compressed(args.out, **arrays)
    print(
        f"wrote {len(DTYPES) * len(NORM_TYPES)} trajectories to {args.out} "
        f"(torch {torch.__version__})"
    )


if __name__ == "__main__":
    main()
