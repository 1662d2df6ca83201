"""Prototype benchmark: the optimizer's update and max-norm fused in one XLA call.

Issue 21 asks for max-norm MLP steps within 1.10× of the bare TF1 step. The
``floor`` row of ``tools/bench_train_op.py`` (one extra write per kernel over
the cap, no norms) already costs about that on a 2-core VM, so a projection
that runs after the optimizer's own kernels cannot get there. This script
measures the route that might: one ``tf.function(jit_compile=True)`` called
from the TF1 graph, in which the user's ``MomentumOptimizer.apply_gradients``
(its slots created in the outer graph first) and the cap of each hidden
kernel compile together, so XLA can fuse the projection into the update.

Not a library feature: the function reaches into ``Optimizer._create_slots``
and tf1norm's private cap, and has none of ``create_train_op``'s transforms,
``skip_nonfinite`` or decoupled decay. Variants, interleaved in one process
(Momentum 0.01/0.9, max-norm 1.0 on the hidden layers, batch 50):

* ``bare``, ``tf1norm`` and ``floor`` as in ``tools/bench_train_op.py``;
* ``fused``: the compiled update + cap, no gradient check;
* ``fused + check``: the same after ``create_train_op``'s default check.

    python tools/bench_fused_apply.py [--rounds 30] [--large]

``--check-weights`` instead runs 20 steps of ``tf1norm`` and ``fused`` from
the same initial values and prints the largest weight difference.
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

from bench_train_op import (  # noqa: E402
    Variant,
    bare,
    floor_pass,
    mlp_loss,
    momentum,
    print_table,
    tf1norm_max_norm,
)
from benchlib import LARGE, SMALL, cpu_name, measure_rounds, summarize  # noqa: E402

from tf1norm._math import projections  # noqa: E402
from tf1norm._src.compat import tf, v1  # noqa: E402
from tf1norm.training.finite_check import checked_gradients  # noqa: E402


def fused(x, y, sizes, check=False):
    """``[[one compiled call]]``: Momentum's update of every variable, then the caps."""
    loss = mlp_loss(x, y, sizes)
    variables = v1.trainable_variables()
    pairs = list(zip(tf.gradients(loss, variables), variables))
    if check:
        pairs = checked_gradients(pairs)
    optimizer = momentum()
    step = v1.train.get_or_create_global_step()
    kernels = [v for v in variables if v.shape.rank == 2 and v.name.startswith("hidden")]
    optimizer._create_slots(variables)  # in the outer graph, before the call

    def body(*grads):
        update = optimizer.apply_gradients(list(zip(grads, variables)), step)
        with tf.control_dependencies([update]):
            limit = tf.constant(1.0)
            caps = [
                k.assign(projections._cap_forward(k.read_value(), (0,), limit), read_value=False)
                for k in kernels
            ]
        with tf.control_dependencies(caps):
            return tf.constant(0)

    call = tf.function(body, jit_compile=True, autograph=False)
    return [[call(*[g for g, _ in pairs])]]


def check_weights(sizes):
    """Largest |tf1norm - fused| over every variable after 20 steps from the same start."""
    reference = Variant("tf1norm", sizes, 50, tf1norm_max_norm)
    candidate = Variant("fused", sizes, 50, fused)
    with reference.graph.as_default():
        start = {v.op.name: v for v in v1.global_variables()}
    with candidate.graph.as_default():
        ours = {v.op.name: v for v in v1.global_variables() if v.op.name in start}
        for name, variable in ours.items():
            variable.load(reference.sess.run(start[name]), candidate.sess)
    for _ in range(20):
        reference.steps(1)
        candidate.steps(1)
    worst = max(
        float(np.max(np.abs(reference.sess.run(start[n]) - candidate.sess.run(v))))
        for n, v in ours.items()
    )
    print(f"largest weight difference after 20 steps: {worst:.3g}")
    return worst


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--steps", type=int, default=20, help="steps per timed block")
    parser.add_argument("--large", action="store_true", help="MLP 784-2048-2048-10")
    parser.add_argument("--check-weights", action="store_true")
    args = parser.parse_args(argv)
    sizes = LARGE if args.large else SMALL
    if args.check_weights:
        return check_weights(sizes)
    variants = [
        Variant("bare Momentum", sizes, 50, bare),
        Variant("tf1norm max-norm", sizes, 50, tf1norm_max_norm),
        Variant("floor", sizes, 50, floor_pass),
        Variant("fused XLA update + cap, no check", sizes, 50, fused),
        Variant("fused XLA update + cap + check", sizes, 50, lambda x, y, s: fused(x, y, s, True)),
    ]
    print(f"tf {tf.__version__}, {cpu_name()}, {os.cpu_count()} cpus, {args.rounds} rounds")
    rows = summarize(variants, measure_rounds(variants, args.rounds, args.steps, 30))
    print_table(f"MLP {'-'.join(map(str, sizes))}, batch 50", rows, [])
    return rows


if __name__ == "__main__":
    main()
