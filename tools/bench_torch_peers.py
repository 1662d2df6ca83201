"""PyTorch peers of ``tools/bench_train_op.py``: the same MLPs, batch and steps, in torch.

    python tools/bench_torch_peers.py [--rounds 9] [--steps 20] [--out tools/peers_torch.json]

Not needed by the tests (torch is not a dependency; install torch 2.13 CPU
to run it). Each workload interleaves its variants in one process as
``bench_train_op`` does (``benchlib.measure_rounds``) and records, per
variant, the median and min-max over rounds of the ratio to the plain step:

* max-norm MLPs (784-300-100-10 at batch 50 and 512, 784-2048-2048-10 at 50),
  SGD lr 0.01 momentum 0.9 against the same step followed by an in-place
  max-norm of the hidden kernels (``torch.renorm`` of each output unit's
  incoming weights, under ``no_grad``), and the step of the MLP whose hidden
  layers are ``torch.nn.utils.parametrizations.weight_norm`` and
  ``spectral_norm`` parametrizations;
* the full recipe (small MLP, batch 50): plain ``Adam(1e-3)`` against
  ``AdamW(1e-3, weight_decay=1e-2)`` + ``clip_grad_norm_(5)`` + max-norm.

Threads: ``torch.set_num_threads(os.cpu_count())``, like TensorFlow's default.
"""

import argparse
import datetime
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchlib import LARGE, SMALL, cpu_name, measure_rounds, summarize  # noqa: E402


def mlp(sizes, parametrize=None):
    layers = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layer = torch.nn.Linear(fan_in, fan_out)
        hidden = i < len(sizes) - 2
        if hidden and parametrize is not None:
            layer = parametrize(layer)
        layers += [layer, torch.nn.ReLU()] if hidden else [layer]
    return torch.nn.Sequential(*layers)


def hidden_kernels(model):
    """The hidden layers' weights ``[out, in]``: torch's unit is a row."""
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    return [m.weight for m in linears[:-1]]


class Variant:
    """One model + optimizer + step function; ``steps(count)`` returns seconds per step."""

    def __init__(self, name, sizes, batch, make_optimizer, parametrize=None, after=None, clip=None):
        torch.manual_seed(0)
        self.name, self.ops = name, 0
        self.model = mlp(sizes, parametrize)
        self.optimizer = make_optimizer(self.model.parameters())
        self.after, self.clip = after, clip
        self.x = torch.rand(batch, sizes[0])
        self.y = torch.randint(0, sizes[-1], (batch,))

    def step(self):
        self.optimizer.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(self.model(self.x), self.y)
        loss.backward()
        if self.clip is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
        self.optimizer.step()
        if self.after is not None:
            self.after(self.model)

    def steps(self, count):
        start = time.perf_counter()
        for _ in range(count):
            self.step()
        return (time.perf_counter() - start) / count


@torch.no_grad()
def max_norm_in_place(model, threshold=1.0):
    """Cap every hidden unit's incoming-weight norm: ``renorm`` over rows of ``[out, in]``."""
    for weight in hidden_kernels(model):
        weight.copy_(torch.renorm(weight, p=2, dim=0, maxnorm=threshold))


def momentum(parameters):
    return torch.optim.SGD(parameters, lr=0.01, momentum=0.9)


def workloads():
    weight_norm = torch.nn.utils.parametrizations.weight_norm
    spectral_norm = torch.nn.utils.parametrizations.spectral_norm
    rows = []
    for key, sizes, batch in [
        ("maxnorm_small_b50", SMALL, 50),
        ("maxnorm_small_b512", SMALL, 512),
        ("maxnorm_large_b50", LARGE, 50),
    ]:
        rows.append(
            (
                key,
                [
                    Variant("plain SGD momentum", sizes, batch, momentum),
                    Variant("in-place max-norm", sizes, batch, momentum, after=max_norm_in_place),
                    Variant("weight_norm parametrization", sizes, batch, momentum, weight_norm),
                    Variant("spectral_norm parametrization", sizes, batch, momentum, spectral_norm),
                ],
            )
        )
    adam = lambda p: torch.optim.Adam(p, lr=1e-3)  # noqa: E731
    adamw = lambda p: torch.optim.AdamW(p, lr=1e-3, weight_decay=1e-2)  # noqa: E731
    full = [
        Variant("plain Adam", SMALL, 50, adam),
        Variant(
            "AdamW + clip_grad_norm_ + max-norm",
            SMALL,
            50,
            adamw,
            after=max_norm_in_place,
            clip=5.0,
        ),
    ]
    rows.append(("full_small_b50", full))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument(
        "--out",
        default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "peers_torch.json"),
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(os.cpu_count())
    record = {
        "peer": f"PyTorch {torch.__version__}",
        "cpu": f"{cpu_name()}, {os.cpu_count()} cpus",
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python tools/bench_torch_peers.py " + " ".join(argv or sys.argv[1:]),
        "workloads": {},
    }
    for key, variants in workloads():
        steps = args.steps if "b512" not in key else max(args.steps // 2, 1)
        rows = summarize(variants, measure_rounds(variants, args.rounds, steps, 30))
        record["workloads"][key] = [
            {"name": name, "ms": ms, "median": median, "min": low, "max": high}
            for name, ms, median, low, high, _ in rows[1:]
        ]
        print(key, [(r[0], round(r[2], 3)) for r in rows])
    with open(args.out, "w") as handle:
        json.dump(record, handle, indent=1)
        handle.write("\n")
    return record


if __name__ == "__main__":
    main()
